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

use crate::dropout::Dropout;
use crate::encoder::{final_norm_backward, stack_params, stack_params_mut, LayerSizes, StackCache};
use crate::feed_forward::{FeedForward, FeedForwardCache};
use crate::layer_norm::LayerNorm;
use crate::mask::Mask;
use crate::multi_head::{KvCache, MultiHeadAttention, MultiHeadCache};
use crate::params::{prefixed, prefixed_mut, Param, ParamMut, Parameters};
use crate::sublayer::{residual, residual_backward, residual_train, NormPlacement, ResidualCache};

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

    /// [`DecoderLayer::forward`] for new positions only, with the keys and values of the
    /// earlier ones taken from `state` (incremental decoding, §6.1).
    ///
    /// The r new rows are positions m .. m + r, after the m positions `state` has seen. Their
    /// self-attention input is projected and appended to the self-attention cache, and they
    /// attend to all m + r cached positions under [`Mask::causal_suffix`]; encoder-decoder
    /// attention reads the memory's cached keys and values. Row i of the result equals row
    /// m + i of [`DecoderLayer::forward`] over all m + r positions with the causal mask.
    ///
    /// # Shapes
    /// `y`: (r, d_model), `memory_mask`: (r, n_s) -> (r, d_model); the self-attention cache
    /// grows from m to m + r rows.
    pub fn forward_step(
        &self,
        y: &DMatrix<T>,
        state: &mut DecoderLayerState<T>,
        memory_mask: Option<&Mask>,
    ) -> DMatrix<T> {
        let self_kv = &mut state.self_attn;
        let a = residual(y, &self.norm_1, self.placement, |y| {
            self.self_attn.extend_cache(self_kv, y); // (m + r, h d_k), (m + r, h d_v)
            let causal = Mask::causal_suffix(y.nrows(), self_kv.len()); // (r, m + r)
            self.self_attn.forward_cached(y, self_kv, Some(&causal))
        });
        let b = residual(&a, &self.norm_2, self.placement, |a| {
            self.cross_attn
                .forward_cached(a, &state.cross_attn, memory_mask)
        });
        residual(&b, &self.norm_3, self.placement, |b| {
            self.ffn.forward_step(b)
        })
    }

    /// [`DecoderLayer::forward`], also returning each head's attention weights: the masked
    /// self-attention's and the encoder-decoder attention's (the appendix's maps).
    ///
    /// # Shapes
    /// As [`DecoderLayer::forward`] -> (n_t, d_model), h matrices (n_t, n_t) of self-attention
    /// and h matrices (n_t, n_s) of encoder-decoder attention.
    pub fn forward_with_weights(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_mask: Option<&Mask>,
        memory_mask: Option<&Mask>,
    ) -> (DMatrix<T>, DecoderWeights<T>) {
        let mut weights = DecoderWeights {
            self_attn: Vec::new(),
            cross_attn: Vec::new(),
        };
        let a = residual(y, &self.norm_1, self.placement, |y| {
            let attn = self.self_attn.forward(y, y, y, self_mask);
            weights.self_attn = attn.weights;
            attn.output
        });
        let b = residual(&a, &self.norm_2, self.placement, |a| {
            let attn = self.cross_attn.forward(a, memory, memory, memory_mask);
            weights.cross_attn = attn.weights;
            attn.output
        });
        let c = residual(&b, &self.norm_3, self.placement, |b| self.ffn.forward(b));
        (c, weights)
    }

    /// One decoder layer for training, over B sequences stacked row-wise: dropout after each
    /// sub-layer, and a cache for [`DecoderLayer::backward`].
    ///
    /// # Shapes
    /// `y`: (B n_t, d_model), `memory`: (B n_s, d_model), `self_masks`: B masks (n_t, n_t)
    /// (normally causal), `memory_masks`: B masks (n_t, n_s) -> (B n_t, d_model).
    pub fn forward_train(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_masks: &[Mask],
        memory_masks: &[Mask],
        dropout: &mut Dropout,
    ) -> (DMatrix<T>, DecoderLayerCache<T>) {
        let (a, self_attn) = residual_train(y, &self.norm_1, self.placement, dropout, |y| {
            let (attn, cache) = self.self_attn.forward_train(y, y, y, self_masks);
            (attn.output, cache)
        });
        let (b, cross_attn) = residual_train(&a, &self.norm_2, self.placement, dropout, |a| {
            let (attn, cache) = self
                .cross_attn
                .forward_train(a, memory, memory, memory_masks);
            (attn.output, cache)
        });
        let (c, ffn) = residual_train(&b, &self.norm_3, self.placement, dropout, |b| {
            self.ffn.forward_train(b)
        });
        let cache = DecoderLayerCache {
            self_attn,
            cross_attn,
            ffn,
        };
        (c, cache)
    }

    // ANCHOR: decoder_layer_backward
    /// The backward pass of one decoder layer. The memory fed the keys and the values of
    /// encoder-decoder attention, so its gradient is d_key + d_value; the layer's input fed
    /// query, key and value of the masked self-attention.
    ///
    /// # Shapes
    /// `d_out`: (n_t, d_model) -> dL/dy (n_t, d_model), dL/dmemory (n_s, d_model), and the
    /// layer's parameter gradients.
    pub fn backward(
        &self,
        cache: &DecoderLayerCache<T>,
        d_out: &DMatrix<T>,
    ) -> (DMatrix<T>, DMatrix<T>, DecoderLayer<T>) {
        let (d_b, ffn, norm_3) =
            residual_backward(&cache.ffn, &self.norm_3, self.placement, d_out, |c, d| {
                self.ffn.backward(c, d)
            });
        let (d_a, (d_memory, cross_attn), norm_2) = residual_backward(
            &cache.cross_attn,
            &self.norm_2,
            self.placement,
            &d_b,
            |c, d| {
                let g = self.cross_attn.backward(c, d);
                (g.d_query, (g.d_key + g.d_value, g.params)) // memory fed keys and values
            },
        );
        let (d_y, self_attn, norm_1) = residual_backward(
            &cache.self_attn,
            &self.norm_1,
            self.placement,
            &d_a,
            |c, d| {
                let g = self.self_attn.backward(c, d);
                (g.d_query + g.d_key + g.d_value, g.params) // y fed all three
            },
        );
        let grads = DecoderLayer {
            self_attn,
            cross_attn,
            ffn,
            norm_1,
            norm_2,
            norm_3,
            placement: self.placement,
        };
        (d_y, d_memory, grads)
    }
    // ANCHOR_END: decoder_layer_backward
}

