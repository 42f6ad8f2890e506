//! Who holds whose other end, on made-up connection tables: directly, through
//! the proxy's relays, never for CLOSE_WAIT or for a peer that did not grow,
//! and never more than the group grew. Then the gates: a held group fails
//! nothing unless `max_held_by_peer` is set.

use super::*;
use crate::analysis::findings::{evaluate, Finding};
use crate::analysis::tests_support::{analysis, group};
use crate::domain::{FindingKind, Gate};
use crate::scenario::Gates;

const SERVER: &str = "127.0.0.1:50051";
const PROXY: &str = "127.0.0.1:40000";
const ACCEPTED: &str = "ESTABLISHED from clients of :50051";

fn at(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn end(local: &str, remote: &str, state: u8, group: &str) -> ConnEnd {
    ConnEnd {
        local: at(local),
        remote: at(remote),
        state,
        group: group.into(),
    }
}

/// A server whose accepted group grew by `grew`, and a client whose group toward `dialled` grew by `leaked`.
fn pair(grew: i64, leaked: i64, dialled: &str) -> (Vec<ProcessAnalysis>, String) {
    let mut server = analysis(Role::Target);
    server.pid = 10;
    server.groups = vec![group(GroupKind::Tcp, ACCEPTED, grew, true)];
    let mut client = analysis(Role::Client);
    client.pid = 20;
    let toward = format!("ESTABLISHED to {dialled} from an ephemeral port");
    client.groups = vec![group(GroupKind::Tcp, &toward, leaked, true)];
    (vec![server, client], toward)
}

/// `n` connections from client ports 30000.. to the server, each end in `state`.
fn direct(n: u16, state: u8, toward: &str) -> Connections {
    let port = |p: u16| format!("127.0.0.1:{p}");
    Connections {
        ends: vec![
            (
                Role::Target,
                10,
                (0..n).map(|i| end(SERVER, &port(30000 + i), state, ACCEPTED)).collect(),
            ),
            (
                Role::Client,
                20,
                (0..n).map(|i| end(&port(30000 + i), SERVER, state, toward)).collect(),
            ),
        ],
        relays: Vec::new(),
    }
}

#[test]
fn the_server_ends_of_a_clients_leak_are_held_by_the_client() {
    let (mut procs, toward) = pair(13, 13, SERVER);
    attribute(&mut procs, &direct(13, ESTABLISHED, &toward));
    let held = &procs[0].held;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].count, held[0].holder, held[0].holder_pid),
        (13, Role::Client, 20)
    );
    assert_eq!(
        (held[0].holder_group.as_str(), held[0].holder_change),
        (toward.as_str(), 13)
    );
    assert!(procs[1].held.is_empty(), "the client holds, it is not held");
}

#[test]
fn a_dual_stack_servers_ipv4_mapped_ends_meet_the_clients_ipv4_ones() {
    let (mut procs, toward) = pair(2, 2, SERVER);
    let mut conns = direct(2, ESTABLISHED, &toward);
    for e in &mut conns.ends[0].2 {
        let mapped = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => SocketAddr::from((v4.ip().to_ipv6_mapped(), v4.port())),
            v6 => v6,
        };
        (e.local, e.remote) = (mapped(e.local), mapped(e.remote));
    }
    attribute(&mut procs, &conns);
    assert_eq!(procs[0].held.first().map(|h| h.count), Some(2), "{:?}", procs[0].held);
}

#[test]
fn through_the_proxy_each_relay_leads_to_the_client() {
    let (mut procs, toward) = pair(3, 3, PROXY);
    let port = |p: u16| format!("127.0.0.1:{p}");
    let mut conns = Connections::default();
    // Client port 30000+i dials the proxy; the proxy's upstream port 31000+i dials the server.
    conns.ends.push((
        Role::Target,
        10,
        (0..3)
            .map(|i| end(SERVER, &port(31000 + i), ESTABLISHED, ACCEPTED))
            .collect(),
    ));
    conns.ends.push((
        Role::Client,
        20,
        (0..3)
            .map(|i| end(&port(30000 + i), PROXY, ESTABLISHED, &toward))
            .collect(),
    ));
    conns.relays = (0..3)
        .map(|i| [(at(PROXY), at(&port(30000 + i))), (at(&port(31000 + i)), at(SERVER))])
        .collect();
    attribute(&mut procs, &conns);
    assert_eq!(
        procs[0].held.iter().map(|h| h.count).sum::<u64>(),
        3,
        "{:?}",
        procs[0].held
    );
}

#[test]
fn close_wait_a_peer_that_did_not_grow_and_more_than_grew_are_not_held() {
    let (mut procs, toward) = pair(5, 5, SERVER);
    attribute(&mut procs, &direct(5, 8, &toward));
    assert!(procs[0].held.is_empty(), "CLOSE_WAIT: the peer has left");

    let (mut procs, toward) = pair(5, 0, SERVER);
    procs[1].groups.clear();
    attribute(&mut procs, &direct(5, ESTABLISHED, &toward));
    assert!(
        procs[0].held.is_empty(),
        "a client whose connections did not grow holds nothing"
    );

    let (mut procs, toward) = pair(2, 9, SERVER);
    attribute(&mut procs, &direct(9, ESTABLISHED, &toward));
    assert_eq!(procs[0].held[0].count, 2, "no more than the group grew");
}

#[test]
fn a_held_group_fails_no_gate_of_its_holder_unless_max_held_by_peer_is_set() {
    let (mut procs, toward) = pair(13, 13, SERVER);
    procs[0].residual_fds = 13;
    procs[0].growth_fds = 13.0;
    procs[0].close_wait_final = 0;
    attribute(&mut procs, &direct(13, ESTABLISHED, &toward));
    let target = &procs[..1];

    let (checks, findings) = evaluate(&Gates::default(), target, &[]);
    assert!(checks.iter().all(|c| c.passed), "{checks:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    let text = findings[0].to_string();
    assert_eq!(findings[0].kind(), FindingKind::HeldByPeer);
    assert!(
        text.contains("held open by the client (pid 20), whose +13 leaked connections they are"),
        "{text}"
    );
    assert!(text.ends_with("the target's gates leave them out"), "{text}");

    let gates = Gates {
        max_held_by_peer: Some(0),
        ..Gates::default()
    };
    let (checks, findings) = evaluate(&gates, target, &[]);
    let held = checks.iter().find(|c| c.gate == Gate::MaxHeldByPeer).expect("a check");
    assert!(!held.passed && held.value == 13.0, "{held:?}");
    assert!(
        findings
            .iter()
            .any(|f| matches!(f, Finding::HeldByPeer { judged: true, .. })),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.kind() == FindingKind::ResidualFds),
        "judged here, the count is its own again: {findings:?}"
    );
}
