//! Stacks unwound in fdsoak from the binaries' own unwind tables, for code
//! built without frame pointers (Debian's glibc; Rust and C release builds),
//! where the kernel's frame-pointer walk stops at the libc wrapper.
//!
//! For every descriptor it records, the program also sends the user's
//! registers and the top of the user stack (to its end, 64 KiB at most) through a ring buffer
//! (`samples`), as `perf --call-graph dwarf` does. A thread of fdsoak's
//! drains it and unwinds each sample with the `framehop` crate from the
//! `.eh_frame` of the modules the process maps (read from
//! `/proc/PID/maps`, loaded once per process and again when a frame falls
//! outside them), and keeps the return addresses per (process, descriptor,
//! time made), which [`super::Ledger::read`] joins to the ledger's entry.
//! The walk that recovered more frames wins, per descriptor.
//!
//! It also counts, per process and unwound stack, the descriptors made there.
//! Bounded: at most [`MAX_STACKS`] descriptors' stacks, as many counted
//! stacks, and [`MAX_PROCESSES`] processes' modules are kept; a full table
//! drops new samples (counted).

use crate::origin::elfmap::{self, executable_mappings, Mapping};
use aya::maps::{MapData, RingBuf};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Descriptors whose unwound stacks are kept at most.
pub(super) const MAX_STACKS: usize = 65_536;
/// Processes whose modules are kept loaded at most.
const MAX_PROCESSES: usize = 64;
/// Frames kept per stack, as the kernel's walk keeps.
const MAX_FRAMES: usize = 64;
/// A process's modules are loaded again at most this often when a walk stops early…
const RELOAD: Duration = Duration::from_secs(1);
/// …and this often when a sample's instruction is in none of them.
const RELOAD_UNKNOWN: Duration = Duration::from_millis(20);

/// The header of a sample, as `struct sample` in ledger.bpf.c lays it out.
const HEADER: usize = 48;

/// (thread group, descriptor) → (when it was made, its unwound return addresses).
type Stacks = HashMap<(u32, i32), (u64, Arc<[u64]>)>;
/// (thread group, unwound return addresses) → descriptors made there.
type Made = HashMap<(u32, Arc<[u64]>), u64>;

/// What the draining thread found, shared with the ledger's readers.
#[derive(Default)]
struct Found {
    stacks: Stacks,
    made: Made,
    /// Channel dials' stacks, by (thread group, time), until the channel ledger takes them.
    channels: HashMap<(u32, u64), Arc<[u64]>>,
}

/// The descriptor number of a channel dial's sample (`CHANNEL_FD` in ledger.bpf.c).
pub(super) const CHANNEL_FD: i32 = -2;

