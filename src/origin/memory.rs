//! Reading what an agent keeps in its process's own memory: each agent
//! holds its table in a private mapping of a named memfd (its descriptor
//! closed once mapped), so publishing costs the process no descriptor, no
//! file and no system call, and a child after fork gets a copy-on-write
//! copy. fdsoak finds the mapping in `/proc/PID/maps` and reads it with
//! `process_vm_readv`, which takes the rights a debugger needs to attach
//! (root, or the same user and, under Yama's `ptrace_scope` 1, a descendant:
//! every process that carries an agent is one fdsoak started).

/// `(address, length)` pieces read per system call.
const BATCH: usize = 512;

/// The start address of the memfd mapping named `name` in `pid`, if it has one.
pub fn find(pid: i32, name: &str) -> Option<usize> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let path = format!("/memfd:{name}");
    let line = maps
        .lines()
        .find(|l| l.split_whitespace().nth(5).is_some_and(|p| p == path))?;
    let (start, _) = line.split_once('-')?;
    usize::from_str_radix(start, 16).ok()
}

/// `(address, length)` pieces covering the slots of sorted `fds`, one per run of
/// consecutive numbers, in order.
pub fn runs(fds: &[usize], addr: impl Fn(usize) -> usize, size: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut prev = None;
    for &fd in fds {
        match (prev, out.last_mut()) {
            (Some(p), Some(last)) if fd == p + 1 => last.1 += size,
            _ => out.push((addr(fd), size)),
        }
        prev = Some(fd);
    }
    out
}

/// The fixed-size slots of some descriptors in an agent's table, each copied twice, so
/// that a slot its thread rewrote meanwhile can be told from a whole one.
pub struct SlotCopies {
    fds: Vec<usize>,
    size: usize,
    copies: Vec<u8>,
    again: Vec<u8>,
}

impl SlotCopies {
    /// Reads the slots of `live`'s descriptors below `high` from `pid`, slot `fd` being
    /// `size` bytes at `at(fd)`; neighbouring slots in one piece (a process's numbers
    /// are mostly dense, so the copy costs a few system calls however many it holds).
    pub fn read(pid: i32, live: &[i32], high: usize, size: usize, at: impl Fn(usize) -> usize) -> Option<SlotCopies> {
        let mut fds: Vec<usize> = live
            .iter()
            .filter_map(|&fd| usize::try_from(fd).ok())
            .filter(|&fd| fd < high)
            .collect();
        fds.sort_unstable();
        fds.dedup();
        let pieces = runs(&fds, at, size);
        let mut copies = vec![0u8; fds.len() * size];
        let mut again = vec![0u8; fds.len() * size];
        if !read_remote(pid, &pieces, &mut copies) || !read_remote(pid, &pieces, &mut again) {
            return None;
        }
        Some(SlotCopies {
            fds,
            size,
            copies,
            again,
        })
    }

    /// Each descriptor, its slot as first copied, and the slot's sequence number (its
    /// first four bytes) as copied again.
    pub fn each(&self) -> impl Iterator<Item = (i32, &[u8], u32)> + '_ {
        self.fds.iter().enumerate().filter_map(|(i, &fd)| {
            let at = i * self.size;
            let seq = u32::from_le_bytes(self.again.get(at..at + 4)?.try_into().ok()?);
            Some((fd as i32, &self.copies[at..at + self.size], seq))
        })
    }
}

/// The little-endian u32 at `at` in a table's bytes, if they reach that far.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The little-endian u64 at `at`, likewise.
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Reads `(address, length)` pieces of `pid`'s memory into `out`, laid end to end;
/// false if anything was not read.
pub fn read_remote(pid: i32, pieces: &[(usize, usize)], out: &mut [u8]) -> bool {
    let mut done = 0;
    for chunk in pieces.chunks(BATCH) {
        let len: usize = chunk.iter().map(|p| p.1).sum();
        let Some(dst) = out.get_mut(done..done + len) else {
            return false;
        };
        let local = libc::iovec {
            iov_base: dst.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote: Vec<libc::iovec> = chunk
            .iter()
            .map(|&(addr, len)| libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            })
            .collect();
        // SAFETY: `local` covers `dst`, which is borrowed mutably for the call; the
        // remote iovecs name another process's memory and are only read by the kernel.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), remote.len() as libc::c_ulong, 0) };
        if n != len as isize {
            return false;
        }
        done += len;
    }
    true
}

