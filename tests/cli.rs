//! The `aiayn` command as a user meets it: output and exit codes. Bad input to every command
//! is one table, in `tests/bad_input.rs`.

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
fn help_and_version_exit_0() {
    assert_eq!(aiayn(&["--help"]).status.code(), Some(0));
    assert_eq!(aiayn(&["--version"]).status.code(), Some(0));
    assert!(stdout(&aiayn(&["params", "--help"])).contains("--attention-bias"));
}

/// A scratch directory under the target directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn translate(checkpoint: &std::path::Path, input: &[u8]) -> Output {
    translate_with(checkpoint, &[], input)
}

fn translate_with(checkpoint: &std::path::Path, flags: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiayn"))
        .args(["translate", checkpoint.to_str().unwrap()])
        .args(flags)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().expect("it ends")
}

#[test]
fn the_train_log_names_the_epoch_of_each_step_s_batch() {
    // With a budget of 60,000 tokens a side, an epoch of `copy` is ten batches. An epoch trains
    // on every training pair once, so once the run is into epoch 1, the rows logged with epoch
    // 0 must add up to the whole training set: as many target tokens as the pairs' targets
    // plus their EOS. A row labelled with the epoch before its batch's (the epoch counter read
    // before the batch is drawn) adds epoch 1's first batch to that sum.
    use aiayn::train::tasks::Task;
    let dir = scratch("cli-train-epochs");
    let out = aiayn(&[
        "train",
        "copy",
        "--d-model",
        "8",
        "--heads",
        "1",
        "--layers",
        "1",
        "--steps",
        "12",
        "--batch-tokens",
        "60000",
        "--eval-every",
        "1000",
        "--eval-pairs",
        "1",
        "--data-seed",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    let rows: Vec<(&str, Vec<&str>)> = log
        .lines()
        .skip(1)
        .map(|row| (row, row.split(',').collect()))
        .collect();
    let (mut targets, mut epochs) = (0, Vec::new());
    for (_, cells) in &rows {
        let epoch: u64 = cells[1].parse().unwrap();
        if epoch == 0 {
            targets += cells[5].parse::<usize>().unwrap();
        }
        epochs.push(epoch);
    }
    assert!(epochs.is_sorted(), "epochs out of order:\n{log}");
    assert!(epochs.contains(&1), "the run reaches epoch 1:\n{log}");
    let task = Task::by_name("copy", 1).unwrap();
    let want: usize = task.train.iter().map(|p| p.tgt.len() + 1).sum();
    assert_eq!(targets, want, "epoch 0's target tokens:\n{log}");

    // Held-out metrics every 1000 steps and at the last: here only on step 12.
    // The rate is the tokens of both sides trained on so far over the time so far; the log
    // rounds the time to 0.01 s and the rate to 1 token/s.
    let mut so_far = 0.0;
    for (row, cells) in &rows {
        let evaluated = !cells[8].is_empty();
        assert_eq!(evaluated, cells[0] == "12", "{row}");
        let num = |i: usize| -> f64 { cells[i].parse().unwrap() };
        so_far += num(4) + num(5);
        let (rate, elapsed) = (num(6), num(7));
        if elapsed >= 0.05 {
            let slack = so_far * 0.006 / elapsed + elapsed;
            assert!(
                (rate * elapsed - so_far).abs() <= slack,
                "{rate} tokens/s x {elapsed} s against {so_far} tokens: {row}"
            );
        }
    }
}

#[test]
fn the_first_steps_of_the_books_training_runs_come_out_as_logged() {
    // The training chapter's commands (`aiayn train copy`, `aiayn train translate`) are
    // deterministic; the first three steps of each, run again with only --steps (and the
    // held-out pairs evaluated at the end) changed, give the committed logs' first rows: the
    // same losses, learning rates and token counts. Any change to a default (model size, heads,
    // schedule, batch, dropout, smoothing, seed) shows.
    for task in ["copy", "translate"] {
        let dir = scratch(&format!("cli-train-reproduce-{task}"));
        let out = aiayn(&[
            "train",
            task,
            "--steps",
            "3",
            "--eval-pairs",
            "1",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{task}: {}", stderr(&out));
        let ours = std::fs::read_to_string(dir.join("log.csv")).unwrap();
        let logged = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("book/runs/{task}.csv")),
        )
        .unwrap();
        // step, epoch, loss, lr, src_tokens, tgt_tokens (the rest is timing and evaluation)
        let head = |log: &str| -> Vec<String> {
            log.lines()
                .take(4)
                .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(head(&ours), head(&logged), "{task}");
    }
}

#[test]
fn train_starts_each_task_with_the_model_and_run_the_training_chapter_gives() {
    // The training chapter: d_model 64, h 4, d_ff 256, N = 2; 1500 steps of 2500-token batches
    // for copy, 6000 steps of 3000-token batches for translate. The run is stopped after its
    // first line.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    for (task, steps, batch) in [("copy", 1500, 2500), ("translate", 6000, 3000)] {
        let dir = scratch(&format!("cli-train-defaults-{task}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_aiayn"))
            .args(["train", task, "--out", dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        child.kill().ok();
        child.wait().ok();
        let want = format!(
            "d_model 64, 2 + 2 layers, h 4, d_ff 256; steps 1..{steps}, {batch} batch tokens"
        );
        assert!(first.contains(&want), "{task}: {first}");
    }
}

#[test]
fn train_writes_a_log_and_checkpoints_and_translate_reads_them() {
    let dir = scratch("cli-train");
    let out = aiayn(&[
        "train",
        "translate",
        "--d-model",
        "8",
        "--heads",
        "2",
        "--layers",
        "1",
        "--steps",
        "3",
        "--batch-tokens",
        "200",
        "--checkpoint-every",
        "2",
        "--eval-every",
        "2",
        "--eval-pairs",
        "4",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("held-out pairs: exact match"),
        "{}",
        stdout(&out)
    );
    // Four held-out examples: source, reference, greedy output of at most the source's length
    // + 50 tokens (§6.1's limit), which a model trained for three steps, that seldom emits EOS,
    // reaches.
    let text = stdout(&out);
    let examples: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("held-out examples"))
        .skip(1)
        .take(12)
        .collect();
    assert_eq!(examples.len(), 12, "{text}");
    for e in examples.chunks(3) {
        let words = |l: &str| {
            l.trim_end_matches("   (differs)")
                .split_whitespace()
                .count()
        };
        assert!(words(e[2]) <= words(e[0]) + 50, "{e:?}");
    }
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one row per step:\n{log}");
    assert!(lines[0].starts_with("step,epoch,loss,lr,"));
    assert!(
        lines[2].starts_with("2,") && lines[2].split(',').nth(8) == Some("4"),
        "step 2 is evaluated on 4 pairs: {}",
        lines[2]
    );
    assert!(
        dir.join("ckpt-000002.safetensors").exists()
            && dir.join("ckpt-000003.safetensors").exists()
    );

    let ckpt = dir.join("ckpt-000003.safetensors");
    let ok = translate(&ckpt, b"the dog sees a cat\n\nthe cats sleep\n");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).lines().count(), 3, "one line out per line in");
    // at most the input's length + 50 tokens (§6.1); an empty line stays empty
    let lens: Vec<usize> = stdout(&ok)
        .lines()
        .map(|l| l.split_whitespace().count())
        .collect();
    assert!(
        lens[0] <= 5 + 50 && lens[1] == 0 && lens[2] <= 3 + 50,
        "{lens:?}"
    );
    for flags in [&["--beam", "1"][..], &["--beam", "3", "--alpha", "0"]] {
        let out = translate_with(&ckpt, flags, b"the dog sees a cat\n\nthe cats sleep\n");
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).lines().count(),
            3,
            "{flags:?}: one line out per line in"
        );
    }

    let eval = aiayn(&[
        "evaluate",
        ckpt.to_str().unwrap(),
        "--pairs",
        "3",
        "--beam",
        "2",
        "--json",
    ]);
    assert_eq!(eval.status.code(), Some(0), "{}", stderr(&eval));
    let v: Value = serde_json::from_str(&stdout(&eval)).expect("valid JSON");
    assert_eq!(
        (v["pairs"].as_u64(), v["beam"].as_u64()),
        (Some(3), Some(2))
    );
    for key in [
        "exact_match",
        "bleu",
        "token_accuracy",
        "loss",
        "perplexity",
    ] {
        assert!(v[key].is_number(), "{key}: {v}");
    }

    // resuming continues the log and reaches the new last step
    let more = aiayn(&[
        "train",
        "translate",
        "--steps",
        "4",
        "--resume",
        ckpt.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--eval-pairs",
        "2",
    ]);
    assert_eq!(more.status.code(), Some(0), "{}", stderr(&more));
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    assert!(log.lines().last().unwrap().starts_with("4,"), "{log}");
}

