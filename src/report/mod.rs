//! Report output: the model, and one exporter per file format.
//!
//! Exporters implement [`Exporter`] and write through [`write_atomic`], so a
//! reader never sees half a file. `samples.csv` and `throughput.csv` are not
//! exporters: the sampler streams them while the run goes on.

pub mod charts;
pub mod html;
pub mod json;
pub mod junit;
pub mod latency_csv;
pub mod markdown;
pub mod model;
pub mod table;
pub mod terminal;
pub mod timeline;

use anyhow::Context;
use model::Summary;
use std::io::Write;
use std::path::Path;

/// One output format rendered from the report model.
pub trait Exporter {
    /// File name inside the report directory.
    fn file_name(&self) -> &'static str;
    /// Renders the report. `dir` holds the streamed CSV files, for exporters that chart them.
    fn render(&self, summary: &Summary, dir: &Path) -> anyhow::Result<Vec<u8>>;
}

/// The exporters every run writes.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::Json),
        Box::new(latency_csv::LatencyCsv),
        Box::new(markdown::Markdown),
        Box::new(junit::Junit),
        Box::new(html::Html),
    ]
}

/// Writes every exporter's file into `dir`.
pub fn write_all(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    for e in exporters() {
        let bytes = e
            .render(summary, dir)
            .with_context(|| format!("rendering {}", e.file_name()))?;
        write_atomic(&dir.join(e.file_name()), &bytes)?;
    }
    Ok(())
}

/// Writes to a temporary file beside `path`, syncs it, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().context("path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}
