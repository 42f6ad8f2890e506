//! The channel ledger: where each gRPC channel was made, and whether it was
//! closed, for the processes the kernel ledger watches.
//!
//! A gRPC library opens a channel's connections later, on a goroutine or
//! thread of its own, so the stack that makes the socket holds none of the
//! program's frames. The channel's constructor is called from the program's
//! own code, though. fdsoak puts uprobes (entry only) on the library's
//! channel constructors and close in the binaries the watched processes run,
//! found by symbol in the ELF symbol table or, for a stripped Go binary, in
//! its `.gopclntab`; the programs in `ledger.bpf.c` send one event per hit of
//! a watched process, and a thread of fdsoak's pairs them here:
//!
//! - **grpc-go** (Go 1.17 and later, whose register ABI the probes read):
//!   `grpc.Dial`, `grpc.DialContext` and `grpc.NewClient` give the target
//!   and the creating stack; `grpc.chainUnaryClientInterceptors`, which every
//!   constructor calls with the new `*ClientConn` on the same goroutine,
//!   gives the channel's handle; `(*ClientConn).Close` its close. A
//!   constructor that calls another (`Dial` → `DialContext` → `NewClient`)
//!   is one channel: the inner call's stack continues the outer's.
//! - **gRPC's C core** (C++'s grpc++, Ruby, PHP), in `libgrpc.so` or linked
//!   into the program: `grpc_channel_create` (and the older
//!   `grpc_insecure_channel_create` / `grpc_secure_channel_create`) give the
//!   target and stack at entry and the channel at return (C code may take
//!   return probes), paired by thread; `grpc_channel_destroy` its close.
//!   Python's grpcio links the core into its extension with the symbols
//!   hidden: its agent's channel records serve instead.
//!
//! Per creating site (process, stack, target) it counts channels created
//! and closed. A close whose channel was made before the probes were in
//! place (an attached process) is counted apart, per process.
//! Bounded: at most [`MAX_LIVE`] live channels and [`MAX_SITES`] sites are
//! followed; past that, new ones are counted as dropped.

use crate::origin::gopclntab::GoTable;
use aya::maps::{MapData, RingBuf};
use aya::programs::UProbe;
use aya::Ebpf;
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Live channels followed at most.
pub(crate) const MAX_LIVE: usize = 262_144;
/// Creating sites kept at most.
pub(crate) const MAX_SITES: usize = 4096;

/// The probes, by the library's function and the program that reads it.
const GO_PROBES: [(&str, &str); 5] = [
    ("google.golang.org/grpc.Dial", "chan_go_dial01"),
    ("google.golang.org/grpc.NewClient", "chan_go_dial01"),
    ("google.golang.org/grpc.DialContext", "chan_go_dial23"),
    ("google.golang.org/grpc.chainUnaryClientInterceptors", "chan_go_made"),
    ("google.golang.org/grpc.(*ClientConn).Close", "chan_go_close"),
];

/// gRPC's C core, in a shared library or linked into the program: the constructors
/// (entry for the dial, return for the channel) and the close.
const C_PROBES: [(&str, &str); 7] = [
    ("grpc_channel_create", "chan_c_dial0"),
    ("grpc_channel_create", "chan_c_made"),
    ("grpc_insecure_channel_create", "chan_c_dial0"),
    ("grpc_insecure_channel_create", "chan_c_made"),
    ("grpc_secure_channel_create", "chan_c_dial1"),
    ("grpc_secure_channel_create", "chan_c_made"),
    ("grpc_channel_destroy", "chan_c_close"),
];

/// The programs' names, for loading.
pub(crate) const PROGRAMS: [&str; 8] = [
    "chan_go_dial01",
    "chan_go_dial23",
    "chan_go_made",
    "chan_go_close",
    "chan_c_dial0",
    "chan_c_dial1",
    "chan_c_made",
    "chan_c_close",
];

/// `struct chan_event` in ledger.bpf.c.
const TARGET_BYTES: usize = 128;
const HEADER: usize = 48;
const DIAL: u32 = 1;
const MADE: u32 = 2;
const CLOSE: u32 = 3;

/// One creating site of one process: where channels to `target` were made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteKey {
    pub tgid: u32,
    /// Return addresses, innermost (the constructor's entry) first.
    pub pcs: Arc<[u64]>,
    pub target: String,
}

/// Channels a site made, and how many of them were closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub closed: u64,
}

