//! Examples to check by hand: inputs chosen so that every answer is a simple fraction, and the
//! paper's tables typed in from the paper.
//!
//! Softmax turns logits (ln a, ln b, ...) into (a, b, ...) / (a + b + ...), so most inputs
//! below are logarithms of small integers.

use aiayn::attention::scaled_dot_product_attention;
use aiayn::config::{Config, ConfigError, Positional, TABLE3_ROWS};
use aiayn::embedding::Embedding;
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::positional::sinusoidal;
use aiayn::softmax::{log_softmax_rows, softmax_rows};
use aiayn::sublayer::{residual, NormPlacement};
use aiayn::train::adam::Adam;
use aiayn::train::label_smoothing::{label_smoothed_loss, smoothed_targets, Spread};
use aiayn::train::schedule::lrate;
use aiayn::Transformer;
use approx::{assert_abs_diff_eq, assert_relative_eq};
use nalgebra::{dmatrix, DMatrix, RowDVector};
use rand::rngs::StdRng;
use rand::SeedableRng;

const LN_2: f64 = std::f64::consts::LN_2;

fn ln(x: f64) -> f64 {
    x.ln()
}

// --- §3.2.1 softmax and Eq. 1 -------------------------------------------------------------

// verifies: eq:softmax (example)
#[test]
fn softmax_of_ln_1_and_ln_3_is_one_quarter_and_three_quarters() {
    let p = softmax_rows(&dmatrix![0.0, ln(3.0)]);
    assert_relative_eq!(p, dmatrix![0.25, 0.75], max_relative = 1e-15);
}

// verifies: eq:softmax (example)
#[test]
fn softmax_of_ln_1_ln_2_ln_5_is_in_eighths() {
    // Two rows at once, the second shifted by 1000: the same distribution.
    let p = softmax_rows(&dmatrix![0.0, LN_2, ln(5.0); 1000.0, 1000.0 + LN_2, 1000.0 + ln(5.0)]);
    let want = dmatrix![1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0; 1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0];
    // The second row's logits carry an absolute rounding error of 1000 * 2^-53 ~ 1e-13.
    assert_abs_diff_eq!(p, want, epsilon = 1e-12);
}

// verifies: eq:softmax, eq:generator (example)
#[test]
fn log_softmax_of_four_equal_logits_is_minus_ln_4() {
    let l = log_softmax_rows(&dmatrix![7.0, 7.0, 7.0, 7.0]);
    assert_relative_eq!(
        l,
        DMatrix::from_element(1, 4, -ln(4.0)),
        max_relative = 1e-15
    );
}

// verifies: eq:softmax, eq:causal-mask (example)
#[test]
fn softmax_of_a_row_of_minus_infinity_is_a_row_of_zeros() {
    let p = softmax_rows(&dmatrix![f64::NEG_INFINITY, f64::NEG_INFINITY; 0.0, f64::NEG_INFINITY]);
    // Exact: the documented convention for "attend to nothing", and exp(-inf) = 0.
    assert_eq!(p, dmatrix![0.0, 0.0; 1.0, 0.0]);
}

// verifies: eq:softmax (example)
#[test]
fn log_softmax_of_a_row_of_minus_infinity_stays_minus_infinity() {
    // The log of the all-zero row above: -inf everywhere, not NaN; masked entries of a partly
    // masked row are -inf too, and the open one is log 1 = 0.
    let l =
        log_softmax_rows(&dmatrix![f64::NEG_INFINITY, f64::NEG_INFINITY; 0.0, f64::NEG_INFINITY]);
    assert_eq!(
        l,
        dmatrix![f64::NEG_INFINITY, f64::NEG_INFINITY; 0.0, f64::NEG_INFINITY]
    );
}

// verifies: eq:attention (example)
#[test]
fn attention_with_orthogonal_keys_weighs_them_three_to_one() {
    // d_k = 4, so sqrt(d_k) = 2. The query is 2 ln 3 along the first key and orthogonal to
    // the second: scores (ln 3, 0) / 1 after scaling, weights (3/4, 1/4).
    let q = dmatrix![2.0 * ln(3.0), 0.0, 0.0, 0.0];
    let k = dmatrix![1.0, 0.0, 0.0, 0.0; 0.0, 1.0, 0.0, 0.0];
    let v = dmatrix![4.0, 0.0; 8.0, 4.0];
    let a = scaled_dot_product_attention(&q, &k, &v, None);
    assert_relative_eq!(a.weights, dmatrix![0.75, 0.25], max_relative = 1e-15);
    // (3/4)(4, 0) + (1/4)(8, 4) = (5, 1)
    assert_relative_eq!(a.output, dmatrix![5.0, 1.0], max_relative = 1e-15);
}

