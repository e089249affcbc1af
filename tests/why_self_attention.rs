//! §4 Table 1, measured on the layers of `aiayn::why_self_attention`.
//!
//! Each layer's whole-matrix forward pass equals its row-by-row definition; the exact
//! multiply-add counts equal what the measured dependency graph implies and never exceed the
//! paper's; and the sequential operations and maximum path lengths read off the graph built by
//! perturbing the real layers are Table 1's: 1 and 1 for self-attention, n and n for the
//! recurrent layer, 1 and O(n / k) for a contiguous convolution, 1 and O(n / r) for restricted self-attention.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/why_self_attention.txt";

use aiayn::why_self_attention::{
    dependencies, ops, path_lengths, reach, stack_path_lengths, Convolution, Reads, Recurrent,
    RestrictedSelfAttention, SelfAttention, SequenceLayer,
};
use approx::assert_abs_diff_eq;
use nalgebra::DMatrix;
use properties_support::{config, rng, uniform};
use proptest::prelude::*;

const DELTA: f64 = 0.5;

fn input(n: usize, d: usize, seed: u64) -> DMatrix<f64> {
    uniform(n, d, 1.0, &mut rng(seed))
}

/// The number of (output, input) pairs in which the output reads the input directly.
fn direct_reads(reads: &Reads) -> u64 {
    reads.inputs.iter().flatten().filter(|&&r| r).count() as u64
}

fn layers(
    d: usize,
    k: usize,
    dilation: usize,
    r: usize,
    seed: u64,
) -> Vec<Box<dyn SequenceLayer<f64>>> {
    let mut g = rng(seed);
    // `random` leaves the biases at zero; give them values, so that a bias added with the
    // wrong sign in either the row or the whole-matrix form shows.
    let mut recurrent = Recurrent::random(d, &mut g);
    recurrent.b = uniform(1, d, 1.0, &mut g);
    let mut convolution = Convolution::random(d, k, dilation, &mut g);
    convolution.b = uniform(1, d, 1.0, &mut g);
    vec![
        Box::new(SelfAttention),
        Box::new(recurrent),
        Box::new(convolution),
        Box::new(RestrictedSelfAttention { r }),
    ]
}

#[test]
fn each_layer_is_named_as_its_row_of_table_1() {
    // Table 1's rows: Self-Attention, Recurrent, Convolutional, Self-Attention (restricted).
    let names: Vec<&str> = layers(2, 3, 1, 3, 0).iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "self-attention",
            "recurrent",
            "convolutional",
            "self-attention (restricted)"
        ]
    );
}

#[test]
fn a_recurrent_step_adds_the_bias_inside_the_tanh() {
    // d = 1, W = 0.5, U = 0.25, b = -0.2: h_0 = tanh(0.5 x_0 - 0.2) and
    // h_1 = tanh(0.5 x_1 + 0.25 h_0 - 0.2), by hand.
    let layer = Recurrent {
        w: DMatrix::from_element(1, 1, 0.5),
        u: DMatrix::from_element(1, 1, 0.25),
        b: DMatrix::from_element(1, 1, -0.2),
    };
    let x = DMatrix::from_column_slice(2, 1, &[1.0, -2.0]);
    let h0 = (0.5f64 - 0.2).tanh();
    let h1 = (-1.0 + 0.25 * h0 - 0.2).tanh();
    let want = DMatrix::from_column_slice(2, 1, &[h0, h1]);
    assert_abs_diff_eq!(layer.forward(&x), want, epsilon = 1e-15);
    let mut by_rows = DMatrix::zeros(2, 1);
    for t in 0..2 {
        let row = layer.row(&x, &by_rows, t);
        by_rows.row_mut(t).copy_from(&row);
    }
    assert_abs_diff_eq!(by_rows, want, epsilon = 1e-15);
}

#[test]
fn path_lengths_stops_at_its_layer_limit() {
    // A contiguous convolution with k = 3 reaches one position further per layer, so joining
    // positions 0 and 8 of n = 9 takes 8 layers; capped lower, the stack stops at the cap,
    // not yet connected.
    let (n, d) = (9, 2);
    let x = input(n, d, 3);
    let conv = Convolution::random(d, 3, 1, &mut rng(3));
    let reads = dependencies(&conv, &x, DELTA);
    let free = path_lengths(&reads, 100);
    assert_eq!((free.layers, free.all_connected), (8, true));
    for cap in 1..=8 {
        let capped = path_lengths(&reads, cap);
        assert_eq!(capped.layers, cap);
        assert_eq!(capped.all_connected, cap == 8, "{cap} layers");
    }
}

