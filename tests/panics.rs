//! Misuse of the library panics with a message that names the shapes involved (each function's
//! `# Panics` section), rather than with an index error from deep inside a matrix product.

use aiayn::attention::scaled_dot_product_attention;
use aiayn::embedding::Embedding;
use aiayn::fast::{
    multi_head_forward_fast, multi_head_output_fast, scaled_dot_product_attention_fast,
};
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::positional::PositionalEncoding;
use aiayn::train::adam::Adam;
use aiayn::train::label_smoothing::{label_smoothed_loss, smoothed_targets, Spread};
use nalgebra::DMatrix;
use rand::{rngs::StdRng, SeedableRng};

fn zeros(r: usize, c: usize) -> DMatrix<f64> {
    DMatrix::zeros(r, c)
}

#[test]
#[should_panic(expected = "attention: queries have d_k = 3 but keys have d_k = 4")]
fn attention_names_mismatched_key_widths() {
    scaled_dot_product_attention(&zeros(2, 3), &zeros(5, 4), &zeros(5, 6), None);
}

#[test]
#[should_panic(expected = "attention: 5 keys but 4 values; each key needs one value")]
fn attention_names_mismatched_key_and_value_counts() {
    scaled_dot_product_attention(&zeros(2, 4), &zeros(5, 4), &zeros(4, 6), None);
}

#[test]
#[should_panic(expected = "mask of shape (2, 3) does not fit scores of shape (2, 5)")]
fn attention_names_a_mask_of_the_wrong_shape() {
    let mask = Mask::full(2, 3);
    scaled_dot_product_attention(&zeros(2, 4), &zeros(5, 4), &zeros(5, 6), Some(&mask));
}

#[test]
#[should_panic(expected = "cannot combine a (3, 3) mask with a (3, 4) mask")]
fn masks_of_different_shapes_do_not_combine() {
    Mask::causal(3).and(&Mask::padding(3, &[false, false, false, true]));
}

#[test]
#[should_panic(expected = "causal_suffix: 5 queries cannot be the last positions of 4 keys")]
fn a_causal_suffix_longer_than_the_keys_is_refused() {
    Mask::causal_suffix(5, 4);
}

fn mha() -> MultiHeadAttention<f64> {
    MultiHeadAttention::new(8, 2, 4, 4, false, &mut StdRng::seed_from_u64(1))
}

#[test]
#[should_panic(expected = "multi-head attention: key is 6 wide but d_model = 8")]
fn multi_head_names_the_input_of_the_wrong_width() {
    mha().forward(&zeros(3, 8), &zeros(4, 6), &zeros(4, 8), None);
}

#[test]
#[should_panic(expected = "multi-head attention: 4 keys but 5 values")]
fn multi_head_names_mismatched_key_and_value_counts() {
    mha().forward(&zeros(3, 8), &zeros(4, 8), &zeros(5, 8), None);
}

#[test]
#[should_panic(expected = "feed-forward: input is 5 wide but d_model = 8")]
fn feed_forward_names_the_width() {
    FeedForward::<f64>::new(8, 16, &mut StdRng::seed_from_u64(1)).forward(&zeros(2, 5));
}

#[test]
#[should_panic(expected = "layer norm: input is 5 wide but d_model = 8")]
fn layer_norm_names_the_width() {
    LayerNorm::<f64>::new(8, 1e-6).forward(&zeros(2, 5));
}

#[test]
#[should_panic(expected = "token id 11 at position 1 is outside the vocabulary of 11")]
fn embedding_names_the_token_outside_the_vocabulary() {
    Embedding::<f64>::new(11, 4, &mut StdRng::seed_from_u64(1)).embed(&[3, 11]);
}

#[test]
#[should_panic(expected = "learned positional embeddings cover 4 positions; asked for 5")]
fn learned_positions_do_not_extrapolate() {
    PositionalEncoding::Learned { table: zeros(4, 6) }.encode(5);
}

