//! The `aiayn` command: serve or build the book, count parameters, verify fixtures, score BLEU,
//! train and translate, time the layers of Table 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod cli_table1;
mod cli_train;

#[derive(Parser)]
#[command(
    name = "aiayn",
    version,
    about = "Attention Is All You Need, as a book whose every claim runs"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Build the book and serve it (the default with no command); a change under book/, src/
    /// or tests/ rebuilds it and reloads the open pages.
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one; the URL printed names it).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Where to write the book [default: book/out under the crate root].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build the book without serving it.
    Build {
        /// Where to write the book [default: book/out under the crate root].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Parameter counts of Table 3 rows, by part.
    Params {
        /// A Table 3 row (base, A1..A4, B1, B2, C1..C7, D1..D4, E, big) or `all`.
        #[arg(long, default_value = "base")]
        config: String,
        /// Vocabulary size (shared source/target vocabulary).
        #[arg(long, default_value_t = 37000)]
        vocab: usize,
        /// Count biases on the attention projections (as PyTorch's nn.MultiheadAttention has).
        #[arg(long)]
        attention_bias: bool,
        /// One JSON object per row, in an array.
        #[arg(long)]
        json: bool,
        /// Instead of counting: for each row with a count in Table 3, the vocabulary sizes that
        /// reproduce it, and the sizes that reproduce all of them.
        #[arg(long)]
        fit_vocab: bool,
    },
    /// Check golden fixture files (fixtures/README.md) against this implementation.
    ///
    /// Exit status: 0 when every tensor matches, 1 when any mismatches, 2 when a file is
    /// unreadable or malformed.
    Verify {
        /// Fixture files (JSON, format aiayn-fixture/1).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Corpus BLEU of a file of translations against a file of references, as sacreBLEU's
    /// default computes it (13a tokenisation, exp smoothing); one sentence per line.
    ///
    /// Exit status: 0 with the score printed, 2 when a file is unreadable, not UTF-8, or the
    /// two files have different numbers of lines.
    Bleu {
        /// The reference translations, one a line.
        reference: PathBuf,
        /// The system's translations, line i translating the same sentence as reference line i.
        hypothesis: PathBuf,
        /// Print a JSON object (score, precisions, bp, sys_len, ref_len, counts, totals).
        #[arg(long)]
        json: bool,
    },
    /// Train the book's model on a synthetic task (§5).
    ///
    /// Writes a CSV log and checkpoints (safetensors) to --out; prints held-out metrics.
    Train(Box<cli_train::TrainArgs>),
    /// Held-out metrics of a checkpoint with a decoding method (§6): exact match and BLEU of
    /// the translations, and the teacher-forced token accuracy, loss and perplexity.
    Evaluate {
        /// A checkpoint written by `aiayn train` or `aiayn average`.
        checkpoint: PathBuf,
        /// Beam size (1 = greedy decoding).
        #[arg(long, default_value_t = 4)]
        beam: usize,
        /// The length penalty's alpha (0 = none).
        #[arg(long, default_value_t = 0.6, allow_negative_numbers = true)]
        alpha: f64,
        /// Evaluate the first N held-out pairs [default: all].
        #[arg(long)]
        pairs: Option<usize>,
        /// Threads (the result does not depend on it).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Average the parameters of several checkpoints of one run (§6.1) into a new checkpoint.
    Average {
        /// Checkpoints written by `aiayn train`, all of the same model.
        #[arg(required = true)]
        checkpoints: Vec<PathBuf>,
        /// Where to write the averaged model.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time one forward pass of each layer of Table 1 (§4) over a range of n at fixed d.
    ///
    /// Self-attention, recurrent, convolutional and restricted self-attention layers in f32
    /// on one thread; prints the median times and where self-attention stops being faster
    /// than the recurrent layer. Exit status 2 for invalid sizes.
    Table1(cli_table1::Table1Args),
    /// Translate sentences read from standard input, one a line, with a trained checkpoint.
    ///
    /// Beam search as in §6.1: a beam of --beam hypotheses, ranked by log-probability over the
    /// length penalty ((5 + |Y|) / 6)^alpha, at most the input length + 50 tokens.
    Translate {
        /// A checkpoint written by `aiayn train`.
        checkpoint: PathBuf,
        /// Beam size (1 = greedy decoding).
        #[arg(long, default_value_t = 4)]
        beam: usize,
        /// The length penalty's alpha (0 = none).
        #[arg(long, default_value_t = 0.6, allow_negative_numbers = true)]
        alpha: f64,
    },
}

/// `aiayn params | head` closes the pipe before everything is written, and Rust's `println!`
/// then panics. Stopping early is the reader's choice, not an error: end quietly instead, as
/// `cat` does, without a panic message.
fn quiet_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_when_stdout_closes();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match args.command.unwrap_or(Command::Serve {
        port: 3000,
        out: None,
    }) {
        Command::Serve { port, out } => cli::serve(out.as_deref(), port),
        Command::Build { out } => cli::build(out.as_deref()),
        Command::Params {
            config,
            vocab,
            attention_bias,
            json,
            fit_vocab: false,
        } => cli::params(&config, vocab, attention_bias, json),
        Command::Params {
            config,
            attention_bias,
            fit_vocab: true,
            ..
        } => cli::fit_vocab(&config, attention_bias),
        Command::Verify { files } => cli::verify(&files),
        Command::Bleu {
            reference,
            hypothesis,
            json,
        } => cli::bleu(&reference, &hypothesis, json),
        Command::Train(args) => cli_train::train(&args),
        Command::Translate {
            checkpoint,
            beam,
            alpha,
        } => cli_train::translate(&checkpoint, beam, alpha),
        Command::Table1(args) => cli_table1::table1(&args),
        Command::Average { checkpoints, out } => cli_train::average(&checkpoints, &out),
        Command::Evaluate {
            checkpoint,
            beam,
            alpha,
            pairs,
            threads,
            json,
        } => cli_train::evaluate(&checkpoint, beam, alpha, pairs, threads, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
