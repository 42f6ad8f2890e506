//! Origins from the kernel ledger (eBPF, as root), against real programs: a
//! grpc-go server (raw system calls, static: no agent reaches it) that leaks
//! a file per Check, or keeps a dup of every connection, is named at its Go
//! file, line and function, whether fdsoak started it or attached to it; a
//! clean grpc-go server and the clean built-in target pass 20 times out of
//! 20 with the ledger on; without the rights, a run says so and the agents
//! still name a C program's leaks. And the committed BPF object is what its
//! source builds.

use crate::common::*;
use fdsoak::domain::{OriginSource, OriginVia};
use std::process::{Command, Stdio};

/// Root, which loading eBPF needs; otherwise says so (a failure under CI, which runs as root).
pub(crate) fn root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        tool_missing("root (to load eBPF)", "CI runs the tests as root");
    }
    root
}

/// A short load of 40 Checks/s over `channel`, lasting `ms` milliseconds.
pub(crate) fn short(dir: &TempDir, ms: u32, channel: &str) -> std::path::PathBuf {
    let (edge, load) = (ms / 5, ms * 3 / 5);
    dir.write(
        &format!("short-{ms}-{channel}.toml"),
        &format!(
            "name = \"kernel\"\n[sampler]\ninterval = \"100ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"{edge}ms\"\n\
             [[phases]]\nname = \"load\"\nduration = \"{load}ms\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 40\n  channel = \"{channel}\"\n\
             [[phases]]\nname = \"drain\"\nduration = \"{edge}ms\"\n"
        ),
    )
}

/// The leaky grpc-go server, started by the test, killed on drop.
pub(crate) fn go_server(exe: &std::path::Path, leak: &str) -> Listening {
    let mut cmd = Command::new(exe);
    cmd.args(["-leak", leak]);
    Listening::start(cmd)
}

/// The top group's first origin came from the kernel, and its program's own frames
/// start at `function`, at `line` of the Go file.
fn named_by_kernel(r: &RunResult, function: &str, line: usize) {
    let g = r.top_group("target");
    let o = g
        .origins
        .first()
        .unwrap_or_else(|| panic!("no origins for {g:?}: {}", r.context()));
    assert_eq!((o.stack.source, o.stack.via), (OriginSource::Kernel, OriginVia::Opened));
    let top = o.stack.top_user_frame().unwrap();
    assert_eq!((top.function.as_str(), top.line as usize), (function, line), "{o:?}");
    assert!(top.file.ends_with("tests/programs/goleak/main.go"), "{top:?}");
    let want = format!("main.go:{line} in {function}");
    assert!(r.stdout.contains(&want), "no {want:?} in the findings: {}", r.context());
}

#[test]
fn the_committed_bpf_object_is_what_its_source_builds() {
    if Command::new("clang").arg("--version").output().is_err() {
        tool_missing("clang (to build the BPF object)", ".ci/run installs clang and llvm");
        return;
    }
    let dir = TempDir::new("bpf-object");
    let out = dir.path().join("ledger.bpf.o");
    let status = Command::new(repo("scripts/build-bpf")).arg(&out).status().unwrap();
    assert!(status.success(), "scripts/build-bpf failed");
    let built = std::fs::read(&out).unwrap();
    let committed = std::fs::read(repo("src/origin/kernel/ledger.bpf.o")).unwrap();
    assert!(
        built == committed,
        "src/origin/kernel/ledger.bpf.o is not what ledger.bpf.c builds: run scripts/build-bpf and commit it"
    );
}

#[test]
fn a_go_server_leaking_a_file_per_check_is_named_at_its_os_open_started_or_attached() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-go-file");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let line = line_of("tests/programs/goleak/main.go", "os.Open(\"/proc/self/status\")");
    let sc = short(&dir, 4500, "shared");
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak file", exe.display());
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_by_kernel(&r, "main.leakFile", line);
    let origin = r.summary().origin.unwrap();
    assert_eq!(origin.kernel, vec![fdsoak::domain::Role::Target]);
    // Attached: the server started here, already running, found by its address.
    let server = go_server(&exe, "file");
    let r = run(&sc, &["--origin", "--target", &server.addr]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_by_kernel(&r, "main.leakFile", line);
    let origin = r.summary().origin.unwrap();
    assert!(origin.agents.is_empty(), "{origin:?}");
    assert!(
        origin.notes.iter().all(|n| !n.contains("attached")),
        "the attached target is read by the kernel: {origin:?}"
    );
}