/// Writes each (name, bytes) into a fresh scratch directory and returns the paths as strings.
fn bleu_files(dir: &str, files: &[(&str, &[u8])]) -> Vec<String> {
    let dir = scratch(dir);
    files
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("scratch file");
            path.to_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn bleu_prints_sacrebleus_line_and_json() {
    let paths = bleu_files(
        "bleu-ok",
        &[
            ("ref.txt", b"the cat sat down .\n"),
            ("hyp.txt", b"the cat sat down today\n"),
        ],
    );
    let out = aiayn(&["bleu", &paths[0], &paths[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The line the results chapter shows.
    assert_eq!(
        stdout(&out),
        "BLEU = 66.87 80.0/75.0/66.7/50.0 (BP = 1.000 ratio = 1.000 hyp_len = 5 ref_len = 5)\n"
    );
    let out = aiayn(&["bleu", &paths[0], &paths[1], "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert!((v["score"].as_f64().unwrap() - 100.0 * 0.2f64.powf(0.25)).abs() < 1e-12);
    assert_eq!(v["counts"], serde_json::json!([4, 3, 2, 1]));
    assert_eq!(v["totals"], serde_json::json!([5, 4, 3, 2]));
    assert_eq!(v["precisions"][0], 80.0);
    assert_eq!(
        (v["sys_len"].as_u64(), v["ref_len"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(v["bp"], 1.0);
}

#[test]
fn bleu_reads_crlf_files_and_empty_lines() {
    let paths = bleu_files(
        "bleu-crlf",
        &[("ref.txt", b"a b c d\r\n\r\n"), ("hyp.txt", b"a b c d\n\n")],
    );
    let out = aiayn(&["bleu", &paths[0], &paths[1], "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // exp(log 100) is 100 only to rounding, in sacreBLEU too.
    assert!((v["score"].as_f64().unwrap() - 100.0).abs() < 1e-12);
    assert_eq!(
        (v["sys_len"].as_u64(), v["ref_len"].as_u64()),
        (Some(4), Some(4))
    );
}

#[test]
fn fit_vocab_finds_one_vocabulary_for_every_table3_count_but_the_big_models() {
    let out = aiayn(&["params", "--config", "all", "--fit-vocab"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("base     65M  V in 39841..=41793"), "{text}");
    assert!(text.contains("big     213M  V in 35368..=36344"), "{text}");
    assert!(
        text.contains("no single vocabulary reproduces every row"),
        "{text}"
    );
    let but: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("every row but"))
        .collect();
    assert_eq!(but, ["every row but big: V in 41004..=41208"], "{text}");
}

#[test]
fn table1_times_each_layer_at_each_length_and_reports_the_crossover_it_measured() {
    let out = aiayn(&[
        "table1", "--d", "8", "--max-n", "64", "--k", "3", "--r", "5", "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("n = "), "{}", stderr(&out));
    let j: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        j["command"],
        "aiayn table1 --d 8 --max-n 64 --k 3 --r 5 --json"
    );
    assert_eq!(
        (j["d"].as_u64(), j["k"].as_u64(), j["r"].as_u64()),
        (Some(8), Some(3), Some(5))
    );
    // the machine: the CPU's model name where /proc/cpuinfo gives one, then OS and architecture
    let machine = j["machine"].as_str().unwrap();
    let os_arch = format!(", {} {}", std::env::consts::OS, std::env::consts::ARCH);
    assert!(machine.ends_with(&os_arch), "{machine}");
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap().trim().to_string())
    });
    assert_eq!(
        machine.strip_suffix(&os_arch),
        Some(model.as_deref().unwrap_or("unknown CPU")),
        "{machine}"
    );
    let rows = j["rows"].as_array().unwrap();
    let ns: Vec<u64> = rows.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [16, 32, 64], "lengths double from 16 up to --max-n");
    let kinds = [
        "self_attention",
        "recurrent",
        "convolutional",
        "restricted_self_attention",
    ];
    let mut times = Vec::new();
    for row in rows {
        let n = row["n"].as_u64().unwrap();
        let t: Vec<f64> = kinds
            .iter()
            .map(|k| row[format!("{k}_s")].as_f64().unwrap())
            .collect();
        assert!(t.iter().all(|s| s.is_finite() && *s > 0.0), "{row}");
        times.push((n, t[0], t[1]));
        // Table 1's operations, counted by hand for d = 8: attention 2 n^2 d, the recurrence
        // 2 n d^2, a k = 3 convolution d^2 per tap inside the sequence (3 n - 2 of them), the
        // r = 5 window 2 d per (query, key) pair (5 n - 6 pairs)
        let m = &row["multiply_adds"];
        assert_eq!(m["self_attention"].as_u64(), Some(2 * n * n * 8), "{row}");
        assert_eq!(m["recurrent"].as_u64(), Some(2 * n * 64), "{row}");
        assert_eq!(m["convolutional"].as_u64(), Some((3 * n - 2) * 64), "{row}");
        assert_eq!(
            m["restricted_self_attention"].as_u64(),
            Some((5 * n - 6) * 16),
            "{row}"
        );
    }
    // the summary is what the rows show
    let slower = times.iter().find(|(_, sa, rec)| sa > rec).map(|t| t.0);
    let faster = times
        .iter()
        .take_while(|(_, sa, rec)| sa <= rec)
        .last()
        .map(|t| t.0);
    assert_eq!(j["self_attention_slower_from_n"].as_u64(), slower, "{j}");
    assert_eq!(j["self_attention_faster_up_to_n"].as_u64(), faster, "{j}");

    let out = aiayn(&["table1", "--d", "8", "--max-n", "32"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("d = 8, k = 3, r = 32"), "{text}");
    assert!(
        lines[2].split_whitespace().eq([
            "n",
            "self-attention",
            "recurrent",
            "convolutional",
            "restricted"
        ]),
        "{text}"
    );
    for (line, n) in lines[3..5].iter().zip(["16", "32"]) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 5, "{text}");
        assert_eq!(cells[0], n, "{text}");
        assert!(
            cells[1..]
                .iter()
                .all(|c| c.parse::<f64>().is_ok_and(|ms| ms > 0.0)),
            "{text}"
        );
    }
    assert!(lines[5].starts_with("self-attention is"), "{text}");
    // progress goes to stderr, one line per length, in text mode only (JSON stays parseable
    // and quiet)
    let progress: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("n = "))
        .map(str::to_string)
        .collect();
    assert_eq!(progress.len(), 2, "{}", stderr(&out));
    assert!(progress[0].starts_with("n =    16: ") && progress[1].starts_with("n =    32: "));
}

#[test]
fn a_new_run_starts_a_new_log_and_a_resumed_one_continues_it() {
    let dir = scratch("cli-train-log-modes");
    let run = |steps: &str, resume: Option<&std::path::Path>| {
        let mut args = vec![
            "train",
            "copy",
            "--d-model",
            "8",
            "--heads",
            "1",
            "--layers",
            "1",
            "--batch-tokens",
            "100",
            "--eval-pairs",
            "1",
            "--steps",
            steps,
            "--out",
            dir.to_str().unwrap(),
        ];
        if let Some(ckpt) = resume {
            args.extend(["--resume", ckpt.to_str().unwrap()]);
        }
        let out = aiayn(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        std::fs::read_to_string(dir.join("log.csv")).unwrap()
    };
    let steps_of = |log: &str| -> Vec<String> {
        log.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let first = run("2", None);
    assert!(first.starts_with("step,epoch,"), "{first}");
    assert_eq!(steps_of(&first), ["1", "2"]);
    // the same directory, no --resume: the old log is replaced, header and all
    let second = run("3", None);
    assert!(second.starts_with("step,epoch,"), "{second}");
    assert_eq!(steps_of(&second), ["1", "2", "3"]);
    // --resume appends to the log, without a second header
    let ckpt = dir.join("ckpt-000003.safetensors");
    let resumed = run("4", Some(&ckpt));
    assert_eq!(resumed.matches("step,epoch,").count(), 1, "{resumed}");
    assert_eq!(steps_of(&resumed), ["1", "2", "3", "4"]);
    // --resume without a log to continue starts one, with its header
    std::fs::remove_file(dir.join("log.csv")).unwrap();
    let ckpt = dir.join("ckpt-000004.safetensors");
    let restarted = run("5", Some(&ckpt));
    assert!(restarted.starts_with("step,epoch,"), "{restarted}");
    assert_eq!(steps_of(&restarted), ["5"]);
}
