//! The layers, the stacks and the whole model (§3.1, §3.3, §3.4) on the fast path: the same
//! sub-layers in the same order as [`crate::encoder`], [`crate::decoder`] and
//! [`crate::model`], built from [`super::attention`] and [`super::kernels`].
//!
//! The feed-forward network adds its first bias and applies ReLU to each block of the hidden
//! layer as soon as the block is computed; every bias is the starting value of its product
//! rather than a pass of its own; the residual sum and LayerNorm run in place on the
//! sub-layer's output.

use nalgebra::{DMatrix, RealField};

use super::attention::multi_head_output_fast;
use super::kernels::{
    layer_norm_in_place, linear, log_softmax_rows_in_place, recycle, scratch, strided, transposed,
};
use crate::decoder::{Decoder, DecoderLayer};
use crate::encoder::{Encoder, EncoderLayer};
use crate::feed_forward::FeedForward;
use crate::layer_norm::LayerNorm;
use crate::mask::Mask;
use crate::model::Transformer;
use crate::sublayer::NormPlacement;

/// [`FeedForward::forward`] on the fast path.
///
/// # Shapes
/// `x`: (n, d_model) -> (n, d_model).
pub fn feed_forward_fast<T: RealField + Copy>(
    ffn: &FeedForward<T>,
    x: &DMatrix<T>,
    threads: usize,
) -> DMatrix<T> {
    let hidden = linear(x, strided(&ffn.w_1), Some(&ffn.b_1), true, threads); // (n, d_ff)
    let y = linear(&hidden, strided(&ffn.w_2), Some(&ffn.b_2), false, threads); // (n, d_model)
    recycle(hidden);
    y
}

/// [`crate::sublayer::residual`] on the fast path: post-norm LayerNorm(x + f(x)), or pre-norm
/// x + f(LayerNorm(x)), with the sum and the norm done in place.
fn residual_fast<T: RealField + Copy>(
    x: &DMatrix<T>,
    norm: &LayerNorm<T>,
    placement: NormPlacement,
    sublayer: impl FnOnce(&DMatrix<T>) -> DMatrix<T>,
) -> DMatrix<T> {
    match placement {
        NormPlacement::Post => {
            let mut y = sublayer(x);
            y += x;
            layer_norm_in_place(norm, &mut y);
            y
        }
        NormPlacement::Pre => {
            let mut x_norm = scratch(x.nrows(), x.ncols());
            x_norm.copy_from(x);
            layer_norm_in_place(norm, &mut x_norm);
            let mut y = sublayer(&x_norm);
            recycle(x_norm);
            y += x;
            y
        }
    }
}

/// [`EncoderLayer::forward`] on the fast path.
///
/// # Shapes
/// `x`: (n, d_model), `mask`: (n, n) -> (n, d_model).
pub fn encoder_layer_forward_fast<T: RealField + Copy>(
    layer: &EncoderLayer<T>,
    x: &DMatrix<T>,
    mask: Option<&Mask>,
    threads: usize,
) -> DMatrix<T> {
    let z = residual_fast(x, &layer.norm_1, layer.placement, |x| {
        multi_head_output_fast(&layer.self_attn, x, x, x, mask, threads)
    });
    let y = residual_fast(&z, &layer.norm_2, layer.placement, |z| {
        feed_forward_fast(&layer.ffn, z, threads)
    });
    recycle(z);
    y
}

/// [`DecoderLayer::forward`] on the fast path.
///
/// # Shapes
/// `y`: (n_t, d_model), `memory`: (n_s, d_model), `self_mask`: (n_t, n_t), `memory_mask`:
/// (n_t, n_s) -> (n_t, d_model).
pub fn decoder_layer_forward_fast<T: RealField + Copy>(
    layer: &DecoderLayer<T>,
    y: &DMatrix<T>,
    memory: &DMatrix<T>,
    self_mask: Option<&Mask>,
    memory_mask: Option<&Mask>,
    threads: usize,
) -> DMatrix<T> {
    let a = residual_fast(y, &layer.norm_1, layer.placement, |y| {
        multi_head_output_fast(&layer.self_attn, y, y, y, self_mask, threads)
    });
    let b = residual_fast(&a, &layer.norm_2, layer.placement, |a| {
        multi_head_output_fast(&layer.cross_attn, a, memory, memory, memory_mask, threads)
    });
    recycle(a);
    let c = residual_fast(&b, &layer.norm_3, layer.placement, |b| {
        feed_forward_fast(&layer.ffn, b, threads)
    });
    recycle(b);
    c
}

