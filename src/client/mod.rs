//! The client under test: the user's own program, started with the address
//! it must use (the fault proxy in front of the target), watched as the role
//! `client`, and stopped as a process group after the final sample.
//!
//! [`demo`] is a reference client with a good mode and two leaky ones, so
//! that tests and users can see what a verdict on a client looks like.

pub(crate) mod demo;

use crate::child::{self, Tail};
use crate::net::Address;
use crate::scenario::ClientSpec;
use anyhow::{anyhow, Context};
use std::path::Path;
use tokio::process::Child;

/// The environment variable that carries the address the client must use.
pub(crate) const ADDR_ENV: &str = "FDSOAK_TARGET_ADDR";

/// A client fdsoak started.
pub(crate) struct RunningClient {
    pub pid: i32,
    /// The command line as run, `{addr}` replaced.
    pub command: String,
    child: Child,
    tail: Tail,
}

/// What became of the client, for the report.
#[derive(Debug, Clone)]
pub(crate) struct ClientEnd {
    pub command: String,
    pub pid: i32,
    /// How it ended, if it exited on its own before fdsoak stopped it.
    pub exited_early: Option<String>,
    /// The last lines it wrote, stdout and stderr together.
    pub output_tail: Vec<String>,
    /// Everything it wrote that is kept, for `client.log`.
    pub output: child::Tail,
}

/// The client's command line with `{addr}` and `{fdsoak}` (this executable) filled in.
pub(crate) fn command_line(spec: &ClientSpec, addr: &str, fdsoak: &Path) -> String {
    spec.command
        .replace("{addr}", addr)
        .replace("{fdsoak}", &fdsoak.display().to_string())
}

/// How to start a client: fdsoak's own executable (for `{fdsoak}`), what its
/// environment gains (an origin agent's), where it runs (`None`: fdsoak's
/// directory), and where what it writes is kept.
pub(crate) struct Launch<'a> {
    pub fdsoak: &'a Path,
    pub env: &'a [(String, String)],
    pub dir: Option<&'a Path>,
    pub output: Tail,
}

/// Starts the client's command with `{addr}` (and `FDSOAK_TARGET_ADDR`) set to `addr`.
pub(crate) fn start(spec: &ClientSpec, addr: &Address, how: Launch<'_>) -> anyhow::Result<RunningClient> {
    let Launch {
        fdsoak,
        env,
        dir,
        output: tail,
    } = how;
    let line = command_line(spec, &addr.to_string(), fdsoak);
    let words = shlex::split(&line).filter(|w| !w.is_empty());
    let words = words.ok_or_else(|| anyhow!("client command {line:?} is not a command line"))?;
    let mut cmd = child::command_in(&words, dir);
    cmd.env(ADDR_ENV, addr.to_string()).envs(env.iter().cloned());
    let mut child =
        child::launch(cmd, None, &tail, false).with_context(|| format!("starting the client {:?}", words[0]))?;
    if let Some(out) = child.stdout.take() {
        child::drain_lines(out, tail.clone(), child::Stream::Stdout);
    }
    let pid = child.id().ok_or_else(|| anyhow!("the client exited at once"))? as i32;
    tracing::info!("client started (pid {pid}): {line}");
    Ok(RunningClient {
        pid,
        command: line,
        child,
        tail,
    })
}

impl RunningClient {
    /// Stops the client and its process group (unless it already exited) and says how it ended.
    pub(crate) async fn stop(mut self) -> ClientEnd {
        let exited_early = self.child.try_wait().ok().flatten().map(|s| s.to_string());
        if exited_early.is_none() {
            child::stop(&mut self.child, child::STOP_GRACE).await;
        } else {
            // Whatever it left behind in its group goes too.
            if let Some(g) = rustix::process::Pid::from_raw(self.pid) {
                let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
            }
        }
        ClientEnd {
            command: self.command,
            pid: self.pid,
            exited_early,
            output_tail: self.tail.lines(),
            output: self.tail,
        }
    }
}
