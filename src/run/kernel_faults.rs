//! A run's kernel faults (`via = "kernel"`): whether this process may inject
//! them (CAP_NET_ADMIN, checked before anything starts), and the fault
//! module's view of a watched process's TCP sockets, read from its `/proc`
//! descriptor table joined to the kernel's socket table by inode.

use crate::domain::{InodeSet, Role};
use crate::fault::kernel::{KernelFaults, TcpConn};
use crate::scenario::Scenario;
use std::sync::Arc;

/// Whether any phase has a fault with no proxy.
pub(crate) fn any(sc: &Scenario) -> bool {
    sc.phases.iter().flat_map(|p| &p.faults).any(|f| f.is_kernel())
}

/// Whether any phase has a fault with no proxy that needs nftables (blackhole, loss).
fn nft_rules(sc: &Scenario) -> bool {
    use crate::scenario::FaultKind::{Blackhole, Loss};
    sc.phases
        .iter()
        .flat_map(|p| &p.faults)
        .any(|f| f.is_kernel() && matches!(f.kind, Blackhole | Loss))
}

/// The first kernel fault that could act on nothing because the target is on a Unix
/// socket (SOCK_DESTROY and nftables act on TCP), with why: the driver's and the
/// client's links to such a target, and its own inbound ones. Its outbound TCP links
/// to its backends stay in reach.
pub(crate) fn unix_problem(sc: &Scenario, unix_target: bool) -> Option<(crate::scenario::KeyPath, String)> {
    use crate::scenario::{Direction, KeyPath};
    if !unix_target {
        return None;
    }
    for (i, phase) in sc.phases.iter().enumerate() {
        for (j, f) in phase.faults.iter().enumerate() {
            let role = f.role.unwrap_or_default();
            let reachable = role == Role::Target && f.direction == Some(Direction::Outbound);
            if f.is_kernel() && !reachable {
                let at = KeyPath::default()
                    .key("phases")
                    .index(i)
                    .key("faults")
                    .index(j)
                    .key("via");
                return Some((
                    at,
                    format!(
                        "the target is on a Unix socket, and kernel faults act on TCP connections only (SOCK_DESTROY, nftables): the {role}'s connections to it are out of reach; use the proxy (leave out via), or, for the target's TCP links to its backends, role = \"target\" with direction = \"outbound\""
                    ),
                ));
            }
        }
    }
    None
}

/// Refuses a run with kernel faults that this process could not inject.
pub(crate) fn check_rights(sc: &Scenario) -> anyhow::Result<()> {
    if any(sc) && !crate::fault::kernel::may_reset() {
        anyhow::bail!(
            "faults with via = \"kernel\" need CAP_NET_ADMIN, which fdsoak does not have: run it as root, or give it the capability (setcap cap_net_admin+ep)"
        );
    }
    if nft_rules(sc) && !crate::fault::nft::available() {
        anyhow::bail!(
            "blackhole and loss faults with via = \"kernel\" need the nft command (Debian's nftables package), which was not found"
        );
    }
    Ok(())
}

/// The run's kernel faults, on the target `target` and fdsoak itself (the driver, its
/// proxy's sockets aside); None when the scenario has none.
pub(crate) fn start(sc: &Scenario, target: i32, proxy_sockets: InodeSet) -> anyhow::Result<Option<Arc<KernelFaults>>> {
    use anyhow::Context;
    if !any(sc) {
        return Ok(None);
    }
    let own = std::process::id() as i32;
    let sockets = Arc::new(move |pid: i32| {
        let skip = (pid == own).then(|| crate::domain::lock(&proxy_sockets).clone());
        sockets_of(pid, skip.as_ref())
    });
    let faults = KernelFaults::new(sockets, nft_rules(sc)).context("making the run's nftables table")?;
    faults.set_pid(Role::Target, target);
    faults.set_pid(Role::Driver, own);
    Ok(Some(Arc::new(faults)))
}

/// The TCP sockets `pid` holds now, less those in `skip`.
fn sockets_of(pid: i32, skip: Option<&crate::domain::Inodes>) -> std::io::Result<Vec<TcpConn>> {
    let inodes = crate::sampler::peers::socket_inodes(pid, skip)?;
    let tcp = crate::sampler::fast::tcp_sockets(&inodes)?;
    Ok(tcp
        .into_iter()
        .map(|s| TcpConn {
            state: s.state,
            local: s.local,
            remote: s.remote,
        })
        .collect())
}