/// What the draining thread pairs.
#[derive(Default)]
struct Book {
    /// The latest dial not yet tied to its channel, per (process, goroutine).
    pending: HashMap<(u32, u64), SiteKey>,
    /// Live channels, by (process, handle): where each was made.
    live: HashMap<(u32, u64), SiteKey>,
    sites: HashMap<SiteKey, Counts>,
    /// Per process, closes of channels made before the probes were in place.
    closed_unknown: HashMap<u32, u64>,
    dropped: u64,
}

/// One event, as the program wrote it.
struct Event {
    kind: u32,
    tgid: u32,
    handle: u64,
    g: u64,
    ns: u64,
    target: String,
    /// The stack, innermost first, with the caller the frame-pointer walk from a
    /// function's entry skips (the function has not saved its frame yet) put back.
    pcs: Vec<u64>,
    /// A dial whose stack was also copied for the unwinder (C code without frame pointers).
    sampled: bool,
}

impl Event {
    fn parse(b: &[u8]) -> Option<Event> {
        let u32_at = |at: usize| Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?));
        let len = (u32_at(40)? as usize).min(TARGET_BYTES - 1);
        let stack = (u32_at(44)? as usize) & !7;
        let target = b.get(HEADER..HEADER + len)?;
        let raw = b.get(HEADER + TARGET_BYTES..HEADER + TARGET_BYTES + stack)?;
        let mut pcs: Vec<u64> = raw
            .chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(u64::from_ne_bytes))
            .take_while(|pc| *pc != 0)
            .collect();
        let ret = u64_at(32)?;
        if ret != 0 && !pcs.is_empty() && pcs.get(1) != Some(&ret) {
            pcs.insert(1, ret);
        }
        let (kind, handle) = (u32_at(0)?, u64_at(8)?);
        Some(Event {
            kind,
            tgid: u32_at(4)?,
            handle,
            g: u64_at(16)?,
            ns: u64_at(24)?,
            target: String::from_utf8_lossy(target).into_owned(),
            pcs,
            sampled: kind == DIAL && handle == 1,
        })
    }
}

impl Book {
    fn take(&mut self, e: &Event) {
        match e.kind {
            DIAL => self.dial(e),
            MADE => {
                if let Some(site) = self.pending.remove(&(e.tgid, e.g)) {
                    if self.live.len() < MAX_LIVE {
                        self.live.insert((e.tgid, e.handle), site);
                    } else {
                        self.dropped += 1;
                    }
                }
            }
            CLOSE => match self.live.remove(&(e.tgid, e.handle)) {
                Some(site) => {
                    if let Some(c) = self.sites.get_mut(&site) {
                        c.closed += 1;
                    }
                }
                None => *self.closed_unknown.entry(e.tgid).or_default() += 1,
            },
            _ => {}
        }
    }

    /// A constructor's entry: a new channel, unless it is a constructor the one
    /// pending on this goroutine called (its stack continues that one's).
    fn dial(&mut self, e: &Event) {
        let pcs = e.pcs.clone();
        if let Some(outer) = self.pending.get(&(e.tgid, e.g)) {
            let below = outer.pcs.get(1..).unwrap_or_default();
            if pcs.len() > outer.pcs.len() && !below.is_empty() && pcs.ends_with(below) {
                return;
            }
        }
        let site = SiteKey {
            tgid: e.tgid,
            pcs: pcs.into(),
            target: e.target.clone(),
        };
        if !self.sites.contains_key(&site) && self.sites.len() >= MAX_SITES {
            self.dropped += 1;
            return;
        }
        self.sites.entry(site.clone()).or_default().created += 1;
        self.pending.insert((e.tgid, e.g), site);
    }
}

/// The channel ledger's thread and what it paired.
pub(crate) struct Channels {
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The binaries probed already, by (device, inode).
    probed: Mutex<HashSet<(u64, u64)>>,
}

/// One process's channel sites, for the table.
#[derive(Debug, Default)]
pub struct ProcessChannels {
    pub sites: Vec<(SiteKey, Counts)>,
}

