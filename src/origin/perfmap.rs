//! Code a runtime compiled as it ran, named by the runtime itself: its perf
//! map, `/tmp/perf-PID.map`, one line per piece of code (`START SIZE NAME`,
//! in hex), as V8 writes it with `--perf-basic-prof` (and Node with it, for
//! JavaScript: `JS:~check /srv/app/server.js:21:15`). fdsoak reads each map
//! itself, from where it stopped the last time (a map only grows), so no
//! handle on it stays open and nothing is read twice; a piece of code
//! written again at the same address replaces the older name.
//!
//! A JavaScript name becomes a frame with its function, file and line (the
//! line where the function begins: V8's map names functions, not calls).
//! Node's own modules (`node:…`) and grpc-js (`node_modules/@grpc/`) are
//! library frames, as are V8's builtins and stubs.

use crate::domain::Frame;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// What Node is given (in `NODE_OPTIONS`) when fdsoak starts it with origins on: its
/// perf map, with a frame of its own for each interpreted function.
pub const NODE_FLAGS: &str = "--perf-basic-prof --interpreted-frames-native-stack";

/// Removes the perf map that a process fdsoak started with [`NODE_FLAGS`] wrote, and the
/// empty `isolate-0x…-PID-v8.log` V8 opens beside them in `dir`, where it was started.
pub fn remove_leftovers(pid: u32, dir: &std::path::Path) {
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    let suffix = format!("-{pid}-v8.log");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("isolate-0x") && name.ends_with(&suffix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// For a Node process that writes no perf map (one fdsoak attached to, started without
/// [`NODE_FLAGS`]), the note that says what is missing and how to start it.
pub fn unnamed_javascript(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy();
    if !(name == "node" || name.starts_with("node")) || map_path(pid).is_some_and(|p| p.exists()) {
        return None;
    }
    Some(format!(
        "the target (pid {pid}) is Node, writing no perf map: its JavaScript frames cannot be named, and its origins stop at V8's and libuv's frames; start it with NODE_OPTIONS=\"{NODE_FLAGS}\" (fdsoak does so for the Node processes it starts)"
    ))
}

/// Pieces of code kept per process at most; later ones go unnamed (counted).
pub const MAX_CODE: usize = 200_000;
/// Bytes read of a map per visit at most, so one visit stays short.
const MAX_READ: u64 = 64 << 20;

/// The perf maps of the processes symbolized so far, each read up to where it ended.
#[derive(Debug, Default)]
pub struct PerfMaps {
    maps: HashMap<u32, PerfMap>,
}

#[derive(Debug, Default)]
struct PerfMap {
    /// Bytes of the file parsed so far, and a last line not yet whole.
    read: u64,
    partial: String,
    /// Start → (end, name).
    code: BTreeMap<u64, (u64, Arc<str>)>,
    dropped: u64,
}

impl PerfMaps {
    /// Reads what `pid`'s map gained since the last visit; false when it has none.
    pub fn refresh(&mut self, pid: u32) -> bool {
        let Some(path) = map_path(pid) else { return false };
        let Ok(mut file) = std::fs::File::open(&path) else {
            return false;
        };
        if !self.maps.contains_key(&pid) && self.maps.len() >= 16 {
            self.retain_live();
        }
        let map = self.maps.entry(pid).or_default();
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < map.read {
            // A new map under the same name (the PID reused): start again.
            *map = PerfMap::default();
        }
        if len > map.read && file.seek(SeekFrom::Start(map.read)).is_ok() {
            let mut bytes = Vec::new();
            let _ = (&mut file).take(MAX_READ).read_to_end(&mut bytes);
            map.read += bytes.len() as u64;
            map.add(&String::from_utf8_lossy(&bytes));
        }
        true
    }

    /// The frame `pid`'s map names for `addr`, if its code is there.
    pub fn frame(&self, pid: u32, addr: u64) -> Option<Frame> {
        let map = self.maps.get(&pid)?;
        let (_, (end, name)) = map.code.range(..=addr).next_back()?;
        (addr < *end).then(|| frame_of(name))
    }

    /// Code the maps held that was not kept ([`MAX_CODE`]).
    pub fn dropped(&self) -> u64 {
        self.maps.values().map(|m| m.dropped).sum()
    }

    /// Forgets the processes that are gone.
    fn retain_live(&mut self) {
        self.maps
            .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

impl PerfMap {
    fn add(&mut self, text: &str) {
        let text = std::mem::take(&mut self.partial) + text;
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                // No newline yet: the rest of it comes with the next read.
                self.partial = line.to_string();
                break;
            }
            let mut words = line.splitn(3, ' ');
            let (Some(start), Some(size), Some(name)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let (Ok(start), Ok(size)) = (u64::from_str_radix(start, 16), u64::from_str_radix(size, 16)) else {
                continue;
            };
            if self.code.len() >= MAX_CODE && !self.code.contains_key(&start) {
                self.dropped += 1;
                continue;
            }
            self.code.insert(start, (start.saturating_add(size), name.into()));
        }
    }
}

/// Where `pid`'s perf map is, as fdsoak sees it: in the process's own `/tmp`, named
/// with its PID in its own namespace (a container's process has another).
fn map_path(pid: u32) -> Option<std::path::PathBuf> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let inner = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(pid);
    Some(format!("/proc/{pid}/root/tmp/perf-{inner}.map").into())
}

/// A perf map's name as a frame: a JavaScript function with its file and line, or
/// the runtime's own code (a builtin, a stub, a regular expression) as a library's.
pub fn frame_of(name: &str) -> Frame {
    let library = |function: &str| Frame {
        function: function.to_string(),
        file: String::new(),
        line: 0,
        library: true,
    };
    let Some(js) = name.strip_prefix("JS:") else {
        return library(name);
    };
    // The tier it ran in: ~ interpreted, ^ Sparkplug, + Maglev, * TurboFan.
    let js = js.trim_start_matches(['~', '^', '+', '*']);
    let (function, place) = js.rsplit_once(' ').unwrap_or(("", js));
    // `file:line:column`; the file itself may hold colons (`node:fs`).
    let mut parts = place.rsplitn(3, ':');
    let (_column, line, file) = (parts.next(), parts.next(), parts.next());
    let (Some(line), Some(file)) = (line.and_then(|l| l.parse().ok()), file) else {
        return library(name);
    };
    Frame {
        function: if function.is_empty() {
            "(anonymous)".into()
        } else {
            function.to_string()
        },
        file: file.to_string(),
        line,
        library: is_node_library(file),
    }
}

/// Node's own modules, and grpc-js and its loader.
pub(crate) fn is_node_library(file: &str) -> bool {
    file.starts_with("node:") || file.contains("/node_modules/@grpc/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_javascript_frames_and_the_runtime_s_own_code() {
        let f = frame_of("JS:~keepAuditLog /srv/app/server.js:17:22");
        assert_eq!(
            (f.function.as_str(), f.file.as_str(), f.line, f.library),
            ("keepAuditLog", "/srv/app/server.js", 17, false)
        );
        let f = frame_of("JS:^openSync node:fs:570:18");
        assert_eq!(
            (f.function.as_str(), f.file.as_str(), f.line, f.library),
            ("openSync", "node:fs", 570, true)
        );
        let f = frame_of(
            "JS:*maybePushNextMessage /srv/app/node_modules/@grpc/grpc-js/build/src/server-interceptors.js:583:25",
        );
        assert!(f.library && f.line == 583, "{f:?}");
        let f = frame_of("JS:~ /srv/app/server.js:3:1");
        assert_eq!((f.function.as_str(), f.line), ("(anonymous)", 3));
        assert!(frame_of("Builtin:InterpreterEntryTrampoline").library);
    }

    #[test]
    fn reads_a_map_as_it_grows_and_the_newest_name_wins() {
        let mut m = PerfMap::default();
        m.add("1000 20 JS:~a /x.js:1:1\n2000 10 JS:~b /x.js:5:");
        assert!(m.code.contains_key(&0x1000) && !m.code.contains_key(&0x2000));
        m.add("1\n1000 20 JS:^c /x.js:9:1\n");
        let maps = PerfMaps {
            maps: [(7, m)].into_iter().collect(),
        };
        assert_eq!(maps.frame(7, 0x1010).unwrap().function, "c");
        assert_eq!(maps.frame(7, 0x2005).unwrap().line, 5);
        assert!(maps.frame(7, 0x1020).is_none() && maps.frame(8, 0x1000).is_none());
    }
}
