//! What a child wrote, kept for the report: every line with its time and
//! stream, the first [`LOG_HEAD`] and the last [`LOG_LAST`] of them (the
//! lines between counted, not kept), each redacted as it comes in, so that
//! nothing kept, shown or written holds a secret. Lines are also scanned for
//! the process's own complaints of descriptor exhaustion ([`exhaustion`]),
//! and echoed to fdsoak's stderr when the user asks (`--show-output`).

use super::exhaustion::{self, Complaint};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Lines kept from the beginning of a child's output…
pub const LOG_HEAD: usize = 1000;
/// …and from its end.
pub const LOG_LAST: usize = 4000;
/// A line longer than this is cut (with a mark).
pub const LINE_MAX: usize = 4096;
/// Lines kept for error messages and the report's last words.
pub const TAIL_LINES: usize = 20;

/// The stream a child wrote a line on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Values to keep out of whatever a child wrote, longest first; each becomes the
/// same mark the report uses for a secret.
#[derive(Debug, Clone, Default)]
pub struct Redactor(Arc<[String]>);

impl Redactor {
    /// Redacts `values` (empty ones are ignored).
    pub fn new(mut values: Vec<String>) -> Redactor {
        values.retain(|v| !v.is_empty());
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Redactor(values.into())
    }

    /// `text` with every value replaced.
    pub fn apply(&self, text: String) -> String {
        let mut out = text;
        for v in self.0.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), crate::domain::REDACTED);
            }
        }
        out
    }
}

/// How the output of the processes fdsoak starts is kept: redacted, and shown
/// on fdsoak's stderr as it comes when `show` is set.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    pub redact: Redactor,
    pub show: bool,
}

impl Keep {
    /// A fresh [`Tail`] for the process named `who` (`target`, `client`).
    pub fn tail(&self, who: &'static str) -> Tail {
        Tail(
            Arc::new(Mutex::new(Output {
                redact: self.redact.clone(),
                echo: self.show.then_some(who),
                ..Output::default()
            })),
            Arc::default(),
        )
    }
}

/// What a child wrote, shared by the tasks that drain its pipes, and how many
/// of those pipes are still open.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<Output>>, Arc<Drains>);

/// The pipes being drained into a tail, and the signal that the last reached its end.
#[derive(Debug, Default)]
pub struct Drains {
    open: AtomicUsize,
    ended: tokio::sync::Notify,
}

#[derive(Debug, Clone)]
struct Line {
    at: Instant,
    stream: Stream,
    text: String,
}

#[derive(Debug, Default)]
struct Output {
    redact: Redactor,
    /// The name each line is shown under on fdsoak's stderr, if shown.
    echo: Option<&'static str>,
    head: Vec<Line>,
    last: VecDeque<Line>,
    /// Lines dropped between the head and the last ones, and their bytes.
    cut: (u64, u64),
    /// Its complaints of descriptor exhaustion: how many, and the first.
    complaints: u64,
    first_complaint: Option<(Instant, Complaint)>,
}

/// The process's own complaints of descriptor exhaustion, as its output held them.
#[derive(Debug, Clone, PartialEq)]
pub struct Complaints {
    pub complaint: Complaint,
    pub count: u64,
    pub first: Instant,
}

impl Tail {
    /// A pipe starts being drained into this tail.
    pub(crate) fn pipe_opened(&self) {
        self.1.open.fetch_add(1, Ordering::SeqCst);
    }

