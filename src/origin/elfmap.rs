//! Where a process maps its ELF files: the executable, file-backed
//! mappings of `/proc/PID/maps`, the file behind each (through the
//! process's own view of it), and how a file's stated addresses land in
//! the process. Shared by the unwinder (which places each module's unwind
//! tables) and the Go symbol reader (which turns an address back into one
//! the binary states).

use object::{Object, ObjectSegment};

/// An executable, file-backed mapping of a process.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// The executable, file-backed mappings of `pid`.
pub(crate) fn executable_mappings(pid: u32) -> Vec<Mapping> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_string(),
            })
        })
        .collect()
}

/// The file behind mapping `m` of `pid`, as the process sees it (a container's root, a
/// replaced binary), else by its path.
pub(crate) fn open(pid: u32, m: &Mapping) -> Option<std::fs::File> {
    let by_map = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
    std::fs::File::open(by_map)
        .or_else(|_| std::fs::File::open(format!("/proc/{pid}/root{}", m.path)))
        .ok()
}

/// What to add to an address `elf` states to get where mapping `m` puts it.
///
/// The kernel maps a segment from its page-aligned offset, so the mapping may begin a
/// little before the segment does (and inside the one before it): the segment is the
/// last one whose page-aligned range holds the mapping's offset.
pub(crate) fn base<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>, m: &Mapping) -> Option<u64> {
    let seg = elf
        .segments()
        .filter(|s| {
            let (off, size) = s.file_range();
            off & !0xfff <= m.offset && m.offset < off + size
        })
        .max_by_key(|s| s.file_range().0)?;
    let (seg_off, _) = seg.file_range();
    let svma_at_start = seg.address().wrapping_add(m.offset).wrapping_sub(seg_off);
    Some(m.start.wrapping_sub(svma_at_start))
}
