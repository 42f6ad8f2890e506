//! `run`'s flags (which `bisect` takes too) over the scenario file: the
//! target, the client, switches, shards, gates, TLS and metadata, each
//! replacing the scenario's value, and the run configuration they make.

use super::{GateArgs, RunArgs, TlsArgs};
use crate::error::{Error, Result};
use crate::run::RunConfig;
use crate::scenario::{self, ClientSpec, Scenario, TargetMode, TargetSpec};

/// Whether the client's program must exist now: not for `bisect`, whose
/// programs are built in each commit's worktree.
#[derive(Clone, Copy, PartialEq)]
pub(in crate::cmd) enum Programs {
    Check,
    BuiltLater,
}

/// `run`'s flags over the scenario: the run configuration they make.
pub(in crate::cmd) fn run_setup(mut a: RunArgs, programs: Programs) -> Result<RunConfig> {
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
        show_output: a.show_output,
    })
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
fn apply_client(sc: &mut Scenario, a: &RunArgs, programs: Programs) -> Result<std::path::PathBuf> {
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

impl TlsArgs {
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
