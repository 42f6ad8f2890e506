//! The data path is acyclic: each module imports only the modules the
//! "How it works" page (docs/how-it-works.md) allows it. This reads the source, so a new import
//! that runs back up the path fails here, naming the file and the line.

use crate::common::repo;

/// Module → the modules of ours it may import (besides itself and `proto`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("net", &[]),
    ("child", &["domain"]),
    ("series", &["domain"]),
    ("scenario", &["net", "domain"]),
    ("transport", &["net", "scenario", "domain"]),
    ("lifecycle", &["child", "net", "scenario", "transport", "domain"]),
    ("refserver", &["net", "scenario", "domain"]),
    ("client", &["child", "net", "scenario", "domain"]),
    ("fault", &["net", "scenario", "domain"]),
    ("metrics", &["series", "domain"]),
    ("rpc", &["net", "scenario", "transport", "domain"]),
    (
        "driver",
        &["scenario", "fault", "metrics", "net", "rpc", "transport", "domain"],
    ),
    ("origin", &["domain"]),
    ("sampler", &["net", "origin", "domain"]),
    ("analysis", &["scenario", "domain"]),
    ("abort", &["analysis", "metrics", "scenario", "domain"]),
    ("progress", &["analysis", "metrics", "domain"]),
    ("live", &["fault", "metrics", "domain"]),
    (
        "report",
        &["analysis", "fault", "metrics", "series", "scenario", "domain"],
    ),
    ("compare", &["analysis", "report", "scenario", "domain"]),
    ("merge", &["analysis", "compare", "error", "report", "series", "domain"]),
    ("trend", &["compare", "error", "report", "scenario"]),
    ("bisect", &["child", "error", "report", "run", "scenario"]),
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

/// The commands sit under the parser: `cli` holds each command's arguments
/// and calls its `execute`, so no command reaches back up into `cli`.
#[test]
fn no_command_imports_the_parser() {
    let wrong: Vec<String> = files("cmd")
        .into_iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .filter(|(_, l)| {
                    l.match_indices("crate::cli")
                        .any(|(at, m)| !l[at + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
                })
                .map(|(n, _)| format!("{}:{}", path.display(), n + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(wrong.is_empty(), "commands importing the parser:\n{}", wrong.join("\n"));
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

/// The files of one room (a directory under `src`), each with the siblings it
/// imports through `super::NAME` or `crate::ROOM::NAME` (`mod.rs`, the room's door,
/// is left out: its children may use what it declares).
fn sibling_imports_under(
    src: &std::path::Path,
    room: &std::path::Path,
) -> Vec<(String, std::collections::BTreeSet<String>)> {
    let rel = room.strip_prefix(src).unwrap().to_string_lossy().replace('/', "::");
    let names: Vec<String> = std::fs::read_dir(room)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    let mut out = Vec::new();
    for name in &names {
        let file = room.join(format!("{name}.rs"));
        let file = if file.exists() {
            file
        } else {
            room.join(name).join("mod.rs")
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // Doc comments name siblings in links; only code counts.
        let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        let code = code.join("\n");
        let uses = names
            .iter()
            .filter(|other| *other != name)
            .filter(|other| {
                let direct = [
                    format!("super::{other}::"),
                    format!("super::{other};"),
                    format!("crate::{rel}::{other}"),
                ];
                direct.iter().any(|p| code.contains(p.as_str())) || grouped(&code, other)
            })
            .cloned()
            .collect();
        out.push((name.clone(), uses));
    }
    out
}

fn sibling_imports(room: &std::path::Path) -> Vec<(String, std::collections::BTreeSet<String>)> {
    sibling_imports_under(&repo("src"), room)
}

/// `use super::{a, b::c}` names `other`.
fn grouped(code: &str, other: &str) -> bool {
    code.match_indices("super::{").any(|(at, _)| {
        let inner = &code[at + 8..];
        let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
        inner.split(',').any(|part| {
            let head = part.trim().split("::").next().unwrap_or("");
            head == other
        })
    })
}

/// A cycle among `edges`, as a path, if there is one.
fn cycle(edges: &[(String, std::collections::BTreeSet<String>)]) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &[(String, std::collections::BTreeSet<String>)],
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        let next = edges
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        for m in next {
            if let Some(c) = visit(&m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges
        .iter()
        .find_map(|(n, _)| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_files_of_a_room_import_each_other() {
    let mut rooms = vec![repo("src")];
    let mut found = Vec::new();
    while let Some(dir) = rooms.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "vendor") {
                rooms.push(path);
            }
        }
        if dir == repo("src") {
            continue;
        }
        if let Some(c) = cycle(&sibling_imports(&dir)) {
            found.push(format!("{}: {}", dir.display(), c.join(" -> ")));
        }
    }
    assert!(
        found.is_empty(),
        "files of one room that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_room_check_sees_a_circle_through_super() {
    let dir = crate::common::TempDir::new("room");
    let room = dir.path().join("src").join("room");
    std::fs::create_dir_all(&room).unwrap();
    std::fs::write(room.join("mod.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(room.join("a.rs"), "use super::b::Thing;\n").unwrap();
    std::fs::write(room.join("b.rs"), "use super::{a::Other, c};\n").unwrap();
    let edges = sibling_imports_under(&dir.path().join("src"), &room);
    assert_eq!(cycle(&edges).map(|c| c.len()), Some(3), "{edges:?}");
    std::fs::write(room.join("b.rs"), "// use super::a::Other;\n").unwrap();
    assert_eq!(cycle(&sibling_imports_under(&dir.path().join("src"), &room)), None);
}

/// The module table of docs/how-it-works.md says what ALLOWED says, row by row.
#[test]
fn the_how_it_works_table_is_the_layer_table() {
    let page = std::fs::read_to_string(repo("docs/how-it-works.md")).unwrap();
    let mut documented = std::collections::BTreeMap::new();
    for line in page.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let module = cells[1].trim_matches('`').trim_end_matches('/').trim_end_matches(".rs");
        let Some(last) = cells.iter().rev().find(|c| !c.is_empty()) else {
            continue;
        };
        let mut may: Vec<String> = last
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_string())
            .filter(|m| !m.is_empty() && m != "nothing")
            .collect();
        may.sort();
        documented.insert(module.to_string(), may);
    }
    for (module, allowed) in ALLOWED {
        let mut want: Vec<String> = allowed.iter().map(|m| m.to_string()).collect();
        want.sort();
        assert_eq!(
            documented.get(*module),
            Some(&want),
            "docs/how-it-works.md's row for {module}"
        );
    }
}
