//! The encoder (§3.1): a stack of N = 6 identical layers, each with two sub-layers.
//!
//! ```text
//! z = LayerNorm(x + MultiHead(x, x, x))      self-attention: every position sees every other
//! y = LayerNorm(z + FFN(z))                  the position-wise feed-forward network
//! ```
//!
//! The only mask the encoder needs is the padding mask of its own input.

use nalgebra::{DMatrix, RealField};
use rand::Rng;

use crate::feed_forward::FeedForward;
use crate::layer_norm::LayerNorm;
use crate::mask::Mask;
use crate::multi_head::MultiHeadAttention;
use crate::sublayer::{residual, NormPlacement};

/// One encoder layer.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderLayer<T: RealField> {
    pub self_attn: MultiHeadAttention<T>,
    pub ffn: FeedForward<T>,
    /// After self-attention.
    pub norm_1: LayerNorm<T>,
    /// After the feed-forward network.
    pub norm_2: LayerNorm<T>,
    pub placement: NormPlacement,
}

/// Sizes of one layer, shared by encoder and decoder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSizes {
    pub d_model: usize,
    pub h: usize,
    pub d_k: usize,
    pub d_v: usize,
    pub d_ff: usize,
    pub attention_bias: bool,
    pub layer_norm_eps: f64,
    pub placement: NormPlacement,
}

impl<T: RealField + Copy> EncoderLayer<T> {
    /// A randomly initialised layer.
    pub fn new(s: &LayerSizes, rng: &mut impl Rng) -> Self {
        EncoderLayer {
            self_attn: MultiHeadAttention::new(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, rng),
            ffn: FeedForward::new(s.d_model, s.d_ff, rng),
            norm_1: LayerNorm::new(s.d_model, s.layer_norm_eps),
            norm_2: LayerNorm::new(s.d_model, s.layer_norm_eps),
            placement: s.placement,
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.self_attn.num_params()
            + self.ffn.num_params()
            + self.norm_1.num_params()
            + self.norm_2.num_params()
    }

    // ANCHOR: encoder_layer
    /// One encoder layer, also returning each head's self-attention weights.
    ///
    /// # Shapes
    /// `x`: (n, d_model), `mask`: (n, n) -> (n, d_model) and h matrices (n, n).
    pub fn forward_with_weights(
        &self,
        x: &DMatrix<T>,
        mask: Option<&Mask>,
    ) -> (DMatrix<T>, Vec<DMatrix<T>>) {
        let mut weights = Vec::new();
        let z = residual(x, &self.norm_1, self.placement, |x| {
            let attn = self.self_attn.forward(x, x, x, mask);
            weights = attn.weights;
            attn.output
        });
        let y = residual(&z, &self.norm_2, self.placement, |z| self.ffn.forward(z));
        (y, weights)
    }
    // ANCHOR_END: encoder_layer

    /// One encoder layer.
    pub fn forward(&self, x: &DMatrix<T>, mask: Option<&Mask>) -> DMatrix<T> {
        self.forward_with_weights(x, mask).0
    }
}

/// The encoder stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder<T: RealField> {
    pub layers: Vec<EncoderLayer<T>>,
    /// A LayerNorm after the last layer. `None` in the paper's post-norm model.
    // DEVIATION(§3.1): present for pre-norm stacks (which need it) and to match PyTorch's
    // `nn.Transformer`, which adds it even in post-norm mode.
    pub final_norm: Option<LayerNorm<T>>,
}

impl<T: RealField + Copy> Encoder<T> {
    /// N randomly initialised layers; a final norm only for pre-norm.
    pub fn new(n_layers: usize, s: &LayerSizes, rng: &mut impl Rng) -> Self {
        Encoder {
            layers: (0..n_layers).map(|_| EncoderLayer::new(s, rng)).collect(),
            final_norm: (s.placement == NormPlacement::Pre)
                .then(|| LayerNorm::new(s.d_model, s.layer_norm_eps)),
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.num_params()).sum::<usize>()
            + self.final_norm.as_ref().map_or(0, |n| n.num_params())
    }

    /// The whole stack, keeping every layer's per-head attention weights (appendix figures).
    ///
    /// # Shapes
    /// `x`: (n, d_model) -> (n, d_model), and N x h matrices (n, n).
    pub fn forward_with_weights(
        &self,
        x: &DMatrix<T>,
        mask: Option<&Mask>,
    ) -> (DMatrix<T>, Vec<Vec<DMatrix<T>>>) {
        let mut x = x.clone();
        let mut all = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, w) = layer.forward_with_weights(&x, mask);
            x = y;
            all.push(w);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x);
        }
        (x, all)
    }

    /// The whole stack.
    pub fn forward(&self, x: &DMatrix<T>, mask: Option<&Mask>) -> DMatrix<T> {
        self.forward_with_weights(x, mask).0
    }
}
