//! One agent's published table, as fdsoak reads it from the process's
//! memory at a fingerprint: the creating stack of each live descriptor the
//! agent saw opened (checked against the descriptor's link, so a reused
//! number is not misnamed; files by path), and the live gRPC channels with
//! their targets, whose sockets the channel's library opened on threads of
//! its own.
//!
//! The memory is the agent's to write: it is read bounded, and anything
//! malformed is no table, never an error of the run.

use crate::domain::{ChannelTally, Frame, OriginSource, OriginVia, Stack};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A table larger than this is not read (the agent's mapping holds 16 MiB).
const MAX_TABLE: usize = 16 << 20;
/// The Python agent's memfd, and the magic its header starts with.
const PYTHON_MAPPING: &str = "fdsoak-pytab";
const PYTHON_MAGIC: &[u8; 8] = b"FDSOAKP1";

#[derive(Deserialize)]
struct Raw {
    version: u32,
    #[serde(default)]
    full: bool,
    stacks: Vec<Vec<(String, String, u32, bool)>>,
    fds: Vec<(i32, String, usize)>,
    /// Files by path, with the stack that opened most of them: joined here to the
    /// descriptors whose link names the path, so the agent lists no descriptors.
    #[serde(default)]
    opens: Vec<(String, usize)>,
    channels: Vec<(String, usize)>,
    /// Per creating site (target, stack): channels created and closed over the run.
    #[serde(default)]
    channel_sites: Vec<(String, usize, u64, u64)>,
}

/// One process's origins, ready to join to its descriptors.
#[derive(Debug, Default)]
pub struct Table {
    /// Per descriptor: its link when the agent saw it (None: the native agent, which records no link).
    fds: HashMap<i32, (Option<String>, Arc<Stack>)>,
    /// Per descriptor, what the kernel ledger saw make it: asked after the agent's table.
    kernel: HashMap<i32, Arc<Stack>>,
    /// Descriptors an attached process held before the ledger watched it.
    before_attach: Option<(Vec<i32>, Arc<Stack>)>,
    /// Descriptors whose agent stack carries a runtime's own frames (Java's): the kernel's
    /// longer walk through the same JVM names less.
    managed: std::collections::HashSet<i32>,
    /// The table is a Python agent's: sockets are left to its channels (the kernel sees the interpreter's frames).
    python: bool,
    /// Per stack the kernel ledger saw, how many descriptors it made over the run.
    made: HashMap<Arc<Stack>, u64>,
    /// Per file path the Python agent saw opened: the stack that opened it.
    paths: HashMap<String, Arc<Stack>>,
    /// Live channels: the addresses their target names, where they were created, and how
    /// many are open there (the Python agent lists each live channel once).
    channels: Vec<(Vec<SocketAddr>, Arc<Stack>, u64)>,
    /// Per channel site the channel ledger followed: its channels.
    channel_tallies: HashMap<Arc<Stack>, ChannelTally>,
    /// The agent's table filled up: some descriptors have no origin.
    pub full: bool,
}

impl Table {
    /// The table `pid` keeps, if there is a readable one: the Python agent's when
    /// there is one (a Python program), else the native agent's, read for `live`,
    /// the descriptors the process holds.
    pub fn read(
        pid: i32,
        live: &[i32],
        symbols: &super::native::Symbols,
        kernel: Option<&super::kernel::Ledger>,
    ) -> Option<Table> {
        let agent = Table::read_python(pid).or_else(|| {
            let native = symbols.read(pid, live)?;
            let mut table = Table {
                fds: native.fds.into_iter().map(|(fd, s)| (fd, (None, s))).collect(),
                full: native.overflow > 0,
                managed: native.managed,
                ..Table::default()
            };
            // A JVM's agent follows grpc-java's channels and Node's grpc-js's (their sockets
            // are opened on the library's threads or callbacks).
            table.add_sites(symbols.java_channels(pid).into_iter());
            table.add_sites(grpcjs_channels(pid));
            Some(table)
        });
        let entries = kernel.and_then(|k| {
            k.read(pid, live)
                .map_err(|e| tracing::debug!("reading the kernel ledger for pid {pid}: {e}"))
                .ok()
        });
        let Some(entries) = entries else { return agent };
        let mut table = agent.unwrap_or_default();
        if let Some(k) = kernel {
            table.add_channel_sites(pid, k, symbols);
        }
        let walks: HashMap<i32, Vec<u64>> = entries.fds.iter().map(|(fd, w)| (*fd, w.pcs.clone())).collect();
        let seen = symbols.symbolize(pid, walks, entries.lost, OriginSource::Kernel);
        // Each distinct walk's count once, summed per named stack.
        let mut counted: HashMap<&[u64], (&Arc<Stack>, u64)> = HashMap::new();
        for (fd, walk) in &entries.fds {
            if let (Some(stack), Some(n)) = (seen.fds.get(fd), entries.made_by(walk)) {
                counted.insert(&walk.pcs, (stack, n));
            }
        }
        for (stack, n) in counted.into_values() {
            *table.made.entry(stack.clone()).or_default() += n;
        }
        table.kernel = seen.fds;
        table.full |= entries.lost > 0;
        if !entries.before_attach.is_empty() {
            table.before_attach = Some((entries.before_attach, Arc::new(Stack::before_attach())));
        }
        Some(table)
    }

    /// The channel ledger's sites for `pid` (its probes put in place first, if they are
    /// not yet), named, with their counts: sites that name the same place and target are one.
    fn add_channel_sites(&mut self, pid: i32, kernel: &super::kernel::Ledger, symbols: &super::native::Symbols) {
        kernel.probe_channels(pid);
        let Some(found) = kernel.channels(pid) else { return };
        if found.sites.is_empty() {
            return;
        }
        // The first address is the constructor's entry, not a return address: the
        // symbolizer steps each address back by one, so step it forward first.
        let walks: HashMap<i32, Vec<u64>> = (0..)
            .zip(&found.sites)
            .map(|(i, (site, _))| {
                let mut pcs = site.pcs.to_vec();
                if let Some(first) = pcs.first_mut() {
                    *first += 1;
                }
                (i, pcs)
            })
            .collect();
        let named = symbols.symbolize(pid, walks, 0, OriginSource::Kernel);
        let sites = (0..).zip(&found.sites).filter_map(|(i, (site, counts))| {
            let stack = named.fds.get(&i)?;
            let stack = Arc::new(Stack {
                frames: stack.frames.clone(),
                via: OriginVia::Channel,
                source: OriginSource::Kernel,
            });
            Some((site.target.clone(), stack, counts.created, counts.closed))
        });
        self.add_sites(sites);
    }

    /// Channel sites, each as (target, stack, created, closed): sites that name the same
    /// place and target are one.
    fn add_sites(&mut self, sites: impl Iterator<Item = (String, Arc<Stack>, u64, u64)>) {
        let mut merged: HashMap<(Arc<Stack>, String), (u64, u64)> = HashMap::new();
        for (target, stack, created, closed) in sites {
            let m = merged.entry((stack, target)).or_default();
            m.0 += created;
            m.1 += closed;
        }
        for ((stack, target), (created, closed)) in merged {
            let still_open = created.saturating_sub(closed);
            self.channels.push((addresses(&target), stack.clone(), still_open));
            self.channel_tallies.insert(
                stack,
                ChannelTally {
                    target,
                    created,
                    closed,
                    still_open,
                },
            );
        }
    }

    fn read_python(pid: i32) -> Option<Table> {
        let base = super::memory::find(pid, PYTHON_MAPPING)?;
        let bytes = super::memory::read_blob(pid, base, PYTHON_MAGIC, MAX_TABLE)?;
        let table = Table::parse(&bytes);
        if table.is_none() {
            tracing::debug!("pid {pid}: its Python agent's table is not one fdsoak can read");
        }
        table
    }

    /// A table from the bytes an agent wrote; None for anything malformed.
    pub fn parse(bytes: &[u8]) -> Option<Table> {
        match serde_json::from_slice::<Raw>(bytes) {
            Ok(raw) if raw.version == 1 => Some(Table::from_raw(raw)),
            _ => None,
        }
    }

    fn from_raw(raw: Raw) -> Table {
        let stack = |i: usize, via: OriginVia| {
            raw.stacks.get(i).map(|frames| {
                Arc::new(Stack {
                    frames: frames
                        .iter()
                        .map(|(function, file, line, library)| Frame {
                            function: function.clone(),
                            file: file.clone(),
                            line: *line,
                            library: *library,
                        })
                        .collect(),
                    via,
                    source: Default::default(),
                })
            })
        };
        let mut opened: HashMap<usize, Arc<Stack>> = HashMap::new();
        let mut fds = HashMap::new();
        for (fd, link, i) in raw.fds {
            let Some(s) = opened.get(&i).cloned().or_else(|| stack(i, OriginVia::Opened)) else {
                continue;
            };
            opened.insert(i, s.clone());
            fds.insert(fd, (Some(link), s));
        }
        let mut paths = HashMap::new();
        for (path, i) in raw.opens {
            let Some(s) = opened.get(&i).cloned().or_else(|| stack(i, OriginVia::Opened)) else {
                continue;
            };
            opened.insert(i, s.clone());
            paths.insert(path, s);
        }
        let mut by_target: HashMap<String, Vec<SocketAddr>> = HashMap::new();
        let mut made: HashMap<usize, Arc<Stack>> = HashMap::new();
        let mut channels = Vec::new();
        for (target, i) in raw.channels {
            let Some(s) = made.get(&i).cloned().or_else(|| stack(i, OriginVia::Channel)) else {
                continue;
            };
            made.insert(i, s.clone());
            let addrs = by_target
                .entry(target.clone())
                .or_insert_with(|| addresses(&target))
                .clone();
            channels.push((addrs, s, 1));
        }
        let mut channel_tallies = HashMap::new();
        for (target, i, created, closed) in raw.channel_sites {
            let Some(s) = made.get(&i).cloned().or_else(|| stack(i, OriginVia::Channel)) else {
                continue;
            };
            made.insert(i, s.clone());
            let still_open = created.saturating_sub(closed);
            channel_tallies.insert(
                s,
                ChannelTally {
                    target,
                    created,
                    closed,
                    still_open,
                },
            );
        }
        Table {
            fds,
            paths,
            channels,
            channel_tallies,
            full: raw.full,
            python: true,
            ..Table::default()
        }
    }

    /// Where descriptor `fd`, now pointing at `link`, was opened, if an agent or the kernel saw it:
    /// the agent's stack first (the kernel sees an interpreter's frames, not the script's),
    /// unless the native agent's walk stopped short of the kernel's (glibc's unwinder stops
    /// at code without unwind tables, such as JIT-compiled JavaScript; the kernel's goes on
    /// by frame pointers).
    pub fn opened(&self, fd: i32, link: &str) -> Option<&Arc<Stack>> {
        self.fds
            .get(&fd)
            .filter(|(l, _)| l.as_deref().is_none_or(|l| l == link))
            .map(|(_, s)| match self.kernel.get(&fd) {
                Some(k) if !self.python && !self.managed.contains(&fd) && k.frames.len() > s.frames.len() => k,
                _ => s,
            })
            .or_else(|| self.paths.get(link.strip_suffix(" (deleted)").unwrap_or(link)))
            .or_else(|| {
                // A Python program's sockets are joined to its channels by address instead.
                let socket = link.starts_with("socket:");
                self.kernel.get(&fd).filter(|_| !(self.python && socket))
            })
            .or_else(|| {
                let (fds, stack) = self.before_attach.as_ref()?;
                fds.contains(&fd).then_some(stack)
            })
    }

    /// How many descriptors `stack` made over the run, if the kernel ledger counted them.
    pub fn made(&self, stack: &Arc<Stack>) -> Option<u64> {
        self.made.get(stack).copied()
    }

    /// Where the live channels to `remote` were created, with how many are open there.
    pub fn channels_to(&self, remote: SocketAddr) -> impl Iterator<Item = (&Arc<Stack>, u64)> {
        self.channels
            .iter()
            .filter(move |(addrs, _, _)| addrs.contains(&remote))
            .map(|(_, s, n)| (s, *n))
    }

    /// The channels a site the channel ledger followed made.
    pub fn channel_tally(&self, stack: &Arc<Stack>) -> Option<&ChannelTally> {
        self.channel_tallies.get(stack)
    }

    pub fn has_channels(&self) -> bool {
        !self.channels.is_empty()
    }
}

/// The socket addresses a gRPC target names: `host:port`, `dns:///host:port`,
/// `ipv4:addr:port`, `[::1]:port`. Only IP literals and `localhost` are
/// resolved: the sampler never waits on DNS for a name an agent wrote.
fn addresses(target: &str) -> Vec<SocketAddr> {
    let t = target
        .strip_prefix("dns:///")
        .or_else(|| target.strip_prefix("dns:"))
        .or_else(|| target.strip_prefix("ipv4:"))
        .or_else(|| target.strip_prefix("ipv6:"))
        .unwrap_or(target);
    if t.starts_with("unix:") || t.starts_with("unix-abstract:") {
        return Vec::new();
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return vec![a];
    }
    match t.rsplit_once(':') {
        Some(("localhost", port)) => port.parse::<u16>().map_or_else(
            |_| Vec::new(),
            |p| {
                vec![
                    SocketAddr::from(([127, 0, 0, 1], p)),
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p)),
                ]
            },
        ),
        _ => Vec::new(),
    }
}

