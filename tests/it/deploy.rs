//! The Kubernetes manifests in `deploy/k8s/` stay valid and true to the code:
//! each validates offline against the Kubernetes 1.30 schemas with
//! `kubernetes-validate` (PyPI; `.ci/run` installs it), strictly, and the
//! scenarios they carry pass `fdsoak validate`.

use crate::common::*;
use std::process::Command;

const KUBERNETES: &str = "1.30.0";

fn manifests() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn validate(files: &[std::path::PathBuf]) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "-k", KUBERNETES, "--strict", "--quiet"])
        .args(files)
        .output()
        .expect("python3")
}

#[test]
fn the_manifests_validate_offline_and_a_broken_one_does_not() {
    let files = manifests();
    assert!(files.len() >= 5, "{files:?}");
    let o = validate(&files);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("No module named"),
        "kubernetes-validate is not installed: python3 -m pip install kubernetes-validate (.ci/run does)"
    );
    assert!(o.status.success(), "{}{err}", String::from_utf8_lossy(&o.stdout));
    // The validator rejects a misspelt field, so a pass above means something.
    let dir = TempDir::new("k8s");
    let job = std::fs::read_to_string(repo("deploy/k8s/drivers-indexed-job.yaml")).unwrap();
    let bad = dir.write(
        "bad.yaml",
        &job.replace("completionMode: Indexed", "completionMod: Indexed"),
    );
    assert!(!validate(&[bad]).status.success());
}

#[test]
fn the_scenarios_in_the_manifests_are_valid() {
    let dir = TempDir::new("k8s-scenarios");
    let script = "import sys, yaml\nfor key, text in yaml.safe_load(open(sys.argv[1]))['data'].items():\n    open(sys.argv[2] + '/' + key, 'w').write(text)\n";
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(repo("deploy/k8s/scenario-configmap.yaml"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["gate.toml", "soak.toml"] {
        let o = Command::new(FDSOAK)
            .arg("validate")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    }
}
