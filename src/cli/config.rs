//! Conversion of the parsed command line into validated configurations: a
//! scenario loaded and overridden, addresses parsed, programs found.

use super::run_flags::{run_setup, Programs};
use super::*;
use crate::error::{Error, Result};
use crate::run::RunConfig;

/// `fdsoak compare`, ready to execute.
#[derive(Debug)]
pub struct CompareConfig {
    pub base: PathBuf,
    pub candidate: PathBuf,
    pub format: crate::compare::Format,
    pub tolerances: crate::compare::Tolerances,
}

/// `fdsoak serve`, ready to execute.
#[derive(Debug)]
pub struct ServeConfig {
    pub addr: crate::net::Address,
    pub knobs: Knobs,
    pub nofile: Option<u64>,
    pub control_stdin: bool,
    /// Certificate, key and, for mutual TLS, the client CA.
    pub tls: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
    /// Where to serve the process metrics, if at all.
    pub metrics_addr: Option<SocketAddr>,
}

/// `fdsoak probe`, ready to execute.
#[derive(Debug)]
pub struct ProbeConfig {
    pub pid: i32,
    pub count_only: bool,
    pub repeat: u32,
    pub json: bool,
    pub fingerprint: bool,
}

/// `fdsoak proxy`, ready to execute.
#[derive(Debug)]
pub struct ProxyConfig {
    pub listen: crate::net::Address,
    pub upstream: crate::net::Address,
    pub faults: Vec<crate::scenario::Fault>,
}

/// A command ready to execute.
#[derive(Debug)]
pub enum Action {
    Run {
        config: Box<RunConfig>,
        quiet: bool,
        /// Driver runtime threads (see `cmd::runtime_with`).
        workers: usize,
    },
    Serve(Box<ServeConfig>),
    Validate(Vec<PathBuf>),
    Compare(CompareConfig),
    Merge {
        reports: Vec<PathBuf>,
        out: PathBuf,
    },
    Trend(Box<crate::cli::TrendArgs>),
    Report(PathBuf),
    Probe(ProbeConfig),
    Proxy(ProxyConfig),
    ClientDemo(crate::client::demo::DemoConfig),
    /// Print this text (completions, the man page) to standard output.
    Print(String),
    Bisect(Box<crate::bisect::BisectConfig>),
}

impl Cli {
    /// Loads and validates everything the command needs.
    pub fn into_action(self) -> Result<Action> {
        match self.command {
            Command::Run(a) => run_config(*a),
            Command::Bisect(b) => bisect_config(*b),
            Command::Serve(s) => {
                let s = *s;
                Ok(Action::Serve(Box::new(ServeConfig {
                    addr: s.listen.unwrap_or(SocketAddr::new(s.bind, s.port).into()),
                    knobs: s.knobs,
                    nofile: s.nofile,
                    control_stdin: s.control_stdin,
                    tls: s.tls_cert.zip(s.tls_key).map(|(c, k)| (c, k, s.client_ca)),
                    metrics_addr: s.metrics_addr,
                })))
            }
            Command::Validate { scenarios } => Ok(Action::Validate(scenarios)),
            c @ (Command::Completions { .. } | Command::Man) => {
                Ok(Action::Print(super::about_the_cli(&c).map_err(Error::run)?))
            }
            Command::Merge { reports, out } => Ok(Action::Merge { reports, out }),
            Command::Trend(t) => Ok(Action::Trend(t)),
            Command::Report { dir } => Ok(Action::Report(dir)),
            Command::Proxy(p) => {
                let usage = |flag: &str, message: String| Error::usage(flag, message);
                let upstream =
                    crate::scenario::parse_address(&p.upstream).map_err(|e| usage("--upstream", e.to_string()))?;
                let faults = p
                    .faults
                    .iter()
                    .map(|f| crate::scenario::parse_fault_spec(f).map_err(|m| usage("--fault", m)))
                    .collect::<Result<_>>()?;
                Ok(Action::Proxy(ProxyConfig {
                    listen: p.listen,
                    upstream,
                    faults,
                }))
            }
            Command::ClientDemo(c) => {
                let target =
                    crate::scenario::parse_address(&c.target).map_err(|e| Error::usage("--target", e.to_string()))?;
                if c.interval.is_zero() || c.deadline.is_zero() {
                    return Err(Error::usage("--interval/--deadline", "must be greater than zero"));
                }
                Ok(Action::ClientDemo(crate::client::demo::DemoConfig {
                    target,
                    mode: c.mode,
                    interval: c.interval,
                    deadline: c.deadline,
                    checks: c.checks,
                }))
            }
            Command::Probe {
                pid,
                count_only,
                repeat,
                json,
                fingerprint,
            } => Ok(Action::Probe(ProbeConfig {
                pid,
                count_only,
                repeat,
                json,
                fingerprint,
            })),
            Command::Compare(c) => Ok(Action::Compare(CompareConfig {
                base: c.base,
                candidate: c.candidate,
                format: c.format,
                tolerances: c.tolerances,
            })),
        }
    }
}

fn run_config(a: RunArgs) -> Result<Action> {
    let (quiet, workers) = (a.quiet, a.workers);
    let config = Box::new(run_setup(a, Programs::Check)?);
    Ok(Action::Run { config, quiet, workers })
}

/// `fdsoak bisect`: the run every candidate gets, and the search around it.
fn bisect_config(b: BisectArgs) -> Result<Action> {
    if b.run.label.is_some() {
        return Err(Error::usage("--label", "bisect labels each run with its commit"));
    }
    if b.run.start_at.is_some() || b.run.shard.is_some() || b.run.shards.is_some() {
        return Err(Error::usage(
            "--start-at, --shard, --shards",
            "apply to one run, not to a bisection",
        ));
    }
    let workers = b.run.workers;
    let mut run = run_setup(b.run, Programs::BuiltLater)?;
    let out = run.out_dir.take();
    Ok(Action::Bisect(Box::new(crate::bisect::BisectConfig {
        run,
        repo: b.repo,
        good: b.good,
        bad: b.bad,
        build: b.build,
        repeat: b.repeat,
        out,
        workers,
    })))
}
