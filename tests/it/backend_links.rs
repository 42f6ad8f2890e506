//! Kernel faults where no proxy reaches, against real processes: a Python
//! grpcio server's own link to its backend (a second grpcio server),
//! blackholed, catches the server whose retries leak a channel each, and
//! names the backend's address, while its twin that retries on its shared
//! channel passes every time; the built-in target's `--backend` knob with
//! the library scenario `backend-link-flap`; and a grpcio client that dials
//! the server's real address, with no proxy in the run.

use crate::common::*;

/// 20 Checks/s with the target's outbound link to `backend` blackholed for 1.5 s every 2.5 s.
fn silences(dir: &TempDir, backend: u16) -> std::path::PathBuf {
    let load = "  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 20\n  deadline = \"2s\"\n";
    dir.write(
        "backend-silences.toml",
        &format!(
            "name = \"backend-silences\"\n[gates]\nmax_residual_fds = 4\n[sampler]\ninterval = \"250ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"2s\"\n{load}\
             [[phases]]\nname = \"silences\"\nduration = \"8s\"\n{load}\
               [[phases.faults]]\n  kind = \"blackhole\"\n  via = \"kernel\"\n  role = \"target\"\n  direction = \"outbound\"\n  \
               peer = \"127.0.0.1:{backend}\"\n  every = \"2500ms\"\n  duration = \"1500ms\"\n\
             [[phases]]\nname = \"drain\"\nduration = \"2s\"\n{load}"
        ),
    )
}

fn python(args: &str) -> String {
    format!("python3 {} {args}", repo("tests/programs/server.py").display())
}

/// A grpcio server of the tests' own (`server.py PORT clean`), on a free port, killed on drop.
struct Backend {
    child: std::process::Child,
    port: u16,
}

impl Backend {
    fn start() -> Backend {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let words = python(&format!("{port} clean"));
        let mut words = words.split(' ');
        let child = std::process::Command::new(words.next().unwrap())
            .args(words)
            .spawn()
            .unwrap();
        wait_until(std::time::Duration::from_secs(15), "the backend's port", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Backend { child, port }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_server_whose_backend_retries_leak_channels_is_caught_by_kernel_blackholes_and_its_twin_passes_10_of_10() {
    let Some(_one) = nft_ready() else { return };
    let backend = Backend::start();
    let dir = TempDir::new("backend-links");
    let sc = silences(&dir, backend.port);
    let r = run(
        &sc,
        &[
            "--spawn",
            &python(&format!("{{port}} backend-retry-leak {}", backend.port)),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.context());
    let s = r.summary();
    // Every call from outside succeeded: only the fault on the server's own link shows the leak.
    assert!(s.workloads.iter().all(|w| w.errors == 0), "{}", r.context());
    let finding = r.finding("target", "residual_fds");
    let to_backend = format!("ESTABLISHED to 127.0.0.1:{}", backend.port);
    assert!(
        finding.contains(&to_backend),
        "the finding names the backend: {finding}"
    );
    let holes = s.fault_events.iter().filter(|e| e.kind == "blackhole").count();
    assert_eq!(holes, 3, "{:?}", s.fault_events);
    assert!(s.proxy.is_none(), "no proxy in a run whose faults are all the kernel's");

    // Ten runs, two at a time (each its own server; the faults touch only its own link).
    let twin = python(&format!("{{port}} backend-shared {}", backend.port));
    std::thread::scope(|s| {
        for lane in 0..2 {
            let (sc, twin) = (&sc, &twin);
            s.spawn(move || {
                for i in 0..5 {
                    let r = run(sc, &["--spawn", twin]);
                    assert_eq!(r.code, 0, "run {lane}.{i}: {}", r.context());
                    let summary = r.summary();
                    let holes = summary.fault_events.iter().filter(|e| e.kind == "blackhole");
                    assert_eq!(holes.count(), 3, "run {lane}.{i}: the faults fired");
                }
            });
        }
    });
}

#[test]
fn a_python_client_that_dials_the_real_address_is_caught_by_kernel_blackholes_with_no_proxy() {
    let Some(_one) = nft_ready() else { return };
    let server = Server::start(&[]);
    let dir = TempDir::new("client-kernel");
    let sc = dir.write(
        "client-silences.toml",
        &format!(
            "name = \"client-silences\"\n[client]\ncommand = \"true\"\n[sampler]\ninterval = \"200ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"3s\"\n\
             [[phases]]\nname = \"silences\"\nduration = \"10s\"\n  [[phases.faults]]\n  kind = \"blackhole\"\n  \
             via = \"kernel\"\n  role = \"client\"\n  peer = \"{}\"\n  every = \"1500ms\"\n  duration = \"900ms\"\n\
             [[phases]]\nname = \"drain\"\nduration = \"2s\"\n",
            server.addr
        ),
    );
    let checker = |mode: &str| {
        // The server's own address, not {addr}: nothing between the client and the server.
        let program = repo("tests/programs/checker.py");
        format!("python3 {} {} {mode}", program.display(), server.addr)
    };
    let target = server.addr.to_string();
    let r = run(&sc, &["--target", &target, "--client", &checker("retry-leak")]);
    assert_eq!(r.code, 1, "{}", r.context());
    let s = r.summary();
    assert!(s.proxy.is_none(), "no proxy: {:?}", s.proxy);
    let g = r.top_group("client");
    assert!(
        g.what.starts_with(&format!("ESTABLISHED to {} ", server.addr)),
        "the server itself: {g:?}"
    );
    assert!(g.change >= 3, "{g:?}");
    let events = s.fault_events.iter().filter(|e| e.kind == "blackhole").count();
    assert!(events >= 5, "{:?}", s.fault_events);

    let r = run(&sc, &["--target", &target, "--client", &checker("good")]);
    assert_eq!(
        r.code,
        0,
        "the good checker rides out the same silences: {}",
        r.context()
    );
}

#[test]
fn the_built_in_targets_backend_retry_leak_fails_backend_link_flap() {
    let Some(_one) = nft_ready() else { return };
    let spawn = format!("{FDSOAK} serve --port {{port}} --backend self --leak-backend-on-retry");
    let r = run(&repo("scenarios/backend-link-flap.toml"), &["--spawn", &spawn]);
    assert_eq!(r.code, 1, "{}", r.context());
    let s = r.summary();
    assert!(s.workloads.iter().all(|w| w.errors == 0), "{}", r.context());
    let port = r.target_port();
    let finding = r.finding("target", "residual_fds");
    assert!(
        finding.contains(&format!("ESTABLISHED to 127.0.0.1:{port}")),
        "the backend (the target itself) is named: {finding}"
    );
    // The clean target passes it: tests/library.rs.
}
