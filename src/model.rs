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
//! (§5.4) belongs to training and is not applied here.

use nalgebra::{DMatrix, RealField};
use rand::Rng;

use crate::config::{Config, ConfigError, Positional};
use crate::decoder::Decoder;
use crate::embedding::Embedding;
use crate::encoder::{Encoder, LayerSizes};
use crate::init::xavier_uniform;
use crate::mask::Mask;
use crate::positional::PositionalEncoding;
use crate::softmax::log_softmax_rows;

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
}
