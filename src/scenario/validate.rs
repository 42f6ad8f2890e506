//! Semantic rules that serde cannot express: positive rates, non-zero
//! durations, keys that only apply to one target mode. (Which keys a workload
//! kind has, and needs, its type says: [`super::workload`].)
//!
//! Each rule returns the key path it concerns, so the caller can name the
//! line. The first broken rule wins: one clear error beats a wall of them.

use super::{
    ChannelPolicy, HealthCheck, KeyPath, Load, Pacing, Rpc, Scenario, TargetMode, TargetSpec, Watch, Workload,
};
use std::time::Duration;

mod fault;
mod reach;

pub(super) use fault::check_fault;

type Rule = Result<(), (KeyPath, String)>;

fn fail(path: KeyPath, message: impl Into<String>) -> Rule {
    Err((path, message.into()))
}

pub(super) fn check(s: &Scenario) -> Rule {
    let root = KeyPath::default();
    if s.name.trim().is_empty() {
        return fail(root.key("name"), "must not be empty");
    }
    check_target(&s.target, &root.key("target"))?;
    if let Some(t) = &s.tls {
        reach::check_tls(t, &root.key("tls"))?;
    }
    let has_rpc = s.phases.iter().flat_map(|p| &p.workloads).any(|w| w.rpc().is_some());
    if s.target.ready == super::ReadyCheck::Rpc && !has_rpc {
        return fail(
            root.key("target").key("ready"),
            "\"rpc\" calls the first rpc workload's method, and there is none",
        );
    }
    let sampler = root.key("sampler");
    if s.sampler.interval < Duration::from_millis(10) {
        return fail(sampler.key("interval"), "must be at least 10ms");
    }
    if s.phases.is_empty() {
        return fail(root.key("phases"), "at least one phase is required");
    }
    for i in 0..s.phases.len() {
        check_phase(s, i, &root.key("phases").index(i))?;
    }
    if let Some(c) = &s.client {
        if shlex::split(&c.command).is_none_or(|w| w.is_empty()) {
            return fail(
                root.key("client").key("command"),
                "must be a command line (is it empty, or is a quote left open?)",
            );
        }
    }
    check_gates(&s.gates, &root.key("gates"))
}

/// Phase `i`: its name, its length, its workloads, and its faults with what the target and TLS allow.
fn check_phase(s: &Scenario, i: usize, p: &KeyPath) -> Rule {
    let phase = &s.phases[i];
    if phase.name.trim().is_empty() {
        return fail(p.key("name"), "must not be empty");
    }
    if s.phases[..i].iter().any(|q| q.name == phase.name) {
        return fail(p.key("name"), format!("phase name {:?} is used twice", phase.name));
    }
    if phase.duration.is_zero() {
        return fail(p.key("duration"), "must be greater than zero");
    }
    for (j, w) in phase.workloads.iter().enumerate() {
        check_workload(w, &p.key("workloads").index(j))?;
    }
    for (j, f) in phase.faults.iter().enumerate() {
        let at = p.key("faults").index(j);
        check_fault(f, phase.duration, &at)?;
        if f.kind.is_server() && s.target.mode != TargetMode::Builtin {
            return fail(
                at.key("kind"),
                format!("{:?} acts on the built-in target only", f.kind.as_str()),
            );
        }
        if f.kind.is_http2() && s.tls.as_ref().is_some_and(|t| !t.proxy_terminates()) {
            return fail(
                at.key("kind"),
                format!(
                    "{:?} writes HTTP/2 frames into the connection, and the proxy cannot see inside TLS: give [tls] proxy_cert and proxy_key (a certificate the driver and the client trust) so the proxy ends TLS, or use a plaintext target",
                    f.kind.as_str()
                ),
            );
        }
    }
    Ok(())
}

/// `[gates]`: the abort list, and every threshold a number >= 0.
fn check_gates(g: &super::Gates, gates: &KeyPath) -> Rule {
    if let Some(problem) = g.abort.problem() {
        return fail(gates.key("abort"), problem);
    }
    for (key, v) in [
        ("max_growth_per_hour", g.max_growth_per_hour),
        ("min_growth_fds", g.min_growth_fds),
        ("max_error_rate", g.max_error_rate),
        ("max_fd_usage", g.max_fd_usage),
    ] {
        if !v.is_finite() || v < 0.0 {
            return fail(gates.key(key), format!("must be a number >= 0, got {v}"));
        }
    }
    if g.max_residual_fds < 0 || g.max_close_wait < 0 {
        let key = if g.max_residual_fds < 0 {
            "max_residual_fds"
        } else {
            "max_close_wait"
        };
        return fail(gates.key(key), "must be >= 0");
    }
    Ok(())
}

