//! The native agent's table, symbolized: the agent keeps, per descriptor
//! number, the return addresses of the stack that created it, in the
//! process's own memory ([`slots`] reads it); here they become frames with
//! the `blazesym` crate, from the process's own maps and its files' symbols
//! and debug info: file:line where there is debug info, the symbol
//! otherwise. Symbolization happens in fdsoak, never in the process.

pub(crate) mod slots;

#[doc(hidden)]
pub use slots::{slots as live_slots, whole_table_scan};

use crate::domain::{Frame, OriginSource, OriginVia, Stack};
use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One process's native origins: descriptor → creating stack.
#[derive(Debug, Default)]
pub struct NativeTable {
    pub fds: HashMap<i32, Arc<Stack>>,
    /// Descriptors the agent could not record (past its last slot).
    pub overflow: u64,
    /// Descriptors whose stacks carry a runtime's own frames (a JVM's Java frames):
    /// complete, however short the native walk beneath them.
    pub managed: std::collections::HashSet<i32>,
}

/// Symbolizes the stacks of native origin tables, keeping what it read of each file for the run.
pub struct Symbols {
    symbolizer: Symbolizer,
    /// Stripped Go binaries' own tables, by path (None: the file has none fdsoak reads).
    go: std::cell::RefCell<HashMap<String, Option<Arc<super::gopclntab::GoTable>>>>,
    /// Per (process, mapping start): where the mapping puts its file's stated addresses.
    bases: std::cell::RefCell<HashMap<(u32, u64), Option<u64>>>,
    /// The perf maps of processes whose runtime names the code it compiles (V8's).
    perf: std::cell::RefCell<super::perfmap::PerfMaps>,
    /// The method logs of JVMs carrying the agent.
    java: std::cell::RefCell<super::java::Methods>,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Symbols")
    }
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            symbolizer: Symbolizer::new(),
            go: Default::default(),
            bases: Default::default(),
            perf: Default::default(),
            java: Default::default(),
        }
    }
}

impl Symbols {
    /// The origins of `live` (descriptors `pid` holds) in the agent's table, symbolized,
    /// if the process carries one.
    pub fn read(&self, pid: i32, live: &[i32]) -> Option<NativeTable> {
        let (raw, overflow) = slots::slots(pid, live)?;
        let java = super::java::frames(pid, live);
        let first_sight = java.is_some() && self.java.borrow_mut().refresh(pid as u32) == Some(true);
        if first_sight {
            self.warm_jdk(pid);
        }
        let mut table = self.symbolize(pid, raw, overflow, OriginSource::Agent);
        if let Some(java) = java.filter(|j| !j.is_empty()) {
            self.add_java(pid, &mut table, java);
        }
        Some(table)
    }

    /// The grpc-java channel sites `pid`'s agent followed, named: target, stack, created, closed.
    pub fn java_channels(&self, pid: i32) -> Vec<(String, Arc<Stack>, u64, u64)> {
        let Some(sites) = super::java::channel_sites(pid) else {
            return Vec::new();
        };
        let mut methods = self.java.borrow_mut();
        methods.refresh(pid as u32);
        sites
            .into_iter()
            .map(|s| {
                let stack = Arc::new(Stack {
                    frames: methods.name(pid as u32, &s.frames),
                    via: OriginVia::Channel,
                    source: OriginSource::Agent,
                });
                (s.target, stack, s.created, s.closed)
            })
            .collect()
    }

