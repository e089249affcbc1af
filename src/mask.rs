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
//!
//! A grid of booleans costs n m bytes: 256 MB for 16384 positions, more than the blockwise
//! attention of [`crate::blockwise`] needs for everything else. So the masks that follow a
//! rule (causal, padding, and their combinations) also exist as an [`ImplicitMask`], which
//! stores the rule and answers [`Allows::allows`] by computing it. Both implement [`Allows`].

use std::ops::Range;

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
    /// paths, which sweep the scores column by column). Entry i is [`Mask::allows`]`(i, j)`.
    ///
    /// # Panics
    /// If `j` is not a key of the mask.
    pub fn key_column(&self, j: usize) -> &[bool] {
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

/// A mask as the blockwise attention of [`crate::blockwise`] reads it: a shape and an answer
/// for each (query, key) pair, stored ([`Mask`]) or computed ([`ImplicitMask`]).
pub trait Allows {
    /// (n_queries, n_keys).
    fn shape(&self) -> (usize, usize);

    /// May query `i` attend to key `j`?
    fn allows(&self, i: usize, j: usize) -> bool;

    /// May any query of `queries` attend to any key of `keys`? A block of keys for which this
    /// is false can be skipped. The default asks [`Allows::allows`] pair by pair.
    fn any_allowed(&self, queries: Range<usize>, keys: Range<usize>) -> bool {
        queries
            .into_iter()
            .any(|i| keys.clone().any(|j| self.allows(i, j)))
    }

    /// Writes into `allowed[j - keys.start]` whether query `i` may attend to key `j`, for each
    /// `j` in `keys`: one call per query and block of keys instead of one per pair.
    fn allowed_keys(&self, i: usize, keys: Range<usize>, allowed: &mut [bool]) {
        for (ok, j) in allowed.iter_mut().zip(keys) {
            *ok = self.allows(i, j);
        }
    }
}

impl Allows for Mask {
    fn shape(&self) -> (usize, usize) {
        Mask::shape(self)
    }

    fn allows(&self, i: usize, j: usize) -> bool {
        Mask::allows(self, i, j)
    }
}

/// A causal and/or padding mask kept as its rule, in O(m) memory instead of an (n, m) grid:
/// query `i` may attend to key `j` when `j` is not padding and, if the mask is causal,
/// `j <= offset + i`. [`ImplicitMask::to_mask`] gives the same mask as a [`Mask`].
///
/// # Example
/// ```
/// use aiayn::mask::{ImplicitMask, Mask};
/// let m = ImplicitMask::causal(3).and(&ImplicitMask::padding(3, &[false, false, true]));
/// assert_eq!(m.to_mask(), Mask::causal(3).and(&Mask::padding(3, &[false, false, true])));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplicitMask {
    n_queries: usize,
    n_keys: usize,
    /// `Some(offset)`: query `i` sees keys up to `offset + i`; `None`: no causal limit.
    causal_offset: Option<usize>,
    /// One flag per key, `true` = padding; empty when no key is padding.
    key_is_padding: Vec<bool>,
}

impl ImplicitMask {
    /// Every query may see every key, as [`Mask::full`].
    pub fn full(n_queries: usize, n_keys: usize) -> Self {
        ImplicitMask {
            n_queries,
            n_keys,
            causal_offset: None,
            key_is_padding: Vec::new(),
        }
    }

    /// Query `i` sees keys `0..=i`, as [`Mask::causal`].
    pub fn causal(n: usize) -> Self {
        Self::causal_suffix(n, n)
    }

    /// The last `n_queries` of `n_keys` positions, each seeing the keys up to itself, as
    /// [`Mask::causal_suffix`].
    ///
    /// # Panics
    /// If `n_queries > n_keys`.
    pub fn causal_suffix(n_queries: usize, n_keys: usize) -> Self {
        assert!(
            n_queries <= n_keys,
            "causal_suffix: {n_queries} queries cannot be the last positions of {n_keys} keys"
        );
        ImplicitMask {
            causal_offset: Some(n_keys - n_queries),
            ..Self::full(n_queries, n_keys)
        }
    }

    /// No query may see a key marked as padding, as [`Mask::padding`].
    pub fn padding(n_queries: usize, key_is_padding: &[bool]) -> Self {
        ImplicitMask {
            key_is_padding: key_is_padding.to_vec(),
            ..Self::full(n_queries, key_is_padding.len())
        }
    }

    /// Both masks at once, as [`Mask::and`]: the tighter causal limit, the union of the
    /// padding.
    ///
    /// # Panics
    /// If the shapes differ; the message gives both.
    pub fn and(&self, other: &ImplicitMask) -> ImplicitMask {
        assert_eq!(
            Allows::shape(self),
            Allows::shape(other),
            "cannot combine a {:?} mask with a {:?} mask",
            Allows::shape(self),
            Allows::shape(other)
        );
        let causal_offset = match (self.causal_offset, other.causal_offset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let key_is_padding = match (
            self.key_is_padding.is_empty(),
            other.key_is_padding.is_empty(),
        ) {
            (true, _) => other.key_is_padding.clone(),
            (_, true) => self.key_is_padding.clone(),
            _ => self
                .key_is_padding
                .iter()
                .zip(&other.key_is_padding)
                .map(|(&a, &b)| a || b)
                .collect(),
        };
        ImplicitMask {
            causal_offset,
            key_is_padding,
            ..Self::full(self.n_queries, self.n_keys)
        }
    }

    /// The same mask as an (n_queries, n_keys) grid.
    pub fn to_mask(&self) -> Mask {
        Mask::from_fn(self.n_queries, self.n_keys, |i, j| self.allows(i, j))
    }

    /// The keys query `i` may see before padding is taken out: `0..offset + i + 1` if causal,
    /// all of them otherwise.
    fn visible(&self, i: usize) -> Range<usize> {
        match self.causal_offset {
            Some(offset) => 0..(offset + i + 1).min(self.n_keys),
            None => 0..self.n_keys,
        }
    }

    fn is_padding(&self, j: usize) -> bool {
        self.key_is_padding.get(j).copied().unwrap_or(false)
    }
}

impl Allows for ImplicitMask {
    fn shape(&self) -> (usize, usize) {
        (self.n_queries, self.n_keys)
    }

    fn allows(&self, i: usize, j: usize) -> bool {
        self.visible(i).contains(&j) && !self.is_padding(j)
    }

    fn any_allowed(&self, queries: Range<usize>, keys: Range<usize>) -> bool {
        if queries.is_empty() {
            return false;
        }
        // a causal mask lets the last query of the block see the most keys
        let end = keys.end.min(self.visible(queries.end - 1).end);
        (keys.start..end).any(|j| !self.is_padding(j))
    }

    fn allowed_keys(&self, i: usize, keys: Range<usize>, allowed: &mut [bool]) {
        let end = self.visible(i).end;
        for (ok, j) in allowed.iter_mut().zip(keys) {
            *ok = j < end && !self.is_padding(j);
        }
    }
}
