//! Helpers shared by the integration tests: run the real `fdsoak` binary,
//! start real `fdsoak serve` targets, wait on conditions with deadlines.
#![allow(dead_code)]

use fdsoak::analysis::ProcessAnalysis;
use fdsoak::report::model::Summary;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const FDSOAK: &str = env!("CARGO_BIN_EXE_fdsoak");

pub(crate) mod netns;
mod tools;
#[allow(unused_imports)] // not every test binary uses them
pub(crate) use tools::*;

pub(crate) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A directory removed when dropped (tempfile's), with a helper to write files into it.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("fdsoak-test-{tag}-"))
                .tempdir()
                .unwrap(),
        )
    }
    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }
    /// Writes a file inside the directory and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A finished `fdsoak run`.
pub(crate) struct RunResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub out: TempDir,
}

/// Reads a report directory's summary.json through the typed model.
pub(crate) fn read_summary(dir: &Path) -> Summary {
    fdsoak::report::json::read(&dir.join("summary.json")).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

impl RunResult {
    pub(crate) fn summary(&self) -> Summary {
        let p = self.out.path().join("summary.json");
        fdsoak::report::json::read(&p).unwrap_or_else(|e| panic!("{}: {e:#}\nstderr:\n{}", p.display(), self.stderr))
    }
    pub(crate) fn verdict(&self) -> String {
        self.summary().verdict.as_str().to_string()
    }
    /// Finding kinds for a subject ("target", "driver", "run", ...).
    pub(crate) fn finding_kinds(&self, subject: &str) -> Vec<String> {
        self.summary()
            .findings
            .iter()
            .filter(|f| f.subject == subject)
            .map(|f| f.kind.to_string())
            .collect()
    }
    pub(crate) fn process(&self, role: &str) -> ProcessAnalysis {
        self.summary()
            .processes
            .into_iter()
            .find(|p| p.role.as_str() == role)
            .unwrap_or_else(|| panic!("no {role} in the report"))
    }
    /// The largest group that grew in a process, as the report names it.
    pub(crate) fn top_group(&self, role: &str) -> fdsoak::analysis::groups::GroupChange {
        let p = self.process(role);
        p.groups
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no group grew in the {role}: {p:?}\n{}", self.context()))
    }
    /// The target's port, from the report.
    pub(crate) fn target_port(&self) -> u16 {
        let addr = self.summary().target.address.expect("the target's address");
        addr.rsplit(':').next().unwrap().parse().unwrap()
    }
    /// The message of the first finding of this kind about this subject.
    pub(crate) fn finding(&self, subject: &str, kind: &str) -> String {
        let s = self.summary();
        let f = s
            .findings
            .iter()
            .find(|f| f.subject == subject && f.kind.as_str() == kind);
        f.unwrap_or_else(|| panic!("no {kind} finding on the {subject}: {}", self.context()))
            .message
            .clone()
    }
    pub(crate) fn context(&self) -> String {
        format!("exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `fdsoak run <scenario> --out <tmp> -q <args>` to completion.
pub(crate) fn run(scenario: &Path, args: &[&str]) -> RunResult {
    run_env(scenario, args, &[])
}

/// [`run`], with these environment variables set for fdsoak.
pub(crate) fn run_env(scenario: &Path, args: &[&str], env: &[(&str, &Path)]) -> RunResult {
    let out = TempDir::new("report");
    let o: Output = Command::new(FDSOAK)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out.path())
        .arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    RunResult {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        out,
    }
}

/// A scenario fixture from tests/scenarios with text replaced, written to a temp dir.
pub(crate) fn fixture(dir: &TempDir, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo(&format!("tests/scenarios/{name}"))).unwrap();
    for (a, b) in replace {
        assert!(text.contains(a), "fixture {name} has no {a:?}");
        text = text.replace(a, b);
    }
    dir.write(name, &text)
}

/// A `fdsoak serve` process started by the test, killed on drop.
pub(crate) struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// With `--metrics-addr`: the URL of its process metrics.
    pub metrics: Option<String>,
}

impl Server {
    /// `fdsoak serve` with its process metrics served on a free port too.
    pub(crate) fn with_metrics(args: &[&str]) -> Server {
        let args: Vec<&str> = ["--metrics-addr", "127.0.0.1:0"].iter().chain(args).copied().collect();
        Server::start(&args)
    }

    pub(crate) fn start(args: &[&str]) -> Server {
        let mut child = Command::new(FDSOAK)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
        let metrics = args.contains(&"--metrics-addr").then(|| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim().rsplit(' ').next().unwrap().to_string()
        });
        Server { child, addr, metrics }
    }
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server program started by the test that first prints "listening on ADDR" (the Go
/// and Node test servers); killed on drop.
pub(crate) struct Listening {
    pub child: Child,
    pub addr: String,
}

impl Listening {
    pub(crate) fn start(mut cmd: Command) -> Listening {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.split_whitespace().last().unwrap_or_default().to_string();
        assert!(addr.contains(':'), "the server printed {line:?}");
        Listening { child, addr }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds, panicking with `what` at the deadline:
/// the tests' one polling loop.
pub(crate) fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_until`] from async code, on a blocking thread, so that the runtime's
/// own tasks (a proxy the test drives) keep running meanwhile.
pub(crate) async fn wait_until_async(deadline: Duration, what: &str, cond: impl FnMut() -> bool + Send + 'static) {
    let what = what.to_string();
    tokio::task::spawn_blocking(move || wait_until(deadline, &what, cond))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}

/// A report's samples.csv rows, through the typed row; the rows complete so far while a run writes it.
pub(crate) fn samples(dir: &Path) -> Vec<fdsoak::series::SampleRow> {
    match fdsoak::series::read_rows(&dir.join(fdsoak::series::SAMPLES_CSV)) {
        Ok(rows) => rows.map_while(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// Rows of a report's samples.csv for one role ("target", "driver"), once the file has them.
pub(crate) fn sample_rows(dir: &Path, role: &str) -> usize {
    samples(dir).iter().filter(|r| r.role.as_str() == role).count()
}

/// Waits for a child to exit within the deadline and returns its code.
pub(crate) fn wait_exit(child: &mut Child, deadline: Duration) -> i32 {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "process did not exit within {deadline:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// This process's open descriptors (the listing's own handle left out).
pub(crate) fn own_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// Waits until this process is back to `baseline` descriptors, or fails naming `what`.
pub(crate) async fn settle_to(baseline: usize, what: &str) {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = own_fds();
        if now == baseline {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: {now} FDs open, baseline {baseline}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a scenario in this process, as a library user would, writing the report into `out`.
pub(crate) async fn run_in_process(scenario: &Path, out: &TempDir) -> fdsoak::run::RunOutcome {
    run_in_process_with(scenario, out, |_| {}).await
}

/// [`run_in_process`], with the scenario changed by `edit` first.
pub(crate) async fn run_in_process_with(
    scenario: &Path,
    out: &TempDir,
    edit: impl FnOnce(&mut fdsoak::scenario::Scenario),
) -> fdsoak::run::RunOutcome {
    let mut cfg = run_config(scenario, out);
    edit(&mut cfg.scenario);
    fdsoak::run::run(cfg, std::future::pending()).await.unwrap()
}

/// The configuration of an in-process run of `scenario`, its report written into `out`.
pub(crate) fn run_config(scenario: &Path, out: &TempDir) -> fdsoak::run::RunConfig {
    fdsoak::run::RunConfig {
        scenario: fdsoak::rpc::load_scenario(scenario).unwrap(),
        scenario_file: scenario.to_path_buf(),
        out_dir: Some(out.path().to_path_buf()),
        reports_root: out.path().to_path_buf(),
        fdsoak_exe: FDSOAK.into(),
        progress: false,
        shard: None,
        start_at: None,
        overrides: Vec::new(),
        label: None,
        workdir: None,
        show_output: false,
    }
}

/// Compares every pair of runs with `fdsoak compare` and asserts none reads as a regression.
pub(crate) fn assert_no_regression_between(runs: &[RunResult]) {
    for a in 0..runs.len() {
        let b = (a + 1) % runs.len();
        let o = Command::new(FDSOAK)
            .arg("compare")
            .args([runs[a].out.path(), runs[b].out.path()])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "runs {a} vs {b}:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// The 1-based line of repository file `file` holding `needle`.
pub(crate) fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(repo(file)).unwrap();
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no {needle:?}"))
}

/// Blackholes through the proxy, every 1.5 s for 0.9 s, so a client's calls fail: a
/// client-only scenario of 15 s (its command comes from `--client`).
pub(crate) fn stalls(dir: &TempDir) -> std::path::PathBuf {
    dir.write(
        "stalls.toml",
        "name = \"stalls\"\n[client]\ncommand = \"true\"\n[sampler]\ninterval = \"200ms\"\n\
         [[phases]]\nname = \"baseline\"\nduration = \"3s\"\n\
         [[phases]]\nname = \"stalls\"\nduration = \"10s\"\n  [[phases.faults]]\n  kind = \"blackhole\"\n  every = \"1500ms\"\n  duration = \"900ms\"\n\
         [[phases]]\nname = \"drain\"\nduration = \"2s\"\n",
    )
}
