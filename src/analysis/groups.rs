//! What leaked, by name: the fingerprints the sampler takes of one process
//! (at the end of the baseline, through the load, at its peak and at the end)
//! turned into the groups that grew, end minus baseline, largest first, and
//! the significance rule for small leaks.
//!
//! A group is *steady* when its count never fell from the baseline through
//! every fingerprint of the load phases to the end of the run, rose in at
//! least two separate steps, and ended above the baseline. Connection churn
//! rises and falls and ends where it began; a pool opened once rises in one
//! step; neither is steady. Three identical file handles that pile up one by
//! one and stay after the drain are.
//!
//! Fixed-size state: three fingerprints (each at most `MAX_GROUPS` groups)
//! and one small trend per group, capped.

use crate::domain::{ChannelTally, Fingerprint, GroupKey, GroupKind, GroupOrigins, OriginVia, Stack};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The report keeps this many groups per process.
pub const SHOWN_GROUPS: usize = 10;

/// Groups followed through the load at most; ones first seen beyond it are not.
const MAX_TRENDS: usize = 4000;

/// One group of descriptors that grew over the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupChange {
    pub kind: GroupKind,
    /// What they point at: a path, `CLOSE_WAIT from clients of :50051`, `eventfd`.
    pub what: String,
    /// Count at the end of the baseline phase.
    pub baseline: u64,
    /// The most seen in any fingerprint (the one at the process's peak among them).
    pub peak: u64,
    /// Count at the end of the run.
    pub end: u64,
    /// End minus baseline.
    pub change: i64,
    /// Grew step by step through the load and stayed after the drain (the significance rule).
    pub steady: bool,
    /// Where the descriptors it gained were opened (with `--origin`): the stacks
    /// whose count grew from the baseline to the end, most first, at most [`SHOWN_ORIGINS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<Origin>,
}

/// One creating stack of a group's new descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Origin {
    /// Descriptors (or, for `via = channel`, channels) it added from the baseline to the end.
    pub count: u64,
    /// From the kernel ledger: descriptors this stack made over the run (in every group;
    /// since fdsoak attached, for an attached process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<u64>,
    /// From the kernel ledger: how many of those were still open at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_open: Option<u64>,
    /// From the channel ledger, for `via = channel`: the target this site dialled, and
    /// the channels it created over the run, closed, and left open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelTally>,
    #[serde(flatten)]
    pub stack: Stack,
}

impl Origin {
    /// "13 channels created at checker.py:27 in check_with_retry".
    pub fn sentence(&self) -> String {
        let place = self.stack.place();
        match self.stack.via {
            OriginVia::Channel if self.channels.is_some() => {
                let c = self
                    .channels
                    .as_ref()
                    .map_or((0, 0, 0), |c| (c.created, c.closed, c.still_open));
                format!(
                    "channels to it created {place}: created {}, closed {}, {} still open",
                    thousands(c.0),
                    thousands(c.1),
                    thousands(c.2)
                )
            }
            OriginVia::Channel => format!(
                "{} channel{} created {place}",
                self.count,
                if self.count == 1 { "" } else { "s" }
            ),
            OriginVia::Opened => match (self.opened, self.still_open) {
                (Some(opened), Some(open)) => format!(
                    "{} {place}: opened {}, closed {}, {} still open",
                    self.count,
                    thousands(opened),
                    thousands(opened.saturating_sub(open)),
                    thousands(open)
                ),
                _ => format!("{} {place}", self.count),
            },
            OriginVia::BeforeAttach => format!("{} open before fdsoak attached", self.count),
        }
    }
}

/// 4812 as "4,812".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Origins kept per grown group in the report.
pub const SHOWN_ORIGINS: usize = 3;

