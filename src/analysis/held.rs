//! Blame on the right process. When a client leaks connections, the server it
//! talks to grows too: each leaked connection has a server end, accepted and
//! kept open as it should be while the client keeps its own. Both processes
//! then show the same growth, and only one holds the cause.
//!
//! The ends are matched by their four-tuples, read from the kernel at the end
//! of the run ([`Connections`]), through the fault proxy's relays when it sits
//! between them: an ESTABLISHED socket of a grown "from clients of :P" group
//! whose other end is an ESTABLISHED socket of another watched process's grown
//! "to … from an ephemeral port" group is *held* by that process. The
//! initiator is the holder: the acceptor cannot close what its client still
//! uses. A CLOSE_WAIT group is never held: its peer has left.

use super::ProcessAnalysis;
use crate::domain::{ConnEnd, Connections, GroupKind, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// A process's grown group whose sockets are the other ends of a peer's leaked connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Held {
    /// This process's group: `ESTABLISHED from clients of :50051`.
    pub group: String,
    /// How many of the group's new descriptors the peer holds open (at most its growth).
    pub count: u64,
    /// The process that opened the connections and keeps them open.
    pub holder: Role,
    pub holder_pid: i32,
    /// The holder's group the other ends are in, and that group's growth.
    pub holder_group: String,
    pub holder_change: i64,
}

const ESTABLISHED: u8 = 1;

/// An end's place: which process (by its index among the ends) and which group.
type Owner<'a> = (usize, &'a ConnEnd);

/// Fills each process's `held` from the connections read at the end of the run.
pub(crate) fn attribute(procs: &mut [ProcessAnalysis], conns: &Connections) {
    let mut owner: HashMap<(SocketAddr, SocketAddr), Owner<'_>> = HashMap::new();
    for (i, (_, _, ends)) in conns.ends.iter().enumerate() {
        for e in ends {
            owner.insert(pair(e.local, e.remote), (i, e));
        }
    }
    // Through the proxy: each of its sockets leads to the other of its pair.
    let mut across: HashMap<(SocketAddr, SocketAddr), (SocketAddr, SocketAddr)> = HashMap::new();
    for [a, b] in &conns.relays {
        let (a, b) = (pair(a.0, a.1), pair(b.0, b.1));
        across.insert(a, b);
        across.insert(b, a);
    }
    let peer_of = |e: &ConnEnd| -> Option<Owner<'_>> {
        let key = pair(e.remote, e.local);
        owner
            .get(&key)
            .copied()
            .or_else(|| across.get(&key).and_then(|(l, r)| owner.get(&(*r, *l)).copied()))
    };
    let mut found: Vec<(usize, Held)> = Vec::new();
    for (i, (role, pid, ends)) in conns.ends.iter().enumerate() {
        let Some(me) = procs.iter().find(|p| p.role == *role && p.pid == *pid) else {
            continue;
        };
        let mut counts: BTreeMap<(&str, usize, &str), u64> = BTreeMap::new();
        for e in ends
            .iter()
            .filter(|e| e.state == ESTABLISHED && grown_accepted(me, &e.group))
        {
            let Some((j, peer)) = peer_of(e).filter(|(j, p)| *j != i && p.state == ESTABLISHED) else {
                continue;
            };
            let (peer_role, peer_pid, _) = &conns.ends[j];
            let peer_proc = procs.iter().find(|p| p.role == *peer_role && p.pid == *peer_pid);
            if peer_proc.is_some_and(|p| grown_initiated(p, &peer.group).is_some()) {
                *counts.entry((e.group.as_str(), j, peer.group.as_str())).or_default() += 1;
            }
        }
        let mut left: HashMap<&str, i64> = me.groups.iter().map(|g| (g.what.as_str(), g.change)).collect();
        for ((group, j, peer_group), n) in counts {
            let (holder, holder_pid, _) = &conns.ends[j];
            let room = left.entry(group).or_default();
            let count = n.min((*room).max(0) as u64);
            *room -= count as i64;
            let holder_change = procs
                .iter()
                .find(|p| p.role == *holder && p.pid == *holder_pid)
                .and_then(|p| grown_initiated(p, peer_group))
                .unwrap_or(0);
            if count > 0 {
                found.push((
                    i,
                    Held {
                        group: group.to_string(),
                        count,
                        holder: *holder,
                        holder_pid: *holder_pid,
                        holder_group: peer_group.to_string(),
                        holder_change,
                    },
                ));
            }
        }
    }
    for (i, h) in found {
        let (role, pid, _) = &conns.ends[i];
        if let Some(p) = procs.iter_mut().find(|p| p.role == *role && p.pid == *pid) {
            p.held.push(h);
        }
    }
}

/// An end's addresses as a key, IPv4-mapped IPv6 ones (a dual-stack listener's
/// view of an IPv4 client) written as IPv4, so that both ends spell them alike.
fn pair(local: SocketAddr, remote: SocketAddr) -> (SocketAddr, SocketAddr) {
    let plain = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => a,
        },
        v4 => v4,
    };
    (plain(local), plain(remote))
}

/// Whether `group` is one of `p`'s grown groups of connections accepted and established.
fn grown_accepted(p: &ProcessAnalysis, group: &str) -> bool {
    group.starts_with("ESTABLISHED from clients of ")
        && p.groups
            .iter()
            .any(|g| g.kind == GroupKind::Tcp && g.what == group && g.change > 0)
}

/// The growth of `group` when it is one of `p`'s grown groups of connections it opened.
fn grown_initiated(p: &ProcessAnalysis, group: &str) -> Option<i64> {
    if !group.starts_with("ESTABLISHED to ") {
        return None;
    }
    p.groups
        .iter()
        .find(|g| g.kind == GroupKind::Tcp && g.what == group && g.change > 0)
        .map(|g| g.change)
}

impl ProcessAnalysis {
    /// Descriptors of this process that peers hold open (see [`attribute`]).
    pub fn held_fds(&self) -> i64 {
        self.held.iter().map(|h| h.count as i64).sum()
    }
}

#[cfg(test)]
mod tests;
