//! The `aiayn` command as a user meets it: output, exit codes, and messages for bad input.

use std::process::{Command, Output};

use aiayn::config::{Config, TABLE3_ROWS};
use serde_json::Value;

fn aiayn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aiayn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn params_json_lists_every_table3_row_with_its_total() {
    let out = aiayn(&["params", "--config", "all", "--vocab", "37000", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["row"].as_str().expect("row is a string"))
        .collect();
    assert_eq!(names, TABLE3_ROWS);
    for r in &rows {
        let total = r["total"].as_u64().expect("total is a number");
        let parts: u64 = ["embedding", "positional", "encoder", "decoder"]
            .iter()
            .map(|k| r[*k].as_u64().unwrap())
            .sum();
        assert_eq!(
            total, parts,
            "row {}: the parts add up to the total",
            r["row"]
        );
        assert!(r["convention"].as_str().unwrap().contains("counted once"));
    }
    // Table 3 rows that differ only in training (dropout, smoothing) have the base count.
    let total = |name: &str| {
        rows.iter().find(|r| r["row"] == name).unwrap()["total"]
            .as_u64()
            .unwrap()
    };
    for same in ["A1", "A2", "A3", "A4", "D1", "D2", "D3", "D4"] {
        assert_eq!(total(same), total("base"), "{same}");
    }
    // Row E adds a learned table of max_len x d_model positions.
    assert_eq!(
        total("E") - total("base"),
        (Config::base().max_len * 512) as u64
    );
}

#[test]
fn params_text_prints_the_convention_and_the_paper_figure() {
    let out = aiayn(&["params", "--config", "base"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with("convention: one 37000 x d_model embedding shared"),
        "{text}"
    );
    assert!(text.contains("63045632") && text.contains("65M"), "{text}");
}

#[test]
fn params_with_attention_bias_adds_four_biases_per_attention() {
    let json = |bias: bool| -> Value {
        let mut args = vec!["params", "--config", "base", "--json"];
        if bias {
            args.push("--attention-bias");
        }
        serde_json::from_str(&stdout(&aiayn(&args))).unwrap()
    };
    let (without, with) = (json(false), json(true));
    // 6 encoder layers with one attention, 6 decoder layers with two; 4 x 512 biases each.
    let extra = (6 + 12) * 4 * 512;
    assert_eq!(
        with[0]["total"].as_u64().unwrap() - without[0]["total"].as_u64().unwrap(),
        extra
    );
    assert_eq!(with[0]["attention_bias"], Value::Bool(true));
}

#[test]
fn an_unknown_row_is_a_usage_error_that_lists_the_rows() {
    let out = aiayn(&["params", "--config", "F9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no Table 3 row is called \"F9\"") && err.contains("base, A1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_numbers_are_usage_errors() {
    for args in [
        &["params", "--vocab", "0"][..],
        &["params", "--vocab", "many"][..],
        &["params", "--vocab", "-3"][..],
        &["frobnicate"][..],
        &["verify"][..],
    ] {
        let out = aiayn(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} explains itself");
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    assert_eq!(aiayn(&["--help"]).status.code(), Some(0));
    assert_eq!(aiayn(&["--version"]).status.code(), Some(0));
    assert!(stdout(&aiayn(&["params", "--help"])).contains("--attention-bias"));
}
