//! samples.csv and throughput.csv text → read, merge and chart, as `fdsoak merge` and `report` do.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::csv(data);
});
