//! Finds the process that owns a listening TCP socket, the way `ss -p` does:
//! look up the socket's inode in the kernel's TCP tables, then find which
//! process has `socket:[inode]` among its open descriptors.

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
