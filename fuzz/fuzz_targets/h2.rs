//! Any byte stream through the fault proxy's HTTP/2 frame reader → its bytes whole and in order, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::h2_frames(data);
});
