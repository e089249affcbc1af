//! The whole model (§3, Figure 1): embeddings and positional encodings, the encoder and decoder
//! stacks, and the generator.
//!
//! ```text
//! memory    = Encoder(E[src] sqrt(d_model) + PE)
//! y         = Decoder(E[tgt] sqrt(d_model) + PE, memory)     causal in the target
//! log_probs = log_softmax(y E^T)                             one row per target position
//! ```
//!
//! `tgt` is the target sentence shifted right (it starts with a start symbol), so that row i of
//! `log_probs` is the model's distribution for target token i + 1 given tokens 0..=i. Dropout
//! (§5.4) belongs to training: [`Transformer::forward_train`] applies it, [`Transformer::forward`]
//! does not.

use nalgebra::{DMatrix, RealField, RowDVector};
use rand::Rng;

use crate::config::{Config, ConfigError, Positional};
use crate::decoder::{Decoder, DecoderLayerCache, DecoderLayerState};
use crate::dropout::{dropout_backward, Dropout, DropoutMask};
use crate::embedding::Embedding;
use crate::encoder::{Encoder, EncoderLayerCache, LayerSizes, StackCache};
use crate::init::xavier_uniform;
use crate::mask::Mask;
use crate::params::{prefixed, prefixed_mut, zeros_like, Param, ParamMut, Parameters};
use crate::positional::PositionalEncoding;
use crate::softmax::{log_softmax_rows, log_softmax_rows_backward};

/// The attention weights of one forward pass, indexed `[layer][head]`; see
/// [`Transformer::attention_weights`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionWeights<T: RealField> {
    /// Encoder self-attention: (n_s, n_s) each.
    pub encoder: Vec<Vec<DMatrix<T>>>,
    /// Decoder (masked) self-attention: (n_t, n_t) each.
    pub decoder_self: Vec<Vec<DMatrix<T>>>,
    /// Encoder-decoder attention: (n_t, n_s) each, target queries over source keys.
    pub cross: Vec<Vec<DMatrix<T>>>,
}

/// Encoder, decoder and one shared embedding matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Transformer<T: RealField> {
    /// Shared by the source embedding, the target embedding and the pre-softmax linear.
    pub embedding: Embedding<T>,
    pub positional: PositionalEncoding<T>,
    pub encoder: Encoder<T>,
    pub decoder: Decoder<T>,
}

impl<T: RealField + Copy> Transformer<T> {
    /// A randomly initialised model.
    ///
    /// # Errors
    /// If `config` does not validate, or `vocab` is zero.
    pub fn new(config: &Config, vocab: usize, rng: &mut impl Rng) -> Result<Self, ConfigError> {
        config.validate()?;
        if vocab == 0 {
            return Err(ConfigError::Zero { field: "vocab" });
        }
        let sizes = LayerSizes {
            d_model: config.d_model,
            h: config.h,
            d_k: config.d_k,
            d_v: config.d_v,
            d_ff: config.d_ff,
            attention_bias: config.attention_bias,
            layer_norm_eps: config.layer_norm_eps,
            placement: config.placement,
        };
        let positional = match config.positional {
            Positional::Sinusoidal => PositionalEncoding::Sinusoidal {
                d_model: config.d_model,
            },
            Positional::Learned => PositionalEncoding::Learned {
                table: xavier_uniform(config.max_len, config.d_model, rng),
            },
        };
        Ok(Transformer {
            embedding: Embedding::new(vocab, config.d_model, rng),
            positional,
            encoder: Encoder::new(config.n_layers, &sizes, rng),
            decoder: Decoder::new(config.n_layers, &sizes, rng),
        })
    }

    /// Number of parameters, counting the shared embedding once.
    pub fn num_params(&self) -> usize {
        self.embedding.weight.len()
            + self.positional.num_params()
            + self.encoder.num_params()
            + self.decoder.num_params()
    }

    // ANCHOR: encode
    /// The encoder's output ("memory") for one source sentence.
    ///
    /// # Shapes
    /// `src`: n_s token ids, `src_padding`: n_s flags (true = padding) -> (n_s, d_model).
    pub fn encode(&self, src: &[usize], src_padding: Option<&[bool]>) -> DMatrix<T> {
        let x = self.embedding.embed(src) + self.positional.encode(src.len()); // (n_s, d_model)
        let mask = src_padding.map(|pad| Mask::padding(src.len(), pad)); // (n_s, n_s)
        self.encoder.forward(&x, mask.as_ref())
    }
    // ANCHOR_END: encode