impl Channels {
    /// Drains `ring` on a thread of its own until dropped; `unwound` gives the stack the
    /// unwinder recovered for a dial of (process, time), once it has.
    pub(crate) fn start(ring: RingBuf<MapData>, unwound: Unwound) -> std::io::Result<Channels> {
        let book = Arc::new(Mutex::new(Book::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, halt) = (book.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("fdsoak-channels".into())
            .spawn(move || drain(ring, &b, &halt, &unwound))?;
        Ok(Channels {
            book,
            stop,
            thread: Some(thread),
            probed: Mutex::default(),
        })
    }

    /// `pid`'s channel sites so far.
    pub(crate) fn read(&self, pid: i32) -> ProcessChannels {
        let book = crate::domain::lock(&self.book);
        let tgid = pid as u32;
        ProcessChannels {
            sites: book
                .sites
                .iter()
                .filter(|(k, _)| k.tgid == tgid)
                .map(|(k, c)| (k.clone(), *c))
                .collect(),
        }
    }

    /// Per process, the closes of channels made before the probes were in place.
    pub(crate) fn closed_unknown(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = crate::domain::lock(&self.book)
            .closed_unknown
            .iter()
            .map(|(p, n)| (*p, *n))
            .collect();
        v.sort_unstable();
        v
    }

    /// Channels and sites not followed, the tables full.
    pub(crate) fn dropped(&self) -> u64 {
        crate::domain::lock(&self.book).dropped
    }

    /// Puts the probes on the binary `pid` runs and on the gRPC libraries it maps, once
    /// per file; what it found in each file not probed before, or why not.
    pub(crate) fn probe(&self, ebpf: &mut Ebpf, pid: i32) -> Vec<Result<Probed, String>> {
        let exe = format!("/proc/{pid}/exe");
        let mut files = vec![exe];
        // The C core's shared libraries (libgrpc.so), by name: every other library is left unread.
        files.extend(
            crate::origin::elfmap::executable_mappings(pid as u32)
                .into_iter()
                .filter(|m| m.path.rsplit('/').next().is_some_and(|n| n.contains("grpc")))
                .map(|m| format!("/proc/{pid}/root{}", m.path)),
        );
        files.dedup();
        let mut out = Vec::new();
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            let id = (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            );
            if !crate::domain::lock(&self.probed).insert(id) {
                continue;
            }
            out.push(probe_file(ebpf, &file));
        }
        out
    }
}

/// What [`Channels::probe`] did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probed {
    GrpcGo {
        probes: usize,
    },
    /// A grpc-go binary built by Go before 1.17 (arguments on the stack): not probed.
    OldGo,
    /// gRPC's C core, in a library or linked into the program.
    CCore {
        probes: usize,
    },
    /// No gRPC library fdsoak knows in it.
    NoLibrary,
}

/// Puts the probes on `file`, by what it holds.
fn probe_file(ebpf: &mut Ebpf, file: &str) -> Result<Probed, String> {
    // Read as needed (the symbol tables, or `.gopclntab`), not whole: a binary may be large.
    let cache = object::ReadCache::new(std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?);
    let Ok(elf) = object::File::parse(&cache) else {
        return Ok(Probed::NoLibrary);
    };
    if let Some(found) = go_functions(&elf) {
        if !found.register_abi {
            return Ok(Probed::OldGo);
        }
        let probes = attach(ebpf, file, &GO_PROBES, &found.offsets)?;
        return Ok(Probed::GrpcGo { probes });
    }
    let offsets = c_functions(&elf);
    if offsets.is_empty() {
        return Ok(Probed::NoLibrary);
    }
    let probes = attach(ebpf, file, &C_PROBES, &offsets)?;
    Ok(Probed::CCore { probes })
}

