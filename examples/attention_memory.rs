//! Peak memory and time of blockwise attention (`aiayn::blockwise`) at a long sequence, in f32
//! with d_k = d_v = 64, and its agreement with Eq. 1 on a shorter one.
//!
//!     cargo run --release --example attention_memory -- [N] [CHECK_N]
//!     cargo run --release --example attention_memory -- N --eq1
//!
//! The first form runs self-attention over N = 16384 positions (by default), once without a
//! mask and once with a causal mask that stores no grid, and prints the time of each and the
//! process's peak resident memory (VmHWM in /proc/self/status) before and after; then, on
//! CHECK_N = 1024 positions, it compares the output with Eq. 1
//! (`scaled_dot_product_attention`) with no mask and with a causal and padding mask. The
//! comparison comes last so that Eq. 1's (n, n) matrices are not in the peak reported for N.
//!
//! The second form runs Eq. 1 itself at N, for contrast: its scores and weights are n^2
//! numbers each.

use std::process::ExitCode;
use std::time::Instant;

use aiayn::attention::scaled_dot_product_attention;
use aiayn::blockwise::{blockwise_attention, Blocks};
use aiayn::mask::{Allows, ImplicitMask};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const D_K: usize = 64;

/// The process's peak resident memory so far, in MiB (Linux only).
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn report_peak(when: &str) {
    match peak_mib() {
        Some(mib) => println!("peak resident memory {when}: {mib:.1} MiB (VmHWM)"),
        None => println!("peak resident memory {when}: unavailable (no /proc/self/status)"),
    }
}

/// Q, K, V for self-attention over n positions, entries uniform in [-1, 1).
fn inputs(n: usize, seed: u64) -> [DMatrix<f32>; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut random = || DMatrix::from_fn(n, D_K, |_, _| rng.random_range(-1.0f32..1.0));
    [random(), random(), random()]
}

/// The processor time this process has used so far, user and system, in seconds (Linux only;
/// /proc counts it in ticks of 1/100 s on every common configuration).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the fields after the command name, which is in parentheses and may contain spaces
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs `run`, printing its wall time and, since other programs may share the processor, the
/// processor time it used.
fn timed<R>(what: &str, run: impl FnOnce() -> R) -> R {
    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    let out = run();
    let wall = start.elapsed().as_secs_f64();
    match (cpu_start, cpu_seconds()) {
        (Some(a), Some(b)) => println!("{what}: {wall:.2} s ({:.2} s of processor time)", b - a),
        _ => println!("{what}: {wall:.2} s"),
    }
    out
}

/// Largest |a - b| over the entries, and the same divided by the largest |b|.
fn difference(a: &DMatrix<f32>, b: &DMatrix<f32>) -> (f32, f32) {
    let abs = a.zip_map(b, |x, y| (x - y).abs()).max();
    (abs, abs / b.amax())
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("attention_memory: {problem}");
    eprintln!("usage: attention_memory [N] [CHECK_N]   or   attention_memory N --eq1");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let eq1 = args.iter().any(|a| a == "--eq1");
    let numbers: Vec<&String> = args.iter().filter(|a| *a != "--eq1").collect();
    let mut sizes = Vec::new();
    for a in &numbers {
        match a.parse::<usize>() {
            Ok(n) if n > 0 => sizes.push(n),
            _ => return usage(&format!("`{a}` is not a positive number of positions")),
        }
    }
    if sizes.len() > 2 {
        return usage(&format!(
            "{} numbers given, at most 2 expected",
            sizes.len()
        ));
    }
    let n = sizes.first().copied().unwrap_or(16384);
    let check_n = sizes.get(1).copied().unwrap_or(1024);

    println!("self-attention over n = {n} positions, d_k = d_v = {D_K}, f32");
    let [q, k, v] = inputs(n, 1);
    report_peak("with Q, K, V built");
    if eq1 {
        let a = timed("Eq. 1 (scaled_dot_product_attention)", || {
            scaled_dot_product_attention(&q, &k, &v, None)
        });
        report_peak("after Eq. 1");
        println!(
            "output {:?}, weights {:?}",
            a.output.shape(),
            a.weights.shape()
        );
        return ExitCode::SUCCESS;
    }
    let blocks = Blocks::default();
    println!(
        "blocks of {} queries by {} keys",
        blocks.queries, blocks.keys
    );
    let o = timed("blockwise, no mask", || {
        blockwise_attention(&q, &k, &v, None, blocks)
    });
    let causal = ImplicitMask::causal(n);
    let o_causal = timed("blockwise, causal mask", || {
        blockwise_attention(&q, &k, &v, Some(&causal as &dyn Allows), blocks)
    });
    report_peak("after both");
    println!(
        "the (n, n) scores alone would take {:.0} MiB in f32",
        (n * n * 4) as f64 / (1024.0 * 1024.0)
    );
    let finite = o.iter().chain(o_causal.iter()).all(|x| x.is_finite());
    println!("outputs {:?}, all finite: {finite}", o.shape());

    println!("\nagreement with Eq. 1 at n = {check_n} (largest difference, absolute and relative to the largest output)");
    let [q, k, v] = inputs(check_n, 2);
    let padding: Vec<bool> = (0..check_n).map(|j| j >= check_n - check_n / 4).collect();
    let masked = ImplicitMask::causal(check_n).and(&ImplicitMask::padding(check_n, &padding));
    let mut worst = 0.0f32;
    for (name, mask) in [("no mask", None), ("causal and padding", Some(&masked))] {
        let dense = mask.map(ImplicitMask::to_mask);
        let plain = scaled_dot_product_attention(&q, &k, &v, dense.as_ref()).output;
        let implicit = mask.map(|m| m as &dyn Allows);
        let blockwise = blockwise_attention(&q, &k, &v, implicit, blocks);
        let (abs, rel) = difference(&blockwise, &plain);
        println!("  {name}: {abs:.2e} absolute, {rel:.2e} relative");
        worst = worst.max(rel);
    }
    if !finite || worst > 1e-5 {
        eprintln!("attention_memory: the blockwise output is not within 1e-5 of Eq. 1");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
