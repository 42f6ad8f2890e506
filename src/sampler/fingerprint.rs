//! A descriptor fingerprint: one process's descriptors grouped by what they
//! point at, the way a person reads `lsof` to learn *what* leaked. Regular
//! files group by path (deleted ones marked), TCP sockets by state, local
//! port role (a listening port of this process, or ephemeral) and remote
//! address, Unix sockets by the server they belong to (listening on a path,
//! accepted from clients of it, or connected to it, the peer's path read over
//! sock_diag), anon inodes by kind, devices by path; pipes group together. Taken at a few moments, not every tick.

use super::fast;
use super::links::{count_hint, is_long, overlapped, FdDir};
use super::probe::ProbeError;
use crate::domain::{Fingerprint, FingerprintOrigins, GroupKey, GroupKind, GroupOrigins, Inodes, Stack, Tally};
use crate::origin::table::Table;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// At most this many groups are kept; the smallest beyond it fold into one.
pub const MAX_GROUPS: usize = 1000;

/// The key the folded groups share.
pub const FOLDED: &str = "smaller groups, folded";

/// Groups `pid`'s descriptors, leaving out the sockets in `exclude` (the fault proxy's, in fdsoak).
pub fn fingerprint(pid: i32, exclude: Option<&Inodes>) -> Result<Fingerprint, ProbeError> {
    Ok(fingerprint_with_origins(pid, exclude, None)?.0)
}

/// Reads an agent's table for the descriptors a fingerprint lists.
pub type TableLoader<'a> = &'a dyn Fn(&[i32]) -> Option<Table>;

/// [`fingerprint`], and with an agent's table (read by `load` for the descriptors
/// listed), where each group's descriptors were opened: by the stack that opened
/// each one, and for TCP sockets a gRPC channel made on threads of its own, by the
/// stacks that created channels to the group's address.
pub fn fingerprint_with_origins(
    pid: i32,
    exclude: Option<&Inodes>,
    load: Option<TableLoader<'_>>,
) -> Result<(Fingerprint, Option<GroupOrigins>), ProbeError> {
    // As in a sample: for a long listing the host's TCP table is dumped beside it.
    let netlink = fast::same_netns(pid);
    let own = pid == std::process::id() as i32;
    // Never beside fdsoak's own listing: the dump's netlink socket would be in it.
    let long = !own && netlink && count_hint(pid).is_some_and(is_long);
    let (listed, host) = overlapped(
        long,
        || FdDir::open(pid).map(|d| read_links(&d, pid)),
        fast::all_tcp_sockets,
    );
    let mut links = listed.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProbeError::Gone(pid),
        _ => ProbeError::Proc {
            pid,
            source: procfs::ProcError::Io(e, None),
        },
    })?;
    if let Some(ex) = exclude.filter(|e| !e.is_empty()) {
        links.retain(|(_, l)| socket_inode(l).is_none_or(|i| !ex.contains(&i)));
    }
    let table = load.and_then(|load| load(&links.iter().map(|(fd, _)| *fd).collect::<Vec<_>>()));
    let table = table.as_ref();
    let sockets: Inodes = links.iter().filter_map(|(_, l)| socket_inode(l)).collect();
    let tcp = match host {
        _ if sockets.is_empty() => Vec::new(),
        Some(Ok(all)) => all.into_iter().filter(|s| sockets.contains(&s.inode)).collect(),
        _ if netlink => fast::tcp_sockets(&sockets).unwrap_or_default(),
        _ => tcp_from_text_tables(pid, &sockets),
    };
    let listening: HashSet<std::net::SocketAddr> = tcp.iter().filter(|s| s.state == 10).map(|s| s.local).collect();
    let tcp: HashMap<u64, &fast::TcpSocket> = tcp.iter().map(|s| (s.inode, s)).collect();
    // The Unix table is read only when some socket is not TCP: it is the whole host's.
    let unix = if sockets.iter().all(|i| tcp.contains_key(i)) {
        HashMap::new()
    } else {
        unix_names(pid, &sockets)
    };
    // TCP sockets are counted by their shape first and named once per shape, not once per socket.
    let mut shapes: HashMap<Shape, u64> = HashMap::new();
    let mut groups: HashMap<GroupKey, u64> = HashMap::new();
    let mut origins = Origins::default();
    for (fd, link) in &links {
        let opened = table.and_then(|t| t.opened(*fd, link));
        let (kind, what) = match socket_inode(link) {
            Some(inode) => match (tcp.get(&inode), unix.get(&inode)) {
                (Some(s), _) => {
                    let shape = shape(s, &listening);
                    *shapes.entry(shape).or_default() += 1;
                    if let Some(o) = opened {
                        origins.count(Named::Shape(shape), o, 1);
                    }
                    continue;
                }
                (None, Some(path)) => (GroupKind::Unix, path.clone()),
                (None, None) => (GroupKind::Socket, "not TCP or Unix (UDP, netlink, …)".into()),
            },
            None => classify(link),
        };
        let key = GroupKey { kind, what };
        if let Some(o) = opened {
            origins.count(Named::Key(key.clone()), o, 1);
        }
        *groups.entry(key).or_default() += 1;
    }
    if let Some(t) = table.filter(|t| t.has_channels()) {
        for (shape, n) in &shapes {
            if let (None, Some(remote)) = (shape.1, shape.2) {
                origins.channels(*shape, *n, t.channels_to(remote));
            }
        }
    }
    let mut named = HashMap::new();
    for (shape, n) in shapes {
        let key = GroupKey {
            kind: GroupKind::Tcp,
            what: describe_tcp(shape.0, shape.1, shape.2),
        };
        *groups.entry(key.clone()).or_default() += n;
        named.insert(shape, key);
    }
    let fp = std::sync::Arc::new(fold(groups));
    let origins = table.map(|t| origins.finish(&named, &fp, t));
    Ok((fp, origins))
}

