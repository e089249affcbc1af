//! Every departure from the paper is labelled in the code (`DEVIATION(§x)`), listed in the
//! book's audit chapter, and shown by a test or a fixture that exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (marker, file) pairs such as ("DEVIATION(§3.1)", "src/sublayer.rs") in the library's code.
/// The book tooling under src/book/ computes no part of the model and is not scanned.
fn markers_in_code() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut found = BTreeSet::new();
    for file in files {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("src/book/") {
            continue;
        }
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            if let Some(at) = line.find("// DEVIATION(") {
                let marker = &line[at + 3..];
                let end = marker.find(')').expect("a closing parenthesis") + 1;
                assert!(
                    marker[end..].starts_with(':'),
                    "{rel}: `{}` must say why after a colon",
                    marker.trim()
                );
                found.insert((marker[..end].to_string(), rel.clone()));
            }
        }
    }
    found
}

struct Row {
    marker: String,
    file: String,
    shown_by: Vec<String>,
}

/// The rows of the audit chapter's "Departures marked in the code" table.
fn rows_in_audit() -> Vec<Row> {
    let text = std::fs::read_to_string(root().join("book/src/audit.md")).unwrap();
    let section = text
        .split("## Departures marked in the code")
        .nth(1)
        .expect("the audit chapter has the section");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    section
        .lines()
        .filter(|l| l.starts_with("| `DEVIATION("))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | `DEVIATION(§x)`<br>`src/file.rs` | what | `test`,<br>`test` |
            let place = ticked(cells[1]);
            Row {
                marker: place[0].clone(),
                file: place[1].clone(),
                shown_by: ticked(cells[3]),
            }
        })
        .collect()
}

#[test]
fn every_deviation_in_the_code_is_listed_in_the_audit_chapter() {
    let rows = rows_in_audit();
    let listed: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.marker.clone(), r.file.clone()))
        .collect();
    let code = markers_in_code();
    assert!(!code.is_empty(), "the scan finds the markers");
    let missing: Vec<_> = code.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "DEVIATION markers not in book/src/audit.md: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&code).collect();
    assert!(
        stale.is_empty(),
        "audit rows whose marker is not in that file: {stale:?}"
    );
}

#[test]
fn every_deviation_is_shown_by_an_existing_test_or_fixture() {
    for row in rows_in_audit() {
        assert!(
            !row.shown_by.is_empty(),
            "{} in {}: no test named",
            row.marker,
            row.file
        );
        for item in &row.shown_by {
            if let Some((file, name)) = item.split_once("::") {
                let source = std::fs::read_to_string(root().join(file))
                    .unwrap_or_else(|e| panic!("{item}: cannot read {file}: {e}"));
                assert!(
                    source.contains(&format!("fn {name}(")),
                    "{item}: no such test in {file}"
                );
            } else {
                assert!(
                    item.starts_with("fixtures/") && root().join(item).is_file(),
                    "{item}: no such fixture"
                );
            }
        }
    }
}
