//! Java frames, from the native agent's JVM part (`native/jvm.c`), loaded into
//! a HotSpot JVM as its JVMTI agent. Two tables in the JVM's own memory:
//! per descriptor, the Java frames of the thread that made it (method id and
//! bytecode index, as HotSpot's `AsyncGetCallTrace` walks them), and a log of
//! every loaded class's methods (name, source file, line table), appended at
//! class load. fdsoak reads the log from where it stopped, keeps what it names
//! per process, and turns each frame into `package.Class.method` at
//! `package/File.java:line`.
//!
//! The JDK's, Netty's, grpc-java's and Google's packages are library frames;
//! the first of the program's own is the one an origin names.
//!
//! The memory is the process's to write: every figure is bounded before use,
//! and anything malformed ends the reading, never the run.

use crate::domain::Frame;
use crate::origin::memory::{c_str, find, read_remote, slot_head, u32_at, u64_at, LedgerLayout, SlotCopies, SLOT_HEAD};
use std::collections::HashMap;
use std::sync::Arc;

/// The agent's mappings and their magics.
const FRAMES_MAPPING: &str = "fdsoak-jframes";
const FRAMES_MAGIC: &[u8; 8] = b"FDSOAKJ1";
const METHODS_MAPPING: &str = "fdsoak-jmethods";
const METHODS_MAGIC: &[u8; 8] = b"FDSOAKM1";
const HEADER: usize = 64;
const MAX_SLOTS: usize = 1 << 16;
const MAX_DEPTH: usize = 64;
/// A record the agent finished writing is marked with this.
const WHOLE: u32 = 0x454c_4f48;
/// Bytes of the method log read per visit at most.
const MAX_READ: usize = 64 << 20;
/// Methods kept per process at most; later ones go unnamed.
pub const MAX_METHODS: usize = 1_000_000;

/// Packages whose frames are the runtime's or a library's, not the program's.
const LIBRARY_PACKAGES: [&str; 10] = [
    "java.",
    "javax.",
    "sun.",
    "jdk.",
    "com.sun.",
    "io.netty.",
    "io.grpc.",
    "com.google.",
    "io.perfmark.",
    "kotlinx.",
];

/// The channel ledger's table (grpc-java's ManagedChannels, per site).
/// The channel ledger `native/jvm.c` keeps: each slot's body is a stack of
/// (method id, bytecode index) pairs, 16 bytes each.
const CHANNELS: LedgerLayout = LedgerLayout {
    mapping: "fdsoak-jchannels",
    magic: b"FDSOAKC1",
    max_slots: 4096,
    unit: 16,
    max_units: MAX_DEPTH,
    max_target: 1024,
};

/// A place grpc-java channels were built: the building thread's frames, the target,
/// and how many were built there and shut down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSite {
    pub target: String,
    pub frames: Vec<RawFrame>,
    pub created: u64,
    pub closed: u64,
}

/// The channel sites in `pid`'s ledger; None: the process has none.
pub fn channel_sites(pid: i32) -> Option<Vec<ChannelSite>> {
    let t = CHANNELS.read(pid)?;
    Some(t.bytes.chunks_exact(t.size).filter_map(|s| site(s, t.units)).collect())
}

