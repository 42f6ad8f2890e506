//! Kernel blackholes through nftables: one `inet` table per run, named after
//! the run's process (`fdsoak_PID_START`, START its start time in clock
//! ticks, so a reused PID is told apart), holding one pair of base chains per
//! blackhole (output and input) that drop both directions of each selected
//! connection by its exact four-tuple, and one pair per loss toxic that
//! drops a random share of them (`numgen random`), each packet judged once:
//! on its way out of the watched process's end, or on its way in. A fault is
//! lifted by deleting its chains; the table goes when the run ends (and on Ctrl-C, which ends it).
//! A table left by a run that was killed is removed when the next run
//! starts. Rules go through Debian's `nft`, fed on its standard input.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// The prefix of every table fdsoak makes.
const PREFIX: &str = "fdsoak_";

/// This run's table.
#[derive(Debug)]
pub(crate) struct Table {
    name: String,
}

impl Table {
    /// Removes the tables of fdsoak runs that are gone, then makes this run's.
    pub(crate) fn create() -> io::Result<Table> {
        remove_stale();
        let name = table_name(std::process::id()).ok_or_else(|| io::Error::other("reading /proc/self/stat"))?;
        run(&format!("add table inet {name}\n"))?;
        Ok(Table { name })
    }

    /// Drops both directions of `conns` (each its two ends) until [`Table::lift`] with the same `id`.
    pub(crate) fn blackhole(&self, id: u64, conns: &[(SocketAddr, SocketAddr)]) -> io::Result<()> {
        let t = &self.name;
        let mut script = String::new();
        for (hook, suffix) in [("output", "out"), ("input", "in")] {
            script.push_str(&format!(
                "add chain inet {t} b{id}_{suffix} {{ type filter hook {hook} priority -10; policy accept; }}\n"
            ));
            for &(a, b) in conns {
                for (from, to) in [(a, b), (b, a)] {
                    script.push_str(&format!("add rule inet {t} b{id}_{suffix} {} drop\n", tuple(from, to)));
                }
            }
        }
        run(&script)
    }

    /// Drops `fraction` of the packets of `conns` (each its watched end, then the other)
    /// until [`Table::lift_loss`] with the same `id`; called again, it replaces the
    /// connections in one transaction.
    pub(crate) fn loss(&self, id: u64, fraction: f64, conns: &[(SocketAddr, SocketAddr)]) -> io::Result<()> {
        const SCALE: u32 = 1_000_000;
        let t = &self.name;
        let below = ((fraction * f64::from(SCALE)).round() as u32).clamp(1, SCALE - 1);
        let mut script = String::new();
        for (hook, suffix) in [("output", "out"), ("input", "in")] {
            script.push_str(&format!(
                "add chain inet {t} l{id}_{suffix} {{ type filter hook {hook} priority -10; policy accept; }}\nflush chain inet {t} l{id}_{suffix}\n"
            ));
            for &(mine, theirs) in conns {
                // Out: what the watched end sends; in: what it is sent. On loopback every
                // packet passes both hooks, so each direction is matched in one only.
                let (from, to) = if suffix == "out" {
                    (mine, theirs)
                } else {
                    (theirs, mine)
                };
                script.push_str(&format!(
                    "add rule inet {t} l{id}_{suffix} {} numgen random mod {SCALE} < {below} drop\n",
                    tuple(from, to)
                ));
            }
        }
        run(&script)
    }

    /// Lifts blackhole `id`.
    pub(crate) fn lift(&self, id: u64) -> io::Result<()> {
        self.delete_chains('b', id)
    }

    /// Lifts loss toxic `id`.
    pub(crate) fn lift_loss(&self, id: u64) -> io::Result<()> {
        self.delete_chains('l', id)
    }

    fn delete_chains(&self, kind: char, id: u64) -> io::Result<()> {
        let t = &self.name;
        run(&format!(
            "delete chain inet {t} {kind}{id}_out\ndelete chain inet {t} {kind}{id}_in\n"
        ))
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if let Err(e) = run(&format!("delete table inet {}\n", self.name)) {
            tracing::warn!("removing the nftables table {}: {e}", self.name);
        }
    }
}

/// Whether Debian's `nft` is there to run.
pub(crate) fn available() -> bool {
    Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The match for packets from `from` to `to`.
fn tuple(from: SocketAddr, to: SocketAddr) -> String {
    let ip = if from.is_ipv4() { "ip" } else { "ip6" };
    format!(
        "{ip} saddr {} tcp sport {} {ip} daddr {} tcp dport {}",
        from.ip(),
        from.port(),
        to.ip(),
        to.port()
    )
}

/// The table name of the run in process `pid`: its PID and start time.
fn table_name(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.to_string();
    Some(format!("{PREFIX}{pid}_{start}"))
}

/// Deletes every fdsoak table whose run is gone (its PID dead, or reused by another process).
fn remove_stale() {
    let Ok(out) = Command::new("nft").args(["-j", "list", "tables"]).output() else {
        return;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return;
    };
    let tables = json["nftables"].as_array().into_iter().flatten();
    for t in tables.filter_map(|e| e.get("table")) {
        let (Some("inet"), Some(name)) = (t["family"].as_str(), t["name"].as_str()) else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('_').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        if table_name(pid).as_deref() != Some(name) {
            tracing::info!("removing the nftables table {name} of an fdsoak run that is gone");
            let _ = run(&format!("delete table inet {name}\n"));
        }
    }
}

/// Runs an nft script.
fn run(script: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tuple_matches_one_direction_of_one_connection() {
        let a = "127.0.0.1:40000".parse().unwrap();
        let b = "127.0.0.1:50051".parse().unwrap();
        assert_eq!(
            super::tuple(a, b),
            "ip saddr 127.0.0.1 tcp sport 40000 ip daddr 127.0.0.1 tcp dport 50051"
        );
        let six = "[::1]:7".parse().unwrap();
        assert!(super::tuple(six, six).starts_with("ip6 saddr ::1 tcp sport 7"));
    }
}
