//! `aiayn train` and `aiayn translate`: the training loop with a progress bar, a CSV log and
//! checkpoints, and translation from a checkpoint by beam search (§6.1).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use aiayn::config::{Config, Positional};
use aiayn::decode::{beam_search, greedy};
use aiayn::train::evaluate::{evaluate as held_out_metrics, evaluate_decoding, Metrics};
use aiayn::train::state::{
    average as average_checkpoints, load_model, load_trainer, save_model, save_trainer, RunInfo,
};
use aiayn::train::tasks::{Task, BOS, EOS};
use aiayn::train::trainer::{BatchStream, TrainOptions, Trainer};
use aiayn::Transformer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::cli::CliError;

/// The flags of `aiayn train`; `None` means the task's default.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    /// The task: copy, reverse or translate.
    task: String,
    /// d_model [default: 64].
    #[arg(long)]
    d_model: Option<usize>,
    /// N, layers in each stack [default: 2].
    #[arg(long)]
    layers: Option<usize>,
    /// h, attention heads (d_k = d_v = d_model / h) [default: 4].
    #[arg(long)]
    heads: Option<usize>,
    /// d_ff, the FFN's inner width [default: 4 d_model].
    #[arg(long)]
    d_ff: Option<usize>,
    /// Train until this step [default: per task].
    #[arg(long)]
    steps: Option<usize>,
    /// Token budget of a batch, per side, padding included (§5.1) [default: per task].
    #[arg(long)]
    batch_tokens: Option<usize>,
    /// warmup_steps of Eq. 3 [default: 100].
    #[arg(long)]
    warmup: Option<usize>,
    /// A factor on Eq. 3's learning rate [default: 0.25].
    #[arg(long)]
    lr_scale: Option<f64>,
    /// P_drop (§5.4) [default: 0.1].
    #[arg(long)]
    dropout: Option<f64>,
    /// eps_ls (§5.4) [default: 0.1].
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Seeds the initial weights, the batch order and the dropout masks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seeds the task's data and its train / held-out split.
    #[arg(long, default_value_t = 1)]
    data_seed: u64,
    /// Threads for the gradients (the result does not depend on it).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Directory for log.csv and the checkpoints.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Write a checkpoint every K steps (and at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// Measure held-out metrics every K steps.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Held-out pairs used for the periodic metrics (the end uses all).
    #[arg(long, default_value_t = 200)]
    eval_pairs: usize,
    /// Continue the run saved in this checkpoint, exactly where it stopped.
    #[arg(long)]
    resume: Option<PathBuf>,
}

/// A task's default model and run: small enough to train on two cores in minutes.
struct Defaults {
    d_model: usize,
    layers: usize,
    heads: usize,
    steps: usize,
    batch_tokens: usize,
    warmup: usize,
    lr_scale: f64,
}

