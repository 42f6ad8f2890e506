//! Report output: the model, and one exporter per file format.
//!
//! Exporters implement [`Exporter`] and write through [`write_atomic`], so a
//! reader never sees half a file. `samples.csv` and `throughput.csv` are not
//! exporters: the sampler streams them while the run goes on.

pub(crate) mod build;
pub mod chart_table;
pub(crate) mod charts;
pub mod figures;
pub mod html;
pub mod json;
pub mod junit;
pub(crate) mod latency_csv;
pub(crate) mod leaks;
pub mod limits;
pub mod markdown;
pub mod model;
pub(crate) mod said;
pub(crate) mod table;
pub(crate) mod terminal;
pub mod timeline;
pub mod zoom;
pub mod zoom_charts;

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
    /// Renders from series already downsampled (a checkpoint), where the exporter charts them.
    fn render_with(&self, summary: &Summary, dir: &Path, _series: &crate::series::Timeline) -> anyhow::Result<Vec<u8>> {
        self.render(summary, dir)
    }
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

/// Renders every exporter's file. Fails when the report's own files (its CSVs) cannot be read.
pub fn render_all(summary: &Summary, dir: &Path) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    render_each(summary, dir, None)
}

/// Renders every exporter's file, charting `series` instead of reading the CSV files back.
pub fn render_all_from(
    summary: &Summary,
    dir: &Path,
    series: &crate::series::Timeline,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    render_each(summary, dir, Some(series))
}

fn render_each(
    summary: &Summary,
    dir: &Path,
    series: Option<&crate::series::Timeline>,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    exporters()
        .iter()
        .map(|e| {
            let bytes = match series {
                Some(tl) => e.render_with(summary, dir, tl),
                None => e.render(summary, dir),
            }
            .with_context(|| format!("rendering {}", e.file_name()))?;
            Ok((e.file_name(), bytes))
        })
        .collect()
}

/// Writes rendered files into `dir`, each atomically.
pub fn write_files(files: &[(&'static str, Vec<u8>)], dir: &Path) -> anyhow::Result<()> {
    for (name, bytes) in files {
        write_atomic(&dir.join(name), bytes)?;
    }
    Ok(())
}

/// Renders and writes every exporter's file into `dir`.
pub fn write_all(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    write_files(&render_all(summary, dir)?, dir)
}

/// Writes to a temporary file beside `path`, syncs it, then renames it into
/// place. On any failure the temporary file is removed: nothing half-written
/// is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".fdsoak-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