/// "opened 4,812, closed 4,788, 24 still open": per creating stack, from the kernel's counts.
#[test]
fn a_stack_that_closes_most_of_what_it_opens_is_counted_opened_closed_and_still_open() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-go-some");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let line = line_of("tests/programs/goleak/main.go", "os.Open(\"/proc/self/limits\")");
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak some", exe.display());
    let r = run(&short(&dir, 4500, "shared"), &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    named_by_kernel(&r, "main.leakSome", line);
    let o = r.top_group("target").origins[0].clone();
    let (opened, open) = (o.opened.unwrap(), o.still_open.unwrap());
    // 40 Checks/s for 2.7 s: about 108 opened, one in ten kept.
    assert!(opened >= 50 && open >= o.count, "{o:?}");
    assert!(opened >= 8 * open && open * 12 >= opened, "one in ten kept: {o:?}");
    let said = format!("opened {opened}, closed {}, {open} still open", opened - open);
    assert!(r.stdout.contains(&said), "no {said:?}: {}", r.context());
}

/// `-ldflags="-s -w"` drops the symbols and DWARF; the binary's own `.gopclntab` still names it.
#[test]
fn a_stripped_go_server_is_named_from_its_own_pc_table() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-go-stripped");
    let Some(exe) = go_build_with(&dir, "tests/programs/goleak", &["-ldflags=-s -w"]) else {
        return;
    };
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak file", exe.display());
    let r = run(&short(&dir, 4500, "shared"), &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let o = r.top_group("target").origins[0].clone();
    let top = o.stack.top_user_frame().unwrap();
    assert_eq!(top.function, "main.leakFile", "{o:?}");
    assert!(top.file.ends_with("tests/programs/goleak/main.go"), "{top:?}");
    // The frames below are named too, with their lines: the handler that called it.
    let check = o
        .stack
        .frames
        .iter()
        .find(|f| f.function == "main.(*health).Check")
        .expect("the handler");
    assert_eq!(
        check.line as usize,
        line_of("tests/programs/goleak/main.go", "\t\tleakFile()")
    );
    assert!(r.stdout.contains("main.go in main.leakFile"), "{}", r.context());
}

#[test]
fn a_go_server_keeping_a_dup_of_each_connection_names_the_function_that_dupd_them() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-go-dup");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let line = line_of("tests/programs/goleak/main.go", "f, err := tc.File()");
    let spawn = format!("{} -addr 127.0.0.1:{{port}} -leak dup", exe.display());
    let r = run(&short(&dir, 4500, "per_call"), &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let g = r.top_group("target");
    assert!(g.what.starts_with("CLOSE_WAIT from clients of "), "{g:?}");
    named_by_kernel(&r, "main.keepDup", line);
}

#[test]
fn clean_go_and_built_in_targets_pass_20_times_out_of_20_with_the_ledger_on() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-clean");
    let Some(exe) = go_build(&dir, "tests/programs/goleak") else {
        return;
    };
    let sc = short(&dir, 3000, "per_call");
    let go = format!("{} -addr 127.0.0.1:{{port}} -leak none", exe.display());
    let targets: [&[&str]; 2] = [&["--spawn", &go], &[]];
    std::thread::scope(|s| {
        for target in targets {
            let sc = &sc;
            s.spawn(move || {
                for i in 0..20 {
                    let mut args = vec!["--origin"];
                    args.extend_from_slice(target);
                    let r = run(sc, &args);
                    assert_eq!(r.code, 0, "run {i} of {target:?}: {}", r.context());
                    let origin = r.summary().origin.unwrap();
                    assert_eq!(origin.kernel, vec![fdsoak::domain::Role::Target], "{origin:?}");
                }
            });
        }
    });
}

