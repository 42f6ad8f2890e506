//! The kernel ledger: origins for any process, with nothing injected.
//!
//! With `--origin` and the rights to load eBPF (root, or CAP_BPF with
//! CAP_PERFMON), fdsoak loads the programs built from `ledger.bpf.c` onto
//! the raw tracepoints `sys_enter`, `sys_exit`, `sched_process_fork` and
//! `sched_process_exit`. For the thread groups it watches (and every child
//! they start, from its first instruction) the kernel keeps, per live
//! descriptor, the user stack that made it and when, and per stack how many
//! descriptors it made. Which system calls make or close descriptors is the
//! table [`kinds`] fills from this machine's syscall numbers, so one object
//! serves every architecture. This module loads and attaches the programs,
//! says which processes to watch, and reads a process's entries for the
//! descriptors it holds, each with the better of the kernel's frame-pointer
//! walk and the stack `unwind` recovered from the sample the program copied;
//! [`super::native::Symbols`] names the addresses.
//!
//! The same object holds the channel ledger's uprobes ([`channels`]): where
//! each gRPC channel was made, and whether it was closed.
//!
//! Everything belongs to file descriptors of this process: nothing is pinned,
//! so the programs go when the [`Ledger`] is dropped, or when fdsoak dies.

pub(crate) mod channels;
mod kinds;
#[cfg(target_arch = "x86_64")]
mod unwind;

use aya::maps::{Array, HashMap as BpfMap, MapData, StackTraceMap};
use aya::programs::{RawTracePoint, UProbe};
use aya::{Ebpf, EbpfLoader, Pod};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The programs, built by `scripts/build-bpf` from `ledger.bpf.c` (a test checks they match).
static OBJECT: &[u8] = aya::include_bytes_aligned!("ledger.bpf.o");

/// What the programs' `watched` map says of a thread group: record its descriptors,
/// or only watch the children it starts (fdsoak itself).
const RECORD: u32 = 1;
const FOLLOW: u32 = 2;

