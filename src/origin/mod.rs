//! Origins: where in the code a process opened the descriptors that grew.
//!
//! With `--origin` (or `[origin] enabled = true`), fdsoak gives each process
//! it starts (the built-in or spawned target, the client under test) two
//! agents: for Python, `sitecustomize.py` first on `PYTHONPATH`; for native
//! code (C, C++, Rust, anything linked against glibc), the library built
//! from `native/agent.c`, on `LD_PRELOAD`, which a JVM also loads as its
//! JVMTI agent (`native/jvm.c`: Java frames, [`java`]) and Node as a Node-API
//! module for grpc-js's channel ledger (`native/node.c`, fed by a script on
//! Node's `--require`: [`grpcjs`]). Each keeps a live table
//! (descriptor or channel → creating stack) in a file of this run's; the
//! sampler reads it when it fingerprints the process ([`table::Table`];
//! native stacks are symbolized by [`native::Symbols`]) and counts, per
//! group, the stacks of its descriptors. Both tables live in the process's
//! own memory ([`memory`]), so publishing costs it no descriptor and no
//! file. Nothing is injected with origins off, nor into a target fdsoak did
//! not start, but a running JVM, which is given the agent through HotSpot's
//! own attach ([`hotspot`]) and left with it paused. The agents' files go when
//! the run ends.

pub(crate) mod elfmap;
pub(crate) mod gopclntab;
pub mod grpcjs;
pub(crate) mod hotspot;
pub mod java;
pub mod kernel;
pub mod memory;
pub mod native;
pub mod perfmap;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The Python agent, shipped inside the binary and written out per run.
const PYTHON_AGENT: &str = include_str!("sitecustomize.py");
/// The native agent, built by `build.rs` from `native/agent.c` and `native/jvm.c`.
const NATIVE_AGENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libfdsoak_origin.so"));
/// Its file name once written out.
pub const NATIVE_AGENT_FILE: &str = "libfdsoak_origin.so";

/// The environment variable that turns an agent on (it names the agents' directory).
pub const DIR_ENV: &str = "FDSOAK_ORIGIN_DIR";

/// This run's agents on disk, removed on drop, the kernel ledger when it could be
/// loaded, and which processes published a table.
#[derive(Debug)]
pub struct Agents {
    dir: tempfile::TempDir,
    /// Whether the processes fdsoak starts get the agents (`[origin] agents`).
    inject: bool,
    pub published: Published,
    /// The kernel ledger; None without the rights to load eBPF (or on a kernel that refused it).
    pub kernel: Option<Arc<kernel::Ledger>>,
    /// Running JVMs the agent was loaded into (or resumed in) by HotSpot's attach.
    attached: Mutex<Vec<u32>>,
}

/// What the sampler needs to read one process's origins.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    pub published: Published,
    pub kernel: Option<Arc<kernel::Ledger>>,
}

impl Reader {
    /// `pid`'s origins for `live`, the descriptors it holds, from its agent's table and
    /// the kernel ledger, if either has any; the process is noted as having published.
    pub fn read(&self, pid: i32, live: &[i32], symbols: &native::Symbols) -> Option<table::Table> {
        let table = table::Table::read(pid, live, symbols, self.kernel.as_deref());
        if table.is_some() && self.published.mark(pid) {
            if let Some(why) = java::unnamed_java(pid) {
                self.published.note_unnamed_java(pid, why);
            }
        }
        table
    }
}

/// The processes whose table fdsoak has read at least once in a run (a table lives
/// in its process's memory, so it cannot be looked for once the process is gone),
/// and, for a JVM among them whose Java frames cannot be named, why.
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<Mutex<PublishedSets>>);

#[derive(Debug, Default)]
struct PublishedSets {
    pids: HashSet<i32>,
    unnamed_java: HashMap<i32, String>,
}

impl Published {
    /// Notes `pid` as having published; true the first time.
    pub fn mark(&self, pid: i32) -> bool {
        crate::domain::lock(&self.0).pids.insert(pid)
    }

    pub fn contains(&self, pid: i32) -> bool {
        crate::domain::lock(&self.0).pids.contains(&pid)
    }

    fn note_unnamed_java(&self, pid: i32, why: String) {
        crate::domain::lock(&self.0).unnamed_java.insert(pid, why);
    }

    /// Why the JVM `pid`'s Java frames cannot be named, if it is one that fdsoak found so.
    pub fn unnamed_java(&self, pid: i32) -> Option<String> {
        crate::domain::lock(&self.0).unnamed_java.get(&pid).cloned()
    }
}

