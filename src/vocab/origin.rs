//! Where descriptors were opened: the words the agents' tables, the sampler,
//! the analysis and the report share. A [`Stack`] is one creating call
//! stack, innermost frame first, each frame marked as the program's own or a
//! library's (the standard library, site-packages, grpc, libc). A
//! fingerprint's [`GroupOrigins`] say, per group, how many of its live
//! descriptors each stack opened, and (from the kernel ledger) how many each
//! stack made over the run.

use super::GroupKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// One frame of a creating stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Frame {
    /// The function (Python) or symbol (native).
    pub function: String,
    /// The source file, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// The line in `file`, when known (0: not known).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub line: u32,
    /// A library's frame (standard library, site-packages, grpc, libc), not the program's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub library: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.as_str(), self.line) {
            ("", _) => write!(f, "{}", self.function),
            (file, 0) => write!(f, "{file} in {}", self.function),
            (file, line) => write!(f, "{file}:{line} in {}", self.function),
        }
    }
}

/// A creating call stack, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Stack {
    pub frames: Vec<Frame>,
    /// How the descriptors came from it: `"opened"` (by this very frame), or
    /// `"channel"` (sockets a gRPC channel made on its own threads, joined by address).
    pub via: OriginVia,
    /// Who saw it made: an agent inside the process (`"agent"`, left out) or the kernel ledger (`"kernel"`).
    #[serde(default, skip_serializing_if = "OriginSource::is_agent")]
    pub source: OriginSource,
}

/// Who recorded a stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginSource {
    /// An agent fdsoak put in the process (Python's `sitecustomize`, the `LD_PRELOAD` library).
    #[default]
    Agent,
    /// The kernel ledger (eBPF on the system calls), which needs nothing in the process.
    Kernel,
}

impl OriginSource {
    pub fn is_agent(&self) -> bool {
        *self == OriginSource::Agent
    }

    /// Who recorded it, in words.
    pub fn label(&self) -> &'static str {
        match self {
            OriginSource::Agent => "recorded by fdsoak's agent in the process",
            OriginSource::Kernel => "seen by the kernel ledger",
        }
    }
}

/// How an origin was joined to its descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginVia {
    /// The stack opened the descriptor itself.
    Opened,
    /// The stack created a gRPC channel to the group's address; the channel's library opened the socket.
    Channel,
    /// No stack: the descriptor was open before fdsoak attached to the process (the kernel ledger sees what is made after).
    BeforeAttach,
}

impl Stack {
    /// The origin of what an attached process held before the kernel ledger watched it.
    pub fn before_attach() -> Stack {
        Stack {
            frames: Vec::new(),
            via: OriginVia::BeforeAttach,
            source: OriginSource::Kernel,
        }
    }

    /// The innermost frame of the program's own, or the innermost frame when all are a library's.
    pub fn top_user_frame(&self) -> Option<&Frame> {
        self.frames.iter().find(|f| !f.library).or(self.frames.first())
    }
}

/// A fingerprint's origins: per group, how many of its descriptors each stack
/// opened, largest first; per stack the kernel ledger counted, how many
/// descriptors it made over the run and how many of them are open; and per
/// channel site the channel ledger followed, its channels.
#[derive(Debug, Default)]
pub struct FingerprintOrigins {
    pub groups: BTreeMap<GroupKey, Vec<(Arc<Stack>, u64)>>,
    pub tallies: BTreeMap<Arc<Stack>, Tally>,
    pub channels: BTreeMap<Arc<Stack>, ChannelTally>,
}

/// The channels one creating site made over the run (since fdsoak attached, for an
/// attached process), from the channel ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelTally {
    /// The target the site dialled, as the program named it.
    pub target: String,
    pub created: u64,
    pub closed: u64,
    /// Created and not closed.
    pub still_open: u64,
}

/// How many descriptors one stack made over the run, and how many of them are open now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub opened: u64,
    pub open: u64,
}

/// A fingerprint's origins, shared.
pub type GroupOrigins = Arc<FingerprintOrigins>;