    /// A pipe drained into this tail reached its end.
    pub(crate) fn pipe_ended(&self) {
        if self.1.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.1.ended.notify_waiters();
        }
    }

    /// Waits, at most `within`, until every pipe drained into this tail has
    /// reached its end: once a process has exited, its last lines are then all
    /// kept. A pipe a surviving grandchild holds open ends the wait at `within`.
    pub async fn drained(&self, within: std::time::Duration) {
        let all_ended = async {
            loop {
                // Registered before the count is read, so an end in between is not missed.
                let ended = self.1.ended.notified();
                if self.1.open.load(Ordering::SeqCst) == 0 {
                    return;
                }
                ended.await;
            }
        };
        let _ = tokio::time::timeout(within, all_ended).await;
    }

    /// Keeps a line the child wrote on `stream`.
    pub fn push_from(&self, stream: Stream, text: String) {
        let mut o = crate::domain::lock(&self.0);
        let text = o.redact.apply(cut(plain(text)));
        let at = Instant::now();
        if let Some(c) = exhaustion::complaint(&text) {
            o.complaints += 1;
            o.first_complaint.get_or_insert((at, c));
        }
        if let Some(who) = o.echo {
            eprintln!("[{who}] {text}");
        }
        let line = Line { at, stream, text };
        if o.head.len() < LOG_HEAD {
            o.head.push(line);
            return;
        }
        if o.last.len() == LOG_LAST {
            if let Some(gone) = o.last.pop_front() {
                o.cut.0 += 1;
                o.cut.1 += gone.text.len() as u64 + 1;
            }
        }
        o.last.push_back(line);
    }

    /// Keeps a line the child wrote on stdout.
    pub fn push(&self, line: String) {
        self.push_from(Stream::Stdout, line);
    }

    /// Its last [`TAIL_LINES`] lines.
    pub fn lines(&self) -> Vec<String> {
        self.last_lines(TAIL_LINES)
    }

    /// Its last `n` lines, or fewer.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let o = crate::domain::lock(&self.0);
        let kept = o.head.len() + o.last.len();
        o.head
            .iter()
            .chain(o.last.iter())
            .skip(kept.saturating_sub(n))
            .map(|l| l.text.clone())
            .collect()
    }

    /// Its complaints of descriptor exhaustion, if it wrote any.
    pub fn complaints(&self) -> Option<Complaints> {
        let o = crate::domain::lock(&self.0);
        let (first, complaint) = o.first_complaint?;
        Some(Complaints {
            complaint,
            count: o.complaints,
            first,
        })
    }

    /// The log as a file holds it: one line each, `[+12.345s stderr] text`, the time
    /// since `start`; where lines were dropped, one line says how many.
    pub fn log(&self, start: Instant) -> String {
        let o = crate::domain::lock(&self.0);
        let line = |l: &Line| {
            let t = l.at.saturating_duration_since(start).as_secs_f64();
            format!("[+{t:.3}s {}] {}\n", l.stream.as_str(), l.text)
        };
        let mut out: String = o.head.iter().map(line).collect();
        if o.cut.0 > 0 {
            out += &format!(
                "[… {} lines ({} bytes) cut here: the log keeps the first {LOG_HEAD} lines and the last {LOG_LAST} …]\n",
                o.cut.0, o.cut.1
            );
        }
        out.extend(o.last.iter().map(line));
        out
    }
}

/// `text` without terminal colour and cursor sequences (ESC `[` … final byte), which a
/// log file or a report page would show as noise.
fn plain(text: String) -> String {
    if !text.contains('\x1b') {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to the final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `text` cut to [`LINE_MAX`] bytes, with a mark, on a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > LINE_MAX {
        let mut end = LINE_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [line cut]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_as_it_keeps_and_counts_complaints() {
        let keep = Keep {
            redact: Redactor::new(vec!["tok".into(), "s3cr3t-tok".into(), String::new()]),
            show: false,
        };
        let tail = keep.tail("target");
        tail.push_from(Stream::Stderr, "auth s3cr3t-tok then tok".into());
        assert!(tail.complaints().is_none());
        tail.push_from(
            Stream::Stderr,
            "\x1b[33m WARN\x1b[0m accept4: too many open files".into(),
        );
        tail.push("OSError: [Errno 24] Too many open files".into());
        let lines = tail.lines();
        assert_eq!(lines[0], format!("auth {0} then {0}", crate::domain::REDACTED));
        assert_eq!(lines[1], " WARN accept4: too many open files", "colours dropped");
        let c = tail.complaints().unwrap();
        assert_eq!((c.count, c.complaint), (2, Complaint::Emfile));
        assert!(!tail.log(Instant::now()).contains("tok"));
    }

    #[test]
    fn keeps_the_beginning_and_the_end() {
        let tail = Keep::default().tail("client");
        for i in 0..(LOG_HEAD + LOG_LAST + 7) {
            tail.push(format!("line {i}"));
        }
        tail.push("x".repeat(LINE_MAX * 2));
        let log = tail.log(Instant::now());
        assert!(log.contains("line 0\n") && log.contains("[… 8 lines"));
        assert!(log.ends_with(" [line cut]\n"));
        assert_eq!(tail.last_lines(2)[0], format!("line {}", LOG_HEAD + LOG_LAST + 6));
    }
}
