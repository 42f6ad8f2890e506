//! The native agent's slots, read out of the process's own memory: the
//! agent keeps its table in a private mapping of a memfd named
//! `fdsoak-fdtab` (see `agent.c`); only the slots of the descriptors the
//! process holds are read. A slot is kept only when its sequence number is
//! even and the same before and after the copy: one its thread was
//! rewriting meanwhile is skipped.
//!
//! The memory is the process's to write (a process under test): every
//! figure in it is bounded before use, and anything malformed is no table.

#[cfg(test)]
use crate::origin::memory::runs;
use crate::origin::memory::{find, read_remote, SlotCopies};
use std::collections::HashMap;

const MAGIC: &[u8; 8] = b"FDSOAKT2";
/// The name the agent gives its memfd.
const MAPPING: &str = "fdsoak-fdtab";
/// The header: magic, version, slots, depth, pid (u32 each), overflow, high (u64), 24 bytes spare.
pub(crate) const HEADER: usize = 8 + 4 * 4 + 8 + 8 + 24;
/// At most this many slots and this deep a stack are read, whatever the header says
/// (the agent writes 65,536 slots of 48 addresses).
const MAX_SLOTS: usize = 1 << 16;
const MAX_DEPTH: usize = 64;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub slots: usize,
    pub depth: usize,
    pub overflow: u64,
    /// One past the highest descriptor the agent ever recorded.
    pub high: usize,
}

impl Header {
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        if b.get(..8)? != MAGIC || u32_at(b, 8)? != 2 {
            return None;
        }
        let slots = (u32_at(b, 12)? as usize).min(MAX_SLOTS);
        Some(Header {
            slots,
            depth: (u32_at(b, 16)? as usize).min(MAX_DEPTH),
            overflow: u64_at(b, 24)?,
            high: (u64_at(b, 32)?.min(slots as u64)) as usize,
        })
    }

    pub(crate) fn slot_size(&self) -> usize {
        8 + self.depth * 8
    }

    fn offset(&self, fd: usize) -> usize {
        HEADER + fd * self.slot_size()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A slot's return addresses, if it was whole: `copy` is the slot as read, `seq_after`
/// its sequence number read again after the copy.
pub(crate) fn whole(copy: &[u8], seq_after: u32, depth: usize) -> Option<Vec<u64>> {
    let (seq, n) = (u32_at(copy, 0)?, u32_at(copy, 4)? as usize);
    if seq % 2 == 1 || seq != seq_after || n == 0 {
        return None;
    }
    (0..n.min(depth)).map(|i| u64_at(copy, 8 + i * 8)).collect()
}

/// The live descriptors' slots in `pid`'s table: return addresses by descriptor,
/// and how many descriptors the agent could not record. None: no table.
pub fn slots(pid: i32, live: &[i32]) -> Option<(HashMap<i32, Vec<u64>>, u64)> {
    let base = find(pid, MAPPING)?;
    let mut head = [0u8; HEADER];
    if !read_remote(pid, &[(base, HEADER)], &mut head) {
        return None;
    }
    let h = Header::parse(&head)?;
    let copies = SlotCopies::read(pid, live, h.high, h.slot_size(), |fd| base + h.offset(fd))?;
    let out = copies
        .each()
        .filter_map(|(fd, copy, seq_after)| Some((fd, whole(copy, seq_after, h.depth)?)))
        .collect();
    Some((out, h.overflow))
}

/// The whole table copied and every slot scanned, as the reader did before it read
/// only the live slots: how many slots hold a stack. For `benches/origin_table.rs`.
pub fn whole_table_scan(pid: i32) -> Option<usize> {
    let base = find(pid, MAPPING)?;
    let mut head = [0u8; HEADER];
    if !read_remote(pid, &[(base, HEADER)], &mut head) {
        return None;
    }
    let h = Header::parse(&head)?;
    let size = h.slot_size();
    let mut all = vec![0u8; h.slots * size];
    if !read_remote(pid, &[(base + HEADER, all.len())], &mut all) {
        return None;
    }
    Some(
        all.chunks_exact(size)
            .filter(|slot| whole(slot, u32_at(slot, 0).unwrap_or(1), h.depth).is_some())
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(seq: u32, pcs: &[u64]) -> Vec<u8> {
        let mut b = vec![0u8; 8 + 4 * 8];
        b[..4].copy_from_slice(&seq.to_le_bytes());
        b[4..8].copy_from_slice(&(pcs.len() as u32).to_le_bytes());
        for (i, pc) in pcs.iter().enumerate() {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&pc.to_le_bytes());
        }
        b
    }

    #[test]
    fn only_a_slot_unchanged_and_even_across_the_copy_is_whole() {
        assert_eq!(whole(&slot(2, &[10, 20]), 2, 4), Some(vec![10, 20]));
        assert_eq!(whole(&slot(3, &[10]), 3, 4), None, "odd: being written");
        assert_eq!(whole(&slot(2, &[10]), 4, 4), None, "rewritten during the copy");
        assert_eq!(whole(&slot(4, &[]), 4, 4), None, "no live descriptor recorded");
        assert_eq!(
            whole(&slot(2, &[1, 2, 3]), 2, 2),
            Some(vec![1, 2]),
            "bounded by the depth"
        );
        assert_eq!(whole(&slot(2, &[1])[..6], 2, 4), None, "cut short");
    }

    #[test]
    fn neighbouring_slots_are_read_as_one_piece() {
        let at = |fd: usize| 1000 + fd * 10;
        assert_eq!(
            runs(&[3, 4, 5, 9, 11, 12], at, 10),
            vec![(1030, 30), (1090, 10), (1110, 20)]
        );
        assert!(runs(&[], at, 10).is_empty());
    }

    #[test]
    fn a_foreign_or_short_header_is_no_table() {
        let mut b = vec![0u8; HEADER];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        b[16..20].copy_from_slice(&1000u32.to_le_bytes());
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.slots, h.depth, h.high), (MAX_SLOTS, MAX_DEPTH, MAX_SLOTS));
        assert!(Header::parse(&b[..20]).is_none());
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert!(Header::parse(&b).is_none(), "the file-backed table of version 1");
    }
}
