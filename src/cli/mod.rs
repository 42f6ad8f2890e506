//! The command line: clap definitions here, and their conversion into
//! validated configurations in [`config`] (`run`'s flags, which `bisect`
//! shares, in `run_flags`). This is the only module that
//! reads clap types (besides the structs flattened into them: the built-in
//! target's `Knobs` and compare's `Tolerances`).

mod config;
mod run_flags;

pub use config::*;

use crate::scenario::Knobs;
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Finds connection and file-descriptor leaks in gRPC services.
///
/// fdsoak replays scripted scenarios of gRPC health checks, streams and any
/// RPC, with forced disconnects and retries, against a target server while
/// sampling the open file descriptors of the target, itself and a client
/// under test (by kind, with TCP socket states, against RLIMIT_NOFILE) and
/// the latency of every call, then flags growth toward the limit and names
/// what leaked. The docs/ directory of the repository has one page per subject.
///
/// Exit codes: 0 pass, 1 a gate failed (a leak or regression was found), 2
/// usage or scenario error, 3 run error (target unreachable or died, I/O),
/// 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "fdsoak", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a target and write a report.
    Run(Box<RunArgs>),
    /// Serve the built-in reference target (grpc.health.v1 and a demo service), with optional leaks.
    Serve(Box<ServeArgs>),
    /// Compare two reports (directories or summary.json files) and flag regressions.
    ///
    /// Exits 1 when the candidate regressed, 0 when it did not, 2 when a
    /// report cannot be read or has an incompatible schema_version.
    Compare(Box<CompareArgs>),
    /// Run the fault proxy on its own, in front of any server, until Ctrl-C.
    ///
    /// Put your own client behind it (point it at --listen) while `fdsoak run --target` samples the server.
    Proxy(ProxyArgs),
    /// Merge reports written by several drivers against one target into one report.
    Merge {
        /// Report directories to merge.
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Directory for the merged report.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The history of a scenario across builds: trend.md and trend.html, and the first build
    /// where each metric regressed or failed its gate.
    ///
    /// Reports are ordered by --labels, or by start time. Exits 1 when the newest build
    /// regressed against the one before it, 2 when a report cannot be read.
    Trend(Box<TrendArgs>),
    /// Render a report directory's outputs again (HTML, markdown, JUnit, CSV) from its summary.json and CSV files.
    Report {
        /// A report directory written by `fdsoak run` or `fdsoak merge`.
        dir: PathBuf,
    },
    /// A reference health-checking client (good, or with a leak), to see a verdict on a client.
    ///
    /// Runs checks until Ctrl-C or SIGTERM (or --checks are done). Use it as
    /// `fdsoak run SCENARIO --client "fdsoak client-demo --mode retry-leak"`.
    ClientDemo(ClientDemoArgs),
    /// Sample one process once (or repeatedly, timing it) and print what the sampler sees.
    Probe {
        /// The process to read.
        pid: i32,
        /// Only count descriptors (one directory listing), without kinds or TCP states.
        #[arg(long)]
        count_only: bool,
        /// Take this many samples and report the median and minimum time of one.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also group the descriptors by what they point at (file paths, TCP peers and
        /// states, unix paths, anon inode kinds): a quick lsof that groups.
        #[arg(long)]
        fingerprint: bool,
    },
    /// Check scenario files without running them.
    Validate {
        /// Scenario files to check.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Find the commit that made a scenario fail: build and run each candidate between a good
    /// and a bad commit, in a git worktree of its own, and write bisect.md and bisect.json.
    ///
    /// Takes the flags of `run` (--spawn, --client, gates, …); commands it starts run in the
    /// worktree, so `--spawn "./target/release/server --port {port}"` is that commit's build.
    /// --out names the bisection's directory; each run's report goes in its runs/.
    /// Exits 0 when the first bad commit is found, 1 when the good end fails or the bad end
    /// passes, 2 for usage, 3 when it cannot decide (a run error, every candidate skipped),
    /// 130 when interrupted (the steps so far are written).
    Bisect(Box<BisectArgs>),
    /// Print a completion script for a shell: `fdsoak completions bash > /etc/bash_completion.d/fdsoak`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `fdsoak man > fdsoak.1; man ./fdsoak.1`.
    Man,
}

/// Text about the command line itself: a shell's completion script, or the man page.
fn about_the_cli(command: &Command) -> anyhow::Result<String> {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    let mut out = Vec::new();
    match command {
        Command::Completions { shell } => clap_complete::generate(*shell, &mut cli, "fdsoak", &mut out),
        _ => clap_mangen::Man::new(cli).render(&mut out)?,
    }
    Ok(String::from_utf8(out)?)
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// A commit (any git revision) where the scenario passes.
    #[arg(long, value_name = "REV")]
    pub good: String,
    /// A later commit where it fails.
    #[arg(long, value_name = "REV")]
    pub bad: String,
    /// Build each candidate with this shell command, run in its worktree; a build that
    /// fails skips the commit.
    #[arg(long, value_name = "CMD")]
    pub build: Option<String>,
    /// Run each candidate up to N times: any failed run makes it bad (a slow leak may not show every time).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// The git repository to bisect.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Drive a server already running at ADDR instead of the scenario's target: HOST:PORT,
    /// or a Unix socket (unix:///ABS/PATH, unix:PATH, unix-abstract:NAME).
    #[arg(long, value_name = "ADDR", conflicts_with = "spawn")]
    pub target: Option<String>,
    /// With --target: the server's PID. By default it is found from the listening socket.
    #[arg(long, requires = "target")]
    pub pid: Option<i32>,
    /// Read the target's descriptor count and limit from this Prometheus endpoint
    /// (process_open_fds, process_max_fds) instead of its /proc ([target.fds] prometheus).
    #[arg(long, value_name = "URL", conflicts_with = "pid")]
    pub fds_from: Option<String>,
    /// Start this command as the target instead of the scenario's; `{port}` is replaced by a free
    /// port, or `{socket}` by a fresh Unix socket path, and `{fdsoak}` by this executable.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,
    /// RLIMIT_NOFILE for a target fdsoak starts (builtin or --spawn).
    #[arg(long, value_name = "N", conflicts_with = "target")]
    pub nofile: Option<u64>,
    /// Serve the built-in target on a fresh Unix socket instead of a loopback port
    /// ([target] unix_socket).
    #[arg(long, conflicts_with_all = ["target", "spawn"])]
    pub unix_socket: bool,
    /// Report directory (default: <reports-dir>/<scenario>-<UTC time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Root for new report directories.
    #[arg(long, value_name = "DIR", default_value = "reports", env = "FDSOAK_REPORTS_DIR")]
    pub reports_dir: PathBuf,
    /// Start this client under test, pointed at the target through the fault proxy;
    /// `{addr}` is replaced by the address it must use (also in FDSOAK_TARGET_ADDR).
    #[arg(long, value_name = "CMD")]
    pub client: Option<String>,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also pass what the target and the client under test write through to stderr, each
    /// line marked with its process; it is kept in target.log and client.log either way.
    #[arg(long)]
    pub show_output: bool,
    /// Set a phase's length, as PHASE=DURATION (e.g. load=8h); repeatable.
    #[arg(long = "duration", value_name = "PHASE=DUR", conflicts_with = "soak")]
    pub durations: Vec<String>,
    /// Scale every load phase so the run lasts about this long (e.g. 8h), keeping baseline and drain.
    #[arg(long, value_name = "DURATION", value_parser = crate::scenario::duration::parse)]
    pub soak: Option<std::time::Duration>,
    /// Rewrite the report this often during the run ([sampler] checkpoint; 0 turns it off).
    #[arg(long, value_name = "DURATION", value_parser = crate::scenario::duration::parse)]
    pub checkpoint: Option<std::time::Duration>,
    /// Serve this run's live metrics (Prometheus text format) at http://ADDR/metrics while
    /// it lasts ([export] metrics_addr); port 0 picks a free one, logged at the start.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// A build label for this run's report (a commit SHA, a version), for `fdsoak trend`.
    #[arg(long, value_name = "BUILD")]
    pub label: Option<String>,
    /// Name where the descriptors that grew were opened: the kernel ledger (eBPF, as root) for any target, and an agent in each process fdsoak starts ([origin] enabled = true)
    #[arg(long)]
    pub origin: bool,
    /// Run shard I of N (I counts from 0): every workload's rate, concurrency and streams divided by N.
    #[arg(long, value_name = "I/N", conflicts_with = "shards", value_parser = parse_shard)]
    pub shard: Option<crate::scenario::Shard>,
    /// Run one of N shards, the index read from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Driver threads: 1 runs every call on one thread, the least CPU per call (a 2-core
    /// box keeps a core for the target); more for rates one core cannot drive; 0 for one per core.
    #[arg(long, value_name = "N", default_value_t = crate::driver::DEFAULT_WORKERS)]
    pub workers: usize,
    /// Begin the phases at this UTC time (RFC 3339, e.g. 2026-11-25T23:00:00Z), so drivers line up.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<std::time::SystemTime>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub gates: GateArgs,
}

fn parse_shard(s: &str) -> Result<crate::scenario::Shard, String> {
    s.parse()
}

/// TLS and metadata to the target, in the manner of grpcurl; each replaces the scenario's value.
#[derive(Debug, Args, Default)]
pub struct TlsArgs {
    /// Speak TLS, trusting the CA in this PEM file ([tls] ca).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS ([tls] cert).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS ([tls] key); its path is kept out of reports.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name to verify the server certificate against ([tls] server_name).
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,
    /// Speak TLS and accept any server certificate ([tls] insecure_skip_verify).
    #[arg(long)]
    pub insecure: bool,
    /// Metadata sent with every call, "key: value" (repeatable; ${NAME} reads the environment).
    #[arg(short = 'H', long = "header", value_name = "KEY: VALUE")]
    pub headers: Vec<String>,
}

/// Gate overrides; each replaces the scenario's `[gates]` value.
#[derive(Debug, Args, Default)]
pub struct GateArgs {
    /// FDs above the baseline allowed at the end of the run.
    #[arg(long, value_name = "N")]
    pub max_residual_fds: Option<i64>,
    /// FD growth allowed during load, per hour (robust slope).
    #[arg(long, value_name = "N")]
    pub max_growth_per_hour: Option<f64>,
    /// Growth below this many FDs over the load window counts as noise.
    #[arg(long, value_name = "N")]
    pub min_growth_fds: Option<f64>,
    /// CLOSE_WAIT sockets above the baseline allowed at the end.
    #[arg(long, value_name = "N")]
    pub max_close_wait: Option<i64>,
    /// A descriptor group growing steadily by this many and staying after the drain is a leak (0: off).
    #[arg(long, value_name = "N")]
    pub min_group_growth: Option<u64>,
    /// Peak FDs as a fraction of the soft RLIMIT_NOFILE (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub max_fd_usage: Option<f64>,
    /// Stop the run, drain and report as soon as min_time_to_limit, max_fd_usage or
    /// max_error_rate is sure to fail ([gates] abort = true).
    #[arg(long)]
    pub abort: bool,
    /// Fail when growth projects the limit sooner than this (e.g. "24h").
    #[arg(long, value_name = "DURATION", value_parser = crate::scenario::duration::parse)]
    pub min_time_to_limit: Option<Duration>,
    /// Failed calls allowed, as a fraction of finished calls.
    #[arg(long, value_name = "FRACTION")]
    pub max_error_rate: Option<f64>,
    /// p99 latency ceiling per workload and phase (e.g. "250ms").
    #[arg(long, value_name = "DURATION", value_parser = crate::scenario::duration::parse)]
    pub max_p99: Option<Duration>,
    /// Descriptors a process may hold only because a peer's leaked connections keep them
    /// open; by default they are the peer's leak, not judged against this process.
    #[arg(long, value_name = "N")]
    pub max_held_by_peer: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind. Loopback by default.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to bind; 0 picks a free one. The bound address is printed on one line.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Listen here instead of --bind and --port: HOST:PORT, or a Unix socket
    /// (unix:///ABS/PATH, unix:PATH, unix-abstract:NAME), whose file is removed on exit.
    #[arg(long, value_name = "ADDR", value_parser = crate::scenario::parse_address, conflicts_with_all = ["bind", "port"])]
    pub listen: Option<crate::net::Address>,
    /// Set this process's RLIMIT_NOFILE (soft and hard) to N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(16..))]
    pub nofile: Option<u64>,
    /// Read server behaviours (not_serving, service_unknown, stall, end_watch), one JSON
    /// fault per line, from standard input: how `fdsoak run` steers the built-in target.
    #[arg(long)]
    pub control_stdin: bool,
    /// Serve TLS with this certificate (PEM; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Also serve this process's Prometheus process metrics (process_open_fds, process_max_fds, …)
    /// at http://ADDR/metrics; port 0 picks one, printed on a second line.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub knobs: Knobs,
}

#[derive(Debug, Args)]
pub struct ClientDemoArgs {
    /// The server to check (HOST:PORT, or unix:///PATH); fdsoak sets FDSOAK_TARGET_ADDR for a client it starts.
    #[arg(long, value_name = "ADDR", env = "FDSOAK_TARGET_ADDR")]
    pub target: String,
    /// good: one channel for the whole run; retry-leak: a fresh channel after each failed
    /// check, the old one never closed; per-check-leak: a new channel per check, never closed.
    #[arg(long, value_enum, default_value = "good")]
    pub mode: crate::client::demo::Mode,
    /// Time between checks.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = crate::scenario::duration::parse)]
    pub interval: Duration,
    /// Deadline of each check.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = crate::scenario::duration::parse)]
    pub deadline: Duration,
    /// Exit after this many checks (default: run until stopped).
    #[arg(long, value_name = "N")]
    pub checks: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on: HOST:PORT, or a Unix socket (unix:///ABS/PATH, unix:PATH, unix-abstract:NAME).
    #[arg(long, default_value = "127.0.0.1:0", value_parser = crate::scenario::parse_address)]
    pub listen: crate::net::Address,
    /// The server to forward to (HOST:PORT, or a Unix socket as for --listen).
    #[arg(long)]
    pub upstream: String,
    /// A fault, as `KIND,key=value,…` with the keys of a scenario's [[phases.faults]],
    /// e.g. `reset,every=5s`, `refuse,at=3s,duration=2s`, `latency,latency=50ms,jitter=10ms`. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TrendArgs {
    /// Report directories, summary.json files or glob patterns ("reports/nightly-*").
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Build order, as the labels given to `run --label`, comma-separated (default: start time).
    #[arg(long, value_name = "L1,L2,…", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Directory for trend.md and trend.html.
    #[arg(long, value_name = "DIR", default_value = "trend")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tolerances: crate::compare::Tolerances,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference report.
    pub base: PathBuf,
    /// The report to judge.
    pub candidate: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: crate::compare::Format,
    #[command(flatten)]
    pub tolerances: crate::compare::Tolerances,
}
