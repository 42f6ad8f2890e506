//! The fast paths of a sample, used whenever they apply.
//!
//! Descriptors are listed with one `getdents` pass over `/proc/PID/fd` and
//! one `readlinkat` per entry into a stack buffer, with no allocation per
//! descriptor, on several threads for a long listing ([`super::links`]). TCP states come from the kernel over netlink `sock_diag`, the
//! way `ss` reads them: a binary dump is several times cheaper than
//! formatting and parsing the `/proc/net/tcp` text, which at 10,000 sockets
//! is megabytes. Both families come from one walk of the kernel's TCP table
//! (the older `TCPDIAG_GETSOCK` request; a walk per family cost a fixed 2-3 ms
//! a sample, most of a small process's sample). netlink answers for fdsoak's own network namespace, so a
//! target in another namespace is read from its `/proc/PID/net/tcp{,6}`
//! instead (see [`super::probe`]).

use super::links::FdDir;
use crate::domain::Inodes;
use crate::domain::{FdKinds, TcpStates};
use rustix::fd::OwnedFd;
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

/// Lists `/proc/PID/fd`, classifying each descriptor; returns the kinds and the socket inodes.
pub fn list_fds(pid: i32, skip_proc_paths: bool) -> io::Result<(FdKinds, Inodes)> {
    Ok(classify(&FdDir::open(pid)?, skip_proc_paths))
}

/// Classifies each of a listing's descriptors by its link; returns the kinds and the socket inodes.
pub fn classify(dir: &FdDir, skip_proc_paths: bool) -> (FdKinds, Inodes) {
    let parts = dir.read(
        || (FdKinds::default(), Inodes::default()),
        |(kinds, inodes), _, link| {
            if skip_proc_paths && link.starts_with(b"/proc/") {
                return;
            }
            kinds.total += 1;
            if let Some(rest) = link.strip_prefix(b"socket:[") {
                kinds.socket += 1;
                if let Some(inode) = parse_inode(rest) {
                    inodes.insert(inode);
                }
            } else if link.starts_with(b"pipe:[") {
                kinds.pipe += 1;
            } else if link.starts_with(b"anon_inode:") {
                kinds.anon += 1;
            } else if link.starts_with(b"/memfd:") || (link.starts_with(b"/") && !link.starts_with(b"/dev/")) {
                kinds.file += 1;
            } else {
                kinds.other += 1;
            }
        },
    );
    let mut out = (FdKinds::default(), Inodes::default());
    for (k, i) in parts {
        let o = &mut out.0;
        (o.total, o.socket, o.pipe, o.file, o.anon, o.other) = (
            o.total + k.total,
            o.socket + k.socket,
            o.pipe + k.pipe,
            o.file + k.file,
            o.anon + k.anon,
            o.other + k.other,
        );
        out.1.extend(i);
    }
    out
}

fn parse_inode(digits_then_bracket: &[u8]) -> Option<u64> {
    let end = digits_then_bracket.iter().position(|b| *b == b']')?;
    std::str::from_utf8(&digits_then_bracket[..end]).ok()?.parse().ok()
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The older inet_diag request for TCP, which dumps both families in one walk.
const TCPDIAG_GETSOCK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const IPPROTO_TCP: u8 = 6;
/// Offsets inside a reply: the netlink header is 16 bytes; in `inet_diag_msg`
/// the state is byte 1 and the inode is the u32 at byte 68.
const HDR: usize = 16;
const STATE_AT: usize = HDR + 1;
const INODE_AT: usize = HDR + 68;

/// Counts, by state, the TCP sockets (IPv4 and IPv6) whose inodes are in `inodes`.
pub fn tcp_states(inodes: &Inodes) -> io::Result<TcpStates> {
    let mut states = TcpStates::default();
    dump_tcp(|i| inodes.contains(&i), |msg| states.add_code(msg[STATE_AT - HDR]))?;
    Ok(states)
}

/// Every TCP socket of the host (both families), as (inode, state): read beside a long
/// listing, before its inodes are known, and counted against them after ([`count_states`]).
pub fn all_tcp_states() -> io::Result<Vec<(u64, u8)>> {
    let mut out = Vec::new();
    dump_tcp(|_| true, |msg| out.push((inode_of(msg), msg[STATE_AT - HDR])))?;
    Ok(out)
}

/// The states of those sockets in `all` whose inodes are in `inodes`.
pub fn count_states(all: &[(u64, u8)], inodes: &Inodes) -> TcpStates {
    let mut states = TcpStates::default();
    for (_, state) in all.iter().filter(|(i, _)| inodes.contains(i)) {
        states.add_code(*state);
    }
    states
}

fn inode_of(msg: &[u8]) -> u64 {
    u64::from(u32::from_ne_bytes([msg[68], msg[69], msg[70], msg[71]]))
}

/// One TCP socket from the kernel's table: state code, local and remote address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub inode: u64,
    pub state: u8,
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
}

