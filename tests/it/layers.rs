//! The data path is acyclic: each module imports only the modules the
//! "How it works" page (docs/how-it-works.md) allows it. This reads the source, so a new import
//! that runs back up the path fails here, naming the file and the line.

use crate::common::repo;

/// Module → the modules of ours it may import (besides itself and `proto`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("vocab", &[]),
    ("net", &[]),
    ("child", &[]),
    ("rows", &["vocab"]),
    ("scenario", &["net", "vocab"]),
    ("transport", &["net", "scenario"]),
    ("lifecycle", &["child", "net", "scenario", "transport", "vocab"]),
    ("refserver", &["net", "scenario"]),
    ("client", &["child", "net", "scenario", "vocab"]),
    ("fault", &["net", "scenario", "vocab"]),
    ("metrics", &["rows", "vocab"]),
    ("rpc", &["net", "scenario", "transport", "vocab"]),
    (
        "driver",
        &["scenario", "fault", "metrics", "net", "rpc", "transport", "vocab"],
    ),
    ("origin", &["vocab"]),
    ("sampler", &["net", "origin", "vocab"]),
    ("analysis", &["scenario", "vocab"]),
    ("progress", &["analysis", "metrics", "vocab"]),
    ("live", &["fault", "metrics", "vocab"]),
    ("report", &["analysis", "fault", "metrics", "rows", "scenario", "vocab"]),
    ("compare", &["analysis", "report", "scenario", "vocab"]),
    ("merge", &["analysis", "compare", "error", "report", "rows", "vocab"]),
    ("trend", &["compare", "error", "report"]),
    ("error", &["report", "scenario"]),
];

fn files(module: &str) -> Vec<std::path::PathBuf> {
    let file = repo(&format!("src/{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut dirs = vec![repo(&format!("src/{module}"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_import_runs_back_up_the_data_path() {
    let mut wrong = Vec::new();
    for (module, allowed) in ALLOWED {
        for path in files(module) {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                for (at, _) in line.match_indices("crate::") {
                    let name: String = line[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name != *module && name != "proto" && !allowed.contains(&name.as_str()) {
                        wrong.push(format!("{}:{}: {module} imports {name}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the data path:\n{}", wrong.join("\n"));
}

#[test]
fn every_module_is_placed_on_the_path() {
    let placed: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    // The commands and the orchestrator sit at the end of the path and may import anything.
    let ends = ["cli", "cmd", "run", "lib", "main", "fuzzing"];
    for entry in std::fs::read_dir(repo("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            placed.contains(&name.as_str()) || ends.contains(&name.as_str()),
            "src/{name} is not in the layer table: add it to ALLOWED and docs/how-it-works.md"
        );
    }
}
