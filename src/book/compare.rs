//! The Performance chapter's tables: `{{#compare-table book/runs/FILE.json}}` becomes the
//! table of one run of `benches/compare.sh`, read from the JSON file it wrote (committed under
//! `book/runs/`), so the chapter shows the numbers the run measured and no others.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::errors::Result as BookResult;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};
use serde_json::Value;

use super::preprocess::{expand_chapters, html_escape};

/// The directive's opening; the path and `}}` follow.
pub const DIRECTIVE: &str = "{{#compare-table ";

/// What the chapter calls each workload of `benches/workloads.rs`.
fn label(row: &str) -> Result<String, String> {
    let (kind, n) = row
        .rsplit_once('-')
        .ok_or_else(|| format!("workload {row:?} has no size"))?;
    let (kind, fast) = match kind.strip_prefix("fast_") {
        Some(k) => (k, ", **fast path**"),
        None => (kind, ""),
    };
    let what = match kind {
        "matmul" => format!("matrix product {n}³"),
        "softmax" => format!("softmax, {n} rows of {n}"),
        "attention" => format!("Eq. 1, n = {n}"),
        "blockwise_attention" => format!("blockwise attention, n = {n}"),
        "multi_head" => format!("multi-head, n = {n}"),
        "encoder_layer" => format!("encoder layer, n = {n}"),
        "stacks" => format!("6 + 6 stacks, n = {n}"),
        "decode_full" => format!("greedy, {n} tokens, no cache"),
        "decode_cached" => format!("greedy, {n} tokens, cache"),
        "train_step" => format!("training step (d_model {n})"),
        _ => return Err(format!("no label for the workload {row:?}")),
    };
    Ok(format!("{what}{fast}"))
}

/// Three significant digits, with thousands separated by commas: 2.61, 0.0757, 905, 1,433.
pub fn milliseconds(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms >= 999.5 {
        let whole = format!("{:.0}", ms);
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return out;
    }
    let digits = if ms <= 0.0 {
        2
    } else {
        (2 - ms.log10().floor() as i32).max(0) as usize
    };
    format!("{ms:.digits$}")
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("{at}: no field {key:?}"))
}

fn number(v: &Value, key: &str, at: &str) -> Result<f64, String> {
    field(v, key, at)?
        .as_f64()
        .ok_or_else(|| format!("{at}: {key} is not a number"))
}

/// The table, one row per workload measured on 1 thread, with its 2-thread columns when the
/// run has them.
pub fn table(json: &Value, file: &str) -> Result<String, String> {
    let runs = field(json, "runs", file)?;
    let one = field(runs, "1", &format!("{file}: runs"))?;
    let two = runs.get("2");
    let rows = |run: &Value, at: &str| -> Result<Vec<Value>, String> {
        Ok(field(run, "rows", at)?
            .as_array()
            .ok_or_else(|| format!("{at}: rows is not a list"))?
            .clone())
    };
    let two_rows = match two {
        Some(t) => rows(t, &format!("{file}: runs.2"))?,
        None => Vec::new(),
    };
    let mut md = String::from(
        "| workload | aiayn, 1 thread (ms) | PyTorch, 1 thread (ms) | ratio | aiayn, 2 threads (ms) | PyTorch, 2 threads (ms) | ratio | share of matmul rate, 1 thread: aiayn / PyTorch |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows(one, &format!("{file}: runs.1"))? {
        let name = field(&r, "row", file)?
            .as_str()
            .ok_or_else(|| format!("{file}: a row's name is not a string"))?;
        let at = format!("{file}: row {name}");
        let (a, t) = (number(&r, "aiayn_s", &at)?, number(&r, "torch_s", &at)?);
        let mut line = format!(
            "| {} | {} | {} | {:.2} |",
            html_escape(&label(name)?),
            milliseconds(a),
            milliseconds(t),
            a / t
        );
        match two_rows.iter().find(|r2| r2.get("row") == r.get("row")) {
            Some(r2) => {
                let at2 = format!("{file}: runs.2 row {name}");
                let (a2, t2) = (number(r2, "aiayn_s", &at2)?, number(r2, "torch_s", &at2)?);
                let _ = write!(
                    line,
                    " {} | {} | {:.2} |",
                    milliseconds(a2),
                    milliseconds(t2),
                    a2 / t2
                );
            }
            None => line.push_str(" – | – | – |"),
        }
        match (r.get("aiayn_of_matmul"), r.get("torch_of_matmul")) {
            (Some(fa), Some(ft)) if fa.is_f64() && ft.is_f64() => {
                let pct = |x: &Value| format!("{:.0} %", 100.0 * x.as_f64().unwrap_or(0.0));
                let _ = write!(line, " {} / {} |", pct(fa), pct(ft));
            }
            _ => line.push_str(" – |"),
        }
        md.push_str(&line);
        md.push('\n');
    }
    Ok(md)
}

/// Expands every [`DIRECTIVE`], reading the files relative to `root`.
pub struct CompareTable {
    pub root: PathBuf,
}

