//! The shared vocabulary: the words every stage of the data path uses, kept in
//! one leaf module that imports nothing of fdsoak's, so that no import ever
//! has to run back up the path.
//!
//! Here live the watched roles, descriptor kinds, the one table of TCP states,
//! a reading of one process and the [`Sample`] the sampler emits to its
//! [`SampleSink`]s, and the names of gates and findings with their one name
//! table each.

mod origin;
mod tcp;
pub use origin::{
    go_standard_library, ChannelTally, FingerprintOrigins, Frame, GroupOrigins, OriginSource, OriginVia, Stack, Tally,
};
pub use tcp::{ConnEnd, Connections, Relay, TcpState, TcpStates, TCP_STATES};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which watched process a series belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The server under test.
    #[default]
    Target,
    /// fdsoak itself: the control, and the place client-side leaks show.
    Driver,
    /// The user's own client program, served through the fault proxy.
    Client,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Target, Role::Driver, Role::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Target => "target",
            Role::Driver => "driver",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Descriptor counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FdKinds {
    pub total: u64,
    pub socket: u64,
    pub pipe: u64,
    pub file: u64,
    pub anon: u64,
    pub other: u64,
}

/// What one probe of one process found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub fds: FdKinds,
    pub tcp: TcpStates,
    /// None means unlimited.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    pub threads: u64,
    pub rss_kb: u64,
}

/// gRPC status codes 0..=16, indexed by their numeric value.
/// What a secret reads as wherever it would be shown or written.
pub const REDACTED: &str = "<redacted>";

pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of gRPC status code `code` (`UNAUTHENTICATED`), or `CODE(n)` for one past the table.
pub fn code_name(code: i32) -> std::borrow::Cow<'static, str> {
    match usize::try_from(code).ok().and_then(|i| CODE_NAMES.get(i)) {
        Some(name) => (*name).into(),
        None => format!("CODE({code})").into(),
    }
}

/// Socket inodes to leave out of the driver's counts (the fault proxy's).
pub type InodeSet = std::sync::Arc<std::sync::Mutex<Inodes>>;

/// A set of socket inodes. The sampler looks up every TCP socket on the host
/// in one, so it hashes with foldhash rather than SipHash: inode numbers are
/// not attacker-chosen keys, and hashing was most of a sample's time.
pub type Inodes = std::collections::HashSet<u64, foldhash::fast::RandomState>;

/// One watched process at one tick, as the sampler emits it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub role: Role,
    /// 0 when the process is read from a source that has no PID.
    pub pid: i32,
    pub source: FdSource,
    /// None when the process could not be read this tick.
    pub reading: Option<Reading>,
    /// The process was found gone: exited, or a zombie.
    pub gone: bool,
    /// Set on the ticks where the sampler also took a fingerprint of this process.
    pub fingerprint: Option<Fingerprint>,
    /// With the fingerprint, for a process that carries an origin agent: where its groups' descriptors were opened.
    pub origins: Option<GroupOrigins>,
}

/// One sampler tick: when, in which phase, and every watched process.
#[derive(Debug, Clone)]
pub struct Tick<'a> {
    /// Seconds since the run started.
    pub t_secs: f64,
    pub unix_ms: u128,
    pub phase: usize,
    pub phase_name: &'a str,
    /// Whether this phase counts toward the growth rate.
    pub in_load_window: bool,
    pub samples: &'a [Sample],
}

