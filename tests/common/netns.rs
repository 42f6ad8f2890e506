//! A second "host" for tests: a network namespace joined to this one by a
//! veth pair, made with iproute2 and removed on drop. Where namespaces
//! cannot be made (no privilege, no `ip`), [`NetNs::create`] says why and
//! the test skips.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace with an address reachable from the test's namespace.
pub(crate) struct NetNs {
    pub name: String,
    /// The namespace's address on the veth link; this side is `host_ip`.
    pub ip: String,
    pub host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl NetNs {
    /// A new namespace, or why one cannot be made here.
    pub(crate) fn create() -> Result<NetNs, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id() % 10_000;
        let name = format!("fdsoak-{id}-{n}");
        let (outer, inner) = (format!("fdh{id}x{n}"), format!("fdn{id}x{n}"));
        // A /30 of its own per namespace: 10.231.<n>.<4k>.
        let base = (id % 60) * 4;
        let (host_ip, ip_addr) = (format!("10.231.{n}.{}", base + 1), format!("10.231.{n}.{}", base + 2));
        ip(&["netns", "add", &name])?;
        let ns = NetNs {
            name: name.clone(),
            ip: ip_addr.clone(),
            host_ip: host_ip.clone(),
        };
        ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner])?;
        ip(&["link", "set", &inner, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &outer])?;
        ip(&["link", "set", &outer, "up"])?;
        ip(&["-n", &name, "addr", "add", &format!("{ip_addr}/30"), "dev", &inner])?;
        ip(&["-n", &name, "link", "set", &inner, "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `fdsoak serve` inside the namespace, in a PID namespace of its own too
    /// (as in a container), bound to the namespace's address. Returns the
    /// `unshare` wrapper (killing it kills the server), the server's PID as
    /// this host sees it, and the lines it printed (its address, its metrics URL).
    pub(crate) fn serve(&self, args: &[&str]) -> (Child, i32, Vec<String>) {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
            ])
            .args([super::FDSOAK, "serve", "--bind", &self.ip, "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines_wanted = if args.contains(&"--metrics-addr") { 2 } else { 1 };
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        for _ in 0..lines_wanted {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            lines.push(l.trim().rsplit(' ').next().unwrap().to_string());
        }
        // Keep draining, so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let pid = serve_pid(child.id() as i32).expect("the server's host PID");
        (child, pid, lines)
    }
}

/// The host PID of the `fdsoak serve` under `ip netns exec … unshare …`, by walking the children.
fn serve_pid(root: i32) -> Option<i32> {
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "fdsoak" {
            return Some(pid);
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
        }
    }
    None
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace removes its end of the veth pair, and with it ours.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