/// One slot of the channel ledger, if it holds a site whose stack is written.
fn site(s: &[u8], depth: usize) -> Option<ChannelSite> {
    let head = slot_head(s)?;
    let frames = (0..(head.count as usize).min(depth))
        .map(|i| {
            let at = SLOT_HEAD + i * 16;
            Some(RawFrame {
                method: u64_at(s, at)?,
                bci: i32::try_from(u64_at(s, at + 8)? as i64).unwrap_or(-1),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ChannelSite {
        target: c_str(s.get(SLOT_HEAD + depth * 16..)?),
        frames,
        created: head.created,
        closed: head.closed,
    })
}

/// One Java frame as the agent recorded it: a method id and a bytecode index
/// (negative for a native method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawFrame {
    pub method: u64,
    pub bci: i32,
}

/// For a JVM that carries the native agent (fdsoak started it) but whose Java frames
/// its agent cannot record, why, in words for a note; None otherwise.
pub fn unnamed_java(pid: i32) -> Option<String> {
    if !super::hotspot::is_jvm(pid as u32) || find(pid, super::hotspot::TABLE_MAPPING).is_none() {
        return None;
    }
    let why = match find(pid, FRAMES_MAPPING) {
        None => {
            "it did not load fdsoak's JVMTI agent (JAVA_TOOL_OPTIONS did not reach it, or the JVM offers no JVMTI 1.2)"
        }
        Some(base) => {
            let mut head = [0u8; HEADER];
            if !read_remote(pid, &[(base, HEADER)], &mut head) || u32_at(&head, 32)? != 0 {
                return None;
            }
            "the JVM has no AsyncGetCallTrace (it is not HotSpot, or older than JDK 8)"
        }
    };
    Some(why.to_string())
}

/// The Java frames of the live descriptors `live` in `pid`'s table, innermost first.
/// None: the process carries no JVM agent.
pub fn frames(pid: i32, live: &[i32]) -> Option<HashMap<i32, Vec<RawFrame>>> {
    let base = find(pid, FRAMES_MAPPING)?;
    let mut head = [0u8; HEADER];
    if !read_remote(pid, &[(base, HEADER)], &mut head) || &head[..8] != FRAMES_MAGIC || u32_at(&head, 8)? != 1 {
        return None;
    }
    let slots = (u32_at(&head, 12)? as usize).min(MAX_SLOTS);
    let depth = (u32_at(&head, 16)? as usize).min(MAX_DEPTH);
    let high = (u64_at(&head, 24)?.min(slots as u64)) as usize;
    let size = 8 + depth * 16;
    let copies = SlotCopies::read(pid, live, high, size, |fd| base + HEADER + fd * size)?;
    let out = copies
        .each()
        .filter_map(|(fd, copy, seq_after)| Some((fd, whole(copy, seq_after, depth)?)))
        .collect();
    Some(out)
}

/// A slot's frames, if it was whole and holds any.
fn whole(copy: &[u8], seq_after: u32, depth: usize) -> Option<Vec<RawFrame>> {
    let (seq, n) = (u32_at(copy, 0)?, i32::from_le_bytes(copy.get(4..8)?.try_into().ok()?));
    if seq % 2 == 1 || seq != seq_after || n <= 0 {
        return None;
    }
    (0..(n as usize).min(depth))
        .map(|i| {
            let at = 8 + i * 16;
            Some(RawFrame {
                bci: i32::from_le_bytes(copy.get(at..at + 4)?.try_into().ok()?),
                method: u64_at(copy, at + 8)?,
            })
        })
        .collect()
}

/// A method as the agent logged it.
#[derive(Debug)]
struct Method {
    class: Arc<str>,
    file: Arc<str>,
    name: Box<str>,
    /// (first bytecode index, line), sorted.
    lines: Box<[(u32, u32)]>,
}

/// The method logs of the JVMs read so far, per process, each from where it stopped.
#[derive(Debug, Default)]
pub struct Methods {
    logs: HashMap<u32, Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// The mapping's address: another one under the same pid is another process.
    base: usize,
    read: u64,
    methods: HashMap<u64, Method>,
    dropped: u64,
}

impl Methods {
    /// Reads what `pid`'s log gained since the last visit; None when it has none, else
    /// whether this was the first visit to this process.
    pub fn refresh(&mut self, pid: u32) -> Option<bool> {
        let base = find(pid as i32, METHODS_MAPPING)?;
        if !self.logs.contains_key(&pid) && self.logs.len() >= 16 {
            self.logs
                .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        let log = self.logs.entry(pid).or_default();
        let first = log.base != base;
        if first {
            *log = Log { base, ..Log::default() };
        }
        log.refresh(pid as i32);
        Some(first)
    }

    /// The frames `pid`'s log names for `raw`, innermost first; a method it does not
    /// know is a frame named "??".
    pub fn name(&self, pid: u32, raw: &[RawFrame]) -> Vec<Frame> {
        let log = self.logs.get(&pid);
        raw.iter()
            .map(|f| match log.and_then(|l| l.methods.get(&f.method)) {
                Some(m) => m.frame(f.bci),
                None => Frame {
                    function: "??".into(),
                    file: String::new(),
                    line: 0,
                    library: true,
                },
            })
            .collect()
    }
}

impl Log {
    fn refresh(&mut self, pid: i32) {
        let mut head = [0u8; HEADER];
        if !read_remote(pid, &[(self.base, HEADER)], &mut head) || &head[..8] != METHODS_MAGIC {
            return;
        }
        let (Some(end), Some(capacity)) = (u64_at(&head, 8), u64_at(&head, 16)) else {
            return;
        };
        let end = end.min(capacity);
        if end <= self.read {
            return;
        }
        let len = ((end - self.read) as usize).min(MAX_READ);
        let mut bytes = vec![0u8; len];
        if !read_remote(pid, &[(self.base + HEADER + self.read as usize, len)], &mut bytes) {
            return;
        }
        let mut at = 0;
        while let Some((used, class)) = record(&bytes[at..]) {
            at += used;
            for (id, method) in class {
                if self.methods.len() < MAX_METHODS || self.methods.contains_key(&id) {
                    self.methods.insert(id, method);
                } else {
                    self.dropped += 1;
                }
            }
        }
        self.read += at as u64;
    }
}

/// One whole record at the start of `b`: its length and its class's methods by id.
/// None: not whole yet, or malformed (the reading stops there).
fn record(b: &[u8]) -> Option<(usize, Vec<(u64, Method)>)> {
    let len = u32_at(b, 0)? as usize;
    if u32_at(b, 4)? != WHOLE || len < 8 || len > b.len() {
        return None;
    }
    let mut r = Reader { b: &b[8..len], at: 0 };
    let signature = r.str()?;
    let source = r.str()?;
    let (class, file) = class_and_file(signature, source);
    let n = r.u32()? as usize;
    let mut methods = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let id = r.u64()?;
        let name = r.str()?.into();
        let count = r.u16()? as usize;
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            lines.push((r.u32()?, r.u32()?));
        }
        lines.sort_unstable();
        methods.push((
            id,
            Method {
                class: class.clone(),
                file: file.clone(),
                name,
                lines: lines.into(),
            },
        ));
    }
    Some((len, methods))
}

/// `Lcom/example/Server;` and `Server.java` → `com.example.Server` and
/// `com/example/Server.java`.
fn class_and_file(signature: &str, source: &str) -> (Arc<str>, Arc<str>) {
    let name = signature
        .strip_prefix('L')
        .and_then(|s| s.strip_suffix(';'))
        .unwrap_or(signature);
    let file = match (name.rsplit_once('/'), source) {
        (_, "") => String::new(),
        (Some((package, _)), source) => format!("{package}/{source}"),
        (None, source) => source.to_string(),
    };
    (name.replace('/', ".").into(), file.into())
}

impl Method {
    fn frame(&self, bci: i32) -> Frame {
        let line = u32::try_from(bci)
            .ok()
            .and_then(|bci| self.lines.iter().rev().find(|(start, _)| *start <= bci))
            .map_or(0, |(_, line)| *line);
        Frame {
            function: format!("{}.{}", self.class, self.name),
            file: self.file.to_string(),
            line,
            library: LIBRARY_PACKAGES.iter().any(|p| self.class.starts_with(p)),
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_str(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u16).to_le_bytes());
        b.extend(s.as_bytes());
    }

    /// A method as a test writes it: id, name, (bytecode index, line) pairs.
    type Logged<'a> = (u64, &'a str, &'a [(u32, u32)]);

    fn class_record(signature: &str, source: &str, methods: &[Logged<'_>]) -> Vec<u8> {
        let mut p = Vec::new();
        put_str(&mut p, signature);
        put_str(&mut p, source);
        p.extend((methods.len() as u32).to_le_bytes());
        for (id, name, lines) in methods {
            p.extend(id.to_le_bytes());
            put_str(&mut p, name);
            p.extend((lines.len() as u16).to_le_bytes());
            for (bci, line) in *lines {
                p.extend(bci.to_le_bytes());
                p.extend(line.to_le_bytes());
            }
        }
        let len = (8 + p.len()).div_ceil(8) * 8;
        let mut r = Vec::new();
        r.extend((len as u32).to_le_bytes());
        r.extend(WHOLE.to_le_bytes());
        r.extend(p);
        r.resize(len, 0);
        r
    }

    #[test]
    fn a_frame_is_named_by_its_class_method_and_the_line_of_its_bytecode() {
        let rec = class_record(
            "Lcom/example/Server;",
            "Server.java",
            &[(7, "keepAuditLog", &[(10, 58), (0, 57)]), (9, "main", &[])],
        );
        let (used, methods) = record(&rec).unwrap();
        assert_eq!(used, rec.len());
        let m: HashMap<u64, Method> = methods.into_iter().collect();
        let f = m[&7].frame(12);
        assert_eq!(
            (f.function.as_str(), f.file.as_str(), f.line, f.library),
            ("com.example.Server.keepAuditLog", "com/example/Server.java", 58, false)
        );
        assert_eq!(m[&7].frame(3).line, 57);
        assert_eq!(m[&7].frame(-3).line, 0, "a native method has no line");
        assert_eq!(m[&9].frame(0).line, 0);
    }

    #[test]
    fn the_runtimes_and_libraries_packages_are_library_frames() {
        let rec = class_record(
            "Ljava/io/FileInputStream;",
            "FileInputStream.java",
            &[(1, "<init>", &[])],
        );
        let (_, methods) = record(&rec).unwrap();
        assert!(methods[0].1.frame(0).library);
        let rec = class_record("LHealthServer;", "HealthServer.java", &[(1, "check", &[])]);
        let (_, methods) = record(&rec).unwrap();
        let f = methods[0].1.frame(0);
        assert!(!f.library);
        assert_eq!(f.file, "HealthServer.java", "the default package has no directory");
    }

    #[test]
    fn a_record_not_yet_whole_or_malformed_ends_the_reading() {
        let mut rec = class_record("LA;", "A.java", &[(1, "m", &[(0, 1)])]);
        let whole = rec.clone();
        rec[4] = 0;
        assert!(record(&rec).is_none(), "not marked whole");
        assert!(record(&whole[..whole.len() - 8]).is_none(), "cut short");
        let mut lying = whole.clone();
        lying[0..4].copy_from_slice(&4u32.to_le_bytes());
        assert!(record(&lying).is_none(), "shorter than its own header");
        let mut count = whole;
        let at = 8 + (2 + 3) + (2 + 6);
        count[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(record(&count).is_none(), "more methods than bytes");
    }

    #[test]
    fn only_a_slot_unchanged_and_even_across_the_copy_is_whole() {
        let mut slot = vec![0u8; 8 + 2 * 16];
        slot[..4].copy_from_slice(&2u32.to_le_bytes());
        slot[4..8].copy_from_slice(&1i32.to_le_bytes());
        slot[8..12].copy_from_slice(&5i32.to_le_bytes());
        slot[16..24].copy_from_slice(&0xabcu64.to_le_bytes());
        assert_eq!(whole(&slot, 2, 2), Some(vec![RawFrame { method: 0xabc, bci: 5 }]));
        assert_eq!(whole(&slot, 4, 2), None);
        slot[4..8].copy_from_slice(&(-2i32).to_le_bytes());
        assert_eq!(
            whole(&slot, 2, 2),
            None,
            "AsyncGetCallTrace's error codes are no frames"
        );
    }
}