/// The draining thread and what it unwound.
pub(super) struct Samples {
    found: Arc<Mutex<Found>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Samples {
    /// Drains `ring` on a thread of its own until dropped.
    pub(super) fn start(ring: RingBuf<MapData>) -> std::io::Result<Samples> {
        let found = Arc::new(Mutex::new(Found::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut drain = Drain {
            ring,
            found: found.clone(),
            dropped: 0,
            processes: HashMap::new(),
        };
        let halt = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fdsoak-unwind".into())
            .spawn(move || drain.run(&halt))?;
        Ok(Samples {
            found,
            stop,
            thread: Some(thread),
        })
    }

    /// The unwound stack of descriptor `fd` of `tgid` made at `ns`, if one was.
    pub(super) fn get(&self, tgid: u32, fd: i32, ns: u64) -> Option<Arc<[u64]>> {
        let found = crate::domain::lock(&self.found);
        found
            .stacks
            .get(&(tgid, fd))
            .filter(|(at, _)| *at == ns)
            .map(|(_, s)| s.clone())
    }

    /// The unwound stack of the channel dial `tgid` made at `ns`, taken once it is there.
    pub(super) fn take_channel(&self, tgid: u32, ns: u64) -> Option<Arc<[u64]>> {
        crate::domain::lock(&self.found).channels.remove(&(tgid, ns))
    }

    /// Per unwound stack of `tgid`, how many descriptors it made (as far as samples found room).
    pub(super) fn made(&self, tgid: u32) -> HashMap<Vec<u64>, u64> {
        let found = crate::domain::lock(&self.found);
        found
            .made
            .iter()
            .filter(|((t, _), _)| *t == tgid)
            .map(|((_, pcs), n)| (pcs.to_vec(), *n))
            .collect()
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Drain {
    ring: RingBuf<MapData>,
    found: Arc<Mutex<Found>>,
    /// Samples not kept, the table full.
    dropped: u64,
    processes: HashMap<u32, Modules>,
}

impl Drain {
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: self.ring.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the ring buffer's descriptor, which outlives the call.
            unsafe { libc::poll(&mut pfd, 1, 50) };
            let mut batch = Vec::new();
            while let Some(item) = self.ring.next() {
                batch.push(item.to_vec());
            }
            for sample in batch {
                self.handle(&sample);
            }
        }
        if self.dropped > 0 {
            tracing::debug!("kernel ledger: {} unwound stacks not kept (table full)", self.dropped);
        }
    }

    fn handle(&mut self, sample: &[u8]) {
        let Some(s) = Sample::parse(sample) else { return };
        let frames = self.unwind(&s);
        if frames.len() < 2 {
            return;
        }
        let mut found = crate::domain::lock(&self.found);
        if s.fd == CHANNEL_FD {
            if found.channels.len() < MAX_STACKS {
                found.channels.insert((s.tgid, s.ns), frames.into());
            } else {
                self.dropped += 1;
            }
            return;
        }
        // One copy of each distinct stack, shared by its count and its descriptors.
        let mut key = (s.tgid, Arc::<[u64]>::from(frames));
        if let Some((known, _)) = found.made.get_key_value(&key) {
            key.1 = known.1.clone();
        }
        let frames = key.1.clone();
        if found.made.len() < MAX_STACKS || found.made.contains_key(&key) {
            *found.made.entry(key).or_default() += 1;
        }
        if found.stacks.len() >= MAX_STACKS && !found.stacks.contains_key(&(s.tgid, s.fd)) {
            self.dropped += 1;
            return;
        }
        found.stacks.insert((s.tgid, s.fd), (s.ns, frames));
    }

    fn unwind(&mut self, s: &Sample<'_>) -> Vec<u64> {
        if !self.processes.contains_key(&s.tgid) && self.processes.len() >= MAX_PROCESSES {
            // Processes that are gone first, else any.
            let gone: Vec<u32> = self
                .processes
                .keys()
                .copied()
                .filter(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
                .collect();
            let evict = if gone.is_empty() {
                self.processes.keys().copied().take(1).collect()
            } else {
                gone
            };
            for p in evict {
                self.processes.remove(&p);
            }
        }
        let modules = self.processes.entry(s.tgid).or_insert_with(|| Modules::load(s.tgid));
        // A module mapped since they were loaded (the dynamic loader's libraries, a
        // dlopen), or a process that exec'd: load them again, not too often.
        let unknown = !modules.covers(s.ip) && modules.loaded.elapsed() >= RELOAD_UNKNOWN;
        if unknown {
            *modules = Modules::load(s.tgid);
        }
        let mut frames = modules.walk(s);
        if frames.len() < 2 && !unknown && modules.loaded.elapsed() >= RELOAD {
            *modules = Modules::load(s.tgid);
            frames = modules.walk(s);
        }
        frames
    }
}

/// One sample from the ring buffer.
struct Sample<'a> {
    tgid: u32,
    fd: i32,
    ns: u64,
    ip: u64,
    sp: u64,
    fp: u64,
    stack: &'a [u8],
}

impl Sample<'_> {
    fn parse(b: &[u8]) -> Option<Sample<'_>> {
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        let size = u32_at(40)? as usize;
        Some(Sample {
            tgid: u32_at(0)?,
            fd: u32_at(4)? as i32,
            ns: u64_at(8)?,
            ip: u64_at(16)?,
            sp: u64_at(24)?,
            fp: u64_at(32)?,
            stack: b.get(HEADER..HEADER + size)?,
        })
    }
}

/// The unwind tables of the modules one process maps.
struct Modules {
    unwinder: UnwinderX86_64<Vec<u8>>,
    cache: CacheX86_64,
    /// The address ranges of the modules loaded.
    ranges: Vec<std::ops::Range<u64>>,
    loaded: Instant,
}

impl Modules {
    fn load(tgid: u32) -> Modules {
        let mut unwinder = UnwinderX86_64::new();
        let mut ranges = Vec::new();
        for m in executable_mappings(tgid) {
            if let Some(module) = module(tgid, &m) {
                ranges.push(module.avma_range());
                unwinder.add_module(module);
            }
        }
        Modules {
            unwinder,
            cache: CacheX86_64::new(),
            ranges,
            loaded: Instant::now(),
        }
    }

    fn covers(&self, addr: u64) -> bool {
        self.ranges.iter().any(|r| r.contains(&addr))
    }

    /// The sample's instruction pointer and return addresses, innermost first.
    fn walk(&mut self, s: &Sample<'_>) -> Vec<u64> {
        let mut read = |addr: u64| {
            let at = addr.checked_sub(s.sp).ok_or(())? as usize;
            let bytes = s.stack.get(at..at + 8).ok_or(())?;
            Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let regs = UnwindRegsX86_64::new(s.ip, s.sp, s.fp);
        let mut frames = Vec::new();
        let mut it = self.unwinder.iter_frames(s.ip, regs, &mut self.cache, &mut read);
        while let Ok(Some(f)) = it.next() {
            frames.push(f.address());
            if frames.len() == MAX_FRAMES {
                break;
            }
        }
        frames
    }
}

/// The unwind tables of the ELF file behind mapping `m`, placed where the process maps it.
fn module(tgid: u32, m: &Mapping) -> Option<Module<Vec<u8>>> {
    let cache = object::ReadCache::new(elfmap::open(tgid, m)?);
    let elf = object::File::parse(&cache).ok()?;
    let base_avma = elfmap::base(&elf, m)?;
    let section = |name: &str| {
        let s = elf.section_by_name(name)?;
        Some((s.address()..s.address() + s.size(), s.data().ok()?.to_vec()))
    };
    let (eh_frame_svma, eh_frame) = section(".eh_frame").unzip();
    let (eh_frame_hdr_svma, eh_frame_hdr) = section(".eh_frame_hdr").unzip();
    eh_frame.as_ref()?;
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: elf
            .section_by_name(".text")
            .map(|s| s.address()..s.address() + s.size()),
        got_svma: elf.section_by_name(".got").map(|s| s.address()..s.address() + s.size()),
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        ..Default::default()
    };
    Some(Module::new(m.path.clone(), m.start..m.end, base_avma, info))
}