/// The TCP sockets (IPv4 and IPv6) whose inodes are in `inodes`, with their addresses.
pub fn tcp_sockets(inodes: &Inodes) -> io::Result<Vec<TcpSocket>> {
    tcp_sockets_where(|i| inodes.contains(&i))
}

/// Every TCP socket of the host, with addresses: read beside a long listing, and kept
/// to those of the listing after.
pub fn all_tcp_sockets() -> io::Result<Vec<TcpSocket>> {
    tcp_sockets_where(|_| true)
}

fn tcp_sockets_where(keep: impl Fn(u64) -> bool) -> io::Result<Vec<TcpSocket>> {
    let mut out = Vec::new();
    dump_tcp(keep, |msg| {
        // inet_diag_msg: family, state, timer, retrans, then sport, dport (big-endian), src[16], dst[16].
        let port = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
        let ip = |at: usize| -> std::net::IpAddr {
            let mut b = [0u8; 16];
            b.copy_from_slice(&msg[at..at + 16]);
            if msg[0] == libc_af(AddressFamily::INET) {
                std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
            } else {
                std::net::Ipv6Addr::from(b).to_canonical()
            }
        };
        out.push(TcpSocket {
            inode: inode_of(msg),
            state: msg[1],
            local: (ip(8), port(4)).into(),
            remote: (ip(24), port(6)).into(),
        });
    })?;
    Ok(out)
}

/// Dumps every TCP socket of both families and calls `visit` with the
/// `inet_diag_msg` (at least 72 bytes) of each whose inode `keep` takes.
fn dump_tcp(keep: impl Fn(u64) -> bool, mut visit: impl FnMut(&[u8])) -> io::Result<()> {
    let sock = diag_socket()?;
    let mut buf = vec![0u8; 64 * 1024];
    let answered = std::cell::Cell::new(false);
    let mut each = |msg: &[u8]| {
        answered.set(true);
        if msg.len() >= INODE_AT - HDR + 4 && keep(inode_of(msg)) {
            visit(&msg[..72]);
        }
    };
    // The older request asks for both families in one walk of the kernel's table:
    // nlmsghdr (16 bytes) + inet_diag_req (60 bytes), every state. A kernel without it
    // refuses before answering anything, and is asked once per family instead.
    let mut both = [0u8; 76];
    header(&mut both, TCPDIAG_GETSOCK, 1);
    both[68..72].copy_from_slice(&u32::MAX.to_ne_bytes());
    match dump(&sock, &both, &mut buf, &mut each) {
        Ok(()) => return Ok(()),
        // A dump that failed part way is not asked again: its sockets were already counted.
        Err(e) if answered.get() => return Err(e),
        Err(_) => {}
    }
    let sock = diag_socket()?;
    for (seq, family) in [(2u32, libc_af(AddressFamily::INET)), (3, libc_af(AddressFamily::INET6))] {
        // nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes): every state, every socket of the family.
        let mut req = [0u8; 72];
        header(&mut req, SOCK_DIAG_BY_FAMILY, seq);
        req[16] = family;
        req[17] = IPPROTO_TCP;
        req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        dump(&sock, &req, &mut buf, &mut each)?;
    }
    Ok(())
}

