//! Finds the process that owns a listening TCP socket, the way `ss -p` does:
//! look up the socket's inode in the kernel's TCP tables, then find which
//! process has `socket:[inode]` among its open descriptors.
//!
//! The owner of a published port is not always the server. Docker's
//! `docker-proxy`, Podman's `rootlessport`, `kubectl port-forward`, `socat`
//! and `ssh -L` hold the port and relay to a server elsewhere (another
//! network namespace, a pod). Sampling them would measure the forwarder, so
//! [`forwarder`] names them and the target refuses to attach.

use procfs::net::TcpState;
use procfs::process::FDTarget;

/// The PID of the process listening on `port` (IPv4 or IPv6), if this user can see it.
pub fn pid_listening_on(port: u16) -> anyhow::Result<Option<i32>> {
    let mut inodes = Vec::new();
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        // A host without IPv6 has no tcp6 table; that is not an error.
        for e in table.unwrap_or_default() {
            if e.state == TcpState::Listen && e.local_address.port() == port && e.inode != 0 {
                inodes.push(e.inode);
            }
        }
    }
    if inodes.is_empty() {
        return Ok(None);
    }
    for proc in procfs::process::all_processes()?.flatten() {
        let Ok(fds) = proc.fd() else { continue };
        let owns = fds
            .flatten()
            .any(|fd| matches!(fd.target, FDTarget::Socket(i) if inodes.contains(&i)));
        if owns {
            return Ok(Some(proc.pid));
        }
    }
    Ok(None)
}

/// A process's short name (`comm`), or "?" when it cannot be read.
pub fn name_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(|_| "?".into(), |s| s.trim().to_string())
}

/// When `pid` is a port-forwarder rather than a server: what it is.
pub fn forwarder(pid: i32) -> Option<&'static str> {
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
pub fn classify(comm: &str, args: &[String]) -> Option<&'static str> {
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