// verifies: eq:attention, eq:causal-mask (example)
#[test]
fn causal_attention_over_equal_keys_averages_each_prefix() {
    // Equal keys: query i spreads its weight evenly over keys 0..=i.
    let x = DMatrix::from_element(3, 2, 1.0);
    let v = dmatrix![3.0; 6.0; 9.0];
    let a = scaled_dot_product_attention(&x, &x, &v, Some(&Mask::causal(3)));
    let third = 1.0 / 3.0;
    let want_weights = dmatrix![1.0, 0.0, 0.0; 0.5, 0.5, 0.0; third, third, third];
    assert_abs_diff_eq!(a.weights, want_weights, epsilon = 1e-15);
    // (3), (3 + 6) / 2, (3 + 6 + 9) / 3
    assert_abs_diff_eq!(a.output, dmatrix![3.0; 4.5; 6.0], epsilon = 1e-14);
}

// verifies: eq:attention, eq:causal-mask (example)
#[test]
fn a_padded_key_gets_weight_zero_however_large_its_value() {
    let q = dmatrix![0.0; 0.0];
    let k = dmatrix![0.0; 0.0; 0.0];
    let v = dmatrix![2.0; 1e300; 4.0];
    let mask = Mask::padding(2, &[false, true, false]);
    let a = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
    assert_eq!(a.weights, dmatrix![0.5, 0.0, 0.5; 0.5, 0.0, 0.5]); // exact halves and zeros
    assert_abs_diff_eq!(a.output, dmatrix![3.0; 3.0], epsilon = 1e-15);
}

// verifies: eq:causal-mask (example)
#[test]
fn causal_mask_of_three_positions_is_lower_triangular() {
    let m = Mask::causal(3);
    let grid: Vec<Vec<bool>> = (0..3)
        .map(|i| (0..3).map(|j| m.allows(i, j)).collect())
        .collect();
    assert_eq!(
        grid,
        vec![
            vec![true, false, false],
            vec![true, true, false],
            vec![true, true, true]
        ]
    );
}

// --- §3.2.2 multi-head attention ----------------------------------------------------------

// verifies: eq:multi-head (example)
#[test]
fn two_heads_of_width_one_each_attend_along_their_own_coordinate() {
    // d_model = 2, h = 2, d_k = d_v = 1, identity input projections: head 1 sees coordinate 1,
    // head 2 coordinate 2. Query (1, 1) against keys (ln 3, 0) and (0, ln 3):
    //   head 1 scores (ln 3, 0) -> weights (3/4, 1/4); head 2 scores (0, ln 3) -> (1/4, 3/4).
    // Values (4, 0) and (8, 4): head 1 gives 3 + 2 = 5, head 2 gives 0 + 3 = 3.
    // W^O = [[1, 1], [0, 1]] maps the concatenation (5, 3) to (5, 8).
    let mha = MultiHeadAttention {
        h: 2,
        d_k: 1,
        d_v: 1,
        w_q: DMatrix::identity(2, 2),
        w_k: DMatrix::identity(2, 2),
        w_v: DMatrix::identity(2, 2),
        w_o: dmatrix![1.0, 1.0; 0.0, 1.0],
        b_q: None,
        b_k: None,
        b_v: None,
        b_o: None,
    };
    let out = mha.forward(
        &dmatrix![1.0, 1.0],
        &dmatrix![ln(3.0), 0.0; 0.0, ln(3.0)],
        &dmatrix![4.0, 0.0; 8.0, 4.0],
        None,
    );
    assert_relative_eq!(out.weights[0], dmatrix![0.75, 0.25], max_relative = 1e-15);
    assert_relative_eq!(out.weights[1], dmatrix![0.25, 0.75], max_relative = 1e-15);
    assert_relative_eq!(out.output, dmatrix![5.0, 8.0], max_relative = 1e-15);
}

// --- §3.1 and §3.3: LayerNorm, residual, FFN ----------------------------------------------