/// Attaches each (function, program) of `probes` whose function `offsets` holds.
fn attach(
    ebpf: &mut Ebpf,
    file: &str,
    probes: &[(&'static str, &str)],
    offsets: &HashMap<&'static str, u64>,
) -> Result<usize, String> {
    let mut attached = 0;
    for (function, program) in probes {
        let Some(offset) = offsets.get(function) else {
            continue;
        };
        let p: &mut UProbe = ebpf
            .program_mut(program)
            .ok_or_else(|| format!("no program {program}"))?
            .try_into()
            .map_err(|e| format!("{program}: {e}"))?;
        p.attach(None, *offset, file, None)
            .map_err(|e| format!("probing {function} in {file}: {}", super::why(&e)))?;
        attached += 1;
    }
    Ok(attached)
}

/// The C core's functions `elf` defines (exported or in its symbol table), at their file offsets.
fn c_functions<'d, R: object::ReadRef<'d>>(elf: &object::File<'d, R>) -> HashMap<&'static str, u64> {
    let wanted = |name: &str| C_PROBES.iter().map(|(f, _)| *f).find(|f| *f == name);
    elf.dynamic_symbols()
        .chain(elf.symbols())
        .filter(|s| s.is_definition())
        .filter_map(|s| Some((wanted(s.name().ok()?)?, file_offset(elf, s.address())?)))
        .collect()
}

impl Drop for Channels {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The unwinder's stack for a channel dial of (process, time), taken once it is there.
pub(crate) type Unwound = Box<dyn Fn(u32, u64) -> Option<Arc<[u64]>> + Send>;

/// How long a dial waits for its unwound stack before its frame-pointer walk serves.
const UNWIND_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn drain(mut ring: RingBuf<MapData>, book: &Mutex<Book>, stop: &AtomicBool, unwound: &Unwound) {
    // Events in order; a sampled dial holds the ones behind it until its stack is unwound.
    let mut queue: std::collections::VecDeque<(Event, std::time::Instant)> = Default::default();
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the ring buffer's descriptor, which outlives the call.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        while let Some(item) = ring.next() {
            queue.extend(Event::parse(&item).map(|e| (e, std::time::Instant::now())));
        }
        let mut book = crate::domain::lock(book);
        while let Some((e, arrived)) = queue.front_mut() {
            if e.sampled {
                match unwound(e.tgid, e.ns) {
                    Some(pcs) if pcs.len() > e.pcs.len() => e.pcs = pcs.to_vec(),
                    Some(_) => {}
                    None if arrived.elapsed() < UNWIND_WAIT => break,
                    None => {}
                }
            }
            if let Some((e, _)) = queue.pop_front() {
                book.take(&e);
            }
        }
        if queue.len() > MAX_LIVE {
            book.dropped += queue.len() as u64;
            queue.clear();
        }
    }
}

/// The grpc-go functions a Go binary holds, by their names in [`GO_PROBES`], at their file offsets.
struct GoFunctions {
    offsets: HashMap<&'static str, u64>,
    /// Built by Go 1.17 or later (`runtime.spillArgs`, or its `.abi0`, is there): arguments in registers.
    register_abi: bool,
}

/// The grpc-go constructors and close in `data`, an ELF file, by its symbol table or, when
/// stripped, its `.gopclntab`; None when it holds none. A vendored copy
/// (`app/vendor/google.golang.org/grpc.Dial`) is found by the name's end.
fn go_functions<'d, R: object::ReadRef<'d>>(elf: &object::File<'d, R>) -> Option<GoFunctions> {
    let wanted = |name: &str| GO_PROBES.iter().map(|(f, _)| *f).find(|f| ends_with_path(name, f));
    let mut addrs: HashMap<&'static str, u64> = HashMap::new();
    let mut register_abi = false;
    let mut any = false;
    for sym in elf.symbols() {
        any = true;
        let Ok(name) = sym.name() else { continue };
        register_abi |= name.starts_with("runtime.spillArgs");
        if let Some(f) = wanted(name) {
            addrs.insert(f, sym.address());
        }
    }
    if !any {
        let table = GoTable::parse(elf.section_by_name(".gopclntab")?.data().ok()?.to_vec())?;
        for (name, addr) in table.functions() {
            register_abi |= name.starts_with("runtime.spillArgs");
            if let Some(f) = wanted(&name) {
                addrs.insert(f, addr);
            }
        }
    }
    if addrs.is_empty() {
        return None;
    }
    let offsets = addrs
        .into_iter()
        .filter_map(|(f, addr)| Some((f, file_offset(elf, addr)?)))
        .collect();
    Some(GoFunctions { offsets, register_abi })
}

/// `name` is `path`, or `path` vendored under another package (`…/vendor/` + path).
fn ends_with_path(name: &str, path: &str) -> bool {
    name == path || name.strip_suffix(path).is_some_and(|pre| pre.ends_with("/vendor/"))
}

/// Where stated address `addr` lies in the file.
fn file_offset<'d, R: object::ReadRef<'d>>(elf: &object::File<'d, R>, addr: u64) -> Option<u64> {
    elf.sections().find_map(|s| {
        let (start, size) = (s.address(), s.size());
        if addr < start || addr >= start + size {
            return None;
        }
        let (offset, _) = s.file_range()?;
        Some(addr - start + offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u32, g: u64, handle: u64, pcs: &[u64]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER + TARGET_BYTES + 8 * 64];
        b[0..4].copy_from_slice(&kind.to_ne_bytes());
        b[4..8].copy_from_slice(&7u32.to_ne_bytes());
        b[8..16].copy_from_slice(&handle.to_ne_bytes());
        b[16..24].copy_from_slice(&g.to_ne_bytes());
        if let Some(ret) = pcs.get(1) {
            b[32..40].copy_from_slice(&ret.to_ne_bytes());
        }
        let target = b"127.0.0.1:9";
        b[40..44].copy_from_slice(&(target.len() as u32).to_ne_bytes());
        b[44..48].copy_from_slice(&((pcs.len() * 8) as u32).to_ne_bytes());
        b[HEADER..HEADER + target.len()].copy_from_slice(target);
        for (i, pc) in pcs.iter().enumerate() {
            let at = HEADER + TARGET_BYTES + 8 * i;
            b[at..at + 8].copy_from_slice(&pc.to_ne_bytes());
        }
        b
    }

    fn take(book: &mut Book, b: &[u8]) {
        book.take(&Event::parse(b).unwrap());
    }

    #[test]
    fn nested_constructors_are_one_channel_and_a_close_finds_its_site() {
        let mut book = Book::default();
        // Dial → DialContext on goroutine 1, from the user's 0x500.
        take(&mut book, &event(DIAL, 1, 0, &[0x100, 0x500, 0x600]));
        take(&mut book, &event(DIAL, 1, 0, &[0x200, 0x110, 0x500, 0x600]));
        take(&mut book, &event(MADE, 1, 0xc0, &[]));
        // A second channel from another site, on goroutine 2.
        take(&mut book, &event(DIAL, 2, 0, &[0x200, 0x700, 0x600]));
        take(&mut book, &event(MADE, 2, 0xd0, &[]));
        take(&mut book, &event(CLOSE, 3, 0xd0, &[]));
        take(&mut book, &event(CLOSE, 3, 0xd0, &[]));
        let counts: HashMap<Vec<u64>, Counts> = book.sites.iter().map(|(k, c)| (k.pcs.to_vec(), *c)).collect();
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert_eq!(counts[&vec![0x100, 0x500, 0x600]], Counts { created: 1, closed: 0 });
        assert_eq!(counts[&vec![0x200, 0x700, 0x600]], Counts { created: 1, closed: 1 });
        assert_eq!(book.closed_unknown[&7], 1, "the second close of one channel");
        // The same site again on a reused goroutine: a new channel, not a nested call.
        take(&mut book, &event(DIAL, 1, 0, &[0x100, 0x500, 0x600]));
        take(&mut book, &event(DIAL, 1, 0, &[0x100, 0x500, 0x600]));
        let site = book.sites.iter().find(|(k, _)| k.pcs[1] == 0x500).unwrap();
        assert_eq!(site.1.created, 3);
        assert_eq!(site.0.target, "127.0.0.1:9");
    }

    #[test]
    fn short_or_malformed_events_are_none() {
        assert!(Event::parse(&[]).is_none());
        assert!(Event::parse(&[0u8; HEADER]).is_none());
        let mut b = event(DIAL, 1, 0, &[1, 2]);
        b[44..48].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(Event::parse(&b).is_none());
    }

    #[test]
    fn the_caller_a_walk_from_the_entry_skips_is_put_back_once() {
        let mut b = event(DIAL, 1, 0, &[0x100, 0x600]);
        b[32..40].copy_from_slice(&0x500u64.to_ne_bytes());
        assert_eq!(Event::parse(&b).unwrap().pcs, vec![0x100, 0x500, 0x600]);
        let b = event(DIAL, 1, 0, &[0x100, 0x500, 0x600]);
        assert_eq!(Event::parse(&b).unwrap().pcs, vec![0x100, 0x500, 0x600]);
    }

    #[test]
    fn vendored_copies_are_found_by_the_names_end() {
        assert!(ends_with_path(
            "google.golang.org/grpc.DialContext",
            "google.golang.org/grpc.DialContext"
        ));
        assert!(ends_with_path(
            "acme/app/vendor/google.golang.org/grpc.DialContext",
            "google.golang.org/grpc.DialContext"
        ));
        assert!(!ends_with_path(
            "acme/google.golang.org/grpc.DialContext",
            "google.golang.org/grpc.DialContext"
        ));
    }
}