/// A consumer of sampler ticks: the CSV writers, the live progress, the
/// analysis trackers, the target watchdog.
pub trait SampleSink: Send {
    /// Takes one tick. An error stops the sampler and is returned by it.
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()>;
    /// Called once after the last tick.
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A sink shared with whoever reads it after the run.
impl<T: SampleSink> SampleSink for std::sync::Arc<std::sync::Mutex<T>> {
    fn tick(&mut self, tick: &Tick<'_>) -> anyhow::Result<()> {
        lock(self).tick(tick)
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        lock(self).finish()
    }
}

/// Locks `m`, the one policy for every mutex of fdsoak's: a lock whose holder
/// panicked is taken as it is. Every section fdsoak holds a lock for leaves its
/// data whole between statements (a push, a swap, a counter), and the panic itself
/// is reported where it happened; a second failure on every later lock would only
/// lose the report.
pub fn lock<T: ?Sized>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Declares a closed set of names with one table: variant, stable name.
macro_rules! names {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            /// The stable machine name, as stored in reports.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// Where a process's readings came from. `/proc` gives kinds, TCP states
    /// and fingerprints; a Prometheus endpoint gives the count and the limit only.
    #[derive(Default)]
    FdSource {
        #[default]
        Proc = "proc",
        Prometheus = "prometheus",
    }
}

impl FdSource {
    /// Whether this source gives descriptor kinds, TCP states and fingerprints.
    pub fn has_detail(self) -> bool {
        self == FdSource::Proc
    }
}

names! {
    /// A threshold from the scenario's `[gates]`.
    Gate {
        MaxGrowthPerHour = "max_growth_per_hour",
        MaxResidualFds = "max_residual_fds",
        MaxCloseWait = "max_close_wait",
        MaxFdUsage = "max_fd_usage",
        MinTimeToLimit = "min_time_to_limit",
        MaxErrorRate = "max_error_rate",
        MaxP99 = "max_p99",
        MinGroupGrowth = "min_group_growth",
        MaxHeldByPeer = "max_held_by_peer",
    }
}

names! {
    /// What a finding is about.
    FindingKind {
        FdGrowth = "fd_growth",
        ResidualFds = "residual_fds",
        CloseWait = "close_wait",
        FdUsage = "fd_usage",
        TimeToLimit = "time_to_limit",
        ErrorRate = "error_rate",
        P99Latency = "p99_latency",
        GroupLeak = "group_leak",
        TargetDied = "target_died",
        ClientExited = "client_exited",
        RunError = "run_error",
        Interrupted = "interrupted",
        Aborted = "aborted",
        /// A process's descriptors held open by a peer's leak: the effect, not the cause.
        HeldByPeer = "held_by_peer",
    }
}

impl Gate {
    /// The finding a failure of this gate raises.
    pub fn finding(self) -> FindingKind {
        match self {
            Gate::MaxGrowthPerHour => FindingKind::FdGrowth,
            Gate::MaxResidualFds => FindingKind::ResidualFds,
            Gate::MaxCloseWait => FindingKind::CloseWait,
            Gate::MaxFdUsage => FindingKind::FdUsage,
            Gate::MinTimeToLimit => FindingKind::TimeToLimit,
            Gate::MaxErrorRate => FindingKind::ErrorRate,
            Gate::MaxP99 => FindingKind::P99Latency,
            Gate::MinGroupGrowth => FindingKind::GroupLeak,
            Gate::MaxHeldByPeer => FindingKind::HeldByPeer,
        }
    }
}

impl FindingKind {
    /// Findings of a process's descriptor gates: listed once per process, under its leak.
    pub fn is_leak(self) -> bool {
        matches!(
            self,
            FindingKind::FdGrowth
                | FindingKind::ResidualFds
                | FindingKind::CloseWait
                | FindingKind::FdUsage
                | FindingKind::TimeToLimit
                | FindingKind::GroupLeak
        )
    }

    /// The gate whose failure raises it, if one does.
    pub fn gate(self) -> Option<Gate> {
        Gate::ALL.iter().copied().find(|g| g.finding() == self)
    }

    /// Findings about a process's descriptor count, each of which names the groups that grew.
    pub fn is_fd_count(self) -> bool {
        matches!(
            self,
            FindingKind::FdGrowth | FindingKind::ResidualFds | FindingKind::CloseWait
        )
    }

    /// Findings about the run as a whole rather than a gate: they survive a merge as they are.
    pub fn is_run_event(self) -> bool {
        matches!(
            self,
            FindingKind::TargetDied
                | FindingKind::RunError
                | FindingKind::Interrupted
                | FindingKind::ClientExited
                | FindingKind::Aborted
        )
    }
}

names! {
    /// What a group of descriptors points at.
    GroupKind {
        /// Regular files, by path (` (deleted)` marks a deleted one).
        File = "file",
        /// TCP sockets, by state, local port role and peer.
        Tcp = "tcp",
        /// Unix sockets with a path.
        Unix = "unix",
        /// Other sockets: UDP, netlink, unnamed Unix ones.
        Socket = "socket",
        Pipe = "pipe",
        /// Anonymous inodes by kind: eventfd, eventpoll, timerfd…
        Anon = "anon",
        /// Devices, by path.
        Device = "device",
        Other = "other",
    }
}

/// One group of a fingerprint: what its descriptors point at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct GroupKey {
    pub kind: GroupKind,
    /// In words: a path, `ESTABLISHED to 127.0.0.1:8980 from an ephemeral port`, `eventfd`.
    pub what: String,
}

/// One process's descriptors grouped by what they point at, with counts.
pub type Fingerprint = std::sync::Arc<std::collections::BTreeMap<GroupKey, u64>>;

/// One threshold applied to one subject (a process, or a workload in a phase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    pub gate: Gate,
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
    pub passed: bool,
    /// For a failed check, the finding that explains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Milliseconds since the Unix epoch by this host's clock (0 before 1970).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_state_codes_follow_the_kernel_table() {
        assert_eq!(TcpState::from_code(1), Some(TcpState::Established));
        assert_eq!(TcpState::from_code(8), Some(TcpState::CloseWait));
        assert_eq!(TcpState::from_code(11), Some(TcpState::Closing));
        assert_eq!(TcpState::from_code(0), None);
        assert_eq!(TcpState::from_code(12), None);
        for (i, (s, _, _)) in TCP_STATES.iter().enumerate() {
            assert_eq!(TcpState::from_code(i as u8 + 1), Some(*s));
        }
    }

    #[test]
    fn names_round_trip_through_serde() {
        for g in Gate::ALL {
            let json = serde_json::to_string(g).unwrap();
            assert_eq!(json, format!("\"{}\"", g.as_str()));
            assert_eq!(serde_json::from_str::<Gate>(&json).unwrap(), *g);
        }
        for k in FindingKind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }
}