fn defaults(task: &str) -> Defaults {
    match task {
        "translate" => Defaults {
            d_model: 64,
            layers: 2,
            heads: 4,
            steps: 6000,
            batch_tokens: 3000,
            warmup: 100,
            lr_scale: 0.25,
        },
        _ => Defaults {
            d_model: 64,
            layers: 2,
            heads: 4,
            steps: 1500,
            batch_tokens: 2500,
            warmup: 100,
            lr_scale: 0.25,
        },
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::usage(message)
}

fn io_error(path: &Path, e: io::Error) -> CliError {
    usage(format!("{}: {e}", path.display()))
}

/// The header of the CSV log.
const LOG_HEADER: &str = "step,epoch,loss,lr,src_tokens,tgt_tokens,tokens_per_s,elapsed_s,\
heldout_pairs,heldout_exact_match,heldout_token_accuracy,heldout_loss,heldout_perplexity";

pub fn train(args: &TrainArgs) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    for (flag, value) in [
        ("--checkpoint-every", args.checkpoint_every),
        ("--eval-every", args.eval_every),
        ("--threads", args.threads),
        ("--eval-pairs", args.eval_pairs),
    ] {
        if value == 0 {
            return Err(usage(format!("{flag} must be at least 1")));
        }
    }
    if args.out.is_file() {
        return Err(usage(format!(
            "--out {} is a file, not a directory",
            args.out.display()
        )));
    }
    let (mut trainer, info) = match &args.resume {
        Some(path) => {
            let (trainer, info) =
                load_trainer(path, args.threads).map_err(|e| usage(e.to_string()))?;
            if info.task != args.task {
                return Err(usage(format!(
                    "{} was trained on the task `{}`, not `{}`",
                    path.display(),
                    info.task,
                    args.task
                )));
            }
            (trainer, info)
        }
        None => new_trainer(args)?,
    };
    let task = Task::by_name(&info.task, info.data_seed).map_err(|e| usage(e.to_string()))?;
    if task.vocab.len() != info.vocab {
        return Err(usage(format!(
            "the model has a vocabulary of {} but the task `{}` has {}",
            info.vocab,
            task.name,
            task.vocab.len()
        )));
    }
    let steps = args.steps.unwrap_or(defaults(&args.task).steps);
    if steps <= trainer.step {
        return Err(usage(format!(
            "--steps {steps} leaves nothing to train: the run is at step {} and trains until \
             --steps",
            trainer.step
        )));
    }
    fs::create_dir_all(&args.out).map_err(|e| io_error(&args.out, e))?;
    let log_path = args.out.join("log.csv");
    let mut log = open_log(&log_path, args.resume.is_some())?;

    let mut stream = BatchStream::new(
        &task.train,
        trainer.options.batch_tokens,
        trainer.options.seed,
    );
    stream.skip(trainer.step); // where an interrupted run stopped
    let eval_set = &task.held_out[..args.eval_pairs.min(task.held_out.len())];
    println!(
        "training `{}` ({} train / {} held-out pairs, vocab {}): {} parameters, d_model {}, {} + {} layers, h {}, d_ff {}; steps {}..{}, {} batch tokens, {} threads",
        task.name,
        task.train.len(),
        task.held_out.len(),
        task.vocab.len(),
        aiayn::params::count(&trainer.model),
        info.config.d_model,
        info.config.n_layers,
        info.config.n_layers,
        info.config.h,
        info.config.d_ff,
        trainer.step + 1,
        steps,
        trainer.options.batch_tokens,
        args.threads,
    );
    let bar = progress_bar(steps, trainer.step);
    let loop_started = Instant::now();
    let mut tokens = 0usize;
    while trainer.step < steps {
        let stats = trainer.train_step(stream.next_batch());
        let epoch = stream.epoch(); // the epoch of the batch just trained on
        tokens += stats.src_tokens + stats.tgt_tokens;
        let elapsed = loop_started.elapsed().as_secs_f64();
        let rate = tokens as f64 / elapsed.max(1e-9);
        let eval = (stats.step % args.eval_every == 0 || stats.step == steps)
            .then(|| held_out_metrics(&trainer.model, eval_set, args.threads, 10));
        write_log_row(
            &mut log,
            &log_path,
            &stats,
            epoch,
            rate,
            elapsed,
            eval.as_ref(),
        )?;
        bar.set_position(stats.step as u64);
        bar.set_message(format!(
            "loss {:.3}  lr {:.2e}  {:.0} tok/s",
            stats.loss, stats.lr, rate
        ));
        if let Some(m) = &eval {
            bar.suspend(|| {
                println!(
                    "step {:>6}  loss {:.4}  held-out: exact {:.1}%  tokens {:.2}%  loss {:.4}  ppl {:.3}  ({:.0} s, {:.0} tok/s)",
                    stats.step,
                    stats.loss,
                    100.0 * m.exact_match,
                    100.0 * m.token_accuracy,
                    m.loss,
                    m.perplexity,
                    elapsed,
                    rate
                )
            });
        }
        if stats.step % args.checkpoint_every == 0 || stats.step == steps {
            let path = args.out.join(format!("ckpt-{:06}.safetensors", stats.step));
            save_trainer(&path, &trainer, &info).map_err(|e| usage(e.to_string()))?;
        }
    }
    bar.finish_and_clear();
    log.flush().map_err(|e| io_error(&log_path, e))?;
    let train_seconds = loop_started.elapsed().as_secs_f64();
    let m = held_out_metrics(&trainer.model, &task.held_out, args.threads, 10);
    println!(
        "done: step {}; all {} held-out pairs: exact match {:.2}%, token accuracy {:.2}%, loss {:.4}, perplexity {:.3}",
        trainer.step,
        m.pairs,
        100.0 * m.exact_match,
        100.0 * m.token_accuracy,
        m.loss,
        m.perplexity
    );
    println!("held-out examples (source / reference / greedy output):");
    for pair in task.held_out.iter().take(4) {
        let hyp = greedy(&trainer.model, &pair.src, BOS, EOS, limit(pair.src.len()));
        println!("  {}", task.vocab.decode(&pair.src));
        println!("  {}", task.vocab.decode(&pair.tgt));
        println!(
            "  {}{}",
            task.vocab.decode(&hyp),
            if hyp == pair.tgt { "" } else { "   (differs)" }
        );
    }
    println!(
        "time: {:.1} s training ({:.0} tokens/s), {:.1} s in all; log {}, checkpoints in {}",
        train_seconds,
        tokens as f64 / train_seconds.max(1e-9),
        started.elapsed().as_secs_f64(),
        log_path.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The most parameters `aiayn train` allocates a model for (with gradients and Adam's two
/// moments, four times that many f32 values).
const MAX_PARAMETERS: usize = 1 << 28;

fn new_trainer(args: &TrainArgs) -> Result<(Trainer<f32>, RunInfo), CliError> {
    let d = defaults(&args.task);
    let task = Task::by_name(&args.task, args.data_seed).map_err(|e| usage(e.to_string()))?;
    let d_model = args.d_model.unwrap_or(d.d_model);
    let h = args.heads.unwrap_or(d.heads);
    let (n_layers, d_ff) = (
        args.layers.unwrap_or(d.layers),
        args.d_ff.unwrap_or(4 * d_model),
    );
    // Each size on its own first, so that the parameter count below cannot overflow.
    for (flag, value, limit) in [
        ("--d-model", d_model, 1 << 16),
        ("--d-ff", d_ff, 1 << 20),
        ("--layers", n_layers, 1 << 10),
    ] {
        if value > limit {
            return Err(usage(format!(
                "{flag} {value} is too large: at most {limit}"
            )));
        }
    }
    if h == 0 {
        return Err(usage("--heads must be at least 1"));
    }
    if !d_model.is_multiple_of(h) {
        return Err(usage(format!(
            "--d-model {d_model} is not a multiple of --heads {h}: each head gets d_model / h columns"
        )));
    }
    let config = Config {
        n_layers,
        d_model,
        d_ff,
        h,
        d_k: d_model / h,
        d_v: d_model / h,
        p_drop: args.dropout.unwrap_or(0.1),
        eps_ls: args.label_smoothing.unwrap_or(0.1),
        positional: Positional::Sinusoidal,
        ..Config::base()
    };
    config.validate().map_err(|e| usage(e.to_string()))?;
    let parameters = config.param_counts(task.vocab.len()).total;
    if too_many_parameters(parameters) {
        return Err(usage(format!(
            "the model would have {parameters} parameters; `aiayn train` builds at most \
             {MAX_PARAMETERS} (2^28; the paper's big model has 213 million)"
        )));
    }
    let options = TrainOptions {
        p_drop: config.p_drop,
        eps_ls: config.eps_ls,
        warmup: args.warmup.unwrap_or(d.warmup),
        lr_scale: args.lr_scale.unwrap_or(d.lr_scale),
        batch_tokens: args.batch_tokens.unwrap_or(d.batch_tokens),
        seed: args.seed,
        threads: args.threads,
    };
    if options.batch_tokens == 0 {
        return Err(usage("--batch-tokens must be at least 1"));
    }
    if options.warmup == 0 {
        return Err(usage("--warmup must be at least 1 (Eq. 3 divides by it)"));
    }
    if !(options.lr_scale > 0.0 && options.lr_scale.is_finite()) {
        return Err(usage(format!(
            "--lr-scale {} must be a positive number",
            options.lr_scale
        )));
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let model =
        Transformer::new(&config, task.vocab.len(), &mut rng).map_err(|e| usage(e.to_string()))?;
    let info = RunInfo {
        task: task.name.clone(),
        data_seed: args.data_seed,
        config,
        vocab: task.vocab.len(),
    };
    Ok((Trainer::new(model, options), info))
}

fn open_log(path: &Path, append: bool) -> Result<BufWriter<File>, CliError> {
    let exists = path.exists();
    let file = if append && exists {
        OpenOptions::new().append(true).open(path)
    } else {
        File::create(path)
    }
    .map_err(|e| io_error(path, e))?;
    let mut log = BufWriter::new(file);
    if !(append && exists) {
        writeln!(log, "{LOG_HEADER}").map_err(|e| io_error(path, e))?;
    }
    Ok(log)
}

fn write_log_row(
    log: &mut BufWriter<File>,
    path: &Path,
    s: &aiayn::train::trainer::StepStats,
    epoch: u64,
    rate: f64,
    elapsed: f64,
    eval: Option<&Metrics>,
) -> Result<(), CliError> {
    let eval = eval.map_or(",,,,".to_string(), |m| {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6}",
            m.pairs, m.exact_match, m.token_accuracy, m.loss, m.perplexity
        )
    });
    writeln!(
        log,
        "{},{},{:.6},{:.6e},{},{},{:.0},{:.2},{eval}",
        s.step, epoch, s.loss, s.lr, s.src_tokens, s.tgt_tokens, rate, elapsed
    )
    .map_err(|e| io_error(path, e))
}

fn progress_bar(steps: usize, done: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise}, eta {eta}]",
        )
        .expect("a valid template"),
    );
    bar.set_position(done as u64);
    bar
}

