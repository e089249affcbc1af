//! The decoder (§3.1): a stack of N = 6 identical layers, each with three sub-layers.
//!
//! ```text
//! a = LayerNorm(y + MultiHead(y, y, y))              masked: position i sees 0..=i only
//! b = LayerNorm(a + MultiHead(a, memory, memory))    encoder-decoder ("cross") attention
//! c = LayerNorm(b + FFN(b))
//! ```
//!
//! The causal mask on the first sub-layer, with the outputs shifted right by one position,
//! makes the prediction for position i depend only on the known outputs before it. In the
//! second sub-layer the queries come from the decoder and the keys and values from the encoder
//! output (`memory`), so every target position can look at the whole source sentence.

use nalgebra::{DMatrix, RealField};
use rand::Rng;

use crate::encoder::LayerSizes;
use crate::feed_forward::FeedForward;
use crate::layer_norm::LayerNorm;
use crate::mask::Mask;
use crate::multi_head::MultiHeadAttention;
use crate::sublayer::{residual, NormPlacement};

/// One decoder layer.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderLayer<T: RealField> {
    pub self_attn: MultiHeadAttention<T>,
    pub cross_attn: MultiHeadAttention<T>,
    pub ffn: FeedForward<T>,
    /// After masked self-attention.
    pub norm_1: LayerNorm<T>,
    /// After encoder-decoder attention.
    pub norm_2: LayerNorm<T>,
    /// After the feed-forward network.
    pub norm_3: LayerNorm<T>,
    pub placement: NormPlacement,
}

impl<T: RealField + Copy> DecoderLayer<T> {
    /// A randomly initialised layer.
    pub fn new(s: &LayerSizes, rng: &mut impl Rng) -> Self {
        DecoderLayer {
            self_attn: MultiHeadAttention::new(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, rng),
            cross_attn: MultiHeadAttention::new(
                s.d_model,
                s.h,
                s.d_k,
                s.d_v,
                s.attention_bias,
                rng,
            ),
            ffn: FeedForward::new(s.d_model, s.d_ff, rng),
            norm_1: LayerNorm::new(s.d_model, s.layer_norm_eps),
            norm_2: LayerNorm::new(s.d_model, s.layer_norm_eps),
            norm_3: LayerNorm::new(s.d_model, s.layer_norm_eps),
            placement: s.placement,
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.self_attn.num_params()
            + self.cross_attn.num_params()
            + self.ffn.num_params()
            + self.norm_1.num_params()
            + self.norm_2.num_params()
            + self.norm_3.num_params()
    }

    // ANCHOR: decoder_layer
    /// One decoder layer.
    ///
    /// # Shapes
    /// `y`: (n_t, d_model), `memory`: (n_s, d_model), `self_mask`: (n_t, n_t) (normally
    /// [`Mask::causal`]), `memory_mask`: (n_t, n_s) (the source padding) -> (n_t, d_model).
    pub fn forward(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_mask: Option<&Mask>,
        memory_mask: Option<&Mask>,
    ) -> DMatrix<T> {
        let a = residual(y, &self.norm_1, self.placement, |y| {
            self.self_attn.forward(y, y, y, self_mask).output
        });
        let b = residual(&a, &self.norm_2, self.placement, |a| {
            self.cross_attn
                .forward(a, memory, memory, memory_mask)
                .output
        });
        residual(&b, &self.norm_3, self.placement, |b| self.ffn.forward(b))
    }
    // ANCHOR_END: decoder_layer
}

/// The decoder stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoder<T: RealField> {
    pub layers: Vec<DecoderLayer<T>>,
    /// A LayerNorm after the last layer; `None` in the paper's post-norm model.
    // DEVIATION(§3.1): as for the encoder, for pre-norm and for PyTorch's `nn.Transformer`.
    pub final_norm: Option<LayerNorm<T>>,
}

impl<T: RealField + Copy> Decoder<T> {
    /// N randomly initialised layers; a final norm only for pre-norm.
    pub fn new(n_layers: usize, s: &LayerSizes, rng: &mut impl Rng) -> Self {
        Decoder {
            layers: (0..n_layers).map(|_| DecoderLayer::new(s, rng)).collect(),
            final_norm: (s.placement == NormPlacement::Pre)
                .then(|| LayerNorm::new(s.d_model, s.layer_norm_eps)),
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.num_params()).sum::<usize>()
            + self.final_norm.as_ref().map_or(0, |n| n.num_params())
    }

    /// The whole stack.
    ///
    /// # Shapes
    /// As [`DecoderLayer::forward`].
    pub fn forward(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_mask: Option<&Mask>,
        memory_mask: Option<&Mask>,
    ) -> DMatrix<T> {
        let mut y = y.clone();
        for layer in &self.layers {
            y = layer.forward(&y, memory, self_mask, memory_mask);
        }
        if let Some(norm) = &self.final_norm {
            y = norm.forward(&y);
        }
        y
    }
}
