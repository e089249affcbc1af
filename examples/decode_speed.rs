//! Wall time of decoding with and without the key/value cache (§6.1), on a trained checkpoint.
//!
//!     cargo run --release --example decode_speed -- CKPT [TOKENS]
//!
//! Both decoders append the most probable token for TOKENS steps (64 by default), ignoring the
//! end symbol so that both do the same number of steps: one runs the whole prefix through the
//! decoder at every step ([`Transformer::decode`]), the other feeds one position at a time
//! ([`Transformer::decode_step`]). The source is the first held-out sentence of the checkpoint's
//! task. Each is run 5 times; the fastest run is reported.

use std::time::{Duration, Instant};

use aiayn::decode::argmax;
use aiayn::train::state::load_model;
use aiayn::train::tasks::{Task, BOS};
use aiayn::Transformer;

fn full(model: &Transformer<f32>, src: &[usize], tokens: usize) -> Vec<usize> {
    let memory = model.encode(src, None);
    let mut tgt = vec![BOS];
    for _ in 0..tokens {
        let y = model.decode(&tgt, &memory, None); // (n_t, d_model), the whole prefix again
        let last = y.rows(tgt.len() - 1, 1).into_owned();
        tgt.push(argmax(&model.generator(&last).row(0)));
    }
    tgt.split_off(1)
}

fn cached(model: &Transformer<f32>, src: &[usize], tokens: usize) -> Vec<usize> {
    let memory = model.encode(src, None);
    let mut state = model.start_decoding(&memory, None);
    let mut out = Vec::with_capacity(tokens);
    let mut token = BOS;
    for _ in 0..tokens {
        token = argmax(&model.decode_step(&mut state, token)); // one new row per layer
        out.push(token);
    }
    out
}

fn fastest(mut run: impl FnMut() -> Vec<usize>) -> (Duration, Vec<usize>) {
    let mut best = Duration::MAX;
    let mut out = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        out = run();
        best = best.min(start.elapsed());
    }
    (best, out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: decode_speed CKPT [TOKENS]");
    let tokens: usize = args
        .get(2)
        .map_or(64, |t| t.parse().expect("TOKENS is a number"));
    let (model, info, _) = load_model(path.as_ref()).expect("a checkpoint of `aiayn train`");
    let task = Task::by_name(&info.task, info.data_seed).expect("the checkpoint's task");
    let src = &task.held_out[0].src;
    let c = &info.config;
    println!(
        "{}: task {}, d_model {}, N {}, h {}, d_ff {}, vocab {}; source of {} tokens, {tokens} steps",
        path, info.task, c.d_model, c.n_layers, c.h, c.d_ff, info.vocab, src.len()
    );
    let (t_encode, _) = fastest(|| {
        let memory = model.encode(src, None);
        vec![memory.nrows()]
    });
    let (t_full, out_full) = fastest(|| full(&model, src, tokens));
    let (t_cached, out_cached) = fastest(|| cached(&model, src, tokens));
    println!(
        "encoder alone:      {:>9.2} ms (in both below)",
        t_encode.as_secs_f64() * 1e3
    );
    println!("full recomputation: {:>9.2} ms", t_full.as_secs_f64() * 1e3);
    println!(
        "key/value cache:    {:>9.2} ms",
        t_cached.as_secs_f64() * 1e3
    );
    println!(
        "speedup:            {:>9.1}x",
        t_full.as_secs_f64() / t_cached.as_secs_f64()
    );
    println!("same tokens: {}", out_full == out_cached);
}