/// The stack's optional final LayerNorm, in place.
fn final_norm<T: RealField + Copy>(norm: &Option<LayerNorm<T>>, mut x: DMatrix<T>) -> DMatrix<T> {
    if let Some(norm) = norm {
        layer_norm_in_place(norm, &mut x);
    }
    x
}

/// [`Encoder::forward`] on the fast path.
///
/// # Shapes
/// `x`: (n, d_model), `mask`: (n, n) -> (n, d_model).
pub fn encoder_forward_fast<T: RealField + Copy>(
    encoder: &Encoder<T>,
    x: &DMatrix<T>,
    mask: Option<&Mask>,
    threads: usize,
) -> DMatrix<T> {
    let mut x = x.clone();
    for layer in &encoder.layers {
        let y = encoder_layer_forward_fast(layer, &x, mask, threads);
        recycle(std::mem::replace(&mut x, y));
    }
    final_norm(&encoder.final_norm, x)
}

/// [`Decoder::forward`] on the fast path.
///
/// # Shapes
/// As [`decoder_layer_forward_fast`].
pub fn decoder_forward_fast<T: RealField + Copy>(
    decoder: &Decoder<T>,
    y: &DMatrix<T>,
    memory: &DMatrix<T>,
    self_mask: Option<&Mask>,
    memory_mask: Option<&Mask>,
    threads: usize,
) -> DMatrix<T> {
    let mut y = y.clone();
    for layer in &decoder.layers {
        let out = decoder_layer_forward_fast(layer, &y, memory, self_mask, memory_mask, threads);
        recycle(std::mem::replace(&mut y, out));
    }
    final_norm(&decoder.final_norm, y)
}

/// [`Transformer::forward`] on the fast path: source and shifted target in, log-probabilities
/// of the next target tokens out. The generator's y E^T reads E's memory as E^T (no copy).
///
/// # Shapes
/// `src`: n_s ids, `tgt`: n_t ids, `src_padding`: n_s flags -> (n_t, vocab).
///
/// # Panics
/// As [`Transformer::forward`]: a token outside the vocabulary, or padding flags that do not
/// match the source.
pub fn transformer_forward_fast<T: RealField + Copy>(
    model: &Transformer<T>,
    src: &[usize],
    tgt: &[usize],
    src_padding: Option<&[bool]>,
    threads: usize,
) -> DMatrix<T> {
    let x = model.embedding.embed(src) + model.positional.encode(src.len()); // (n_s, d_model)
    let src_mask = src_padding.map(|pad| Mask::padding(src.len(), pad)); // (n_s, n_s)
    let memory = encoder_forward_fast(&model.encoder, &x, src_mask.as_ref(), threads);
    let y = model.embedding.embed(tgt) + model.positional.encode(tgt.len()); // (n_t, d_model)
    let causal = Mask::causal(tgt.len()); // (n_t, n_t)
    let memory_mask = src_padding.map(|pad| Mask::padding(tgt.len(), pad)); // (n_t, n_s)
    let y = decoder_forward_fast(
        &model.decoder,
        &y,
        &memory,
        Some(&causal),
        memory_mask.as_ref(),
        threads,
    );
    let e = &model.embedding.weight; // (vocab, d_model)
    let e_t = transposed(e.as_slice(), e.nrows(), e.ncols()); // (d_model, vocab)
    let mut logits = linear(&y, e_t, None, false, threads); // (n_t, vocab)
    recycle(y);
    recycle(memory);
    log_softmax_rows_in_place(&mut logits);
    logits
}
