//! The kernel ledger leaves nothing behind: its programs belong to fdsoak's
//! descriptors, so they are gone when a run ends, after Ctrl-C (with the
//! report written) and after fdsoak is killed outright. Counted across the
//! whole machine, so this file holds one test and no other test runs
//! beside it.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_ledgers_programs_go_when_a_run_ends_is_interrupted_or_is_killed() {
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (to load eBPF)", "CI runs the tests as root");
        return;
    }
    let dir = TempDir::new("kernel-cleanup");
    let sc = dir.write(
        "long.toml",
        "name = \"long\"\n[origin]\nenabled = true\n[[phases]]\nname = \"load\"\nduration = \"60s\"\n  [[phases.workloads]]\n  kind = \"health_check\"\n  rate = 20\n",
    );
    let gone = |what: &str| {
        wait_until(Duration::from_secs(10), what, || {
            fdsoak::origin::kernel::programs_loaded() == 0
        })
    };
    // Any other process's runs (an earlier test binary's last one) end first.
    gone("no ledger programs before the test");
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let out = dir.path().join(format!("report-{signal}"));
        let mut child = Command::new(FDSOAK)
            .arg("run")
            .arg(&sc)
            .args(["-q", "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Underway: the ledger loaded and the first samples written.
        wait_until(Duration::from_secs(20), "the ledger's programs loaded", || {
            fdsoak::origin::kernel::programs_loaded() == fdsoak::origin::kernel::PROGRAMS
                && out.join("samples.csv").exists()
        });
        // SAFETY: a signal to the child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        wait_exit(&mut child, Duration::from_secs(20));
        gone(&format!("the programs gone after signal {signal}"));
        if signal == libc::SIGINT {
            assert!(
                out.join("summary.json").exists(),
                "the interrupted run wrote its report"
            );
        }
    }
    // And a run that ends on its own.
    let short = dir.write(
        "short.toml",
        "name = \"short\"\n[origin]\nenabled = true\n[[phases]]\nname = \"load\"\nduration = \"1s\"\n",
    );
    let r = run(&short, &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    gone("the programs gone after a run");
}
