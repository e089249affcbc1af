//! Strategies and helpers shared by the property tests (`tests/properties_*.rs`).
//!
//! Shapes are kept small (n <= 8, d <= 16) so that the whole suite runs in seconds; the
//! invariants do not depend on size.
#![allow(dead_code)]

use aiayn::decoder::{Decoder, DecoderLayer};
use aiayn::encoder::{Encoder, EncoderLayer, LayerSizes};
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::sublayer::NormPlacement;
use nalgebra::{DMatrix, RowDVector};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The proptest configuration of one test file: the case count is proptest's (256, or
/// `PROPTEST_CASES`, which proptest reads itself and which overrides any count set here), and
/// failing cases are recorded in `regressions` (`proptest-regressions/{file}.txt`, committed,
/// replayed first on every run).
///
/// (proptest's default places regression files beside `src/lib.rs`, which integration tests
/// in `tests/` cannot find; hence the explicit path, relative to the package root where
/// `cargo test` runs. Every test here is cheap, so none lowers the case count.)
pub fn config(regressions: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}

/// A (rows, cols) matrix with entries uniform in [lo, hi).
pub fn matrix(rows: usize, cols: usize, lo: f64, hi: f64) -> impl Strategy<Value = DMatrix<f64>> {
    prop::collection::vec(lo..hi, rows * cols)
        .prop_map(move |v| DMatrix::from_row_slice(rows, cols, &v))
}

/// A row vector with entries uniform in [lo, hi).
pub fn row(len: usize, lo: f64, hi: f64) -> impl Strategy<Value = RowDVector<f64>> {
    prop::collection::vec(lo..hi, len).prop_map(RowDVector::from_vec)
}

/// A permutation of 0..n.
pub fn permutation(n: usize) -> impl Strategy<Value = Vec<usize>> {
    Just((0..n).collect::<Vec<_>>()).prop_shuffle()
}

/// Row i of the result is row `perm[i]` of `x`.
pub fn permute_rows(x: &DMatrix<f64>, perm: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(perm.len(), x.ncols(), |i, j| x[(perm[i], j)])
}

/// Column j of the result is column `perm[j]` of `x`.
pub fn permute_columns(x: &DMatrix<f64>, perm: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(x.nrows(), perm.len(), |i, j| x[(i, perm[j])])
}

/// A seeded generator, so that a failing case can be replayed from its seed.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A (rows, cols) matrix with entries uniform in [-a, a].
pub fn uniform(rows: usize, cols: usize, a: f64, rng: &mut impl Rng) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-a..=a))
}

/// A row vector with entries uniform in [-a, a].
pub fn uniform_row(len: usize, a: f64, rng: &mut impl Rng) -> RowDVector<f64> {
    RowDVector::from_fn(len, |_, _| rng.random_range(-a..=a))
}

/// Multi-head attention with every weight, and every bias if `bias`, drawn uniformly from
/// [-1, 1]. (The library's constructor starts biases at zero, which would hide a bias that is
/// added in the wrong place.)
pub fn random_multi_head(
    d_model: usize,
    h: usize,
    d_k: usize,
    d_v: usize,
    bias: bool,
    rng: &mut impl Rng,
) -> MultiHeadAttention<f64> {
    let mut b = |n: usize| bias.then(|| uniform_row(n, 1.0, rng));
    let (b_q, b_k, b_v, b_o) = (b(h * d_k), b(h * d_k), b(h * d_v), b(d_model));
    MultiHeadAttention {
        h,
        d_k,
        d_v,
        w_q: uniform(d_model, h * d_k, 1.0, rng),
        w_k: uniform(d_model, h * d_k, 1.0, rng),
        w_v: uniform(d_model, h * d_v, 1.0, rng),
        w_o: uniform(h * d_v, d_model, 1.0, rng),
        b_q,
        b_k,
        b_v,
        b_o,
    }
}

/// Overwrites `x` with entries uniform in [-a, a]: gives zero-initialised biases and
/// one-initialised gains values that would reveal a mix-up.
pub fn scramble(x: &mut [f64], a: f64, rng: &mut impl Rng) {
    for v in x {
        *v = rng.random_range(-a..=a);
    }
}

