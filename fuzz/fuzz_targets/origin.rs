//! An origin agent's table, as the process under test wrote it → parsed and joined, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::origin_table(data);
});
