//! The claims ledger (book/src/claims.md) stays in step with the code: every status is one of
//! three, every named test exists, every named command is a command of `aiayn`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cells of a markdown table row, split at pipes that are not escaped as `\|`.
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = line.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    out
}

/// The ledger's rows: (section, claim, status, evidence).
fn rows() -> Vec<[String; 4]> {
    let text = std::fs::read_to_string(root().join("book/src/claims.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| § |"))
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), 4, "a ledger row has four cells: {l}");
            [c[0].clone(), c[1].clone(), c[2].clone(), c[3].clone()]
        })
        .collect()
}

fn test_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            test_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The text between the first pair of backticks.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let end = start + s[start..].find('`')?;
    Some(&s[start..end])
}

#[test]
fn every_claim_has_a_status_and_existing_evidence() {
    let rows = rows();
    assert!(
        rows.len() >= 30,
        "the ledger lists the paper's claims: {}",
        rows.len()
    );
    let mut tests = String::new();
    test_sources(&root().join("tests"), &mut tests);
    for [section, claim, status, evidence] in &rows {
        assert!(!section.is_empty() && !claim.is_empty(), "{claim}");
        match status.as_str() {
            "verified" => {
                let name = quoted(evidence).unwrap_or_else(|| panic!("{claim}: name the test"));
                assert!(
                    tests.contains(&format!("fn {name}(")),
                    "{claim}: no test `{name}` in tests/"
                );
            }
            "reproduced" => {
                let command =
                    quoted(evidence).unwrap_or_else(|| panic!("{claim}: name the command"));
                let sub = command
                    .strip_prefix("aiayn ")
                    .unwrap_or_else(|| panic!("{claim}: `{command}` is not an aiayn command"));
                let out = Command::new(env!("CARGO_BIN_EXE_aiayn"))
                    .args([sub, "--help"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{claim}: `aiayn {sub}` is not a command"
                );
            }
            "out of reach" => assert!(!evidence.is_empty(), "{claim}: say why"),
            other => panic!("{claim}: unknown status `{other}`"),
        }
    }
}
