//! Java frames from the native agent's JVM part (a JVMTI agent the JVMs fdsoak
//! starts load from `JAVA_TOOL_OPTIONS`): a grpc-java server, compiled here
//! with javac against Debian's jars, that keeps a `FileInputStream` every Nth
//! Check is named at the `.java` line of `new FileInputStream` and its method,
//! not at `handleOpen` in libjava; a clean one passes 20 times out of 20 with
//! origins on. Needs no root: the agent is on `LD_PRELOAD`, not in the kernel.
//! A running server attached with `--target` gets the agent through HotSpot's
//! attach, done by fdsoak, is named the same, and is left with the agent
//! paused; one started with `-XX:+DisableAttachMechanism` gets a note. A
//! ManagedChannel built every Nth Check and never shut down is named at the
//! line of its `build()` by the channel ledger; one shut down each time counts
//! each closed, and passes.

use crate::common::*;
use crate::kernel_origin::short;

const SERVER: &str = "tests/programs/java/HealthServer.java";

/// The JDKs on this machine: Debian's `java`, and any other under /usr/lib/jvm.
fn jdks() -> Vec<String> {
    let mut found = vec!["java".to_string()];
    let default = std::fs::canonicalize("/usr/bin/java").ok();
    for e in std::fs::read_dir("/usr/lib/jvm").into_iter().flatten().flatten() {
        let java = e.path().join("bin/java");
        let real = std::fs::canonicalize(&java).ok();
        if real.is_some() && real != default && !e.file_type().is_ok_and(|t| t.is_symlink()) {
            found.push(java.display().to_string());
        }
    }
    found
}

/// Runs the leaky server with `java` and `flags`; the finding must name the `.java` line
/// of `new FileInputStream` in keepAuditLog, with the JDK's frames beneath it.
fn named_at_keep_audit_log(dir: &TempDir, classpath: &str, java: &str, flags: &str) -> RunResult {
    let sc = short(dir, 5000, "shared");
    let spawn = format!("{java} {flags} -cp {classpath} HealthServer {{port}} leak-file 5");
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{java} {flags}: {}", r.context());
    let line = line_of(SERVER, "new FileInputStream(");
    let want = format!("at HealthServer.java:{line} in HealthServer.keepAuditLog");
    assert!(r.stdout.contains(&want), "{java} {flags}: want {want}: {}", r.context());
    assert!(!r.stdout.contains("at handleOpen"), "{}", r.context());
    // The whole stack is in the report: the JDK's frames above the program's, each a library's.
    let g = r.top_group("target");
    let frames = &g.origins[0].stack.frames;
    let at = frames
        .iter()
        .position(|f| f.function == "HealthServer.keepAuditLog")
        .expect("the program's frame");
    assert!(
        frames[..at]
            .iter()
            .any(|f| f.function == "java.io.FileInputStream.<init>" && f.library),
        "{frames:?}"
    );
    assert!(frames[..at].iter().all(|f| f.library), "{frames:?}");
    r
}

#[test]
fn a_grpc_java_server_that_keeps_a_file_is_named_at_its_java_line_on_every_jdk() {
    let dir = TempDir::new("java-leak");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let jdks = jdks();
    for java in &jdks {
        named_at_keep_audit_log(&dir, &classpath, java, "");
    }
    eprintln!("named on {} JDKs: {jdks:?}", jdks.len());
}

#[test]
fn compiled_and_inlined_java_frames_are_named_as_interpreted_ones() {
    let dir = TempDir::new("java-compiled");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    // C2 compiles check at its first call, and inlines keepAuditLog into it, and
    // FileInputStream's constructor into that: three Java frames in one compiled one.
    let flags = "-Xcomp -XX:-TieredCompilation -XX:CompileCommand=quiet \
                 -XX:CompileOnly=HealthServer::check,HealthServer::keepAuditLog,java.io.FileInputStream::<init> \
                 -XX:+UnlockDiagnosticVMOptions -XX:+PrintInlining";
    let r = named_at_keep_audit_log(&dir, &classpath, "java", flags);
    let log = std::fs::read_to_string(r.out.path().join("target.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("HealthServer::keepAuditLog") && l.contains("inline (hot)")),
        "keepAuditLog was not inlined: {log}"
    );
}

#[test]
fn a_clean_grpc_java_server_passes_20_times_out_of_20_with_origins_on() {
    let dir = TempDir::new("java-clean");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let sc = short(&dir, 2500, "per_call");
    let spawn = format!("java -cp {classpath} HealthServer {{port}} clean");
    std::thread::scope(|s| {
        for half in 0..2 {
            let (sc, spawn) = (&sc, &spawn);
            s.spawn(move || {
                for i in 0..10 {
                    let r = run(sc, &["--origin", "--spawn", spawn]);
                    assert_eq!(r.code, 0, "run {} : {}", half * 10 + i, r.context());
                }
            });
        }
    });
}

/// The test server started by the test (so attached to by fdsoak); killed on drop, and
/// the attach socket its JVM opened for fdsoak removed (a killed JVM leaves it).
struct JavaServer(Listening);

impl Drop for JavaServer {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
        let _ = std::fs::remove_file(format!("/tmp/.java_pid{}", self.0.child.id()));
    }
}

fn started(classpath: &str, flags: &[&str], mode: &[&str]) -> JavaServer {
    let mut cmd = std::process::Command::new("java");
    cmd.args(flags)
        .args(["-cp", classpath, "HealthServer", "0"])
        .args(mode)
        .env_remove("JAVA_TOOL_OPTIONS");
    JavaServer(Listening::start(cmd))
}

