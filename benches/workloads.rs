//! The measured workloads, shared by the criterion benches (`benches/transformer.rs`) and the
//! side-by-side comparison with PyTorch (`examples/bench_compare.rs`, `benches/compare.sh`), so
//! that both time exactly the same shapes. All in f32.
//!
//! A workload is named `kind-n`: `softmax-512` is the row-wise softmax of a (512, 512) matrix,
//! `multi_head-1024` multi-head attention over 1024 positions, and so on (see [`ROWS`]).
//! [`prepare`] builds the inputs and the model once, outside the timing, and returns the closure
//! to time.

#![allow(dead_code)] // each including target uses a different part

use std::hint::black_box;

use aiayn::attention::{scaled_dot_product_attention, Attention};
use aiayn::config::Config;
use aiayn::decode::{argmax, greedy};
use aiayn::encoder::{EncoderLayer, LayerSizes};
use aiayn::fast;
use aiayn::multi_head::{MultiHeadAttention, MultiHeadOutput};
use aiayn::softmax::softmax_rows;
use aiayn::sublayer::NormPlacement;
use aiayn::train::tasks::{Task, BOS};
use aiayn::train::trainer::{BatchStream, TrainOptions, Trainer};
use aiayn::Transformer;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every workload, in the order the comparison reports them.
pub const ROWS: [&str; 19] = [
    "matmul-512",
    "softmax-512",
    "attention-128",
    "attention-512",
    "attention-2048",
    "multi_head-128",
    "multi_head-512",
    "multi_head-1024",
    "encoder_layer-128",
    "encoder_layer-512",
    "stacks-128",
    "decode_full-64",
    "decode_cached-64",
    "train_step-64",
    // the fast paths beside the plain code, timed on the same inputs
    "fast_attention-512",
    "fast_multi_head-512",
    // Eq. 1 block by block, output only (aiayn::blockwise)
    "blockwise_attention-4096",
    "fast_encoder_layer-512",
    "fast_stacks-128",
];

/// d_model, h and d_ff of the base model (Table 3), used by every inference workload.
pub const D_MODEL: usize = 512;
pub const H: usize = 8;
pub const D_FF: usize = 2048;
/// d_k = d_v = d_model / h.
pub const D_K: usize = D_MODEL / H;
/// The vocabulary of the random models (stacks and decoding).
pub const VOCAB: usize = 1000;
/// Source length of the decoding workloads.
pub const DECODE_SRC: usize = 16;
/// The small model trained on the copy task: d_model, layers per stack, h, d_ff.
pub const TRAIN_D_MODEL: usize = 64;
pub const TRAIN_LAYERS: usize = 2;
pub const TRAIN_H: usize = 4;
/// Token budget of the training batch (per side), `aiayn train`'s default for `copy`.
pub const TRAIN_BATCH_TOKENS: usize = 2500;

/// A uniform random (rows, cols) matrix in [-1, 1).
pub fn random(rows: usize, cols: usize, rng: &mut impl Rng) -> DMatrix<f32> {
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-1.0..1.0))
}

/// Random token ids in 3..VOCAB (not PAD, BOS or EOS).
pub fn random_tokens(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(3..VOCAB)).collect()
}

/// The base model's sizes, post-norm, without attention biases (the paper's model).
pub fn base_sizes() -> LayerSizes {
    LayerSizes {
        d_model: D_MODEL,
        h: H,
        d_k: D_K,
        d_v: D_K,
        d_ff: D_FF,
        attention_bias: false,
        layer_norm_eps: 1e-6,
        placement: NormPlacement::Post,
    }
}

/// The base model (6 + 6 layers) with a [`VOCAB`]-word vocabulary, randomly initialised.
pub fn base_model(rng: &mut impl Rng) -> Transformer<f32> {
    Transformer::new(&Config::base(), VOCAB, rng).expect("the base configuration is valid")
}

