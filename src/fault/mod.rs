//! Faults in the data path: a TCP proxy between fdsoak's channels and the
//! target, and the scheduler that fires a phase's faults through it.
//!
//! The proxy ([`proxy::run`]) forwards bytes and obeys a shared [`Control`]:
//! events act on the live connections at a moment (reset, close, blackhole)
//! or on new ones for a window (refuse); toxics shape every connection they
//! are drawn for while their phase lasts (latency, bandwidth, slow_close,
//! limit_data). Every event is recorded for the report.

pub(crate) mod h2;
pub(crate) mod inline;
pub(crate) mod kernel;
pub(crate) mod nft;
pub mod proxy;
pub(crate) mod schedule;
mod side;
pub use side::ProxyTls;

use crate::scenario::{Fault, FaultKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a connection is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Forward,
    /// Drop everything until this instant (None: for good), sockets left open.
    Blackhole(Option<Instant>),
    /// Abort both sides with RST.
    Reset,
    /// Close both sides with FIN.
    Close,
    /// Send the client an HTTP/2 GOAWAY, then keep forwarding.
    GoAway(std::sync::Arc<GoAway>),
}

/// A GOAWAY to send, as a server would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// None: the newest stream the client opened, so streams in flight finish.
    pub last_stream: Option<u32>,
    pub code: u32,
    pub debug: Vec<u8>,
    /// Close the connection this long after (a server's grace); None leaves it to the client.
    pub close_after: Option<Duration>,
    /// Wait for the client's next stream and refuse it: a GOAWAY crossing a request.
    pub on_next_stream: bool,
}

/// One fault event, as the report keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultEvent {
    pub t_secs: f64,
    pub phase: String,
    pub kind: String,
    /// Connections it acted on (for refuse: the window's length in ms is in `detail`).
    pub connections: u64,
    pub detail: String,
}

/// Proxy-wide counters, as the report keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProxyStats {
    pub accepted: u64,
    /// Connections accepted and reset at once during a refuse window.
    pub refused: u64,
    pub reset: u64,
    pub closed: u64,
    pub blackholed: u64,
    pub limit_data_closes: u64,
    pub upstream_failures: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// GOAWAY frames sent to clients (`goaway`).
    #[serde(default)]
    pub goaways: u64,
    /// Streams reset both ways (`rst_stream`).
    #[serde(default)]
    pub rst_streams: u64,
}

struct Conn {
    cmd: watch::Sender<Cmd>,
    /// The inodes of its two sockets: the client's side, the target's side.
    sockets: [u64; 2],
}

/// The toxic effects on one connection right now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Effects {
    pub latency: Option<(Duration, Duration)>,
    pub bytes_per_sec: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub slow_close: Option<Duration>,
    /// rst_stream: the fraction of new streams reset, and the error code.
    pub rst_stream: Option<(f64, u32)>,
}

/// State shared by the proxy, the scheduler and the report.
#[derive(Default)]
pub struct Control {
    /// Inodes of the proxy's own sockets: they stand for the network, so the
    /// sampler leaves them out of the driver's counts.
    pub(crate) inodes: crate::domain::InodeSet,
    toxics: Mutex<Vec<Fault>>,
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    refusing_until: Mutex<Option<Instant>>,
    events: Mutex<Vec<FaultEvent>>,
    pub(crate) stopped: AtomicBool,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) reset: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) blackholed: AtomicU64,
    pub(crate) limit_data_closes: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    pub(crate) bytes_up: AtomicU64,
    pub(crate) bytes_down: AtomicU64,
    pub(crate) goaways: AtomicU64,
    pub(crate) rst_streams: AtomicU64,
    /// Where server events go: the built-in target's control path, when it has one.
    server: Mutex<Option<ServerControl>>,
}

use crate::scenario::ServerControl;

/// Most events a report keeps; later ones are counted in the stats only.
pub(crate) const MAX_EVENTS: usize = 10_000;

/// What fires a phase's event faults, and keeps the record of each firing: the proxy's
/// [`Control`], or the run's [`kernel::KernelFaults`].
pub trait Injector: Send + Sync {
    /// Fires `fault` now; returns how many connections (or servers) it acted on.
    fn fire(&self, fault: &Fault) -> u64;
    fn record(&self, event: FaultEvent);
    /// Applies toxic `fault`, the `slot`th of its phase, to the connections there are now,
    /// for an injector that must keep a toxic up itself (the kernel's `loss`); called
    /// again and again through the phase. Returns how many connections it covers.
    fn keep(&self, _fault: &Fault, _slot: usize) -> u64 {
        0
    }
}

impl Injector for Control {
    fn fire(&self, fault: &Fault) -> u64 {
        Control::fire(self, fault)
    }

    fn record(&self, event: FaultEvent) {
        Control::record(self, event)
    }
}

impl Control {
    /// A control whose sockets are recorded in `inodes` (shared with the sampler).
    pub fn with_inodes(inodes: crate::domain::InodeSet) -> Control {
        Control {
            inodes,
            ..Default::default()
        }
    }

