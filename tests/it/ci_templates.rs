//! The CI templates, checked offline with the tools `.ci/run` installs from
//! PyPI: `check-jsonschema` with its bundled GitHub Action, GitHub workflow
//! and GitLab CI schemas, and actionlint on the nightly workflow and on a
//! workflow that uses the action from its own directory. Each check is shown
//! to fail on a broken copy. Skipped, saying so, where the tools are missing.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        tool_missing(name, ".ci/run installs it");
    }
    found
}

/// Runs `cmd args…` in `dir`; its success, and what it printed.
fn check(dir: &Path, cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).current_dir(dir).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of `file` with `from` replaced by `to`, written into `dir` as `name`.
fn broken(dir: &TempDir, file: &str, name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(repo(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    dir.write(name, &text.replacen(from, to, 1)).display().to_string()
}

#[test]
fn the_ci_templates_pass_their_schemas_and_a_broken_one_fails() {
    if !tool("check-jsonschema") {
        return;
    }
    let root = repo("");
    for (schema, file) in [
        ("vendor.github-actions", "action.yml"),
        ("vendor.github-workflows", "ci/github/nightly.yml"),
        ("vendor.gitlab-ci", "ci/gitlab/fdsoak.gitlab-ci.yml"),
    ] {
        let (ok, text) = check(&root, "check-jsonschema", &["--builtin-schema", schema, file]);
        assert!(ok, "{file}: {text}");
    }
    let dir = TempDir::new("ci-broken");
    for (schema, file, from, to) in [
        (
            "vendor.github-actions",
            "action.yml",
            "using: composite",
            "using: compositee",
        ),
        (
            "vendor.github-workflows",
            "ci/github/nightly.yml",
            "runs-on: ubuntu-latest",
            "runs_on: ubuntu-latest",
        ),
        (
            "vendor.gitlab-ci",
            "ci/gitlab/fdsoak.gitlab-ci.yml",
            "- if: $CI_PIPELINE_SOURCE",
            "- iff: $CI_PIPELINE_SOURCE",
        ),
    ] {
        let copy = broken(&dir, file, &file.replace('/', "-"), from, to);
        let (ok, text) = check(dir.path(), "check-jsonschema", &["--builtin-schema", schema, &copy]);
        assert!(!ok, "a broken {file} passed: {text}");
    }
}

#[test]
fn actionlint_passes_the_workflows_and_catches_a_wrong_input_to_the_action() {
    if !tool("actionlint") {
        return;
    }
    let (ok, text) = check(&repo(""), "actionlint", &["ci/github/nightly.yml"]);
    assert!(ok, "{text}");
    // A repository holding the action, and a workflow using it from there.
    let dir = TempDir::new("ci-actionlint");
    std::fs::copy(repo("action.yml"), dir.path().join("action.yml")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    let workflow = |input: &str| {
        format!(
            "name: t\non: push\njobs:\n  soak:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./\n        with:\n          {input}: scenarios/quickstart.toml\n"
        )
    };
    let file = ".github/workflows/soak.yml";
    std::fs::write(dir.path().join(file), workflow("scenario")).unwrap();
    let (ok, text) = check(dir.path(), "actionlint", &[file]);
    assert!(ok, "{text}");
    std::fs::write(dir.path().join(file), workflow("scenaro")).unwrap();
    let (ok, text) = check(dir.path(), "actionlint", &[file]);
    assert!(!ok && text.contains("scenaro"), "{text}");
}
