//! The integration tests, as one test binary: every test drives the real
//! `fdsoak` binary or the library against real processes and sockets.
//! Tests that count this process's own descriptors live in their own
//! binaries (`tests/library.rs`, `tests/self_fds.rs`, `tests/sampler.rs`),
//! where no other test can open a socket while they count.

#[path = "../common/mod.rs"]
mod common;

mod abort;
mod backend_links;
mod bisect;
mod blame;
mod causes;
mod channels;
mod checkpoint;
mod ci_templates;
mod clients;
mod containerd;
mod deploy;
mod docs;
mod exit_codes;
mod faults;
mod fingerprint;
mod first_use;
mod fuzz_regressions;
mod guests;
mod h2faults;
mod hosts;
mod html;
mod java;
mod javascript;
mod kernel_faults;
mod kernel_origin;
mod layers;
mod leaks;
mod live;
mod origin;
mod output;
mod prometheus;
mod ready;
mod regressions;
mod reports;
mod rpc;
mod scenario_errors;
mod shards;
mod shell;
mod streams;
mod stretch;
mod targets;
mod tls;
mod trend;
mod unix;
mod workers;
