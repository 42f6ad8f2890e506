//! The docs and the code name the same flags and keys, both ways: every
//! `--flag` the pages name exists in `fdsoak --help` (or belongs to a tool
//! the pages name beside it), every key a key table or a TOML example names
//! is in the scenario model, and every flag and every scenario key is
//! documented somewhere in `docs/`.

use crate::common::repo;
use clap::CommandFactory;
use std::collections::BTreeSet;

/// Flags of other tools that the pages show in their own commands.
const FOREIGN_FLAGS: &[&str] = &[
    "--release",                         // cargo run --release
    "--locked",                          // cargo test --locked
    "--short",                           // git rev-parse --short
    "--from-literal",                    // kubectl create configmap --from-literal
    "--dry-run",                         // kubectl apply --dry-run
    "--for",                             // kubectl wait --for
    "--timeout",                         // kubectl wait --timeout
    "--strict",                          // kubernetes-validate --strict
    "--tool",                            // valgrind --tool=callgrind
    "--prefix",                          // npm ci --prefix
    "--bench",                           // cargo bench --bench report
    "--quick",                           // bench/run --quick
    "--only",                            // bench/run --only=SECTION
    "--config",                          // containerd --config
    "--bin",                             // cargo build --bin
    "--test",                            // cargo test --test it
    "--perf-basic-prof",                 // node: V8 writes its perf map
    "--interpreted-frames-native-stack", // node: a frame per interpreted function
    "--require",                         // node: the grpc-js channel ledger's script
];

/// Every page a user reads: the front door and `docs/`.
fn pages() -> Vec<(String, String)> {
    let mut out = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(repo("README.md")).unwrap(),
    )];
    for entry in std::fs::read_dir(repo("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Every long and short flag of every subcommand, as written on a command line.
fn cli_flags() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                out.insert(format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                out.insert(format!("-{short}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out: BTreeSet<String> = ["--help", "-h", "--version", "-V"].map(String::from).into();
    walk(&fdsoak::cli::Cli::command(), &mut out);
    out
}

/// Every property name anywhere in the scenario model's JSON schema.
fn model_keys() -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(fdsoak::scenario::Scenario)).unwrap();
    let mut out = BTreeSet::new();
    walk(&schema, &mut out);
    out
}

/// `--flags` named in code spans and code blocks.
fn doc_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut code = String::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            code.push_str(line);
            code.push('\n');
        } else {
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 1 {
                    code.push_str(span);
                    code.push('\n');
                }
            }
        }
    }
    for (at, _) in code.match_indices("--") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = code[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        // `--tol-*` names a family of flags, checked one by one where the page lists them.
        let family = code[at + 2 + name.len()..].starts_with('*');
        if !family && name.len() > 1 && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            out.insert(format!("--{}", name.trim_end_matches('-')));
        }
    }
    out
}

/// Keys in the first column of key tables (`| key | …`) and in TOML examples.
fn doc_keys(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut key_table = false;
    let mut toml = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            toml = t.starts_with("```toml");
            continue;
        }
        if toml {
            let t = t.trim_start_matches('[').trim_end_matches(']');
            if let Some((k, _)) = t.split_once('=') {
                out.insert(k.trim().to_string());
            } else if !t.is_empty()
                && !t.starts_with('#')
                && t.chars().all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
            {
                out.extend(t.rsplit('.').next().map(str::to_string));
            }
            continue;
        }
        if !t.starts_with('|') {
            key_table = false;
            continue;
        }
        let first = t.trim_matches('|').split('|').next().unwrap_or("").trim();
        if first == "key" {
            key_table = true;
            continue;
        }
        if key_table {
            for (i, span) in first.split('`').enumerate() {
                let span = span.trim_start_matches('[').trim_end_matches(']');
                if i % 2 == 1 && !span.is_empty() {
                    out.extend(span.rsplit('.').next().map(str::to_string));
                }
            }
        }
    }
    out
}