/// Refuses a beam of 0 and an alpha that is negative or not finite, naming the flag.
fn check_beam(beam: usize, alpha: f64) -> Result<(), CliError> {
    if beam == 0 {
        return Err(usage("--beam must be at least 1 (1 is greedy decoding)"));
    }
    if !(alpha >= 0.0 && (alpha as f32).is_finite()) {
        return Err(usage(format!(
            "--alpha must be a finite number >= 0 (the paper's is 0.6); got {alpha}"
        )));
    }
    Ok(())
}

/// The model in `checkpoint` and its task, regenerated from the checkpoint's task name and data
/// seed, checked to have the model's vocabulary.
fn model_and_task(checkpoint: &Path) -> Result<(Transformer<f32>, Task), CliError> {
    let (model, info, _) = load_model(checkpoint).map_err(|e| usage(e.to_string()))?;
    let task = Task::by_name(&info.task, info.data_seed).map_err(|e| usage(e.to_string()))?;
    if task.vocab.len() != info.vocab {
        return Err(usage(format!(
            "{}: the model has a vocabulary of {} but the task `{}` has {}",
            checkpoint.display(),
            info.vocab,
            task.name,
            task.vocab.len()
        )));
    }
    Ok((model, task))
}

pub fn translate(checkpoint: &Path, beam: usize, alpha: f64) -> Result<ExitCode, CliError> {
    check_beam(beam, alpha)?;
    let (model, task) = model_and_task(checkpoint)?;
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| usage(format!("standard input, line {}: {e}", n + 1)))?;
        let src = task
            .vocab
            .encode(&line)
            .map_err(|e| usage(format!("standard input, line {}: {e}", n + 1)))?;
        let hyp = if src.is_empty() {
            Vec::new()
        } else {
            let max_len = limit(src.len());
            let alpha = alpha as f32;
            beam_search(&model, &src, BOS, EOS, beam, alpha, max_len)
                .swap_remove(0)
                .tokens
        };
        writeln!(out, "{}", task.vocab.decode(&hyp))
            .map_err(|e| usage(format!("standard output: {e}")))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn average(checkpoints: &[PathBuf], out: &Path) -> Result<ExitCode, CliError> {
    let (model, info, step) = average_checkpoints(checkpoints).map_err(|e| usage(e.to_string()))?;
    save_model(out, &model, &info, step).map_err(|e| usage(e.to_string()))?;
    println!(
        "averaged {} checkpoints of `{}` (last step {step}) into {}",
        checkpoints.len(),
        info.task,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn evaluate(
    checkpoint: &Path,
    beam: usize,
    alpha: f64,
    pairs: Option<usize>,
    threads: usize,
    json: bool,
) -> Result<ExitCode, CliError> {
    check_beam(beam, alpha)?;
    if threads == 0 {
        return Err(usage("--threads must be at least 1"));
    }
    if pairs == Some(0) {
        return Err(usage(
            "--pairs must be at least 1: no metric is defined on no pairs",
        ));
    }
    let (model, task) = model_and_task(checkpoint)?;
    let held_out = &task.held_out[..pairs
        .unwrap_or(task.held_out.len())
        .min(task.held_out.len())];
    let started = Instant::now();
    let d = evaluate_decoding(&model, held_out, threads, beam, alpha as f32, |ids| {
        task.vocab.decode(ids)
    });
    let seconds = started.elapsed().as_secs_f64();
    let t = held_out_metrics(&model, held_out, threads, 10);
    if json {
        let value = serde_json::json!({
            "checkpoint": checkpoint.display().to_string(),
            "task": task.name,
            "pairs": d.pairs,
            "beam": beam,
            "alpha": alpha,
            "exact_match": d.exact_match,
            "bleu": d.bleu.score,
            "bleu_precisions": d.bleu.precisions,
            "bleu_bp": d.bleu.bp,
            "token_accuracy": t.token_accuracy,
            "loss": t.loss,
            "perplexity": t.perplexity,
            "decoding_seconds": seconds,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("plain values serialise")
        );
    } else {
        println!(
            "{}: {} held-out pairs of `{}`, beam {beam}, alpha {alpha}: exact match {:.2}%, {}; teacher-forced token accuracy {:.2}%, loss {:.4}, perplexity {:.3} ({seconds:.1} s decoding)",
            checkpoint.display(),
            d.pairs,
            task.name,
            100.0 * d.exact_match,
            d.bleu,
            100.0 * t.token_accuracy,
            t.loss,
            t.perplexity
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a model of this many parameters is more than `aiayn train` builds.
fn too_many_parameters(parameters: usize) -> bool {
    parameters > MAX_PARAMETERS
}

/// The most tokens decoded for an input of `src_len` tokens (§6.1: the input length + 50).
fn limit(src_len: usize) -> usize {
    src_len + 50
}

#[cfg(test)]
mod tests {
    use super::{limit, new_trainer, too_many_parameters, TrainArgs};
    use aiayn::config::Positional;
    use clap::Parser;

    /// `aiayn train` with these words after it.
    fn train_args(words: &[&str]) -> TrainArgs {
        #[derive(Parser)]
        struct Train {
            #[command(flatten)]
            args: TrainArgs,
        }
        Train::parse_from(std::iter::once("train").chain(words.iter().copied())).args
    }

    #[test]
    fn the_copy_task_gets_the_model_and_run_the_training_chapter_states() {
        // the chapter: d_model 64, N = 2, h = 4, d_ff = 4 d_model, P_drop = eps_ls = 0.1,
        // sinusoidal positions; 2,500-token batches, warmup 100, the rate scaled by 0.25
        let (trainer, info) = new_trainer(&train_args(&["copy"])).unwrap();
        let c = &info.config;
        assert_eq!((c.n_layers, c.d_model, c.h, c.d_ff), (2, 64, 4, 256));
        assert_eq!((c.d_k, c.d_v, c.p_drop, c.eps_ls), (16, 16, 0.1, 0.1));
        assert_eq!(c.positional, Positional::Sinusoidal);
        assert_eq!((info.task.as_str(), info.data_seed), ("copy", 1));
        let o = &trainer.options;
        assert_eq!(
            (o.p_drop, o.eps_ls, o.warmup, o.lr_scale),
            (0.1, 0.1, 100, 0.25)
        );
        assert_eq!((o.batch_tokens, o.seed, o.threads), (2500, 1, 2));
        assert_eq!(trainer.step, 0);
    }

    #[test]
    fn every_flag_reaches_the_model_or_the_run() {
        let words: Vec<&str> = "reverse --d-model 24 --heads 3 --layers 1 --d-ff 40 --dropout 0.3 \
            --label-smoothing 0.2 --warmup 7 --lr-scale 0.5 --batch-tokens 123 --seed 5 \
            --data-seed 6 --threads 1"
            .split_whitespace()
            .collect();
        let (trainer, info) = new_trainer(&train_args(&words)).unwrap();
        let c = &info.config;
        assert_eq!(
            (c.n_layers, c.d_model, c.h, c.d_ff, c.d_k, c.d_v),
            (1, 24, 3, 40, 8, 8)
        );
        assert_eq!((c.p_drop, c.eps_ls), (0.3, 0.2));
        assert_eq!((info.task.as_str(), info.data_seed), ("reverse", 6));
        let o = &trainer.options;
        assert_eq!(
            (o.p_drop, o.eps_ls, o.warmup, o.lr_scale),
            (0.3, 0.2, 7, 0.5)
        );
        assert_eq!((o.batch_tokens, o.seed, o.threads), (123, 5, 1));
        assert_eq!(trainer.model.encoder.layers.len(), 1);
    }

    #[test]
    fn a_run_that_cannot_train_is_refused_before_a_model_is_built() {
        for (flags, says) in [
            (
                &["--batch-tokens", "0"][..],
                "--batch-tokens must be at least 1",
            ),
            (&["--warmup", "0"], "--warmup must be at least 1"),
            (
                &["--lr-scale", "0"],
                "--lr-scale 0 must be a positive number",
            ),
            (
                &["--lr-scale=-1"],
                "--lr-scale -1 must be a positive number",
            ),
            (
                &["--lr-scale", "inf"],
                "--lr-scale inf must be a positive number",
            ),
            (
                &["--lr-scale", "NaN"],
                "--lr-scale NaN must be a positive number",
            ),
            (&["--heads", "0"], "--heads must be at least 1"),
            (
                &["--d-model", "30"],
                "--d-model 30 is not a multiple of --heads 4",
            ),
        ] {
            let words: Vec<&str> = std::iter::once("copy")
                .chain(flags.iter().copied())
                .collect();
            let message = match new_trainer(&train_args(&words)) {
                Ok(_) => panic!("{flags:?} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(says), "{flags:?}: {message}");
        }
    }

    #[test]
    fn decoding_stops_at_the_input_length_plus_50() {
        assert_eq!(limit(0), 50);
        assert_eq!(limit(7), 57);
    }

    #[test]
    fn a_model_of_up_to_2_to_the_28_parameters_is_built_and_no_larger() {
        assert!(!too_many_parameters(0));
        assert!(!too_many_parameters((1 << 28) - 1));
        assert!(!too_many_parameters(1 << 28));
        assert!(too_many_parameters((1 << 28) + 1));
    }
}