/// The stack the program could not take (a negative id).
pub const NO_STACK: i64 = -1;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct FdKey {
    tgid: u32,
    fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct FdMade {
    stack: i64,
    ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct CountKey {
    tgid: u32,
    stack: i32,
    exec: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Exec {
    ns: u64,
    seen: u32,
    pad: u32,
}

// SAFETY: plain `repr(C)` integers with no padding, as the program declares them.
unsafe impl Pod for FdKey {}
unsafe impl Pod for FdMade {}
unsafe impl Pod for CountKey {}
unsafe impl Pod for Exec {}

/// The loaded, attached programs and their maps.
pub struct Ledger {
    ebpf: Mutex<Ebpf>,
    /// Stacks unwound from the samples, where the frame-pointer walk stops early (x86_64).
    #[cfg(target_arch = "x86_64")]
    samples: Option<std::sync::Arc<unwind::Samples>>,
    /// Processes watched only once running (attached), whose older descriptors have no entry.
    attached: Mutex<HashSet<i32>>,
    /// Where the watched processes' gRPC channels were made, and whether closed.
    channels: Option<channels::Channels>,
    /// What the channel ledger could not cover, one sentence each.
    notes: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

/// One process's entries for the descriptors it holds: each one's creating
/// stack, how many descriptors each stack made, and events the ledger lost.
#[derive(Debug, Default)]
pub struct Entries {
    pub fds: HashMap<i32, Walk>,
    /// Descriptors made by each stack over the run, by the kernel's frame-pointer walk…
    pub made_walked: HashMap<Vec<u64>, u64>,
    /// …and by the stacks unwound from the samples (a sample with no room is not counted).
    pub made_unwound: HashMap<Vec<u64>, u64>,
    /// For an attached process: its descriptors with no entry (open before it was watched).
    pub before_attach: Vec<i32>,
    pub lost: u64,
}

/// A creating stack: return addresses, innermost first, and which walk found them.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub pcs: Vec<u64>,
    /// Unwound from the copied stack, not the kernel's frame-pointer walk.
    pub unwound: bool,
}

impl Entries {
    /// How many descriptors the stack of `walk` made over the run, by the walk that found it.
    pub fn made_by(&self, walk: &Walk) -> Option<u64> {
        match walk.unwound {
            true => self.made_unwound.get(&walk.pcs).copied(),
            false => self.made_walked.get(&walk.pcs).copied(),
        }
    }
}

impl Ledger {
    /// Loads and attaches the programs, or says why it cannot.
    pub fn load() -> Result<Ledger, String> {
        let (a0, a1, a2, a3) = kinds::ARG_OFFSETS;
        let (ip, sp, fp) = kinds::REG_OFFSETS;
        let (g0, g1, g2, g3) = kinds::GO_ARG_OFFSETS;
        let mut ebpf = EbpfLoader::new()
            .set_global("go_arg0_offset", &g0, true)
            .set_global("go_arg1_offset", &g1, true)
            .set_global("go_arg2_offset", &g2, true)
            .set_global("go_arg3_offset", &g3, true)
            .set_global("go_g_offset", &kinds::GO_G_OFFSET, true)
            .set_global("regs_size", &kinds::REGS_SIZE, true)
            .set_global("ret_offset", &kinds::RET_OFFSET, true)
            .set_global("arg0_offset", &a0, true)
            .set_global("arg1_offset", &a1, true)
            .set_global("arg2_offset", &a2, true)
            .set_global("arg3_offset", &a3, true)
            .set_global("ip_offset", &ip, true)
            .set_global("sp_offset", &sp, true)
            .set_global("fp_offset", &fp, true)
            .load(OBJECT)
            .map_err(|e| why(&e))?;
        {
            let mut table: Array<_, u32> = Array::try_from(ebpf.map_mut("kinds").ok_or("no kinds map")?)
                .map_err(|e| format!("the kinds map: {e}"))?;
            for (nr, kind) in kinds::table() {
                table
                    .set(nr, kind, 0)
                    .map_err(|e| format!("filling the kinds map: {e}"))?;
            }
        }
        for (program, tracepoint) in [
            ("ledger_fork", "sched_process_fork"),
            ("ledger_exit_process", "sched_process_exit"),
            ("ledger_enter", "sys_enter"),
            ("ledger_exit", "sys_exit"),
        ] {
            let p: &mut RawTracePoint = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("no program {program}"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            p.load().map_err(|e| why(&e))?;
            p.attach(tracepoint).map_err(|e| why(&e))?;
        }
        for program in channels::PROGRAMS {
            let p: &mut UProbe = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("no program {program}"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            p.load().map_err(|e| why(&e))?;
        }
        let ring = ebpf.take_map("samples").ok_or("no samples map")?;
        #[cfg(target_arch = "x86_64")]
        let samples = match aya::maps::RingBuf::try_from(ring) {
            Ok(ring) => unwind::Samples::start(ring).ok().map(std::sync::Arc::new),
            Err(e) => {
                tracing::debug!("the kernel ledger's samples: {e}");
                None
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        drop(ring);
        #[cfg(target_arch = "x86_64")]
        let unwound: channels::Unwound = {
            let samples = samples.clone();
            Box::new(move |tgid, ns| samples.as_ref()?.take_channel(tgid, ns))
        };
        #[cfg(not(target_arch = "x86_64"))]
        let unwound: channels::Unwound = Box::new(|_, _| None);
        let events = ebpf.take_map("chan_events").ok_or("no chan_events map")?;
        let channels = aya::maps::RingBuf::try_from(events)
            .map_err(|e| e.to_string())
            .and_then(|ring| channels::Channels::start(ring, unwound).map_err(|e| e.to_string()))
            .map_err(|e| tracing::debug!("the channel ledger: {e}"))
            .ok();
        let ledger = Ledger {
            ebpf: Mutex::new(ebpf),
            #[cfg(target_arch = "x86_64")]
            samples,
            attached: Mutex::default(),
            channels,
            notes: Mutex::default(),
        };
        // Processes fdsoak starts are watched from their first instruction.
        ledger.set(std::process::id(), FOLLOW)?;
        Ok(ledger)
    }

    /// Records the descriptors `pid` (and every process it starts from now on) makes.
    /// `attached`: a process fdsoak did not start, already running.
    pub fn watch(&self, pid: i32, attached: bool) -> Result<(), String> {
        if pid <= 0 {
            return Ok(());
        }
        if attached {
            crate::domain::lock(&self.attached).insert(pid);
        }
        self.set(pid as u32, RECORD)?;
        self.probe_channels(pid);
        Ok(())
    }

    /// Puts the channel ledger's probes on the binary `pid` runs, if it holds a gRPC
    /// library they know and they are not there yet; what it cannot cover becomes a note.
    pub fn probe_channels(&self, pid: i32) {
        let Some(channels) = &self.channels else {
            tracing::debug!("channel ledger: not running");
            return;
        };
        let probed = channels.probe(&mut crate::domain::lock(&self.ebpf), pid);
        let mut notes = crate::domain::lock(&self.notes);
        for p in probed {
            let note = match p {
                Ok(channels::Probed::OldGo) => format!(
                    "pid {pid} runs grpc-go built by Go before 1.17, whose arguments the channel ledger cannot read: its channels are not followed"
                ),
                Ok(other) => {
                    tracing::debug!("channel ledger: pid {pid}: {other:?}");
                    continue;
                }
                Err(e) => {
                    tracing::debug!("channel ledger: pid {pid}: {e}");
                    format!("the channel ledger cannot follow pid {pid}'s channels: {e}")
                }
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }

    /// `pid`'s channel sites so far: where each was made, to which target, created and closed.
    pub fn channels(&self, pid: i32) -> Option<channels::ProcessChannels> {
        Some(self.channels.as_ref()?.read(pid))
    }

    /// What the channel ledger could not cover, and the channel events it lost.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = crate::domain::lock(&self.notes).clone();
        let ring: u64 = map::<Array<_, u64>>(&crate::domain::lock(&self.ebpf), "chan_lost")
            .map_or(0, |m| m.iter().filter_map(Result::ok).sum());
        for (pid, n) in self
            .channels
            .as_ref()
            .map(channels::Channels::closed_unknown)
            .unwrap_or_default()
        {
            notes.push(format!(
                "pid {pid} closed {n} channels made before the channel ledger's probes were in place (open before fdsoak attached, or in its first instants): they are counted at no site"
            ));
        }
        let lost = ring + self.channels.as_ref().map_or(0, channels::Channels::dropped);
        if lost > 0 {
            notes.push(format!(
                "the channel ledger lost {lost} channel events (its ring or its tables full): some channels are not counted"
            ));
        }
        notes
    }

    fn set(&self, pid: u32, what: u32) -> Result<(), String> {
        let mut ebpf = crate::domain::lock(&self.ebpf);
        let m = ebpf.map_mut("watched").ok_or("no map watched")?;
        let mut watched: BpfMap<_, u32, u32> = BpfMap::try_from(m).map_err(|e| format!("the watched map: {e}"))?;
        watched
            .insert(pid, what, 0)
            .map_err(|e| format!("watching pid {pid}: {e}"))
    }

    /// The entries of `pid` for `live`, the descriptors it holds now.
    pub fn read(&self, pid: i32, live: &[i32]) -> Result<Entries, String> {
        let ebpf = crate::domain::lock(&self.ebpf);
        let tgid = pid as u32;
        let mut ids: HashMap<i64, Vec<u64>> = HashMap::new();
        let mut out = Entries::default();
        {
            let fds: BpfMap<_, FdKey, FdMade> = map(&ebpf, "fds")?;
            let stacks: StackTraceMap<_> = map(&ebpf, "stacks")?;
            // Entries from before the process's last exec are another program's.
            let execs: BpfMap<_, u32, Exec> = map(&ebpf, "execs")?;
            let exec = execs.get(&tgid, 0).unwrap_or_default();
            let attached = crate::domain::lock(&self.attached).contains(&pid);
            for &fd in live {
                let Ok(made) = fds.get(&FdKey { tgid, fd }, 0) else {
                    if attached {
                        out.before_attach.push(fd);
                    }
                    continue;
                };
                if made.ns < exec.ns {
                    continue;
                }
                let walked = ids.entry(made.stack).or_insert_with(|| frames(&stacks, made.stack));
                out.fds.insert(fd, self.better(tgid, fd, made.ns, walked));
            }
            let counts: BpfMap<_, CountKey, u64> = map(&ebpf, "counts")?;
            for (key, n) in counts.iter().flatten() {
                if key.tgid == tgid && key.exec == exec.seen {
                    let stack = i64::from(key.stack);
                    let pcs = ids.entry(stack).or_insert_with(|| frames(&stacks, stack));
                    *out.made_walked.entry(pcs.clone()).or_default() += n;
                }
            }
            out.lost = lost(&ebpf);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(samples) = &self.samples {
            out.made_unwound = samples.made(tgid);
        }
        Ok(out)
    }

    /// For the benchmark: per descriptor of `live` the ledger has, how many frames the
    /// frame-pointer walk and the unwound sample recovered (medians).
    #[doc(hidden)]
    pub fn walk_lengths(&self, pid: i32, live: &[i32]) -> (usize, usize) {
        let ebpf = crate::domain::lock(&self.ebpf);
        let (Ok(fds), Ok(stacks)) = (
            map::<BpfMap<_, FdKey, FdMade>>(&ebpf, "fds"),
            map::<StackTraceMap<_>>(&ebpf, "stacks"),
        ) else {
            return (0, 0);
        };
        let (mut walked, mut unwound) = (Vec::new(), Vec::new());
        for &fd in live {
            let Ok(made) = fds.get(&FdKey { tgid: pid as u32, fd }, 0) else {
                continue;
            };
            walked.push(frames(&stacks, made.stack).len());
            #[cfg(target_arch = "x86_64")]
            unwound.push(
                self.samples
                    .as_ref()
                    .and_then(|s| s.get(pid as u32, fd, made.ns))
                    .map_or(0, |s| s.len()),
            );
        }
        let median = |mut v: Vec<usize>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        (median(walked), median(unwound))
    }

    /// Of the kernel's frame-pointer walk and the stack unwound from the sample, the one
    /// that recovered more frames.
    fn better(&self, tgid: u32, fd: i32, ns: u64, walked: &[u64]) -> Walk {
        #[cfg(target_arch = "x86_64")]
        if let Some(unwound) = self.samples.as_ref().and_then(|s| s.get(tgid, fd, ns)) {
            if unwound.len() > walked.len() {
                return Walk {
                    pcs: unwound.to_vec(),
                    unwound: true,
                };
            }
        }
        let _ = (tgid, fd, ns);
        Walk {
            pcs: walked.to_vec(),
            unwound: false,
        }
    }

    /// Events the programs could not record (a full map, a stack not taken), all causes together.
    pub fn lost(&self) -> u64 {
        lost(&crate::domain::lock(&self.ebpf))
    }
}

/// Events the ledger lost, a map full (the descriptors', the counts', the calls'
/// in flight): descriptors that may have no origin. Not among them: a stack the
/// kernel did not take (its table's bucket taken by another stack), or a sample
/// with no room, since the other walk still names the descriptor.
fn lost(ebpf: &Ebpf) -> u64 {
    // LOST_FDS, LOST_COUNTS and LOST_CALLS in ledger.bpf.c.
    const FULL: [usize; 3] = [0, 2, 3];
    map::<Array<_, u64>>(ebpf, "lost").map_or(0, |m| {
        m.iter()
            .enumerate()
            .filter(|(i, _)| FULL.contains(i))
            .filter_map(|(_, n)| n.ok())
            .sum()
    })
}

/// The return addresses of stack `id`; none for a stack that was not taken.
fn frames(stacks: &StackTraceMap<&MapData>, id: i64) -> Vec<u64> {
    let Ok(id) = u32::try_from(id) else { return Vec::new() };
    stacks
        .get(&id, 0)
        .map(|s| s.frames().iter().map(|f| f.ip).collect())
        .unwrap_or_default()
}

/// A map of the programs, to read.
fn map<'a, T>(ebpf: &'a Ebpf, name: &str) -> Result<T, String>
where
    T: TryFrom<&'a aya::maps::Map>,
    T::Error: std::fmt::Display,
{
    let m = ebpf.map(name).ok_or_else(|| format!("no map {name}"))?;
    T::try_from(m).map_err(|e| format!("the {name} map: {e}"))
}

/// Why loading failed, in the words a user acts on.
pub(super) fn why(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if text.contains("Operation not permitted") || text.contains("Permission denied") {
        return format!("loading eBPF needs root, or CAP_BPF with CAP_PERFMON ({text})");
    }
    text
}

/// How many of the ledger's programs (the channel ledger's uprobes included) the kernel
/// holds now, any process's (for the tests that check nothing is left behind).
#[doc(hidden)]
pub fn programs_loaded() -> usize {
    aya::programs::loaded_programs()
        .flatten()
        .filter(|p| {
            p.name_as_str()
                .is_some_and(|n| n.starts_with("ledger_") || n.starts_with("chan_"))
        })
        .count()
}

/// How many programs one loaded ledger holds.
#[doc(hidden)]
pub const PROGRAMS: usize = 4 + channels::PROGRAMS.len();