/// One Unix socket from the kernel's table: its state (10 listening, 1
/// connected), the name it is bound to (a path, or `@name` for an abstract
/// one; an accepted socket carries its listener's), and its peer's inode (0 for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    pub state: u8,
    pub name: Option<String>,
    pub peer: u64,
}

const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;

/// Every Unix socket in fdsoak's network namespace, by inode, with names and peers:
/// what `ss -xp` reads. A client's socket has no name of its own; its peer's names the server.
pub fn unix_sockets() -> io::Result<std::collections::HashMap<u64, UnixSocket>> {
    let sock = diag_socket()?;
    let mut buf = vec![0u8; 64 * 1024];
    // nlmsghdr (16 bytes) + unix_diag_req (24 bytes): every state, with names and peers.
    let mut req = [0u8; 40];
    header(&mut req, SOCK_DIAG_BY_FAMILY, 4);
    req[16] = libc_af(AddressFamily::UNIX);
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[28..32].copy_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER).to_ne_bytes());
    let mut out = std::collections::HashMap::new();
    dump(&sock, &req, &mut buf, |msg| {
        if let Some((inode, s)) = parse_unix(msg) {
            out.insert(inode, s);
        }
    })?;
    Ok(out)
}

/// A `unix_diag_msg` (16 bytes) and its attributes.
fn parse_unix(msg: &[u8]) -> Option<(u64, UnixSocket)> {
    let inode = u32::from_ne_bytes(msg.get(4..8)?.try_into().ok()?);
    let mut s = UnixSocket {
        state: *msg.get(2)?,
        name: None,
        peer: 0,
    };
    let mut at = 16;
    while at + 4 <= msg.len() {
        let len = usize::from(u16::from_ne_bytes([msg[at], msg[at + 1]]));
        let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
        if len < 4 || at + len > msg.len() {
            break;
        }
        let data = &msg[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME if !data.is_empty() => {
                s.name = Some(match data.strip_prefix(&[0]) {
                    Some(abs) => format!("@{}", String::from_utf8_lossy(abs)),
                    None => String::from_utf8_lossy(data.split(|b| *b == 0).next().unwrap_or(data)).into_owned(),
                });
            }
            UNIX_DIAG_PEER if data.len() >= 4 => s.peer = u64::from(u32::from_ne_bytes(data[..4].try_into().ok()?)),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Some((u64::from(inode), s))
}

fn diag_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?)
}

/// Fills the netlink header of a dump request of `req.len()` bytes.
fn header(req: &mut [u8], kind: u16, seq: u32) {
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&kind.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
}

/// Sends one dump request and calls `visit` with the payload of each reply message.
fn dump(sock: &OwnedFd, req: &[u8], buf: &mut [u8], mut visit: impl FnMut(&[u8])) -> io::Result<()> {
    rustix::net::sendto(sock, req, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0))?;
    loop {
        let (len, _) = rustix::net::recv(sock, &mut buf[..], RecvFlags::empty())?;
        if len == 0 {
            return Ok(());
        }
        let mut at = 0;
        while at + HDR <= len {
            let msg_len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
            if msg_len < HDR || at + msg_len > len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated sock_diag reply"));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = i32::from_ne_bytes(buf[at + HDR..at + HDR + 4].try_into().unwrap());
                    return Err(io::Error::from_raw_os_error(-code));
                }
                _ => visit(&buf[at + HDR..at + msg_len]),
            }
            at += (msg_len + 3) & !3;
        }
    }
}

fn libc_af(af: AddressFamily) -> u8 {
    af.as_raw() as u8
}

/// Whether `pid` shares fdsoak's network namespace (so netlink sees its sockets).
pub fn same_netns(pid: i32) -> bool {
    match (
        std::fs::read_link("/proc/self/ns/net"),
        std::fs::read_link(format!("/proc/{pid}/ns/net")),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