    /// Reads, at the first sight of a JVM's agent, the JDK's libraries whose C makes its
    /// descriptors (and the agent's own), so that the files the symbolizer keeps open
    /// for the run are open before the run's load, not counted as growth of fdsoak's.
    fn warm_jdk(&self, pid: i32) {
        const MADE_IN: [&str; 6] = [
            "/libjava.so",
            "/libnio.so",
            "/libnet.so",
            "/libjvm.so",
            "/libc.so.6",
            super::NATIVE_AGENT_FILE,
        ];
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let starts: Vec<u64> = maps
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("r-xp"))
            .filter(|l| {
                let path = l.strip_suffix(" (deleted)").unwrap_or(l);
                MADE_IN.iter().any(|m| path.ends_with(m))
            })
            .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
            .collect();
        if !starts.is_empty() {
            let raw = HashMap::from([(0, starts.iter().map(|a| a + 2).collect())]);
            self.symbolize(pid, raw, 0, OriginSource::Agent);
        }
    }

    /// Puts each descriptor's Java frames under the native frames that made it (the
    /// JDK's C, down to the first frame the symbolizer cannot name: the JVM's own code).
    fn add_java(&self, pid: i32, table: &mut NativeTable, java: HashMap<i32, Vec<super::java::RawFrame>>) {
        let methods = self.java.borrow();
        let mut made: HashMap<(usize, &[super::java::RawFrame]), Arc<Stack>> = HashMap::new();
        for (fd, raw) in &java {
            let Some(native) = table.fds.get(fd) else { continue };
            let key = (Arc::as_ptr(native) as usize, raw.as_slice());
            let stack = made.entry(key).or_insert_with(|| {
                let frames = native
                    .frames
                    .iter()
                    .take_while(|f| f.function != "??")
                    .map(|f| Frame {
                        library: true,
                        ..f.clone()
                    })
                    .chain(methods.name(pid as u32, raw))
                    .collect();
                Arc::new(Stack {
                    frames,
                    via: OriginVia::Opened,
                    source: OriginSource::Agent,
                })
            });
            table.fds.insert(*fd, stack.clone());
            table.managed.insert(*fd);
        }
    }

    /// Names the stacks of `raw` (descriptor → return addresses, innermost first),
    /// recorded by `source`, from `pid`'s own maps and files.
    pub fn symbolize(&self, pid: i32, raw: HashMap<i32, Vec<u64>>, overflow: u64, source: OriginSource) -> NativeTable {
        // Each distinct stack once, each distinct address once.
        let mut stacks: HashMap<Vec<u64>, Arc<Stack>> = HashMap::new();
        let mut addrs: Vec<u64> = raw.values().flatten().map(|a| a.saturating_sub(1)).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut process = Process::new((pid as u32).into());
        // `/proc/PID/map_files` (which still opens a replaced binary) needs CAP_SYS_ADMIN;
        // without root, the paths in `/proc/PID/maps` serve.
        process.map_files = rustix::process::geteuid().is_root();
        // Perf maps are read here, from where they ended, with no handle kept open.
        process.perf_map = false;
        let perf_map = self.perf.borrow_mut().refresh(pid as u32);
        let src = Source::Process(process);
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let mut frames: HashMap<u64, Vec<Frame>> = HashMap::new();
        if let Ok(syms) = self.symbolizer.symbolize(&src, Input::AbsAddr(&addrs)) {
            let mappings = std::cell::OnceCell::new();
            for (addr, sym) in addrs.iter().zip(syms) {
                let go = match sym {
                    Symbolized::Unknown(_) => {
                        let mappings = mappings.get_or_init(|| super::elfmap::executable_mappings(pid as u32));
                        self.go_frame(pid as u32, mappings, *addr)
                            .or_else(|| perf_map.then(|| self.perf.borrow().frame(pid as u32, *addr)).flatten())
                    }
                    Symbolized::Sym(_) => None,
                };
                frames.insert(*addr, go.map_or_else(|| to_frames(&sym, exe.as_deref()), |f| vec![f]));
            }
        }
        let mut fds = HashMap::new();
        for (fd, pcs) in raw {
            let stack = stacks
                .entry(pcs.clone())
                .or_insert_with(|| {
                    let frames = pcs
                        .iter()
                        .flat_map(|pc| frames.get(&pc.saturating_sub(1)).cloned().unwrap_or_default())
                        .collect();
                    Arc::new(Stack {
                        frames,
                        via: OriginVia::Opened,
                        source,
                    })
                })
                .clone();
            fds.insert(fd, stack);
        }
        NativeTable {
            fds,
            overflow,
            managed: Default::default(),
        }
    }
}

impl Symbols {
    /// The frame a stripped Go binary's own table names for `addr`, if `addr` is in one.
    fn go_frame(&self, pid: u32, mappings: &[super::elfmap::Mapping], addr: u64) -> Option<Frame> {
        let m = mappings.iter().find(|m| m.start <= addr && addr < m.end)?;
        let mut cache = self.go.borrow_mut();
        let table = cache
            .entry(m.path.clone())
            .or_insert_with(|| go_table(pid, m))
            .clone()?;
        drop(cache);
        let base = cache_base(&self.bases, pid, m)?;
        let mut frame = table.frame(addr.wrapping_sub(base))?;
        frame.library = is_runtime(&frame.function) || is_go_library(&frame.function, &frame.file);
        Some(frame)
    }
}

/// Where mapping `m` of `pid` puts its file's stated addresses, kept per (process, mapping).
fn cache_base(
    bases: &std::cell::RefCell<HashMap<(u32, u64), Option<u64>>>,
    pid: u32,
    m: &super::elfmap::Mapping,
) -> Option<u64> {
    *bases.borrow_mut().entry((pid, m.start)).or_insert_with(|| {
        let cache = object::ReadCache::new(super::elfmap::open(pid, m)?);
        super::elfmap::base(&object::File::parse(&cache).ok()?, m)
    })
}

