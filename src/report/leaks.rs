//! One entry per leak: the findings of a process's descriptor gates (growth,
//! residual, CLOSE_WAIT, usage, time to limit, group growth) read as one story,
//! led once by what grew and where it was made, with the gates it failed
//! listed under it. The terminal, `summary.md` and `report.html` all read it;
//! JUnit keeps one case per gate, each with its whole sentence.

use super::model::{FindingRecord, Summary};
use crate::analysis::groups::GroupChange;
use crate::domain::{FindingKind, Gate};

/// Groups a leak names at most.
const NAMED: usize = 3;

/// One process's leak.
pub(crate) struct Leak<'a> {
    /// The process, as findings name it (`target`, `client`, `driver`).
    pub subject: &'a str,
    /// What grew, largest first, each with where it was made.
    pub groups: Vec<&'a GroupChange>,
    /// The likely cause, when the shape is unmistakable.
    pub cause: Option<&'static str>,
    /// The gates it failed, each with what it measured.
    pub gates: Vec<FailedGate<'a>>,
}

/// One gate a leak failed.
pub(crate) struct FailedGate<'a> {
    pub gate: Option<Gate>,
    pub kind: FindingKind,
    pub words: &'a str,
}

impl FailedGate<'_> {
    /// The gate's name as the scenario spells it, or the finding's.
    pub(crate) fn name(&self) -> &'static str {
        self.gate.map_or(self.kind.as_str(), Gate::as_str)
    }
}

impl Leak<'_> {
    /// "target leaks +70 TCP sockets … (channels to it created at …), +3 × /tmp/x; likely …",
    /// or "target leaks" when the source told no groups.
    pub(crate) fn headline(&self) -> String {
        let list: Vec<String> = self.groups.iter().map(|g| g.to_string()).collect();
        let mut out = format!("{} leaks", self.subject);
        if !list.is_empty() {
            out += &format!(" {}", list.join(", "));
        }
        if let Some(c) = self.cause {
            out += &format!("; likely {c}");
        }
        out
    }
}

/// The leaks of `s`, one per process whose descriptor gates failed, and every other
/// finding (notes included) in the report's order.
pub(crate) fn leaks(s: &Summary) -> (Vec<Leak<'_>>, Vec<&FindingRecord>) {
    let mut leaks: Vec<Leak<'_>> = Vec::new();
    let mut others = Vec::new();
    for f in &s.findings {
        if !f.kind.is_leak() || s.is_note(f) {
            others.push(f);
            continue;
        }
        let gate = FailedGate {
            gate: f.kind.gate(),
            kind: f.kind,
            words: gate_words(f),
        };
        if let Some(l) = leaks.iter_mut().find(|l| l.subject == f.subject) {
            l.gates.push(gate);
            continue;
        }
        let groups: Vec<&GroupChange> = s
            .processes
            .iter()
            .find(|p| p.role.as_str() == f.subject)
            .map(|p| p.groups.iter().filter(|g| g.change > 0).take(NAMED).collect())
            .unwrap_or_default();
        leaks.push(Leak {
            subject: &f.subject,
            cause: groups.iter().find_map(|g| g.cause()),
            groups,
            gates: vec![gate],
        });
    }
    (leaks, others)
}

/// What a finding's gate measured: its own words, or, in a report written before they
/// were kept, its sentence without the process and before what grew.
fn gate_words(f: &FindingRecord) -> &str {
    if !f.gate.is_empty() {
        return &f.gate;
    }
    let m = f.message.as_str();
    let m = m
        .strip_prefix(f.subject.as_str())
        .and_then(|r| r.strip_prefix(": "))
        .unwrap_or(m);
    m.split_once("; mostly ").map_or(m, |(head, _)| head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaky() -> Summary {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reports/leaky/summary.json");
        crate::report::json::read(std::path::Path::new(path)).unwrap()
    }

    #[test]
    fn a_process_that_fails_three_descriptor_gates_is_one_leak_with_three_gates_under_it() {
        let mut s = leaky();
        let (found, others) = leaks(&s);
        assert_eq!(found.len(), 1);
        assert!(others.iter().all(|f| !f.kind.is_leak()));
        let l = &found[0];
        assert!(
            l.headline().starts_with("target leaks +168 TCP sockets CLOSE_WAIT"),
            "{}",
            l.headline()
        );
        let names: Vec<&str> = l.gates.iter().map(FailedGate::name).collect();
        assert_eq!(names, ["max_growth_per_hour", "max_residual_fds", "max_close_wait"]);
        // An older report's sentence is cut before what grew and after the process.
        assert!(l
            .gates
            .iter()
            .all(|g| !g.words.contains("mostly") && !g.words.starts_with("target")));
        // A report that keeps the gate's own words uses them.
        s.findings[0].gate = "its own words".into();
        let (found, _) = leaks(&s);
        assert_eq!(found[0].gates[0].words, "its own words");
    }
}
