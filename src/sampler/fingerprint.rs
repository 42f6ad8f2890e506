//! A descriptor fingerprint: one process's descriptors grouped by what they
//! point at, the way a person reads `lsof` to learn *what* leaked. Regular
//! files group by path (deleted ones marked), TCP sockets by state, local
//! port role (a listening port of this process, or ephemeral) and remote
//! address, Unix sockets by path, anon inodes by kind, devices by path;
//! pipes group together. Taken at a few moments, not every tick.

use super::fast;
use super::probe::ProbeError;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One group of descriptors that point at the same kind of thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// file, tcp, unix, socket, pipe, anon, device or other.
    pub kind: &'static str,
    /// What they point at, in words.
    pub what: String,
    pub count: u64,
}

/// Groups `pid`'s descriptors, largest group first.
pub fn fingerprint(pid: i32) -> Result<Vec<Group>, ProbeError> {
    let links = read_links(pid)?;
    let sockets: HashSet<u64> = links.iter().filter_map(|l| socket_inode(l)).collect();
    let tcp = if sockets.is_empty() || !fast::same_netns(pid) {
        Vec::new()
    } else {
        fast::tcp_sockets(&sockets).unwrap_or_default()
    };
    let listening: HashSet<u16> = tcp.iter().filter(|s| s.state == 10).map(|s| s.local.port()).collect();
    let tcp: BTreeMap<u64, &fast::TcpSocket> = tcp.iter().map(|s| (s.inode, s)).collect();
    let unix = unix_paths(pid);
    let mut groups: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    for link in &links {
        let key = match socket_inode(link) {
            Some(inode) => match (tcp.get(&inode), unix.get(&inode)) {
                (Some(s), _) => ("tcp", describe_tcp(s, &listening)),
                (None, Some(path)) => ("unix", path.clone()),
                (None, None) => ("socket", "not TCP (UDP, netlink, unnamed unix…)".into()),
            },
            None => classify(link),
        };
        *groups.entry(key).or_default() += 1;
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((kind, what), count)| Group { kind, what, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.what.cmp(&b.what)));
    Ok(out)
}

fn describe_tcp(s: &fast::TcpSocket, listening: &HashSet<u16>) -> String {
    let state = crate::vocab::TcpState::from_code(s.state).map_or("?", |st| st.name());
    if s.state == 10 {
        return format!("{state} on :{}", s.local.port());
    }
    if listening.contains(&s.local.port()) {
        // Accepted connections group by the port they came in on; their peers' ports are ephemeral.
        format!("{state} from clients of :{}", s.local.port())
    } else {
        format!("{state} to {} from an ephemeral port", s.remote)
    }
}

fn classify(link: &str) -> (&'static str, String) {
    if link.starts_with("pipe:[") {
        ("pipe", "pipe".into())
    } else if let Some(kind) = link.strip_prefix("anon_inode:") {
        ("anon", kind.trim_start_matches('[').trim_end_matches(']').to_string())
    } else if link.starts_with("/dev/") {
        ("device", link.to_string())
    } else if link.starts_with('/') {
        ("file", link.to_string())
    } else {
        ("other", link.to_string())
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
