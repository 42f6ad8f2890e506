//! The sampler against real sockets in this process: kinds, states (netlink
//! and the text tables agree), and the cheap count. Its own binary: it
//! counts this process's sockets, so no other test may open any meanwhile.

mod common;

use fdsoak::sampler::{fast, probe};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The tests here count this process's descriptors, so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sockets_are_counted_by_kind_and_state_and_both_state_readers_agree() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        r.tcp.get(fdsoak::domain::TcpState::Established) >= before.tcp.get(fdsoak::domain::TcpState::Established) + 6,
        "{:?}",
        r.tcp
    );
    assert!(r.tcp.get(fdsoak::domain::TcpState::Listen) > before.tcp.get(fdsoak::domain::TcpState::Listen));
    assert_eq!(r.tcp.close_wait(), before.tcp.close_wait() + 1);

    // An IPv6 connection too, where the machine has ::1: one dump reads both families.
    let v6 = TcpListener::bind("[::1]:0").ok().map(|l| {
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (l, c, s)
    });
    let (_, inodes) = fast::list_fds(me, true).unwrap();
    let netlink = fast::tcp_states(&inodes).unwrap();
    if v6.is_some() {
        let r6 = probe::probe(me).unwrap();
        assert_eq!(
            r6.tcp.get(fdsoak::domain::TcpState::Listen),
            r.tcp.get(fdsoak::domain::TcpState::Listen) + 1
        );
        assert_eq!(
            r6.tcp.get(fdsoak::domain::TcpState::Established),
            r.tcp.get(fdsoak::domain::TcpState::Established) + 2
        );
    }
    let text = probe::tcp_from_text_tables(&procfs::process::Process::myself().unwrap(), &inodes);
    assert_eq!(netlink, text, "netlink sock_diag and /proc/net/tcp agree");
    assert_eq!(
        probe::count_fds(me).unwrap(),
        r.fds.total + if v6.is_some() { 3 } else { 0 }
    );
    drop((held, half, listener, v6));
}

/// A real process holding `n` loopback sockets (both ends of `n / 2` connections, their
/// clients bound to `peers` source addresses) and a listener; it exits when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn start(n: usize, peers: usize) -> Holder {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/holder.py");
        let mut child = std::process::Command::new("python3")
            .args([script, &n.to_string(), &peers.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn a_long_listing_read_in_parallel_beside_the_host_dump_counts_what_one_thread_does() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Long enough that the links are read by several threads beside the netlink dump.
    let n = 2 * fdsoak::sampler::links::PARALLEL_FROM;
    let holder = Holder::start(n, 50);
    let pid = holder.0.id() as i32;
    let r = probe::probe(pid).unwrap();
    assert_eq!(r.fds.socket, n as u64 + 1, "every socket and the listener");
    assert_eq!(
        r.tcp.get(fdsoak::domain::TcpState::Established),
        n as u64,
        "{:?}",
        r.tcp
    );
    assert_eq!(r.tcp.get(fdsoak::domain::TcpState::Listen), 1);
    // The same process read the slow way: one thread, its own text tables.
    let (_, inodes) = fast::list_fds(pid, false).unwrap();
    let proc = procfs::process::Process::new(pid).unwrap();
    assert_eq!(probe::tcp_from_text_tables(&proc, &inodes), r.tcp);
    // The fingerprint groups them the same, whatever the peers: accepted ones by the port.
    let fp = fdsoak::sampler::fingerprint::fingerprint(pid, None).unwrap();
    let tcp: Vec<(&str, u64)> = fp
        .iter()
        .filter(|(k, _)| k.kind == fdsoak::domain::GroupKind::Tcp)
        .map(|(k, c)| (k.what.as_str(), *c))
        .collect();
    assert_eq!(tcp.len(), 3, "{tcp:?}");
    assert!(
        tcp.iter()
            .any(|(w, c)| w.starts_with("ESTABLISHED from clients of :") && *c == n as u64 / 2),
        "{tcp:?}"
    );
    assert!(
        tcp.iter()
            .any(|(w, c)| w.starts_with("ESTABLISHED to 127.0.0.1:") && *c == n as u64 / 2),
        "{tcp:?}"
    );
    drop(holder);
}