#[test]
fn every_flag_the_docs_name_exists() {
    let flags = cli_flags();
    let mut wrong = Vec::new();
    for (page, text) in pages() {
        for f in doc_flags(&text) {
            if !flags.contains(&f) && !FOREIGN_FLAGS.contains(&f.as_str()) {
                wrong.push(format!("{page}: {f}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "flags the docs name that fdsoak does not have:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_key_the_docs_name_is_in_the_scenario_model() {
    let keys = model_keys();
    let named: usize = pages().iter().map(|(_, t)| doc_keys(t).len()).sum();
    assert!(
        named > 60,
        "only {named} keys found in the docs' key tables and TOML: is the reader broken?"
    );
    let mut wrong = Vec::new();
    for (page, text) in pages() {
        for k in doc_keys(&text) {
            if !keys.contains(&k) && !["phases", "workloads", "faults", "retry", "fds"].contains(&k.as_str()) {
                wrong.push(format!("{page}: {k}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "keys the docs name that no scenario may hold:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_flag_and_every_scenario_key_is_documented() {
    let docs: Vec<(String, String)> = pages().into_iter().filter(|(p, _)| p.starts_with("docs/")).collect();
    let all: String = docs.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n");
    let spans: BTreeSet<&str> = all.split('`').skip(1).step_by(2).collect();
    let named = |word: &str| {
        spans.iter().any(|s| {
            s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .any(|w| w == word)
        })
    };
    let undocumented_flags: Vec<String> = cli_flags()
        .into_iter()
        .filter(|f| !["--help", "-h", "--version", "-V"].contains(&f.as_str()))
        .filter(|f| !named(f))
        .collect();
    assert!(
        undocumented_flags.is_empty(),
        "flags in --help that no page of docs/ names: {undocumented_flags:?}"
    );
    let toml_keys: BTreeSet<String> = docs.iter().flat_map(|(_, t)| doc_keys(t)).collect();
    let undocumented_keys: Vec<String> = model_keys()
        .into_iter()
        .filter(|k| !named(k) && !toml_keys.contains(k))
        .collect();
    assert!(
        undocumented_keys.is_empty(),
        "scenario keys that no page of docs/ names: {undocumented_keys:?}"
    );
}

/// The default column of `docs/scenarios.md`'s row for `key` in the table
/// that the reference names `table` (`### `[table]``, or the retry policy's
/// paragraph).
fn documented_default(page: &str, table: &str, key: &str) -> Option<String> {
    let heading = match table {
        "workloads" => "### `[[phases.workloads]]`".to_string(),
        "retry" => "**Retries** (`[phases.workloads.retry]`".to_string(),
        _ => format!("### `[{table}]`"),
    };
    let section = page.split(&heading).nth(1)?.split("\n### ").next()?;
    let mut rows = section.lines().filter(|l| l.starts_with('|'));
    let header: Vec<&str> = rows.next()?.split('|').map(str::trim).collect();
    let col = header.iter().position(|c| *c == "default")?;
    let row = rows.find(|l| l.starts_with(&format!("| `{key}` |")))?;
    row.split('|').map(str::trim).nth(col).map(str::to_string)
}

/// `docs/scenarios.md` shows each default as `scenario::defaults` renders it
/// from the value, and the code's types take those values.
#[test]
fn the_scenario_reference_shows_each_default_the_code_uses() {
    let page = std::fs::read_to_string(repo("docs/scenarios.md")).unwrap();
    let documented = fdsoak::scenario::defaults::documented();
    for (path, shown) in &documented {
        let (table, key) = path.split_once('.').unwrap();
        let doc = documented_default(&page, table, key);
        assert_eq!(
            doc.as_deref(),
            Some(shown.as_str()),
            "docs/scenarios.md, [{table}] {key}"
        );
    }
    // Every gate has its default shown.
    let gates = serde_json::to_value(fdsoak::scenario::Gates::default()).unwrap();
    for key in gates.as_object().unwrap().keys() {
        let path = format!("gates.{key}");
        assert!(documented.iter().any(|(p, _)| *p == path), "{path} is not rendered");
    }
    // And the types take their defaults from there: a scenario that sets nothing optional.
    use fdsoak::scenario::defaults as d;
    let text = "name = \"d\"\n[[phases]]\nname = \"load\"\nduration = \"1s\"\n[[phases.workloads]]\nname = \"w\"\nkind = \"health_check\"\nrate = 1\n[phases.workloads.retry]\nmax_attempts = 2\n";
    let sc = fdsoak::scenario::parse(std::path::Path::new("d.toml"), text).unwrap();
    assert_eq!(sc.sampler.interval, d::SAMPLER_INTERVAL);
    assert_eq!(sc.gates, d::GATES);
    let retry = sc.phases[0].workloads[0].calls().unwrap().retry.clone().unwrap();
    assert_eq!(
        (
            retry.initial_backoff,
            retry.max_backoff,
            retry.backoff_multiplier,
            retry.jitter
        ),
        (d::INITIAL_BACKOFF, d::MAX_BACKOFF, d::BACKOFF_MULTIPLIER, d::JITTER)
    );
    assert_eq!(retry.retryable, d::RETRYABLE);
    let resolved = sc.resolved();
    assert_eq!(resolved.target.ready_timeout, Some(d::READY_TIMEOUT));
    assert_eq!(resolved.phases[0].workloads[0].deadline, Some(d::DEADLINE));
}