/// `[target]`: the keys its mode takes, the built-in target's knobs, where its counts come
/// from, and what its mode needs.
fn check_target(t: &TargetSpec, path: &KeyPath) -> Rule {
    check_mode_keys(t, path)?;
    check_knobs(t, path)?;
    check_fds(t, path)?;
    if let Some(n) = t.nofile {
        if n < 16 {
            return fail(path.key("nofile"), format!("must be at least 16, got {n}"));
        }
    }
    check_mode_needs(t, path)?;
    for (key, d) in [
        ("ready_timeout", t.ready_timeout),
        ("max_connection_age", t.knobs.max_connection_age),
        ("keepalive_interval", t.knobs.keepalive_interval),
        ("keepalive_timeout", t.knobs.keepalive_timeout),
        ("stall_for", t.knobs.stall_for),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return fail(path.key(key), "must be greater than zero");
        }
    }
    Ok(())
}

/// Every key set in `[target]` belongs to its mode (unknown keys are refused here, beside the knobs' flatten).
fn check_mode_keys(t: &TargetSpec, path: &KeyPath) -> Rule {
    if let Some(key) = t.unknown.keys().next() {
        return fail(path.key(key), format!("unknown key `{key}` in [target]"));
    }
    let knobs = t.knobs.set();
    let present = knobs.iter().map(|(k, _)| (k.as_str(), "builtin")).chain(
        [
            ("nofile", t.nofile.is_some(), "builtin or spawn"),
            ("command", t.command.is_some(), "spawn"),
            ("address", t.address.is_some(), "address"),
            ("pid", t.pid.is_some(), "address"),
            ("unix_socket", t.unix_socket, "builtin"),
        ]
        .into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(k, _, modes)| (k, modes)),
    );
    for (key, modes) in present {
        if !modes.contains(mode_name(t.mode)) {
            return fail(path.key(key), format!("does not apply to mode {:?}", mode_name(t.mode)));
        }
    }
    Ok(())
}

/// The built-in target's knobs that go in pairs or count from 1.
fn check_knobs(t: &TargetSpec, path: &KeyPath) -> Rule {
    if t.knobs.stall_at.is_some() != t.knobs.stall_for.is_some() {
        let missing = if t.knobs.stall_at.is_none() {
            "stall_at"
        } else {
            "stall_for"
        };
        return fail(path.key(missing), "stall_at and stall_for go together");
    }
    for (key, v) in [
        ("leak_fd_every", t.knobs.leak_fd_every),
        ("leak_channel_every", t.knobs.leak_channel_every),
    ] {
        if v == Some(0) {
            return fail(path.key(key), "must be at least 1 (leave it out to disable)");
        }
    }
    Ok(())
}

/// `[target.fds]`: its endpoint, and not beside a `pid`.
fn check_fds(t: &TargetSpec, path: &KeyPath) -> Rule {
    if let Some(problem) = t.fds.as_ref().and_then(|f| f.prometheus.problem()) {
        return fail(path.key("fds").key("prometheus"), problem);
    }
    if t.fds.is_some() && t.pid.is_some() {
        return fail(
            path.key("pid"),
            "give pid (read its /proc) or [target.fds] (read an endpoint), not both",
        );
    }
    if t.fds
        .as_ref()
        .is_some_and(|f| f.timeout == Some(std::time::Duration::ZERO))
    {
        return fail(path.key("fds").key("timeout"), "must be more than 0");
    }
    Ok(())
}

/// What a mode needs: a command with its placeholder, or an address that parses.
fn check_mode_needs(t: &TargetSpec, path: &KeyPath) -> Rule {
    match t.mode {
        TargetMode::Spawn => match &t.command {
            None => return fail(path.key("command"), "mode \"spawn\" needs a command"),
            Some(c) if !c.contains("{port}") && !c.contains("{socket}") => {
                return fail(
                    path.key("command"),
                    "must contain the {port} placeholder (or {socket}, for a server on a Unix socket)",
                )
            }
            _ => {}
        },
        TargetMode::Address => match &t.address {
            None => {
                return fail(
                    path.key("address"),
                    "mode \"address\" needs an address (HOST:PORT or unix:///PATH)",
                )
            }
            Some(a) => {
                if let Err(e) = super::parse_address(a) {
                    return fail(path.key("address"), e.to_string());
                }
            }
        },
        TargetMode::Builtin => {}
    }
    Ok(())
}

