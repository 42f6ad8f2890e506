//! The channel ledger (uprobes, as root), against real grpc-go programs built
//! here: a server that dials a backend on a fresh ClientConn every 20th Check
//! and never closes it is named at its `grpc.Dial` line, started or attached,
//! stripped or not,
//! with its channels counted (created, closed, still open) and the sockets'
//! own stack kept behind it; its twin that closes each ClientConn passes 20
//! times out of 20; a checker under test that dials a fresh ClientConn after
//! each failed check is named at its dial, and its good twin passes; a C++
//! client on Debian's libgrpc++ that keeps a channel per call is named at its
//! line through the C core's probes and its unwound stack, and its twin that
//! releases each one passes.

use super::kernel_origin::{go_server, root, short};
use crate::common::*;
use fdsoak::analysis::groups::GroupChange;
use fdsoak::domain::{OriginSource, OriginVia};

/// `role`'s grown group of connections to a peer.
fn outbound(r: &RunResult, role: &str) -> GroupChange {
    r.process(role)
        .groups
        .iter()
        .find(|g| g.what.starts_with("ESTABLISHED to "))
        .cloned()
        .unwrap_or_else(|| panic!("no outbound group for the {role}: {}", r.context()))
}

/// The group's first origin is the channel site at `line` of `file` in `function`,
/// seen by the kernel: channels created, none closed; it is in the findings' sentence.
fn named_at_dial(r: &RunResult, role: &str, file: &str, function: &str, line: usize) {
    let g = outbound(r, role);
    let o = g
        .origins
        .first()
        .unwrap_or_else(|| panic!("no origins for {g:?}: {}", r.context()));
    assert_eq!(
        (o.stack.via, o.stack.source),
        (OriginVia::Channel, OriginSource::Kernel),
        "{o:?}"
    );
    let top = o.stack.top_user_frame().unwrap();
    assert_eq!((top.function.as_str(), top.line as usize), (function, line), "{o:?}");
    assert!(top.file.ends_with(file), "{top:?}");
    let c = o
        .channels
        .as_ref()
        .unwrap_or_else(|| panic!("no channel counts: {o:?}"));
    assert!(c.created >= o.count && o.count >= 2, "{o:?}");
    assert_eq!((c.closed, c.still_open), (0, c.created), "{o:?}");
    assert!(g.what.contains(c.target.as_str()), "{c:?} in {g:?}");
    let name = file.rsplit('/').next().unwrap_or(file);
    let want = "channels to it created at ";
    let at = format!("{name}:{line} in {function}: created ");
    assert!(
        r.stdout.lines().any(|l| l.contains(want) && l.contains(&at)),
        "no {want:?}…{at:?} in the findings: {}",
        r.context()
    );
    no_plumbing_named(r);
    // The one entry of the leak says it in summary.md and report.html too.
    for file in ["summary.md", "report.html"] {
        let text = std::fs::read_to_string(r.out.path().join(file)).unwrap();
        assert!(
            text.contains(want) && text.contains(&at),
            "{file} does not name the dial"
        );
    }
    // The sockets' own creating stack (grpc-go's goroutine) stays in the details.
    assert!(
        g.origins.iter().any(|o| o.stack.via == OriginVia::Opened),
        "{:?}",
        g.origins
    );
}

/// No finding, nor any origin the report leads with, names a runtime's own source
/// (Go's assembly and standard library, libuv, glibc) as where something was made.
pub(crate) fn no_plumbing_named(r: &RunResult) {
    for line in r.stdout.lines().filter(|l| l.contains(" at ") || l.contains(" in ")) {
        for plumbing in ["asm_linux_", ".s:", "/deps/uv/", "sysdeps/", "/usr/lib/go-"] {
            assert!(!line.contains(plumbing), "{plumbing:?} named in {line:?}");
        }
    }
    for p in r.summary().processes {
        for g in p.groups {
            if let Some(top) = g.origins.first().and_then(|o| o.stack.top_user_frame()) {
                assert!(!top.is_plumbing(), "{top:?} leads {g:?}");
            }
        }
    }
}