/// The small copy-task trainer and its first batch: (trainer, batch description).
pub fn small_trainer(threads: usize) -> (Trainer<f32>, aiayn::train::batch::Batch) {
    let task = Task::by_name("copy", 1).expect("copy is a task");
    let config = Config {
        n_layers: TRAIN_LAYERS,
        d_model: TRAIN_D_MODEL,
        d_ff: 4 * TRAIN_D_MODEL,
        h: TRAIN_H,
        d_k: TRAIN_D_MODEL / TRAIN_H,
        d_v: TRAIN_D_MODEL / TRAIN_H,
        ..Config::base()
    };
    let mut rng = StdRng::seed_from_u64(1);
    let model = Transformer::new(&config, task.vocab.len(), &mut rng).expect("a valid config");
    let options = TrainOptions {
        p_drop: 0.1,
        eps_ls: 0.1,
        warmup: 100,
        lr_scale: 0.25,
        batch_tokens: TRAIN_BATCH_TOKENS,
        seed: 1,
        threads,
    };
    let batch = BatchStream::new(&task.train, TRAIN_BATCH_TOKENS, 1)
        .next_batch()
        .clone();
    (Trainer::new(model, options), batch)
}

/// Greedy decoding by running the whole prefix through the decoder at every step (no cache).
pub fn greedy_full(model: &Transformer<f32>, src: &[usize], tokens: usize) -> Vec<usize> {
    let memory = model.encode(src, None); // (n_s, d_model)
    let mut tgt = vec![BOS];
    for _ in 0..tokens {
        let y = model.decode(&tgt, &memory, None); // (n_t, d_model), the whole prefix again
        let last = y.rows(tgt.len() - 1, 1).into_owned(); // (1, d_model)
        tgt.push(argmax(&model.generator(&last).row(0)));
    }
    tgt.split_off(1)
}

