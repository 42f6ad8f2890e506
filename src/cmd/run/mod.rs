//! `fdsoak run`: its flags (which `bisect` takes too), their conversion
//! over the scenario file into a run configuration ([`setup`]), and the
//! run itself: print the summary, exit with the verdict's code.

pub(super) mod setup;

use crate::error::{Exit, Result};
use clap::Args;
pub(super) use setup::Programs;
use std::path::PathBuf;
use std::time::Duration;

/// Run a scenario against a target and write a report.
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

fn parse_shard(s: &str) -> std::result::Result<crate::scenario::Shard, String> {
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

pub fn execute(args: RunArgs) -> Result<Exit> {
    let (quiet, workers) = (args.quiet, args.workers);
    let config = setup::run_setup(args, Programs::Check)?;
    let outcome = super::runtime_with(workers)?.block_on(crate::run::run(config, super::interrupted()))?;
    let text = crate::report::terminal::render(&outcome.summary, &outcome.dir);
    if quiet {
        // The verdict and the findings: everything before the first blank line.
        text.lines().take_while(|l| !l.is_empty()).for_each(|l| println!("{l}"));
    } else {
        print!("{text}");
    }
    Ok(Exit::of(outcome.verdict))
}
