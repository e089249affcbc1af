//! Criterion benches of the forward pass, decoding and one training step, all in f32, on the
//! shapes of [`workloads::ROWS`]:
//!
//!     cargo bench --bench transformer                 # everything
//!     cargo bench --bench transformer -- multi_head   # one group
//!
//! The same workloads are timed beside PyTorch by `benches/compare.sh`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

mod workloads;

/// Times every workload of `ids` in the group `name`, with fewer samples for the slow ones.
fn group(c: &mut Criterion, name: &str, ids: &[&str], samples: usize) {
    let mut g = c.benchmark_group(name);
    g.sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for id in ids {
        let (mut run, _) = workloads::prepare(id, 1).expect("a known workload");
        g.bench_function(*id, |b| b.iter(&mut run));
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    group(c, "softmax", &["softmax-512"], 50);
    group(
        c,
        "attention",
        &["attention-128", "attention-512", "attention-2048"],
        20,
    );
    group(
        c,
        "multi_head",
        &["multi_head-128", "multi_head-512", "multi_head-1024"],
        10,
    );
    group(
        c,
        "encoder_layer",
        &["encoder_layer-128", "encoder_layer-512"],
        10,
    );
    group(c, "stacks", &["stacks-128"], 10);
    group(c, "decode", &["decode_full-64", "decode_cached-64"], 10);
    group(c, "train_step", &["train_step-64"], 10);
    group(
        c,
        "fast_path",
        &["fast_attention-512", "fast_multi_head-512"],
        20,
    );
    group(c, "blockwise", &["blockwise_attention-4096"], 10);
}

criterion_group!(all, benches);
criterion_main!(all);
