//! The server under test: start it (built-in or spawned), or attach to one
//! that is already running, and find the PID whose descriptors we sample.
//!
//! Whatever the mode, a target is "ready" once a grpc.health.v1 Check
//! succeeds, and it is stopped (SIGTERM, then SIGKILL) when the run ends if
//! fdsoak started it. What a target fdsoak starts writes is kept in the
//! caller's [`Tail`], so that an early death can be explained and the report
//! holds it.

pub(crate) mod find;
pub(crate) mod plan;
pub(crate) mod protocol;
pub(crate) mod ready;

use crate::child::{drain_lines, launch, Tail};
use crate::net::Address;
use crate::transport::{Dial, Transport};
use anyhow::{anyhow, Context};
pub(crate) use ready::Ready;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where the target comes from, after the scenario and the command line are merged.
#[derive(Debug, Clone)]
pub(crate) enum TargetPlan {
    /// `fdsoak serve`, as this says.
    Builtin(BuiltinPlan),
    /// A user's command line, `{port}` or `{socket}` still unreplaced.
    Spawn {
        command: String,
        nofile: Option<u64>,
        env: Vec<(String, String)>,
        /// Where it runs (`fdsoak bisect`'s worktree); fdsoak's own directory when `None`.
        dir: Option<PathBuf>,
    },
    /// A running server. `remote`: its counts come from elsewhere (`[target.fds]`), so no local PID is looked for.
    Address {
        addr: Address,
        pid: Option<i32>,
        remote: bool,
    },
}

/// The built-in target: `fdsoak serve` with these arguments, started from `exe`.
#[derive(Debug, Clone)]
pub(crate) struct BuiltinPlan {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub nofile: Option<u64>,
    /// Set in its environment (an origin agent's).
    pub env: Vec<(String, String)>,
    /// Listen on a fresh Unix socket rather than a loopback port.
    pub unix_socket: bool,
}

/// A target that answered its first health check.
pub(crate) struct RunningTarget {
    pub addr: Address,
    /// 0 for a target read from elsewhere, with no local PID.
    pub pid: i32,
    /// How it was started or found, for the report.
    pub description: String,
    child: Option<Child>,
    /// What it wrote, stdout and stderr (if fdsoak started it).
    output: Tail,
    /// The built-in target's behaviour control path, when the scenario schedules behaviours.
    pub server: Option<crate::scenario::ServerControl>,
    /// The private directory of a `{socket}` fdsoak made up, removed with the target.
    _socket_dir: Option<tempfile::TempDir>,
}

/// Errors that mean the target could not be brought up or reached (exit code 3).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("target {addr} did not {check} within {timeout:?}: {last}")]
    Unreachable {
        addr: Address,
        check: &'static str,
        timeout: Duration,
        last: String,
    },
    #[error("target {addr} answers gRPC but does not serve grpc.health.v1.Health (UNIMPLEMENTED): set `target.ready = \"connect\"` (or \"rpc\") to wait for it another way")]
    NoHealthService { addr: Address },
    #[error("target {addr} {what}")]
    WrongProtocol { addr: Address, what: String },
    #[error("target exited before it was ready ({status}); what it wrote is in target.log")]
    ExitedEarly { status: String },
    #[error("no process on this host listens on {at}: check the address, or, for a server in a container, pod or another network namespace, pass its PID as this host sees it (--pid $(docker inspect -f '{{{{.State.Pid}}}}' NAME)) or read its metrics (--fds-from URL)")]
    NoListener { at: String },
    #[error("a server listens on {at}, but it belongs to another user (uid {uid}), and fdsoak cannot read that process's /proc: {}", find::OTHER_USER_WAYS_OUT)]
    OtherUser { at: String, uid: u32 },
    #[error("{0}")]
    Unreadable(String),
    #[error("{at} is held by {what}, pid {pid} ({name}), not by the server: sampling it would measure the forwarder. Pass the server's own PID (for Docker or Podman: --pid $(docker inspect -f '{{{{.State.Pid}}}}' NAME)), or read the server's metrics (--fds-from URL)")]
    PortForwarder {
        at: String,
        pid: i32,
        name: String,
        what: &'static str,
    },
    #[error("no process with pid {0} on this host (from --pid or target.pid)")]
    NoSuchPid(i32),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// Starts or attaches to the target, and waits until it is ready: it answers a
