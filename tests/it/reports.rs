//! Report outputs: snapshots of the CI files rendered from fixed reports,
//! compare and merge through the real binary, and the JSON Schema checked
//! against real output.

use crate::common::*;
use fdsoak::compare::{compare, Format, Tolerances};
use fdsoak::report::Exporter;
use fdsoak::scenario::{HealthCheck, Load, Pacing, Watch};
use std::path::Path;
use std::process::Command;

fn fixture_report(name: &str) -> (fdsoak::report::model::Summary, std::path::PathBuf) {
    let dir = repo(&format!("tests/fixtures/reports/{name}"));
    (fdsoak::report::json::read(&dir.join("summary.json")).unwrap(), dir)
}

/// Compares `actual` with the insta snapshot tests/snapshots/<name>.snap
/// (`cargo insta review`, or INSTA_UPDATE=always, to accept a change).
fn snapshot(name: &str, actual: &str) {
    insta::with_settings!({snapshot_path => repo("tests/snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, actual);
    });
}

fn render(e: &dyn Exporter, report: &str) -> String {
    let (s, dir) = fixture_report(report);
    String::from_utf8(e.render(&s, &dir).unwrap()).unwrap()
}

#[test]
fn summary_md_snapshots() {
    snapshot(
        "leaky.summary.md",
        &render(&fdsoak::report::markdown::Markdown, "leaky"),
    );
    snapshot(
        "clean.summary.md",
        &render(&fdsoak::report::markdown::Markdown, "clean"),
    );
}

#[test]
fn junit_xml_snapshots() {
    let xml = render(&fdsoak::report::junit::Junit, "leaky");
    assert!(xml.contains("failures=\"5\""), "{xml}");
    snapshot("leaky.junit.xml", &xml);
    snapshot("clean.junit.xml", &render(&fdsoak::report::junit::Junit, "clean"));
}

#[test]
fn compare_table_snapshots() {
    let (clean, _) = fixture_report("clean");
    let (leaky, _) = fixture_report("leaky");
    let c = compare(&clean, &leaky, "clean", "leaky", &Tolerances::default()).unwrap();
    assert!(c.regressed);
    snapshot("compare.clean-leaky.txt", &c.render(Format::Terminal).unwrap());
    snapshot("compare.clean-leaky.md", &c.render(Format::Markdown).unwrap());
    let same = compare(&clean, &clean, "clean", "clean", &Tolerances::default()).unwrap();
    assert!(!same.regressed, "a report compared with itself never regresses");
}

fn fdsoak(args: &[&str]) -> std::process::Output {
    Command::new(FDSOAK).args(args).output().unwrap()
}

#[test]
fn compare_exits_1_on_a_leak_and_0_otherwise() {
    let clean = repo("tests/fixtures/reports/clean");
    let leaky = repo("tests/fixtures/reports/leaky");
    let o = fdsoak(&["compare", clean.to_str().unwrap(), leaky.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("REGRESSION"));
    // The reverse is an improvement, not a regression.
    let o = fdsoak(&[
        "compare",
        leaky.to_str().unwrap(),
        clean.join("summary.json").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["regressed"], false);
}

#[test]
fn compare_refuses_an_incompatible_schema_version() {
    let dir = TempDir::new("schema");
    let text = std::fs::read_to_string(repo("tests/fixtures/reports/clean/summary.json")).unwrap();
    let newer = dir.write(
        "summary.json",
        &text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
    );
    let o = fdsoak(&[
        "compare",
        repo("tests/fixtures/reports/clean").to_str().unwrap(),
        newer.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("schema_version 99, this fdsoak reads 1"), "{err}");
}

#[test]
fn two_clean_runs_of_the_same_build_never_compare_as_a_regression() {
    let dir = TempDir::new("clean-runs");
    let s = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"per_call\"\n  max_in_flight = 50")],
    );
    let runs: Vec<RunResult> = (0..3).map(|_| run(&s, &[])).collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.context());
    }
    assert_no_regression_between(&runs);
}

