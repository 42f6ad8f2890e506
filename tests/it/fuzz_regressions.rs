//! Every input the fuzzers ever crashed on (`fuzz/regressions/<target>/`),
//! replayed through the same entry points the fuzz targets call. A crash
//! here is a panic, which fails the test.

use crate::common::repo;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = repo(&format!("fuzz/regressions/{target}"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn scenario_inputs_that_once_crashed() {
    assert!(replay("scenario", fdsoak::fuzzing::scenario) > 0);
}

#[test]
fn summary_inputs_that_once_crashed() {
    assert!(replay("summary", fdsoak::fuzzing::summary) > 0);
}

#[test]
fn csv_inputs_that_once_crashed() {
    assert!(replay("csv", fdsoak::fuzzing::csv) > 0);
}

#[test]
fn metrics_inputs_that_once_crashed() {
    assert!(replay("metrics", fdsoak::fuzzing::metrics) > 0);
}

#[test]
fn origin_table_inputs_that_once_crashed() {
    assert!(replay("origin", fdsoak::fuzzing::origin_table) > 0);
}

#[test]
fn h2_inputs_that_once_crashed() {
    assert!(replay("h2", fdsoak::fuzzing::h2_frames) > 0);
}
