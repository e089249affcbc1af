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

use crate::dropout::Dropout;
use crate::feed_forward::{FeedForward, FeedForwardCache};
use crate::layer_norm::{LayerNorm, LayerNormCache};
use crate::mask::Mask;
use crate::multi_head::{MultiHeadAttention, MultiHeadCache};
use crate::params::{prefixed, prefixed_mut, Param, ParamMut, Parameters};
use crate::sublayer::{residual, residual_backward, residual_train, NormPlacement, ResidualCache};

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

    /// One encoder layer for training, over B sequences stacked row-wise, each with its own
    /// (padding) mask: dropout after each sub-layer, and a cache for [`EncoderLayer::backward`].
    ///
    /// # Shapes
    /// `x`: (B n, d_model), `masks`: B masks (n, n) -> (B n, d_model).
    pub fn forward_train(
        &self,
        x: &DMatrix<T>,
        masks: &[Mask],
        dropout: &mut Dropout,
    ) -> (DMatrix<T>, EncoderLayerCache<T>) {
        let (z, self_attn) = residual_train(x, &self.norm_1, self.placement, dropout, |x| {
            let (attn, cache) = self.self_attn.forward_train(x, x, x, masks);
            (attn.output, cache)
        });
        let (y, ffn) = residual_train(&z, &self.norm_2, self.placement, dropout, |z| {
            self.ffn.forward_train(z)
        });
        (y, EncoderLayerCache { self_attn, ffn })
    }

    // ANCHOR: encoder_layer_backward
    /// The backward pass of one encoder layer: the FFN sub-layer, then self-attention, whose
    /// input x was query, key and value at once, so its gradient is the sum of the three.
    ///
    /// # Shapes
    /// `d_y`: (n, d_model) -> dL/dx (n, d_model), and the layer's parameter gradients.
    pub fn backward(
        &self,
        cache: &EncoderLayerCache<T>,
        d_y: &DMatrix<T>,
    ) -> (DMatrix<T>, EncoderLayer<T>) {
        let (d_z, ffn, norm_2) =
            residual_backward(&cache.ffn, &self.norm_2, self.placement, d_y, |c, d| {
                self.ffn.backward(c, d)
            });
        let (d_x, self_attn, norm_1) = residual_backward(
            &cache.self_attn,
            &self.norm_1,
            self.placement,
            &d_z,
            |c, d| {
                let g = self.self_attn.backward(c, d);
                (g.d_query + g.d_key + g.d_value, g.params) // x fed all three
            },
        );
        let grads = EncoderLayer {
            self_attn,
            ffn,
            norm_1,
            norm_2,
            placement: self.placement,
        };
        (d_x, grads)
    }
    // ANCHOR_END: encoder_layer_backward
}

/// What [`EncoderLayer::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct EncoderLayerCache<T: RealField> {
    pub self_attn: ResidualCache<T, MultiHeadCache<T>>,
    pub ffn: ResidualCache<T, FeedForwardCache<T>>,
}

impl<T: RealField + Copy> Parameters<T> for EncoderLayer<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        prefixed("self_attn", self.self_attn.params())
            .chain(prefixed("ffn", self.ffn.params()))
            .chain(prefixed("norm1", self.norm_1.params()))
            .chain(prefixed("norm2", self.norm_2.params()))
            .collect()
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        prefixed_mut("self_attn", self.self_attn.params_mut())
            .chain(prefixed_mut("ffn", self.ffn.params_mut()))
            .chain(prefixed_mut("norm1", self.norm_1.params_mut()))
            .chain(prefixed_mut("norm2", self.norm_2.params_mut()))
            .collect()
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

    /// The whole stack for training, over B sequences stacked row-wise.
    ///
    /// # Shapes
    /// `x`: (B n, d_model), `masks`: B masks (n, n) -> (B n, d_model).
    pub fn forward_train(
        &self,
        x: &DMatrix<T>,
        masks: &[Mask],
        dropout: &mut Dropout,
    ) -> (DMatrix<T>, StackCache<EncoderLayerCache<T>, T>) {
        let mut x = x.clone();
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, cache) = layer.forward_train(&x, masks, dropout);
            x = y;
            layers.push(cache);
        }
        let mut final_norm = None;
        if let Some(norm) = &self.final_norm {
            let (y, cache) = norm.forward_train(&x);
            x = y;
            final_norm = Some(cache);
        }
        (x, StackCache { layers, final_norm })
    }

    /// The backward pass of the stack: the final norm, then the layers from last to first.
    pub fn backward(
        &self,
        cache: &StackCache<EncoderLayerCache<T>, T>,
        d_y: &DMatrix<T>,
    ) -> (DMatrix<T>, Encoder<T>) {
        let (mut d_x, final_norm) = final_norm_backward(&self.final_norm, &cache.final_norm, d_y);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (layer, c) in self.layers.iter().zip(&cache.layers).rev() {
            let (d, g) = layer.backward(c, &d_x);
            d_x = d;
            layers.push(g);
        }
        layers.reverse();
        (d_x, Encoder { layers, final_norm })
    }
}

/// What a stack's backward pass needs: each layer's cache and the final norm's.
#[derive(Clone, Debug)]
pub struct StackCache<C, T: RealField> {
    pub layers: Vec<C>,
    pub final_norm: Option<LayerNormCache<T>>,
}

/// The backward pass of a stack's optional final LayerNorm (the identity when absent).
pub(crate) fn final_norm_backward<T: RealField + Copy>(
    norm: &Option<LayerNorm<T>>,
    cache: &Option<LayerNormCache<T>>,
    d_y: &DMatrix<T>,
) -> (DMatrix<T>, Option<LayerNorm<T>>) {
    match (norm, cache) {
        (Some(norm), Some(cache)) => {
            let (d_x, g) = norm.backward(cache, d_y);
            (d_x, Some(g))
        }
        _ => (d_y.clone(), None),
    }
}

/// The parameters of a stack: `layers.{i}.*`, then `norm.*` when there is a final norm.
pub(crate) fn stack_params<'a, T: RealField + Copy, L: Parameters<T>>(
    layers: &'a [L],
    final_norm: &'a Option<LayerNorm<T>>,
) -> Vec<Param<'a, T>> {
    let mut list: Vec<Param<'a, T>> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        list.extend(prefixed(&format!("layers.{i}"), layer.params()));
    }
    if let Some(norm) = final_norm {
        list.extend(prefixed("norm", norm.params()));
    }
    list
}

/// The writable parameters of a stack, in the order of [`stack_params`].
pub(crate) fn stack_params_mut<'a, T: RealField + Copy, L: Parameters<T>>(
    layers: &'a mut [L],
    final_norm: &'a mut Option<LayerNorm<T>>,
) -> Vec<ParamMut<'a, T>> {
    let mut list: Vec<ParamMut<'a, T>> = Vec::new();
    for (i, layer) in layers.iter_mut().enumerate() {
        list.extend(prefixed_mut(&format!("layers.{i}"), layer.params_mut()));
    }
    if let Some(norm) = final_norm {
        list.extend(prefixed_mut("norm", norm.params_mut()));
    }
    list
}

impl<T: RealField + Copy> Parameters<T> for Encoder<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        stack_params(&self.layers, &self.final_norm)
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        stack_params_mut(&mut self.layers, &mut self.final_norm)
    }
}
