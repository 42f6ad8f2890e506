//! The rules for how fdsoak reaches the target and what it calls there: the
//! `[tls]` table's pairs and exclusions, and the rpc keys that can be checked
//! without descriptors (the method and the body are checked against those
//! when the scenario is resolved).

use super::{fail, Rule};
use crate::scenario::{KeyPath, Rpc, TlsSpec};

pub(super) fn check_tls(t: &TlsSpec, tls: &KeyPath) -> Rule {
    if t.cert.is_some() != t.key.is_some() {
        let missing = if t.cert.is_some() { "key" } else { "cert" };
        return fail(tls.key(missing), "mutual TLS needs both cert and key");
    }
    if t.proxy_cert.is_some() != t.proxy_key.is_some() {
        let missing = if t.proxy_cert.is_some() {
            "proxy_key"
        } else {
            "proxy_cert"
        };
        return fail(
            tls.key(missing),
            "the fault proxy ends TLS with both proxy_cert and proxy_key",
        );
    }
    if t.ca.is_some() && t.insecure_skip_verify {
        return fail(
            tls.key("insecure_skip_verify"),
            "give ca or insecure_skip_verify, not both",
        );
    }
    Ok(())
}

/// The rpc keys that need no descriptors; the method and the body are checked against them later.
pub(super) fn check_rpc(w: &Rpc, path: &KeyPath) -> Rule {
    let method = &w.method;
    let (service, name) = method.trim_start_matches('/').rsplit_once('/').unwrap_or(("", ""));
    if service.is_empty() || name.is_empty() || name.contains('.') {
        return fail(
            path.key("method"),
            format!("{method:?} is not package.Service/Method (for example \"fdsoak.demo.v1.Chatbot/Ask\")"),
        );
    }
    if w.max_messages == Some(0) {
        return fail(path.key("max_messages"), "must be at least 1");
    }
    Ok(())
}
