//! The CI templates, checked offline with the tools `.ci/run` installs from
//! PyPI: `check-jsonschema` with its bundled GitHub Action, GitHub workflow
//! and GitLab CI schemas, and actionlint on the nightly workflow and on a
//! workflow that uses the action from its own directory, and on the release
//! workflow. Each check is shown to fail on a broken copy. Skipped, saying
//! so, where the tools are missing. The action's install script is run
//! against a local release directory: the prebuilt binary found and
//! checked, a checksum that does not match refused, and the fallback to a
//! real `cargo install` from source.

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
        ("vendor.github-workflows", ".github/workflows/release.yml"),
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
    for workflow in ["ci/github/nightly.yml", ".github/workflows/release.yml"] {
        let (ok, text) = check(&repo(""), "actionlint", &[workflow]);
        assert!(ok, "{workflow}: {text}");
    }
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

/// The release asset's target for this machine, as install.sh names it.
fn this_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

/// Runs `ci/github/install.sh args…` with `env`; its exit code, standard output and error.
fn install(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let o = Command::new("bash")
        .arg(repo("ci/github/install.sh"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

#[test]
fn the_actions_install_takes_the_released_binary_checks_it_and_falls_back_to_source() {
    let dir = TempDir::new("ci-install");
    // A release directory as the release workflow lays it out: TAG/asset, TAG/asset.sha256.
    let release = dir.path().join("releases");
    let tag = "v9.9.9";
    let packed = Command::new("bash")
        .arg(repo("ci/github/package.sh"))
        .args([tag, this_target(), FDSOAK])
        .arg(release.join(tag))
        .output()
        .unwrap();
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    let url = format!("file://{}", release.display());
    let env = [("FDSOAK_RELEASE_URL", url.as_str())];
    let dest = |name: &str| dir.path().join(name).display().to_string();

    // Found: installed, and it is the fdsoak that was packed.
    let (code, out, err) = install(&["download", tag, &dest("found")], &env);
    assert_eq!((code, out.as_str()), (Some(0), "installed=true\n"), "{err}");
    let v = Command::new(dir.path().join("found/bin/fdsoak"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("fdsoak "), "{v:?}");

    // No asset for this version, or a ref that is no version: build from source instead.
    for version in ["v9.9.8", "main", "source", ""] {
        let (code, out, err) = install(&["download", version, &dest("none")], &env);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "installed=false\n"),
            "{version:?}: {err}"
        );
    }
    assert!(!dir.path().join("none").exists());

    // A checksum that does not match: refused, nothing installed, no fallback.
    let sums = release
        .join(tag)
        .join(format!("fdsoak-{tag}-{}.tar.gz.sha256", this_target()));
    let text = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, format!("{}{}", "0".repeat(64), &text[64..])).unwrap();
    let (code, out, err) = install(&["download", tag, &dest("tampered")], &env);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("does not match its checksum") && out.is_empty(),
        "{out}{err}"
    );
    assert!(!dir.path().join("tampered/bin/fdsoak").exists());

    // The fallback: a real cargo install, here of a one-file crate standing in for the source.
    let src = dir.path().join("source");
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"fdsoak\"\nversion = \"0.0.1\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        src.join("src/main.rs"),
        "fn main() { println!(\"built from source\"); }\n",
    )
    .unwrap();
    let lock = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(&src)
        .status();
    assert!(lock.unwrap().success());
    let src_env = [("FDSOAK_ACTION_PATH", src.to_str().unwrap())];
    let (code, out, err) = install(&["source", &dest("built")], &src_env);
    assert_eq!(code, Some(0), "{out}{err}");
    let o = Command::new(dir.path().join("built/bin/fdsoak")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "built from source\n");
}