    // ANCHOR: decode
    /// The decoder's output for the (shifted-right) target, given the memory.
    ///
    /// # Shapes
    /// `tgt`: n_t ids, `memory`: (n_s, d_model), `src_padding`: n_s flags -> (n_t, d_model).
    pub fn decode(
        &self,
        tgt: &[usize],
        memory: &DMatrix<T>,
        src_padding: Option<&[bool]>,
    ) -> DMatrix<T> {
        let y = self.embedding.embed(tgt) + self.positional.encode(tgt.len()); // (n_t, d_model)
        let causal = Mask::causal(tgt.len()); // (n_t, n_t)
        let memory_mask = src_padding.map(|pad| Mask::padding(tgt.len(), pad)); // (n_t, n_s)
        self.decoder
            .forward(&y, memory, Some(&causal), memory_mask.as_ref())
    }
    // ANCHOR_END: decode

    // ANCHOR: decode_step
    /// Starts incremental decoding (§6.1) of one sentence: each decoder layer projects the
    /// memory into encoder-decoder keys and values once, and starts an empty self-attention
    /// cache.
    ///
    /// # Shapes
    /// `memory`: (n_s, d_model), `src_padding`: n_s flags -> a state at position 0.
    pub fn start_decoding(
        &self,
        memory: &DMatrix<T>,
        src_padding: Option<&[bool]>,
    ) -> DecoderState<T> {
        DecoderState {
            layers: self.decoder.start(memory),
            src_padding: src_padding.map(<[bool]>::to_vec),
            position: 0,
        }
    }

    /// Feeds one target token at the next position and returns the log-probabilities of the
    /// token after it. Each layer computes one new row; the earlier positions' keys and values
    /// come from `state`. After tokens t_0 .. t_i, the result equals row i of
    /// [`Transformer::forward`] on the target t_0 .. t_i (up to rounding).
    ///
    /// # Shapes
    /// `token`: one id -> (vocab); `state` advances by one position.
    ///
    /// # Panics
    /// If `token` is outside the vocabulary, or learned positions run out.
    pub fn decode_step(&self, state: &mut DecoderState<T>, token: usize) -> RowDVector<T> {
        let t = state.position;
        let y = self.embedding.embed(&[token]) + self.positional.encode_position(t); // (1, d_model)
        let memory_mask = state
            .src_padding
            .as_deref()
            .map(|pad| Mask::padding(1, pad)); // (1, n_s)
        let out = self
            .decoder
            .forward_step(&y, &mut state.layers, memory_mask.as_ref()); // (1, d_model)
        state.position += 1;
        // the generator's y E^T as E y^T, one dot product per vocabulary row (fast for one row)
        let logits = (&self.embedding.weight * out.transpose()).transpose(); // (1, vocab)
        log_softmax_rows(&logits).row(0).into_owned()
    }
    // ANCHOR_END: decode_step

    // ANCHOR: generator
    /// The generator (`eq:generator`): the shared-weight linear map `y E^T` and a log-softmax
    /// over the vocabulary.
    ///
    /// # Shapes
    /// `y`: (n_t, d_model) -> (n_t, vocab); each row's exponentials sum to 1.
    pub fn generator(&self, y: &DMatrix<T>) -> DMatrix<T> {
        log_softmax_rows(&self.embedding.logits(y))
    }
    // ANCHOR_END: generator

    /// Every attention weight of one forward pass (the appendix's maps): encoder
    /// self-attention, decoder self-attention and encoder-decoder attention, per layer and
    /// head, for a source sentence and a (shifted-right) target, without padding.
    ///
    /// # Shapes
    /// `src`: n_s ids, `tgt`: n_t ids -> N x h matrices (n_s, n_s), (n_t, n_t) and (n_t, n_s).
    pub fn attention_weights(&self, src: &[usize], tgt: &[usize]) -> AttentionWeights<T> {
        let x = self.embedding.embed(src) + self.positional.encode(src.len()); // (n_s, d_model)
        let (memory, encoder) = self.encoder.forward_with_weights(&x, None);
        let y = self.embedding.embed(tgt) + self.positional.encode(tgt.len()); // (n_t, d_model)
        let causal = Mask::causal(tgt.len()); // (n_t, n_t)
        let (_, layers) = self
            .decoder
            .forward_with_weights(&y, &memory, Some(&causal), None);
        let (decoder_self, cross) = layers
            .into_iter()
            .map(|w| (w.self_attn, w.cross_attn))
            .unzip();
        AttentionWeights {
            encoder,
            decoder_self,
            cross,
        }
    }

