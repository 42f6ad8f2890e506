//! Scenario files: parsing, locating errors, and semantic validation.
//!
//! A scenario is TOML. Parsing happens in two passes over the same text: serde
//! builds the typed [`Scenario`], and a spanned parse of the raw document maps
//! any error (syntax, type, or a rule from [`validate`]) back to the file, the
//! line and the dotted key path, so a user always learns where to look.

pub mod defaults;
pub(crate) mod duration;
mod export;
mod fault;
mod fds;
mod gates;
mod knobs;
mod model;
mod origin;
mod secret;
mod shard;
pub(crate) mod stretch;
mod validate;
mod workload;

pub use gates::{Abort, Gates, ABORTABLE};

pub use export::ExportSpec;
pub use fault::{Direction, Fault, FaultKind, H2Error, Peer, ServerControl, Via};
pub use fds::{FdSourceSpec, MetricsUrl, MAX_FDS_METRIC, OPEN_FDS_METRIC};
pub use knobs::{Knobs, Reflection};
pub use model::*;
pub use origin::OriginSpec;
pub use secret::{Secret, REDACTED};
pub use shard::{Shard, INDEX_ENV};
pub use workload::*;

use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// An error a user must fix in a scenario file. Always maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: key `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `phases[1].workloads[0].rate`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }
    pub fn index(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The JSON Schema of a scenario file, generated from this model (committed as
/// `schema/scenario.schema.json`, which each file in `scenarios/` names in a `#:schema`
/// comment for editors; a test keeps the two equal). Unknown keys are refused, as
/// when a run reads the file; rules across keys are `fdsoak validate`'s.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Scenario).to_value();
    if let Some(o) = schema.as_object_mut() {
        o.insert("$id".into(), "https://fdsoak.dev/schema/scenario.schema.json".into());
        o.insert("description".into(), "An fdsoak scenario file (TOML)".into());
    }
    schema
}

/// Reads, parses and validates a scenario file; its rpc methods are not resolved yet (see `rpc::load_scenario`).
pub fn read_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses a server's address in gRPC's naming: `HOST:PORT` (an IP or a name,
/// resolved here), `unix:///ABS/PATH`, `unix:PATH` or `unix-abstract:NAME`.
pub fn parse_address(s: &str) -> Result<crate::net::Address, crate::net::AddressError> {
    s.parse()
}

/// A path a scenario names, made absolute: as given when absolute; else under the
/// directory of the scenario file `scenario`, if it exists there; else under the current
/// directory. None when it exists in none of them.
pub fn locate_file(scenario: &Path, path: &Path) -> Option<PathBuf> {
    let base = scenario.parent().unwrap_or(Path::new("."));
    let found = if path.is_absolute() {
        Some(path.to_path_buf())
    } else {
        let cwd = std::env::current_dir().ok().map(|d| d.join(path));
        [Some(base.join(path)), cwd].into_iter().flatten().find(|c| c.exists())
    };
    found.filter(|p| p.exists()).and_then(|p| std::fs::canonicalize(p).ok())
}

/// Reads a file a scenario names, of at most `max` bytes (so `/dev/zero` is an error, not a hang).
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {} KiB", max >> 10)));
    }
    Ok(bytes)
}

/// An error at `key` of the scenario file at `path`, pointing at that key's line.
pub fn error_at(path: &Path, key: &KeyPath, message: impl Into<String>) -> ScenarioError {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    Document { path, text: &text }.at_key(key, message.into())
}

/// Applies the semantic rules to an already-built scenario (for example,
/// after command-line overrides). Returns the offending key and a message.
pub fn check_rules(scenario: &Scenario) -> Result<(), (KeyPath, String)> {
    validate::check(scenario)
}

/// Parses a command-line fault such as `reset,every=5s` or `latency,latency=50ms,jitter=10ms`
/// into a fault, with the same rules as `[[phases.faults]]` (the phase taken as endless).
pub fn parse_fault_spec(spec: &str) -> Result<Fault, String> {
    let mut parts = spec.split(',');
    let kind = parts.next().unwrap_or_default().trim();
    let mut doc = format!("kind = {kind:?}\n");
    for kv in parts {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: expected key=value, got {kv:?}"))?;
        let (k, v) = (k.trim(), v.trim());
        let numeric = v.parse::<f64>().is_ok();
        if numeric {
            doc.push_str(&format!("{k} = {v}\n"));
        } else {
            doc.push_str(&format!("{k} = {v:?}\n"));
        }
    }
    let fault: Fault = toml::from_str(&doc).map_err(|e| format!("{spec:?}: {}", e.message()))?;
    validate::check_fault(&fault, duration::MAX_DURATION, &KeyPath::default())
        .map_err(|(key, message)| format!("{spec:?}: {key}: {message}"))?;
    if fault.via.is_some() {
        return Err(format!(
            "{spec:?}: via: the proxy's faults act on its own connections; via = \"kernel\" is a scenario's"
        ));
    }
    Ok(fault)
}

/// Parses and validates scenario text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let doc = Document { path, text };
    let scenario: Scenario = toml::from_str(text).map_err(|e| doc.toml_error(&e))?;
    if let Err((key, message)) = check_rules(&scenario) {
        return Err(doc.at_key(&key, message));
    }
    Ok(scenario)
}

