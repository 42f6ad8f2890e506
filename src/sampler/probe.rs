//! One reading of one process from the real `/proc`: descriptors by kind,
//! its TCP sockets by state, RLIMIT_NOFILE, threads and RSS.
//!
//! Socket states come from the process's own view of the kernel TCP tables
//! (`/proc/PID/net/tcp` and `tcp6`, so a target in another network namespace
//! is read correctly), joined to its descriptors on the socket inode.

use procfs::net::TcpState;
use procfs::process::{LimitValue, Process};
use serde::{Deserialize, Serialize};

/// Descriptor counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdKinds {
    pub total: u64,
    pub socket: u64,
    pub pipe: u64,
    pub file: u64,
    pub anon: u64,
    pub other: u64,
}

/// The process's TCP sockets by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpStates {
    pub established: u64,
    pub syn_sent: u64,
    pub syn_recv: u64,
    pub fin_wait1: u64,
    pub fin_wait2: u64,
    pub time_wait: u64,
    pub close: u64,
    pub close_wait: u64,
    pub last_ack: u64,
    pub listen: u64,
    pub closing: u64,
}

impl TcpStates {
    /// Counts one socket by the kernel's numeric state (include/net/tcp_states.h).
    pub fn add_code(&mut self, code: u8) {
        let slot = match code {
            1 => &mut self.established,
            2 => &mut self.syn_sent,
            3 => &mut self.syn_recv,
            4 => &mut self.fin_wait1,
            5 => &mut self.fin_wait2,
            6 => &mut self.time_wait,
            7 => &mut self.close,
            8 => &mut self.close_wait,
            9 => &mut self.last_ack,
            10 => &mut self.listen,
            11 => &mut self.closing,
            _ => return,
        };
        *slot += 1;
    }

    fn add(&mut self, s: &TcpState) {
        let slot = match s {
            TcpState::Established => &mut self.established,
            TcpState::SynSent => &mut self.syn_sent,
            TcpState::SynRecv => &mut self.syn_recv,
            TcpState::FinWait1 => &mut self.fin_wait1,
            TcpState::FinWait2 => &mut self.fin_wait2,
            TcpState::TimeWait => &mut self.time_wait,
            TcpState::Close => &mut self.close,
            TcpState::CloseWait => &mut self.close_wait,
            TcpState::LastAck => &mut self.last_ack,
            TcpState::Listen => &mut self.listen,
            TcpState::Closing => &mut self.closing,
            _ => return,
        };
        *slot += 1;
    }
}

/// What one probe of one process found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub fds: FdKinds,
    pub tcp: TcpStates,
    /// None means unlimited.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    pub threads: u64,
    pub rss_kb: u64,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The process is gone, or is a zombie waiting to be reaped.
    #[error("process {0} has exited")]
    Gone(i32),
    #[error("reading /proc/{pid}: {source}")]
    Proc { pid: i32, source: procfs::ProcError },
}

fn proc_err(pid: i32) -> impl Fn(procfs::ProcError) -> ProbeError {
    move |e| match e {
        procfs::ProcError::NotFound(_) => ProbeError::Gone(pid),
        source => ProbeError::Proc { pid, source },
    }
}

/// Reads one process. When it is fdsoak itself, the handles this probe holds
/// on `/proc` are left out, so the driver's count is not inflated by sampling.
pub fn probe(pid: i32) -> Result<Reading, ProbeError> {
    probe_excluding(pid, None)
}

/// Like [`probe`], leaving out the sockets whose inodes are in `exclude`.
pub fn probe_excluding(pid: i32, exclude: Option<&std::collections::HashSet<u64>>) -> Result<Reading, ProbeError> {
    let err = proc_err(pid);
    let proc = Process::new(pid).map_err(&err)?;
    let stat = proc.stat().map_err(&err)?;
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(ProbeError::Gone(pid));
    }
    let own = pid == std::process::id() as i32;
    let (mut fds, mut inodes) = match super::fast::list_fds(pid, own) {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ProbeError::Gone(pid)),
        Err(e) => {
            return Err(ProbeError::Proc {
                pid,
                source: procfs::ProcError::Io(e, None),
            })
        }
    };
    if let Some(ex) = exclude.filter(|e| !e.is_empty()) {
        let before = inodes.len();
        inodes.retain(|i| !ex.contains(i));
        let removed = (before - inodes.len()) as u64;
        fds.socket -= removed;
        fds.total -= removed;
    }
    let mut tcp = TcpStates::default();
    if !inodes.is_empty() {
        // netlink when it can see the process's sockets; the text tables otherwise.
        let fast = if super::fast::same_netns(pid) {
            super::fast::tcp_states(&inodes).ok()
        } else {
            None
        };
        match fast {
            Some(t) => tcp = t,
            None => tcp = tcp_from_text_tables(&proc, &inodes),
        }
    }
    let limits = proc.limits().map_err(&err)?;
    let value = |v: LimitValue| match v {
        LimitValue::Value(n) => Some(n),
        LimitValue::Unlimited => None,
    };
    Ok(Reading {
        fds,
        tcp,
        nofile_soft: value(limits.max_open_files.soft_limit),
        nofile_hard: value(limits.max_open_files.hard_limit),
        threads: stat.num_threads.max(0) as u64,
        rss_kb: stat.rss * (procfs::page_size() / 1024),
    })
}

/// TCP states from the process's `/proc/PID/net/tcp` and `tcp6` text tables:
/// slower than netlink, but right for a process in another network namespace.
pub fn tcp_from_text_tables(proc: &Process, inodes: &std::collections::HashSet<u64>) -> TcpStates {
    let mut tcp = TcpStates::default();
    for table in [proc.tcp(), proc.tcp6()] {
        // No IPv6 in this namespace means no table; that is fine.
        for e in table.unwrap_or_default() {
            if inodes.contains(&e.inode) {
                tcp.add(&e.state);
            }
        }
    }
    tcp
}

/// Counts a process's descriptors without classifying them: one directory listing.
pub fn count_fds(pid: i32) -> Result<u64, ProbeError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProbeError::Gone(pid),
        _ => ProbeError::Proc {
            pid,
            source: procfs::ProcError::Io(e, None),
        },
    })?;
    let own = pid == std::process::id() as i32;
    // Listing our own descriptors shows the listing's handle too.
    Ok(dir.count() as u64 - u64::from(own))
}