/// The TCP shape: state, a local port this process listens on, or the remote address.
type Shape = (u8, Option<u16>, Option<std::net::SocketAddr>);

/// A group before TCP shapes are named.
#[derive(PartialEq, Eq, Hash)]
enum Named {
    Key(GroupKey),
    Shape(Shape),
}

/// Per group, how many descriptors each stack opened; and per stack, how many in all.
#[derive(Default)]
struct Origins(HashMap<Named, HashMap<Arc<Stack>, u64>>, HashMap<Arc<Stack>, u64>);

impl Origins {
    fn count(&mut self, group: Named, stack: &Arc<Stack>, n: u64) {
        *self.0.entry(group).or_default().entry(stack.clone()).or_default() += n;
        *self.1.entry(stack.clone()).or_default() += n;
    }

    /// The sockets of `shape` put down to the channels to its address, by where they were
    /// created: at most one socket per open channel, at most the group. They stand beside
    /// the sockets' own creating stacks (the library's), which name the same sockets.
    fn channels<'a>(&mut self, shape: Shape, n: u64, channels: impl Iterator<Item = (&'a Arc<Stack>, u64)>) {
        let mut left = n;
        for (stack, open) in channels {
            let take = open.min(left);
            if take == 0 {
                continue;
            }
            *self
                .0
                .entry(Named::Shape(shape))
                .or_default()
                .entry(stack.clone())
                .or_default() += take;
            left -= take;
        }
    }

    /// Named like the fingerprint's groups, largest first, for the groups the fingerprint
    /// kept; with the tallies of the stacks `table` counted.
    fn finish(self, named: &HashMap<Shape, GroupKey>, fp: &Fingerprint, table: &Table) -> GroupOrigins {
        let tallies = self
            .1
            .iter()
            .filter_map(|(stack, open)| {
                let opened = table.made(stack)?;
                Some((
                    stack.clone(),
                    Tally {
                        opened: opened.max(*open),
                        open: *open,
                    },
                ))
            })
            .collect();
        let mut channels = BTreeMap::new();
        let mut out: BTreeMap<GroupKey, Vec<(Arc<Stack>, u64)>> = BTreeMap::new();
        for (group, stacks) in self.0 {
            for stack in stacks.keys() {
                if let Some(t) = table.channel_tally(stack) {
                    channels.insert(stack.clone(), t.clone());
                }
            }
            let key = match group {
                Named::Key(k) => k,
                Named::Shape(s) => match named.get(&s) {
                    Some(k) => k.clone(),
                    None => continue,
                },
            };
            if !fp.contains_key(&key) {
                continue;
            }
            let entry = out.entry(key).or_default();
            entry.extend(stacks);
            entry.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            entry.truncate(MAX_STACKS);
        }
        Arc::new(FingerprintOrigins {
            groups: out,
            tallies,
            channels,
        })
    }
}