#[test]
fn without_the_rights_a_run_says_so_and_the_agents_still_name_a_c_programs_leaks() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-nobody");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let leaky = cc(&dir, "tests/programs/leaky.c", "leaky", &["-O0"]);
    // A copy of fdsoak that `nobody` may run wherever the checkout lives (it may be under /root).
    let exe = dir.path().join("fdsoak");
    std::fs::copy(FDSOAK, &exe).unwrap();
    let sc = dir.write(
        "client.toml",
        &std::fs::read_to_string(repo("tests/scenarios/client-short.toml")).unwrap(),
    );
    let out = dir.path().join("report");
    let o = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&exe)
        .arg("run")
        .arg(&sc)
        .args(["--origin", "--out"])
        .arg(&out)
        .arg("--client")
        .arg(&leaky)
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    let pipe = line_of("tests/programs/leaky.c", "if (pipe(p) == 0)");
    let want = format!("leaky.c:{pipe} in leak_pipe");
    assert!(stdout.contains(&want), "the agent still names it: {stdout}");
    let origin = read_summary(&out).origin.unwrap();
    assert!(origin.kernel.is_empty(), "{origin:?}");
    let note = origin
        .notes
        .iter()
        .find(|n| n.contains("origins from the kernel are off"))
        .unwrap_or_else(|| panic!("no note on the kernel ledger: {origin:?}"));
    assert!(note.contains("CAP_BPF"), "the note names the capability: {note}");
    assert_eq!(
        origin.notes.iter().filter(|n| n.contains("kernel")).count(),
        1,
        "said once: {origin:?}"
    );
}

/// `fixture` with origins on and the agents off: the kernel ledger alone.
fn kernel_only(dir: &TempDir, name: &str, replace: &[(&str, &str)]) -> std::path::PathBuf {
    let path = fixture(dir, name, replace);
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\n[").expect("a table after the name");
    let text = format!(
        "{}\n[origin]\nenabled = true\nagents = false\n{}",
        &text[..at],
        &text[at..]
    );
    dir.write(name, &text)
}

/// A C program built without frame pointers (the kernel's walk stops in libc) names
/// its functions through the stack copied at each event, unwound from `.eh_frame`.
#[test]
fn a_c_program_without_frame_pointers_is_named_with_the_agent_off() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-c");
    let exe = cc(
        &dir,
        "tests/programs/leaky.c",
        "leaky",
        &["-O2", "-fomit-frame-pointer"],
    );
    let sc = kernel_only(&dir, "client-short.toml", &[]);
    let r = run(&sc, &["--client", exe.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.context());
    let pipe = line_of("tests/programs/leaky.c", "if (pipe(p) == 0)");
    let open = line_of("tests/programs/leaky.c", "keep(open(path, O_RDONLY));");
    for want in [
        format!("leaky.c:{pipe} in leak_pipe"),
        format!("leaky.c:{open} in leak_file"),
    ] {
        assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
    }
    let s = r.summary();
    let origin = s.origin.as_ref().unwrap();
    assert!(origin.agents.is_empty(), "{origin:?}");
    let client = r.process("client");
    let o = &client.groups[0].origins[0];
    assert_eq!(o.stack.source, OriginSource::Kernel);
    // Whole: from the libc wrapper down to main.
    assert!(o.stack.frames.iter().any(|f| f.function == "main"), "{o:?}");
}

/// `fdsoak serve` is Rust, whose standard library and dependencies keep no frame
/// pointers: its leak knobs are named by the kernel ledger alone.
#[test]
fn the_built_in_leak_knobs_are_named_by_the_kernel_ledger_alone() {
    if !root() {
        return;
    }
    let dir = TempDir::new("kernel-knobs");
    let sc = kernel_only(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    let serve = |knob: &str| format!("{FDSOAK} serve --port {{port}} {knob}");
    let file = line_of("src/refserver/mod.rs", "match std::fs::File::open(OWN_EXE)");
    let r = run(&sc, &["--spawn", &serve("--leak-fd-every 10")]);
    assert_eq!(r.code, 1, "{}", r.context());
    super::channels::no_plumbing_named(&r);
    let want = format!("refserver/mod.rs:{file} in fdsoak::refserver::HealthSvc::apply_knobs");
    assert!(r.stdout.contains(&want), "no {want:?}: {}", r.context());
    let r = run(&sc, &["--spawn", &serve("--leak-channel-every 10")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let at = line_of("src/refserver/mod.rs", "async fn backend_channel(");
    let g = r.top_group("target");
    let o = g.origins.first().unwrap_or_else(|| panic!("{g:?}: {}", r.context()));
    let top = o.stack.top_user_frame().unwrap();
    assert!(
        top.function.starts_with("fdsoak::refserver::backend_channel") && (top.line as usize) > at,
        "not backend_channel: {o:?}"
    );
    super::channels::no_plumbing_named(&r);
    assert_eq!(r.summary().origin.unwrap().agents, Vec::<fdsoak::domain::Role>::new());
}
