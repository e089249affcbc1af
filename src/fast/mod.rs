//! Fast paths beside the plain code: the same arithmetic as [`crate::attention`],
//! [`crate::multi_head`], the layers, the stacks and [`crate::model::Transformer::forward`],
//! arranged for nalgebra's column-major storage and for several threads. The book shows the
//! plain code; property tests (`tests/properties_fast.rs`) hold each part here equal to its
//! plain counterpart, and the same, bit for bit, whatever the thread count.
//!
//! What is different:
//! - A `DMatrix` stores its columns one after the other, so a row is strided. The row-wise
//!   operations (softmax, log-softmax, LayerNorm) keep one accumulator per row and sweep down
//!   the columns, so every pass reads contiguous memory ([`kernels`]).
//! - No copies: a head reads its columns of Q, K and V in place, K^T is K's memory read with
//!   the strides swapped, the scale is the factor of the scores' product, the masks and the
//!   softmax work in place, biases are the starting values of their products.
//! - exp in f32 is a polynomial the compiler can vectorise ([`exp_f32`], error bounded and
//!   tested).
//! - Threads (`threads`, an argument, at least 1): the heads run in parallel, and so do fixed
//!   blocks of columns of every position-wise product. The blocks depend on the shapes only,
//!   so each output entry is computed by the same arithmetic for any thread count.

mod attention;
mod kernels;
mod layers;

pub use attention::{
    multi_head_forward_fast, multi_head_output_fast, scaled_dot_product_attention_fast,
};
pub use kernels::exp_f32;
pub use layers::{
    decoder_forward_fast, decoder_layer_forward_fast, encoder_forward_fast,
    encoder_layer_forward_fast, feed_forward_fast, transformer_forward_fast,
};
