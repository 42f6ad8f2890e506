//! `[origin]`: where in the code leaked descriptors were opened. Off by
//! default; on, fdsoak reads origins from two sources (see the origin
//! module), each of which can be turned off: the kernel ledger, for any
//! watched process when fdsoak may load eBPF, and the agents it gives the
//! processes it starts.

use serde::{Deserialize, Serialize};

/// The `[origin]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// Load an agent into every process fdsoak starts (target, client) and name
    /// where the descriptors that grew were opened.
    #[serde(default)]
    pub enabled: bool,
    /// Give the processes fdsoak starts its agents (Python's `sitecustomize`, the `LD_PRELOAD` library,
    /// a JVM's JVMTI agent), and an attached JVM the agent through HotSpot's attach.
    #[serde(
        default = "super::defaults::serde_default::origin_agents",
        skip_serializing_if = "is_yes"
    )]
    pub agents: bool,
    /// Keep the kernel ledger (eBPF on the system calls), when fdsoak has the rights to load it.
    #[serde(
        default = "super::defaults::serde_default::origin_kernel",
        skip_serializing_if = "is_yes"
    )]
    pub kernel: bool,
}

impl Default for OriginSpec {
    fn default() -> Self {
        super::defaults::ORIGIN
    }
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl OriginSpec {
    pub fn is_off(&self) -> bool {
        !self.enabled
    }
}