/// The `.gopclntab` of the Go binary behind mapping `m`, and where the process maps its addresses.
fn go_table(pid: u32, m: &super::elfmap::Mapping) -> Option<Arc<super::gopclntab::GoTable>> {
    use object::{Object, ObjectSection};
    let cache = object::ReadCache::new(super::elfmap::open(pid, m)?);
    let elf = object::File::parse(&cache).ok()?;
    let data = elf.section_by_name(".gopclntab")?.data().ok()?.to_vec();
    Some(Arc::new(super::gopclntab::GoTable::parse(data)?))
}

/// One address's frames, innermost (inlined) first; none for the agent's own code.
fn to_frames(sym: &Symbolized<'_>, exe: Option<&Path>) -> Vec<Frame> {
    let Symbolized::Sym(s) = sym else {
        return vec![Frame {
            function: "??".into(),
            file: String::new(),
            line: 0,
            library: true,
        }];
    };
    let module = s.module.as_deref().map(Path::new);
    if module.is_some_and(|m| m.to_string_lossy().ends_with(super::NATIVE_AGENT_FILE)) {
        return Vec::new();
    }
    // A shared library's frames are a library's; so are, in the program, the
    // standard library's and its dependencies' (by where their source lives).
    let shared = match (module, exe) {
        (Some(m), Some(e)) => m != e && !module_is_exe(m, e),
        _ => false,
    };
    let frame = |name: &str, info: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        let file = info.map(|c| c.to_path().display().to_string()).unwrap_or_default();
        // Without debug info for it (a dependency built without, a stripped library),
        // a frame names no place in the program's own source: count it a library's.
        let library =
            shared || file.is_empty() || is_library_source(&file) || is_runtime(name) || is_go_library(name, &file);
        Frame {
            function: name.to_string(),
            file,
            line: info.and_then(|c| c.line).unwrap_or(0),
            library,
        }
    };
    let mut out: Vec<Frame> = s
        .inlined
        .iter()
        .rev()
        .map(|f| frame(&f.name, f.code_info.as_ref()))
        .collect();
    out.push(frame(&s.name, s.code_info.as_deref()));
    out
}

/// `/proc/PID/map_files/…` names the executable by its mapping, not its path.
fn module_is_exe(module: &Path, exe: &Path) -> bool {
    std::fs::canonicalize(module).is_ok_and(|m| std::fs::canonicalize(exe).is_ok_and(|e| e == m))
}

/// A function of Rust's standard library, by name (its generic instances may carry no file).
fn is_runtime(name: &str) -> bool {
    let name = name.trim_start_matches('<');
    ["std::", "core::", "alloc::"].iter().any(|p| name.starts_with(p))
}

/// A Go frame not of the program's own: Go's standard library (its package's
/// files under `…/src/<package>/`, the package's first element without a dot),
/// or a dependency from the module cache, a vendor directory or Debian's packaged Go.
fn is_go_library(name: &str, file: &str) -> bool {
    if !(file.ends_with(".go") || file.ends_with(".s")) {
        return false;
    }
    if file.contains("/pkg/mod/") || file.contains("/vendor/") || file.starts_with("/usr/share/gocode/") {
        return true;
    }
    crate::domain::go_standard_library(name, file)
}

/// Source of Rust's standard library, of crates from a registry, or of the C library.
fn is_library_source(file: &str) -> bool {
    file.contains("/rustc/")
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.starts_with("/usr/include/")
        || file.starts_with("./") && file.contains("glibc")
}

#[cfg(test)]
mod tests {
    use super::is_go_library;

    #[test]
    fn go_frames_are_the_programs_own_unless_the_standard_library_or_a_dependency() {
        let std = [
            ("os.Open", "/usr/lib/go-1.19/src/os/file.go"),
            (
                "runtime/internal/syscall.Syscall6",
                "/usr/local/go/src/runtime/internal/syscall/asm_linux_amd64.s",
            ),
            ("net.(*conn).File", "/usr/lib/go-1.19/src/net/net.go"),
        ];
        for (name, file) in std {
            assert!(is_go_library(name, file), "{name}");
        }
        let deps = [
            (
                "google.golang.org/grpc.(*Server).Serve",
                "/usr/share/gocode/src/google.golang.org/grpc/server.go",
            ),
            ("github.com/x/y.F", "/root/go/pkg/mod/github.com/x/y@v1.0.0/y.go"),
        ];
        for (name, file) in deps {
            assert!(is_go_library(name, file), "{name}");
        }
        let own = [
            ("main.leakFile", "/work/tests/programs/goleak/main.go"),
            ("myapp/internal/store.Open", "/home/u/myapp/internal/store/store.go"),
            (
                "github.com/acme/svc/db.Dial",
                "/home/u/go/src/github.com/acme/svc/db/db.go",
            ),
            ("some_c_function", "/src/os/x.c"),
        ];
        for (name, file) in own {
            assert!(!is_go_library(name, file), "{name}");
        }
    }
}