/// The grpc-js channel sites `pid`'s agent followed: target, stack, created, closed.
fn grpcjs_channels(pid: i32) -> impl Iterator<Item = (String, Arc<Stack>, u64, u64)> {
    super::grpcjs::channel_sites(pid).into_iter().flatten().map(|s| {
        let stack = Arc::new(Stack {
            frames: s.frames,
            via: OriginVia::Channel,
            source: OriginSource::Agent,
        });
        (s.target, stack, s.created, s.closed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_their_addresses() {
        let lo: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(addresses("127.0.0.1:4000"), vec![lo]);
        assert_eq!(addresses("ipv4:127.0.0.1:4000"), vec![lo]);
        assert!(
            addresses("dns:///localhost:4000").contains(&lo)
                || addresses("localhost:4000").iter().any(|a| a.ip().is_loopback())
        );
        assert!(addresses("unix:///tmp/x.sock").is_empty());
        assert!(addresses("no port").is_empty());
    }

    #[test]
    fn a_descriptor_reused_for_something_else_has_no_origin() {
        let raw: Raw = serde_json::from_str(
            r#"{"version":1,"stacks":[[["open_it","app.py",7,false]]],"fds":[[5,"/tmp/a",0]],"channels":[["127.0.0.1:9",0]]}"#,
        )
        .unwrap();
        let t = Table::from_raw(raw);
        assert_eq!(t.opened(5, "/tmp/a").unwrap().frames[0].line, 7);
        assert!(t.opened(5, "/tmp/b").is_none());
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(t.channels_to(remote).count(), 1);
        assert_eq!(t.channels_to(remote).next().unwrap().0.via, OriginVia::Channel);
        let raw: Raw = serde_json::from_str(
            r#"{"version":1,"stacks":[[["open_it","app.py",7,false]]],"fds":[],"opens":[["/tmp/a",0]],"channels":[]}"#,
        )
        .unwrap();
        let t = Table::from_raw(raw);
        assert_eq!(
            t.opened(9, "/tmp/a (deleted)").unwrap().frames[0].line,
            7,
            "joined by path"
        );
        assert!(t.opened(9, "/tmp/b").is_none());
    }
}
