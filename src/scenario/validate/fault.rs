//! The rules of one `[[phases.faults]]` entry: which keys each kind takes,
//! `every` or `at` for events, and the values each kind needs. The fault
//! specs of `fdsoak proxy --fault` are checked by the same rules.

use super::{fail, Rule};
use crate::scenario::KeyPath;
use std::time::Duration;

/// Checks one fault entry at `path`; `phase` is its phase's length (an `at` must fall inside it).
pub(in crate::scenario) fn check_fault(f: &crate::scenario::Fault, phase: Duration, path: &KeyPath) -> Rule {
    check_keys(f, path)?;
    check_kernel(f, path)?;
    check_timing(f, phase, path)?;
    check_values(f, path)
}

/// Which keys each fault kind takes.
fn check_keys(f: &crate::scenario::Fault, path: &KeyPath) -> Rule {
    use crate::scenario::FaultKind::*;
    let kind = f.kind.as_str();
    let set = [
        ("every", f.every.is_some()),
        ("at", f.at.is_some()),
        ("duration", f.duration.is_some()),
        ("latency", f.latency.is_some()),
        ("jitter", f.jitter.is_some()),
        ("bytes_per_sec", f.bytes_per_sec.is_some()),
        ("bytes", f.bytes.is_some()),
        ("delay", f.delay.is_some()),
        ("service", f.service.is_some()),
        ("error_code", f.error_code.is_some()),
        ("last_stream_id", f.last_stream_id.is_some()),
        ("debug_data", f.debug_data.is_some()),
        ("on_next_stream", f.on_next_stream.is_some()),
        ("fraction", f.fraction.is_some()),
    ];
    let allowed: &[&str] = match f.kind {
        Reset | Close => &["every", "at"],
        Blackhole | Refuse => &["every", "at", "duration"],
        Latency => &["latency", "jitter"],
        Bandwidth => &["bytes_per_sec"],
        SlowClose => &["delay"],
        LimitData => &["bytes"],
        NotServing | ServiceUnknown => &["every", "at", "duration", "service"],
        Stall => &["every", "at", "duration"],
        EndWatch => &["every", "at"],
        Goaway => &[
            "every",
            "at",
            "duration",
            "error_code",
            "last_stream_id",
            "debug_data",
            "on_next_stream",
        ],
        RstStream => &["error_code"],
        Loss => &["fraction"],
    };
    for (key, is_set) in set {
        if is_set && !allowed.contains(&key) {
            return fail(path.key(key), format!("does not apply to fault kind {kind:?}"));
        }
    }
    Ok(())
}

/// How often the fault acts: its probability, and an event's `every` or `at` inside the phase.
fn check_timing(f: &crate::scenario::Fault, phase: Duration, path: &KeyPath) -> Rule {
    let kind = f.kind.as_str();
    if let Some(p) = f.probability {
        if !(p > 0.0 && p <= 1.0) {
            return fail(
                path.key("probability"),
                format!("must be greater than 0 and at most 1, got {p}"),
            );
        }
    }
    if f.kind.is_event() {
        match (f.every, f.at) {
            (None, None) => return fail(path.key("every"), format!("fault {kind:?} needs `every` or `at`")),
            (Some(_), Some(_)) => return fail(path.key("at"), "give either `every` or `at`, not both"),
            (Some(e), None) if e.is_zero() => return fail(path.key("every"), "must be greater than zero"),
            (None, Some(a)) if a >= phase => return fail(path.key("at"), "must fall inside the phase"),
            _ => {}
        }
    }
    Ok(())
}

/// The values each kind needs: its duration, latency, rate, byte count or fraction.
fn check_values(f: &crate::scenario::Fault, path: &KeyPath) -> Rule {
    use crate::scenario::FaultKind::*;
    let kind = f.kind.as_str();
    let need = |key: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            fail(path.key(key), format!("fault {kind:?} needs a non-zero `{key}`"))
        }
    };
    match f.kind {
        Refuse | Stall => need("duration", f.duration.is_some_and(|d| !d.is_zero())),
        Blackhole if f.duration.is_some_and(|d| d.is_zero()) => fail(
            path.key("duration"),
            "must be greater than zero (leave it out for good)",
        ),
        Goaway if f.duration.is_some_and(|d| d.is_zero()) => fail(
            path.key("duration"),
            "must be greater than zero (leave it out to let the client close the connection)",
        ),
        Goaway if f.debug_data.as_ref().is_some_and(|d| d.len() > 1024) => {
            fail(path.key("debug_data"), "at most 1024 bytes")
        }
        Goaway if f.on_next_stream == Some(true) && f.last_stream_id.is_some() => fail(
            path.key("last_stream_id"),
            "with on_next_stream the last stream is the one before the refused one: give one or the other",
        ),
        Latency => need("latency", f.latency.is_some_and(|d| !d.is_zero())),
        Bandwidth => need("bytes_per_sec", f.bytes_per_sec.is_some_and(|b| b > 0)),
        SlowClose => need("delay", f.delay.is_some_and(|d| !d.is_zero())),
        LimitData => need("bytes", f.bytes.is_some_and(|b| b > 0)),
        Loss => match f.fraction {
            None => fail(
                path.key("fraction"),
                "fault \"loss\" needs `fraction`, the share of packets dropped",
            ),
            Some(x) if !(x > 0.0 && x < 1.0) => fail(
                path.key("fraction"),
                format!("must be greater than 0 and less than 1 (for every packet, use kind = \"blackhole\"), got {x}"),
            ),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The keys of a fault with no proxy (`via = "kernel"`): which kinds it takes, and its selectors.
fn check_kernel(f: &crate::scenario::Fault, path: &KeyPath) -> Rule {
    use crate::scenario::FaultKind::*;
    if !f.is_kernel() {
        if f.kind == Loss {
            return fail(
                path.key("via"),
                "\"loss\" needs via = \"kernel\": the proxy sees bytes, not packets, so it cannot drop one",
            );
        }
        for (key, set) in [
            ("role", f.role.is_some()),
            ("peer", f.peer.is_some()),
            ("direction", f.direction.is_some()),
        ] {
            if set {
                return fail(path.key(key), "applies to faults with via = \"kernel\" only");
            }
        }
        return Ok(());
    }
    match f.kind {
        Reset | Blackhole | Loss => {}
        Close => {
            return fail(
                path.key("kind"),
                "\"close\" needs the proxy: the kernel can abort a process's socket (reset), but only the process itself can send its FIN",
            )
        }
        k => {
            return fail(
                path.key("kind"),
                format!(
                    "via = \"kernel\" takes kind = \"reset\", \"blackhole\" or \"loss\", not {:?}",
                    k.as_str()
                ),
            )
        }
    }
    if let Some(peer) = &f.peer {
        if crate::scenario::Peer::parse(peer).is_none() {
            return fail(
                path.key("peer"),
                format!(
                    "must be an IP address and port (\"127.0.0.1:7001\", \"[::1]:7001\") or \":PORT\", got {peer:?}"
                ),
            );
        }
    }
    Ok(())
}
