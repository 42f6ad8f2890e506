//! Faults with no proxy (`via = "kernel"`): on a watched process's own TCP
//! connections, the target's links to its backends included, whatever it
//! dialled or accepted, TLS or not.
//!
//! `reset` aborts each selected socket with `SOCK_DESTROY` over sock_diag
//! (as `ss -K` does): the process gets ECONNABORTED on its next call, the
//! peer an RST. `blackhole` drops both directions of each selected
//! connection in nftables ([`super::nft`]) for `duration`, or until the
//! phase ends: both ends keep their sockets, and their bytes, pings and
//! closes go nowhere. `loss` drops a share of each selected connection's
//! packets for its whole phase, kept up to date as connections come and
//! go. Only sockets found in the process's own descriptor table are
//! touched, each named by its exact four-tuple (never a port alone:
//! another process may use the same port). Which sockets a process holds
//! is read by the run (from `/proc` and the kernel's tables) and handed in
//! as a [`Sockets`] function, so this module reads nothing itself.

use super::{FaultEvent, Injector};
use crate::domain::Role;
use crate::scenario::{Direction, Fault, FaultKind, Peer};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One TCP socket of a process: its state (the kernel's number) and its two ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpConn {
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

const ESTABLISHED: u8 = 1;
const CLOSE_WAIT: u8 = 8;
const LISTEN: u8 = 10;

/// The TCP sockets a process holds now, by PID.
pub(crate) type Sockets = Arc<dyn Fn(i32) -> io::Result<Vec<TcpConn>> + Send + Sync>;

/// The kernel faults of a run: whose sockets, and what was done to them.
pub(crate) struct KernelFaults {
    pids: Mutex<HashMap<Role, i32>>,
    sockets: Sockets,
    events: Mutex<Vec<FaultEvent>>,
    resets: AtomicU64,
    /// The run's nftables table, with blackholes in the scenario.
    table: Option<Arc<super::nft::Table>>,
    /// Blackholes so far (each one's chains are named by its number).
    holes: AtomicU64,
    /// Blackholes without a `duration`, lifted when their phase ends.
    until_phase_end: Mutex<Vec<u64>>,
    /// The current phase's loss toxics, by their place in it.
    losses: Mutex<HashMap<usize, Loss>>,
}

/// One loss toxic's state: each connection's draw against `probability`, and the
/// connections its rules name now.
#[derive(Default)]
struct Loss {
    drawn: HashMap<(SocketAddr, SocketAddr), bool>,
    applied: Vec<(SocketAddr, SocketAddr)>,
    /// Its chains are in the table.
    made: bool,
}

impl KernelFaults {
    /// The kernel faults of a run; `nft`: the scenario has blackholes or loss, so the
    /// run's nftables table is made (and tables of runs that are gone are removed).
    pub(crate) fn new(sockets: Sockets, nft: bool) -> io::Result<KernelFaults> {
        let table = match nft {
            true => Some(Arc::new(super::nft::Table::create()?)),
            false => None,
        };
        Ok(KernelFaults {
            pids: Mutex::default(),
            sockets,
            events: Mutex::default(),
            resets: AtomicU64::new(0),
            table,
            holes: AtomicU64::new(0),
            until_phase_end: Mutex::default(),
            losses: Mutex::default(),
        })
    }

    /// Lifts the blackholes that last until their phase ends, and the phase's loss toxics.
    pub(crate) fn end_phase(&self) {
        let holes = std::mem::take(&mut *crate::domain::lock(&self.until_phase_end));
        let losses = std::mem::take(&mut *crate::domain::lock(&self.losses));
        let Some(table) = &self.table else { return };
        for id in holes {
            if let Err(e) = table.lift(id) {
                tracing::warn!("kernel fault: lifting blackhole {id}: {e}");
            }
        }
        for (slot, loss) in losses {
            if loss.made {
                if let Err(e) = table.lift_loss(slot as u64) {
                    tracing::warn!("kernel fault: lifting loss {slot}: {e}");
                }
            }
        }
    }

    /// Drops `conns` both ways, for `duration` or until the phase ends.
    fn blackhole(&self, conns: &[TcpConn], duration: Option<std::time::Duration>) -> u64 {
        let Some(table) = &self.table else { return 0 };
        if conns.is_empty() {
            return 0;
        }
        let id = self.holes.fetch_add(1, Relaxed);
        let ends: Vec<_> = conns.iter().map(|c| (c.local, c.remote)).collect();
        if let Err(e) = table.blackhole(id, &ends) {
            tracing::warn!("kernel fault: blackhole: {e}");
            return 0;
        }
        match (duration, tokio::runtime::Handle::try_current()) {
            (Some(d), Ok(rt)) => {
                // Weak: a run that ends first takes its table, and every blackhole, with it.
                let table = Arc::downgrade(table);
                rt.spawn(async move {
                    tokio::time::sleep(d).await;
                    if let Some(table) = table.upgrade() {
                        let _ = tokio::task::spawn_blocking(move || table.lift(id)).await;
                    }
                });
            }
            _ => crate::domain::lock(&self.until_phase_end).push(id),
        }
        conns.len() as u64
    }

    /// The process that plays `role` (a client, once it has started).
    pub(crate) fn set_pid(&self, role: Role, pid: i32) {
        crate::domain::lock(&self.pids).insert(role, pid);
    }

    /// The events fired so far.
    pub(crate) fn events(&self) -> Vec<FaultEvent> {
        crate::domain::lock(&self.events).clone()
    }

    /// The connections `fault` selects in the process playing its role, each drawn against
    /// its `probability`.
    fn selected(&self, fault: &Fault) -> Vec<TcpConn> {
        let p = fault.probability();
        let mut conns = self.candidates(fault);
        conns.retain(|_| super::random() < p);
        conns
    }

    /// The connections `fault` may select in the process playing its role.
    fn candidates(&self, fault: &Fault) -> Vec<TcpConn> {
        let role = fault.role.unwrap_or_default();
        let Some(pid) = crate::domain::lock(&self.pids).get(&role).copied() else {
            return Vec::new();
        };
        let conns = match (self.sockets)(pid) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("kernel fault: reading the {role}'s sockets: {e}");
                return Vec::new();
            }
        };
        let listening: Vec<u16> = conns
            .iter()
            .filter(|c| c.state == LISTEN)
            .map(|c| c.local.port())
            .collect();
        let peer = fault.peer.as_deref().and_then(Peer::parse);
        conns
            .into_iter()
            .filter(|c| matches!(c.state, ESTABLISHED | CLOSE_WAIT))
            .filter(|c| {
                let inbound = listening.contains(&c.local.port());
                match fault.direction.unwrap_or_default() {
                    Direction::Inbound => inbound,
                    Direction::Outbound => !inbound,
                    Direction::Both => true,
                }
            })
            .filter(|c| peer.is_none_or(|p| p.matches(c.remote)))
            .collect()
    }

    /// Points loss toxic `slot` at the connections `fault` selects now: each new one
    /// drawn once against `probability`, those gone forgotten.
    fn keep_loss(&self, fault: &Fault, slot: usize) -> u64 {
        let Some(table) = &self.table else { return 0 };
        let now: Vec<_> = self.candidates(fault).iter().map(|c| (c.local, c.remote)).collect();
        let p = fault.probability();
        let mut losses = crate::domain::lock(&self.losses);
        let loss = losses.entry(slot).or_default();
        loss.drawn.retain(|k, _| now.contains(k));
        let mut chosen: Vec<_> = now
            .into_iter()
            .filter(|k| *loss.drawn.entry(*k).or_insert_with(|| super::random() < p))
            .collect();
        chosen.sort();
        if chosen != loss.applied {
            if let Err(e) = table.loss(slot as u64, fault.fraction.unwrap_or_default(), &chosen) {
                tracing::warn!("kernel fault: loss: {e}");
                return 0;
            }
            loss.applied = chosen;
            loss.made = true;
        }
        loss.applied.len() as u64
    }
}