#[test]
fn a_go_server_that_never_closes_a_backend_channel_is_named_at_its_dial_started_or_attached() {
    if !root() {
        return;
    }
    let dir = TempDir::new("channels-go-server");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let line = line_of("tests/programs/goleak/main.go", "cc, err := grpc.Dial(backend");
    let file = "tests/programs/goleak/main.go";
    let sc = short(&dir, 6000, "shared");
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak channel", exe.display());
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_at_dial(&r, "target", file, "main.askBackend", line);
    // The shared ClientConn to the same backend, made once at start, is not the leak.
    let g = outbound(&r, "target");
    assert!(
        g.origins
            .iter()
            .all(|o| o.stack.frames.iter().all(|f| f.function != "main.sharedBackend")),
        "{:?}",
        g.origins
    );
    let summary = std::fs::read_to_string(r.out.path().join("summary.json")).unwrap();
    assert!(
        summary.contains("\"still_open\""),
        "the channel counts are in summary.json"
    );

    let server = go_server(&exe, "channel");
    let r = run(&sc, &["--origin", "--target", &server.addr]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_at_dial(&r, "target", file, "main.askBackend", line);
    drop(server);

    // Stripped (no symbol table, no DWARF): the probes are found in its .gopclntab.
    let Some(stripped) = go_build_with(&dir, "tests/programs/goleak", &["-ldflags=-s -w"]) else {
        return;
    };
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak channel", stripped.display());
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let g = outbound(&r, "target");
    let o = g.origins.first().unwrap_or_else(|| panic!("{g:?}: {}", r.context()));
    assert_eq!(o.stack.via, OriginVia::Channel, "{o:?}");
    let top = o.stack.top_user_frame().unwrap();
    // The dial is grpc.Dial inlined into askBackend: the table names no line inside inlined code.
    assert_eq!(top.function, "main.askBackend", "{o:?}");
    assert!(
        top.file.ends_with(file) && [0, line].contains(&(top.line as usize)),
        "{top:?}"
    );
    assert!(
        o.channels.as_ref().is_some_and(|c| c.created >= 2 && c.closed == 0),
        "{o:?}"
    );
}

#[test]
fn a_go_server_that_closes_each_channel_passes_20_times_out_of_20() {
    if !root() {
        return;
    }
    let dir = TempDir::new("channels-go-closed");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let sc = short(&dir, 3000, "shared");
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak channel-closed", exe.display());
    std::thread::scope(|s| {
        for half in 0..2 {
            let (sc, spawn) = (&sc, &spawn);
            s.spawn(move || {
                for i in 0..10 {
                    let r = run(sc, &["--origin", "--spawn", spawn]);
                    assert_eq!(r.code, 0, "run {} of 20: {}", half * 10 + i, r.context());
                }
            });
        }
    });
}

#[test]
fn a_go_checker_that_dials_again_after_each_failed_check_is_named_at_its_dial_and_its_twin_passes() {
    if !root() {
        return;
    }
    let dir = TempDir::new("channels-go-client");
    let Some(exe) = go_build(&dir, "tests/programs/gochecker") else {
        return;
    };
    let line = line_of("tests/programs/gochecker/main.go", "cc, err := grpc.Dial(target");
    let sc = stalls(&dir);
    let leaky = format!("{} {{addr}} retry-leak", exe.display());
    let r = run(&sc, &["--origin", "--client", &leaky]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_at_dial(&r, "client", "tests/programs/gochecker/main.go", "main.newConn", line);
    let good = format!("{} {{addr}} good", exe.display());
    for i in 0..3 {
        let r = run(&sc, &["--origin", "--client", &good]);
        assert_eq!(r.code, 0, "run {i}: {}", r.context());
    }
}

#[test]
fn a_cpp_client_that_keeps_a_channel_per_call_is_named_at_its_line_and_its_twin_passes() {
    if !root() {
        return;
    }
    let dir = TempDir::new("channels-cpp");
    let Some(exe) = grpc_cpp(&dir, "tests/programs/cppchannels/main.cc", "cppchannels") else {
        return;
    };
    let line = line_of(
        "tests/programs/cppchannels/main.cc",
        "return grpc::CreateCustomChannel(",
    );
    let sc = dir.write(
        "client.toml",
        "name = \"client\"\n[client]\ncommand = \"true\"\n[sampler]\ninterval = \"200ms\"\n\
         [[phases]]\nname = \"baseline\"\nduration = \"2s\"\n\
         [[phases]]\nname = \"load\"\nduration = \"5s\"\n\
         [[phases]]\nname = \"drain\"\nduration = \"2s\"\n",
    );
    let keep = format!("{} {{addr}} keep", exe.display());
    let r = run(&sc, &["--origin", "--client", &keep]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_at_dial(&r, "client", "tests/programs/cppchannels/main.cc", "newChannel", line);
    let drop = format!("{} {{addr}} drop", exe.display());
    for i in 0..3 {
        let r = run(&sc, &["--origin", "--client", &drop]);
        assert_eq!(r.code, 0, "run {i}: {}", r.context());
    }
}
