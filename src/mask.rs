//! Masks for attention (§3.2.3): which keys each query may look at.
//!
//! The paper uses masking twice. In decoder self-attention, position `i` must not see the
//! positions after it ("we need to prevent leftward information flow in the decoder to preserve
//! the auto-regressive property"): those scores are set to `-inf` before the softmax, so their
//! weights are exactly zero. And when sentences of different lengths share a batch, the padding
//! at the end of the shorter ones must be invisible to every query.
//!
//! A [`Mask`] is an (n, m) grid of booleans, `true` where query `i` may attend to key `j`. Masks
//! combine with [`Mask::and`]. A query whose every key is masked gets all-zero weights and a zero
//! output (see [`crate::softmax::softmax_rows`]); this happens for padded queries, and in
//! encoder-decoder attention when a source sentence is padding throughout.

use nalgebra::{DMatrix, RealField};

/// Which (query, key) pairs may interact; `true` = allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    allowed: DMatrix<bool>,
}

impl Mask {
    /// Every query may see every key: the encoder without padding.
    pub fn full(n_queries: usize, n_keys: usize) -> Self {
        Mask {
            allowed: DMatrix::from_element(n_queries, n_keys, true),
        }
    }

    /// Any mask: `allowed(i, j)` says whether query `i` may attend to key `j`.
    pub fn from_fn(
        n_queries: usize,
        n_keys: usize,
        allowed: impl FnMut(usize, usize) -> bool,
    ) -> Self {
        Mask {
            allowed: DMatrix::from_fn(n_queries, n_keys, allowed),
        }
    }

    // ANCHOR: causal
    /// The decoder's causal mask (`eq:causal-mask`): query `i` sees keys `0..=i`.
    ///
    /// # Shapes
    /// (n, n), lower triangle including the diagonal allowed.
    pub fn causal(n: usize) -> Self {
        Mask {
            allowed: DMatrix::from_fn(n, n, |i, j| j <= i),
        }
    }
    // ANCHOR_END: causal

    /// The causal mask for `n_queries` new positions appended after `n_keys - n_queries`
    /// earlier ones (incremental decoding): query `i` is at absolute position
    /// `n_keys - n_queries + i` and sees keys up to that position.
    ///
    /// # Panics
    /// If `n_queries > n_keys`.
    pub fn causal_suffix(n_queries: usize, n_keys: usize) -> Self {
        assert!(
            n_queries <= n_keys,
            "causal_suffix: {n_queries} queries cannot be the last positions of {n_keys} keys"
        );
        let offset = n_keys - n_queries;
        Mask {
            allowed: DMatrix::from_fn(n_queries, n_keys, |i, j| j <= offset + i),
        }
    }

    // ANCHOR: padding
    /// The padding mask: no query may see a key marked as padding.
    ///
    /// # Shapes
    /// `key_is_padding`: one flag per key (m) -> (n_queries, m).
    pub fn padding(n_queries: usize, key_is_padding: &[bool]) -> Self {
        let m = key_is_padding.len();
        Mask {
            allowed: DMatrix::from_fn(n_queries, m, |_, j| !key_is_padding[j]),
        }
    }
    // ANCHOR_END: padding

    /// Both masks at once: allowed only where both allow.
    ///
    /// # Panics
    /// If the shapes differ; the message gives both.
    pub fn and(&self, other: &Mask) -> Mask {
        assert_eq!(
            self.shape(),
            other.shape(),
            "cannot combine a {:?} mask with a {:?} mask",
            self.shape(),
            other.shape()
        );
        Mask {
            allowed: self.allowed.zip_map(&other.allowed, |a, b| a && b),
        }
    }

    /// (n_queries, n_keys).
    pub fn shape(&self) -> (usize, usize) {
        self.allowed.shape()
    }

    /// Which queries may attend to key `j`: column j of the mask, contiguous (for the fast
    /// paths, which sweep the scores column by column).
    pub(crate) fn key_column(&self, j: usize) -> &[bool] {
        let n = self.allowed.nrows();
        &self.allowed.as_slice()[j * n..(j + 1) * n]
    }

    /// May query `i` attend to key `j`?
    pub fn allows(&self, i: usize, j: usize) -> bool {
        self.allowed[(i, j)]
    }

    // ANCHOR: apply
    /// Sets the scores of every forbidden pair to `-inf`, as the paper prescribes, so that the
    /// softmax gives them weight exactly zero.
    ///
    /// # Panics
    /// If `scores` is not (n_queries, n_keys).
    pub fn apply<T: RealField + Copy>(&self, scores: &mut DMatrix<T>) {
        assert_eq!(
            scores.shape(),
            self.shape(),
            "mask of shape {:?} does not fit scores of shape {:?}",
            self.shape(),
            scores.shape()
        );
        let neg_inf = -T::one() / T::zero();
        for (s, &ok) in scores.iter_mut().zip(self.allowed.iter()) {
            if !ok {
                *s = neg_inf;
            }
        }
    }
    // ANCHOR_END: apply
}
