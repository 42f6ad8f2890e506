//! JavaScript frames from Node's own perf map, with the kernel ledger (as
//! root): a grpc-js server that keeps a file every Nth Check is named at its
//! `.js` file, line and function, not at libuv; a clean grpc-js server passes
//! 20 times out of 20 with origins on; and what the flags fdsoak gave Node
//! made it leave behind (its perf map, V8's empty log) is gone after the run.
//! Attached with `--target`, a Node server started with the flags is named the
//! same; one started without them gets a note naming the flags.
//!
//! The channel ledger (no root needed: the script on Node's `--require` and the
//! agent on `LD_PRELOAD`): a grpc-js server that makes a Client on its own
//! subchannel pool every Nth Check, never closed, is named at the line of
//! `new Client(...)`; Clients on the global pool, sharing one connection, pass;
//! Clients closed each time count each closed, and pass.

use crate::common::*;
use crate::kernel_origin::{root, short};
use std::process::Command;

/// A grpc-js server started by the test (so attached to by fdsoak), with `NODE_OPTIONS`
/// as given; killed on drop, and what the flags made it leave behind removed.
struct NodeServer(Listening);

impl NodeServer {
    fn start(server: &std::path::Path, mode: &[&str], node_options: &str) -> NodeServer {
        let mut cmd = Command::new("node");
        cmd.arg(server)
            .arg("0")
            .args(mode)
            .env("NODE_OPTIONS", node_options)
            .current_dir(std::env::temp_dir());
        NodeServer(Listening::start(cmd))
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        fdsoak::origin::perfmap::remove_leftovers(self.0.child.id(), &std::env::temp_dir());
    }
}

fn leftovers(pid: i32) -> Vec<String> {
    let mut found = Vec::new();
    let map = format!("/tmp/perf-{pid}.map");
    if std::path::Path::new(&map).exists() {
        found.push(map);
    }
    let suffix = format!("-{pid}-v8.log");
    for e in std::fs::read_dir(repo("")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("isolate-0x") && name.ends_with(&suffix) {
            found.push(name);
        }
    }
    found
}

#[test]
fn a_grpc_js_server_that_keeps_a_file_is_named_at_its_javascript_line() {
    if !root() {
        return;
    }
    let Some(server) = grpcjs_server() else { return };
    let dir = TempDir::new("js-leak");
    let sc = short(&dir, 5000, "shared");
    let spawn = format!("node {} {{port}} leak-file 5", server.display());
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    // V8's map names the line where a function begins: keepAuditLog's.
    let line = std::fs::read_to_string(&server)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("function keepAuditLog"))
        .unwrap()
        + 1;
    let want = format!("at {}:{line} in keepAuditLog", server.display());
    assert!(r.stdout.contains(&want), "want {want}: {}", r.context());
    assert!(!r.stdout.contains("in uv__fs_open"), "{}", r.context());
    let pid = r.summary().target.pid.unwrap();
    assert_eq!(leftovers(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn a_clean_grpc_js_server_passes_20_times_out_of_20_with_origins_on() {
    if !root() {
        return;
    }
    let Some(server) = grpcjs_server() else { return };
    let dir = TempDir::new("js-clean");
    let sc = short(&dir, 2500, "per_call");
    let spawn = format!("node {} {{port}} clean", server.display());
    std::thread::scope(|s| {
        for half in 0..2 {
            let (sc, spawn) = (&sc, &spawn);
            s.spawn(move || {
                for i in 0..10 {
                    let r = run(sc, &["--origin", "--spawn", spawn]);
                    assert_eq!(r.code, 0, "run {} : {}", half * 10 + i, r.context());
                    let pid = r.summary().target.pid.unwrap();
                    assert_eq!(leftovers(pid), Vec::<String>::new(), "left behind");
                }
            });
        }
    });
}

#[test]
fn an_attached_node_server_is_named_with_its_perf_map_and_told_the_flags_without() {
    if !root() {
        return;
    }
    let Some(server) = grpcjs_server() else { return };
    let dir = TempDir::new("js-attached");
    let sc = short(&dir, 4000, "shared");
    let with = NodeServer::start(&server, &["leak-file", "5"], fdsoak::origin::perfmap::NODE_FLAGS);
    let r = run(&sc, &["--origin", "--target", &with.0.addr]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(r.stdout.contains("in keepAuditLog"), "{}", r.context());
    drop(with);
    let without = NodeServer::start(&server, &["clean"], "");
    let r = run(&sc, &["--origin", "--target", &without.0.addr]);
    assert_eq!(r.code, 0, "{}", r.context());
    let want = format!("start it with NODE_OPTIONS=\"{}\"", fdsoak::origin::perfmap::NODE_FLAGS);
    assert!(
        r.stdout.contains("is Node, writing no perf map") && r.stdout.contains(&want),
        "{}",
        r.context()
    );
}

const SERVER_JS: &str = "tests/programs/grpcjs/server.js";

#[test]
fn a_grpc_js_server_that_never_closes_its_clients_is_named_at_new_client() {
    let Some(server) = grpcjs_server() else { return };
    let dir = TempDir::new("js-clients");
    let sc = short(&dir, 5000, "shared");
    let spawn = format!("node {} {{port}} leak-client 5", server.display());
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    // Its sockets are opened from grpc-js's callbacks; the ledger names where the Client was made.
    let line = line_of(SERVER_JS, "new grpc.Client(");
    let want = format!(
        "opened by channels to it created at {}:{line} in askSelf: created ",
        server.display()
    );
    assert!(r.stdout.contains(&want), "want {want}: {}", r.context());
    assert!(r.stdout.contains(", closed 0, "), "{}", r.context());
}

#[test]
fn grpc_js_clients_sharing_the_global_pool_pass_and_closed_ones_are_counted_closed() {
    let Some(server) = grpcjs_server() else { return };
    let dir = TempDir::new("js-clients-clean");
    let sc = short(&dir, 3000, "shared");
    for _ in 0..3 {
        let spawn = format!("node {} {{port}} shared-client 5", server.display());
        let r = run(&sc, &["--origin", "--spawn", &spawn]);
        assert_eq!(r.code, 0, "{}", r.context());
    }
    // The agents as `--origin --spawn` gives them, in a server the test starts, so that
    // its ledger can be read after the run.
    let agents = fdsoak::origin::Agents::install(true).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(&server).args(["0", "client-closed", "5"]);
    for (k, v) in agents.env() {
        cmd.env(k, v);
    }
    let node = Listening::start(cmd);
    let r = run(&sc, &["--target", &node.addr]);
    assert_eq!(r.code, 0, "{}", r.context());
    let sites = fdsoak::origin::grpcjs::channel_sites(node.child.id() as i32).expect("the ledger");
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert!(sites[0].created >= 5, "{sites:?}");
    assert_eq!(sites[0].created, sites[0].closed, "{sites:?}");
    assert_eq!(sites[0].target, node.addr, "{sites:?}");
    let user = sites[0]
        .frames
        .iter()
        .find(|f| !f.library)
        .expect("a frame of the program's");
    assert_eq!(
        (user.function.as_str(), user.line as usize),
        ("askSelf", line_of(SERVER_JS, "new grpc.Client("))
    );
}
