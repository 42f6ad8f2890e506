//! Scenario text → parse, validate and plan, as `fdsoak validate` and `fdsoak run` do.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::scenario(data);
});