/// The largest absolute entry-wise difference.
pub fn max_abs_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Sizes of one layer: d_model <= 8, h <= 3, d_k and d_v <= 4 (independent of each other and
/// of d_model / h), d_ff <= 8, with or without attention biases, post- or pre-norm.
pub fn layer_sizes() -> impl Strategy<Value = LayerSizes> {
    (
        1..=8usize,
        1..=3usize,
        1..=4usize,
        1..=4usize,
        1..=8usize,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(d_model, h, d_k, d_v, d_ff, bias, pre)| LayerSizes {
            d_model,
            h,
            d_k,
            d_v,
            d_ff,
            attention_bias: bias,
            layer_norm_eps: 1e-6,
            placement: if pre {
                NormPlacement::Pre
            } else {
                NormPlacement::Post
            },
        })
}

/// Random gains and biases for a LayerNorm, in place of its 1 and 0.
pub fn scramble_norm(norm: &mut LayerNorm<f64>, rng: &mut impl Rng) {
    scramble(norm.gain.as_mut_slice(), 2.0, rng);
    scramble(norm.bias.as_mut_slice(), 1.0, rng);
}

/// Random feed-forward biases in place of zeros.
pub fn scramble_ffn(ffn: &mut FeedForward<f64>, rng: &mut impl Rng) {
    scramble(ffn.b_1.as_mut_slice(), 1.0, rng);
    scramble(ffn.b_2.as_mut_slice(), 1.0, rng);
}

/// An encoder layer with every parameter random (no zero biases, no unit gains).
pub fn random_encoder_layer(s: &LayerSizes, rng: &mut impl Rng) -> EncoderLayer<f64> {
    let mut layer = EncoderLayer::new(s, rng);
    layer.self_attn = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, rng);
    scramble_ffn(&mut layer.ffn, rng);
    scramble_norm(&mut layer.norm_1, rng);
    scramble_norm(&mut layer.norm_2, rng);
    layer
}

/// A decoder layer with every parameter random.
pub fn random_decoder_layer(s: &LayerSizes, rng: &mut impl Rng) -> DecoderLayer<f64> {
    let mut layer = DecoderLayer::new(s, rng);
    layer.self_attn = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, rng);
    layer.cross_attn = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, rng);
    scramble_ffn(&mut layer.ffn, rng);
    scramble_norm(&mut layer.norm_1, rng);
    scramble_norm(&mut layer.norm_2, rng);
    scramble_norm(&mut layer.norm_3, rng);
    layer
}

/// A two-layer encoder and a two-layer decoder with every parameter random, including the final
/// norms a pre-norm stack has.
pub fn random_stacks(s: &LayerSizes, rng: &mut impl Rng) -> (Encoder<f64>, Decoder<f64>) {
    let mut encoder = Encoder::<f64>::new(2, s, rng);
    let mut decoder = Decoder::<f64>::new(2, s, rng);
    for l in encoder.layers.iter_mut() {
        *l = random_encoder_layer(s, rng);
    }
    for l in decoder.layers.iter_mut() {
        *l = random_decoder_layer(s, rng);
    }
    for norm in encoder
        .final_norm
        .iter_mut()
        .chain(decoder.final_norm.iter_mut())
    {
        scramble_norm(norm, rng);
    }
    (encoder, decoder)
}

/// [`config`] with `n` cases unless `PROPTEST_CASES` says otherwise: for the tests that each
/// run many forward passes.
pub fn config_with_cases(regressions: &'static str, n: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases,
        ..config(regressions)
    }
}

/// A 2 + 2-layer model with the heads, widths, biases and placement of `s` (d_model = h d_v,
/// as a model requires), learned positions covering `max_len` (always for an odd d_model,
/// which sinusoids do not allow), every parameter uniform in [-1, 1].
pub fn random_model(
    s: &LayerSizes,
    learned: bool,
    max_len: usize,
    vocab: usize,
    r: &mut impl Rng,
) -> aiayn::Transformer<f64> {
    use aiayn::config::{Config, Positional};
    use aiayn::params::Parameters;
    let d_model = s.h * s.d_v;
    let config = Config {
        n_layers: 2,
        d_model,
        d_ff: s.d_ff,
        h: s.h,
        d_k: s.d_k,
        d_v: s.d_v,
        attention_bias: s.attention_bias,
        layer_norm_eps: s.layer_norm_eps,
        placement: s.placement,
        positional: if learned || d_model % 2 == 1 {
            Positional::Learned
        } else {
            Positional::Sinusoidal
        },
        max_len,
        ..Config::base()
    };
    let mut model = aiayn::Transformer::new(&config, vocab, r).expect("valid config");
    for t in model.params_mut() {
        scramble(t.data, 1.0, r);
    }
    model
}