#[test]
#[should_panic(expected = "adam: 2 parameters but 1 gradients")]
fn adam_names_mismatched_counts() {
    let (mut a, mut b, g) = (zeros(2, 2), zeros(2, 2), zeros(2, 2));
    Adam::<f64>::paper().step(&mut [&mut a, &mut b], &[&g], 0.1);
}

#[test]
#[should_panic(expected = "adam: parameter 0 is (2, 2) but its gradient is (2, 3)")]
fn adam_names_a_gradient_of_the_wrong_shape() {
    let (mut a, g) = (zeros(2, 2), zeros(2, 3));
    Adam::<f64>::paper().step(&mut [&mut a], &[&g], 0.1);
}

#[test]
#[should_panic(expected = "adam: the number of parameters changed between steps")]
fn adam_refuses_a_changing_parameter_list() {
    let (mut a, mut b, g) = (zeros(2, 2), zeros(2, 2), zeros(2, 2));
    let mut adam = Adam::<f64>::paper();
    adam.step(&mut [&mut a], &[&g], 0.1);
    adam.step(&mut [&mut a, &mut b], &[&g, &g], 0.1);
}

#[test]
#[should_panic(expected = "target 7 at position 0 is outside the vocabulary of 5")]
fn label_smoothing_names_the_target_outside_the_vocabulary() {
    smoothed_targets::<f64>(&[7], 5, 0.1, Spread::AllClasses);
}

#[test]
#[should_panic(expected = "label smoothing over the other classes needs vocab >= 2, got 1")]
fn smoothing_over_other_classes_needs_two_classes() {
    smoothed_targets::<f64>(&[0], 1, 0.1, Spread::OtherClasses);
}

#[test]
#[should_panic(expected = "loss: 2 rows of log-probabilities but 3 targets")]
fn the_loss_names_mismatched_counts() {
    label_smoothed_loss(&zeros(2, 5), &[0, 1, 2], 0.1, Spread::AllClasses);
}

// The fast path (`aiayn::fast`) checks the same shapes.

#[test]
#[should_panic(expected = "attention: q is (2, 3), k is (5, 4), v is (5, 6)")]
fn fast_attention_names_keys_wider_than_the_queries() {
    scaled_dot_product_attention_fast(&zeros(2, 3), &zeros(5, 4), &zeros(5, 6), None);
}

#[test]
#[should_panic(expected = "attention: q is (2, 4), k is (5, 4), v is (4, 6)")]
fn fast_attention_names_fewer_values_than_keys() {
    scaled_dot_product_attention_fast(&zeros(2, 4), &zeros(5, 4), &zeros(4, 6), None);
}

#[test]
#[should_panic(expected = "mask does not fit the scores")]
fn fast_attention_refuses_a_mask_of_the_wrong_shape() {
    let mask = Mask::full(2, 3);
    scaled_dot_product_attention_fast(&zeros(2, 4), &zeros(5, 4), &zeros(5, 6), Some(&mask));
}

#[test]
#[should_panic(expected = "mask does not fit the scores")]
fn fast_multi_head_refuses_a_mask_of_the_wrong_shape() {
    let mask = Mask::causal(3);
    multi_head_output_fast(
        &mha(),
        &zeros(3, 8),
        &zeros(4, 8),
        &zeros(4, 8),
        Some(&mask),
        1,
    );
}

#[test]
#[should_panic(expected = "multi-head attention: query is (3, 8), key (4, 8), value (5, 8)")]
fn fast_multi_head_names_a_value_longer_than_the_key() {
    multi_head_forward_fast(&mha(), &zeros(3, 8), &zeros(4, 8), &zeros(5, 8), None, 1);
}

#[test]
#[should_panic(expected = "multi-head attention: query is (3, 8), key (4, 6), value (4, 8)")]
fn fast_multi_head_names_a_key_of_the_wrong_width() {
    multi_head_forward_fast(&mha(), &zeros(3, 8), &zeros(4, 6), &zeros(4, 8), None, 1);
}
