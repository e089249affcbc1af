//! Bad input to every command and every file reader, as one table: each row runs the `aiayn`
//! binary with its arguments, in a directory holding the files the row creates, and states the
//! exit code, a part of the message, and the files that must not exist afterwards.
//!
//! Every row also checks what no row may do: print a panic or a backtrace (`RUST_BACKTRACE=1`
//! is set, so a panic would show one), abort on a failed allocation, or leave anything in its
//! directory that it did not create (a partial checkpoint, book or run directory).
//!
//! The table has 129 rows.

#![cfg(feature = "book")]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aiayn::config::{Config, Positional};
use aiayn::train::state::{save_trainer, RunInfo};
use aiayn::train::tasks::Task;
use aiayn::train::trainer::{TrainOptions, Trainer};
use aiayn::Transformer;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::{json, Value};

/// What a row puts in its directory before it runs.
enum Content {
    Bytes(Vec<u8>),
    /// A file of this many bytes that takes no disk space (it reads as zeros).
    Sparse(u64),
    Dir,
}

struct Row {
    name: &'static str,
    /// Split on spaces after `{dir}` is replaced by the row's directory.
    args: String,
    files: Vec<(&'static str, Content)>,
    stdin: Vec<u8>,
    env: Vec<(&'static str, String)>,
    code: i32,
    /// A part of standard error, after `{dir}` is replaced.
    message: String,
    /// Paths (relative to the row's directory) that must not exist afterwards.
    absent: Vec<&'static str>,
}

fn row(name: &'static str, args: &str, code: i32, message: &str) -> Row {
    Row {
        name,
        args: args.to_string(),
        files: Vec::new(),
        stdin: Vec::new(),
        env: Vec::new(),
        code,
        message: message.to_string(),
        absent: Vec::new(),
    }
}

impl Row {
    fn file(mut self, name: &'static str, bytes: impl Into<Vec<u8>>) -> Row {
        self.files.push((name, Content::Bytes(bytes.into())));
        self
    }
    fn sparse(mut self, name: &'static str, len: u64) -> Row {
        self.files.push((name, Content::Sparse(len)));
        self
    }
    fn dir(mut self, name: &'static str) -> Row {
        self.files.push((name, Content::Dir));
        self
    }
    fn stdin(mut self, bytes: &[u8]) -> Row {
        self.stdin = bytes.to_vec();
        self
    }
    fn env(mut self, key: &'static str, value: String) -> Row {
        self.env.push((key, value));
        self
    }
    fn absent(mut self, paths: &[&'static str]) -> Row {
        self.absent.extend_from_slice(paths);
        self
    }
}

// ---- inputs the rows are made from -------------------------------------------------------

/// A small checkpoint of an untrained model of the `translate` task, as `aiayn train` writes.
fn checkpoint() -> Vec<u8> {
    let task = Task::by_name("translate", 1).unwrap();
    let config = Config {
        n_layers: 1,
        d_model: 8,
        d_ff: 16,
        h: 2,
        d_k: 4,
        d_v: 4,
        positional: Positional::Sinusoidal,
        ..Config::base()
    };
    let model = Transformer::new(&config, task.vocab.len(), &mut StdRng::seed_from_u64(1)).unwrap();
    let options = TrainOptions {
        p_drop: 0.1,
        eps_ls: 0.1,
        warmup: 100,
        lr_scale: 0.25,
        batch_tokens: 200,
        seed: 1,
        threads: 1,
    };
    let info = RunInfo {
        task: task.name.clone(),
        data_seed: 1,
        config,
        vocab: task.vocab.len(),
    };
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-input-model.safetensors");
    save_trainer(&path, &Trainer::new(model, options), &info).unwrap();
    let bytes = fs::read(&path).unwrap();
    let _ = fs::remove_file(path);
    bytes
}

/// `bytes` (a safetensors file) with its JSON header changed by `edit`.
fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header.as_object_mut().unwrap());
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// `bytes` with the metadata `key` set to `value`.
fn with_meta(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    edit_header(bytes, |h| {
        h["__metadata__"][key] = json!(value);
    })
}

/// A header of `header` JSON and no data.
fn header_only(header: &str) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out
}

/// The attention fixture, changed by `edit`.
fn fixture(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/attention-plain.json");
    let mut value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    serde_json::to_vec_pretty(&value).unwrap()
}

const BOOK_TOML: &str = "[book]\ntitle = \"t\"\n";
const SUMMARY: &str = "# Summary\n\n- [One](one.md)\n";

/// The rows. `busy` is a port something else listens on.
fn table(busy: u16) -> Vec<Row> {
    let ckpt = checkpoint();
    let good_fixture = fixture(|_| {});
    let translate_stdin = "translate {dir}/m.safetensors --beam 1";
    vec![
        // ---- params
        row(
            "params-vocab-zero",
            "params --vocab 0",
            2,
            "--vocab must be at least 1",
        ),
        row("params-vocab-word", "params --vocab many", 2, "--vocab"),
        row("params-vocab-negative", "params --vocab -3", 2, "-3"),
        row(
            "params-vocab-overflows",
            "params --vocab 10000000000000000000",
            2,
            "--vocab 10000000000000000000 is too large to count",
        ),
        row(
            // 2^53: its embedding in the big model, 2^63 parameters, fits in 64 bits, but the
            // counts add several such terms, so it is refused too
            "params-vocab-half-range",
            "params --vocab 9007199254740992",
            2,
            "--vocab 9007199254740992 is too large to count",
        ),
        row(
            "params-vocab-beyond-usize",
            "params --vocab 100000000000000000000",
            2,
            "--vocab",
        ),
        row(
            "params-unknown-row",
            "params --config F9",
            2,
            "no Table 3 row is called \"F9\"; the rows are base, A1",
        ),
        row("unknown-command", "frobnicate", 2, "frobnicate"),
        // ---- table1
        row(
            "table1-d-zero",
            "table1 --d 0",
            2,
            "--d, --k and --r must be at least 1",
        ),
        row(
            "table1-k-zero",
            "table1 --d 8 --k 0 --max-n 16",
            2,
            "--d, --k and --r must be at least 1 (given d = 8, k = 0, r = 32)",
        ),
        row(
            "table1-r-zero",
            "table1 --d 8 --r 0 --max-n 16",
            2,
            "--d, --k and --r must be at least 1 (given d = 8, k = 3, r = 0)",
        ),
        row(
            "table1-n-small",
            "table1 --max-n 8",
            2,
            "--max-n must be at least 16",
        ),
        row(
            "table1-d-huge",
            "table1 --d 1000000000000",
            2,
            "--d: the recurrent layer's d x d weights would be more than 2^64 values",
        ),
        row(
            "table1-k-huge",
            "table1 --d 8 --k 1000000000 --max-n 16",
            2,
            "--k and --d: the convolution's k x d x d kernels would be 64000000000 values",
        ),
        row(
            "table1-n-huge",
            "table1 --d 1 --max-n 100000000",
            2,
            "--max-n: the n x n attention scores",
        ),
        row("table1-d-word", "table1 --d wide", 2, "--d"),
        // ---- verify (fixture files)
        row("verify-no-files", "verify", 2, "<FILES>"),
        row(
            "verify-missing",
            "verify {dir}/none.json",
            2,
            "{dir}/none.json: cannot read the file",
        ),
        row("verify-directory", "verify {dir}/d.json", 2, "{dir}/d.json").dir("d.json"),
        row(
            "verify-empty",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: not valid JSON",
        )
        .file("f.json", ""),
        row(
            "verify-truncated",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: not valid JSON",
        )
        .file("f.json", good_fixture[..good_fixture.len() / 2].to_vec()),
        row(
            "verify-not-utf8",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: not UTF-8 text: invalid bytes at offset 8 (line 1)",
        )
            .file("f.json", b"{\"op\": \"\xff\xfe\"}".to_vec()),
        row(
            "verify-not-utf8-line-3",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: not UTF-8 text: invalid bytes at offset 9 (line 3)",
        )
        .file("f.json", b"{\n\"op\":\n\"\xff\"}".to_vec()),
        row(
            "verify-array",
            "verify {dir}/f.json",
            2,
            "the file must hold a JSON object",
        )
        .file("f.json", "[1, 2]"),
        row(
            "verify-no-op",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: op: missing",
        )
        .file("f.json", "{\"format\": \"aiayn-fixture/1\"}"),
        row(
            "verify-unknown-op",
            "verify {dir}/f.json",
            2,
            "unknown op \"softermax\"",
        )
        .file("f.json", fixture(|f| f["op"] = json!("softermax"))),
        row("verify-wrong-format", "verify {dir}/f.json", 2, "format").file(
            "f.json",
            fixture(|f| f["format"] = json!("aiayn-fixture/99")),
        ),
        row(
            "verify-shape-a-string",
            "verify {dir}/f.json",
            2,
            "inputs.q",
        )
        .file(
            "f.json",
            fixture(|f| f["inputs"]["q"]["shape"] = json!("3x4")),
        ),
        row("verify-data-a-string", "verify {dir}/f.json", 2, "inputs.q").file(
            "f.json",
            fixture(|f| f["inputs"]["q"]["data"][0] = json!("one")),
        ),
        row(
            "verify-shape-and-data-disagree",
            "verify {dir}/f.json",
            2,
            "inputs.q",
        )
        .file(
            "f.json",
            fixture(|f| f["inputs"]["q"]["shape"] = json!([4, 4])),
        ),
        row(
            "verify-huge-shape",
            "verify {dir}/f.json",
            2,
            "inputs.q: shape [1000000000000, 1000000000000] has more elements than memory can address",
        )
        .file(
            "f.json",
            fixture(|f| {
                f["inputs"]["q"]["shape"] = json!([1_000_000_000_000u64, 1_000_000_000_000u64])
            }),
        ),
        row(
            "verify-mismatched-widths",
            "verify {dir}/f.json",
            2,
            "f.json",
        )
        .file(
            "f.json",
            fixture(|f| {
                f["inputs"]["k"]["shape"] = json!([4, 5]);
            }),
        ),
        row(
            "verify-huge-file",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: the file is 300000000 bytes",
        )
        .sparse("f.json", 300_000_000),
        row(
            "verify-file-one-byte-over",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: the file is 268435457 bytes; files of more than 268435456 bytes",
        )
        .sparse("f.json", (256 << 20) + 1),
        row(
            // exactly the limit is read (and then is not JSON: it is all zero bytes)
            "verify-file-at-the-limit",
            "verify {dir}/f.json",
            2,
            "{dir}/f.json: not valid JSON",
        )
        .sparse("f.json", 256 << 20),
        // ---- bleu (text files)
        row("bleu-one-file", "bleu {dir}/r.txt", 2, "<HYPOTHESIS>").file("r.txt", "a\n"),
        row(
            "bleu-bad-flag",
            "bleu {dir}/r.txt {dir}/r.txt --bogus",
            2,
            "--bogus",
        )
        .file("r.txt", "a\n"),
        row(
            "bleu-missing",
            "bleu {dir}/none.txt {dir}/r.txt",
            2,
            "cannot read {dir}/none.txt",
        )
        .file("r.txt", "a\n"),
        row(
            "bleu-directory",
            "bleu {dir}/d {dir}/r.txt",
            2,
            "cannot read {dir}/d",
        )
        .dir("d")
        .file("r.txt", "a\n"),
        row(
            "bleu-empty-reference",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/r.txt: the file is empty",
        )
        .file("r.txt", "")
        .file("h.txt", "a\n"),
        row(
            "bleu-empty-hypothesis",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/h.txt: the file is empty",
        )
        .file("r.txt", "a\n")
        .file("h.txt", ""),
        row(
            "bleu-line-counts-differ",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/r.txt has 3 lines but {dir}/h.txt has 2",
        )
        .file("r.txt", "one\ntwo\nthree\n")
        .file("h.txt", "one\ntwo\n"),
        row(
            "bleu-latin1",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/h.txt: line 3 is not valid UTF-8",
        )
        .file("r.txt", "one\ntwo\nthree\n")
        .file("h.txt", b"one\ntwo\ncaf\xe9\n".to_vec()),
        row(
            "bleu-binary",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/r.txt: line 1 is not valid UTF-8",
        )
        .file("r.txt", vec![0u8, 0xff, 0xfe, 0x80])
        .file("h.txt", "a\n"),
        row(
            "bleu-huge",
            "bleu {dir}/r.txt {dir}/h.txt",
            2,
            "{dir}/r.txt: the file is 300000000 bytes",
        )
        .sparse("r.txt", 300_000_000)
        .file("h.txt", "a\n"),
        // ---- checkpoints, through evaluate, translate, average and train --resume
        row(
            "evaluate-missing",
            "evaluate {dir}/none.safetensors",
            2,
            "{dir}/none.safetensors",
        ),
        row("evaluate-directory", "evaluate {dir}/d", 2, "{dir}/d").dir("d"),
        row(
            "evaluate-empty",
            "evaluate {dir}/m.safetensors",
            2,
            "not a safetensors file: the file is empty",
        )
        .file("m.safetensors", ""),
        row(
            "evaluate-short",
            "evaluate {dir}/m.safetensors",
            2,
            "too short for the 8-byte header length",
        )
        .file("m.safetensors", "abc"),
        row(
            "evaluate-text",
            "evaluate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", "not a checkpoint"),
        row(
            "evaluate-truncated",
            "evaluate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", ckpt[..ckpt.len() - 100].to_vec()),
        row(
            "evaluate-trailing-bytes",
            "evaluate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", [ckpt.clone(), vec![0; 12]].concat()),
        row(
            "evaluate-header-too-long",
            "evaluate {dir}/m.safetensors",
            2,
            "the header length is",
        )
        .file(
            "m.safetensors",
            [u64::MAX.to_le_bytes().to_vec(), b"{}".to_vec()].concat(),
        ),
        row(
            "evaluate-header-not-json",
            "evaluate {dir}/m.safetensors",
            2,
            "the header is not JSON",
        )
        .file("m.safetensors", header_only("{not json")),
        row(
            "evaluate-header-not-utf8",
            "evaluate {dir}/m.safetensors",
            2,
            "the header is not UTF-8",
        )
        .file(
            "m.safetensors",
            [5u64.to_le_bytes().to_vec(), b"{\"\xff\"}".to_vec()].concat(),
        ),
        row(
            "evaluate-header-an-array",
            "evaluate {dir}/m.safetensors",
            2,
            "the header is not a JSON object",
        )
        .file("m.safetensors", header_only("[]")),
        row(
            "evaluate-no-metadata",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata format is missing",
        )
        .file("m.safetensors", header_only("{}")),
        row(
            "evaluate-huge-sparse",
            "evaluate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .sparse("m.safetensors", 300_000_000),
        row(
            "evaluate-wrong-format",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata format is \"other/1\"",
        )
        .file("m.safetensors", with_meta(&ckpt, "format", "other/1")),
        row(
            "evaluate-d-model-a-word",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata d_model",
        )
        .file("m.safetensors", with_meta(&ckpt, "d_model", "eight")),
        row(
            "evaluate-d-model-negative",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata d_model",
        )
        .file("m.safetensors", with_meta(&ckpt, "d_model", "-8")),
        row(
            "evaluate-heads-do-not-tile",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata d_model",
        )
        .file("m.safetensors", with_meta(&ckpt, "h", "3")),
        row(
            "evaluate-unknown-positional",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata positional is \"rotary\"",
        )
        .file("m.safetensors", with_meta(&ckpt, "positional", "rotary")),
        row(
            "evaluate-vocab-1e12",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata vocab does not fit the file: vocab x d_model = 1000000000000 x 8 values",
        )
        .file("m.safetensors", with_meta(&ckpt, "vocab", "1000000000000")),
        row(
            "evaluate-vocab-overflows",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata vocab does not fit the file",
        )
        .file(
            "m.safetensors",
            with_meta(&ckpt, "vocab", "18446744073709551615"),
        ),
        row(
            "evaluate-d-ff-huge",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata d_ff does not fit the file",
        )
        .file("m.safetensors", with_meta(&ckpt, "d_ff", "4000000000")),
        row(
            "evaluate-layers-huge",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata n_layers does not fit the file",
        )
        .file(
            "m.safetensors",
            with_meta(&ckpt, "n_layers", "100000000000"),
        ),
        row(
            "evaluate-sizes-make-too-many-parameters",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata sizes does not fit the file: n_layers 1000, d_model 8, d_ff 1000000",
        )
        .file(
            "m.safetensors",
            with_meta(&with_meta(&ckpt, "n_layers", "1000"), "d_ff", "1000000"),
        ),
        row(
            "evaluate-max-len-huge",
            "evaluate {dir}/m.safetensors",
            2,
            "metadata max_len does not fit the file",
        )
        .file(
            "m.safetensors",
            with_meta(
                &with_meta(&ckpt, "positional", "learned"),
                "max_len",
                "100000000000",
            ),
        ),
        row(
            "evaluate-wrong-shape",
            "evaluate {dir}/m.safetensors",
            2,
            "ffn.",
        )
        .file("m.safetensors", with_meta(&ckpt, "d_ff", "12")),
        row(
            "evaluate-wrong-dtype",
            "evaluate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file(
            "m.safetensors",
            edit_header(&ckpt, |h| {
                let name = h.keys().find(|k| k.ends_with("ffn.w_1")).unwrap().clone();
                h[&name]["dtype"] = json!("F64");
            }),
        ),
        row(
            "evaluate-tensor-missing",
            "evaluate {dir}/m.safetensors",
            2,
            "ffn.w_1",
        )
        .file(
            "m.safetensors",
            edit_header(&ckpt, |h| {
                let name = h.keys().find(|k| k.ends_with("ffn.w_1")).unwrap().clone();
                let entry = h.remove(&name).unwrap();
                h.insert(format!("{name}.renamed"), entry);
            }),
        ),
        row(
            "evaluate-unknown-task",
            "evaluate {dir}/m.safetensors",
            2,
            "unknown task `sort`",
        )
        .file("m.safetensors", with_meta(&ckpt, "task", "sort")),
        row(
            "evaluate-vocab-not-the-tasks",
            "evaluate {dir}/m.safetensors",
            2,
            "`copy`",
        )
        .file("m.safetensors", with_meta(&ckpt, "task", "copy")),
        row(
            "evaluate-pairs-zero",
            "evaluate {dir}/m.safetensors --pairs 0",
            2,
            "--pairs must be at least 1",
        )
        .file("m.safetensors", ckpt.clone()),
        row(
            "evaluate-threads-zero",
            "evaluate {dir}/m.safetensors --threads 0",
            2,
            "--threads must be at least 1",
        )
        .file("m.safetensors", ckpt.clone()),
        row(
            "evaluate-beam-zero",
            "evaluate {dir}/m.safetensors --beam 0",
            2,
            "--beam must be at least 1",
        )
        .file("m.safetensors", ckpt.clone()),
        row(
            "translate-missing",
            "translate {dir}/none.safetensors",
            2,
            "{dir}/none.safetensors",
        ),
        row(
            "translate-garbage",
            "translate {dir}/m.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", "not a checkpoint"),
        row(
            "translate-beam-zero",
            "translate {dir}/m.safetensors --beam 0",
            2,
            "--beam must be at least 1",
        )
        .file("m.safetensors", "x"),
        row(
            "translate-beam-word",
            "translate {dir}/m.safetensors --beam four",
            2,
            "--beam",
        )
        .file("m.safetensors", "x"),
        row(
            "translate-alpha-negative",
            "translate {dir}/m.safetensors --alpha -0.5",
            2,
            "--alpha must be a finite number >= 0",
        )
        .file("m.safetensors", "x"),
        row(
            "translate-alpha-nan",
            "translate {dir}/m.safetensors --alpha NaN",
            2,
            "--alpha must be a finite number >= 0",
        )
        .file("m.safetensors", "x"),
        row(
            "translate-alpha-inf",
            "translate {dir}/m.safetensors --alpha inf",
            2,
            "--alpha must be a finite number >= 0",
        )
        .file("m.safetensors", "x"),
        row(
            "translate-unknown-word",
            translate_stdin,
            2,
            "standard input, line 2",
        )
        .file("m.safetensors", ckpt.clone())
        .stdin(b"the dog sees a cat\nthe dog eats zebras\n"),
        row(
            "translate-not-utf8",
            translate_stdin,
            2,
            "standard input, line 1",
        )
        .file("m.safetensors", ckpt.clone())
        .stdin(b"the dog \xff\xfe\n"),
        row(
            "average-none",
            "average --out {dir}/avg.safetensors",
            2,
            "<CHECKPOINTS>",
        )
        .absent(&["avg.safetensors"]),
        row(
            "average-missing",
            "average {dir}/none.safetensors --out {dir}/avg.safetensors",
            2,
            "{dir}/none.safetensors",
        )
        .absent(&["avg.safetensors"]),
        row(
            "average-garbage",
            "average {dir}/m.safetensors --out {dir}/avg.safetensors",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", "not a checkpoint")
        .absent(&["avg.safetensors"]),
        row(
            "average-second-of-another-data-seed",
            "average {dir}/a.safetensors {dir}/b.safetensors --out {dir}/avg.safetensors",
            2,
            "{dir}/b.safetensors: metadata data_seed is 2, but",
        )
        .file("a.safetensors", ckpt.clone())
        .file("b.safetensors", with_meta(&ckpt, "data_seed", "2"))
        .absent(&["avg.safetensors"]),
        row(
            "average-into-a-directory",
            "average {dir}/a.safetensors --out {dir}/d",
            2,
            "{dir}/d",
        )
        .file("a.safetensors", ckpt.clone())
        .dir("d"),
        row(
            "average-into-a-missing-directory",
            "average {dir}/a.safetensors --out {dir}/no/avg.safetensors",
            2,
            "{dir}/no/avg.safetensors",
        )
        .file("a.safetensors", ckpt.clone())
        .absent(&["no"]),
        // ---- train
        row(
            "train-unknown-task",
            "train sort --out {dir}/run",
            2,
            "unknown task `sort`; the tasks are: copy, reverse, translate",
        )
        .absent(&["run"]),
        row(
            "train-unknown-flag",
            "train copy --no-such-flag",
            2,
            "--no-such-flag",
        ),
        row(
            "train-heads-do-not-divide",
            "train copy --d-model 30 --heads 4 --out {dir}/run",
            2,
            "not a multiple of --heads 4",
        )
        .absent(&["run"]),
        row(
            "train-heads-zero",
            "train copy --heads 0 --out {dir}/run",
            2,
            "--heads must be at least 1",
        )
        .absent(&["run"]),
        row(
            "train-dropout-one",
            "train copy --dropout 1.5 --out {dir}/run",
            2,
            "p_drop",
        )
        .absent(&["run"]),
        row(
            "train-smoothing-two",
            "train copy --label-smoothing 2 --out {dir}/run",
            2,
            "eps_ls",
        )
        .absent(&["run"]),
        row(
            "train-warmup-zero",
            "train copy --warmup 0 --out {dir}/run",
            2,
            "--warmup",
        )
        .absent(&["run"]),
        row(
            "train-lr-zero",
            "train copy --lr-scale 0 --steps 1 --eval-pairs 1 --out {dir}/run",
            2,
            "--lr-scale 0 must be a positive number",
        )
        .absent(&["run"]),
        row(
            "train-lr-inf",
            "train copy --lr-scale inf --steps 1 --eval-pairs 1 --out {dir}/run",
            2,
            "--lr-scale inf must be a positive number",
        )
        .absent(&["run"]),
        row(
            "train-lr-nan",
            "train copy --lr-scale NaN --out {dir}/run",
            2,
            "--lr-scale NaN must be a positive number",
        )
        .absent(&["run"]),
        row(
            "train-eval-every-zero",
            "train copy --eval-every 0 --out {dir}/run",
            2,
            "--eval-every must be at least 1",
        )
        .absent(&["run"]),
        row(
            "train-eval-pairs-zero",
            "train copy --eval-pairs 0 --out {dir}/run",
            2,
            "--eval-pairs must be at least 1",
        )
        .absent(&["run"]),
        row(
            "train-batch-tokens-zero",
            "train copy --batch-tokens 0 --out {dir}/run",
            2,
            "--batch-tokens must be at least 1",
        )
        .absent(&["run"]),
        row(
            "train-steps-zero",
            "train copy --steps 0 --out {dir}/run",
            2,
            "--steps 0 leaves nothing to train",
        )
        .absent(&["run"]),
        row(
            "train-d-model-huge",
            "train copy --d-model 1000000000000 --heads 1 --out {dir}/run",
            2,
            "--d-model 1000000000000 is too large",
        )
        .absent(&["run"]),
        row(
            "train-layers-huge",
            "train copy --layers 1000000 --out {dir}/run",
            2,
            "--layers 1000000 is too large",
        )
        .absent(&["run"]),
        row(
            // at the per-flag limit itself, the size passes its own check and is refused for
            // the parameters it would take
            "train-layers-at-limit",
            "train copy --layers 1024 --d-model 1024 --heads 1 --out {dir}/run",
            2,
            "the model would have",
        )
        .absent(&["run"]),
        row(
            "train-too-many-parameters",
            "train copy --d-model 8192 --heads 8 --out {dir}/run",
            2,
            "the model would have",
        )
        .absent(&["run"]),
        row(
            "train-resume-missing",
            "train copy --resume {dir}/none.safetensors --out {dir}/run",
            2,
            "{dir}/none.safetensors",
        )
        .absent(&["run"]),
        row(
            "train-resume-garbage",
            "train copy --resume {dir}/m.safetensors --out {dir}/run",
            2,
            "{dir}/m.safetensors",
        )
        .file("m.safetensors", "not a checkpoint")
        .absent(&["run"]),
        row(
            "train-resume-other-task",
            "train copy --resume {dir}/m.safetensors --out {dir}/run",
            2,
            "`translate`, not `copy`",
        )
        .file("m.safetensors", ckpt.clone())
        .absent(&["run"]),
        row(
            "train-resume-not-resumable",
            "train translate --resume {dir}/m.safetensors --out {dir}/run",
            2,
            "metadata resumable is false",
        )
        .file("m.safetensors", with_meta(&ckpt, "resumable", "false"))
        .absent(&["run"]),
        row(
            "train-resume-at-its-end",
            "train translate --resume {dir}/m.safetensors --steps 0 --out {dir}/run",
            2,
            "leaves nothing to train",
        )
        .file("m.safetensors", ckpt.clone())
        .absent(&["run"]),
        row(
            "train-out-a-file",
            "train copy --steps 1 --out {dir}/run",
            2,
            "--out {dir}/run is a file, not a directory",
        )
        .file("run", "mine"),
        // ---- build and serve (chapter sources, the output directory)
        row(
            "build-no-book",
            "build --out {dir}/out",
            2,
            "no book at {dir}",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .absent(&["out", ".out.next"]),
        row(
            "build-config-not-toml",
            "build --out {dir}/out",
            2,
            "book/book.toml",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", "[book\ntitle = ")
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n")
        .absent(&["out", ".out.next"]),
        row(
            "build-chapter-missing",
            "build --out {dir}/out",
            2,
            "one.md",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .absent(&["out", ".out.next"]),
        row(
            "build-chapter-not-utf8",
            "build --out {dir}/out",
            2,
            "one.md",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", b"# One\n\ncaf\xe9\n".to_vec())
        .absent(&["out", ".out.next"]),
        row(
            "build-latex-error",
            "build --out {dir}/out",
            2,
            "book/src/one.md:3",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n\n$\\frac{a}$\n")
        .absent(&["out", ".out.next"]),
        row(
            "build-into-a-file",
            "build --out {dir}/out",
            2,
            "{dir}/out is a file, not a directory",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n")
        .file("out", "mine")
        .absent(&[".out.next"]),
        row(
            "build-into-someone-elses-directory",
            "build --out {dir}/out",
            2,
            "refusing to write the book into {dir}/out",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n")
        .file("out/keep.txt", "mine")
        .absent(&[".out.next"]),
        row(
            "build-into-the-sources",
            "build --out {dir}/book",
            2,
            "holds the book's sources",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n"),
        row(
            "build-into-the-chapters",
            "build --out {dir}/book/src/html",
            2,
            "holds the book's sources",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n")
        .absent(&["book/src/html"]),
        row(
            "build-over-the-whole-project",
            "build --out {dir}/..",
            2,
            "holds the book's sources",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .file("book/book.toml", BOOK_TOML)
        .file("book/src/SUMMARY.md", SUMMARY)
        .file("book/src/one.md", "# One\n"),
        row(
            "serve-port-in-use",
            &format!("serve --port {busy} --out {{dir}}/out"),
            2,
            &format!("port {busy} is in use"),
        )
        .absent(&["out"]),
        row("serve-port-too-big", "serve --port 70000", 2, "--port"),
        row(
            "serve-no-book",
            "serve --port 0 --out {dir}/out",
            2,
            "no book at {dir}",
        )
        .env("AIAYN_ROOT", "{dir}".to_string())
        .absent(&["out", ".out.next"]),
    ]
}

/// Everything under `dir`, as paths relative to it.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        found.push(path.strip_prefix(dir).unwrap().to_path_buf());
        if path.is_dir() {
            found.extend(
                listing(&path)
                    .into_iter()
                    .map(|p| path.strip_prefix(dir).unwrap().join(p)),
            );
        }
    }
    found.sort();
    found
}

/// Runs one row; the problems it shows, if any.
fn run(row: &Row) -> Vec<String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bad-input")
        .join(row.name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let at = |s: &str| s.replace("{dir}", dir.to_str().unwrap());
    for (name, content) in &row.files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match content {
            Content::Bytes(bytes) => fs::write(&path, bytes).unwrap(),
            Content::Sparse(len) => fs::File::create(&path).unwrap().set_len(*len).unwrap(),
            Content::Dir => fs::create_dir_all(&path).unwrap(),
        }
    }
    let before = listing(&dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_aiayn"));
    command
        .args(at(&row.args).split(' '))
        .env("RUST_BACKTRACE", "1")
        .env_remove("AIAYN_ROOT")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in &row.env {
        command.env(key, at(value));
    }
    let mut child = command.spawn().expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&row.stdin);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    let mut problem =
        |what: String| problems.push(format!("{}: {what}\n  stderr: {stderr}", row.name));
    if out.status.code() != Some(row.code) {
        problem(format!(
            "exit {:?}, expected {}",
            out.status.code(),
            row.code
        ));
    }
    if !stderr.contains(&at(&row.message)) {
        problem(format!(
            "the message does not contain {:?}",
            at(&row.message)
        ));
    }
    for sign in [
        "panicked",
        "backtrace",
        "memory allocation",
        "RUST_BACKTRACE",
    ] {
        if stderr.contains(sign) {
            problem(format!("the output shows {sign:?}"));
        }
    }
    for path in &row.absent {
        if dir.join(path).exists() {
            problem(format!("{path} exists afterwards"));
        }
    }
    let after = listing(&dir);
    let left: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    if !left.is_empty() {
        problem(format!("left behind: {left:?}"));
    }
    if problems.is_empty() {
        let _ = fs::remove_dir_all(&dir);
    }
    problems
}

#[test]
fn every_command_refuses_bad_input_with_exit_2_and_a_named_problem() {
    let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let table = table(busy.local_addr().unwrap().port());
    assert_eq!(
        table.len(),
        129,
        "the module comment states the table's size"
    );
    let mut names: Vec<_> = table.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), table.len(), "row names are unique");
    // Four rows at a time: each is a process of its own.
    let rows: Vec<&Row> = table.iter().collect();
    let problems: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = rows
            .chunks(rows.len().div_ceil(4))
            .map(|chunk| s.spawn(move || chunk.iter().flat_map(|r| run(r)).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `aiayn params --config all | head -1`: the reader is gone before the first line. The pipe's
    // read end is closed before the process starts, so every write fails, whatever the timing.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_aiayn"))
        .args(["params", "--config", "all"])
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "a closed pipe made it panic:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
}
