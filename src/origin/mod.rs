//! Origins: where in the code a process opened the descriptors that grew.
//!
//! With `--origin` (or `[origin] enabled = true`), fdsoak gives each process
//! it starts (the built-in or spawned target, the client under test) an
//! agent: for Python, [`sitecustomize.py`](self) first on `PYTHONPATH`.
//! The agent keeps a live table (descriptor or channel → creating stack)
//! and publishes it to a file of this run's; the sampler reads it when it
//! fingerprints the process ([`table::Table`]) and counts, per group, the
//! stacks of its descriptors. Nothing is injected with origins off, nor into
//! a target fdsoak did not start. The agents' files go when the run ends.

pub mod table;

use crate::vocab::Role;
use std::path::{Path, PathBuf};

/// The Python agent, shipped inside the binary and written out per run.
const PYTHON_AGENT: &str = include_str!("sitecustomize.py");

/// The environment variable that tells an agent where to publish its table.
pub const DIR_ENV: &str = "FDSOAK_ORIGIN_DIR";

/// This run's agents on disk, and where each role's tables go; removed on drop.
#[derive(Debug)]
pub struct Agents {
    dir: tempfile::TempDir,
}

impl Agents {
    /// Writes the agents into a fresh temporary directory.
    pub fn install() -> anyhow::Result<Agents> {
        use anyhow::Context;
        let dir = tempfile::Builder::new()
            .prefix("fdsoak-origin-")
            .tempdir()
            .context("creating the origin agents' directory")?;
        let python = dir.path().join("python");
        std::fs::create_dir(&python)?;
        std::fs::write(python.join("sitecustomize.py"), PYTHON_AGENT)?;
        for role in Role::ALL {
            std::fs::create_dir_all(dir.path().join("tables").join(role.as_str()))?;
        }
        Ok(Agents { dir })
    }

    /// Where the agents in `role`'s process publish their tables.
    pub fn tables(&self, role: Role) -> PathBuf {
        self.dir.path().join("tables").join(role.as_str())
    }

    /// The environment a process of `role` starts with: the Python agent first on
    /// `PYTHONPATH` (before whatever the path held), and where to publish.
    pub fn env(&self, role: Role) -> Vec<(String, String)> {
        let python = self.dir.path().join("python");
        let mut path = python.display().to_string();
        if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            path = format!("{path}:{}", old.to_string_lossy());
        }
        vec![
            ("PYTHONPATH".into(), path),
            (DIR_ENV.into(), self.tables(role).display().to_string()),
        ]
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