/// health check, or (`Connect`, and `Rpc` before its first call) accepts an HTTP/2
/// connection. What a target fdsoak starts writes goes to `tail`, which the caller
/// keeps, so that it outlives a target that never became ready.
pub(crate) async fn start(
    plan: &TargetPlan,
    ready: Ready,
    transport: &Arc<Transport>,
    tail: &Tail,
) -> Result<RunningTarget, TargetError> {
    check_attached(plan)?;
    let mut up = match plan {
        TargetPlan::Address { addr, .. } => Launched::attached(addr),
        TargetPlan::Builtin(builtin) => launch_builtin(builtin, ready, tail).await?,
        TargetPlan::Spawn {
            command,
            nofile,
            env,
            dir,
        } => launch_spawned(command, *nofile, env, dir.as_deref(), tail)?,
    };
    let dial = Dial::new(up.addr.clone(), transport.clone());
    if let Err(e) = ready::wait(&dial, ready, up.child.as_mut()).await {
        // A target that exited before it was ready: its last lines explain why; keep them all.
        if up
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_some()))
        {
            tail.drained(crate::child::LAST_LINES_WAIT).await;
        }
        return Err(e);
    }
    let pid = pid_of(plan, &up)?;
    // Say which process was found, so a wrong guess shows in the report.
    if let TargetPlan::Address {
        pid: None,
        remote: false,
        ..
    } = plan
    {
        up.description = format!(
            "{} (pid {pid}, {}, the owner of its listening socket)",
            up.description,
            find::name_of(pid)
        );
    }
    Ok(RunningTarget {
        addr: up.addr,
        pid,
        description: up.description,
        child: up.child,
        output: tail.clone(),
        server: up.server,
        _socket_dir: up.socket_dir,
    })
}

/// A target started, or named, and not yet known to be ready.
struct Launched {
    addr: Address,
    child: Option<Child>,
    description: String,
    /// The built-in target's control channel, when asked for.
    server: Option<crate::scenario::ServerControl>,
    /// The private directory of its Unix socket, removed when dropped.
    socket_dir: Option<tempfile::TempDir>,
}

impl Launched {
    fn attached(addr: &Address) -> Launched {
        Launched {
            addr: addr.clone(),
            child: None,
            description: format!("address {addr}"),
            server: None,
            socket_dir: None,
        }
    }
}

/// An attached target named by PID must exist, and its /proc be readable unless
/// its descriptors come from its metrics.
fn check_attached(plan: &TargetPlan) -> Result<(), TargetError> {
    if let TargetPlan::Address {
        pid: Some(pid), remote, ..
    } = plan
    {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(TargetError::NoSuchPid(*pid));
        }
        if let (false, Some(why)) = (remote, find::unreadable(*pid)) {
            return Err(TargetError::Unreadable(why));
        }
    }
    Ok(())
}

/// Starts `fdsoak serve` on a free port (or a private Unix socket) and reads the address it announces.
async fn launch_builtin(builtin: &BuiltinPlan, ready: Ready, tail: &Tail) -> Result<Launched, TargetError> {
    let BuiltinPlan {
        exe,
        args,
        nofile,
        env,
        unix_socket,
    } = builtin;
    let mut socket_dir = None;
    let listen = if *unix_socket {
        let (dir, path) = socket_in_private_dir()?;
        socket_dir = Some(dir);
        format!("unix://{}", path.display())
    } else {
        "127.0.0.1:0".into()
    };
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .args(args)
        .args(["--listen", &listen])
        .envs(env.iter().cloned());
    let control = args.iter().any(|a| a == plan::CONTROL_FLAG);
    let mut child = launch(cmd, *nofile, tail, control).context("starting the target")?;
    let server = child.stdin.take().map(control_writer);
    let stdout = child.stdout.take().context("the target's stdout")?;
    let addr = read_announced_addr(stdout, &mut child, ready.timeout, tail).await?;
    let description = format!("builtin: fdsoak serve {}", args.join(" "))
        .trim_end()
        .to_string();
    Ok(Launched {
        addr,
        child: Some(child),
        description,
        server,
        socket_dir,
    })
}

/// Starts the user's command with a free port (or a private Unix socket) in its placeholder.
fn launch_spawned(
    command: &str,
    nofile: Option<u64>,
    env: &[(String, String)],
    dir: Option<&Path>,
    tail: &Tail,
) -> Result<Launched, TargetError> {
    let mut socket_dir = None;
    let (line, addr) = if command.contains("{socket}") {
        let (dir, path) = socket_in_private_dir()?;
        socket_dir = Some(dir);
        let line = command.replace("{socket}", &path.display().to_string());
        (line, Address::Unix(path))
    } else {
        let port = free_port().context("picking a free port")?;
        let line = command.replace("{port}", &port.to_string());
        (line, Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port))))
    };
    let words = split_command(&line)?;
    let mut cmd = crate::child::command_in(&words, dir);
    cmd.envs(env.iter().cloned());
    let mut child = launch(cmd, nofile, tail, false).context("starting the target")?;
    if let Some(out) = child.stdout.take() {
        drain_lines(out, tail.clone(), crate::child::Stream::Stdout);
    }
    Ok(Launched {
        addr,
        child: Some(child),
        description: format!("spawn: {line}"),
        server: None,
        socket_dir,
    })
}