fn mode_name(m: TargetMode) -> &'static str {
    m.as_str()
}

/// A workload's values; which keys its kind has, and which it needs, its type has settled.
fn check_workload(w: &Workload, path: &KeyPath) -> Rule {
    let rpc = w.rpc();
    for (key, d) in [
        ("deadline", w.deadline),
        ("keepalive_interval", w.keepalive_interval),
        ("keepalive_timeout", w.keepalive_timeout),
        ("stream_duration", rpc.and_then(|r| r.stream_duration)),
        ("send_interval", rpc.and_then(|r| r.send_interval)),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return fail(path.key(key), "must be greater than zero");
        }
    }
    if let Some(m) = w.max_error_rate {
        if !(0.0..=1.0).contains(&m) {
            return fail(path.key("max_error_rate"), format!("must be from 0 to 1, got {m}"));
        }
    }
    if let Some(calls) = w.calls() {
        if let Some(r) = &calls.retry {
            check_retry(r, &path.key("retry"))?;
        }
    }
    if let Some(r) = rpc {
        reach::check_rpc(r, path)?;
    }
    match &w.load {
        Load::HealthCheck(HealthCheck { calls, .. }) | Load::Rpc(Rpc { calls, .. }) => check_pacing(calls.pacing, path),
        Load::Watch(v) => check_watch(v, w.channel, path),
    }
}

fn check_pacing(pacing: Pacing, path: &KeyPath) -> Rule {
    match pacing {
        Pacing::Concurrency(0) => fail(path.key("concurrency"), "must be at least 1"),
        Pacing::Concurrency(n) if n > 100_000 => fail(path.key("concurrency"), format!("{n} is too many")),
        Pacing::Concurrency(_) => Ok(()),
        Pacing::Rate { rate, .. } if !rate.is_finite() || rate <= 0.0 => fail(
            path.key("rate"),
            format!("must be a positive number of calls per second, got {rate}"),
        ),
        Pacing::Rate { rate, .. } if rate > 1_000_000.0 => fail(
            path.key("rate"),
            format!("{rate} calls/s is beyond what one driver can schedule"),
        ),
        Pacing::Rate {
            max_in_flight: Some(0), ..
        } => fail(path.key("max_in_flight"), "must be at least 1"),
        Pacing::Rate { .. } => Ok(()),
    }
}

fn check_watch(v: &Watch, channel: ChannelPolicy, path: &KeyPath) -> Rule {
    match v.streams {
        0 => return fail(path.key("streams"), "must be at least 1"),
        n if n > 100_000 => return fail(path.key("streams"), format!("{n} streams is too many")),
        _ => {}
    }
    if v.reopen_every.is_some_and(|d| d.is_zero()) {
        return fail(path.key("reopen_every"), "must be greater than zero");
    }
    if channel == ChannelPolicy::PerCallLeak {
        return fail(path.key("channel"), "per_call_leak applies to health_check only");
    }
    Ok(())
}

fn check_retry(r: &super::RetrySpec, path: &KeyPath) -> Rule {
    if !(2..=10).contains(&r.max_attempts) {
        return fail(
            path.key("max_attempts"),
            format!(
                "must be from 2 to 10 (the first attempt included), got {}",
                r.max_attempts
            ),
        );
    }
    if r.initial_backoff.is_zero() {
        return fail(path.key("initial_backoff"), "must be greater than zero");
    }
    if r.max_backoff < r.initial_backoff {
        return fail(path.key("max_backoff"), "must be at least initial_backoff");
    }
    if !r.backoff_multiplier.is_finite() || r.backoff_multiplier < 1.0 {
        return fail(
            path.key("backoff_multiplier"),
            format!("must be at least 1, got {}", r.backoff_multiplier),
        );
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        return fail(path.key("jitter"), format!("must be from 0 to 1, got {}", r.jitter));
    }
    if r.retryable.is_empty() {
        return fail(
            path.key("retryable"),
            "name at least one status code, such as \"UNAVAILABLE\"",
        );
    }
    for (i, code) in r.retryable.iter().enumerate() {
        if code == "OK" || !crate::domain::CODE_NAMES.contains(&code.as_str()) {
            return fail(
                path.key("retryable").index(i),
                format!("{code:?} is not a retryable gRPC status code name (such as \"UNAVAILABLE\")"),
            );
        }
    }
    Ok(())
}
