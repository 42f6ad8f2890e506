//! The sampler against real sockets in this process: kinds, states (netlink
//! and the text tables agree), and the cheap count. Its own binary: it
//! counts this process's sockets, so no other test may open any meanwhile.

mod common;

use fdsoak::sampler::{fast, probe};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[test]
fn sockets_are_counted_by_kind_and_state_and_both_state_readers_agree() {
    let me = std::process::id() as i32;
    let before = probe::probe(me).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        held.push((c, s));
    }
    // One connection whose peer leaves: our end stays in CLOSE_WAIT until we close it.
    let gone = TcpStream::connect(addr).unwrap();
    let (mut half, _) = listener.accept().unwrap();
    drop(gone);
    let mut byte = [0u8; 1];
    assert_eq!(half.read(&mut byte).unwrap(), 0, "the peer's FIN arrived");

    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = probe::probe(me).unwrap();
        if r.tcp.close_wait() >= 1 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        r.fds.socket,
        before.fds.socket + 8,
        "listener + 3 pairs + the half-closed one"
    );
    assert_eq!(r.fds.total, before.fds.total + 8);
    assert!(
        r.tcp.get(fdsoak::vocab::TcpState::Established) >= before.tcp.get(fdsoak::vocab::TcpState::Established) + 6,
        "{:?}",
        r.tcp
    );
    assert!(r.tcp.get(fdsoak::vocab::TcpState::Listen) > before.tcp.get(fdsoak::vocab::TcpState::Listen));
    assert_eq!(r.tcp.close_wait(), before.tcp.close_wait() + 1);

    let (_, inodes) = fast::list_fds(me, true).unwrap();
    let netlink = fast::tcp_states(&inodes).unwrap();
    let text = probe::tcp_from_text_tables(&procfs::process::Process::myself().unwrap(), &inodes);
    assert_eq!(netlink, text, "netlink sock_diag and /proc/net/tcp agree");
    assert_eq!(probe::count_fds(me).unwrap(), r.fds.total);
    drop((held, half, listener));
}