/// The process to watch: the one named, the one started, or the owner of the listening socket.
fn pid_of(plan: &TargetPlan, up: &Launched) -> Result<i32, TargetError> {
    let addr = &up.addr;
    Ok(match (plan, &up.child) {
        (TargetPlan::Address { pid: Some(p), .. }, _) => *p,
        (TargetPlan::Address { remote: true, .. }, _) => 0,
        // For a spawned command, prefer the process that owns the listener:
        // the command may be a wrapper (a shell, a launcher) around the server.
        (TargetPlan::Spawn { .. }, Some(c)) => match find::listener_at(addr) {
            Ok(find::Listener::Owner(pid)) => pid,
            _ => c.id().unwrap_or_default() as i32,
        },
        (_, Some(c)) => c.id().map(|p| p as i32).ok_or_else(|| anyhow!("target has no pid"))?,
        (_, None) => {
            let at = find::describe(addr);
            let pid = match find::listener_at(addr).context("searching /proc for the listening socket")? {
                find::Listener::Owner(pid) => pid,
                find::Listener::OtherUser { uid } => return Err(TargetError::OtherUser { at, uid }),
                find::Listener::NotFound => return Err(TargetError::NoListener { at }),
            };
            if let Some(what) = find::forwarder(pid) {
                let name = find::name_of(pid);
                return Err(TargetError::PortForwarder { at, pid, name, what });
            }
            pid
        }
    })
}

/// Writes each behaviour to the built-in target's standard input, one JSON line each.
fn control_writer(mut stdin: tokio::process::ChildStdin) -> crate::scenario::ServerControl {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::scenario::Fault>();
    tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let Ok(mut line) = serde_json::to_vec(&f) else { continue };
            line.push(b'\n');
            if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                return;
            }
        }
    });
    tx
}

/// Reads `fdsoak serve`'s "listening on ADDR" line, then keeps draining its stdout.
async fn read_announced_addr(
    stdout: tokio::process::ChildStdout,
    child: &mut Child,
    timeout: Duration,
    tail: &Tail,
) -> Result<Address, TargetError> {
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::select! {
        l = tokio::time::timeout(timeout, lines.next_line()) => l,
        status = child.wait() => return Err(exited_early(status.ok())),
    };
    let line = match line {
        Ok(Ok(Some(l))) => l,
        Ok(_) => {
            let status = child.wait().await.ok();
            tail.drained(crate::child::LAST_LINES_WAIT).await;
            return Err(exited_early(status));
        }
        Err(_) => return Err(anyhow!("built-in target printed no address within {timeout:?}").into()),
    };
    tail.push(line.clone());
    let addr = line
        .rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| anyhow!("built-in target announced {line:?}, expected an address"))?;
    drain_lines(
        lines.into_inner().into_inner(),
        tail.clone(),
        crate::child::Stream::Stdout,
    );
    Ok(addr)
}

fn exited_early(status: Option<std::process::ExitStatus>) -> TargetError {
    TargetError::ExitedEarly {
        status: status.map_or("unknown status".into(), |s| s.to_string()),
    }
}

impl RunningTarget {
    /// Everything the target wrote that is kept, if fdsoak started it.
    pub(crate) fn output(&self) -> Option<crate::child::Tail> {
        self.child.is_some().then(|| self.output.clone())
    }

    /// The exit status, if fdsoak started the target and it has exited.
    pub(crate) fn try_exit_status(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        c.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Stops a target fdsoak started: SIGTERM, a grace period, then SIGKILL. Attached targets are left alone.
    pub(crate) async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            crate::child::stop(&mut child, crate::child::STOP_GRACE).await;
        }
    }
}

/// A fresh directory of this user's, and the path of a socket in it.
fn socket_in_private_dir() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("fdsoak-target-")
        .tempdir()
        .context("making a directory for the target's socket")?;
    let path = dir.path().join("target.sock");
    Ok((dir, path))
}

/// Asks the kernel for a free loopback port. Another process could take it
/// before the target binds it; the readiness check would then fail clearly.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Splits a command line into words with POSIX shell quoting rules (shlex). No shell is involved.
pub(crate) fn split_command(line: &str) -> anyhow::Result<Vec<String>> {
    let words = shlex::split(line).ok_or_else(|| anyhow!("unterminated quote or escape in command {line:?}"))?;
    if words.is_empty() {
        return Err(anyhow!("empty command"));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_escapes() {
        let w = split_command(r#"./srv --port {port} --name "a b" 'c d' e\ f"#).unwrap();
        assert_eq!(w, ["./srv", "--port", "{port}", "--name", "a b", "c d", "e f"]);
        assert!(split_command("x 'open").is_err());
        assert!(split_command("   ").is_err());
    }
}