impl Injector for KernelFaults {
    fn fire(&self, fault: &Fault) -> u64 {
        match fault.kind {
            FaultKind::Reset => {}
            FaultKind::Blackhole => return self.blackhole(&self.selected(fault), fault.duration),
            _ => return 0,
        }
        let mut n = 0;
        for c in self.selected(fault) {
            match destroy(c.local, c.remote) {
                Ok(()) => n += 1,
                // Gone since it was listed: nothing to reset.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => tracing::warn!("kernel fault: resetting {} -> {}: {e}", c.local, c.remote),
            }
        }
        self.resets.fetch_add(n, Relaxed);
        n
    }

    fn keep(&self, fault: &Fault, slot: usize) -> u64 {
        match fault.kind {
            FaultKind::Loss => self.keep_loss(fault, slot),
            _ => 0,
        }
    }

    fn record(&self, event: FaultEvent) {
        let mut events = crate::domain::lock(&self.events);
        if events.len() < super::MAX_EVENTS {
            events.push(event);
        }
    }
}

/// Whether this process may destroy sockets (CAP_NET_ADMIN in its effective set).
pub(crate) fn may_reset() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim().to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// Aborts the TCP socket with these two ends (SOCK_DESTROY over sock_diag).
fn destroy(local: SocketAddr, remote: SocketAddr) -> io::Result<()> {
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DESTROY: u16 = 21;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    let mut msg = Vec::with_capacity(72);
    msg.extend_from_slice(&72u32.to_ne_bytes()); // nlmsghdr: length
    msg.extend_from_slice(&SOCK_DESTROY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    let family = if local.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    msg.extend_from_slice(&[family as u8, libc::IPPROTO_TCP as u8, 0, 0]);
    msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    msg.extend_from_slice(&local.port().to_be_bytes());
    msg.extend_from_slice(&remote.port().to_be_bytes());
    for a in [local, remote] {
        let mut words = [0u8; 16];
        match a {
            SocketAddr::V4(v4) => words[..4].copy_from_slice(&v4.ip().octets()),
            SocketAddr::V6(v6) => words.copy_from_slice(&v6.ip().octets()),
        }
        msg.extend_from_slice(&words);
    }
    msg.extend_from_slice(&0u32.to_ne_bytes()); // interface: any
    msg.extend_from_slice(&[0xff; 8]); // no cookie: the four-tuple names the socket
                                       // SAFETY: plain socket calls on a descriptor owned here and closed by OwnedFd.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: msg outlives the call, and its length is passed with it.
    if unsafe { libc::send(raw, msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ack = [0u8; 256];
    // SAFETY: ack outlives the call, and its length is passed with it.
    let n = unsafe { libc::recv(raw, ack.as_mut_ptr().cast(), ack.len(), 0) };
    if n < 20 {
        return Err(io::Error::last_os_error());
    }
    let kind = u16::from_ne_bytes([ack[4], ack[5]]);
    let errno = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
    match (kind, errno) {
        (NLMSG_ERROR, 0) => Ok(()),
        (NLMSG_ERROR, e) => Err(io::Error::from_raw_os_error(-e)),
        _ => Err(io::Error::other("an unexpected answer to SOCK_DESTROY")),
    }
}
