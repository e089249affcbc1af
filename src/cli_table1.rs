//! `aiayn table1`: times one forward pass of each layer of Table 1 (§4) on this machine.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aiayn::why_self_attention::{
    ops, Convolution, Recurrent, RestrictedSelfAttention, SelfAttention, SequenceLayer,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::CliError;

/// The settings of one timing run.
#[derive(clap::Args)]
pub struct Table1Args {
    /// The representation width d of every layer.
    #[arg(long, default_value_t = 512)]
    pub d: usize,
    /// The longest sequence; n runs over the powers of two from 16 up to it.
    #[arg(long, default_value_t = 2048)]
    pub max_n: usize,
    /// The convolution's kernel width k.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// The restricted neighbourhood r.
    #[arg(long, default_value_t = 32)]
    pub r: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The most values one matrix of a timing run may hold (2^28 f32, 1 GiB).
const MAX_VALUES: usize = 1 << 28;

/// The layers in the order of Table 1.
const KINDS: [&str; 4] = [
    "self_attention",
    "recurrent",
    "convolutional",
    "restricted_self_attention",
];

/// The median wall-clock time of `f`, over at least 5 runs and at least 0.2 s (at most 51
/// runs), after one warm-up run.
fn median_time(mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < Duration::from_millis(200) && times.len() < 51) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The CPU's model name, from /proc/cpuinfo where there is one.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cpu}, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

pub fn table1(args: &Table1Args) -> Result<ExitCode, CliError> {
    let (d, k, r) = (args.d, args.k, args.r);
    if d == 0 || k == 0 || r == 0 {
        return Err(CliError::usage(format!(
            "--d, --k and --r must be at least 1 (given d = {d}, k = {k}, r = {r})"
        )));
    }
    if args.max_n < 16 {
        return Err(CliError::usage(format!(
            "--max-n must be at least 16, the shortest length timed (given {})",
            args.max_n
        )));
    }
    // The largest matrices: the n x n scores, the recurrent d x d weights, the convolution's k
    // d x d kernels, the n x d input. Refused before anything is allocated.
    for (what, factors) in [
        (
            "--max-n: the n x n attention scores",
            [args.max_n, args.max_n, 1],
        ),
        ("--d: the recurrent layer's d x d weights", [d, d, 1]),
        (
            "--k and --d: the convolution's k x d x d kernels",
            [k, d, d],
        ),
        ("--max-n and --d: the n x d input", [args.max_n, d, 1]),
    ] {
        let values = factors.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if too_many_values(values) {
            return Err(CliError::usage(format!(
                "{what} would be {} values; at most {MAX_VALUES} (1 GiB of f32) are timed \
                 (given d = {d}, k = {k}, max n = {})",
                values.map_or("more than 2^64".to_string(), |v| v.to_string()),
                args.max_n
            )));
        }
    }
    let ns: Vec<usize> = std::iter::successors(Some(16usize), |n| n.checked_mul(2))
        .take_while(|&n| n <= args.max_n)
        .collect();
    let mut rng = StdRng::seed_from_u64(4);
    let layers: Vec<Box<dyn SequenceLayer<f32>>> = vec![
        Box::new(SelfAttention),
        Box::new(Recurrent::random(d, &mut rng)),
        Box::new(Convolution::random(d, k, 1, &mut rng)),
        Box::new(RestrictedSelfAttention { r }),
    ];
    let mut rows = Vec::new();
    for &n in &ns {
        let x = DMatrix::<f32>::from_fn(n, d, |_, _| rng.random_range(-1.0..1.0));
        let seconds: Vec<f64> = layers
            .iter()
            .map(|layer| {
                median_time(|| {
                    std::hint::black_box(layer.forward(std::hint::black_box(&x)));
                })
            })
            .collect();
        if !args.json {
            eprintln!(
                "n = {n:>5}: {}",
                seconds
                    .iter()
                    .map(|s| format!("{:.3} ms", s * 1e3))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        rows.push((n, seconds));
    }
    // The first measured n at which self-attention is slower than the recurrent layer.
    let crossover = first_slower(&rows);
    let last_faster = rows
        .iter()
        .take_while(|(_, s)| s[0] <= s[1])
        .last()
        .map(|(n, _)| *n);
    let command = format!(
        "aiayn table1 --d {d} --max-n {} --k {k} --r {r} --json",
        args.max_n
    );
    if args.json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, s)| {
                let (n64, d64) = (*n as u64, d as u64);
                let mut row = serde_json::Map::new();
                row.insert("n".into(), (*n).into());
                for (kind, seconds) in KINDS.iter().zip(s) {
                    row.insert(format!("{kind}_s"), (*seconds).into());
                }
                row.insert(
                    "multiply_adds".into(),
                    serde_json::json!({
                        "self_attention": ops::exact_self_attention(n64, d64),
                        "recurrent": ops::exact_recurrent(n64, d64),
                        "convolutional": ops::exact_convolutional(n64, d64, k as u64, 1),
                        "restricted_self_attention": ops::exact_restricted(n64, d64, r as u64),
                    }),
                );
                serde_json::Value::Object(row)
            })
            .collect();
        let value = serde_json::json!({
            "command": command,
            "machine": machine(),
            "dtype": "f32",
            "threads": 1,
            "timing": "median wall-clock seconds of one forward pass (at least 5 runs and 0.2 s)",
            "d": d,
            "k": k,
            "r": r,
            "rows": items,
            "self_attention_slower_from_n": crossover,
            "self_attention_faster_up_to_n": last_faster,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("plain values serialise")
        );
    } else {
        println!(
            "machine: {}; f32, one thread; d = {d}, k = {k}, r = {r}",
            machine()
        );
        println!("median time of one forward pass, ms");
        println!(
            "{:>6} {:>15} {:>12} {:>14} {:>12}",
            "n", "self-attention", "recurrent", "convolutional", "restricted"
        );
        for (n, s) in &rows {
            println!(
                "{n:>6} {:>15.3} {:>12.3} {:>14.3} {:>12.3}",
                s[0] * 1e3,
                s[1] * 1e3,
                s[2] * 1e3,
                s[3] * 1e3
            );
        }
        match crossover {
            Some(n) => println!(
                "self-attention is slower than the recurrent layer from n = {n} (d = {d}; the paper's counts cross at n = d)"
            ),
            None => println!(
                "self-attention is faster than the recurrent layer at every n measured (d = {d})"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first n of the rows (n and the seconds of each kind, self-attention first, then the
/// recurrent layer) at which self-attention is slower than the recurrent layer; a tie is not
/// slower.
fn first_slower(rows: &[(usize, Vec<f64>)]) -> Option<usize> {
    rows.iter().find(|(_, s)| s[0] > s[1]).map(|(n, _)| *n)
}

/// Whether a matrix of this many values (`None`: more than `usize` holds) is over the limit.
fn too_many_values(values: Option<usize>) -> bool {
    values.is_none_or(|v| v > MAX_VALUES)
}

#[cfg(test)]
mod tests {
    use super::{first_slower, median_time, too_many_values};
    use std::time::Duration;

    #[test]
    fn a_fast_function_is_timed_51_times_after_a_warm_up() {
        // A call of a few nanoseconds: 51 runs take far less than 0.2 s, so the cap of 51 stops
        // the loop.
        let mut calls = 0;
        let t = median_time(|| calls += 1);
        assert_eq!(calls, 52);
        assert!((0.0..1e-3).contains(&t), "{t}");
    }

    #[test]
    fn a_slow_function_is_timed_5_times_and_the_median_is_taken() {
        // After the warm-up, runs of 20, 30, 40, 150 and 200 ms: past 0.2 s after 5 runs; the
        // median is 40 ms (the mean would be 88); the bound allows a late wake-up of up to 100 ms.
        let ms = [0u64, 20, 30, 40, 150, 200];
        let mut calls = 0;
        let t = median_time(|| {
            std::thread::sleep(Duration::from_millis(ms[calls.min(5)]));
            calls += 1;
        });
        assert_eq!(calls, 6);
        assert!((0.040..0.140).contains(&t), "{t}");
    }

    #[test]
    fn a_matrix_of_up_to_2_to_the_28_values_is_timed_and_no_larger() {
        assert!(!too_many_values(Some(1)));
        assert!(!too_many_values(Some((1 << 28) - 1)));
        assert!(!too_many_values(Some(1 << 28)));
        assert!(too_many_values(Some((1 << 28) + 1)));
        assert!(too_many_values(None));
    }

    #[test]
    fn the_crossover_is_the_first_n_where_self_attention_is_slower_and_a_tie_is_not_slower() {
        let row = |n, attention, recurrent| (n, vec![attention, recurrent, 9.0, 9.0]);
        let rows = [
            row(8, 1.0, 2.0),
            row(16, 2.0, 2.0),
            row(32, 3.0, 2.0),
            row(64, 1.0, 2.0),
        ];
        assert_eq!(first_slower(&rows), Some(32));
        assert_eq!(first_slower(&rows[..2]), None);
        assert_eq!(first_slower(&[]), None);
    }
}
