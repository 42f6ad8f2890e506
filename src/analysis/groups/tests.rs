use super::*;
use std::sync::Arc;

fn key(kind: GroupKind, what: &str) -> GroupKey {
    GroupKey {
        kind,
        what: what.into(),
    }
}

fn fp(groups: &[(GroupKind, &str, u64)]) -> Fingerprint {
    Arc::new(groups.iter().map(|(k, w, n)| (key(*k, w), *n)).collect())
}

const LOG: &str = "/var/log/app.log";
const CHURN: &str = "ESTABLISHED from clients of :50051";

/// Feeds a baseline, then `load` fingerprints, then the end (after the drain).
fn track(base: Fingerprint, load: &[Fingerprint], end: Fingerprint) -> Vec<GroupChange> {
    let mut t = GroupTracker::default();
    t.observe(0, false, 10, &base);
    for f in load {
        t.observe(1, true, 20, f);
    }
    t.observe(2, false, 15, &end);
    t.changes()
}

#[test]
fn a_file_handle_piling_up_one_by_one_is_steady_and_named() {
    let load: Vec<Fingerprint> = [0, 1, 1, 2, 2, 3]
        .iter()
        .map(|n| fp(&[(GroupKind::File, LOG, *n)]))
        .collect();
    let c = track(fp(&[]), &load, fp(&[(GroupKind::File, LOG, 3)]));
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].baseline, c[0].end, c[0].change, c[0].steady), (0, 3, 3, true));
    assert_eq!(c[0].cause(), Some("a file opened per request"));
    assert_eq!(c[0].to_string(), "+3 × /var/log/app.log");
}

#[test]
fn churn_that_returns_to_baseline_is_never_steady() {
    // Connections come and go through the load, and the drain brings them back to baseline.
    for seed in 0..200u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let load: Vec<Fingerprint> = (0..12)
            .map(|_| fp(&[(GroupKind::Tcp, CHURN, rng.u64(0..40))]))
            .collect();
        let c = track(
            fp(&[(GroupKind::Tcp, CHURN, 1)]),
            &load,
            fp(&[(GroupKind::Tcp, CHURN, 1)]),
        );
        assert!(c.is_empty(), "seed {seed}: {c:?}");
    }
}

#[test]
fn a_group_that_falls_during_load_or_jumps_once_is_not_steady() {
    let t = |n: u64| fp(&[(GroupKind::Tcp, CHURN, n)]);
    // Rose, fell, rose again: churn that happened to end high.
    let c = track(t(0), &[t(2), t(1), t(3), t(4)], t(4));
    assert!(!c[0].steady, "{c:?}");
    // A pool opened once at the start of the load and kept: one step.
    let c = track(t(0), &[t(8), t(8), t(8)], t(8));
    assert_eq!(c[0].change, 8);
    assert!(!c[0].steady, "{c:?}");
    // Grew steadily, then the drain released it.
    let c = track(t(0), &[t(1), t(2), t(3)], t(0));
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn groups_are_largest_first_with_peak_and_causes() {
    let base = fp(&[(GroupKind::Tcp, "LISTEN on :50051", 1)]);
    let mid = fp(&[
        (GroupKind::Tcp, "LISTEN on :50051", 1),
        (GroupKind::Tcp, "CLOSE_WAIT from clients of :50051", 300),
        (GroupKind::Anon, "eventfd", 4),
    ]);
    let end = fp(&[
        (GroupKind::Tcp, "LISTEN on :50051", 1),
        (GroupKind::Tcp, "CLOSE_WAIT from clients of :50051", 290),
        (GroupKind::File, "/tmp/cache.db", 12),
    ]);
    let mut t = GroupTracker::default();
    t.observe(0, false, 10, &base);
    t.observe(1, true, 400, &mid);
    t.observe(2, false, 310, &end);
    let c = t.changes();
    let names: Vec<String> = c.iter().map(|g| g.to_string()).collect();
    assert_eq!(
        names,
        [
            "+290 TCP sockets CLOSE_WAIT from clients of :50051",
            "+12 × /tmp/cache.db"
        ]
    );
    assert_eq!(c[0].peak, 300);
    assert_eq!(
        mostly(&c),
        "; mostly +290 TCP sockets CLOSE_WAIT from clients of :50051, +12 × /tmp/cache.db: \
         likely accepted connections never closed after the peer left"
    );
}

#[test]
fn causes_name_only_unmistakable_shapes() {
    let g = |kind, what: &str, change| GroupChange {
        origins: Vec::new(),
        kind,
        what: what.into(),
        baseline: 0,
        peak: 0,
        end: change as u64,
        change,
        steady: false,
    };
    let dial = g(
        GroupKind::Tcp,
        "ESTABLISHED to 127.0.0.1:8980 from an ephemeral port",
        300,
    );
    assert_eq!(
        dial.cause(),
        Some("a client that opens channels and does not close them")
    );
    assert_eq!(g(GroupKind::Tcp, CHURN, 30).cause(), None);
    assert_eq!(g(GroupKind::File, LOG, 1).cause(), None, "one file is not a pattern");
    assert_eq!(
        g(GroupKind::Anon, "eventfd", 18).to_string(),
        "+18 anon_inode:[eventfd]"
    );
    assert_eq!(mostly(&[]), "");
}

#[test]
fn a_counted_stack_says_how_many_it_opened_closed_and_kept() {
    let stack = Stack {
        frames: vec![crate::domain::Frame {
            function: "main.leakSome".into(),
            file: "main.go".into(),
            line: 61,
            library: false,
        }],
        via: OriginVia::Opened,
        source: crate::domain::OriginSource::Kernel,
    };
    let mut o = Origin {
        count: 24,
        opened: Some(4812),
        still_open: Some(24),
        channels: None,
        stack,
    };
    assert_eq!(
        o.sentence(),
        "24 at main.go:61 in main.leakSome: opened 4,812, closed 4,788, 24 still open"
    );
    o.opened = None;
    assert_eq!(o.sentence(), "24 at main.go:61 in main.leakSome");
    o.stack.via = OriginVia::Channel;
    o.channels = Some(crate::domain::ChannelTally {
        target: "127.0.0.1:9".into(),
        created: 1168,
        closed: 1000,
        still_open: 168,
    });
    assert_eq!(
        o.sentence(),
        "channels to it created at main.go:61 in main.leakSome: created 1,168, closed 1,000, 168 still open"
    );
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000_000), "1,000,000");
}
