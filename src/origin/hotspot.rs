//! HotSpot's dynamic attach, done by fdsoak itself: a running JVM (a target
//! attached with `--target`) is asked to load the native agent as its JVMTI
//! agent, which puts its wrappers in the path of the JDK's calls and starts
//! its JVM part (`native/jvm.c`). No JDK tool is needed on the PATH.
//!
//! The protocol is the one the JDK's own tools speak: if the JVM's socket
//! (`/tmp/.java_pid<pid>`, as the JVM sees its `/tmp`) is not there, a
//! trigger file `.attach_pid<pid>` in its working directory and a `SIGQUIT`
//! start its attach listener; then one `load` request on the socket. Both
//! paths are reached through `/proc/PID/root` and `/proc/PID/cwd`, so a JVM
//! in a container's namespaces is found with its own pid.
//!
//! A JVM started with `-XX:+DisableAttachMechanism` is not sent the signal
//! (it would print a thread dump): the caller is told why instead. When the
//! run ends, the agent is paused (a word in its table, written from outside),
//! and a later run resumes it rather than load a second one.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the JVM has to open its attach socket, and to answer.
const ATTACH_WAIT: Duration = Duration::from_secs(10);
/// The native table's memfd, and where its header keeps the pause word.
pub(crate) const TABLE_MAPPING: &str = "fdsoak-fdtab";
const PAUSED_AT: usize = 40;

/// What attaching did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attached {
    /// The agent was loaded now.
    Loaded,
    /// An earlier run's agent was there, paused: it records again.
    Resumed,
}

/// Whether `pid` runs a HotSpot JVM (it maps `libjvm.so`).
pub(crate) fn is_jvm(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.lines().any(|l| l.ends_with("/libjvm.so")))
}

/// Loads `agent` (the native agent's file) into the JVM `pid`, or resumes the one an
/// earlier run left paused; why not, in words for a note.
pub(crate) fn attach(pid: u32, agent: &Path) -> Result<Attached, String> {
    if super::memory::find(pid as i32, TABLE_MAPPING).is_some() {
        set_paused(pid, false)?;
        return Ok(Attached::Resumed);
    }
    if attach_disabled(pid) {
        return Err("it was started with -XX:+DisableAttachMechanism".into());
    }
    let socket = open_listener(pid)?;
    let answer = load(&socket, agent)?;
    match answer.lines().next().map(str::trim) {
        Some("0") if agent_returned_zero(&answer) => Ok(Attached::Loaded),
        _ => Err(format!(
            "the JVM refused the agent: {}",
            answer.trim().replace('\n', "; ")
        )),
    }
}

/// Pauses (or resumes) the agent in `pid`: its wrappers stop recording, as a run that
/// attached to the process ends.
pub(crate) fn set_paused(pid: u32, paused: bool) -> Result<(), String> {
    let base = super::memory::find(pid as i32, TABLE_MAPPING).ok_or("the agent's table is gone")?;
    let word = u64::from(paused).to_le_bytes();
    if super::memory::write_remote(pid as i32, base + PAUSED_AT, &word) {
        Ok(())
    } else {
        Err("its memory cannot be written".into())
    }
}

/// The JVM's own pid, as it knows itself (the last in `NSpid`).
fn own_pid(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last()?.parse().ok())
        })
        .unwrap_or(pid)
}

/// `-XX:+DisableAttachMechanism` on its command line or in the options the JVM reads
/// from its environment.
fn attach_disabled(pid: u32) -> bool {
    const FLAG: &str = "-XX:+DisableAttachMechanism";
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let has = |bytes: &[u8]| {
        bytes
            .split(|b| *b == 0)
            .any(|a| String::from_utf8_lossy(a).contains(FLAG))
    };
    has(&cmdline)
        || environ.split(|b| *b == 0).any(|v| {
            let v = String::from_utf8_lossy(v);
            (v.starts_with("JAVA_TOOL_OPTIONS=") || v.starts_with("JDK_JAVA_OPTIONS=")) && v.contains(FLAG)
        })
}

/// The JVM's attach socket, its listener started first if it is not there.
fn open_listener(pid: u32) -> Result<PathBuf, String> {
    let nspid = own_pid(pid);
    let socket = PathBuf::from(format!("/proc/{pid}/root/tmp/.java_pid{nspid}"));
    if socket.exists() {
        return Ok(socket);
    }
    let trigger = [
        PathBuf::from(format!("/proc/{pid}/cwd/.attach_pid{nspid}")),
        PathBuf::from(format!("/proc/{pid}/root/tmp/.attach_pid{nspid}")),
    ]
    .into_iter()
    .find(|t| std::fs::File::create(t).is_ok())
    .ok_or("no trigger file could be made in its working directory or /tmp")?;
    let signalled = rustix::process::Pid::from_raw(pid as i32)
        .map(|p| rustix::process::kill_process(p, rustix::process::Signal::QUIT));
    let deadline = Instant::now() + ATTACH_WAIT;
    let mut opened = false;
    if matches!(signalled, Some(Ok(()))) {
        while !opened && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            opened = socket.exists();
        }
    }
    let _ = std::fs::remove_file(&trigger);
    if opened {
        Ok(socket)
    } else {
        Err(format!(
            "its attach listener did not open {} within {ATTACH_WAIT:?}",
            socket.display()
        ))
    }
}

/// Sends one `load` request; the JVM's answer.
fn load(socket: &Path, agent: &Path) -> Result<String, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(ATTACH_WAIT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(ATTACH_WAIT)).map_err(|e| e.to_string())?;
    let mut request = Vec::new();
    for part in ["1", "load", &agent.display().to_string(), "true", ""] {
        request.extend(part.as_bytes());
        request.push(0);
    }
    s.write_all(&request)
        .map_err(|e| format!("asking it to load the agent: {e}"))?;
    let mut answer = String::new();
    s.take(64 << 10)
        .read_to_string(&mut answer)
        .map_err(|e| format!("reading its answer: {e}"))?;
    Ok(answer)
}

/// The agent's own return code, as the JVM reports it ("return code: 0", or a bare 0 on
/// older JDKs), is zero.
fn agent_returned_zero(answer: &str) -> bool {
    let rest: Vec<&str> = answer.lines().skip(1).map(str::trim).collect();
    match rest.first() {
        None => true,
        Some(l) => l.strip_prefix("return code:").map_or(*l, str::trim) == "0",
    }
}

#[cfg(test)]
mod tests {
    use super::agent_returned_zero;

    #[test]
    fn the_agents_return_code_is_read_in_old_and_new_answers() {
        assert!(agent_returned_zero("0\nreturn code: 0\n"));
        assert!(agent_returned_zero("0\n0\n"));
        assert!(agent_returned_zero("0\n"));
        assert!(!agent_returned_zero("0\nreturn code: 1\n"));
        assert!(!agent_returned_zero("0\n-1\n"));
    }
}
