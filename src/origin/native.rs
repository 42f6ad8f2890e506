//! The native agent's table, read and symbolized: `<pid>.fdtab` holds, per
//! descriptor number, the return addresses of the stack that created it
//! (see `agent.c`); here they become frames with the `blazesym` crate, from
//! the process's own maps and its files' symbols and debug info: file:line
//! where there is debug info, the symbol otherwise. Symbolization happens in
//! fdsoak, never in the process.
//!
//! The file is the agent's to write (a process under test): it is read
//! bounded, a slot caught mid-write is skipped, and anything malformed is
//! no table.

use crate::vocab::{Frame, OriginVia, Stack};
use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"FDSOAKT1";
/// The header: magic, version, slots, depth, pid (u32 each), overflow (u64), 32 bytes spare.
const HEADER: usize = 8 + 4 * 4 + 8 + 32;
/// At most this many slots and this deep a stack are read, whatever the header says
/// (the agent writes 65,536 slots of 48 addresses).
const MAX_SLOTS: usize = 1 << 16;
const MAX_DEPTH: usize = 64;
/// So at most this many bytes are read.
const MAX_BYTES: u64 = (HEADER + MAX_SLOTS * (8 + MAX_DEPTH * 8)) as u64;

/// One process's native origins: descriptor → creating stack.
#[derive(Debug, Default)]
pub struct NativeTable {
    pub fds: HashMap<i32, Arc<Stack>>,
    /// Descriptors the agent could not record (past its last slot).
    pub overflow: u64,
}

/// Return addresses, by descriptor, as the agent wrote them.
pub(crate) fn slots(bytes: &[u8]) -> Option<(HashMap<i32, Vec<u64>>, u64)> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    if bytes.get(..8)? != MAGIC || u32_at(8)? != 1 {
        return None;
    }
    let slots = (u32_at(12)? as usize).min(MAX_SLOTS);
    let depth = (u32_at(16)? as usize).min(MAX_DEPTH);
    let overflow = u64_at(24)?;
    let size = 8 + depth * 8;
    let mut out = HashMap::new();
    for fd in 0..slots {
        let at = HEADER + fd * size;
        let (Some(seq), Some(n)) = (u32_at(at), u32_at(at + 4)) else {
            break;
        };
        // Odd: caught while its thread wrote it.
        if n == 0 || seq % 2 == 1 {
            continue;
        }
        let pcs: Option<Vec<u64>> = (0..(n as usize).min(depth)).map(|i| u64_at(at + 8 + i * 8)).collect();
        if let Some(pcs) = pcs {
            out.insert(fd as i32, pcs);
        }
    }
    Some((out, overflow))
}

/// Symbolizes the stacks of native origin tables, keeping what it read of each file for the run.
pub struct Symbols {
    symbolizer: Symbolizer,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Symbols")
    }
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            symbolizer: Symbolizer::new(),
        }
    }
}

impl Symbols {
    /// The table `pid` published in `dir`, symbolized, if there is one.
    pub fn read(&self, dir: &Path, pid: i32) -> Option<NativeTable> {
        use std::io::Read;
        let path = dir.join(format!("{pid}.fdtab"));
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .ok()?
            .take(MAX_BYTES)
            .read_to_end(&mut bytes)
            .ok()?;
        let (raw, overflow) = slots(&bytes)?;
        Some(self.symbolize(pid, raw, overflow))
    }

    fn symbolize(&self, pid: i32, raw: HashMap<i32, Vec<u64>>, overflow: u64) -> NativeTable {
        // Each distinct stack once, each distinct address once.
        let mut stacks: HashMap<Vec<u64>, Arc<Stack>> = HashMap::new();
        let mut addrs: Vec<u64> = raw.values().flatten().map(|a| a.saturating_sub(1)).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut process = Process::new((pid as u32).into());
        // `/proc/PID/map_files` (which still opens a replaced binary) needs CAP_SYS_ADMIN;
        // without root, the paths in `/proc/PID/maps` serve.
        process.map_files = rustix::process::geteuid().is_root();
        let src = Source::Process(process);
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let mut frames: HashMap<u64, Vec<Frame>> = HashMap::new();
        if let Ok(syms) = self.symbolizer.symbolize(&src, Input::AbsAddr(&addrs)) {
            for (addr, sym) in addrs.iter().zip(syms) {
                frames.insert(*addr, to_frames(&sym, exe.as_deref()));
            }
        }
        let mut fds = HashMap::new();
        for (fd, pcs) in raw {
            let stack = stacks
                .entry(pcs.clone())
                .or_insert_with(|| {
                    let frames = pcs
                        .iter()
                        .flat_map(|pc| frames.get(&pc.saturating_sub(1)).cloned().unwrap_or_default())
                        .collect();
                    Arc::new(Stack {
                        frames,
                        via: OriginVia::Opened,
                    })
                })
                .clone();
            fds.insert(fd, stack);
        }
        NativeTable { fds, overflow }
    }
}

