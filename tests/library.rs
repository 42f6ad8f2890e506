//! The scenario library against the clean built-in target, in-process: every
//! scenario passes, with the origin agents in the target and the kernel
//! ledger on (`--origin`) as without them (`scripts/clean-repeat.sh` runs them without), and fdsoak's
//! own descriptor count is back at its baseline after each one, faults and
//! all (kernel faults too, as root). One test in this file, so no other test shares the process.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_library_scenario_passes_against_the_clean_target_and_leaves_no_fd_behind() {
    let library = [
        "health-storm-fresh-channels",
        "abrupt-client-death",
        "half-open",
        "goaway-churn",
        "outage-retry-storm",
        "exhaustion-recovery",
        "chatbot-streams",
    ];
    // Kernel faults need CAP_NET_ADMIN and nft (CI runs as root, with nftables installed).
    let kernel = rustix::process::geteuid().is_root();
    let library = library.into_iter().chain(kernel.then_some("backend-link-flap"));
    let mut baseline = None;
    for name in library {
        let path = repo(&format!("scenarios/{name}.toml"));
        let out = TempDir::new(name);
        // The agents are guests: a clean target stays clean with them.
        let outcome = run_in_process_with(&path, &out, |sc| sc.origin.enabled = true).await;
        let findings: Vec<&str> = outcome.summary.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(outcome.verdict.as_str(), "pass", "{name}: {findings:#?}");
        let origin = outcome.summary.origin.as_ref().expect("origins were on");
        assert!(
            origin.agents.contains(&fdsoak::domain::Role::Target),
            "{name}: {origin:?}"
        );
        // As root, the kernel ledger watched it too (its programs and maps are descriptors
        // of this process's, counted below).
        if rustix::process::geteuid().is_root() {
            assert!(
                origin.kernel.contains(&fdsoak::domain::Role::Target),
                "{name}: {origin:?}"
            );
        }
        if name == "exhaustion-recovery" {
            // The built-in target logs each failed accept: its own words, told with what it held.
            let said = &outcome.summary.output;
            let target = said.iter().find(|o| o.role == fdsoak::domain::Role::Target);
            let e = target.and_then(|o| o.exhaustion.as_ref());
            let e = e.unwrap_or_else(|| panic!("{name}: no complaint of exhaustion in {said:?}"));
            let flood = outcome.summary.phases.iter().find(|p| p.name == "flood").unwrap();
            assert!(e.count >= 1 && e.words == "Too many open files", "{e:?}");
            assert!(
                (flood.start_secs - 0.5..=flood.end_secs).contains(&e.first_at_secs),
                "first in the flood: {e:?} {flood:?}"
            );
            assert_eq!(e.limit, Some(256), "{e:?}");
        }
        // The first run creates process-wide state that lives on by design; count from after it.
        match baseline {
            None => baseline = Some(own_fds()),
            Some(b) => settle_to(b, &format!("after {name}")).await,
        }
    }
}
