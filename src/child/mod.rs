//! Processes fdsoak starts (a spawned or built-in target, a client under
//! test): each in its own process group, dying with fdsoak however fdsoak
//! ends, with what it wrote kept (every line with its time and stream, the
//! beginning and the end of it when it wrote much: [`Tail`]) so that the
//! report holds it and an early death can be explained, and stopped as a
//! group with SIGTERM, then SIGKILL.

pub(crate) mod exhaustion;
pub mod output;

pub use output::{Keep, Redactor, Stream, Tail, TAIL_LINES};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// How long a child has to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long, at most, the lines a process wrote before it exited may take to be read from
/// its pipes, before the report keeps what came.
pub const LAST_LINES_WAIT: Duration = Duration::from_secs(1);

/// Starts `cmd` in its own process group (a Ctrl-C at the terminal reaches
/// fdsoak alone, which then stops the child itself), dying with fdsoak, with
/// RLIMIT_NOFILE set to `nofile` if given. Stderr is drained into `tail`;
/// stdout is piped and left to the caller, and so is stdin when `stdin` is set.
pub fn launch(mut cmd: Command, nofile: Option<u64>, tail: &Tail, stdin: bool) -> std::io::Result<Child> {
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe, and the closure touches no shared state.
        unsafe {
            cmd.pre_exec(move || set_nofile(n));
        }
    }
    dies_with_fdsoak(cmd.as_std_mut());
    let mut child = cmd.spawn()?;
    if let Some(err) = child.stderr.take() {
        drain_lines(err, tail.clone(), Stream::Stderr);
    }
    Ok(child)
}

/// A command for `words` (a program and its arguments) that runs in `dir`, or
/// in fdsoak's own directory when `None`. A relative program path with a slash
/// (`./target/release/server`) is taken from `dir`, as a shell there would.
pub fn command_in(words: &[String], dir: Option<&std::path::Path>) -> Command {
    let program = match dir {
        Some(d) if words[0].contains('/') && !words[0].starts_with('/') => d.join(&words[0]).into_os_string(),
        _ => words[0].clone().into(),
    };
    let mut cmd = Command::new(program);
    cmd.args(&words[1..]);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd
}

/// Makes a child die with fdsoak, however fdsoak ends (SIGKILL, the OOM
/// killer): the kernel sends it SIGKILL when fdsoak's starting thread exits.
/// Children start from runtime worker threads, which live as long as the process.
pub fn dies_with_fdsoak(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: prctl and getppid are async-signal-safe, the error is built without allocating,
    // and the closure touches no shared state.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // fdsoak may have died between fork and prctl: then nobody would send the signal.
            // A raw OS error: after fork only async-signal-safe work, so nothing that allocates.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(
                    rustix::io::Errno::SRCH.raw_os_error(),
                ));
            }
            Ok(())
        });
    }
}

/// Sets this process's RLIMIT_NOFILE to `n` (soft and hard), within the hard limit it has.
pub fn set_nofile(n: u64) -> std::io::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = match cur.maximum {
        Some(h) if h < n => h,
        _ => n,
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(n.min(hard)),
            maximum: Some(hard),
        },
    )?;
    Ok(())
}

/// Keeps what a child writes on `stream`, so its pipe never fills and the report holds it.
pub fn drain_lines(pipe: impl AsyncRead + Unpin + Send + 'static, tail: Tail, stream: Stream) {
    tail.pipe_opened();
    tokio::spawn(async move {
        // By bytes, not as UTF-8 text: a line that is not valid UTF-8 must not stop the drain.
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    tail.push_from(stream, line.trim_end_matches(['\n', '\r']).to_string());
                }
            }
        }
        tail.pipe_ended();
    });
}

/// Stops a child and its process group: SIGTERM, up to `grace` to exit, then SIGKILL.
/// Returns how it ended.
pub async fn stop(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    use rustix::process::{kill_process_group, Pid, Signal};
    let group = child.id().and_then(|p| Pid::from_raw(p as i32));
    if let Some(g) = group {
        let _ = kill_process_group(g, Signal::TERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            // The leader is gone; anything it left in its group goes too.
            if let Some(g) = group {
                let _ = kill_process_group(g, Signal::KILL);
            }
            status.ok()
        }
        Err(_) => {
            if let Some(g) = group {
                let _ = kill_process_group(g, Signal::KILL);
            }
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    }
}
