//! `fdsoak trend` over a series of real runs with build labels: clean,
//! clean, leaky, leaky names the third build as the first that regressed
//! and exits 1; clean runs alone exit 0.

use crate::common::*;
use std::process::Command;

fn trend(args: &[&std::path::Path], extra: &[&str]) -> (i32, String, TempDir) {
    let out = TempDir::new("trend-out");
    let o = Command::new(FDSOAK)
        .arg("trend")
        .args(args)
        .args(extra)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text, out)
}

#[test]
fn the_first_leaky_build_is_named_and_the_newest_regression_exits_1() {
    let dir = TempDir::new("trend");
    let sc = fixture(
        &dir,
        "churn-short.toml",
        &[("channel = \"per_call\"", "channel = \"shared\"")],
    );
    let leaky = format!("{FDSOAK} serve --port {{port}} --leak-fd-every 2");
    let mut runs = Vec::new();
    for (label, leak) in [("b1", false), ("b2", false), ("b3", true), ("b4", true)] {
        let mut args = vec!["--label", label];
        if leak {
            args.extend(["--spawn", leaky.as_str()]);
        }
        let r = run(&sc, &args);
        assert_eq!(r.code, i32::from(leak), "{label}: {}", r.context());
        assert_eq!(r.summary().label.as_deref(), Some(label));
        runs.push(r);
    }
    let paths: Vec<&std::path::Path> = runs.iter().map(|r| r.out.path()).collect();

    // Given newest first: ordered by --labels.
    let reversed: Vec<&std::path::Path> = paths.iter().rev().copied().collect();
    let (code, text, out) = trend(&reversed, &["--labels", "b1,b2,b3,b4"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("REGRESSED: the newest build, b4, is worse than b2, the last good build"),
        "{text}"
    );
    assert!(
        text.contains("gate max_growth_per_hour [target] first failed at b3"),
        "{text}"
    );
    assert!(text.contains("target FD growth first regressed at b3"), "{text}");
    // The commits between b2 and b3 are where to look, with the target b3 ran.
    let bisect = format!(
        "to find the commit: fdsoak bisect --good b2 --bad b3 --build '<your build command>' {} --spawn '{leaky}'",
        sc.display()
    );
    assert!(text.contains(&bisect), "{text}");
    assert!(
        !text.contains("first failed at b1") && !text.contains("first failed at b2"),
        "{text}"
    );
    let md = std::fs::read_to_string(out.path().join("trend.md")).unwrap();
    assert!(md.contains("| b1 | b2 | b3 | b4 |") && md.contains("▲"), "{md}");
    let html = std::fs::read_to_string(out.path().join("trend.html")).unwrap();
    assert!(html.contains("<th>b3</th>") && html.contains("class=\"up\""), "{html}");
    // Charted per metric, builds on the x axis, the regressed builds marked; drawn and zoomed in a real browser.
    let page = crate::html::chart_data(&html);
    let growth = page["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "FD growth")
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(growth["x_labels"], serde_json::json!(["b1", "b2", "b3", "b4"]));
    assert_eq!(
        growth["events"]["regressed"],
        serde_json::json!([2000, 1000]),
        "b3 and b4"
    );
    if let Some(r) = crate::html::drive(&out.path().join("trend.html"), false) {
        assert_eq!(r["errors"], serde_json::json!([]), "{r}");
        assert_eq!(r["requests"], serde_json::json!([]), "{r}");
        assert!(r["charts"].as_array().unwrap().len() >= 4, "{r}");
        assert!(r["zoomed"]["x"][1].as_f64().unwrap() < 3.0, "{r}");
    }

    // By start time when no order is given: the same history.
    let (code, text, _) = trend(&reversed, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("first failed at b3"), "{text}");

    // Clean builds only: nothing regressed (a glob works too).
    let (code, text, _) = trend(&paths[..2], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("the newest build, b2, did not regress"), "{text}");
    assert!(
        !text.contains("first regressed") && !text.contains("first failed") && !text.contains("fdsoak bisect"),
        "{text}"
    );

    // A label missing from --labels, and a single report, are usage errors.
    let (code, text, _) = trend(&paths, &["--labels", "b1,b2"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("\"b3\""), "{text}");
    let (code, _, _) = trend(&paths[..1], &[]);
    assert_eq!(code, 2);
}

#[test]
fn reports_of_other_scenarios_are_their_own_histories_and_globs_expand() {
    let dir = TempDir::new("trend-groups");
    let a = fixture(&dir, "churn-short.toml", &[("duration = \"5s\"", "duration = \"1s\"")]);
    let b = dir.write(
        "other.toml",
        &std::fs::read_to_string(&a)
            .unwrap()
            .replace("name = \"churn-short\"", "name = \"other\""),
    );
    let root = TempDir::new("trend-root");
    for (i, sc) in [&a, &a, &b, &b].iter().enumerate() {
        let out = root.path().join(format!("nightly-{i}"));
        let o = Command::new(FDSOAK)
            .arg("run")
            .arg(sc)
            .args(["-q", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
    }
    let pattern = root.path().join("nightly-*");
    let (code, text, _) = trend(&[pattern.as_path()], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("churn-short (2 builds)") && text.contains("other (2 builds)"),
        "{text}"
    );
}
