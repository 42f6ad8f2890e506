//! A scraped metrics page → the descriptor reading, never a panic; and the same bytes as a metrics URL and a shard.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fdsoak::fuzzing::metrics(data);
});