/// The pause word of the agent's table in `pid` (1 once a run that attached has ended).
fn paused(pid: u32) -> u64 {
    let base = fdsoak::origin::memory::find(pid as i32, "fdsoak-fdtab").expect("the agent's table");
    let mut word = [0u8; 8];
    assert!(fdsoak::origin::memory::read_remote(
        pid as i32,
        &[(base + 40, 8)],
        &mut word
    ));
    u64::from_le_bytes(word)
}

#[test]
fn an_attached_grpc_java_server_is_named_at_its_java_line_and_left_paused() {
    let dir = TempDir::new("java-attached");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let server = started(&classpath, &[], &["leak-file", "5"]);
    let (pid, addr) = (server.0.child.id(), server.0.addr.clone());
    let sc = short(&dir, 4000, "shared");
    let want = format!(
        "at HealthServer.java:{} in HealthServer.keepAuditLog",
        line_of(SERVER, "new FileInputStream(")
    );
    // The second run finds the first one's agent paused, and resumes it.
    for round in 0..2 {
        let r = run(&sc, &["--origin", "--target", &addr]);
        assert_eq!(r.code, 1, "round {round}: {}", r.context());
        assert!(r.stdout.contains(&want), "round {round}: want {want}: {}", r.context());
        let driver = r.process("driver");
        assert!(
            driver.groups.is_empty(),
            "round {round}: fdsoak's own descriptors grew: {:?}",
            driver.groups
        );
        assert_eq!(paused(pid), 1, "round {round}: the agent still records after the run");
    }
    // Nothing of the attach is left in the JVM's directories.
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    for d in [cwd, std::env::temp_dir()] {
        let trigger = d.join(format!(".attach_pid{pid}"));
        assert!(!trigger.exists(), "{} left behind", trigger.display());
    }
}

#[test]
fn a_jvm_that_disabled_attach_gets_a_note_and_no_signal() {
    let dir = TempDir::new("java-no-attach");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let server = started(&classpath, &["-XX:+DisableAttachMechanism"], &["clean"]);
    let sc = short(&dir, 2000, "shared");
    let r = run(&sc, &["--origin", "--target", &server.0.addr]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(
        r.stdout
            .contains("is a JVM that fdsoak could not give its agent: it was started with -XX:+DisableAttachMechanism"),
        "{}",
        r.context()
    );
    let pid = server.0.child.id();
    assert!(fdsoak::origin::memory::find(pid as i32, "fdsoak-fdtab").is_none());
}

#[test]
fn a_grpc_java_server_that_never_shuts_a_channel_down_is_named_at_its_build() {
    let dir = TempDir::new("java-channel");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let sc = short(&dir, 5000, "shared");
    let spawn = format!("java -cp {classpath} HealthServer {{port}} leak-channel 5");
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    // The channel's sockets are opened on grpc-java's threads; the ledger names where it was built.
    let line = line_of(SERVER, "ManagedChannel channel = NettyChannelBuilder");
    let want =
        format!("opened by channels to it created at HealthServer.java:{line} in HealthServer.askSelf: created ");
    assert!(r.stdout.contains(&want), "want {want}: {}", r.context());
    assert!(r.stdout.contains(", closed 0, "), "{}", r.context());
}

#[test]
fn a_grpc_java_server_that_shuts_each_channel_down_counts_each_closed_and_passes() {
    let dir = TempDir::new("java-channel-closed");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    // The agent as `--origin --spawn` gives it, in a server the test starts, so that its
    // ledger can be read after the run.
    let agents = fdsoak::origin::Agents::install(true).unwrap();
    let mut cmd = std::process::Command::new("java");
    cmd.args(["-cp", &classpath, "HealthServer", "0", "channel-closed", "5"]);
    for (k, v) in agents.env() {
        cmd.env(k, v);
    }
    let server = Listening::start(cmd);
    let sc = short(&dir, 3000, "shared");
    let r = run(&sc, &["--target", &server.addr]);
    assert_eq!(r.code, 0, "{}", r.context());
    let sites = fdsoak::origin::java::channel_sites(server.child.id() as i32).expect("the ledger");
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert!(sites[0].created >= 5, "{sites:?}");
    assert_eq!(sites[0].created, sites[0].closed, "{sites:?}");
    assert!(sites[0].target.starts_with("127.0.0.1:"), "{sites:?}");
}

#[test]
fn a_jvm_that_did_not_load_the_agent_gets_a_note_naming_what_is_missing() {
    let dir = TempDir::new("java-no-agent");
    let Some(classpath) = javac(&dir, SERVER, &grpc_java_server_jars()) else {
        return;
    };
    let sc = short(&dir, 3000, "shared");
    // A launcher that drops JAVA_TOOL_OPTIONS: the native agent is preloaded, the JVM's is not.
    let spawn = format!("env -u JAVA_TOOL_OPTIONS java -cp {classpath} HealthServer {{port}} leak-file 5");
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.stdout
            .contains("is a JVM whose Java frames fdsoak cannot name: it did not load fdsoak's JVMTI agent"),
        "{}",
        r.context()
    );
    // A JVM that loaded it gets no such note.
    let spawn = format!("java -cp {classpath} HealthServer {{port}} clean");
    let r = run(&sc, &["--origin", "--spawn", &spawn]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(
        !r.stdout.contains("whose Java frames fdsoak cannot name"),
        "{}",
        r.context()
    );
}
