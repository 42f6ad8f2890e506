//! The fast paths of a sample, used whenever they apply.
//!
//! Descriptors are listed with one `getdents` pass over `/proc/PID/fd` and
//! one `readlinkat` per entry into a stack buffer, with no allocation per
//! descriptor. TCP states come from the kernel over netlink `sock_diag`, the
//! way `ss` reads them: a binary dump is several times cheaper than
//! formatting and parsing the `/proc/net/tcp` text, which at 10,000 sockets
//! is megabytes. netlink answers for fdsoak's own network namespace, so a
//! target in another namespace is read from its `/proc/PID/net/tcp{,6}`
//! instead (see [`super::probe`]).

use crate::vocab::Inodes;
use crate::vocab::{FdKinds, TcpStates};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, CWD};
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

/// Lists `/proc/PID/fd`, classifying each descriptor; returns the kinds and the socket inodes.
pub fn list_fds(pid: i32, skip_proc_paths: bool) -> io::Result<(FdKinds, Inodes)> {
    let dir: OwnedFd = rustix::fs::openat(
        CWD,
        format!("/proc/{pid}/fd"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = rustix::fs::Dir::read_from(&dir)?;
    let mut kinds = FdKinds::default();
    let mut inodes = Inodes::default();
    let mut buf = [0u8; 512];
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        // A descriptor closed while we list is simply not counted.
        let Ok(n) = rustix::fs::readlinkat_raw(&dir, name, &mut buf[..]) else {
            continue;
        };
        let link = &buf[..n.min(buf.len())];
        if skip_proc_paths && link.starts_with(b"/proc/") {
            continue;
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
    }
    Ok((kinds, inodes))
}

fn parse_inode(digits_then_bracket: &[u8]) -> Option<u64> {
    let end = digits_then_bracket.iter().position(|b| *b == b']')?;
    std::str::from_utf8(&digits_then_bracket[..end]).ok()?.parse().ok()
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
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
    dump_tcp(inodes, |msg| states.add_code(msg[STATE_AT - HDR]))?;
    Ok(states)
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
    let mut out = Vec::new();
    dump_tcp(inodes, |msg| {
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
        let inode = u32::from_ne_bytes([msg[68], msg[69], msg[70], msg[71]]);
        out.push(TcpSocket {
            inode: u64::from(inode),
            state: msg[1],
            local: (ip(8), port(4)).into(),
            remote: (ip(24), port(6)).into(),
        });
    })?;
    Ok(out)
}

/// Dumps every TCP socket of both families and calls `visit` with the
/// `inet_diag_msg` (at least 72 bytes) of each whose inode is in `inodes`.
fn dump_tcp(inodes: &Inodes, mut visit: impl FnMut(&[u8])) -> io::Result<()> {
    let sock = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    let mut buf = vec![0u8; 64 * 1024];
    for (seq, family) in [(1u32, libc_af(AddressFamily::INET)), (2, libc_af(AddressFamily::INET6))] {
        // nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes): every state, every socket of the family.
        let mut req = [0u8; 72];
        req[0..4].copy_from_slice(&72u32.to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        req[16] = family;
        req[17] = IPPROTO_TCP;
        req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        rustix::net::sendto(&sock, &req, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0))?;
        'dump: loop {
            let (len, _) = rustix::net::recv(&sock, &mut buf[..], RecvFlags::empty())?;
            let mut at = 0;
            while at + HDR <= len {
                let msg_len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
                if msg_len < HDR || at + msg_len > len {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated sock_diag reply"));
                }
                match kind {
                    NLMSG_DONE => break 'dump,
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(buf[at + HDR..at + HDR + 4].try_into().unwrap());
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ if msg_len >= INODE_AT + 4 => {
                        let inode = u32::from_ne_bytes(buf[at + INODE_AT..at + INODE_AT + 4].try_into().unwrap());
                        if inodes.contains(&u64::from(inode)) {
                            visit(&buf[at + HDR..at + INODE_AT + 4]);
                        }
                    }
                    _ => {}
                }
                at += (msg_len + 3) & !3;
            }
            if len == 0 {
                break;
            }
        }
    }
    Ok(())
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
