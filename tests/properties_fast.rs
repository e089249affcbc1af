//! The fast paths of `aiayn::fast` compute what the plain code computes: Eq. 1, multi-head
//! attention, the feed-forward network, both layers, both stacks and the whole model (§3),
//! with and without masks (padding, causal, random, queries that see no key at all), in f64
//! with tight tolerances. Eq. 1 and multi-head attention run proptest's 256 cases each; the
//! layers 128; the stacks and the model 64. Then: the results are the same bit for bit for 1 to
//! 4 threads, and the f32 exp the fast paths use stays within its stated error. (Inputs whose
//! shapes do not fit panic with the shapes named, as on the plain path: `tests/panics.rs`.)

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_fast.txt";

use aiayn::attention::scaled_dot_product_attention;
use aiayn::encoder::{Encoder, LayerSizes};
use aiayn::fast::{
    decoder_forward_fast, decoder_layer_forward_fast, encoder_forward_fast,
    encoder_layer_forward_fast, exp_f32, feed_forward_fast, multi_head_forward_fast,
    multi_head_output_fast, scaled_dot_product_attention_fast, transformer_forward_fast,
};
use aiayn::mask::Mask;
use aiayn::sublayer::NormPlacement;
use aiayn::Transformer;
use approx::assert_relative_eq;
use nalgebra::DMatrix;
use properties_support::{
    config, config_with_cases, layer_sizes, matrix, random_decoder_layer, random_encoder_layer,
    random_model, random_multi_head, rng, scramble_ffn, uniform,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Q (n, d_k), K (m, d_k), V (m, d_v) with entries in [-3, 3), and a random mask (n, m) in
/// which some queries may see no key at all.
#[allow(clippy::type_complexity)]
fn qkv_mask() -> impl Strategy<Value = (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>, Option<Mask>)> {
    (1..=9usize, 1..=9usize, 1..=8usize, 1..=8usize).prop_flat_map(|(n, m, d_k, d_v)| {
        (
            matrix(n, d_k, -3.0, 3.0),
            matrix(m, d_k, -3.0, 3.0),
            matrix(m, d_v, -3.0, 3.0),
            prop::option::of(prop::collection::vec(any::<bool>(), n * m)),
        )
            .prop_map(move |(q, k, v, allowed)| {
                let mask = allowed.map(|a| Mask::from_fn(n, m, |i, j| a[i * m + j]));
                (q, k, v, mask)
            })
    })
}

/// A random (n, m) mask: none, padding of some keys (possibly all of them), or any pattern.
fn random_mask(n: usize, m: usize, kind: u8, rng: &mut impl Rng) -> Option<Mask> {
    match kind % 3 {
        0 => None,
        1 => {
            let pad: Vec<bool> = (0..m).map(|_| rng.random_bool(0.3)).collect();
            Some(Mask::padding(n, &pad))
        }
        _ => Some(Mask::from_fn(n, m, |_, _| rng.random_bool(0.6))),
    }
}

/// Entry-wise equal up to rounding, with a tolerance that scales with the entries.
fn close(fast: &DMatrix<f64>, plain: &DMatrix<f64>) {
    assert_eq!(fast.shape(), plain.shape());
    assert_relative_eq!(fast, plain, epsilon = 1e-10, max_relative = 1e-9);
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:attention (property)
    fn fast_attention_equals_plain_attention((q, k, v, mask) in qkv_mask()) {
        let plain = scaled_dot_product_attention(&q, &k, &v, mask.as_ref());
        let fast = scaled_dot_product_attention_fast(&q, &k, &v, mask.as_ref());
        assert_relative_eq!(fast.weights, plain.weights, epsilon = 1e-12, max_relative = 1e-10);
        assert_relative_eq!(fast.output, plain.output, epsilon = 1e-12, max_relative = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn fast_multi_head_equals_plain_multi_head(
        n in 1..=7usize,
        m in 1..=7usize,
        h in 1..=3usize,
        bias in any::<bool>(),
        threads in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let (d_k, d_v, d_model) = (2, 3, 4);
        let mha = random_multi_head(d_model, h, d_k, d_v, bias, &mut rng);
        let query = uniform(n, d_model, 1.0, &mut rng);
        let memory = uniform(m, d_model, 1.0, &mut rng);
        let mask = Mask::from_fn(n, m, |_, _| rng.random_bool(0.7)); // some queries see nothing
        let plain = mha.forward(&query, &memory, &memory, Some(&mask));
        let fast = multi_head_forward_fast(&mha, &query, &memory, &memory, Some(&mask), threads);
        assert_relative_eq!(fast.output, plain.output, epsilon = 1e-12, max_relative = 1e-10);
        prop_assert_eq!(fast.weights.len(), h);
        for (f, p) in fast.weights.iter().zip(&plain.weights) {
            assert_relative_eq!(f, p, epsilon = 1e-12, max_relative = 1e-10);
        }
        // without the weights, the division by the sums moves to the output: same result
        let output = multi_head_output_fast(&mha, &query, &memory, &memory, Some(&mask), threads);
        assert_relative_eq!(output, plain.output, epsilon = 1e-12, max_relative = 1e-10);
    }
}

proptest! {
    #![proptest_config(config_with_cases(REGRESSIONS, 128))]

    #[test]
    // verifies: eq:ffn (property)
    fn fast_feed_forward_equals_plain(s in layer_sizes(), n in 1..=7usize, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let mut layer = random_encoder_layer(&s, &mut rng);
        scramble_ffn(&mut layer.ffn, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        close(&feed_forward_fast(&layer.ffn, &x, 2), &layer.ffn.forward(&x));
    }

    #[test]
    // verifies: eq:sublayer, eq:layer-norm (property)
    fn fast_encoder_layer_equals_plain(
        s in layer_sizes(),
        n in 1..=7usize,
        mask_kind in any::<u8>(),
        threads in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let layer = random_encoder_layer(&s, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let mask = random_mask(n, n, mask_kind, &mut rng);
        let fast = encoder_layer_forward_fast(&layer, &x, mask.as_ref(), threads);
        close(&fast, &layer.forward(&x, mask.as_ref()));
    }

    #[test]
    // verifies: eq:sublayer, eq:causal-mask (property)
    fn fast_decoder_layer_equals_plain(
        s in layer_sizes(),
        n_t in 1..=6usize,
        n_s in 1..=6usize,
        mask_kind in any::<u8>(),
        threads in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let layer = random_decoder_layer(&s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let causal = Mask::causal(n_t);
        let memory_mask = random_mask(n_t, n_s, mask_kind, &mut rng);
        let fast = decoder_layer_forward_fast(
            &layer, &y, &memory, Some(&causal), memory_mask.as_ref(), threads,
        );
        close(&fast, &layer.forward(&y, &memory, Some(&causal), memory_mask.as_ref()));
    }
}

proptest! {
    #![proptest_config(config_with_cases(REGRESSIONS, 64))]

    #[test]
    // verifies: eq:sublayer (property)
    fn fast_stacks_equal_plain(
        s in layer_sizes(),
        n_t in 1..=6usize,
        n_s in 1..=6usize,
        mask_kind in any::<u8>(),
        threads in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let encoder = Encoder::<f64>::new(2, &s, &mut rng);
        let mut encoder = Encoder { layers: encoder.layers, final_norm: encoder.final_norm };
        for layer in &mut encoder.layers {
            *layer = random_encoder_layer(&s, &mut rng);
        }
        let x = uniform(n_s, s.d_model, 2.0, &mut rng);
        let src_mask = random_mask(n_s, n_s, mask_kind, &mut rng);
        let memory = encoder.forward(&x, src_mask.as_ref());
        close(&encoder_forward_fast(&encoder, &x, src_mask.as_ref(), threads), &memory);

        let model = random_model(&s, false, 8, 5, &mut rng);
        let y = uniform(n_t, model.embedding.d_model(), 2.0, &mut rng);
        let memory = uniform(n_s, model.embedding.d_model(), 2.0, &mut rng);
        let causal = Mask::causal(n_t);
        let memory_mask = random_mask(n_t, n_s, mask_kind, &mut rng);
        let plain = model.decoder.forward(&y, &memory, Some(&causal), memory_mask.as_ref());
        let fast = decoder_forward_fast(
            &model.decoder, &y, &memory, Some(&causal), memory_mask.as_ref(), threads,
        );
        close(&fast, &plain);
    }

    #[test]
    // verifies: eq:generator (property)
    fn fast_model_forward_equals_plain(
        s in layer_sizes(),
        n_t in 1..=6usize,
        n_s in 1..=6usize,
        learned in any::<bool>(),
        padded in any::<bool>(),
        threads in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let vocab = 7;
        let model = random_model(&s, learned, 8, vocab, &mut rng);
        let src: Vec<usize> = (0..n_s).map(|_| rng.random_range(0..vocab)).collect();
        let tgt: Vec<usize> = (0..n_t).map(|_| rng.random_range(0..vocab)).collect();
        // padding at the end of the source, possibly all of it
        let pad_from = rng.random_range(0..=n_s);
        let padding: Vec<bool> = (0..n_s).map(|j| j >= pad_from).collect();
        let padding = padded.then_some(padding.as_slice());
        let plain = model.forward(&src, &tgt, padding);
        let fast = transformer_forward_fast(&model, &src, &tgt, padding, threads);
        close(&fast, &plain);
    }
}

/// Sizes with several blocks of columns in every product (d_ff = 600 is three blocks of
/// 256) and several heads, so that threads really split the work.
fn wide_sizes(placement: NormPlacement) -> LayerSizes {
    LayerSizes {
        d_model: 48,
        h: 4,
        d_k: 12,
        d_v: 12,
        d_ff: 600,
        attention_bias: true,
        layer_norm_eps: 1e-6,
        placement,
    }
}

fn random_f32(rows: usize, cols: usize, rng: &mut impl Rng) -> DMatrix<f32> {
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-1.0..1.0))
}

#[test]
fn fast_paths_give_the_same_bits_for_any_thread_count() {
    for (seed, placement) in [(1, NormPlacement::Post), (2, NormPlacement::Pre)] {
        let mut rng = StdRng::seed_from_u64(seed);
        let s = wide_sizes(placement);
        let config = aiayn::Config {
            n_layers: 2,
            d_model: s.d_model,
            d_ff: s.d_ff,
            h: s.h,
            d_k: s.d_k,
            d_v: s.d_v,
            attention_bias: s.attention_bias,
            placement,
            ..aiayn::Config::base()
        };
        let model = Transformer::<f32>::new(&config, 300, &mut rng).expect("a valid config");
        let (n_s, n_t) = (37, 29);
        let src: Vec<usize> = (0..n_s).map(|_| rng.random_range(0..300)).collect();
        let tgt: Vec<usize> = (0..n_t).map(|_| rng.random_range(0..300)).collect();
        let padding: Vec<bool> = (0..n_s).map(|j| j >= 30).collect();
        let x = random_f32(n_s, s.d_model, &mut rng);
        let mask = Mask::from_fn(n_t, n_s, |i, j| (i + j) % 5 != 0 && i != 3);
        let mha = &model.decoder.layers[0].cross_attn;
        let y = random_f32(n_t, s.d_model, &mut rng);
        let run = |threads: usize| {
            let attn = multi_head_forward_fast(mha, &y, &x, &x, Some(&mask), threads);
            let layer = encoder_layer_forward_fast(&model.encoder.layers[0], &x, None, threads);
            let log_p = transformer_forward_fast(&model, &src, &tgt, Some(&padding), threads);
            (attn, layer, log_p)
        };
        let one = run(1);
        for threads in 2..=4 {
            assert_eq!(run(threads), one, "{threads} threads differ from one");
        }
        // and the f32 fast path agrees with the plain code up to f32 rounding
        let plain = model.forward(&src, &tgt, Some(&padding));
        let worst = (&one.2 - &plain).abs().max();
        assert!(
            worst < 1e-3,
            "fast and plain log-probabilities differ by {worst}"
        );
    }
}

/// f64's exp rounded to f32 is within half a unit of the true value; exp_f32 must stay within
/// 2 units in the last place of it for results above 2^-125, within 2^-125 below that.
#[test]
fn exp_f32_is_within_two_ulp() {
    let tiny = 2f64.powi(-125);
    let mut worst_ulps = 0.0f64;
    let mut check = |x: f32| {
        let exact = (x as f64).exp();
        let fast = exp_f32(x) as f64;
        if exact > f32::MAX as f64 {
            assert_eq!(exp_f32(x), f32::INFINITY, "exp({x}) overflows");
        } else if exact < tiny {
            assert!(
                (fast - exact).abs() < tiny,
                "exp({x}) = {fast}, exact {exact}"
            );
        } else {
            let ulp = 2f64.powi(exact.log2().floor() as i32 - 23);
            let ulps = (fast - exact).abs() / ulp;
            worst_ulps = worst_ulps.max(ulps);
            assert!(ulps <= 2.0, "exp({x}) = {fast}, exact {exact}: {ulps} ulp");
        }
    };
    let steps = 2_000_000;
    for i in 0..=steps {
        check(-110.0 + 200.0 * i as f32 / steps as f32); // [-110, 90]
    }
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..1_000_000 {
        check(rng.random_range(-1.0f32..1.0)); // the softmax's usual arguments
    }
    for x in [
        0.0,
        -0.0,
        -87.0,
        -86.99,
        88.72283,
        88.72284,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
    ] {
        check(x);
    }
    assert_eq!(exp_f32(0.0), 1.0);
    assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
    assert!(worst_ulps > 0.0, "the comparison must see some rounding");
}

#[test]
fn a_query_that_sees_no_key_gets_zero_weights_and_a_zero_output_on_the_fast_path() {
    // row 1 sees no key; rows 0 and 2 see some
    let mask = Mask::from_fn(3, 4, |i, j| i != 1 && j != 2);
    let mut r = rng(3);
    let (q, k, v) = (
        uniform(3, 5, 2.0, &mut r),
        uniform(4, 5, 2.0, &mut r),
        uniform(4, 6, 2.0, &mut r),
    );
    let fast = scaled_dot_product_attention_fast(&q, &k, &v, Some(&mask));
    let plain = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
    assert!(
        fast.weights.row(1).iter().all(|&w| w == 0.0),
        "{}",
        fast.weights
    );
    assert!(
        fast.output.row(1).iter().all(|&o| o == 0.0),
        "{}",
        fast.output
    );
    assert_relative_eq!(fast.weights, plain.weights, max_relative = 1e-12);
    assert_relative_eq!(fast.output, plain.output, max_relative = 1e-12);
    // and through multi-head attention, whose heads keep no weights
    let mha = random_multi_head(8, 2, 4, 4, false, &mut r);
    let x = uniform(3, 8, 1.0, &mut r);
    let memory = uniform(4, 8, 1.0, &mut r);
    let fast = multi_head_output_fast(&mha, &x, &memory, &memory, Some(&mask), 1);
    let plain = mha.forward(&x, &memory, &memory, Some(&mask)).output;
    assert!(fast.iter().all(|z| z.is_finite()), "{fast}");
    assert_relative_eq!(fast, plain, max_relative = 1e-12);
}

#[test]
fn the_fast_exp_flushes_to_zero_only_where_2_to_the_n_leaves_the_normal_range() {
    // e^x = 2^n e^r: below x = -86.99 or so, n = -126 and the result is 0 (e^-86.99 is about
    // 1.7e-38, under the 2^-125 the error bound allows); just above it, 2^-125 e^r
    assert!(exp_f32(-86.98) > 0.0);
    for x in [-86.995, -87.0, -100.0, f32::MIN] {
        assert_eq!(exp_f32(x), 0.0, "{x}");
    }
}
