//! `junit.xml`: one test case per gate threshold checked, so CI systems that
//! read JUnit show which gate failed, with the finding as the failure text.
//! A run that ended in error or was interrupted adds an errored `run` case.

use super::markdown::num;
use super::model::{Summary, Verdict};
use super::Exporter;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub struct Junit;

impl Exporter for Junit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, s: &Summary, _dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let mut suite = TestSuite::new(format!("fdsoak.{}", s.scenario.name));
        suite.set_time(Duration::try_from_secs_f64(s.duration_secs).unwrap_or_default());
        if matches!(
            s.verdict,
            Verdict::Error | Verdict::Interrupted | Verdict::Running | Verdict::Incomplete
        ) {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let text: Vec<&str> = s.findings.iter().map(|f| f.message.as_str()).collect();
            status.set_message(text.first().copied().unwrap_or(s.verdict.as_str()));
            status.set_type(s.verdict.as_str());
            status.set_description(text.join("\n"));
            suite.add_test_case(TestCase::new("run", status));
        }
        for c in &s.checks {
            let status = if c.passed {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let msg = c
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{} = {} exceeds {}", c.gate, c.value, c.threshold));
                st.set_message(msg.clone());
                st.set_type(c.gate.as_str());
                st.set_description(format!(
                    "{msg}\nmeasured {} against threshold {}",
                    num(c.value),
                    num(c.threshold)
                ));
                st
            };
            let mut case = TestCase::new(format!("{} [{}]", c.gate, c.subject), status);
            case.set_classname(format!("fdsoak.{}.{}", s.scenario.name, c.subject));
            suite.add_test_case(case);
        }
        let mut report = Report::new("fdsoak");
        report.add_test_suite(suite);
        Ok(report.to_string()?.into_bytes())
    }
}