#[test]
fn merge_adds_histograms_and_keeps_every_driver() {
    let out = TempDir::new("merge");
    let clean = repo("tests/fixtures/reports/clean");
    let leaky = repo("tests/fixtures/reports/leaky");
    let o = fdsoak(&[
        "merge",
        clean.to_str().unwrap(),
        leaky.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = fdsoak::report::json::read(&out.path().join("summary.json")).unwrap();
    let (a, _) = fixture_report("clean");
    let (b, _) = fixture_report("leaky");
    for w in &merged.workloads {
        let find = |s: &fdsoak::report::model::Summary| {
            s.workloads
                .iter()
                .find(|x| x.phase == w.phase && x.name == w.name)
                .unwrap()
                .clone()
        };
        let (wa, wb) = (find(&a), find(&b));
        assert_eq!(
            w.histogram().unwrap().len(),
            wa.histogram().unwrap().len() + wb.histogram().unwrap().len()
        );
        assert_eq!(w.latency.count, wa.latency.count + wb.latency.count);
        assert_eq!(w.ok, wa.ok + wb.ok);
        assert!((w.achieved_rate - (wa.achieved_rate + wb.achieved_rate)).abs() < 1e-9);
    }
    let drivers: Vec<i32> = merged
        .processes
        .iter()
        .filter(|p| p.role.as_str() == "driver")
        .map(|p| p.pid)
        .collect();
    assert_eq!(drivers.len(), 2);
    let rows = samples(out.path());
    for pid in drivers {
        assert!(
            rows.iter().any(|r| r.role.as_str() == "driver" && r.pid == pid),
            "driver {pid} keeps its FD series"
        );
    }
    // The target's figures come from the first report (here the clean one); gates are evaluated again.
    assert_eq!(merged.verdict.as_str(), "pass");
    assert_eq!(merged.processes[0].pid, a.processes[0].pid);
    assert_eq!(merged.merged_from.len(), 2);
}

fn validate_with_schema(files: &[&Path]) {
    let script = "import json,sys,jsonschema\nschema=json.load(open(sys.argv[1]))\nfor f in sys.argv[2:]:\n    jsonschema.validate(json.load(open(f)), schema)\n";
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(repo("schema/summary.schema.json"))
        .args(files)
        .output()
        .expect("python3 with the jsonschema package is needed (.ci/run installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn real_output_validates_against_the_json_schema() {
    let dir = TempDir::new("schema-run");
    let s = fixture(&dir, "churn-short.toml", &[("duration = \"5s\"", "duration = \"2s\"")]);
    let r = run(&s, &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let fresh = r.out.path().join("summary.json");
    validate_with_schema(&[&fresh, &repo("tests/fixtures/reports/leaky/summary.json")]);
    // What the run used, defaults filled in.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
    let resolved = &json["scenario"]["resolved"];
    assert_eq!(resolved["target"]["ready_timeout"], "15s", "{resolved:#}");
    let w = &resolved["phases"][1]["workloads"][0];
    assert_eq!(w["deadline"], "1s", "{w:#}");
    assert_eq!(
        (w["max_in_flight"].as_u64(), w["max_error_rate"].as_f64()),
        (Some(1000), Some(0.01)),
        "{w:#}"
    );
    // And the schema is not vacuous: a report with a bad verdict fails it.
    let bad = dir.write(
        "bad.json",
        &std::fs::read_to_string(&fresh)
            .unwrap()
            .replacen("\"verdict\": \"pass\"", "\"verdict\": \"maybe\"", 1),
    );
    let o = Command::new("python3")
        .args(["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))"])
        .arg(repo("schema/summary.schema.json"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
}

fn with_latency(base: &fdsoak::report::model::Summary, calls: u64, micros: u64) -> fdsoak::report::model::Summary {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut s = base.clone();
    let mut h = fdsoak::metrics::new_histogram();
    for i in 0..calls {
        h.record(micros + i % 100).unwrap();
    }
    let mut bytes = Vec::new();
    hdrhistogram::serialization::V2Serializer::new()
        .serialize(&h, &mut bytes)
        .unwrap();
    let w = &mut s.workloads[0];
    w.histogram_v2 = base64::engine::general_purpose::STANDARD.encode(bytes);
    w.ok = calls;
    s
}

#[test]
fn latency_rules_use_the_stored_distributions() {
    let (clean, _) = fixture_report("clean");
    let t = Tolerances::default();
    let fast = with_latency(&clean, 100_000, 2_000);
    let slow = with_latency(&clean, 100_000, 12_000);
    let c = compare(&fast, &slow, "fast", "slow", &t).unwrap();
    let regressed: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.regressed)
        .map(|r| r.metric.as_str())
        .collect();
    assert_eq!(regressed, ["p50", "p99", "p99.9"]);
    // 25% slower is within the default tolerance.
    let a_bit = with_latency(&clean, 100_000, 2_500);
    assert!(!compare(&fast, &a_bit, "fast", "a bit", &t).unwrap().regressed);
    // Too few calls: the tails are not judged, however they look.
    let (few_fast, few_slow) = (with_latency(&clean, 100, 2_000), with_latency(&clean, 100, 12_000));
    let c = compare(&few_fast, &few_slow, "a", "b", &t).unwrap();
    let regressed: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.regressed)
        .map(|r| r.metric.as_str())
        .collect();
    assert_eq!(regressed, ["p50"]);
}

/// The committed schema is the one generated from the report model;
/// FDSOAK_UPDATE_SCHEMA=1 rewrites it after an intended model change.
#[test]
fn the_committed_schema_is_generated_from_the_model() {
    committed_is_generated("schema/summary.schema.json", &fdsoak::report::model::json_schema());
}

/// The committed schema at `file` is `generated`; FDSOAK_UPDATE_SCHEMA=1 writes it first.
fn committed_is_generated(file: &str, generated: &serde_json::Value) -> std::path::PathBuf {
    let generated = serde_json::to_string_pretty(generated).unwrap() + "\n";
    let path = repo(file);
    if std::env::var_os("FDSOAK_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "{file} is stale: rerun with FDSOAK_UPDATE_SCHEMA=1 and review the diff"
    );
    path
}

/// Every key with a default reads as that default, never `null`, in `resolved`.
#[test]
fn resolved_holds_every_default_of_every_library_scenario() {
    for entry in std::fs::read_dir(repo("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let sc = fdsoak::scenario::read_file(&path).unwrap().resolved();
        let name = path.display();
        assert!(sc.target.ready_timeout.is_some(), "{name}");
        assert!(sc.sampler.checkpoint.is_some(), "{name}");
        for w in sc.phases.iter().flat_map(|p| &p.workloads) {
            assert!(w.deadline.is_some() && w.max_error_rate.is_some(), "{name}: {w:?}");
            if let Some(Pacing::Rate { max_in_flight, .. }) = w.calls().map(|c| c.pacing) {
                assert!(max_in_flight.is_some(), "{name}: {w:?}");
            }
            match &w.load {
                Load::HealthCheck(HealthCheck { service, .. }) | Load::Watch(Watch { service, .. }) => {
                    assert!(service.is_some(), "{name}: {w:?}")
                }
                Load::Rpc(_) => {}
            }
            if w.keepalive_interval.is_some() {
                assert!(w.keepalive_timeout.is_some(), "{name}: {w:?}");
            }
        }
        // A resolved scenario is itself a valid scenario.
        let text = toml::to_string(&sc).unwrap();
        let again = fdsoak::scenario::parse(&path, &text);
        assert!(again.is_ok(), "{name}: {again:?}\n{text}");
    }
}

/// The scenario schema, too, is the one generated from the model; every library scenario
/// names it for editors (taplo's `#:schema`), and check-jsonschema holds each to it and
/// refuses a misspelled key.
#[test]
fn the_scenario_schema_is_generated_from_the_model_and_holds_every_library_scenario() {
    let path = committed_is_generated("schema/scenario.schema.json", &fdsoak::scenario::json_schema());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo("scenarios")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.starts_with("#:schema ../schema/scenario.schema.json\n"),
                "{} does not name the schema on its first line",
                p.display()
            );
            files.push(p);
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    if std::process::Command::new("check-jsonschema")
        .arg("--version")
        .output()
        .is_err()
    {
        tool_missing("check-jsonschema", ".ci/run installs it with pip");
        return;
    }
    let check = |files: &[std::path::PathBuf]| {
        std::process::Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&path)
            .args(files)
            .output()
            .unwrap()
    };
    let o = check(&files);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let dir = TempDir::new("scenario-schema");
    let quick = std::fs::read_to_string(repo("scenarios/quickstart.toml")).unwrap();
    let typo = dir.write(
        "typo.toml",
        &quick.replacen("[sampler]", "[sampler]\nintervall = \"1s\"", 1),
    );
    let o = check(&[typo]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success() && out.contains("intervall"), "{out}");
}
