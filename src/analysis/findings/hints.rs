//! What to do about a status that says the target lacks a method: a workload
//! failing UNIMPLEMENTED on the health service means the server does not serve
//! that method, not that it is broken, and the fix is a different scenario.

/// Library scenarios whose workloads are Health/Check alone (no Watch, no method of
/// the built-in target's), for any server that serves Check: a test keeps this true.
pub const CHECK_ONLY: [&str; 4] = [
    "channel-churn",
    "goaway-churn",
    "health-storm-fresh-channels",
    "outage-retry-storm",
];

/// A hint for a workload of `kind` whose calls mostly failed with `code`, if there is one.
pub fn unimplemented(code: &str, kind: &str) -> Option<String> {
    if code != "UNIMPLEMENTED" {
        return None;
    }
    match kind {
        "watch" => Some(format!(
            "the target does not serve grpc.health.v1.Health/Watch; drop the watch workloads, or use a library scenario that asks Check alone (scenarios/{}.toml)",
            CHECK_ONLY.join(".toml, scenarios/")
        )),
        "health_check" => Some(
            "the target does not serve grpc.health.v1.Health/Check; wait for it with ready = \"connect\" or \"rpc\" and load it with rpc workloads (docs/scenarios.md#target)".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_check_only_scenarios_ask_check_alone() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for name in super::CHECK_ONLY {
            let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
            let sc: toml::Value = toml::from_str(&text).unwrap();
            let kinds: Vec<String> = sc["phases"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| {
                    p.get("workloads")
                        .and_then(|w| w.as_array())
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|w| w["kind"].as_str().unwrap_or_default().to_string())
                .collect();
            assert!(
                !kinds.is_empty() && kinds.iter().all(|k| *k == "health_check"),
                "{name}: {kinds:?}"
            );
            assert!(sc.get("client").is_none(), "{name} needs a client");
        }
    }
}