// verifies: eq:layer-norm (example)
#[test]
fn layer_norm_of_1_3_is_minus_1_1() {
    // mean 2, biased variance 1, so (1 - 2, 3 - 2) / 1.
    let norm = LayerNorm::new(2, 0.0);
    assert_relative_eq!(
        norm.forward(&dmatrix![1.0, 3.0]),
        dmatrix![-1.0, 1.0],
        max_relative = 1e-15
    );
    // Gain (2, 3) and bias (1, 1): (-2 + 1, 3 + 1).
    let scaled = LayerNorm {
        gain: RowDVector::from_row_slice(&[2.0, 3.0]),
        bias: RowDVector::from_row_slice(&[1.0, 1.0]),
        eps: 0.0,
    };
    assert_relative_eq!(
        scaled.forward(&dmatrix![1.0, 3.0]),
        dmatrix![-1.0, 4.0],
        max_relative = 1e-15
    );
}

// verifies: eq:layer-norm (example)
#[test]
fn layer_norm_uses_the_biased_variance_with_eps_inside_the_root() {
    // Row (0, 0, 0, 4): mean 1, deviations (-1, -1, -1, 3), biased variance 12 / 4 = 3.
    // With eps = 1: divide by sqrt(3 + 1) = 2. (The unbiased variance would give 4, and eps
    // outside the root sqrt(3) + 1: both differ.)
    let norm = LayerNorm::new(4, 1.0);
    let y = norm.forward(&dmatrix![0.0, 0.0, 0.0, 4.0]);
    assert_relative_eq!(y, dmatrix![-0.5, -0.5, -0.5, 1.5], max_relative = 1e-15);
}

// verifies: eq:sublayer (example)
#[test]
fn post_norm_normalises_the_sum_and_pre_norm_adds_to_the_input() {
    let x = dmatrix![1.0, 3.0];
    let norm = LayerNorm::new(2, 0.0);
    // Post: LayerNorm(x + f(x)) with f(x) = x: LayerNorm(2, 6) = (-1, 1).
    let post = residual(&x, &norm, NormPlacement::Post, |x| x.clone());
    assert_relative_eq!(post, dmatrix![-1.0, 1.0], max_relative = 1e-15);
    // Pre: x + f(LayerNorm(x)) = (1, 3) + (-1, 1) = (0, 4).
    let pre = residual(&x, &norm, NormPlacement::Pre, |x| x.clone());
    assert_abs_diff_eq!(pre, dmatrix![0.0, 4.0], epsilon = 1e-15);
}

// verifies: eq:ffn (example)
#[test]
fn ffn_with_weights_1_minus_1_and_1_1_is_the_absolute_value() {
    // max(0, x) + max(0, -x) = |x|, plus b_2 = 1/2.
    let ffn = FeedForward {
        w_1: dmatrix![1.0, -1.0],
        b_1: RowDVector::zeros(2),
        w_2: dmatrix![1.0; 1.0],
        b_2: RowDVector::from_element(1, 0.5),
    };
    let y = ffn.forward(&dmatrix![-2.0; 3.0; 0.0]);
    assert_eq!(y, dmatrix![2.5; 3.5; 0.5]); // small integers and halves: exact
}

// --- §3.4 embeddings and the generator ----------------------------------------------------

// verifies: eq:embedding (example)
#[test]
fn embedding_multiplies_the_row_by_sqrt_d_model() {
    // d_model = 4, sqrt(d_model) = 2.
    let e = Embedding {
        weight: dmatrix![1.0, 0.0, 0.0, 0.0; 0.0, 0.5, -0.5, 0.25],
    };
    let x = e.embed(&[1, 0, 1]);
    let want = dmatrix![0.0, 1.0, -1.0, 0.5; 2.0, 0.0, 0.0, 0.0; 0.0, 1.0, -1.0, 0.5];
    assert_eq!(x, want); // powers of two: exact
}

