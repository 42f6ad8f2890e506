//! Helpers that reach for tools outside the test binary: a missing tool's skip (a
//! failure under CI), nftables' one-at-a-time guard, Go and C builds, and git.

use super::{repo, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool a test needs is missing: under CI (`CI` set, as `.ci/run` sets it) that is
/// a failure naming the tool, since CI installs it; elsewhere the test says so and
/// skips. Returns (for the skip) so callers can `return`.
pub(crate) fn tool_missing(tool: &str, install: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is missing, and CI must install it ({install})"
    );
    eprintln!("{tool} is missing: skipped ({install})");
}

/// Root and Debian's `nft` (for kernel blackholes and loss), or says so; with them, the
/// guard that runs such tests one at a time, since nftables tables are the whole machine's
/// and some tests count them.
pub(crate) fn nft_ready() -> Option<std::sync::MutexGuard<'static, ()>> {
    static NFT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if !rustix::process::geteuid().is_root() {
        tool_missing("root (CAP_NET_ADMIN)", "CI runs the tests as root");
        return None;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        tool_missing("nft", ".ci/run installs nftables");
        return None;
    }
    Some(NFT.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The Go program in `package` (a directory of this repository) built from Debian's
/// packaged grpc-go (GOPATH mode, offline), or None, saying so, where Go is not
/// installed (`.ci/run` installs it).
pub(crate) fn go_build(dir: &TempDir, package: &str) -> Option<PathBuf> {
    go_build_with(dir, package, &[])
}

/// `go_build` with more `go build` flags (`-ldflags=-s -w` for a stripped binary); the
/// executable's name carries how many.
pub(crate) fn go_build_with(dir: &TempDir, package: &str, flags: &[&str]) -> Option<PathBuf> {
    if Command::new("go").arg("version").output().is_err() {
        tool_missing("go (for a grpc-go program)", ".ci/run installs golang-go");
        return None;
    }
    let name = package.rsplit('/').next().unwrap_or("go-program");
    let exe = dir.path().join(format!("{name}-{}", flags.len()));
    let status = Command::new("go")
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(format!("./{package}"))
        .current_dir(repo(""))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.path().join("gocache"))
        .status()
        .unwrap();
    assert!(status.success(), "building {package}");
    Some(exe)
}

/// The C program `source` (a path in this repository) compiled with the system's compiler
/// and `flags` (debug info always) into `dir` as `name`.
pub(crate) fn cc(dir: &TempDir, source: &str, name: &str, flags: &[&str]) -> PathBuf {
    let exe = dir.path().join(name);
    let status = Command::new("cc")
        .arg("-g")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(repo(source))
        .status()
        .unwrap();
    assert!(status.success(), "compiling {source}");
    exe
}

/// Runs git in `dir` with a test identity; its trimmed output, or a panic with its error.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The C++ gRPC program `source` (a path in this repository) built against Debian's
/// libgrpc++ into `dir` as `name`, with debug info; None (said) without libgrpc++-dev.
pub(crate) fn grpc_cpp(dir: &TempDir, source: &str, name: &str) -> Option<PathBuf> {
    if !Path::new("/usr/include/grpcpp/grpcpp.h").exists() {
        tool_missing(
            "libgrpc++-dev (for a C++ gRPC program)",
            ".ci/run installs libgrpc++-dev",
        );
        return None;
    }
    let exe = dir.path().join(name);
    let status = Command::new("g++")
        .args(["-g", "-O0", "-o"])
        .arg(&exe)
        .arg(repo(source))
        .args(["-lgrpc++", "-lgrpc", "-lgpr"])
        .status()
        .unwrap();
    assert!(status.success(), "compiling {source}");
    Some(exe)
}

/// Debian's grpc-java and Netty jars a grpc-java server needs, perfmark left out on purpose.
pub(crate) const GRPC_JAVA_JARS: [&str; 14] = [
    "grpc-api",
    "grpc-core",
    "grpc-netty",
    "grpc-context",
    "guava",
    "netty-transport",
    "netty-common",
    "netty-buffer",
    "netty-codec",
    "netty-codec-http",
    "netty-codec-http2",
    "netty-handler",
    "netty-resolver",
    "netty-transport-native-unix-common",
];

/// The jars a grpc-java server that serves (tests/programs/java/HealthServer.java) needs:
/// the stubs' runtime and perfmark besides.
pub(crate) fn grpc_java_server_jars() -> Vec<&'static str> {
    GRPC_JAVA_JARS
        .iter()
        .copied()
        .chain(["grpc-stub", "perfmark-api"])
        .collect()
}

/// The Java program `source` (a path in this repository) compiled with javac against
/// Debian's jars `jars` into `dir`; the classpath that runs it, or None (said) without
/// javac or the jars.
pub(crate) fn javac(dir: &TempDir, source: &str, jars: &[&str]) -> Option<String> {
    let paths: Vec<String> = jars.iter().map(|j| format!("/usr/share/java/{j}.jar")).collect();
    if Command::new("javac").arg("-version").output().is_err() || !paths.iter().all(|p| Path::new(p).exists()) {
        tool_missing(
            "javac and Debian's grpc-java jars",
            ".ci/run installs default-jdk-headless, libgrpc-java and libnetty-java",
        );
        return None;
    }
    let classes = dir.path().join("classes");
    let classpath = std::iter::once(classes.display().to_string())
        .chain(paths)
        .collect::<Vec<_>>()
        .join(":");
    let status = Command::new("javac")
        .arg("-cp")
        .arg(&classpath)
        .arg("-d")
        .arg(&classes)
        .arg(repo(source))
        .status()
        .unwrap();
    assert!(status.success(), "compiling {source}");
    Some(classpath)
}

/// The grpc-js server of the tests (`tests/programs/grpcjs/server.js`), or None (said)
/// without node or its packages (`.ci/run` installs them with `npm ci`).
pub(crate) fn grpcjs_server() -> Option<PathBuf> {
    let dir = repo("tests/programs/grpcjs");
    if Command::new("node").arg("--version").output().is_err() || !dir.join("node_modules/@grpc/grpc-js").exists() {
        tool_missing(
            "node and @grpc/grpc-js",
            ".ci/run installs nodejs and runs npm ci in tests/programs/grpcjs",
        );
        return None;
    }
    Some(dir.join("server.js"))
}