fn render(root: &Path, file: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(root.join(file)).map_err(|e| format!("cannot read {file}: {e}"))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{file}: not valid JSON: {e}"))?;
    table(&json, file)
}

fn expand(root: &Path, content: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = content;
    while let Some(start) = rest.find(DIRECTIVE) {
        out.push_str(&rest[..start]);
        let after = &rest[start + DIRECTIVE.len()..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a {{#compare-table is not closed by }}".to_string())?;
        out.push_str(&render(root, after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Preprocessor for CompareTable {
    fn name(&self) -> &str {
        "aiayn-compare-table"
    }

    fn run(&self, _ctx: &PreprocessorContext, book: Book) -> BookResult<Book> {
        expand_chapters(book, DIRECTIVE, |content| expand(&self.root, content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_keep_three_significant_digits() {
        assert_eq!(milliseconds(0.00261), "2.61");
        assert_eq!(milliseconds(0.0000757), "0.0757");
        assert_eq!(milliseconds(0.905), "905");
        assert_eq!(milliseconds(1.4334), "1,433");
        assert_eq!(milliseconds(40.1951), "40,195");
        assert_eq!(milliseconds(0.0252), "25.2");
        // a number of whole digits that three divides takes no leading comma
        assert_eq!(milliseconds(123.456), "123,456");
        assert_eq!(milliseconds(1.0), "1,000");
    }

    #[test]
    fn a_share_that_is_not_a_number_shows_as_a_dash() {
        for (a, t) in [(json!(null), json!(0.48)), (json!(0.62), json!("x"))] {
            let run = json!({"runs": {"1": {"rows": [
                {"row": "matmul-64", "aiayn_s": 0.001, "torch_s": 0.001,
                 "aiayn_of_matmul": a, "torch_of_matmul": t}
            ]}}});
            let md = table(&run, "f.json").unwrap();
            assert!(
                md.ends_with("| matrix product 64³ | 1.00 | 1.00 | 1.00 | – | – | – | – |\n"),
                "{md}"
            );
        }
    }

    #[test]
    fn the_directive_becomes_the_table_of_the_file_it_names() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = "book/runs/compare.json";
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
        let rows = json["runs"]["1"]["rows"].as_array().unwrap().len();
        assert!(rows > 0);
        let page = expand(root, &format!("before\n\n{DIRECTIVE}{file}}}}}\n\nafter\n")).unwrap();
        assert_eq!(
            page,
            format!("before\n\n{}\n\nafter\n", table(&json, file).unwrap())
        );
        // the header, its rule, then a line per row
        assert_eq!(table(&json, file).unwrap().lines().count(), rows + 2);
        let e = expand(root, &format!("{DIRECTIVE}book/runs/none.json}}}}")).unwrap_err();
        assert!(e.starts_with("cannot read book/runs/none.json: "), "{e}");
        let e = expand(root, &format!("{DIRECTIVE}book/book.toml}}}}")).unwrap_err();
        assert!(e.starts_with("book/book.toml: not valid JSON: "), "{e}");
    }

    #[test]
    fn a_run_becomes_rows_with_both_thread_counts_and_the_matmul_share() {
        let run = json!({"runs": {
            "1": {"rows": [
                {"row": "fast_multi_head-512", "aiayn_s": 0.0252, "torch_s": 0.0297,
                 "aiayn_of_matmul": 0.62, "torch_of_matmul": 0.48},
                {"row": "softmax-512", "aiayn_s": 0.00241, "torch_s": 0.000213, "flops": null}
            ]},
            "2": {"rows": [
                {"row": "fast_multi_head-512", "aiayn_s": 0.0572, "torch_s": 0.135}
            ]}
        }});
        let md = table(&run, "f.json").unwrap();
        assert!(
            md.contains("| multi-head, n = 512, **fast path** | 25.2 | 29.7 | 0.85 | 57.2 | 135 | 0.42 | 62 % / 48 % |"),
            "{md}"
        );
        assert!(
            md.contains("| softmax, 512 rows of 512 | 2.41 | 0.213 | 11.31 | – | – | – | – |"),
            "{md}"
        );
    }

    #[test]
    fn a_bad_run_is_an_error_naming_the_file_and_the_row() {
        let e = table(&json!({"runs": {}}), "f.json").unwrap_err();
        assert!(e.contains("f.json: runs: no field \"1\""), "{e}");
        let e = table(
            &json!({"runs": {"1": {"rows": [{"row": "attention-8", "aiayn_s": "x"}]}}}),
            "f.json",
        )
        .unwrap_err();
        assert!(
            e.contains("row attention-8: aiayn_s is not a number"),
            "{e}"
        );
        let e = table(
            &json!({"runs": {"1": {"rows": [{"row": "warp-8", "aiayn_s": 1.0, "torch_s": 1.0}]}}}),
            "f.json",
        )
        .unwrap_err();
        assert!(e.contains("no label for the workload \"warp-8\""), "{e}");
        assert!(expand(Path::new("."), "{{#compare-table x.json").is_err());
    }
}
