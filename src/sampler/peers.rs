//! Who holds whose other end: the TCP connections of every watched process,
//! each end named as its fingerprint names its group, and the fault proxy's
//! relays between them, read once at the end of a run before any process is
//! stopped. The analysis matches the ends by their four-tuples
//! (`analysis::held`); this only reads.

use super::fast;
use super::fingerprint::tcp_group;
use crate::domain::{ConnEnd, Connections, Inodes, Role};
use std::collections::{HashMap, HashSet};

/// The connections of `watched` (each role and PID), fdsoak's own less the
/// sockets in `exclude` (the proxy's), and the proxy's `relays` (pairs of its
/// socket inodes) as addresses. A process that cannot be read, or lives in
/// another network namespace, has no ends.
pub(crate) fn connections(watched: &[(Role, i32)], exclude: &Inodes, relays: &[[u64; 2]]) -> Connections {
    let own = std::process::id() as i32;
    let ends = watched
        .iter()
        .filter(|(_, pid)| *pid > 0 && fast::same_netns(*pid))
        .map(|&(role, pid)| {
            let skip = (pid == own).then_some(exclude);
            (role, pid, ends_of(pid, skip).unwrap_or_default())
        })
        .collect();
    Connections {
        ends,
        relays: relay_addresses(relays).unwrap_or_default(),
    }
}

/// The socket inodes among `pid`'s descriptors, less `skip`.
pub(crate) fn socket_inodes(pid: i32, skip: Option<&Inodes>) -> std::io::Result<Inodes> {
    let mut inodes = Inodes::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        let inode = link.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']'));
        if let Some(i) = inode.and_then(|i| i.parse::<u64>().ok()) {
            if skip.is_none_or(|s| !s.contains(&i)) {
                inodes.insert(i);
            }
        }
    }
    Ok(inodes)
}

fn ends_of(pid: i32, skip: Option<&Inodes>) -> std::io::Result<Vec<ConnEnd>> {
    let tcp = fast::tcp_sockets(&socket_inodes(pid, skip)?)?;
    let listening: HashSet<std::net::SocketAddr> = tcp.iter().filter(|s| s.state == 10).map(|s| s.local).collect();
    Ok(tcp
        .iter()
        .filter(|s| s.state != 10)
        .map(|s| ConnEnd {
            local: s.local,
            remote: s.remote,
            state: s.state,
            group: tcp_group(s, &listening),
        })
        .collect())
}

fn relay_addresses(relays: &[[u64; 2]]) -> std::io::Result<Vec<crate::domain::Relay>> {
    if relays.is_empty() {
        return Ok(Vec::new());
    }
    let inodes: Inodes = relays.iter().flatten().copied().collect();
    let by_inode: HashMap<u64, (std::net::SocketAddr, std::net::SocketAddr)> = fast::tcp_sockets(&inodes)?
        .into_iter()
        .map(|s| (s.inode, (s.local, s.remote)))
        .collect();
    Ok(relays
        .iter()
        .filter_map(|[a, b]| Some([*by_inode.get(a)?, *by_inode.get(b)?]))
        .collect())
}
