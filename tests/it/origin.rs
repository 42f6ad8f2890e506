//! Origins (`--origin`) against real Python programs using grpcio from PyPI
//! (`.ci/run` installs it): the line that opened what leaked is named, in
//! the finding and in summary.json, for a client and for servers; a clean
//! pair passes as it does without origins; an attached target is said to
//! carry no agent when the kernel ledger is off; the agents' files are gone
//! after the run.

use crate::common::*;
use std::path::Path;

fn python(program: &str, args: &str) -> String {
    format!(
        "python3 {} {args}",
        repo(&format!("tests/programs/{program}")).display()
    )
}

/// No agent directory of fdsoak's is left in `tmp`.
fn no_agent_files(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("fdsoak-origin-"))
        .collect();
    assert!(left.is_empty(), "agent files left behind: {left:?}");
}

#[test]
fn a_python_checker_that_leaks_a_channel_per_retry_is_named_at_its_insecure_channel_line() {
    let dir = TempDir::new("origin-checker");
    let line = line_of("tests/programs/checker.py", "grpc.insecure_channel(");
    let r = run(
        &stalls(&dir),
        &["--origin", "--client", &python("checker.py", "{addr} retry-leak")],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    let want = format!("checker.py:{line} in new_channel");
    assert!(r.stdout.contains(&want), "no {want:?} in the findings: {}", r.context());
    let g = r.top_group("client");
    let o = g
        .origins
        .first()
        .unwrap_or_else(|| panic!("no origins: {}", r.context()));
    assert_eq!(o.stack.via, fdsoak::domain::OriginVia::Channel);
    assert!(o.count >= 3, "{o:?}");
    let top = o.stack.top_user_frame().unwrap();
    assert_eq!((top.line as usize, top.function.as_str()), (line, "new_channel"));
    // The frames above it are the program's own too: the retry path that called it.
    assert!(o.stack.frames.iter().any(|f| f.function == "check_with_retry"), "{o:?}");
    // The groups table names it in summary.md, and unfolds its frames in report.html.
    let md = std::fs::read_to_string(r.out.path().join("summary.md")).unwrap();
    assert!(md.contains("| opened by |") && md.contains(&want), "summary.md:\n{md}");
    let html = std::fs::read_to_string(r.out.path().join("report.html")).unwrap();
    let cells: Vec<&str> = html.split("<td class=\"origins\"><details>").skip(1).collect();
    let cell = cells
        .iter()
        .find(|c| c.contains("check_with_retry"))
        .expect("no origins cell names the checker");
    assert!(
        cell.contains("<li><strong>"),
        "the program's own frames stand out: {cell:.400}"
    );

    // The same bug with grpc.aio.
    let line = line_of("tests/programs/checker.py", "grpc.aio.insecure_channel(");
    let r = run(
        &stalls(&dir),
        &["--origin", "--client", &python("checker.py", "{addr} aio-retry-leak")],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    let want = format!("checker.py:{line} in new_aio_channel");
    assert!(r.stdout.contains(&want), "no {want:?} in the findings: {}", r.context());
}

#[test]
fn python_servers_that_leak_files_or_backend_channels_are_named_at_the_line() {
    let dir = TempDir::new("origin-server");
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    for (mode, needle, function) in [
        ("leak-file 10", "kept.append(open(", "Check"),
        ("backend-channel", "backend = grpc.insecure_channel(", "Check"),
    ] {
        let line = line_of("tests/programs/server.py", needle);
        let spawn = python("server.py", &format!("{{port}} {mode}"));
        let r = run(&short, &["--origin", "--spawn", &spawn, "--nofile", "4096"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.context());
        let want = format!("server.py:{line} in {function}");
        assert!(r.stdout.contains(&want), "{mode}: no {want:?}: {}", r.context());
        let s = r.summary();
        let origin = s.origin.as_ref().unwrap();
        assert!(
            origin.notes.is_empty(),
            "{mode}: the Python target published its table: {origin:?}"
        );
    }
}

#[test]
fn origins_change_no_verdict_of_a_clean_pair_and_leave_no_files() {
    let dir = TempDir::new("origin-clean");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    for _ in 0..2 {
        let out = dir.path().join("report");
        let o = std::process::Command::new(FDSOAK)
            .arg("run")
            .arg(&short)
            .args(["--origin", "-q", "--out", out.to_str().unwrap(), "--spawn"])
            .arg(python("server.py", "{port} clean"))
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
        let s = read_summary(&out);
        assert_eq!(s.origin.as_ref().unwrap().agents, vec![fdsoak::domain::Role::Target]);
        no_agent_files(&tmp);
        std::fs::remove_dir_all(&out).unwrap();
    }
    // The good checker, through stalls, with its agent: still flat.
    let r = run(
        &stalls(&dir),
        &["--origin", "--client", &python("checker.py", "{addr} good")],
    );
    assert_eq!(r.code, 0, "{}", r.context());
}

#[test]
fn an_attached_target_is_said_to_carry_no_agent_without_the_kernel_ledger() {
    let server = Server::start(&[]);
    let dir = TempDir::new("origin-attached");
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[(
            "name = \"churn-short\"",
            "name = \"churn-short\"\n[origin]\nenabled = true\nkernel = false",
        )],
    );
    let r = run(&short, &["--target", &server.addr.to_string()]);
    assert_eq!(r.code, 0, "{}", r.context());
    let note = "origins need a process fdsoak starts";
    assert!(r.stdout.contains(note), "not said in the terminal: {}", r.context());
    let s = r.summary();
    let origin = s.origin.unwrap();
    assert!(origin.agents.is_empty());
    assert!(origin.notes.iter().any(|n| n.contains(note)), "{origin:?}");
}

/// Built-in leak knobs, each with the Rust function and the line that opens its descriptor.
#[test]
fn the_built_in_leak_knobs_name_the_rust_functions_that_open_their_descriptors() {
    let dir = TempDir::new("origin-native");
    let short = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    let serve = |knob: &str| format!("{FDSOAK} serve --port {{port}} {knob}");
    // The channel is dialled at the `.await` of its connect, a few lines into the function.
    let backend = |r: &RunResult| {
        let at = line_of("src/refserver/mod.rs", "async fn backend_channel(");
        let named = named_line(&r.stdout, "refserver/mod.rs", "fdsoak::refserver::backend_channel");
        assert!(
            named.is_some_and(|n| n > at && n < at + 6),
            "{named:?}, not backend_channel: {}",
            r.context()
        );
    };
    let file = line_of("src/refserver/mod.rs", "match std::fs::File::open(OWN_EXE)");
    let r = run(&short, &["--origin", "--spawn", &serve("--leak-fd-every 10")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let want = format!("refserver/mod.rs:{file} in fdsoak::refserver::HealthSvc::apply_knobs");
    assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
    let r = run(&short, &["--origin", "--spawn", &serve("--leak-channel-every 10")]);
    assert_eq!(r.code, 1, "{}", r.context());
    backend(&r);
    // The Chatbot's knobs, through the rpc workload.
    let rpc = repo("tests/scenarios/rpc-short.toml");
    let session = line_of("src/refserver/chat.rs", "std::fs::File::open(super::OWN_EXE)");
    let r = run(&rpc, &["--origin", "--spawn", &serve("--leak-converse-file")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let want = format!("refserver/chat.rs:{session} in");
    assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
    let r = run(&rpc, &["--origin", "--spawn", &serve("--leak-ask-channel-every 5")]);
    assert_eq!(r.code, 1, "{}", r.context());
    backend(&r);
}

/// The reference client's retry leak: its sockets are named at the demo's own dial.
#[test]
fn client_demo_retry_leak_names_the_function_that_dials_its_channels() {
    let dir = TempDir::new("origin-demo");
    let demo = format!("{FDSOAK} client-demo --mode retry-leak --interval 100ms --deadline 300ms");
    let r = run(&stalls(&dir), &["--origin", "--client", &demo]);
    assert_eq!(r.code, 1, "{}", r.context());
    let dial = line_of("src/client/demo.rs", "TcpStream::connect(addr)");
    let want = format!("client/demo.rs:{dial} in fdsoak::client::demo::fresh_channel");
    assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
}

/// The line a finding names for `function` in `file`, if it names one.
fn named_line(text: &str, file: &str, function: &str) -> Option<usize> {
    let tail = format!(" in {function}");
    text.match_indices(&format!("{file}:")).find_map(|(at, m)| {
        let rest = &text[at + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        rest[digits.len()..].starts_with(&tail).then(|| digits.parse().ok())?
    })
}

/// A C program compiled here with the system's compiler, leaking pipes and files.
#[test]
fn a_c_program_that_leaks_pipes_and_files_is_named_by_function_and_line() {
    let dir = TempDir::new("origin-c");
    let exe = cc(&dir, "tests/programs/leaky.c", "leaky", &["-O0"]);
    let sc = fixture(&dir, "client-short.toml", &[]);
    let r = run(&sc, &["--origin", "--client", exe.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.context());
    let pipe = line_of("tests/programs/leaky.c", "if (pipe(p) == 0)");
    let open = line_of("tests/programs/leaky.c", "keep(open(path, O_RDONLY));");
    for want in [
        format!("leaky.c:{pipe} in leak_pipe"),
        format!("leaky.c:{open} in leak_file"),
    ] {
        assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
    }
    let origin = r.summary().origin.unwrap();
    assert!(
        origin.notes.iter().all(|n| !n.contains("client")),
        "the client published its table: {origin:?}"
    );
}

/// The report directory is made once nothing before it can fail: origins
/// whose agents cannot be written (their temporary directory's parent does
/// not exist) are a run error that leaves no directory behind.
#[test]
fn a_failure_in_the_agents_start_leaves_no_report_directory() {
    let tmp = TempDir::new("no-agents");
    let reports = tmp.path().join("reports");
    let o = std::process::Command::new(FDSOAK)
        .args(["run", "-q", "--origin"])
        .arg(repo("scenarios/quickstart.toml"))
        .arg("--reports-dir")
        .arg(&reports)
        .env("TMPDIR", tmp.path().join("missing"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("origin agents' directory"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&reports)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