    /// Source and shifted target in, log-probabilities of the next target tokens out.
    ///
    /// # Shapes
    /// `src`: n_s ids, `tgt`: n_t ids -> (n_t, vocab).
    pub fn forward(
        &self,
        src: &[usize],
        tgt: &[usize],
        src_padding: Option<&[bool]>,
    ) -> DMatrix<T> {
        let memory = self.encode(src, src_padding);
        self.generator(&self.decode(tgt, &memory, src_padding))
    }

    // ANCHOR: forward_train
    /// The forward pass for training (§5.4) over a batch of B sentence pairs: dropout on the
    /// sums of embeddings and positional encodings and on every sub-layer's output, and a cache
    /// for [`Transformer::backward`]. The B sequences are stacked row-wise, so the position-wise
    /// work (embeddings, projections, FFN, LayerNorm, generator) runs on one matrix; attention
    /// runs within each sequence. With [`Dropout::off`] row block b equals
    /// [`Transformer::forward`] of pair b.
    ///
    /// # Shapes
    /// `src`: B rows of n_s ids, `src_padding`: B rows of n_s flags (true = padding), `tgt`: B rows
    /// of n_t ids -> log-probabilities (B n_t, vocab), pair b in rows b n_t .. (b + 1) n_t.
    ///
    /// # Panics
    /// If the batch is empty or its rows differ in length.
    pub fn forward_train(
        &self,
        src: &[Vec<usize>],
        tgt: &[Vec<usize>],
        src_padding: &[Vec<bool>],
        dropout: &mut Dropout,
    ) -> (DMatrix<T>, TransformerCache<T>) {
        let (n_s, n_t) = check_batch(src, tgt, src_padding);
        let src_flat: Vec<usize> = src.concat();
        let tgt_flat: Vec<usize> = tgt.concat();
        let src_masks: Vec<Mask> = src_padding.iter().map(|p| Mask::padding(n_s, p)).collect();
        let causal = vec![Mask::causal(n_t); tgt.len()];
        let memory_masks: Vec<Mask> = src_padding.iter().map(|p| Mask::padding(n_t, p)).collect();

        let x = self.embedding.embed(&src_flat) + tile(&self.positional.encode(n_s), src.len()); // (B n_s, d_model)
        let (x, src_dropout) = dropout.apply(&x);
        let (memory, encoder) = self.encoder.forward_train(&x, &src_masks, dropout);

        let y = self.embedding.embed(&tgt_flat) + tile(&self.positional.encode(n_t), tgt.len()); // (B n_t, d_model)
        let (y, tgt_dropout) = dropout.apply(&y);
        let (out, decoder) =
            self.decoder
                .forward_train(&y, &memory, &causal, &memory_masks, dropout);
        let log_probs = self.generator(&out); // (B n_t, vocab)
        let cache = TransformerCache {
            src: src_flat,
            tgt: tgt_flat,
            n_s,
            n_t,
            src_dropout,
            tgt_dropout,
            encoder,
            decoder,
            decoder_output: out,
            log_probs: log_probs.clone(),
        };
        (log_probs, cache)
    }
    // ANCHOR_END: forward_train

    // ANCHOR: backward
    /// The backward pass of the whole model: from dL/d(log_probs) to the gradient of every
    /// parameter, returned as a `Transformer` of gradients. The shared embedding matrix
    /// collects three contributions: the generator's (`y E^T`), the target embedding's and the
    /// source embedding's.
    pub fn backward(
        &self,
        cache: &TransformerCache<T>,
        d_log_probs: &DMatrix<T>,
    ) -> Transformer<T> {
        let mut grads = zeros_like(self);
        let d_logits = log_softmax_rows_backward(&cache.log_probs, d_log_probs); // (n_t, vocab)
        let d_out = self.embedding.logits_backward(
            &cache.decoder_output,
            &d_logits,
            &mut grads.embedding.weight,
        );
        let (d_y, d_memory, decoder) = self.decoder.backward(&cache.decoder, &d_out);
        grads.decoder = decoder;
        let d_y = dropout_backward(&cache.tgt_dropout, &d_y); // (n_t, d_model)
        self.embedding
            .embed_backward(&cache.tgt, &d_y, &mut grads.embedding.weight);
        for b in 0..cache.tgt.len() / cache.n_t.max(1) {
            let block = d_y.rows(b * cache.n_t, cache.n_t).into_owned(); // pair b
            self.positional.backward(&block, &mut grads.positional);
        }

        let (d_x, encoder) = self.encoder.backward(&cache.encoder, &d_memory);
        grads.encoder = encoder;
        let d_x = dropout_backward(&cache.src_dropout, &d_x); // (n_s, d_model)
        self.embedding
            .embed_backward(&cache.src, &d_x, &mut grads.embedding.weight);
        for b in 0..cache.src.len() / cache.n_s.max(1) {
            let block = d_x.rows(b * cache.n_s, cache.n_s).into_owned(); // pair b
            self.positional.backward(&block, &mut grads.positional);
        }
        grads
    }
    // ANCHOR_END: backward
}