/// What one decoder layer keeps between decoding steps: the projected keys and values of its
/// self-attention (one row per position decoded so far) and of its encoder-decoder attention
/// (the memory's, computed once).
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderLayerState<T: RealField> {
    /// (m, h d_k) and (m, h d_v), m = positions decoded so far.
    pub self_attn: KvCache<T>,
    /// (n_s, h d_k) and (n_s, h d_v).
    pub cross_attn: KvCache<T>,
}

/// The attention weights of one decoder layer, one matrix per head.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderWeights<T: RealField> {
    /// Masked self-attention: h matrices (n_t, n_t), zero above the diagonal.
    pub self_attn: Vec<DMatrix<T>>,
    /// Encoder-decoder attention: h matrices (n_t, n_s), target positions over source words.
    pub cross_attn: Vec<DMatrix<T>>,
}

/// What [`DecoderLayer::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct DecoderLayerCache<T: RealField> {
    pub self_attn: ResidualCache<T, MultiHeadCache<T>>,
    pub cross_attn: ResidualCache<T, MultiHeadCache<T>>,
    pub ffn: ResidualCache<T, FeedForwardCache<T>>,
}

impl<T: RealField + Copy> Parameters<T> for DecoderLayer<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        prefixed("self_attn", self.self_attn.params())
            .chain(prefixed("cross_attn", self.cross_attn.params()))
            .chain(prefixed("ffn", self.ffn.params()))
            .chain(prefixed("norm1", self.norm_1.params()))
            .chain(prefixed("norm2", self.norm_2.params()))
            .chain(prefixed("norm3", self.norm_3.params()))
            .collect()
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        prefixed_mut("self_attn", self.self_attn.params_mut())
            .chain(prefixed_mut("cross_attn", self.cross_attn.params_mut()))
            .chain(prefixed_mut("ffn", self.ffn.params_mut()))
            .chain(prefixed_mut("norm1", self.norm_1.params_mut()))
            .chain(prefixed_mut("norm2", self.norm_2.params_mut()))
            .chain(prefixed_mut("norm3", self.norm_3.params_mut()))
            .collect()
    }
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
        self.forward_with_weights(y, memory, self_mask, memory_mask)
            .0
    }

    /// [`Decoder::forward`], also returning every layer's attention weights (appendix figures).
    ///
    /// # Shapes
    /// As [`DecoderLayer::forward`] -> (n_t, d_model), and N [`DecoderWeights`].
    pub fn forward_with_weights(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_mask: Option<&Mask>,
        memory_mask: Option<&Mask>,
    ) -> (DMatrix<T>, Vec<DecoderWeights<T>>) {
        let mut y = y.clone();
        let mut all = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, w) = layer.forward_with_weights(&y, memory, self_mask, memory_mask);
            y = out;
            all.push(w);
        }
        if let Some(norm) = &self.final_norm {
            y = norm.forward(&y);
        }
        (y, all)
    }
}

