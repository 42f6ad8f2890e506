//! `summary.json`: the report model itself, pretty-printed.

use super::model::Summary;
use super::Exporter;

pub struct Json;

impl Exporter for Json {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn render(&self, summary: &Summary, _dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(summary)?;
        v.push(b'\n');
        Ok(v)
    }
}

/// Reads a `summary.json`, refusing schema versions this build does not know.
pub fn read(path: &std::path::Path) -> anyhow::Result<Summary> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("reading {}", path.display()))
}

/// Parses the text of a `summary.json`, refusing schema versions this build does not know.
pub fn parse(text: &str) -> anyhow::Result<Summary> {
    let raw: serde_json::Value = serde_json::from_str(text)?;
    let version = raw.get("schema_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(super::model::SCHEMA_VERSION)) {
        anyhow::bail!(
            "schema_version {}, this fdsoak reads {}",
            version.map_or("none".into(), |v| v.to_string()),
            super::model::SCHEMA_VERSION
        );
    }
    let mut s: Summary = serde_json::from_value(raw)?;
    // A checkpoint whose writer is gone will never be finished.
    if s.verdict == super::model::Verdict::Running && !writer_alive(&s) {
        s.verdict = super::model::Verdict::Incomplete;
    }
    Ok(s)
}

/// Whether the process that wrote a checkpoint still runs (it can only be told on its own host).
fn writer_alive(s: &Summary) -> bool {
    let Some(c) = &s.checkpoint else { return false };
    s.host == super::build::hostname() && std::path::Path::new(&format!("/proc/{}", c.pid)).exists()
}