/// One sentence's incremental decoding state: every decoder layer's cached keys and values,
/// the source padding, and the next position. Cloning it branches a hypothesis (beam search).
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderState<T: RealField> {
    pub layers: Vec<DecoderLayerState<T>>,
    pub src_padding: Option<Vec<bool>>,
    /// How many target positions have been fed so far.
    pub position: usize,
}

/// What [`Transformer::backward`] needs from [`Transformer::forward_train`].
#[derive(Clone, Debug)]
pub struct TransformerCache<T: RealField> {
    /// The batch's source and target ids, row after row.
    pub src: Vec<usize>,
    pub tgt: Vec<usize>,
    /// The length of every source row and every target row.
    pub n_s: usize,
    pub n_t: usize,
    pub src_dropout: DropoutMask<T>,
    pub tgt_dropout: DropoutMask<T>,
    pub encoder: StackCache<EncoderLayerCache<T>, T>,
    pub decoder: StackCache<DecoderLayerCache<T>, T>,
    /// The decoder stack's output, (B n_t, d_model).
    pub decoder_output: DMatrix<T>,
    /// The generator's output, (B n_t, vocab).
    pub log_probs: DMatrix<T>,
}

impl<T: RealField + Copy> Parameters<T> for Transformer<T> {
    /// `embedding`, `positional` (learned positions only), `encoder.*`, `decoder.*`.
    fn params(&self) -> Vec<Param<'_, T>> {
        let mut list = vec![Param::matrix("embedding", &self.embedding.weight)];
        if let PositionalEncoding::Learned { table } = &self.positional {
            list.push(Param::matrix("positional", table));
        }
        list.extend(prefixed("encoder", self.encoder.params()));
        list.extend(prefixed("decoder", self.decoder.params()));
        list
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        let mut list = vec![ParamMut::matrix("embedding", &mut self.embedding.weight)];
        if let PositionalEncoding::Learned { table } = &mut self.positional {
            list.push(ParamMut::matrix("positional", table));
        }
        list.extend(prefixed_mut("encoder", self.encoder.params_mut()));
        list.extend(prefixed_mut("decoder", self.decoder.params_mut()));
        list
    }
}

/// `block` repeated `times` times, one copy below the other.
fn tile<T: RealField + Copy>(block: &DMatrix<T>, times: usize) -> DMatrix<T> {
    let n = block.nrows();
    DMatrix::from_fn(n * times, block.ncols(), |i, j| block[(i % n, j)])
}

/// (n_s, n_t) of a batch whose rows all have one length per side.
fn check_batch(
    src: &[Vec<usize>],
    tgt: &[Vec<usize>],
    src_padding: &[Vec<bool>],
) -> (usize, usize) {
    assert!(!src.is_empty(), "a training batch needs at least one pair");
    assert!(
        src.len() == tgt.len() && src.len() == src_padding.len(),
        "a batch of {} sources, {} targets and {} padding rows",
        src.len(),
        tgt.len(),
        src_padding.len()
    );
    let (n_s, n_t) = (src[0].len(), tgt[0].len());
    for (b, ((s, t), p)) in src.iter().zip(tgt).zip(src_padding).enumerate() {
        assert!(
            s.len() == n_s && p.len() == n_s && t.len() == n_t,
            "pair {b} of the batch has {} source ids, {} padding flags and {} target ids; the first has {n_s}, {n_s} and {n_t}",
            s.len(),
            p.len(),
            t.len()
        );
    }
    (n_s, n_t)
}
