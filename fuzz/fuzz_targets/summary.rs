//! summary.json text → read, compare with itself and a fixture, render every format.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::summary(data);
});
