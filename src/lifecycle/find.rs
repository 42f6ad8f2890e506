//! Finds the process that owns a listening socket, the way `ss -p` does:
//! look up the socket's inode in the kernel's TCP tables (or, for a Unix
//! socket, `/proc/net/unix` by its path), then find which process has
//! `socket:[inode]` among its open descriptors.
//!
//! The owner of a published port is not always the server. Docker's
//! `docker-proxy`, Podman's `rootlessport`, `kubectl port-forward`, `socat`
//! and `ssh -L` hold the port and relay to a server elsewhere (another
//! network namespace, a pod). Sampling them would measure the forwarder, so
//! [`forwarder`] names them and the target refuses to attach.

use crate::net::Address;
use procfs::net::{TcpState, UnixState};
use procfs::process::FDTarget;

/// Who holds a listening port, as far as this user can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// This process holds it.
    Owner(i32),
    /// A socket listens there, but the process that holds it belongs to
    /// another user (this uid), whose `/proc/PID/fd` this user cannot read.
    OtherUser { uid: u32 },
    /// Nothing on this host's network namespace listens there, or its owner is
    /// in another PID namespace (a container).
    NotFound,
}

/// How a listening address reads in a sentence: "port 50051", or the Unix socket's name.
pub(crate) fn describe(addr: &Address) -> String {
    match addr {
        Address::Tcp(a) => format!("port {}", a.port()),
        unix => unix.to_string(),
    }
}

/// The process listening at `addr`: on its port (IPv4 or IPv6), or on its Unix socket.
pub(crate) fn listener_at(addr: &Address) -> anyhow::Result<Listener> {
    match addr {
        Address::Tcp(a) => listener_on(a.port()),
        unix => listener_on_unix(unix),
    }
}

/// The process listening on `port` (IPv4 or IPv6).
pub(crate) fn listener_on(port: u16) -> anyhow::Result<Listener> {
    let mut inodes = Vec::new();
    let mut uid = None;
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        // A host without IPv6 has no tcp6 table; that is not an error.
        for e in table.unwrap_or_default() {
            if e.state == TcpState::Listen && e.local_address.port() == port && e.inode != 0 {
                inodes.push(e.inode);
                uid = Some(e.uid);
            }
        }
    }
    owner_of(&inodes, uid)
}

/// The process listening on a Unix socket: the unconnected socket bound to its
/// name (a relative path is matched as given and as made absolute). The table
/// carries no owner, so one that cannot be read is said to be another user's,
/// with the socket file's owner.
fn listener_on_unix(addr: &Address) -> anyhow::Result<Listener> {
    let mut names: Vec<std::path::PathBuf> = addr.socket_name().into_iter().map(Into::into).collect();
    if let Address::Unix(p) = addr {
        if let Ok(abs) = std::path::absolute(p) {
            names.push(abs);
        }
    }
    let inodes: Vec<u64> = procfs::net::unix()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.state == UnixState::UNCONNECTED && e.path.as_ref().is_some_and(|p| names.contains(p)))
        .map(|e| e.inode)
        .collect();
    if inodes.is_empty() {
        return Ok(Listener::NotFound);
    }
    use std::os::unix::fs::MetadataExt;
    let uid = match addr {
        Address::Unix(p) => std::fs::metadata(p).map_or(0, |m| m.uid()),
        _ => 0,
    };
    owner_of(&inodes, Some(uid))
}

/// The process holding one of `inodes` among its descriptors; `uid` is the listener's owner, if known.
fn owner_of(inodes: &[u64], uid: Option<u32>) -> anyhow::Result<Listener> {
    let Some(uid) = uid else {
        return Ok(Listener::NotFound);
    };
    let mut denied = false;
    for proc in procfs::process::all_processes()?.flatten() {
        let fds = match proc.fd() {
            Ok(fds) => fds,
            Err(procfs::ProcError::PermissionDenied(_)) => {
                denied = true;
                continue;
            }
            Err(_) => continue,
        };
        let owns = fds
            .flatten()
            .any(|fd| matches!(fd.target, FDTarget::Socket(i) if inodes.contains(&i)));
        if owns {
            return Ok(Listener::Owner(proc.pid));
        }
    }
    Ok(if denied {
        Listener::OtherUser { uid }
    } else {
        Listener::NotFound
    })
}

/// What to do when a process's descriptors cannot be read because it belongs to another user.
pub(crate) const OTHER_USER_WAYS_OUT: &str = "run fdsoak as that user, grant fdsoak CAP_SYS_PTRACE (sudo setcap cap_sys_ptrace+ep \"$(command -v fdsoak)\"), or read the server's descriptors from its metrics (--fds-from URL)";

/// When `pid` exists but its descriptors cannot be read by this user: a sentence saying so, with the ways out.
pub(crate) fn unreadable(pid: i32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let owner = std::fs::metadata(format!("/proc/{pid}")).map_or(String::from("?"), |m| m.uid().to_string());
            Some(format!(
                "process {pid} ({}) belongs to another user (uid {owner}): fdsoak cannot read its /proc/{pid}/fd; {OTHER_USER_WAYS_OUT}",
                name_of(pid)
            ))
        }
        _ => None,
    }
}

/// A process's short name (`comm`), or "?" when it cannot be read.
pub(crate) fn name_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(|_| "?".into(), |s| s.trim().to_string())
}

/// When `pid` is a port-forwarder rather than a server: what it is.
pub(crate) fn forwarder(pid: i32) -> Option<&'static str> {
    let args: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    classify(&name_of(pid), &args)
}

/// The forwarder a process is, from its `comm` and its command line.
pub(crate) fn classify(comm: &str, args: &[String]) -> Option<&'static str> {
    let program = args.first().and_then(|a| a.rsplit('/').next()).unwrap_or(comm);
    let has = |word: &str| args.iter().any(|a| a == word);
    for name in [comm, program] {
        match name {
            "docker-proxy" => return Some("docker-proxy (Docker's published-port relay)"),
            "rootlessport" | "rootlessport-child" => return Some("rootlessport (Podman's rootless port relay)"),
            "rootlesskit" => return Some("rootlesskit (a rootless container port relay)"),
            "slirp4netns" | "pasta" | "passt" => return Some("a user-mode network relay for rootless containers"),
            "gvproxy" | "vpnkit" => return Some("a VM port relay (Podman machine or Docker Desktop)"),
            "socat" => return Some("socat (a relay)"),
            "kubectl" | "oc" if has("port-forward") => return Some("kubectl port-forward"),
            "ssh" if args.iter().any(|a| a.starts_with("-L")) => return Some("an ssh tunnel (ssh -L)"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn names_the_usual_forwarders_and_not_servers() {
        let docker =
            words("/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2");
        assert!(classify("docker-proxy", &docker).unwrap().contains("docker-proxy"));
        let kubectl = words("kubectl port-forward svc/api 50051:50051");
        assert_eq!(classify("kubectl", &kubectl), Some("kubectl port-forward"));
        assert_eq!(classify("kubectl", &words("kubectl get pods")), None);
        assert!(classify("ssh", &words("ssh -L 50051:db:50051 bastion")).is_some());
        assert!(classify("rootlessport", &[]).is_some());
        assert_eq!(classify("my-server", &words("./my-server --port 50051")), None);
        assert_eq!(classify("fdsoak", &words("fdsoak serve --port 0")), None);
    }
}
