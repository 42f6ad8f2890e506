//! The target plan: the scenario's `[target]` table, after command-line
//! overrides, turned into what to start or attach to, and described for the
//! report whether or not it ever came up.

use super::TargetPlan;
use crate::scenario::parse_address;
use crate::scenario::{Scenario, TargetMode};
use std::path::Path;

/// The `fdsoak serve` flag that opens the behaviour control path on standard input.
pub(crate) const CONTROL_FLAG: &str = "--control-stdin";

pub(crate) use crate::scenario::defaults::ready_timeout;

/// Builds the plan; `exe` is the `fdsoak` executable that serves the built-in target.
pub(crate) fn plan(sc: &Scenario, exe: &Path) -> anyhow::Result<TargetPlan> {
    let t = &sc.target;
    Ok(match t.mode {
        TargetMode::Builtin => {
            let mut args = t.knobs.to_flags();
            // Server behaviours reach the built-in target through its standard input.
            let behaviours = sc.phases.iter().flat_map(|p| &p.faults).any(|f| f.kind.is_server());
            if behaviours {
                args.push(CONTROL_FLAG.into());
            }
            TargetPlan::Builtin(super::BuiltinPlan {
                exe: exe.to_path_buf(),
                args,
                nofile: t.nofile,
                env: Vec::new(),
                unix_socket: t.unix_socket,
            })
        }
        TargetMode::Spawn => TargetPlan::Spawn {
            command: t
                .command
                .clone()
                .unwrap_or_default()
                .replace("{fdsoak}", &exe.display().to_string()),
            nofile: t.nofile,
            env: Vec::new(),
            dir: None,
        },
        TargetMode::Address => TargetPlan::Address {
            addr: parse_address(t.address.as_deref().unwrap_or_default())?,
            pid: t.pid,
            remote: t.fds.is_some(),
        },
    })
}

impl TargetPlan {
    /// Whether fdsoak starts this target (and so may give it an agent).
    pub(crate) fn started_by_fdsoak(&self) -> bool {
        !matches!(self, TargetPlan::Address { .. })
    }

    /// The target listens on a Unix socket.
    pub(crate) fn is_unix(&self) -> bool {
        match self {
            TargetPlan::Builtin(b) => b.unix_socket,
            TargetPlan::Spawn { command, .. } => command.contains("{socket}"),
            TargetPlan::Address { addr, .. } => addr.is_unix(),
        }
    }

    /// Adds variables to the environment of a target fdsoak starts; an attached one has none to set.
    pub(crate) fn add_env(&mut self, vars: Vec<(String, String)>) {
        match self {
            TargetPlan::Builtin(b) => b.env.extend(vars),
            TargetPlan::Spawn { env, .. } => env.extend(vars),
            TargetPlan::Address { .. } => {}
        }
    }

    /// The mode's name, as the scenario spells it.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            TargetPlan::Builtin(_) => "builtin",
            TargetPlan::Spawn { .. } => "spawn",
            TargetPlan::Address { .. } => "address",
        }
    }

    /// What will be started or attached to, before it is up.
    pub(crate) fn describe(&self) -> String {
        match self {
            TargetPlan::Spawn { command, .. } => format!("spawn: {command}"),
            TargetPlan::Address { addr, .. } => format!("address {addr}"),
            TargetPlan::Builtin(b) => format!("builtin: fdsoak serve {}", b.args.join(" ")),
        }
    }
}