impl Agents {
    /// Writes the agents into a fresh temporary directory; `inject`: give them to the processes fdsoak starts.
    pub fn install(inject: bool) -> anyhow::Result<Agents> {
        use anyhow::Context;
        let dir = tempfile::Builder::new()
            .prefix("fdsoak-origin-")
            .tempdir()
            .context("creating the origin agents' directory")?;
        let python = dir.path().join("python");
        std::fs::create_dir(&python)?;
        std::fs::write(python.join("sitecustomize.py"), PYTHON_AGENT)?;
        std::fs::write(dir.path().join(NATIVE_AGENT_FILE), NATIVE_AGENT)?;
        let ledger = dir.path().join(grpcjs::LEDGER_FILE);
        std::fs::create_dir(ledger.parent().unwrap_or(dir.path()))?;
        std::fs::write(ledger, grpcjs::LEDGER_SCRIPT)?;
        Ok(Agents {
            dir,
            inject,
            published: Published::default(),
            kernel: None,
            attached: Mutex::default(),
        })
    }

    /// Loads the kernel ledger; on failure, why not (the agents still work).
    pub fn load_kernel(&mut self) -> Result<(), String> {
        self.kernel = Some(Arc::new(kernel::Ledger::load()?));
        Ok(())
    }

    /// What the sampler reads origins with.
    pub fn reader(&self) -> Reader {
        Reader {
            published: self.published.clone(),
            kernel: self.kernel.clone(),
        }
    }

    /// The environment a process starts with (nothing with the agents off): the Python agent first on
    /// `PYTHONPATH` and the native one first on `LD_PRELOAD` (before whatever they
    /// held) and, for a JVM, in `JAVA_TOOL_OPTIONS` as its JVMTI agent; for Node, the
    /// grpc-js channel ledger's script on `--require` in `NODE_OPTIONS` ([`grpcjs`]) and,
    /// with the kernel ledger, the flags that make it write its perf map
    /// ([`perfmap::NODE_FLAGS`]), which names its JavaScript frames; and the switch that
    /// turns them on.
    pub fn env(&self) -> Vec<(String, String)> {
        if !self.inject {
            return Vec::new();
        }
        let script = self.dir.path().join(grpcjs::LEDGER_FILE);
        let perf = self.kernel.as_ref().map_or("", |_| perfmap::NODE_FLAGS);
        let old = std::env::var("NODE_OPTIONS").unwrap_or_default();
        let node = (
            "NODE_OPTIONS".to_string(),
            format!("{old} --require \"{}\" {perf}", script.display())
                .trim()
                .to_string(),
        );
        let first = |var: &str, path: &Path, sep: char| {
            let mut v = path.display().to_string();
            if let Some(old) = std::env::var_os(var).filter(|p| !p.is_empty()) {
                v = format!("{v}{sep}{}", old.to_string_lossy());
            }
            (var.to_string(), v)
        };
        // A JVM loads the native agent again as its JVMTI agent: the same library object,
        // whose JVM part adds each descriptor's Java frames ([`java`]).
        let agent = self.dir.path().join(NATIVE_AGENT_FILE);
        let old = std::env::var("JAVA_TOOL_OPTIONS").unwrap_or_default();
        let java = (
            "JAVA_TOOL_OPTIONS".to_string(),
            format!("{old} -agentpath:{}", agent.display()).trim().to_string(),
        );
        vec![
            first("PYTHONPATH", &self.dir.path().join("python"), ':'),
            first("LD_PRELOAD", &self.dir.path().join(NATIVE_AGENT_FILE), ':'),
            (DIR_ENV.into(), self.dir.path().display().to_string()),
            java,
            node,
        ]
    }

    /// Removes what the flags given to a process fdsoak started (pid `pid`, started in
    /// `dir`) made it leave behind: Node's perf map, and the empty V8 log that comes with it.
    pub fn clean_up_after(&self, pid: i32, dir: &Path) {
        if self.inject && self.kernel.is_some() && pid > 0 {
            perfmap::remove_leftovers(pid as u32, dir);
        }
    }

    /// Gives a running process fdsoak attached to the agent, where its runtime lets
    /// fdsoak in without a restart: a HotSpot JVM, through its own attach mechanism
    /// ([`hotspot`]). Ok(true): the agent records in it now; Ok(false): not a runtime
    /// fdsoak attaches to; Err: a note saying what is missing.
    pub fn attach_running(&self, pid: u32) -> Result<bool, String> {
        if !self.inject || pid == 0 || !hotspot::is_jvm(pid) {
            return Ok(false);
        }
        match hotspot::attach(pid, &self.dir.path().join(NATIVE_AGENT_FILE)) {
            Ok(how) => {
                tracing::info!("origins: the agent records in the JVM {pid} ({how:?})");
                crate::domain::lock(&self.attached).push(pid);
                Ok(true)
            }
            Err(why) => Err(format!(
                "the target (pid {pid}) is a JVM that fdsoak could not give its agent: {why}; its Java frames cannot be named, and its origins stop at the JDK's C (handleOpen, Net.socket0)"
            )),
        }
    }

    /// Pauses the agent in the running processes it was attached to: a run that ends
    /// leaves it recording nothing (a later run resumes it).
    pub fn release_attached(&self) {
        for pid in crate::domain::lock(&self.attached).drain(..) {
            if let Err(e) = hotspot::set_paused(pid, true) {
                tracing::debug!("origins: pausing the agent in {pid}: {e}");
            }
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
