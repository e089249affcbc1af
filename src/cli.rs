//! The commands behind `aiayn`. Each returns an exit code or a [`CliError`] with a message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aiayn::config::{Config, TABLE3_ROWS};

/// A failure the user can act on: a message and the exit code that goes with it.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// 2 for bad arguments or unreadable input, 1 for a failed check.
    pub code: u8,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The output directory: by default `book/out` under the crate root, so that the book lands in
/// the same place from any working directory; a given path is taken as given.
fn output_dir(root: &Path, out: Option<&Path>) -> PathBuf {
    out.map_or_else(|| root.join("book").join("out"), Path::to_path_buf)
}

fn build_book(root: &Path, out: Option<&Path>) -> Result<aiayn::book::Built, CliError> {
    // A book that does not build is bad input too: a chapter, the configuration, the output.
    let built = aiayn::book::build(root, &output_dir(root, out))
        .map_err(|e| CliError::usage(e.to_string()))?;
    for warning in &built.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "built the book ({} chapters, {} equations, {} figures) in {:.2} s: {}",
        built.chapters,
        built.equations,
        built.figures,
        built.elapsed.as_secs_f64(),
        built.out.display()
    );
    Ok(built)
}

pub fn serve(out: Option<&Path>, port: u16) -> Result<ExitCode, CliError> {
    let root = aiayn::book::default_root();
    // Bind first: a busy port is reported before the build, not after.
    let listener = aiayn::book::bind(port).map_err(|e| CliError::usage(e.to_string()))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("cannot listen on port {port}: {e}")))?;
    let watched: Vec<PathBuf> = ["book", "src", "tests"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    // before the build: a change made while it runs, or before the watcher starts, is seen
    let built_from = aiayn::book::serve::sources_fingerprint(&output_dir(&root, out), &watched);
    let built = build_book(&root, out)?;
    let site = aiayn::book::serve::Site::new(built.out.clone(), true);
    let watcher = std::sync::Arc::clone(&site);
    std::thread::spawn(move || {
        aiayn::book::serve::watch(&watcher, &watched, built_from, WATCH_INTERVAL, |next| {
            let built = aiayn::book::build_into(&root, next).map_err(|e| e.to_string())?;
            for warning in &built.warnings {
                eprintln!("warning: {warning}");
            }
            Ok(format!(
                "{} chapters, {} equations, {} figures",
                built.chapters, built.equations, built.figures
            ))
        });
    });
    println!(
        "serving the book at http://{address}/ (Ctrl-C to stop); a change under book/, src/ or \
         tests/ rebuilds it and reloads open pages"
    );
    aiayn::book::serve(listener, site).map_err(|e| CliError {
        message: e.to_string(),
        code: 1,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How often `aiayn serve` looks for changed sources.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

pub fn build(out: Option<&Path>) -> Result<ExitCode, CliError> {
    build_book(&aiayn::book::default_root(), out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn params(
    row: &str,
    vocab: usize,
    attention_bias: bool,
    json: bool,
) -> Result<ExitCode, CliError> {
    if vocab == 0 {
        return Err(CliError::usage("--vocab must be at least 1"));
    }
    // Counts are exact integers: refuse a vocabulary whose embedding does not fit in one.
    let widest = Config::big().d_model;
    if vocab.checked_mul(widest).is_none_or(|e| e > usize::MAX / 2) {
        return Err(CliError::usage(format!(
            "--vocab {vocab} is too large to count: {vocab} x d_model {widest} parameters \
             overflow a {}-bit count",
            usize::BITS
        )));
    }
    let names: Vec<&str> = if row == "all" {
        TABLE3_ROWS.to_vec()
    } else {
        vec![row]
    };
    let mut rows = Vec::new();
    for name in names {
        let mut config = Config::table3(name).map_err(|e| CliError::usage(e.to_string()))?;
        config.attention_bias = attention_bias;
        rows.push((
            name,
            config.param_counts(vocab),
            Config::reported(name).and_then(|r| r.params_millions),
        ));
    }
    let convention = format!(
        "one {vocab} x d_model embedding shared by source, target and pre-softmax linear (counted once); \
         attention projections {} biases; LayerNorm gain and bias; post-norm, no final stack norm; \
         learned positions (row E) cover {} positions",
        if attention_bias { "with" } else { "without" },
        Config::base().max_len
    );
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, c, paper)| {
                serde_json::json!({
                    "row": name,
                    "embedding": c.embedding,
                    "positional": c.positional,
                    "encoder": c.encoder,
                    "decoder": c.decoder,
                    "total": c.total,
                    "paper_millions": paper,
                    "vocab": vocab,
                    "attention_bias": attention_bias,
                    "convention": convention,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&items).expect("plain values serialise");
        println!("{text}");
    } else {
        println!("convention: {convention}");
        println!(
            "{:<5} {:>12} {:>11} {:>12} {:>12} {:>12} {:>8}",
            "row", "embedding", "positional", "encoder", "decoder", "total", "paper"
        );
        for (name, c, paper) in &rows {
            let paper = paper.map_or("-".to_string(), |p| format!("{p}M"));
            println!(
                "{name:<5} {:>12} {:>11} {:>12} {:>12} {:>12} {paper:>8}",
                c.embedding, c.positional, c.encoder, c.decoder, c.total
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(files: &[PathBuf]) -> Result<ExitCode, CliError> {
    let (mut failed, mut malformed) = (0, 0);
    for path in files {
        if let Err(e) = check_size(path) {
            malformed += 1;
            eprintln!("error: {e}");
            continue;
        }
        let report = aiayn::fixture::load(path).and_then(|f| aiayn::fixture::check(&f));
        match report {
            Err(e) => {
                malformed += 1;
                eprintln!("error: {e}");
            }
            Ok(report) => {
                let verdict = if report.passed() { "ok" } else { "MISMATCH" };
                println!(
                    "{} ({} / {}): {verdict}",
                    path.display(),
                    report.op,
                    report.case
                );
                for c in &report.comparisons {
                    println!(
                        "  {:<17} {:<11}  max abs {:8.2e}  max rel {:8.2e}  tolerance {:.0e} + {:.0e} rel  {}",
                        c.name,
                        c.source.label(),
                        c.max_abs_error,
                        c.max_rel_error,
                        c.tolerance.abs,
                        c.tolerance.rel,
                        if c.passed() { "ok".to_string() } else { format!("{} of {} outside", c.mismatches, c.len) }
                    );
                }
                if !report.passed() {
                    failed += 1;
                }
            }
        }
    }
    let passed = files.len() - failed - malformed;
    println!("{passed} passed, {failed} failed, {malformed} unreadable or malformed");
    Ok(ExitCode::from(if malformed > 0 {
        2
    } else if failed > 0 {
        1
    } else {
        0
    }))
}

/// The largest text or JSON file a command reads whole: far above any test set or fixture,
/// far below what would exhaust memory.
const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Refuses a file larger than [`MAX_INPUT_BYTES`] before reading it.
fn check_size(path: &Path) -> Result<(), CliError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > MAX_INPUT_BYTES => {
            Err(CliError::usage(format!(
                "{}: the file is {} bytes; files of more than {MAX_INPUT_BYTES} bytes (256 MiB) \
                 are refused",
                path.display(),
                meta.len()
            )))
        }
        _ => Ok(()), // reading reports a missing or unreadable file
    }
}

/// The lines of a text file, each without its line break (`\n` or `\r\n`); a final line break
/// does not start another line. An empty file is refused: there is nothing to score.
fn read_lines(path: &Path) -> Result<Vec<String>, CliError> {
    check_size(path)?;
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = e.utf8_error().valid_up_to();
        let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        CliError::usage(format!(
            "{}: line {line} is not valid UTF-8",
            path.display()
        ))
    })?;
    if text.is_empty() {
        return Err(CliError::usage(format!(
            "{}: the file is empty; one sentence a line is needed",
            path.display()
        )));
    }
    Ok(text.lines().map(str::to_string).collect())
}

pub fn bleu(reference: &Path, hypothesis: &Path, json: bool) -> Result<ExitCode, CliError> {
    let references = read_lines(reference)?;
    let hypotheses = read_lines(hypothesis)?;
    if references.len() != hypotheses.len() {
        return Err(CliError::usage(format!(
            "{} has {} lines but {} has {}: one hypothesis per reference line is needed",
            reference.display(),
            references.len(),
            hypothesis.display(),
            hypotheses.len()
        )));
    }
    let references: Vec<&str> = references.iter().map(String::as_str).collect();
    let hypotheses: Vec<&str> = hypotheses.iter().map(String::as_str).collect();
    let score = aiayn::bleu::corpus_bleu(&hypotheses, &references)
        .map_err(|e| CliError::usage(e.to_string()))?;
    if json {
        let value = serde_json::json!({
            "score": score.score,
            "precisions": score.precisions,
            "bp": score.bp,
            "ratio": score.ratio(),
            "sys_len": score.sys_len,
            "ref_len": score.ref_len,
            "counts": score.counts,
            "totals": score.totals,
            "tokenize": "13a",
            "smooth": "exp",
        });
        let text = serde_json::to_string_pretty(&value).expect("plain values serialise");
        println!("{text}");
    } else {
        println!("{score}");
    }
    Ok(ExitCode::SUCCESS)
}

/// For every Table 3 row that prints a parameter count, the vocabulary sizes that reproduce it,
/// and the sizes common to all of them (with each row left out in turn when there are none).
pub fn fit_vocab(row: &str, attention_bias: bool) -> Result<ExitCode, CliError> {
    let names: Vec<&str> = if row == "all" {
        TABLE3_ROWS.to_vec()
    } else {
        vec![row]
    };
    let mut fits = Vec::new();
    for name in names {
        let mut config = Config::table3(name).map_err(|e| CliError::usage(e.to_string()))?;
        config.attention_bias = attention_bias;
        let Some(paper) = Config::reported(name).and_then(|r| r.params_millions) else {
            continue; // the table prints no count for this row
        };
        let range = config.vocabularies_for(paper);
        let shown = range.map_or("none".to_string(), |(a, b)| format!("{a}..={b}"));
        println!("{name:<5} {paper:>5}M  V in {shown}");
        fits.push((name, range));
    }
    let common = |skip: Option<&str>| {
        fits.iter()
            .filter(|(name, _)| Some(*name) != skip)
            .try_fold((1usize, usize::MAX), |(lo, hi), (_, r)| {
                r.map(|(a, b)| (lo.max(a), hi.min(b)))
            })
            .filter(|(lo, hi)| lo <= hi)
    };
    match common(None) {
        Some((lo, hi)) => println!("every row: V in {lo}..={hi}"),
        None => {
            println!("no single vocabulary reproduces every row");
            for (name, _) in &fits {
                if let Some((lo, hi)) = common(Some(name)) {
                    println!("every row but {name}: V in {lo}..={hi}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
