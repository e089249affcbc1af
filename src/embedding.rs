//! Embeddings and the pre-softmax linear map, sharing one matrix (§3.4).
//!
//! Tokens become d_model-wide vectors by looking up rows of a learned (vocab, d_model) matrix E,
//! and the paper multiplies those rows by sqrt(d_model). The same E serves the source embedding,
//! the target embedding and, transposed, the linear map that turns the decoder's output into
//! one score per vocabulary entry: `logits = y E^T`. Sharing needs a vocabulary common to both
//! languages, which the paper has (byte-pair encoding, about 37000 tokens for EN-DE).
//!
//! The sqrt(d_model) factor puts the embeddings on a scale comparable to the positional
//! encodings added to them (entries in [-1, 1]) when E is initialised with small entries.

use nalgebra::{DMatrix, RealField};
use rand::Rng;

/// The shared embedding matrix E: (vocab, d_model).
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding<T: RealField> {
    pub weight: DMatrix<T>,
}

impl<T: RealField + Copy> Embedding<T> {
    /// Entries drawn uniformly with variance 1/d_model, so that the scaled embedding
    /// sqrt(d_model) E has entries of variance 1.
    pub fn new(vocab: usize, d_model: usize, rng: &mut impl Rng) -> Self {
        let a = (3.0 / d_model as f64).sqrt();
        Embedding {
            weight: DMatrix::from_fn(vocab, d_model, |_, _| {
                nalgebra::convert(rng.random_range(-a..=a))
            }),
        }
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.weight.nrows()
    }

    /// d_model.
    pub fn d_model(&self) -> usize {
        self.weight.ncols()
    }

    // ANCHOR: embed
    /// Looks up each token's row and multiplies it by sqrt(d_model) (`eq:embedding`).
    ///
    /// # Shapes
    /// `tokens`: n ids -> (n, d_model).
    ///
    /// # Panics
    /// If a token id is not below the vocabulary size.
    pub fn embed(&self, tokens: &[usize]) -> DMatrix<T> {
        let scale: T = nalgebra::convert((self.d_model() as f64).sqrt());
        DMatrix::from_fn(tokens.len(), self.d_model(), |i, j| {
            let t = tokens[i];
            assert!(
                t < self.vocab(),
                "token id {t} at position {i} is outside the vocabulary of {}",
                self.vocab()
            );
            self.weight[(t, j)] * scale
        })
    }
    // ANCHOR_END: embed

    // ANCHOR: logits
    /// The pre-softmax linear map with the shared weights: `logits = y E^T` (no bias).
    ///
    /// # Shapes
    /// `y`: (n, d_model) -> (n, vocab).
    pub fn logits(&self, y: &DMatrix<T>) -> DMatrix<T> {
        y * self.weight.transpose() // (n, d_model) x (d_model, vocab) -> (n, vocab)
    }
    // ANCHOR_END: logits

    // ANCHOR: embedding_backward
    /// The backward pass of [`Embedding::embed`] (`eq:embedding-backward`): each position's
    /// gradient, times sqrt(d_model), is added to the row of its token. A token that occurs
    /// twice collects both; tokens that do not occur get nothing.
    ///
    /// `d_weight` accumulates: the shared matrix also collects the generator's gradient and the
    /// other stack's embedding gradient.
    ///
    /// # Shapes
    /// `tokens`: n ids, `d_x`: (n, d_model), `d_weight`: (vocab, d_model).
    pub fn embed_backward(&self, tokens: &[usize], d_x: &DMatrix<T>, d_weight: &mut DMatrix<T>) {
        let scale: T = nalgebra::convert((self.d_model() as f64).sqrt());
        for (i, &t) in tokens.iter().enumerate() {
            let mut row = d_weight.row_mut(t);
            row += d_x.row(i) * scale;
        }
    }
    // ANCHOR_END: embedding_backward

    // ANCHOR: logits_backward
    /// The backward pass of [`Embedding::logits`] (`eq:logits-backward`): for logits = y E^T,
    /// dE += dlogits^T y and dy = dlogits E.
    ///
    /// # Shapes
    /// `y`: (n, d_model), `d_logits`: (n, vocab) -> dL/dy (n, d_model); `d_weight` (vocab, d_model)
    /// accumulates.
    pub fn logits_backward(
        &self,
        y: &DMatrix<T>,
        d_logits: &DMatrix<T>,
        d_weight: &mut DMatrix<T>,
    ) -> DMatrix<T> {
        *d_weight += d_logits.transpose() * y; // (vocab, n) x (n, d_model) -> (vocab, d_model)
        d_logits * &self.weight // (n, vocab) x (vocab, d_model) -> (n, d_model)
    }
    // ANCHOR_END: logits_backward
}
