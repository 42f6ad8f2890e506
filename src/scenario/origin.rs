//! `[origin]`: where in the code leaked descriptors were opened. Off by
//! default; on, fdsoak gives the processes it starts an agent (see
//! the origin module), and an attached target is said to be out of reach.

use serde::{Deserialize, Serialize};

/// The `[origin]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// Load an agent into every process fdsoak starts (target, client) and name
    /// where the descriptors that grew were opened.
    #[serde(default)]
    pub enabled: bool,
}

impl OriginSpec {
    pub fn is_off(&self) -> bool {
        !self.enabled
    }
}