impl GroupChange {
    /// The likely cause, when the shape is unmistakable.
    pub fn cause(&self) -> Option<&'static str> {
        let w = self.what.as_str();
        match self.kind {
            GroupKind::Tcp if w.starts_with("ESTABLISHED to ") && w.ends_with("from an ephemeral port") => {
                Some("a client that opens channels and does not close them")
            }
            GroupKind::Tcp if w.starts_with("CLOSE_WAIT from clients of ") => {
                Some("accepted connections never closed after the peer left")
            }
            GroupKind::Tcp if w.starts_with("CLOSE_WAIT to ") => {
                Some("outgoing connections the peer closed and this process never did")
            }
            GroupKind::Unix if w.starts_with("to ") => Some("a client that opens connections and does not close them"),
            GroupKind::Unix if w.ends_with(", the client gone") => {
                Some("accepted connections never closed after the peer left")
            }
            GroupKind::File if self.change >= 2 => Some("a file opened per request"),
            _ => None,
        }
    }
}

impl fmt::Display for GroupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.change;
        match self.kind {
            GroupKind::Tcp => write!(f, "{d:+} TCP sockets {}", self.what),
            GroupKind::Unix => write!(f, "{d:+} Unix sockets {}", self.what),
            GroupKind::Socket => write!(f, "{d:+} other sockets ({})", self.what),
            GroupKind::Pipe => write!(f, "{d:+} pipes"),
            GroupKind::Anon => write!(f, "{d:+} anon_inode:[{}]", self.what),
            GroupKind::File | GroupKind::Device | GroupKind::Other => write!(f, "{d:+} × {}", self.what),
        }?;
        if let Some(o) = self.origins.first() {
            write!(f, " (opened by {})", o.sentence())?;
        }
        Ok(())
    }
}

/// "mostly +398 TCP sockets CLOSE_WAIT from clients of :50051, +12 × /tmp/cache.db; likely …", or "".
pub fn mostly(groups: &[GroupChange]) -> String {
    let top: Vec<&GroupChange> = groups.iter().filter(|g| g.change > 0).take(3).collect();
    if top.is_empty() {
        return String::new();
    }
    let list: Vec<String> = top.iter().map(|g| g.to_string()).collect();
    let cause = top.iter().find_map(|g| g.cause());
    format!(
        "; mostly {}{}",
        list.join(", "),
        cause.map_or(String::new(), |c| format!(": likely {c}"))
    )
}

#[derive(Debug, Clone, Copy)]
struct Trend {
    prev: u64,
    max: u64,
    steps: u32,
    fell: bool,
}

impl Trend {
    fn new(n: u64) -> Self {
        Trend {
            prev: n,
            max: n,
            steps: 0,
            fell: false,
        }
    }

    fn step(&mut self, n: u64) {
        self.fell |= n < self.prev;
        self.steps += u32::from(n > self.prev);
        self.prev = n;
        self.max = self.max.max(n);
    }
}

/// The fingerprints of one process, as the run goes.
#[derive(Debug, Clone, Default)]
pub struct GroupTracker {
    baseline: Option<Fingerprint>,
    peak: Option<(u64, Fingerprint)>,
    last: Option<Fingerprint>,
    trends: BTreeMap<GroupKey, Trend>,
    taken: u64,
    /// With an origin agent: the origins at the end of the baseline, and the latest.
    baseline_origins: Option<GroupOrigins>,
    last_origins: Option<GroupOrigins>,
}

impl GroupTracker {
    /// Takes one fingerprint, taken in `phase` while the process held `total` descriptors.
    pub fn observe(&mut self, phase: usize, in_load_window: bool, total: u64, fp: &Fingerprint) {
        self.taken += 1;
        if self.peak.as_ref().is_none_or(|(n, _)| total >= *n) {
            self.peak = Some((total, fp.clone()));
        }
        self.last = Some(fp.clone());
        if phase == 0 {
            // The last fingerprint of the baseline phase is the reference.
            self.baseline = Some(fp.clone());
            self.trends = fp
                .iter()
                .take(MAX_TRENDS)
                .map(|(k, n)| (k.clone(), Trend::new(*n)))
                .collect();
        } else if in_load_window {
            for (k, t) in self.trends.iter_mut() {
                t.step(fp.get(k).copied().unwrap_or(0));
            }
            for (k, n) in fp.iter() {
                if self.trends.len() >= MAX_TRENDS {
                    break;
                }
                if !self.trends.contains_key(k) {
                    let mut t = Trend::new(0);
                    t.step(*n);
                    self.trends.insert(k.clone(), t);
                }
            }
        }
    }