/// Writes `bytes` at `addr` in `pid`'s memory (an agent's own table: its pause word);
/// false if not all were written.
pub fn write_remote(pid: i32, addr: usize, bytes: &[u8]) -> bool {
    let local = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: `local` covers `bytes`, which the kernel only reads; `remote` names
    // another process's memory, which the kernel checks and writes.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    n == bytes.len() as isize
}

/// A blob an agent publishes whole at `base`: a 24-byte header (8 bytes of
/// `magic`, a sequence number odd while it is rewritten, the length) and the
/// bytes. Read again if it changed during the copy; None if it never held
/// still, is longer than `max`, or is not the agent's.
pub fn read_blob(pid: i32, base: usize, magic: &[u8; 8], max: usize) -> Option<Vec<u8>> {
    for _ in 0..5 {
        let mut head = [0u8; 24];
        if !read_remote(pid, &[(base, 24)], &mut head) || &head[..8] != magic {
            return None;
        }
        let (seq, len) = (u64_at(&head, 8)?, u64_at(&head, 16)?);
        if len > max as u64 {
            return None;
        }
        if seq % 2 == 1 {
            std::thread::yield_now();
            continue;
        }
        let mut data = vec![0u8; len as usize];
        let mut after = [0u8; 8];
        if !read_remote(pid, &[(base + 24, len as usize)], &mut data) || !read_remote(pid, &[(base + 8, 8)], &mut after)
        {
            return None;
        }
        if u64::from_le_bytes(after) == seq {
            return Some(data);
        }
    }
    None
}

/// A channel ledger's table as the agents lay it out in a memfd (`native/jvm.c`
/// for grpc-java, `native/node.c` for grpc-js): a 64-byte header (magic,
/// version 1, then as u32s the slot count, the body's size in units and the
/// target's size), then fixed slots, each a [`SLOT_HEAD`]-byte head
/// ({hash u64, ready u32, count u32, created u64, closed u64}), the body
/// (a Java stack, a JavaScript stack's text) and the target.
pub(crate) struct LedgerLayout {
    pub mapping: &'static str,
    pub magic: &'static [u8; 8],
    pub max_slots: usize,
    /// Bytes per unit of the body's size.
    pub unit: usize,
    pub max_units: usize,
    pub max_target: usize,
}

/// The bytes of a slot's head.
pub(crate) const SLOT_HEAD: usize = 32;
const LEDGER_HEADER: usize = 64;

/// A ledger's slots as read: the body's size in units, each slot's size, and every slot's bytes.
pub(crate) struct LedgerSlots {
    pub units: usize,
    pub size: usize,
    pub bytes: Vec<u8>,
}

impl LedgerLayout {
    /// Reads `pid`'s table; None when it keeps none, or its header is not this layout's.
    /// Every size is bounded before use: the memory is the process's to write.
    pub(crate) fn read(&self, pid: i32) -> Option<LedgerSlots> {
        let base = find(pid, self.mapping)?;
        let mut head = [0u8; LEDGER_HEADER];
        if !read_remote(pid, &[(base, LEDGER_HEADER)], &mut head) || &head[..8] != self.magic || u32_at(&head, 8)? != 1
        {
            return None;
        }
        let slots = (u32_at(&head, 12)? as usize).min(self.max_slots);
        let units = (u32_at(&head, 16)? as usize).min(self.max_units);
        let target = (u32_at(&head, 20)? as usize).min(self.max_target);
        let size = SLOT_HEAD + units * self.unit + target;
        let mut bytes = vec![0u8; slots * size];
        if !read_remote(pid, &[(base + LEDGER_HEADER, bytes.len())], &mut bytes) {
            return None;
        }
        Some(LedgerSlots { units, size, bytes })
    }
}

/// A written slot's head: how many channels were made and closed at its site, and its own count.
pub(crate) struct SlotHead {
    pub created: u64,
    pub closed: u64,
    pub count: u32,
}

/// The head of slot `s`; None for a slot never claimed or not yet written.
pub(crate) fn slot_head(s: &[u8]) -> Option<SlotHead> {
    if u64_at(s, 0)? == 0 || u32_at(s, 8)? != 1 {
        return None;
    }
    Some(SlotHead {
        count: u32_at(s, 12)?,
        created: u64_at(s, 16)?,
        closed: u64_at(s, 24)?,
    })
}

/// A NUL-ended string, lossily.
pub(crate) fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
