//! fdsoak finds connection and file-descriptor leaks in gRPC services before
//! production does.
//!
//! It replays scripted scenarios of gRPC health checks and other calls
//! against a target server while sampling the open descriptors of the
//! target, of itself and of a client under test, and flags growth toward
//! RLIMIT_NOFILE. The binary is a thin shell over [`cli::Command::execute`]; tests
//! drive [`run::run`] and the commands in-process. `docs/how-it-works.md`
//! names each module, what it may import, and the one meaning of each word
//! the docs use (target, driver, client, dial, phase, tick, sample,
//! fingerprint, finding, gate, checkpoint, verdict).

pub(crate) mod abort;
pub mod analysis;
pub mod bisect;
pub mod child;
pub mod cli;
pub(crate) mod client;
pub mod cmd;
pub mod compare;
pub mod domain;
pub(crate) mod driver;
pub mod error;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod lifecycle;
pub mod live;
pub(crate) mod merge;
pub mod metrics;
pub mod net;
pub mod origin;
pub(crate) mod progress;
pub(crate) mod refserver;
pub mod report;
pub mod rpc;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod series;
pub(crate) mod transport;
pub mod trend;

/// Code generated from `proto/` by `build.rs`.
pub mod proto {
    /// Every built-in proto's descriptors, encoded (a `FileDescriptorSet`).
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fdsoak_descriptors.bin"));

    /// grpc.health.v1.
    pub mod health {
        tonic::include_proto!("grpc.health.v1");
    }
    /// fdsoak.demo.v1, the Chatbot demo service.
    pub mod demo {
        tonic::include_proto!("fdsoak.demo.v1");
    }
}