/// What one workload reports about itself besides its time (for the PyTorch side to copy).
pub type Info = Vec<(&'static str, usize)>;

/// Builds workload `id` for `threads` threads (the training step and the fast paths use them;
/// the plain inference code is single-threaded): the closure to time, and the sizes the
/// PyTorch side needs to build the same workload. `None` for an unknown id.
pub fn prepare(id: &str, threads: usize) -> Option<(Box<dyn FnMut()>, Info)> {
    let (kind, n) = id.rsplit_once('-')?;
    let n: usize = n.parse().ok()?;
    let mut rng = StdRng::seed_from_u64(n as u64);
    let info = vec![("n", n)];
    Some(match kind {
        "matmul" => {
            let (a, b) = (random(n, n, &mut rng), random(n, n, &mut rng));
            (Box::new(move || drop(black_box(&a * &b))), info) // (n, n) x (n, n)
        }
        "softmax" => {
            let x = random(n, n, &mut rng);
            (Box::new(move || drop(black_box(softmax_rows(&x)))), info)
        }
        "attention" | "fast_attention" => {
            let q = random(n, D_K, &mut rng);
            let k = random(n, D_K, &mut rng);
            let v = random(n, D_K, &mut rng);
            let f: Box<dyn FnMut()> = if kind == "attention" {
                Box::new(move || drop(black_box(scaled_dot_product_attention(&q, &k, &v, None))))
            } else {
                Box::new(move || drop(black_box(fast_attention(&q, &k, &v))))
            };
            (f, vec![("n", n), ("d_k", D_K)])
        }
        "multi_head" | "fast_multi_head" => {
            let mha = MultiHeadAttention::<f32>::new(D_MODEL, H, D_K, D_K, false, &mut rng);
            let x = random(n, D_MODEL, &mut rng);
            let f: Box<dyn FnMut()> = if kind == "multi_head" {
                Box::new(move || drop(black_box(mha.forward(&x, &x, &x, None))))
            } else {
                Box::new(move || drop(black_box(fast_multi_head(&mha, &x, threads))))
            };
            (f, vec![("n", n), ("d_model", D_MODEL), ("h", H)])
        }
        "encoder_layer" | "fast_encoder_layer" => {
            let layer = EncoderLayer::<f32>::new(&base_sizes(), &mut rng);
            let x = random(n, D_MODEL, &mut rng);
            let info = vec![("n", n), ("d_model", D_MODEL), ("h", H), ("d_ff", D_FF)];
            let f: Box<dyn FnMut()> = if kind == "encoder_layer" {
                Box::new(move || drop(black_box(layer.forward(&x, None))))
            } else {
                Box::new(move || {
                    drop(black_box(fast::encoder_layer_forward_fast(
                        &layer, &x, None, threads,
                    )))
                })
            };
            (f, info)
        }
        "stacks" | "fast_stacks" => {
            let model = base_model(&mut rng);
            let src = random_tokens(n, &mut rng);
            let tgt = random_tokens(n, &mut rng);
            let info = vec![("n", n), ("layers", 6), ("vocab", VOCAB)];
            let f: Box<dyn FnMut()> = if kind == "stacks" {
                Box::new(move || drop(black_box(model.forward(&src, &tgt, None))))
            } else {
                Box::new(move || {
                    drop(black_box(fast::transformer_forward_fast(
                        &model, &src, &tgt, None, threads,
                    )))
                })
            };
            (f, info)
        }
        "decode_full" | "decode_cached" => {
            let model = base_model(&mut rng);
            let src = random_tokens(DECODE_SRC, &mut rng);
            let info = vec![("tokens", n), ("n_s", DECODE_SRC), ("vocab", VOCAB)];
            let f: Box<dyn FnMut()> = if kind == "decode_full" {
                Box::new(move || drop(black_box(greedy_full(&model, &src, n))))
            } else {
                // an end symbol outside the vocabulary is never chosen: exactly n steps
                Box::new(move || drop(black_box(greedy(&model, &src, BOS, VOCAB, n))))
            };
            (f, info)
        }
        "train_step" => {
            let (trainer, batch) = small_trainer(threads);
            let info = vec![
                ("d_model", TRAIN_D_MODEL),
                ("layers", TRAIN_LAYERS),
                ("h", TRAIN_H),
                ("vocab", trainer.model.embedding.weight.nrows()),
                ("batch", batch.len()),
                ("n_s", batch.src[0].len()),
                ("n_t", batch.tgt_in[0].len()),
                ("tgt_tokens", batch.tgt_tokens()),
            ];
            let mut trainer = trainer;
            // each call takes one more step from where the last left off, on the same batch
            (
                Box::new(move || {
                    black_box(trainer.train_step(&batch));
                }),
                info,
            )
        }
        "blockwise_attention" => {
            let q = random(n, D_K, &mut rng);
            let k = random(n, D_K, &mut rng);
            let v = random(n, D_K, &mut rng);
            let blocks = aiayn::blockwise::Blocks::default();
            let f = move || drop(black_box(blockwise(&q, &k, &v, blocks)));
            (Box::new(f), vec![("n", n), ("d_k", D_K)])
        }
        _ => return None,
    })
}

/// Eq. 1 block by block without a mask (the output only).
fn blockwise(
    q: &DMatrix<f32>,
    k: &DMatrix<f32>,
    v: &DMatrix<f32>,
    blocks: aiayn::blockwise::Blocks,
) -> DMatrix<f32> {
    aiayn::blockwise::blockwise_attention(q, k, v, None, blocks)
}

/// The fast path of Eq. 1 (weights included), timed beside the plain one.
fn fast_attention(q: &DMatrix<f32>, k: &DMatrix<f32>, v: &DMatrix<f32>) -> Attention<f32> {
    fast::scaled_dot_product_attention_fast(q, k, v, None)
}

/// The fast path of multi-head attention (per-head weights included), timed beside the plain one.
fn fast_multi_head(
    mha: &MultiHeadAttention<f32>,
    x: &DMatrix<f32>,
    threads: usize,
) -> MultiHeadOutput<f32> {
    fast::multi_head_forward_fast(mha, x, x, x, None, threads)
}