#[test]
fn each_tap_of_a_random_convolution_has_its_own_weights() {
    // The k taps are the k consecutive (d, d) blocks of one Xavier draw of shape (k d, d).
    let conv: Convolution<f64> = Convolution::random(3, 4, 1, &mut rng(5));
    assert_eq!(conv.w.len(), 4);
    for a in 0..4 {
        assert_eq!(conv.w[a].shape(), (3, 3));
        for b in 0..a {
            assert_ne!(conv.w[a], conv.w[b], "taps {b} and {a}");
        }
    }
}

#[test]
fn an_even_kernel_reads_one_more_position_after_than_before() {
    // c = (k - 1) / 2 rounded down: k = 4 gives c = 1, so the taps sit at -1, 0, 1, 2 times
    // the dilation; k = 2 gives c = 0 (taps 0 and 1); odd k = 3 is centred (-1, 0, 1).
    let offsets = |k: usize, s: usize| -> Vec<isize> {
        let conv: Convolution<f64> = Convolution::random(1, k, s, &mut rng(0));
        (0..k).map(|j| conv.offset(j)).collect()
    };
    assert_eq!(offsets(4, 1), [-1, 0, 1, 2]);
    assert_eq!(offsets(4, 3), [-3, 0, 3, 6]);
    assert_eq!(offsets(2, 1), [0, 1]);
    assert_eq!(offsets(3, 2), [-2, 0, 2]);
    assert_eq!(offsets(1, 5), [0]);
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    fn forward_equals_the_row_by_row_definition(
        n in 1..=9usize, d in 1..=4usize, k in 1..=5usize, dilation in 1..=3usize,
        r in 1..=6usize, seed in 0..1000u64,
    ) {
        let x = input(n, d, seed);
        for layer in layers(d, k, dilation, r, seed) {
            let mut by_rows = DMatrix::zeros(n, d);
            for i in 0..n {
                let row = layer.row(&x, &by_rows, i);
                by_rows.row_mut(i).copy_from(&row);
            }
            assert_abs_diff_eq!(layer.forward(&x), by_rows, epsilon = 1e-12);
        }
    }

    #[test]
    fn restricted_attention_equals_full_attention_under_the_band_mask(
        n in 1..=10usize, d in 1..=4usize, r in 1..=7usize, seed in 0..1000u64,
    ) {
        let x = input(n, d, seed);
        let layer = RestrictedSelfAttention { r };
        assert_abs_diff_eq!(layer.forward(&x), layer.forward_masked(&x), epsilon = 1e-12);
        for i in 0..n {
            prop_assert!(layer.window(i, n).len() <= r);
            prop_assert!(layer.window(i, n).contains(&i));
        }
    }

    #[test]
    fn exact_counts_follow_the_measured_reads_and_never_exceed_the_papers(
        n in 1..=9usize, d in 1..=3usize, k in 1..=5usize, dilation in 1..=3usize,
        r in 1..=6usize, seed in 0..1000u64,
    ) {
        let x = input(n, d, seed);
        let (n64, d64) = (n as u64, d as u64);
        let conv = Convolution::random(d, k, dilation, &mut rng(seed));
        let conv_reads = direct_reads(&dependencies(&conv, &x, DELTA));
        // Each (output, input) read of a convolution is one (1, d) x (d, d) product.
        prop_assert_eq!(ops::exact_convolutional(n64, d64, k as u64, dilation as u64), conv_reads * d64 * d64);
        prop_assert!(ops::exact_convolutional(n64, d64, k as u64, dilation as u64) <= ops::paper_convolutional(n64, d64, k as u64));

        let restricted = RestrictedSelfAttention { r };
        let restricted_reads = direct_reads(&dependencies(&restricted, &x, DELTA));
        // Each (query, key) pair costs one score (d) and one weighted value (d).
        prop_assert_eq!(ops::exact_restricted(n64, d64, r as u64), 2 * d64 * restricted_reads);
        prop_assert!(ops::exact_restricted(n64, d64, r as u64) <= ops::paper_restricted(n64, d64, r as u64));

        let full_reads = direct_reads(&dependencies(&SelfAttention, &x, DELTA));
        prop_assert_eq!(ops::exact_self_attention(n64, d64), 2 * d64 * full_reads);
    }

    #[test]
    fn self_attention_connects_everything_in_one_step(n in 1..=10usize, d in 1..=4usize, seed in 0..1000u64) {
        let p = path_lengths(&dependencies(&SelfAttention, &input(n, d, seed), DELTA), 4 * n);
        prop_assert_eq!((p.sequential, p.layers, p.max_path, p.all_connected), (1, 1, 1, true));
    }

    #[test]
    fn a_recurrent_layer_takes_n_sequential_steps_and_paths_of_length_n(
        n in 1..=10usize, d in 1..=4usize, seed in 0..1000u64,
    ) {
        let layer = Recurrent::random(d, &mut rng(seed));
        let reads = dependencies(&layer, &input(n, d, seed), DELTA);
        let p = path_lengths(&reads, 4 * n);
        // One layer already connects every input to every output at or after it; no stack
        // connects an output to a later input.
        prop_assert_eq!((p.sequential, p.layers, p.max_path), (n, 1, n));
        prop_assert_eq!(p.all_connected, n == 1);
    }

    #[test]
    fn contiguous_convolutions_need_a_stack_of_order_n_over_k(
        n in 2..=12usize, d in 1..=3usize, k in 3..=6usize, seed in 0..1000u64,
    ) {
        let layer = Convolution::random(d, k, 1, &mut rng(seed));
        let p = path_lengths(&dependencies(&layer, &input(n, d, seed), DELTA), 4 * n);
        let expected = reach::convolution_layers(n, k);
        prop_assert_eq!((p.sequential, p.layers, p.max_path, p.all_connected), (1, expected, expected, true));
    }

    #[test]
    fn restricted_attention_needs_a_stack_of_order_n_over_r(
        n in 2..=12usize, d in 1..=3usize, r in 3..=6usize, seed in 0..1000u64,
    ) {
        let layer = RestrictedSelfAttention { r };
        let p = path_lengths(&dependencies(&layer, &input(n, d, seed), DELTA), 4 * n);
        let expected = reach::restricted_layers(n, r);
        prop_assert_eq!((p.sequential, p.layers, p.max_path, p.all_connected), (1, expected, expected, true));
    }
}

