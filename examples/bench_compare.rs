//! The aiayn side of `benches/compare.sh`: times the workloads of `benches/workloads.rs` on
//! request and prints the timings as JSON, one line per request.
//!
//!     cargo run --release --example bench_compare -- THREADS [ID REPS]...
//!
//! With `ID REPS` pairs on the command line it times each and exits; without, it reads such
//! pairs from standard input, one per line, so that the comparison can interleave its runs with
//! PyTorch's in one long-lived process. Each answer is
//! `{"id": "multi_head-512", "seconds": [...], "info": {"n": 512, ...}}`. A workload is built
//! (inputs, model) the first time it is asked for, outside the timing. THREADS is passed to the
//! training step and to the fast inference paths (the `fast_` rows); the plain inference code
//! is single-threaded.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::time::Instant;

#[path = "../benches/workloads.rs"]
mod workloads;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args
        .first()
        .and_then(|t| t.parse().ok())
        .expect("usage: bench_compare THREADS [ID REPS]...");
    let mut prepared = HashMap::new();
    let mut answer = |id: &str, reps: usize| -> String {
        if !prepared.contains_key(id) {
            match workloads::prepare(id, threads) {
                Some(w) => {
                    prepared.insert(id.to_string(), w);
                }
                None => return format!("{{\"id\": \"{id}\", \"error\": \"unknown workload\"}}"),
            }
        }
        let (run, info) = prepared.get_mut(id).expect("prepared above");
        let seconds: Vec<String> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                run();
                format!("{:e}", start.elapsed().as_secs_f64())
            })
            .collect();
        let info: Vec<String> = info.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!(
            "{{\"id\": \"{id}\", \"seconds\": [{}], \"info\": {{{}}}}}",
            seconds.join(", "),
            info.join(", ")
        )
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.len() > 1 {
        for pair in args[1..].chunks(2) {
            let reps = pair.get(1).and_then(|r| r.parse().ok()).unwrap_or(1);
            writeln!(out, "{}", answer(&pair[0], reps)).expect("stdout");
        }
        return;
    }
    for line in io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let mut words = line.split_whitespace();
        let Some(id) = words.next() else { continue };
        let reps = words.next().and_then(|r| r.parse().ok()).unwrap_or(1);
        writeln!(out, "{}", answer(id, reps)).expect("stdout");
        out.flush().expect("stdout");
    }
}
