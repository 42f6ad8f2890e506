//! Every error's real cause: what a server said at the HTTP/2 level (a GOAWAY's
//! code and debug data, kept though the connection closed at once) in the
//! readiness error, the calls' status causes and the error-rate finding; and
//! what a server that lacks a health method should do instead.

use crate::common::*;

#[test]
fn a_goaway_with_debug_data_is_in_the_readiness_error_as_grpcio_tells_it() {
    // grpc-java without perfmark on its classpath: Netty's handler fails each stream and
    // closes the connection with GOAWAY (INTERNAL_ERROR, "io/perfmark/PerfMark"), which
    // h2 alone reports as a broken pipe.
    let dir = TempDir::new("output-goaway");
    let Some(classpath) = javac(&dir, "tests/programs/java/BareServer.java", &GRPC_JAVA_JARS) else {
        return;
    };
    let sc = dir.write(
        "ready.toml",
        "name = \"goaway\"\n[target]\nready_timeout = \"5s\"\n[[phases]]\nname = \"load\"\nduration = \"1s\"\n",
    );
    let spawn = format!("java -cp {classpath} BareServer {{port}}");
    let r = run(&sc, &["--spawn", &spawn]);
    assert_eq!(r.code, 3, "{}", r.context());
    assert!(
        r.stdout
            .contains("after GOAWAY received: error code 2 (INTERNAL_ERROR), debug data 'io/perfmark/PerfMark'"),
        "{}",
        r.context()
    );
    // Its own words say the same, in its last lines and its log.
    assert!(
        r.stdout
            .contains("    | Caused by: java.lang.ClassNotFoundException: io.perfmark.PerfMark"),
        "{}",
        r.context()
    );
    let log = std::fs::read_to_string(r.out.path().join("target.log")).unwrap();
    assert!(
        log.contains("java.lang.NoClassDefFoundError: io/perfmark/PerfMark"),
        "{log:.2000}"
    );
}

#[test]
fn too_many_pings_names_its_goaway_in_the_status_causes_and_the_finding() {
    // grpc-go's keepalive enforcement: pings more often than -min-ping are answered with
    // GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings") and the connection is cut, with the
    // slow Check still open on it.
    let dir = TempDir::new("causes-pings");
    let Some(server) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let sc = dir.write(
        "pings.toml",
        "name = \"pings\"\n[[phases]]\nname = \"load\"\nduration = \"4s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 2\n  deadline = \"3s\"\n  keepalive_interval = \"50ms\"\n",
    );
    let spawn = format!(
        "{} -addr 127.0.0.1:{{port}} -min-ping 10s -slow 400ms",
        server.display()
    );
    let r = run(&sc, &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let words = "GOAWAY received: error code 11 (ENHANCE_YOUR_CALM), debug data 'too_many_pings'";
    assert!(
        r.stdout.contains(&format!("mostly UNAVAILABLE ({words})")),
        "{}",
        r.context()
    );
    let w = &r.summary().workloads[0];
    let cause = w.status_causes.first().unwrap_or_else(|| panic!("no cause: {w:?}"));
    assert_eq!((cause.code.as_str(), cause.cause.as_str()), ("UNAVAILABLE", words));
    assert!(cause.attempts >= 1 && cause.attempts <= w.errors, "{w:?}");
    let html = std::fs::read_to_string(r.out.path().join("report.html")).unwrap();
    assert!(html.contains("debug data &#39;too_many_pings&#39;") || html.contains("debug data 'too_many_pings'"));
}

#[test]
fn a_server_without_watch_is_told_which_scenarios_need_none_and_one_without_check_where_to_read() {
    let dir = TempDir::new("causes-unimplemented");
    let Some(server) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    // grpc-go's health server here implements Check alone.
    let watch = dir.write(
        "watch.toml",
        "name = \"watch\"\n[[phases]]\nname = \"load\"\nduration = \"2s\"\n  [[phases.workloads]]\n  kind = \"watch\"\n  streams = 2\n",
    );
    let spawn = format!("{} -addr 127.0.0.1:{{port}}", server.display());
    let r = run(&watch, &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.stdout
            .contains("mostly UNIMPLEMENTED: the target does not serve grpc.health.v1.Health/Watch"),
        "{}",
        r.context()
    );
    for name in fdsoak::analysis::findings::hints::CHECK_ONLY {
        assert!(
            r.stdout.contains(&format!("scenarios/{name}.toml")),
            "{name}: {}",
            r.context()
        );
    }
    // The built-in target without the health service, reached by a connection alone.
    let check = dir.write(
        "check.toml",
        "name = \"check\"\n[target]\nno_health = true\nready = \"connect\"\n[[phases]]\nname = \"load\"\nduration = \"1s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 10\n",
    );
    let r = run(&check, &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.stdout
            .contains("does not serve grpc.health.v1.Health/Check; wait for it with ready = \"connect\" or \"rpc\"")
            && r.stdout.contains("(docs/scenarios.md#target)"),
        "{}",
        r.context()
    );
}