/// Stacks kept per group in a fingerprint's origins.
pub const MAX_STACKS: usize = 8;

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
fn shape(s: &fast::TcpSocket, listening: &HashSet<std::net::SocketAddr>) -> Shape {
    if s.state == 10 || accepted(s.local, listening) {
        (s.state, Some(s.local.port()), None)
    } else {
        (s.state, None, Some(s.remote))
    }
}

/// The name of the group a TCP socket falls in, among a process's listeners `listening`.
pub(super) fn tcp_group(s: &fast::TcpSocket, listening: &HashSet<std::net::SocketAddr>) -> String {
    let (state, port, remote) = shape(s, listening);
    describe_tcp(state, port, remote)
}

/// Whether a connection with this local address was accepted by one of the listeners:
/// one on that address and port, or on any address (IPv4 or IPv6) and that port. The
/// port alone is not enough: a client bound to another local address may be given
/// the same port number as a listener for its ephemeral port.
fn accepted(local: std::net::SocketAddr, listening: &HashSet<std::net::SocketAddr>) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    let port = local.port();
    listening.contains(&local)
        || listening.contains(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        || listening.contains(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
}

fn describe_tcp(state: u8, port: Option<u16>, remote: Option<std::net::SocketAddr>) -> String {
    let name = crate::domain::TcpState::from_code(state).map_or("?", |st| st.name());
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

/// Every descriptor's number and link target, fdsoak's own `/proc` handles left out.
fn read_links(dir: &FdDir, pid: i32) -> Vec<(i32, String)> {
    let own = pid == std::process::id() as i32;
    let parts = dir.read(Vec::new, |out: &mut Vec<(i32, String)>, fd, link| {
        if !(own && link.starts_with(b"/proc/")) {
            out.push((fd, String::from_utf8_lossy(link).into_owned()));
        }
    });
    parts.into_iter().flatten().collect()
}

/// How each of the process's Unix sockets reads in a group name, by inode:
/// "listening on PATH", "from clients of PATH", "to PATH", or "unnamed". In
/// another network namespace netlink cannot see them: the process's view of
/// `/proc/net/unix` gives the paths only ("at PATH"), and the rest are other sockets.
fn unix_names(pid: i32, sockets: &Inodes) -> HashMap<u64, String> {
    if fast::same_netns(pid) {
        if let Ok(table) = fast::unix_sockets() {
            return sockets
                .iter()
                .filter_map(|i| Some((*i, describe_unix(table.get(i)?, &table))))
                .collect();
        }
    }
    let Ok(proc) = procfs::process::Process::new(pid) else {
        return HashMap::new();
    };
    proc.unix()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|u| Some((u.inode, format!("at {}", u.path?.display()))))
        .collect()
}

/// A Unix socket's group name: by its own name (a listener, or a connection
/// accepted on one), else by its peer's (a client's connection to a server).
/// A connection whose peer has closed keeps no peer: "the client gone" is
/// the Unix form of CLOSE_WAIT.
fn describe_unix(s: &fast::UnixSocket, table: &HashMap<u64, fast::UnixSocket>) -> String {
    const ESTABLISHED: u8 = 1;
    const LISTEN: u8 = 10;
    match &s.name {
        Some(n) if s.state == LISTEN => format!("listening on {n}"),
        Some(n) if s.state == ESTABLISHED && s.peer != 0 => format!("from clients of {n}"),
        Some(n) if s.state == ESTABLISHED => format!("from clients of {n}, the client gone"),
        Some(n) => format!("at {n}"),
        None => match table.get(&s.peer).and_then(|p| p.name.as_ref()) {
            Some(n) => format!("to {n}"),
            None if s.peer != 0 => "unnamed, in connected pairs (socketpair)".into(),
            None if s.state == ESTABLISHED => "unnamed, the peer gone".into(),
            None => "unnamed, unconnected".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_given_a_listeners_port_number_on_another_address_is_not_counted_as_accepted() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let on_loopback: HashSet<_> = [at("127.0.0.1:50051")].into();
        assert!(accepted(at("127.0.0.1:50051"), &on_loopback));
        assert!(
            !accepted(at("127.0.0.5:50051"), &on_loopback),
            "a client bound to 127.0.0.5"
        );
        let anywhere: HashSet<_> = [at("0.0.0.0:50051")].into();
        assert!(accepted(at("127.0.0.5:50051"), &anywhere));
        let dual_stack: HashSet<_> = [at("[::]:50051")].into();
        assert!(accepted(at("127.0.0.1:50051"), &dual_stack));
        assert!(!accepted(at("127.0.0.1:50052"), &dual_stack));
    }
}