    /// Takes the origins that came with a fingerprint of `phase`.
    pub fn observe_origins(&mut self, phase: usize, origins: &GroupOrigins) {
        if phase == 0 {
            self.baseline_origins = Some(origins.clone());
        }
        self.last_origins = Some(origins.clone());
    }

    /// The stacks whose count in group `k` grew from the baseline to the end, most first.
    fn origins_of(&self, k: &GroupKey) -> Vec<Origin> {
        let Some(last_fp) = self.last_origins.as_ref() else {
            return Vec::new();
        };
        let Some(last) = last_fp.groups.get(k) else {
            return Vec::new();
        };
        let base = self.baseline_origins.as_ref().and_then(|o| o.groups.get(k));
        let before = |s: &Stack| {
            base.and_then(|b| b.iter().find(|(x, _)| **x == *s))
                .map_or(0, |(_, n)| *n)
        };
        let mut out: Vec<Origin> = last
            .iter()
            .filter_map(|(s, n)| {
                let count = n.saturating_sub(before(s));
                let tally = last_fp.tallies.get(s);
                (count > 0).then(|| Origin {
                    count,
                    opened: tally.map(|t| t.opened),
                    still_open: tally.map(|t| t.open),
                    channels: last_fp.channels.get(s).cloned(),
                    stack: (**s).clone(),
                })
            })
            .collect();
        // Where the channels were made comes first: the sockets' own stacks are the library's.
        out.sort_by_key(|o| (o.stack.via != OriginVia::Channel, std::cmp::Reverse(o.count)));
        out.truncate(SHOWN_ORIGINS);
        out
    }

    /// How many fingerprints were taken.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The groups that grew from the baseline to the end, largest first: at most
    /// [`SHOWN_GROUPS`], and after them any steady group beyond those (at most as many again).
    pub fn changes(&self) -> Vec<GroupChange> {
        let (Some(base), Some(last)) = (&self.baseline, &self.last) else {
            return Vec::new();
        };
        let peak = self.peak.as_ref().map(|(_, fp)| fp);
        let mut out: Vec<GroupChange> = last
            .iter()
            .filter_map(|(k, end)| {
                let b = base.get(k).copied().unwrap_or(0);
                let change = *end as i64 - b as i64;
                (change > 0).then(|| {
                    let trend = self.trends.get(k).map(|t| {
                        let mut t = *t;
                        t.step(*end);
                        t
                    });
                    let steady = trend.is_some_and(|t| !t.fell && t.steps >= 2);
                    let at_peak = peak.and_then(|p| p.get(k).copied()).unwrap_or(0);
                    GroupChange {
                        kind: k.kind,
                        what: k.what.clone(),
                        baseline: b,
                        peak: trend.map_or(0, |t| t.max).max(at_peak).max(*end),
                        end: *end,
                        change,
                        steady,
                        origins: self.origins_of(k),
                    }
                })
            })
            .collect();
        // Largest first; among equals, the ones whose cause can be named.
        out.sort_by(|a, b| {
            b.change
                .cmp(&a.change)
                .then_with(|| b.cause().is_some().cmp(&a.cause().is_some()))
                .then_with(|| a.what.cmp(&b.what))
        });
        let beyond: Vec<GroupChange> = out
            .iter()
            .skip(SHOWN_GROUPS)
            .filter(|g| g.steady)
            .take(SHOWN_GROUPS)
            .cloned()
            .collect();
        out.truncate(SHOWN_GROUPS);
        out.extend(beyond);
        out
    }
}

#[cfg(test)]
mod tests;