#[test]
fn composed_reads_match_a_real_stack_perturbed_end_to_end() {
    // A convolution (k = 3) under a restricted attention (r = 3), n = 7: composing the two
    // measured graphs must give exactly the pairs the real two-layer stack shows.
    let (n, d) = (7, 3);
    let x = input(n, d, 7);
    let conv = Convolution::random(d, 3, 1, &mut rng(1));
    let attn = RestrictedSelfAttention { r: 3 };
    let stack = |x: &DMatrix<f64>| attn.forward(&conv.forward(x));
    let base = stack(&x);
    let (c, a) = (
        dependencies(&conv, &x, DELTA),
        dependencies(&attn, &conv.forward(&x), DELTA),
    );
    for j in 0..n {
        let mut x2 = x.clone();
        x2.row_mut(j).add_scalar_mut(DELTA);
        let moved = stack(&x2);
        for i in 0..n {
            let measured = moved.row(i) != base.row(i);
            let composed = (0..n).any(|m| a.inputs[i][m] && c.inputs[m][j]);
            assert_eq!(measured, composed, "output {i}, input {j}");
        }
    }
    assert!(!stack_path_lengths(&[c.clone(), a.clone()]).all_connected);
    assert_eq!(stack_path_lengths(&[c, a]).max_path, 2);
}

#[test]
fn the_papers_counts_are_the_leading_terms_of_the_exact_ones() {
    // Table 1's example sizes: d = 512, k = 3, r = 33, long n.
    let (n, d) = (4096u64, 512u64);
    let ratio = |exact: u64, paper: u64| exact as f64 / paper as f64;
    assert_eq!(ops::exact_recurrent(n, d), 2 * n * d * d);
    assert_eq!(ops::exact_self_attention(n, d), 2 * n * n * d);
    assert_abs_diff_eq!(
        ratio(
            ops::exact_convolutional(n, d, 3, 1),
            ops::paper_convolutional(n, d, 3)
        ),
        1.0,
        epsilon = 1e-3
    );
    assert_abs_diff_eq!(
        ratio(
            ops::exact_restricted(n, d, 33),
            ops::paper_restricted(n, d, 33)
        ),
        1.0,
        epsilon = 1e-2
    );
    // Where attention's n^2 d meets recurrence's n d^2: n = d.
    assert_eq!(ops::paper_self_attention(d, d), ops::paper_recurrent(d, d));
    assert!(ops::paper_self_attention(d - 1, d) < ops::paper_recurrent(d - 1, d));
    assert!(ops::paper_self_attention(d + 1, d) > ops::paper_recurrent(d + 1, d));
}

#[test]
fn closed_form_reaches_on_small_cases() {
    // k = 3 reaches one position each way per layer: n - 1 layers.
    assert_eq!(reach::convolution_layers(10, 3), 9);
    // k = 5 reaches two: ceil(9 / 2) = 5.
    assert_eq!(reach::convolution_layers(10, 5), 5);
}
