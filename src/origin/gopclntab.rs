//! Names for a stripped Go binary's frames, from its `.gopclntab`.
//!
//! `go build -ldflags="-s -w"` drops the symbol table and DWARF, which is
//! all `blazesym` reads, but every Go binary keeps the table its own
//! runtime prints panics from: per function its name, and per address its
//! file and line (Go 1.18 and later, `magic` 0xfffffff0 and 0xfffffff1).
//! Only what a frame needs is read: the function table, the name, and the
//! file and line tables decoded for the one address asked. Inside code
//! inlined from another file the frame names its function and that
//! function's own file, without a line (the inlined functions' names live
//! outside this table).
//!
//! The bytes are the binary's: everything is read bounded, and anything
//! out of place is no name, never a panic.

use crate::domain::Frame;

/// One binary's `.gopclntab`, ready to look addresses up.
pub(crate) struct GoTable {
    data: Vec<u8>,
    min_lc: u64,
    nfunc: usize,
    text_start: u64,
    funcnames: usize,
    cutab: usize,
    filetab: usize,
    pctab: usize,
    functab: usize,
}

impl GoTable {
    /// The table in `data` (the section's bytes), if it is one this reader knows.
    pub(crate) fn parse(data: Vec<u8>) -> Option<GoTable> {
        let magic = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?);
        if !matches!(magic, 0xffff_fff0 | 0xffff_fff1) || data.get(7) != Some(&8) {
            return None; // Go before 1.18, or not a 64-bit table
        }
        let word =
            |i: usize| -> Option<u64> { Some(u64::from_le_bytes(data.get(8 + 8 * i..16 + 8 * i)?.try_into().ok()?)) };
        let at = |i: usize| -> Option<usize> { usize::try_from(word(i)?).ok() };
        Some(GoTable {
            min_lc: u64::from(*data.get(6)?),
            nfunc: at(0)?,
            text_start: word(2)?,
            funcnames: at(3)?,
            cutab: at(4)?,
            filetab: at(5)?,
            pctab: at(6)?,
            functab: at(7)?,
            data,
        })
    }

    /// Where the binary states its code begins.
    pub(crate) fn text_start(&self) -> u64 {
        self.text_start
    }

    /// The function, file and line of stated address `pc`, if a function holds it.
    pub(crate) fn frame(&self, pc: u64) -> Option<Frame> {
        let off = u32::try_from(pc.checked_sub(self.text_start)?).ok()?;
        let f = self.func_at(off)?;
        // The `_func` record's fields, by offset.
        let field = |at: usize| self.u32_at(f.checked_add(at)?);
        let entry = self.text_start.checked_add(u64::from(field(0)?))?;
        let function = self.cstr(self.funcnames.checked_add(field(4)? as usize)?)?;
        let (pcfile, pcln, cu) = (field(20)?, field(24)?, field(32)? as usize);
        // Code inlined from another file reads as that file's lines, and the names of
        // inlined functions are in a table outside `.gopclntab`: there, the frame keeps
        // its function's own file (the one at its entry) and no line.
        let own = self.pcvalue(pcfile, entry, entry);
        let here = self.pcvalue(pcfile, entry, pc);
        let line = match here == own {
            true => self.pcvalue(pcln, entry, pc).unwrap_or(0),
            false => 0,
        };
        let file = own
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| self.u32_at(self.cutab.checked_add(cu.checked_add(n)?.checked_mul(4)?)?))
            .and_then(|off| self.cstr(self.filetab.checked_add(off as usize)?))
            .unwrap_or_default();
        Some(Frame {
            function,
            file,
            line: u32::try_from(line).unwrap_or(0),
            library: false,
        })
    }

    /// Every function's name and stated entry address, in the table's order.
    pub(crate) fn functions(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        // Each function takes 8 bytes of the function table: no more can be in the data.
        (0..self.nfunc.min(self.data.len() / 8)).filter_map(move |i| {
            let at = self.functab.checked_add(i.checked_mul(8)?)?;
            let entry = self.text_start.checked_add(u64::from(self.u32_at(at)?))?;
            let f = self.functab.checked_add(self.u32_at(at.checked_add(4)?)? as usize)?;
            let name = self.cstr(self.funcnames.checked_add(self.u32_at(f.checked_add(4)?)? as usize)?)?;
            Some((name, entry))
        })
    }

    /// The offset of the `_func` whose code holds text offset `off` (a binary search).
    fn func_at(&self, off: u32) -> Option<usize> {
        let entry = |i: usize| self.u32_at(self.functab.checked_add(i.checked_mul(8)?)?);
        let (mut lo, mut hi) = (0usize, self.nfunc);
        if off < entry(0)? || off >= entry(self.nfunc)? {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if entry(mid)? <= off {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let funcoff = self.u32_at(self.functab.checked_add(lo.checked_mul(8)?.checked_add(4)?)?)? as usize;
        self.functab.checked_add(funcoff)
    }

    /// The value table at `table` (in the pc tables) holds for `pc`, in a function entered at `entry`.
    fn pcvalue(&self, table: u32, entry: u64, pc: u64) -> Option<i64> {
        let mut p = self.pctab.checked_add(table as usize)?;
        let (mut val, mut at) = (-1i64, entry);
        let mut first = true;
        // A table is a run of (value delta, pc delta) pairs, ended by a zero value delta.
        for _ in 0..100_000 {
            let (uv, next) = self.varint(p)?;
            if uv == 0 && !first {
                return None;
            }
            let delta = if uv & 1 != 0 {
                !(uv >> 1) as i64
            } else {
                (uv >> 1) as i64
            };
            let (pcdelta, next) = self.varint(next)?;
            p = next;
            at = at.checked_add(pcdelta.checked_mul(self.min_lc)?)?;
            val = val.checked_add(delta)?;
            first = false;
            if pc < at {
                return Some(val);
            }
        }
        None
    }

    fn varint(&self, mut p: usize) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(p)?;
            p += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((v, p));
            }
        }
        None
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.data.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    }

    fn cstr(&self, at: usize) -> Option<String> {
        let rest = self.data.get(at..)?;
        let end = rest.iter().take(4096).position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::GoTable;

    #[test]
    fn anything_that_is_not_a_known_table_is_none_and_nothing_panics() {
        assert!(GoTable::parse(Vec::new()).is_none());
        assert!(
            GoTable::parse(vec![0xf0, 0xff, 0xff, 0xff, 0, 0, 1, 4]).is_none(),
            "32-bit"
        );
        // A header that points everywhere out of bounds.
        let mut t = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        t.extend(std::iter::repeat_n(0xff, 64));
        let table = GoTable::parse(t).unwrap();
        for pc in [0, 1, u64::MAX, 0x40_1000] {
            assert!(table.frame(pc).is_none());
        }
        assert_eq!(table.functions().take(10).count(), 0);
    }
}