/// The source text of one file, used to turn spans and key paths into lines.
struct Document<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Document<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn invalid(&self, line: usize, key: String, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.path.to_path_buf(),
            line,
            key,
            message,
        }
    }

    /// Converts a toml/serde error, finding the deepest key whose span holds it.
    fn toml_error(&self, err: &toml::de::Error) -> ScenarioError {
        let message = err.message().trim().to_string();
        if let Some((key, e)) = self.workload_error(&message) {
            return self.at_key(&key, e.message);
        }
        let span = err.span().unwrap_or(0..0);
        let mut key = match DeTable::parse(self.text) {
            Ok(root) => {
                let mut best = (KeyPath::default(), 0..self.text.len());
                locate(root.get_ref(), &KeyPath::default(), &span, &mut best);
                best.0
            }
            // A syntax error: there is no tree to search; name the key on the line, if any.
            Err(_) => KeyPath(key_on_line(self.text, span.start).into_iter().collect()),
        };
        // serde names a missing or unknown field only in its message.
        if let Some(field) = backticked_after(&message, &["unknown field", "missing field"]) {
            if key.0.last() != Some(&Seg::Key(field.clone())) {
                key = key.key(&field);
            }
        }
        self.invalid(self.line_of(span.start), key.to_string(), message)
    }

    /// serde gives a workload's conversion error the span of its table, or of the array around
    /// it (inline tables): find the first workload whose conversion fails so, and name its key.
    fn workload_error(&self, message: &str) -> Option<(KeyPath, WorkloadError)> {
        let root = DeTable::parse(self.text).ok()?;
        let phases = array(root.get_ref(), "phases")?;
        let path = KeyPath::default().key("phases");
        phases.iter().enumerate().find_map(|(i, phase)| {
            let DeValue::Table(phase) = phase.get_ref() else {
                return None;
            };
            let at = path.index(i).key("workloads");
            array(phase, "workloads")?.iter().enumerate().find_map(|(j, w)| {
                let table = WorkloadTable::deserialize(toml::de::ValueDeserializer::from(w.clone())).ok()?;
                let e = Workload::try_from(table).err().filter(|e| e.to_string() == message)?;
                Some((at.index(j).key(&e.key), e))
            })
        })
    }

    /// Builds an error for a rule broken at `key`, pointing at that key's line.
    fn at_key(&self, key: &KeyPath, message: String) -> ScenarioError {
        let line = DeTable::parse(self.text)
            .ok()
            .and_then(|root| span_of(root.get_ref(), &key.0))
            .map(|s| self.line_of(s.start))
            .unwrap_or(1);
        self.invalid(line, key.to_string(), message)
    }
}

/// The array at `key` of `table`.
fn array<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t [Spanned<DeValue<'i>>]> {
    match table.iter().find(|(k, _)| k.get_ref() == key)?.1.get_ref() {
        DeValue::Array(items) => Some(items),
        _ => None,
    }
}

/// Walks the spanned document, keeping the narrowest key or value span that contains `target`.
fn locate(table: &DeTable<'_>, path: &KeyPath, target: &Range<usize>, best: &mut (KeyPath, Range<usize>)) {
    for (k, v) in table.iter() {
        let here = path.key(k.get_ref());
        for span in [k.span(), v.span()] {
            if contains(&span, target) && span.len() <= best.1.len() {
                *best = (here.clone(), span);
            }
        }
        locate_value(v, &here, target, best);
    }
}

fn locate_value(v: &Spanned<DeValue<'_>>, path: &KeyPath, target: &Range<usize>, best: &mut (KeyPath, Range<usize>)) {
    match v.get_ref() {
        DeValue::Table(t) => locate(t, path, target, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let here = path.index(i);
                if contains(&item.span(), target) && item.span().len() <= best.1.len() {
                    *best = (here.clone(), item.span());
                }
                locate_value(item, &here, target, best);
            }
        }
        _ => {}
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end.max(outer.start + 1)
}

/// The span of the key at `path` (or of the value, for array items).
fn span_of(table: &DeTable<'_>, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == first)?;
    if rest.is_empty() {
        return Some(k.span());
    }
    span_in_value(v, rest).or(Some(k.span()))
}

fn span_in_value(v: &Spanned<DeValue<'_>>, path: &[Seg]) -> Option<Range<usize>> {
    match (v.get_ref(), path.first()?) {
        (DeValue::Table(t), Seg::Key(_)) => span_of(t, path),
        (DeValue::Array(items), Seg::Index(i)) => {
            let item = items.get(*i)?;
            if path.len() == 1 {
                Some(item.span())
            } else {
                span_in_value(item, &path[1..]).or(Some(item.span()))
            }
        }
        _ => None,
    }
}

/// For syntax errors: the bare key at the start of the error's line, if there is one.
fn key_on_line(text: &str, offset: usize) -> Option<Seg> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let key = line.split('=').next()?.trim();
    let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    (ok && line.contains('=')).then(|| Seg::Key(key.to_string()))
}

fn backticked_after(message: &str, prefixes: &[&str]) -> Option<String> {
    let at = prefixes.iter().find_map(|p| message.find(p).map(|i| i + p.len()))?;
    let rest = &message[at..];
    let open = rest.find('`')? + 1;
    let close = rest[open..].find('`')? + open;
    Some(rest[open..close].to_string())
}

#[cfg(test)]
mod tests;
