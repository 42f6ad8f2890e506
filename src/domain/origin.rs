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

    /// The innermost frame of the program's own (not a library's, and not the plumbing a
    /// runtime builds into the program's binary, such as node's libuv); when every frame
    /// is a library's, the innermost that is not the runtime's or the system call's
    /// plumbing (see [`Frame::is_plumbing`]), else the innermost.
    pub fn top_user_frame(&self) -> Option<&Frame> {
        self.frames
            .iter()
            .find(|f| !f.library && !f.is_plumbing())
            .or_else(|| self.frames.iter().find(|f| !f.is_plumbing()))
            .or(self.frames.first())
    }

    /// Where it was made, for a sentence: "at main.go:84 in main.askBackend", or, for a
    /// stack whose every frame is a library's, "on the library's own goroutine, in
    /// google.golang.org/grpc.DialContext.func2" (a thread, or an event loop, elsewhere).
    pub fn place(&self) -> String {
        match self.top_user_frame() {
            None => "at an unknown place".into(),
            Some(f) if !f.library => format!("at {f}"),
            Some(f) => format!("on the library's own {}, in {f}", self.runner()),
        }
    }

    /// What ran the library's code: Go's goroutines, libuv's event loop, or a thread.
    fn runner(&self) -> &'static str {
        let file = |f: &&Frame| f.file.ends_with(".go") || f.file.ends_with(".s") && f.function.contains('.');
        if self
            .frames
            .iter()
            .any(|f| f.file.contains("/deps/uv/") || f.function.starts_with("uv_"))
        {
            "event loop"
        } else if self.frames.iter().any(|f| file(&f)) {
            "goroutine"
        } else {
            "thread"
        }
    }
}

impl Frame {
    /// A frame of a runtime's or the system call's plumbing, never the answer to
    /// "where was it made": Go's runtime and standard library (and its assembly), the C
    /// library, and the sources a runtime builds into its own binary (node's libuv, V8
    /// and `src/`; a JVM's `libjava`/`libnio` entry points).
    pub fn is_plumbing(&self) -> bool {
        let (file, function) = (self.file.as_str(), self.function.as_str());
        const FILES: [&str; 6] = [
            "/deps/uv/",
            "/deps/v8/",
            "/out/../src/",
            "sysdeps/",
            "/glibc",
            "/libio/",
        ];
        const FUNCTIONS: [&str; 10] = [
            "uv_",
            "uv__",
            "Builtins_",
            "v8::",
            "node::",
            "Java_",
            "JVM_",
            "__libc_",
            "__GI_",
            "handleOpen",
        ];
        if file.ends_with(".s") || file.ends_with(".S") || FILES.iter().any(|p| file.contains(p)) {
            return true;
        }
        if FUNCTIONS.iter().any(|p| function.starts_with(p)) || function == "fileOpen" || function == "??" {
            return true;
        }
        go_standard_library(function, file)
    }
}

/// A frame of Go's standard library: a Go file (or its assembly) under
/// `…/src/<package>/`, where the package's first element has no dot (`net`,
/// `runtime/internal/syscall`).
pub fn go_standard_library(function: &str, file: &str) -> bool {
    if !(file.ends_with(".go") || file.ends_with(".s")) {
        return false;
    }
    let slash = function.rfind('/').map_or(0, |i| i + 1);
    let package = function[slash..]
        .find('.')
        .map_or(function, |dot| &function[..slash + dot]);
    let first = package.split('/').next().unwrap_or(package);
    package != "main" && !first.contains('.') && file.contains(&format!("/src/{package}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str) -> Frame {
        Frame {
            function: function.into(),
            file: file.into(),
            line: 1,
            library: true,
        }
    }

    #[test]
    fn a_stack_of_library_frames_is_named_past_the_runtimes_plumbing() {
        let go = Stack {
            frames: vec![
                frame(
                    "runtime/internal/syscall.Syscall6",
                    "/usr/lib/go-1.19/src/runtime/internal/syscall/asm_linux_amd64.s",
                ),
                frame("syscall.socket", "/usr/lib/go-1.19/src/syscall/zsyscall_linux_amd64.go"),
                frame("net.(*Dialer).DialContext", "/usr/lib/go-1.19/src/net/dial.go"),
                frame(
                    "google.golang.org/grpc.DialContext.func2",
                    "/usr/share/gocode/src/google.golang.org/grpc/clientconn.go",
                ),
            ],
            via: OriginVia::Opened,
            source: OriginSource::Kernel,
        };
        assert_eq!(
            go.top_user_frame().unwrap().function,
            "google.golang.org/grpc.DialContext.func2"
        );
        assert!(
            go.place().starts_with("on the library's own goroutine, in "),
            "{}",
            go.place()
        );
        let node = Stack {
            frames: vec![
                frame("uv__socket", "/home/iojs/build/ws/out/../deps/uv/src/unix/core.c"),
                frame("node::TCPWrap::Connect", "/home/iojs/build/ws/out/../src/tcp_wrap.cc"),
            ],
            via: OriginVia::Opened,
            source: OriginSource::Kernel,
        };
        assert_eq!(
            node.top_user_frame().unwrap().function,
            "uv__socket",
            "nothing but plumbing: the innermost"
        );
        assert!(node.place().contains("event loop"));
        let mut own = go.clone();
        own.frames.push(Frame {
            library: false,
            ..frame("main.askBackend", "/src/app/main.go")
        });
        assert_eq!(own.place(), "at /src/app/main.go:1 in main.askBackend");
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
