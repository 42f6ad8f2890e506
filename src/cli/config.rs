//! Conversion of the parsed command line into validated configurations: a
//! scenario loaded and overridden, addresses parsed, programs found.

use super::*;
use crate::error::{Error, Result};
use crate::run::RunConfig;
use crate::scenario::{self, ClientSpec, Scenario, TargetMode, TargetSpec};

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

/// Whether the client's program must exist now: not for `bisect`, whose
/// programs are built in each commit's worktree.
#[derive(Clone, Copy, PartialEq)]
enum Programs {
    Check,
    BuiltLater,
}

/// `run`'s flags over the scenario: the run configuration they make.
fn run_setup(mut a: RunArgs, programs: Programs) -> Result<RunConfig> {
    let mut sc = crate::rpc::load_scenario(&a.scenario).map_err(Error::Scenario)?;
    crate::transport::resolve(&mut sc, &a.scenario).map_err(Error::Scenario)?;
    std::mem::take(&mut a.tls)
        .apply(&mut sc)
        .map_err(|(flag, message)| Error::usage(flag, message))?;
    apply_target(&mut sc, &a)?;
    apply_switches(&mut sc, &a);
    let mut overrides =
        crate::scenario::stretch::set_durations(&mut sc, &a.durations).map_err(|m| usage("--duration", m))?;
    if let Some(total) = a.soak {
        overrides = crate::scenario::stretch::soak(&mut sc, total).map_err(|m| usage("--soak", m))?;
    }
    let shard = shard_of(&a)?;
    if let Some(s) = shard {
        s.apply(&mut sc);
    }
    let fdsoak_exe = apply_client(&mut sc, &a, programs)?;
    apply_gates(&mut sc.gates, &a.gates);
    scenario::check_rules(&sc)
        .map_err(|(key, message)| usage(&format!("(after command-line overrides) {key}"), message))?;
    Ok(RunConfig {
        scenario: sc,
        scenario_file: a.scenario,
        out_dir: a.out,
        reports_root: a.reports_dir,
        fdsoak_exe,
        progress: !a.quiet,
        shard,
        start_at: a.start_at,
        overrides,
        label: a.label,
        workdir: None,
    })
}