    /// Registers a new connection relayed between the sockets `sockets` (the client's
    /// side, the target's); returns its id, its lottery draw and its command channel.
    pub(crate) fn register(&self, sockets: [u64; 2]) -> (u64, f64, watch::Receiver<Cmd>) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let lottery = random();
        let (tx, rx) = watch::channel(Cmd::Forward);
        crate::domain::lock(&self.conns).insert(id, Conn { cmd: tx, sockets });
        (id, lottery, rx)
    }

    /// The socket inodes of every connection relayed now, in pairs: the client's side, the target's.
    pub fn relays(&self) -> Vec<[u64; 2]> {
        crate::domain::lock(&self.conns).values().map(|c| c.sockets).collect()
    }

    pub(crate) fn unregister(&self, id: u64) {
        crate::domain::lock(&self.conns).remove(&id);
    }

    /// Whether new connections are being refused now.
    pub(crate) fn refusing(&self) -> bool {
        crate::domain::lock(&self.refusing_until).is_some_and(|u| Instant::now() < u)
    }

    /// The toxics of the current phase that a connection with this lottery draw is subject to.
    pub fn effects(&self, lottery: f64) -> Effects {
        let mut e = Effects::default();
        for f in crate::domain::lock(&self.toxics).iter() {
            if f.kind == FaultKind::RstStream {
                // Drawn per stream, not per connection.
                e.rst_stream = Some((f.probability(), f.h2_error() as u32));
                continue;
            }
            if lottery >= f.probability() {
                continue;
            }
            match f.kind {
                FaultKind::Latency => e.latency = Some((f.latency.unwrap_or_default(), f.jitter.unwrap_or_default())),
                FaultKind::Bandwidth => e.bytes_per_sec = f.bytes_per_sec,
                FaultKind::LimitData => e.limit_bytes = f.bytes,
                FaultKind::SlowClose => e.slow_close = f.delay,
                _ => {}
            }
        }
        e
    }

    /// Sets the toxics for the phase that starts now (empty to clear them).
    pub fn set_toxics(&self, faults: &[Fault]) {
        *crate::domain::lock(&self.toxics) = faults.iter().filter(|f| !f.kind.is_event()).cloned().collect();
    }

    /// Gives server events a way to the built-in target.
    pub fn set_server(&self, server: ServerControl) {
        *crate::domain::lock(&self.server) = Some(server);
    }

    /// Fires an event fault now; returns how many connections (for a server event: servers) it acted on.
    pub fn fire(&self, fault: &Fault) -> u64 {
        let p = fault.probability();
        match fault.kind {
            k if k.is_server() => {
                let server = crate::domain::lock(&self.server);
                u64::from(server.as_ref().is_some_and(|tx| tx.send(fault.clone()).is_ok()))
            }
            FaultKind::Refuse => {
                let d = fault.duration.unwrap_or_default();
                *crate::domain::lock(&self.refusing_until) = Some(Instant::now() + d);
                0
            }
            FaultKind::Reset | FaultKind::Close | FaultKind::Blackhole | FaultKind::Goaway => {
                let cmd = match fault.kind {
                    FaultKind::Reset => Cmd::Reset,
                    FaultKind::Close => Cmd::Close,
                    FaultKind::Goaway => Cmd::GoAway(std::sync::Arc::new(GoAway {
                        last_stream: fault.last_stream_id,
                        code: fault.h2_error() as u32,
                        debug: fault.debug_data.clone().unwrap_or_default().into_bytes(),
                        close_after: fault.duration,
                        on_next_stream: fault.on_next_stream.unwrap_or(false),
                    })),
                    _ => Cmd::Blackhole(fault.duration.map(|d| Instant::now() + d)),
                };
                let conns = crate::domain::lock(&self.conns);
                let mut n = 0;
                for c in conns.values() {
                    // A connection is fair game unless it is dying or inside a blackhole.
                    let live = match *c.cmd.borrow() {
                        Cmd::Forward | Cmd::GoAway(_) => true,
                        Cmd::Blackhole(Some(until)) => Instant::now() >= until,
                        _ => false,
                    };
                    if live && random() < p {
                        let _ = c.cmd.send(cmd.clone());
                        n += 1;
                    }
                }
                let counter = match fault.kind {
                    FaultKind::Reset => &self.reset,
                    FaultKind::Close => &self.closed,
                    FaultKind::Goaway => &self.goaways,
                    _ => &self.blackholed,
                };
                counter.fetch_add(n, Relaxed);
                n
            }
            _ => 0,
        }
    }

    pub fn record(&self, event: FaultEvent) {
        let mut ev = crate::domain::lock(&self.events);
        if ev.len() < MAX_EVENTS {
            ev.push(event);
        }
    }

    pub fn events(&self) -> Vec<FaultEvent> {
        crate::domain::lock(&self.events).clone()
    }

    /// Live connections through the proxy.
    pub fn inode_set(&self) -> crate::domain::InodeSet {
        self.inodes.clone()
    }

    pub fn live(&self) -> usize {
        crate::domain::lock(&self.conns).len()
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.accepted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            reset: self.reset.load(Relaxed),
            closed: self.closed.load(Relaxed),
            blackholed: self.blackholed.load(Relaxed),
            limit_data_closes: self.limit_data_closes.load(Relaxed),
            upstream_failures: self.upstream_failures.load(Relaxed),
            bytes_up: self.bytes_up.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            goaways: self.goaways.load(Relaxed),
            rst_streams: self.rst_streams.load(Relaxed),
        }
    }
}

/// A uniform draw in [0, 1) (fault decisions and jitter, not cryptography).
pub fn random() -> f64 {
    fastrand::f64()
}