// verifies: eq:embedding, eq:generator (example)
#[test]
fn generator_of_logits_ln_1_and_ln_3_gives_log_quarters() {
    // A tiny model whose embedding matrix is set by hand: E = [[0, 0], [ln 3, 0]], so the
    // decoder output (1, 0) has logits y E^T = (0, ln 3) and log-probabilities
    // (ln 1/4, ln 3/4).
    let config = Config {
        n_layers: 1,
        d_model: 2,
        d_ff: 2,
        h: 1,
        d_k: 2,
        d_v: 2,
        ..Config::base()
    };
    let mut model = Transformer::<f64>::new(&config, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    model.embedding.weight = dmatrix![0.0, 0.0; ln(3.0), 0.0];
    let log_p = model.generator(&dmatrix![1.0, 0.0]);
    assert_relative_eq!(log_p, dmatrix![ln(0.25), ln(0.75)], max_relative = 1e-15);
}

// --- §3.5 positional encoding -------------------------------------------------------------

// verifies: eq:positional (example)
#[test]
fn positional_encoding_of_position_0_is_0_1_0_1() {
    let pe = sinusoidal::<f64>(1, 8);
    assert_eq!(pe, dmatrix![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]); // sin 0, cos 0: exact
}

// verifies: eq:positional (example)
#[test]
fn positional_encoding_of_position_100_at_width_4() {
    // Frequencies 1 and 1 / 10000^(2/4) = 1/100: position 100 has angles 100 and 1.
    let pe = sinusoidal::<f64>(101, 4);
    let want = dmatrix![100f64.sin(), 100f64.cos(), 1f64.sin(), 1f64.cos()];
    assert_abs_diff_eq!(pe.rows(100, 1).into_owned(), want, epsilon = 1e-14);
}

// --- §5.3 Eq. 3 and Adam ------------------------------------------------------------------

// verifies: eq:lrate (example)
#[test]
fn lrate_with_d_model_16_and_warmup_4_peaks_at_one_eighth() {
    // d_model^-0.5 = 1/4. Step 1: (1/4)(1 * 4^-1.5) = (1/4)(1/8) = 1/32. Step 4, the peak:
    // (1/4)(4^-0.5) = 1/8. Step 16: (1/4)(16^-0.5) = 1/16. Step 64: 1/32 again.
    assert_relative_eq!(lrate(16, 4, 1), 1.0 / 32.0, max_relative = 1e-15);
    assert_relative_eq!(lrate(16, 4, 2), 1.0 / 16.0, max_relative = 1e-15);
    assert_relative_eq!(lrate(16, 4, 4), 1.0 / 8.0, max_relative = 1e-15);
    assert_relative_eq!(lrate(16, 4, 16), 1.0 / 16.0, max_relative = 1e-15);
    assert_relative_eq!(lrate(16, 4, 64), 1.0 / 32.0, max_relative = 1e-15);
    assert_eq!(lrate(16, 4, 0), 0.0); // step 0: min(inf, 0), exactly 0
}

// verifies: eq:lrate (example)
#[test]
fn lrate_of_the_base_model_peaks_near_7e_minus_4_at_step_4000() {
    // (512 * 4000)^-0.5 = 1 / sqrt(2,048,000) = 1 / 1431.08...
    let peak = lrate(512, 4000, 4000);
    assert_relative_eq!(peak, 1.0 / 1431.083505, max_relative = 1e-9);
    assert!(lrate(512, 4000, 3999) < peak && lrate(512, 4000, 4001) < peak);
}

// verifies: eq:adam (example)
#[test]
fn first_adam_step_moves_by_the_learning_rate_whatever_the_gradient_size() {
    // After bias correction the first step is lr g / (|g| + eps): 0.01 against the sign.
    let mut theta = dmatrix![1.0, 1.0, 1.0];
    let g = dmatrix![3.0, -0.5, 0.0];
    let mut adam = Adam::<f64>::paper();
    adam.step(&mut [&mut theta], &[&g], 0.01);
    assert_abs_diff_eq!(theta, dmatrix![0.99, 1.01, 1.0], epsilon = 1e-10);
    assert_eq!(adam.t, 1);
}

// --- §5.4 label smoothing -----------------------------------------------------------------

// verifies: eq:label-smoothing (example)
#[test]
fn label_smoothing_of_0_1_over_5_classes() {
    // All classes: 0.1 / 5 = 0.02 each, the target 0.9 + 0.02 = 0.92.
    let all = smoothed_targets::<f64>(&[2], 5, 0.1, Spread::AllClasses);
    assert_abs_diff_eq!(all, dmatrix![0.02, 0.02, 0.92, 0.02, 0.02], epsilon = 1e-15);
    // Other classes: 0.1 / 4 = 0.025 each, the target 0.9.
    let other = smoothed_targets::<f64>(&[2], 5, 0.1, Spread::OtherClasses);
    assert_abs_diff_eq!(
        other,
        dmatrix![0.025, 0.025, 0.9, 0.025, 0.025],
        epsilon = 1e-15
    );
}

// verifies: eq:label-smoothing (example)
#[test]
fn smoothed_loss_of_a_uniform_prediction_over_4_classes_is_ln_4() {
    // Every column of log p is -ln 4 and every target row sums to 1.
    let log_p = DMatrix::from_element(3, 4, -ln(4.0));
    for spread in [Spread::AllClasses, Spread::OtherClasses] {
        let loss = label_smoothed_loss(&log_p, &[0, 3, 1], 0.1, spread);
        assert_relative_eq!(loss, ln(4.0), max_relative = 1e-15);
    }
}

// --- §6.2 Table 3: configurations and parameter counts ------------------------------------

/// Table 3 as printed, typed in from the paper: (row, N, d_model, d_ff, h, d_k, d_v, P_drop,
/// eps_ls, train steps, learned positions).
#[allow(clippy::type_complexity)]
const TABLE_3: [(
    &str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    f64,
    f64,
    usize,
    bool,
); 20] = [
    ("base", 6, 512, 2048, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("A1", 6, 512, 2048, 1, 512, 512, 0.1, 0.1, 100_000, false),
    ("A2", 6, 512, 2048, 4, 128, 128, 0.1, 0.1, 100_000, false),
    ("A3", 6, 512, 2048, 16, 32, 32, 0.1, 0.1, 100_000, false),
    ("A4", 6, 512, 2048, 32, 16, 16, 0.1, 0.1, 100_000, false),
    ("B1", 6, 512, 2048, 8, 16, 64, 0.1, 0.1, 100_000, false),
    ("B2", 6, 512, 2048, 8, 32, 64, 0.1, 0.1, 100_000, false),
    ("C1", 2, 512, 2048, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("C2", 4, 512, 2048, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("C3", 8, 512, 2048, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("C4", 6, 256, 2048, 8, 32, 32, 0.1, 0.1, 100_000, false),
    ("C5", 6, 1024, 2048, 8, 128, 128, 0.1, 0.1, 100_000, false),
    ("C6", 6, 512, 1024, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("C7", 6, 512, 4096, 8, 64, 64, 0.1, 0.1, 100_000, false),
    ("D1", 6, 512, 2048, 8, 64, 64, 0.0, 0.1, 100_000, false),
    ("D2", 6, 512, 2048, 8, 64, 64, 0.2, 0.1, 100_000, false),
    ("D3", 6, 512, 2048, 8, 64, 64, 0.1, 0.0, 100_000, false),
    ("D4", 6, 512, 2048, 8, 64, 64, 0.1, 0.2, 100_000, false),
    ("E", 6, 512, 2048, 8, 64, 64, 0.1, 0.1, 100_000, true),
    ("big", 6, 1024, 4096, 16, 64, 64, 0.3, 0.1, 300_000, false),
];

#[test]
fn every_table_3_row_is_constructible_validates_and_matches_the_paper() {
    assert_eq!(TABLE3_ROWS.len(), TABLE_3.len());
    for (name, n, d_model, d_ff, h, d_k, d_v, p_drop, eps_ls, steps, learned) in TABLE_3 {
        assert!(
            TABLE3_ROWS.contains(&name),
            "{name} missing from TABLE3_ROWS"
        );
        let c = Config::table3(name).unwrap_or_else(|e| panic!("row {name}: {e}"));
        c.validate()
            .unwrap_or_else(|e| panic!("row {name} does not validate: {e}"));
        let got = (
            c.n_layers,
            c.d_model,
            c.d_ff,
            c.h,
            c.d_k,
            c.d_v,
            c.train_steps,
        );
        assert_eq!(got, (n, d_model, d_ff, h, d_k, d_v, steps), "row {name}");
        assert_abs_diff_eq!(c.p_drop, p_drop, epsilon = 1e-15);
        assert_abs_diff_eq!(c.eps_ls, eps_ls, epsilon = 1e-15);
        let want_positional = if learned {
            Positional::Learned
        } else {
            Positional::Sinusoidal
        };
        assert_eq!(c.positional, want_positional, "row {name}");
        // The paper's model: post-norm, no projection biases, warm-up 4000 (§5.3).
        assert_eq!(c.placement, NormPlacement::Post, "row {name}");
        assert!(!c.attention_bias, "row {name}");
        assert_eq!(c.warmup_steps, 4000, "row {name}");
        assert!(
            Config::reported(name).is_some(),
            "row {name} has no reported numbers"
        );
    }
    assert_eq!(Config::table3("base").unwrap(), Config::base());
    assert_eq!(Config::table3("big").unwrap(), Config::big());
}

// The base row with attention biases against PyTorch's own count of nn.Transformer plus one
// embedding, minus its two final stack norms, is a golden fixture counted by PyTorch:
// fixtures/param_count-base.json (and -big.json), checked by tests/golden.rs.

#[test]
fn table_3_rows_that_keep_d_model_differ_from_base_by_the_papers_differences() {
    // Where d_model stays 512 the embedding cancels, and the difference from base is layers
    // and projections alone, which the paper's rounded counts (x 10^6, each +-0.5) pin to
    // within 1 million. (Rows changing d_model also change the embedding, whose size depends
    // on a vocabulary the paper does not give exactly.)
    let base = Config::base().param_counts(37000).total as f64 / 1e6;
    let base_reported = Config::reported("base").unwrap().params_millions.unwrap();
    for name in ["B1", "B2", "C1", "C2", "C3", "C6", "C7"] {
        let ours = Config::table3(name).unwrap().param_counts(37000).total as f64 / 1e6;
        let reported = Config::reported(name).unwrap().params_millions.unwrap();
        let (d_ours, d_paper) = (ours - base, reported - base_reported);
        assert!(
            (d_ours - d_paper).abs() <= 1.0,
            "row {name}: {d_ours:.2} M from base here, {d_paper} M in the paper"
        );
    }
}

#[test]
fn parameter_count_formula_equals_the_built_models_count() {
    // Small models of every kind: d_k != d_v, biases, pre-norm (final stack norms), learned
    // positions (a max_len x d_model table).
    let small = Config {
        n_layers: 2,
        d_model: 8,
        d_ff: 12,
        h: 2,
        d_k: 3,
        d_v: 4,
        max_len: 10,
        ..Config::base()
    };
    let configs = [
        small.clone(),
        Config {
            attention_bias: true,
            ..small.clone()
        },
        Config {
            placement: NormPlacement::Pre,
            ..small.clone()
        },
        Config {
            positional: Positional::Learned,
            ..small.clone()
        },
        Config {
            n_layers: 3,
            h: 4,
            d_k: 2,
            d_v: 2,
            attention_bias: true,
            placement: NormPlacement::Pre,
            positional: Positional::Learned,
            ..small.clone()
        },
    ];
    for (i, config) in configs.iter().enumerate() {
        for vocab in [1, 7, 50] {
            let model =
                Transformer::<f64>::new(config, vocab, &mut StdRng::seed_from_u64(0)).unwrap();
            assert_eq!(
                config.param_counts(vocab).total,
                model.num_params(),
                "config {i}, vocab {vocab}"
            );
            assert_eq!(
                aiayn::params::count(&model),
                model.num_params(),
                "config {i}, vocab {vocab}: the tensors listed for training"
            );
        }
    }
    // And by hand for the first: attention W^Q, W^K 2 x (8 x 2*3) = 96, W^V 8 x 2*4 = 64,
    // W^O 2*4 x 8 = 64, together 224; FFN 8*12 + 12 + 12*8 + 8 = 212; LayerNorm 2*8 = 16.
    // Encoder layer 224 + 212 + 2*16 = 468, decoder layer 2*224 + 212 + 3*16 = 708; two of
    // each: 2352; embedding 50 x 8 = 400.
    assert_eq!(small.param_counts(50).total, 2352 + 400);
}

/// The error's message, checked to contain every number it should carry.
fn message_of(c: &Config) -> String {
    c.validate().expect_err("should not validate").to_string()
}

#[test]
fn config_errors_carry_the_offending_numbers() {
    let msg = message_of(&Config {
        h: 6,
        d_v: 64,
        ..Config::base()
    });
    for part in ["h = 6", "d_v = 64", "384", "512"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }

    let msg = message_of(&Config {
        d_ff: 0,
        ..Config::base()
    });
    assert!(msg.contains("d_ff") && msg.contains('0'), "{msg:?}");

    let msg = message_of(&Config {
        p_drop: 1.5,
        ..Config::base()
    });
    assert!(msg.contains("p_drop") && msg.contains("1.5"), "{msg:?}");

    let msg = message_of(&Config {
        eps_ls: -0.25,
        ..Config::base()
    });
    assert!(msg.contains("eps_ls") && msg.contains("-0.25"), "{msg:?}");

    let msg = message_of(&Config {
        d_model: 7,
        h: 1,
        d_k: 7,
        d_v: 7,
        ..Config::base()
    });
    assert!(msg.contains('7') && msg.contains("even"), "{msg:?}");

    let msg = message_of(&Config {
        layer_norm_eps: 0.0,
        ..Config::base()
    });
    assert!(
        msg.contains("layer_norm_eps") && msg.contains('0'),
        "{msg:?}"
    );

    let msg = message_of(&Config {
        positional: Positional::Learned,
        max_len: 0,
        ..Config::base()
    });
    assert!(msg.contains("max_len"), "{msg:?}");

    let err = Config::table3("Z9").expect_err("no row Z9");
    let msg = err.to_string();
    assert!(
        msg.contains("Z9") && msg.contains("base") && msg.contains("big"),
        "{msg:?}"
    );
    assert!(matches!(err, ConfigError::UnknownRow { .. }));
}

#[test]
fn an_odd_d_model_is_fine_with_learned_positions() {
    // Only the sinusoids need sin/cos pairs.
    let c = Config {
        d_model: 7,
        h: 1,
        d_k: 7,
        d_v: 7,
        positional: Positional::Learned,
        ..Config::base()
    };
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn a_model_needs_a_vocabulary() {
    let err = Transformer::<f64>::new(&Config::base(), 0, &mut StdRng::seed_from_u64(0))
        .expect_err("vocab 0");
    assert!(err.to_string().contains("vocab"), "{err}");
}

#[test]
fn a_first_adam_step_with_a_gradient_of_size_eps_moves_half_the_learning_rate() {
    // Step 1: m_hat = g and v_hat = g^2, so the update is lr g / (|g| + eps); with g = eps it
    // is lr / 2. (eps subtracted instead would divide by zero.)
    let mut p = dmatrix![1.0];
    let g = dmatrix![1e-9];
    Adam::<f64>::paper().step(&mut [&mut p], &[&g], 0.5);
    assert_relative_eq!(p[(0, 0)], 1.0 - 0.25, max_relative = 1e-12);
}

#[test]
fn the_sample_variance_divides_by_n_minus_1() {
    // mean of (1, 2, 3, 6) is 3; squared deviations 4 + 1 + 0 + 9 = 14; 14 / 3.
    let (mean, variance) = aiayn::attention::sample_moments(&[1.0, 2.0, 3.0, 6.0]);
    assert_abs_diff_eq!(mean, 3.0, epsilon = 1e-15);
    assert_abs_diff_eq!(variance, 14.0 / 3.0, epsilon = 1e-15);
}

#[test]
fn the_vocabulary_ranges_reproduce_each_table3_count_and_nothing_beyond() {
    // For every row with a printed count, the first and last V of the range give totals that
    // round to the paper's millions, and the sizes just outside do not.
    let rounds = |c: &Config, v: usize, m: f64| (c.param_counts(v).total as f64 / 1e6).round() == m;
    let mut checked = 0;
    for name in TABLE3_ROWS {
        let Some(m) = Config::reported(name).and_then(|r| r.params_millions) else {
            continue;
        };
        let c = Config::table3(name).unwrap();
        let (lo, hi) = c
            .vocabularies_for(m)
            .expect("every printed count is reachable");
        assert!(
            rounds(&c, lo, m) && rounds(&c, hi, m),
            "{name}: {lo}..={hi}"
        );
        assert!(
            !rounds(&c, lo - 1, m) && !rounds(&c, hi + 1, m),
            "{name}: {lo}..={hi}"
        );
        checked += 1;
    }
    assert_eq!(checked, 11, "Table 3 prints 11 counts");
    // a count below what the model has without any embedding is out of reach
    assert_eq!(Config::base().vocabularies_for(40.0), None);
}

#[test]
fn the_vocabulary_ranges_agree_with_rounding_done_in_integers() {
    // Against the rule itself, in exact integer arithmetic: a total t rounds to m million
    // (halves up) when (2m - 1) 500,000 <= t < (2m + 1) 500,000. With d_ff = 4 d_model every
    // count but the embedding is a multiple of d_model, and for d_model = 8, 16 or 32 so is
    // (2m + 1) 500,000: the upper end then falls exactly on a vocabulary size, whose total is
    // a half and rounds up, out of the range.
    let rounds_to = |t: usize, m: usize| (2 * m - 1) * 500_000 <= t && t < (2 * m + 1) * 500_000;
    let (mut ranges, mut exact_upper_ends, mut none) = (0, 0, 0);
    for d_model in [8, 16, 32, 64, 512] {
        for n_layers in 1..=3 {
            let c = Config {
                n_layers,
                d_model,
                d_ff: 4 * d_model,
                h: 1,
                d_k: d_model,
                d_v: d_model,
                ..Config::base()
            };
            let fixed = c.param_counts(0).total;
            for m in 1..=40usize {
                let total = |v: usize| c.param_counts(v).total;
                match c.vocabularies_for(m as f64) {
                    Some((lo, hi)) => {
                        ranges += 1;
                        assert!(lo >= 1 && lo <= hi, "{d_model}/{n_layers}/{m}: {lo}..={hi}");
                        assert!(rounds_to(total(lo), m) && rounds_to(total(hi), m));
                        assert!(lo == 1 || !rounds_to(total(lo - 1), m), "{lo}");
                        assert!(!rounds_to(total(hi + 1), m), "{hi}");
                        if total(hi + 1) == (2 * m + 1) * 500_000 {
                            exact_upper_ends += 1;
                        }
                    }
                    None => {
                        none += 1;
                        // no V >= 1 fits: either even V = 1 is past m, or the step d_model
                        // jumps over the whole interval
                        let first_at_or_above = (((2 * m - 1) * 500_000).saturating_sub(fixed))
                            .div_ceil(d_model)
                            .max(1);
                        assert!(
                            !rounds_to(total(first_at_or_above), m),
                            "{d_model}/{n_layers}/{m}: V = {first_at_or_above} fits"
                        );
                    }
                }
            }
        }
    }
    assert!(ranges > 100 && none > 0, "{ranges} ranges, {none} empty");
    assert!(exact_upper_ends > 20, "{exact_upper_ends}");
}

#[test]
fn the_reported_numbers_are_table_3_as_printed() {
    // (row, PPL, BLEU, params in millions): Table 3 of the paper, newstest2013.
    let table: [(&str, f64, f64, Option<f64>); 20] = [
        ("base", 4.92, 25.8, Some(65.0)),
        ("A1", 5.29, 24.9, None),
        ("A2", 5.00, 25.5, None),
        ("A3", 4.91, 25.8, None),
        ("A4", 5.01, 25.4, None),
        ("B1", 5.16, 25.1, Some(58.0)),
        ("B2", 5.01, 25.4, Some(60.0)),
        ("C1", 6.11, 23.7, Some(36.0)),
        ("C2", 5.19, 25.3, Some(50.0)),
        ("C3", 4.88, 25.5, Some(80.0)),
        ("C4", 5.75, 24.5, Some(28.0)),
        ("C5", 4.66, 26.0, Some(168.0)),
        ("C6", 5.12, 25.4, Some(53.0)),
        ("C7", 4.75, 26.2, Some(90.0)),
        ("D1", 5.77, 24.6, None),
        ("D2", 4.95, 25.5, None),
        ("D3", 4.67, 25.3, None),
        ("D4", 5.47, 25.7, None),
        ("E", 4.92, 25.7, None),
        ("big", 4.33, 26.4, Some(213.0)),
    ];
    for (name, ppl, bleu, params) in table {
        let r = Config::reported(name).unwrap_or_else(|| panic!("{name}"));
        assert_abs_diff_eq!(r.ppl, ppl, epsilon = 1e-12);
        assert_abs_diff_eq!(r.bleu, bleu, epsilon = 1e-12);
        assert_eq!(r.params_millions.is_some(), params.is_some(), "{name}");
        if let (Some(got), Some(want)) = (r.params_millions, params) {
            assert_abs_diff_eq!(got, want, epsilon = 1e-12);
        }
    }
}