/// `fdsoak bisect`: the run every candidate gets, and the search around it.
fn bisect_config(b: BisectArgs) -> Result<Action> {
    if b.run.label.is_some() {
        return Err(usage("--label", "bisect labels each run with its commit".into()));
    }
    if b.run.start_at.is_some() || b.run.shard.is_some() || b.run.shards.is_some() {
        return Err(usage(
            "--start-at, --shard, --shards",
            "apply to one run, not to a bisection".into(),
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

fn usage(flag: &str, message: String) -> Error {
    Error::usage(flag, message)
}

/// `--target`, `--spawn`, `--nofile`, `--unix-socket` and `--fds-from` in place of the
/// scenario's target. How to wait for it stays the scenario's, whichever target is named.
fn apply_target(sc: &mut Scenario, a: &RunArgs) -> Result<()> {
    let (ready, ready_timeout) = (sc.target.ready, sc.target.ready_timeout);
    // Where its descriptors are read is the scenario's too, unless --fds-from says.
    let mut fds = sc.target.fds.clone();
    if let Some(url) = &a.fds_from {
        let url = crate::scenario::MetricsUrl::new(url.clone());
        if let Some(problem) = url.problem() {
            return Err(usage("--fds-from", problem));
        }
        let base = fds.unwrap_or_else(|| crate::scenario::FdSourceSpec::prometheus(""));
        fds = Some(crate::scenario::FdSourceSpec {
            prometheus: url,
            ..base
        });
    }
    if let Some(addr) = &a.target {
        crate::scenario::parse_address(addr).map_err(|e| usage("--target", e.to_string()))?;
        sc.target = TargetSpec {
            mode: TargetMode::Address,
            address: Some(addr.clone()),
            pid: a.pid,
            ready,
            ready_timeout,
            ..Default::default()
        };
    } else if let Some(cmd) = &a.spawn {
        if !cmd.contains("{port}") && !cmd.contains("{socket}") {
            return Err(usage(
                "--spawn",
                "must contain the {port} placeholder (or {socket}, for a server on a Unix socket)".into(),
            ));
        }
        crate::lifecycle::split_command(cmd).map_err(|e| usage("--spawn", e.to_string()))?;
        let nofile = a.nofile.or(sc.target.nofile);
        sc.target = TargetSpec {
            mode: TargetMode::Spawn,
            command: Some(cmd.clone()),
            nofile,
            ready,
            ready_timeout,
            ..Default::default()
        };
    } else if let Some(n) = a.nofile {
        if sc.target.mode == TargetMode::Address {
            return Err(usage("--nofile", "applies only to a target fdsoak starts".into()));
        }
        sc.target.nofile = Some(n);
    }
    if a.unix_socket {
        if sc.target.mode != TargetMode::Builtin {
            return Err(usage(
                "--unix-socket",
                "applies only to the built-in target (for --spawn, put {socket} in the command)".into(),
            ));
        }
        sc.target.unix_socket = true;
    }
    sc.target.fds = fds;
    Ok(())
}

/// `--origin`, `--metrics-addr` and `--checkpoint` in place of the scenario's.
fn apply_switches(sc: &mut Scenario, a: &RunArgs) {
    if a.origin {
        sc.origin.enabled = true;
    }
    if let Some(addr) = &a.metrics_addr {
        sc.export.metrics_addr = Some(*addr);
    }
    if let Some(c) = a.checkpoint {
        sc.sampler.checkpoint = Some(c);
    }
}

/// This driver's shard: `--shard I/N`, or `--shards N` with its index from the environment.
fn shard_of(a: &RunArgs) -> Result<Option<crate::scenario::Shard>> {
    match (a.shard, a.shards) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(n)) => {
            let env = crate::scenario::INDEX_ENV;
            let index = std::env::var(env)
                .map_err(|_| usage("--shards", format!("needs {env} set to this driver's index (0 to N-1)")))?;
            let index: u32 = index
                .trim()
                .parse()
                .map_err(|_| usage("--shards", format!("{env}={index:?} is not an index")))?;
            Ok(Some(
                crate::scenario::Shard::new(index, n).map_err(|m| usage("--shards", m))?,
            ))
        }
        (None, None) => Ok(None),
    }
}

/// `--client` in place of the scenario's, and a check that its program exists. Returns
/// fdsoak's own executable, which a client command may name.
fn apply_client(sc: &mut Scenario, a: &RunArgs, programs: Programs) -> Result<PathBuf> {
    if let Some(command) = &a.client {
        let expect_exit = sc.client.as_ref().is_some_and(|c| c.expect_exit);
        sc.client = Some(ClientSpec {
            command: command.clone(),
            expect_exit,
        });
    }
    let fdsoak_exe =
        std::env::current_exe().map_err(|e| Error::run(anyhow::anyhow!("cannot find fdsoak's own executable: {e}")))?;
    if let Some(c) = sc.client.as_ref().filter(|_| programs == Programs::Check) {
        let line = crate::client::command_line(c, "127.0.0.1:1", &fdsoak_exe);
        let key = if a.client.is_some() {
            "--client"
        } else {
            "client.command"
        };
        check_program(&line).map_err(|m| usage(key, m))?;
    }
    Ok(fdsoak_exe)
}

/// The gate flags in place of the scenario's gates.
fn apply_gates(g: &mut crate::scenario::Gates, o: &GateArgs) {
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = o.$f { g.$f = v; } )* };
    }
    set!(
        max_residual_fds,
        max_growth_per_hour,
        min_growth_fds,
        max_close_wait,
        min_group_growth,
        max_fd_usage,
        min_time_to_limit,
        max_error_rate
    );
    if o.max_p99.is_some() {
        g.max_p99 = o.max_p99;
    }
    if o.max_held_by_peer.is_some() {
        g.max_held_by_peer = o.max_held_by_peer;
    }
    if o.abort {
        g.abort = crate::scenario::Abort::Every(true);
    }
}

/// Checks that a command line's program exists (on PATH, or as a path), so a
/// typo is a usage error before anything starts.
fn check_program(command: &str) -> std::result::Result<(), String> {
    let words = shlex::split(command).unwrap_or_default();
    let program = words.first().ok_or("empty command")?;
    let runnable = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        runnable(std::path::Path::new(program))
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
    };
    if found {
        Ok(())
    } else {
        Err(format!("{program:?} is not an executable file or on PATH"))
    }
}

impl crate::cli::TlsArgs {
    /// Puts the TLS flags and `-H` metadata into the scenario, over its own values.
    fn apply(self, sc: &mut crate::scenario::Scenario) -> std::result::Result<(), (&'static str, String)> {
        let any = self.cacert.is_some() || self.cert.is_some() || self.servername.is_some() || self.insecure;
        if any {
            let t = sc.tls.get_or_insert_with(Default::default);
            if self.cacert.is_some() && self.insecure {
                return Err(("--insecure", "give --cacert or --insecure, not both".into()));
            }
            if let Some(ca) = self.cacert {
                t.ca = Some(ca);
                t.insecure_skip_verify = false;
            }
            if let (Some(cert), Some(key)) = (self.cert, self.key) {
                t.cert = Some(cert);
                t.key = Some(crate::scenario::Secret::new(key.to_string_lossy()));
            }
            if let Some(name) = self.servername {
                t.server_name = Some(name);
            }
            if self.insecure {
                t.insecure_skip_verify = true;
                t.ca = None;
            }
        }
        for h in self.headers {
            // The value is never echoed: it may be a token.
            let Some((k, v)) = h.split_once(':') else {
                return Err(("-H", "expected \"key: value\"".into()));
            };
            if k.trim().is_empty() {
                return Err(("-H", "the metadata key is empty".into()));
            }
            sc.metadata
                .insert(k.trim().to_ascii_lowercase(), crate::scenario::Secret::new(v.trim()));
        }
        Ok(())
    }
}
