//! What the processes fdsoak started said, as the report tells it: for each,
//! its own complaints of descriptor exhaustion in one sentence, and its last
//! lines when they explain how the run ended, with the log that holds the
//! rest. The terminal and `summary.md` show the last [`SHOWN`] lines;
//! `report.html` shows all the report kept.

use super::model::{Exhaustion, ProcessOutput, Summary};
use crate::analysis::findings::human_secs;
use crate::domain::Role;

/// Last lines the terminal and `summary.md` show of a process.
pub(crate) const SHOWN: usize = 10;

/// One process's part, for a renderer.
pub(crate) struct Told<'a> {
    /// `the target`, `the client under test`.
    pub who: &'static str,
    /// Its log in the report directory.
    pub log: &'a str,
    /// The sentence about its complaints of exhaustion, if it made any.
    pub complaint: Option<String>,
    /// Its last lines, oldest first (empty when they were not kept).
    pub last_lines: &'a [String],
}

impl Told<'_> {
    /// The last `n` of its last lines.
    pub(crate) fn last(&self, n: usize) -> &[String] {
        &self.last_lines[self.last_lines.len().saturating_sub(n)..]
    }

    /// The heading over its last lines.
    pub(crate) fn heading(&self) -> String {
        format!(
            "the last lines {} wrote (its whole output is in {}):",
            self.who, self.log
        )
    }
}

/// The processes with something to tell, in the report's order.
pub(crate) fn told(s: &Summary) -> Vec<Told<'_>> {
    s.output
        .iter()
        .filter(|o| o.exhaustion.is_some() || !o.last_lines.is_empty())
        .map(|o: &ProcessOutput| {
            let who = who(o.role);
            Told {
                who,
                log: &o.log,
                complaint: o.exhaustion.as_ref().map(|e| sentence(who, e)),
                last_lines: &o.last_lines,
            }
        })
        .collect()
}

fn who(role: Role) -> &'static str {
    match role {
        Role::Client => "the client under test",
        Role::Driver => "fdsoak",
        Role::Target => "the target",
    }
}

/// "the target wrote 'Too many open files' 312 times, first at 14.2s, while it held 1,024 of its limit 1,024".
pub(crate) fn sentence(who: &str, e: &Exhaustion) -> String {
    let times = match e.count {
        1 => "once".to_string(),
        n => format!("{} times", crate::analysis::groups::thousands(n)),
    };
    let held = match (e.fds, e.limit) {
        (Some(f), Some(l)) => format!(
            ", while it held {} of its limit {}",
            crate::analysis::groups::thousands(f),
            crate::analysis::groups::thousands(l)
        ),
        (Some(f), None) => format!(", while it held {}", crate::analysis::groups::thousands(f)),
        _ => String::new(),
    };
    format!(
        "{who} wrote '{}' {times}, first at {}{held}",
        e.words,
        when(e.first_at_secs)
    )
}

/// Seconds into the run: to the tenth under a minute, as the terminal's durations after.
fn when(secs: f64) -> String {
    match secs < 60.0 {
        true => format!("{secs:.1}s"),
        false => human_secs(secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_complaint_in_one_sentence() {
        let e = Exhaustion {
            words: "Too many open files".into(),
            count: 312,
            first_at_secs: 14.2,
            fds: Some(1024),
            limit: Some(1024),
        };
        assert_eq!(
            sentence("the target", &e),
            "the target wrote 'Too many open files' 312 times, first at 14.2s, while it held 1,024 of its limit 1,024"
        );
        let once = Exhaustion {
            count: 1,
            fds: None,
            ..e
        };
        assert!(sentence("the client under test", &once).ends_with("once, first at 14.2s"));
    }
}