impl<T: RealField + Copy> Decoder<T> {
    /// Empty self-attention caches and the memory's keys and values, layer by layer, to start
    /// incremental decoding.
    ///
    /// # Shapes
    /// `memory`: (n_s, d_model) -> N layer states with 0 positions each.
    pub fn start(&self, memory: &DMatrix<T>) -> Vec<DecoderLayerState<T>> {
        self.layers
            .iter()
            .map(|layer| DecoderLayerState {
                self_attn: layer.self_attn.cache(&DMatrix::zeros(0, memory.ncols())),
                cross_attn: layer.cross_attn.cache(memory),
            })
            .collect()
    }

    /// [`Decoder::forward`] for new positions only (see [`DecoderLayer::forward_step`]).
    ///
    /// # Shapes
    /// `y`: (r, d_model), `states`: one per layer, `memory_mask`: (r, n_s) -> (r, d_model).
    pub fn forward_step(
        &self,
        y: &DMatrix<T>,
        states: &mut [DecoderLayerState<T>],
        memory_mask: Option<&Mask>,
    ) -> DMatrix<T> {
        assert_eq!(
            states.len(),
            self.layers.len(),
            "decoder: {} layer states for {} layers",
            states.len(),
            self.layers.len()
        );
        let mut y = y.clone();
        for (layer, state) in self.layers.iter().zip(states.iter_mut()) {
            y = layer.forward_step(&y, state, memory_mask);
        }
        if let Some(norm) = &self.final_norm {
            y = norm.forward(&y);
        }
        y
    }

    /// The whole stack for training, over B sequences stacked row-wise (shapes as
    /// [`DecoderLayer::forward_train`]).
    pub fn forward_train(
        &self,
        y: &DMatrix<T>,
        memory: &DMatrix<T>,
        self_masks: &[Mask],
        memory_masks: &[Mask],
        dropout: &mut Dropout,
    ) -> (DMatrix<T>, StackCache<DecoderLayerCache<T>, T>) {
        let mut y = y.clone();
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, cache) = layer.forward_train(&y, memory, self_masks, memory_masks, dropout);
            y = out;
            layers.push(cache);
        }
        let mut final_norm = None;
        if let Some(norm) = &self.final_norm {
            let (out, cache) = norm.forward_train(&y);
            y = out;
            final_norm = Some(cache);
        }
        (y, StackCache { layers, final_norm })
    }

    /// The backward pass of the stack. Every layer reads the same memory, so the memory's
    /// gradient is the sum over the layers.
    ///
    /// Returns dL/dy, dL/dmemory and the stack's parameter gradients.
    pub fn backward(
        &self,
        cache: &StackCache<DecoderLayerCache<T>, T>,
        d_out: &DMatrix<T>,
    ) -> (DMatrix<T>, DMatrix<T>, Decoder<T>) {
        let (mut d_y, final_norm) = final_norm_backward(&self.final_norm, &cache.final_norm, d_out);
        let mut d_memory: Option<DMatrix<T>> = None;
        let mut layers = Vec::with_capacity(self.layers.len());
        for (layer, c) in self.layers.iter().zip(&cache.layers).rev() {
            let (d, d_m, g) = layer.backward(c, &d_y);
            d_y = d;
            d_memory = Some(match d_memory {
                None => d_m,
                Some(sum) => sum + d_m,
            });
            layers.push(g);
        }
        layers.reverse();
        let d_memory = d_memory.expect("a decoder stack has at least one layer");
        (d_y, d_memory, Decoder { layers, final_norm })
    }
}

impl<T: RealField + Copy> Parameters<T> for Decoder<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        stack_params(&self.layers, &self.final_norm)
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        stack_params_mut(&mut self.layers, &mut self.final_norm)
    }
}
