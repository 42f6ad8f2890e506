//! One reading of one process from the real `/proc`: descriptors by kind,
//! its TCP sockets by state, RLIMIT_NOFILE, threads and RSS.
//!
//! Socket states come from the process's own view of the kernel TCP tables
//! (`/proc/PID/net/tcp` and `tcp6`, so a target in another network namespace
//! is read correctly), joined to its descriptors on the socket inode.

use crate::domain::{Reading, TcpStates};
use procfs::process::{LimitValue, Process};

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
pub fn probe_excluding(pid: i32, exclude: Option<&crate::domain::Inodes>) -> Result<Reading, ProbeError> {
    let err = proc_err(pid);
    let proc = Process::new(pid).map_err(&err)?;
    let stat = proc.stat().map_err(&err)?;
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(ProbeError::Gone(pid));
    }
    let own = pid == std::process::id() as i32;
    // netlink when it can see the process's sockets; the text tables otherwise. For a
    // long listing the host's table is dumped beside it, and joined after.
    let netlink = super::fast::same_netns(pid);
    // Never beside fdsoak's own listing: the dump's netlink socket would be in it.
    let long = !own && netlink && super::links::count_hint(pid).is_some_and(super::links::is_long);
    let (listed, host) = super::links::overlapped(
        long,
        || super::links::FdDir::open(pid).map(|dir| super::fast::classify(&dir, own)),
        super::fast::all_tcp_states,
    );
    let (mut fds, mut inodes) = match listed {
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
        let fast = match host {
            Some(Ok(all)) => Some(super::fast::count_states(&all, &inodes)),
            _ if netlink => super::fast::tcp_states(&inodes).ok(),
            _ => None,
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
        rss_kb: stat.rss * (page_size() / 1024),
    })
}

/// TCP states from the process's `/proc/PID/net/tcp` and `tcp6` text tables:
/// slower than netlink, but right for a process in another network namespace.
pub fn tcp_from_text_tables(proc: &Process, inodes: &crate::domain::Inodes) -> TcpStates {
    let mut tcp = TcpStates::default();
    for table in [proc.tcp(), proc.tcp6()] {
        // No IPv6 in this namespace means no table; that is fine.
        for e in table.unwrap_or_default() {
            if inodes.contains(&e.inode) {
                tcp.add_code(e.state.to_u8());
            }
        }
    }
    tcp
}

/// Opens `/proc/PID/fd` for listing; a missing directory means the process is gone.
pub fn fd_dir(pid: i32) -> Result<std::fs::ReadDir, ProbeError> {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProbeError::Gone(pid),
        _ => ProbeError::Proc {
            pid,
            source: procfs::ProcError::Io(e, None),
        },
    })
}

/// Counts a process's descriptors without classifying them: one directory listing.
pub fn count_fds(pid: i32) -> Result<u64, ProbeError> {
    let dir = fd_dir(pid)?;
    let own = pid == std::process::id() as i32;
    // Listing our own descriptors shows the listing's handle too.
    Ok(dir.count() as u64 - u64::from(own))
}

/// The kernel's page size, from libc (rustix's auxv reader, which procfs
/// uses for this, cannot run under valgrind: rustix issue 1559).
fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // SAFETY: sysconf only reads a configuration value.
    *PAGE.get_or_init(|| u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096))
}
