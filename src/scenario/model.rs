//! The serde model of a scenario file: what a user may write, with defaults.
//!
//! Every struct rejects unknown keys. A workload is typed by its kind
//! ([`super::workload`]); keys that only make sense for some target modes are
//! optional here and checked in [`super::validate`], so that each error can
//! point at the exact key.

use super::fault::Fault;
use super::workload::Workload;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in the report directory name.
    pub name: String,
    /// What the scenario reproduces, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Which server to drive and watch.
    #[serde(default)]
    pub target: TargetSpec,
    /// How often file descriptors are sampled.
    #[serde(default)]
    pub sampler: SamplerSpec,
    /// Phases run in order; the first is the baseline, the last should be idle (a drain).
    pub phases: Vec<Phase>,
    /// Pass/fail thresholds.
    #[serde(default)]
    pub gates: super::Gates,
    /// The user's own client program to serve, break and watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientSpec>,
    /// TLS to the target; plaintext without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Metadata (headers) sent with every call, readiness and reflection included;
    /// `${NAME}` takes an environment variable. Values never reach a report.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, super::Secret>,
    /// Where leaked descriptors were opened: agents in the processes fdsoak starts.
    #[serde(default, skip_serializing_if = "super::OriginSpec::is_off")]
    pub origin: super::OriginSpec,
    /// What the run shows while it lasts: live metrics.
    #[serde(default, skip_serializing_if = "super::ExportSpec::is_empty")]
    pub export: super::ExportSpec,
}

/// The `[tls]` table: how fdsoak speaks TLS to the target.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of the CA that signed the server's certificate; the system's roots without it.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate. Its path is kept out of reports.
    pub key: Option<super::Secret>,
    /// The name to verify the server's certificate against (SNI); the target's host by default.
    pub server_name: Option<String>,
    /// Accept any server certificate: encryption without authentication, for test servers only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM certificate the fault proxy presents (with `proxy_key`), from a CA the driver and
    /// the client trust: the proxy then ends TLS, so HTTP/2 faults (goaway, rst_stream) work
    /// under TLS, and connects on to the target over TLS with this table's settings.
    pub proxy_cert: Option<PathBuf>,
    /// PEM private key of `proxy_cert`. Its path is kept out of reports.
    pub proxy_key: Option<super::Secret>,
}

impl TlsSpec {
    /// The fault proxy ends TLS (it was given a certificate and key to present).
    pub fn proxy_terminates(&self) -> bool {
        self.proxy_cert.is_some() && self.proxy_key.is_some()
    }
}

/// The `[client]` table: a program of the user's that fdsoak starts, points
/// at the target through the fault proxy, and watches as the role `client`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// The command line, split into words like `spawn` commands; `{addr}` becomes
    /// the `127.0.0.1:PORT` the client must use (`unix:///…` before a Unix-socket
    /// target; also in `FDSOAK_TARGET_ADDR`).
    pub command: String,
    /// The client exits on its own (it runs a fixed number of checks): not a finding.
    #[serde(default)]
    pub expect_exit: bool,
}

/// How fdsoak finds or starts the server under test.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// `fdsoak serve`, the built-in reference target, in its own process.
    #[default]
    Builtin,
    /// A command line with a `{port}` (or `{socket}`) placeholder, started by fdsoak.
    Spawn,
    /// A server that is already running at `address`.
    Address,
}

impl TargetMode {
    /// The mode's name, as a scenario spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetMode::Builtin => "builtin",
            TargetMode::Spawn => "spawn",
            TargetMode::Address => "address",
        }
    }
}

/// What fdsoak waits for before the load starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyCheck {
    /// grpc.health.v1.Health/Check answers SERVING.
    #[default]
    Health,
    /// A TCP connection and the HTTP/2 handshake succeed: for servers without the health service.
    Connect,
    /// The first rpc workload's method answers, with any status but UNAVAILABLE.
    Rpc,
}

/// The `[target]` table. The built-in target's knobs sit in it beside the
/// mode's own keys; keys that are neither are caught in `unknown` and
/// rejected by validation (serde cannot deny unknown fields beside a flatten).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct TargetSpec {
    #[serde(default)]
    pub mode: TargetMode,
    /// builtin, spawn: RLIMIT_NOFILE for the target process.
    pub nofile: Option<u64>,
    /// spawn: the command line, with `{port}` where the port goes, or `{socket}`
    /// where the path of a fresh Unix socket goes (absolute, in a private directory).
    pub command: Option<String>,
    /// address: where a running server listens: `HOST:PORT`, `unix:///ABS/PATH`,
    /// `unix:PATH` or `unix-abstract:NAME`.
    pub address: Option<String>,
    /// address: the server's PID; found from the listening socket when absent.
    pub pid: Option<i32>,
    /// builtin: serve on a fresh Unix socket (in a private directory) instead of a loopback port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unix_socket: bool,
    /// What makes the target ready: a health check (default), a connection, or the first rpc call.
    #[serde(default)]
    pub ready: ReadyCheck,
    /// How long the target has to become ready.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub ready_timeout: Option<Duration>,
    /// Where the target's descriptor counts come from, when not its `/proc` (`[target.fds]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds: Option<super::FdSourceSpec>,
    /// builtin: the knobs of `fdsoak serve`.
    #[serde(flatten)]
    pub knobs: super::Knobs,
    /// Keys that belong to nothing above; validation rejects them.
    #[serde(flatten, skip_serializing)]
    #[schemars(skip)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

/// The `[sampler]` table.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    #[serde(
        with = "super::duration",
        default = "super::defaults::serde_default::sampler_interval"
    )]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// Rewrite the report this often while the run goes on (0: never); every minute for runs over 10 minutes by default.
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub checkpoint: Option<Duration>,
}

impl Default for SamplerSpec {
    fn default() -> Self {
        SamplerSpec {
            interval: super::defaults::SAMPLER_INTERVAL,
            checkpoint: None,
        }
    }
}

/// One `[[phases]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    #[serde(with = "super::duration")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// No workloads makes an idle phase.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Faults injected by the proxy fdsoak puts between its channels and the target.
    #[serde(default)]
    pub faults: Vec<Fault>,
}
