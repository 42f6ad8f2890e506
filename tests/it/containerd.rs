//! A real gRPC server on a Unix socket: Debian's containerd (`.ci/run`
//! installs it), with its state and config in a temporary directory and the
//! CRI plugin off. It serves grpc.health.v1 on its socket and Prometheus
//! process metrics on a loopback port. The library's quickstart and
//! channel-churn pass against it, the report's target PID is containerd's,
//! and its descriptors read from its metrics agree. Skipped, saying so,
//! where containerd is not installed or fdsoak is not root (containerd needs it).

use crate::common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Containerd {
    child: Child,
    socket: std::path::PathBuf,
    metrics: String,
    _dir: TempDir,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        if Command::new("containerd").arg("--version").output().is_err() {
            tool_missing("containerd", ".ci/run installs Debian's containerd");
            return None;
        }
        if !rustix::process::geteuid().is_root() {
            tool_missing("root (containerd needs it)", "CI runs as root");
            return None;
        }
        let dir = TempDir::new("containerd");
        let socket = dir.path().join("containerd.sock");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = dir.write(
            "config.toml",
            &format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [metrics]\n  address = \"127.0.0.1:{port}\"\n"
            ),
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ctd = Containerd {
            child,
            socket,
            metrics: format!("http://127.0.0.1:{port}/v1/metrics"),
            _dir: dir,
        };
        wait_until(Duration::from_secs(20), "containerd's socket", || ctd.socket.exists());
        Some(ctd)
    }

    fn addr(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_on_its_socket_passes_quickstart_and_channel_churn() {
    let Some(ctd) = Containerd::start() else { return };
    let r = run(&repo("scenarios/quickstart.toml"), &["--target", &ctd.addr()]);
    assert_eq!(r.code, 0, "{}", r.context());
    let target = r.summary().target;
    assert_eq!(target.pid, Some(ctd.child.id() as i32), "{target:?}");
    assert!(target.description.contains("containerd"), "{target:?}");
    // Its descriptors from its own metrics endpoint, as for a server fdsoak cannot read.
    let r = run(
        &repo("scenarios/channel-churn.toml"),
        &["--target", &ctd.addr(), "--fds-from", &ctd.metrics],
    );
    assert_eq!(r.code, 0, "{}", r.context());
    let target = r.process("target");
    assert!(target.samples > 50 && target.baseline_fds > 5, "{target:?}");
}
