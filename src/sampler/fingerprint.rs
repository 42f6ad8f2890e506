//! A descriptor fingerprint: one process's descriptors grouped by what they
//! point at, the way a person reads `lsof` to learn *what* leaked. Regular
//! files group by path (deleted ones marked), TCP sockets by state, local
//! port role (a listening port of this process, or ephemeral) and remote
//! address, Unix sockets by path, anon inodes by kind, devices by path;
//! pipes group together. Taken at a few moments, not every tick.

use super::fast;
use super::probe::ProbeError;
use crate::vocab::{Fingerprint, GroupKey, GroupKind, Inodes};
use std::collections::{BTreeMap, HashMap, HashSet};

/// At most this many groups are kept; the smallest beyond it fold into one.
pub const MAX_GROUPS: usize = 1000;

/// The key the folded groups share.
pub const FOLDED: &str = "smaller groups, folded";

/// Groups `pid`'s descriptors, leaving out the sockets in `exclude` (the fault proxy's, in fdsoak).
pub fn fingerprint(pid: i32, exclude: Option<&Inodes>) -> Result<Fingerprint, ProbeError> {
    let mut links = read_links(pid)?;
    if let Some(ex) = exclude.filter(|e| !e.is_empty()) {
        links.retain(|l| socket_inode(l).is_none_or(|i| !ex.contains(&i)));
    }
    let sockets: Inodes = links.iter().filter_map(|l| socket_inode(l)).collect();
    let tcp = if sockets.is_empty() {
        Vec::new()
    } else if fast::same_netns(pid) {
        fast::tcp_sockets(&sockets).unwrap_or_default()
    } else {
        tcp_from_text_tables(pid, &sockets)
    };
    let listening: HashSet<u16> = tcp.iter().filter(|s| s.state == 10).map(|s| s.local.port()).collect();
    let tcp: HashMap<u64, &fast::TcpSocket> = tcp.iter().map(|s| (s.inode, s)).collect();
    // The Unix table is read only when some socket is not TCP: it is the whole host's.
    let unix = if sockets.iter().all(|i| tcp.contains_key(i)) {
        BTreeMap::new()
    } else {
        unix_paths(pid)
    };
    // TCP sockets are counted by their shape first and named once per shape, not once per socket.
    let mut shapes: HashMap<(u8, Option<u16>, Option<std::net::SocketAddr>), u64> = HashMap::new();
    let mut groups: HashMap<GroupKey, u64> = HashMap::new();
    for link in &links {
        let (kind, what) = match socket_inode(link) {
            Some(inode) => match (tcp.get(&inode), unix.get(&inode)) {
                (Some(s), _) => {
                    *shapes.entry(shape(s, &listening)).or_default() += 1;
                    continue;
                }
                (None, Some(path)) => (GroupKind::Unix, path.clone()),
                (None, None) => (GroupKind::Socket, "not TCP (UDP, netlink, unnamed unix…)".into()),
            },
            None => classify(link),
        };
        *groups.entry(GroupKey { kind, what }).or_default() += 1;
    }
    for ((state, port, remote), n) in shapes {
        let what = describe_tcp(state, port, remote);
        *groups
            .entry(GroupKey {
                kind: GroupKind::Tcp,
                what,
            })
            .or_default() += n;
    }
    Ok(std::sync::Arc::new(fold(groups)))
}

/// Keeps the [`MAX_GROUPS`] largest groups and folds the rest into one, so a
/// process with a descriptor per unique path cannot make a fingerprint unbounded.
fn fold(groups: HashMap<GroupKey, u64>) -> BTreeMap<GroupKey, u64> {
    if groups.len() <= MAX_GROUPS {
        return groups.into_iter().collect();
    }
    let mut v: Vec<(GroupKey, u64)> = groups.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let folded: u64 = v[MAX_GROUPS - 1..].iter().map(|(_, n)| n).sum();
    v.truncate(MAX_GROUPS - 1);
    let mut out: BTreeMap<GroupKey, u64> = v.into_iter().collect();
    out.insert(
        GroupKey {
            kind: GroupKind::Other,
            what: FOLDED.into(),
        },
        folded,
    );
    out
}

/// The groups of a fingerprint, largest first.
pub fn largest_first(fp: &Fingerprint) -> Vec<(&GroupKey, u64)> {
    let mut v: Vec<(&GroupKey, u64)> = fp.iter().map(|(k, n)| (k, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

/// TCP sockets with addresses from the process's own `/proc/PID/net/tcp{,6}`,
/// for a process in another network namespace, where netlink cannot see them.
fn tcp_from_text_tables(pid: i32, inodes: &Inodes) -> Vec<fast::TcpSocket> {
    let Ok(proc) = procfs::process::Process::new(pid) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for table in [proc.tcp(), proc.tcp6()] {
        for e in table
            .unwrap_or_default()
            .into_iter()
            .filter(|e| inodes.contains(&e.inode))
        {
            out.push(fast::TcpSocket {
                inode: e.inode,
                state: e.state.to_u8(),
                local: e.local_address,
                remote: e.remote_address,
            });
        }
    }
    out
}

/// What tells TCP sockets apart: the state, the local port when it is one this process
/// listens on (LISTEN, and connections accepted on it), and otherwise the remote address.
fn shape(s: &fast::TcpSocket, listening: &HashSet<u16>) -> (u8, Option<u16>, Option<std::net::SocketAddr>) {
    if s.state == 10 || listening.contains(&s.local.port()) {
        (s.state, Some(s.local.port()), None)
    } else {
        (s.state, None, Some(s.remote))
    }
}

fn describe_tcp(state: u8, port: Option<u16>, remote: Option<std::net::SocketAddr>) -> String {
    let name = crate::vocab::TcpState::from_code(state).map_or("?", |st| st.name());
    match (port, remote) {
        (Some(p), _) if state == 10 => format!("{name} on :{p}"),
        // Accepted connections group by the port they came in on; their peers' ports are ephemeral.
        (Some(p), _) => format!("{name} from clients of :{p}"),
        (None, Some(r)) => format!("{name} to {r} from an ephemeral port"),
        (None, None) => name.to_string(),
    }
}

fn classify(link: &str) -> (GroupKind, String) {
    if link.starts_with("pipe:[") {
        (GroupKind::Pipe, "pipe".into())
    } else if let Some(kind) = link.strip_prefix("anon_inode:") {
        (
            GroupKind::Anon,
            kind.trim_start_matches('[').trim_end_matches(']').to_string(),
        )
    } else if link.starts_with("/dev/") {
        (GroupKind::Device, link.to_string())
    } else if link.starts_with('/') {
        // A deleted file's link already ends in " (deleted)", which keeps it apart from a live one.
        (GroupKind::File, link.to_string())
    } else {
        (GroupKind::Other, link.to_string())
    }
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Every descriptor's link target, fdsoak's own `/proc` handles left out.
fn read_links(pid: i32) -> Result<Vec<String>, ProbeError> {
    let entries = super::probe::fd_dir(pid)?;
    let own = pid == std::process::id() as i32;
    Ok(entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|l| !(own && l.starts_with("/proc/")))
        .collect())
}

/// Unix socket paths by inode, from the process's view of `/proc/net/unix`.
fn unix_paths(pid: i32) -> BTreeMap<u64, String> {
    let Ok(proc) = procfs::process::Process::new(pid) else {
        return BTreeMap::new();
    };
    proc.unix()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|u| Some((u.inode, u.path?.display().to_string())))
        .collect()
}
