//! The fault model: what a `[[phases.faults]]` entry may say. Events fire at
//! moments (on the proxy's connections, or, for server events, on the
//! built-in target itself); toxics apply to connections for a whole phase.
//! Rules that serde cannot express live in `validate`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a fault does to the connections through the proxy.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Event: abort live connections with an RST to both sides.
    Reset,
    /// Event: close live connections with a FIN to both sides.
    Close,
    /// Event: stop forwarding in both directions, sockets left open (half-open).
    Blackhole,
    /// Event: for `duration`, new connections are accepted and reset at once.
    Refuse,
    /// Toxic: delay every chunk by `latency` ± `jitter`.
    Latency,
    /// Toxic: limit each direction to `bytes_per_sec`.
    Bandwidth,
    /// Toxic: hold a close for `delay` before passing it on.
    SlowClose,
    /// Toxic: close the connection after `bytes` bytes in either direction.
    LimitData,
    /// Server event (built-in target): `service` reports NOT_SERVING for `duration` (default: for good).
    NotServing,
    /// Server event (built-in target): `service` reports SERVICE_UNKNOWN for `duration` (default: for good).
    ServiceUnknown,
    /// Server event (built-in target): every Check answer is held for `duration`; connections stay up.
    Stall,
    /// Server event (built-in target): every open Watch stream ends with UNAVAILABLE.
    EndWatch,
    /// Event (HTTP/2, plaintext): send the client a GOAWAY, as a server does on max
    /// connection age, on shutdown, or with ENHANCE_YOUR_CALM for too many pings.
    Goaway,
    /// Toxic (HTTP/2, plaintext): reset this fraction of new streams (RST_STREAM both ways).
    RstStream,
    /// Toxic (`via = "kernel"` only): drop this `fraction` of the selected connections'
    /// packets, so TCP's own retransmits and their delays come from the real stack.
    Loss,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Close => "close",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Refuse => "refuse",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::SlowClose => "slow_close",
            FaultKind::LimitData => "limit_data",
            FaultKind::NotServing => "not_serving",
            FaultKind::ServiceUnknown => "service_unknown",
            FaultKind::Stall => "stall",
            FaultKind::EndWatch => "end_watch",
            FaultKind::Goaway => "goaway",
            FaultKind::RstStream => "rst_stream",
            FaultKind::Loss => "loss",
        }
    }

    /// Server events act on the built-in target itself, not on connections through the proxy.
    pub fn is_server(self) -> bool {
        matches!(
            self,
            FaultKind::NotServing | FaultKind::ServiceUnknown | FaultKind::Stall | FaultKind::EndWatch
        )
    }

    /// Events fire at moments (`every`, `at`); toxics apply to connections for the whole phase.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            FaultKind::Reset | FaultKind::Close | FaultKind::Blackhole | FaultKind::Refuse | FaultKind::Goaway
        ) || self.is_server()
    }

    /// Faults that write HTTP/2 frames of the proxy's own, which it cannot do inside TLS.
    pub fn is_http2(self) -> bool {
        matches!(self, FaultKind::Goaway | FaultKind::RstStream)
    }
}

/// One `[[phases.faults]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    /// Events: fire repeatedly, this often.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub every: Option<Duration>,
    /// Events: fire once, this long into the phase.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub at: Option<Duration>,
    /// Events: the fraction of live connections hit; toxics: the fraction of connections affected. Default 1.
    pub probability: Option<f64>,
    /// blackhole: how long forwarding stops (default: for good); refuse: how long the window lasts.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub duration: Option<Duration>,
    /// latency: the added delay.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub latency: Option<Duration>,
    /// latency: up to this much more or less, at random.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Duration>,
    /// bandwidth: bytes per second in each direction.
    pub bytes_per_sec: Option<u64>,
    /// limit_data: bytes allowed in either direction before the connection is closed.
    pub bytes: Option<u64>,
    /// not_serving, service_unknown: the service whose status flips ("" is the whole server).
    pub service: Option<String>,
    /// slow_close: how long a close is held.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Duration>,
    /// goaway, rst_stream: the HTTP/2 error code (NO_ERROR for goaway, CANCEL for rst_stream by default).
    pub error_code: Option<H2Error>,
    /// goaway: the last stream the "server" will process (default: the newest the client opened).
    pub last_stream_id: Option<u32>,
    /// goaway: opaque debug data, e.g. "too_many_pings" (at most 1024 bytes).
    pub debug_data: Option<String>,
    /// goaway: wait for the client's next stream and refuse it (last_stream_id just below
    /// it): a GOAWAY crossing a request, which a client must retry on a new connection.
    pub on_next_stream: Option<bool>,
    /// loss: the fraction of packets dropped, each direction (greater than 0, less than 1).
    pub fraction: Option<f64>,
    /// Where it acts: on the connections through fdsoak's proxy (`proxy`, the default), or
    /// with no proxy, on a watched process's own TCP sockets (`kernel`).
    pub via: Option<Via>,
    /// via = "kernel": whose sockets (default the target).
    pub role: Option<crate::domain::Role>,
    /// via = "kernel": only connections whose other end is this address ("HOST:PORT", or ":PORT").
    pub peer: Option<String>,
    /// via = "kernel": the connections the process dialled (`outbound`), accepted (`inbound`), or `both` (default).
    pub direction: Option<Direction>,
}

/// Where a fault acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Proxy,
    Kernel,
}

/// The other end a kernel fault selects connections by: an address, or a port alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Addr(std::net::SocketAddr),
    Port(u16),
}

impl Peer {
    /// "127.0.0.1:7001", "[::1]:7001", or ":7001".
    pub fn parse(text: &str) -> Option<Peer> {
        match text.strip_prefix(':') {
            Some(port) => port.parse().ok().filter(|p| *p > 0).map(Peer::Port),
            None => text.parse().ok().map(Peer::Addr),
        }
    }

    /// Whether a connection whose other end is `remote` is selected.
    pub fn matches(&self, remote: std::net::SocketAddr) -> bool {
        match self {
            Peer::Addr(a) => *a == remote,
            Peer::Port(p) => remote.port() == *p,
        }
    }
}

/// Which of a process's connections a kernel fault selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Connections the process dialled.
    Outbound,
    /// Connections the process accepted.
    Inbound,
    #[default]
    Both,
}

impl Fault {
    /// Acts with no proxy, on a watched process's own sockets.
    pub fn is_kernel(&self) -> bool {
        self.via == Some(Via::Kernel)
    }

    /// The HTTP/2 error code a goaway or rst_stream sends.
    pub fn h2_error(&self) -> H2Error {
        self.error_code.unwrap_or(match self.kind {
            FaultKind::RstStream => H2Error::Cancel,
            _ => H2Error::NoError,
        })
    }
}

/// HTTP/2 error codes (RFC 9113 §7), as a scenario spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2Error {
    NoError = 0,
    ProtocolError = 1,
    InternalError = 2,
    FlowControlError = 3,
    SettingsTimeout = 4,
    StreamClosed = 5,
    FrameSizeError = 6,
    RefusedStream = 7,
    Cancel = 8,
    CompressionError = 9,
    ConnectError = 10,
    EnhanceYourCalm = 11,
    InadequateSecurity = 12,
    #[serde(rename = "HTTP_1_1_REQUIRED")]
    Http11Required = 13,
}

impl H2Error {
    /// The name, as a scenario spells it (from the one serde table above).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// Sends server events (not_serving, stall, …) to the built-in target as they fire.
pub type ServerControl = tokio::sync::mpsc::UnboundedSender<Fault>;