/// One address's frames, innermost (inlined) first; none for the agent's own code.
fn to_frames(sym: &Symbolized<'_>, exe: Option<&Path>) -> Vec<Frame> {
    let Symbolized::Sym(s) = sym else {
        return vec![Frame {
            function: "??".into(),
            file: String::new(),
            line: 0,
            library: true,
        }];
    };
    let module = s.module.as_deref().map(Path::new);
    if module.is_some_and(|m| m.to_string_lossy().ends_with(super::NATIVE_AGENT_FILE)) {
        return Vec::new();
    }
    // A shared library's frames are a library's; so are, in the program, the
    // standard library's and its dependencies' (by where their source lives).
    let shared = match (module, exe) {
        (Some(m), Some(e)) => m != e && !module_is_exe(m, e),
        _ => false,
    };
    let frame = |name: &str, info: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        let file = info.map(|c| c.to_path().display().to_string()).unwrap_or_default();
        // Without debug info for it (a dependency built without, a stripped library),
        // a frame names no place in the program's own source: count it a library's.
        let library = shared || file.is_empty() || is_library_source(&file) || is_runtime(name);
        Frame {
            function: name.to_string(),
            file,
            line: info.and_then(|c| c.line).unwrap_or(0),
            library,
        }
    };
    let mut out: Vec<Frame> = s
        .inlined
        .iter()
        .rev()
        .map(|f| frame(&f.name, f.code_info.as_ref()))
        .collect();
    out.push(frame(&s.name, s.code_info.as_deref()));
    out
}

/// `/proc/PID/map_files/…` names the executable by its mapping, not its path.
fn module_is_exe(module: &Path, exe: &Path) -> bool {
    std::fs::canonicalize(module).is_ok_and(|m| std::fs::canonicalize(exe).is_ok_and(|e| e == m))
}

/// A function of Rust's standard library, by name (its generic instances may carry no file).
fn is_runtime(name: &str) -> bool {
    let name = name.trim_start_matches('<');
    ["std::", "core::", "alloc::"].iter().any(|p| name.starts_with(p))
}

/// Source of Rust's standard library, of crates from a registry, or of the C library.
fn is_library_source(file: &str) -> bool {
    file.contains("/rustc/")
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.starts_with("/usr/include/")
        || file.starts_with("./") && file.contains("glibc")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(slots: u32, depth: u32, entries: &[(usize, u32, &[u64])]) -> Vec<u8> {
        let size = 8 + depth as usize * 8;
        let mut b = vec![0u8; HEADER + slots as usize * size];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&slots.to_le_bytes());
        b[16..20].copy_from_slice(&depth.to_le_bytes());
        b[24..32].copy_from_slice(&7u64.to_le_bytes());
        for (fd, seq, pcs) in entries {
            let at = HEADER + fd * size;
            b[at..at + 4].copy_from_slice(&seq.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&(pcs.len() as u32).to_le_bytes());
            for (i, pc) in pcs.iter().enumerate() {
                b[at + 8 + i * 8..at + 16 + i * 8].copy_from_slice(&pc.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn slots_mid_write_and_empty_ones_are_skipped() {
        let b = table(8, 4, &[(3, 2, &[10, 20]), (4, 3, &[30]), (5, 4, &[])]);
        let (slots, overflow) = slots(&b).unwrap();
        assert_eq!(slots.get(&3), Some(&vec![10, 20]));
        assert!(!slots.contains_key(&4), "odd sequence: being written");
        assert!(!slots.contains_key(&5));
        assert_eq!(overflow, 7);
    }

    #[test]
    fn a_truncated_or_foreign_file_is_no_table() {
        let b = table(8, 4, &[(3, 2, &[10, 20])]);
        assert!(slots(&b[..20]).is_none());
        assert!(slots(b"FDSOAKT2").is_none());
        // Cut in the middle of the slots: what was whole is kept.
        let (s, _) = slots(&b[..HEADER + 3 * 40 + 12]).unwrap();
        assert!(s.is_empty());
    }
}
