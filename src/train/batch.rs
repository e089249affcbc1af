//! Batching by approximate length (§5.1).
//!
//! "Sentence pairs were batched together by approximate sequence length. Each training batch
//! contained a set of sentence pairs containing approximately 25000 source tokens and 25000
//! target tokens." A batch is a rectangle: every row is padded to the longest sequence in it,
//! so a batch of sequences of similar length wastes little work on padding, and a budget in
//! tokens (not in sentences) keeps the work per step roughly constant whether the sentences
//! are short or long.
//!
//! [`batches_by_length`] does it in four steps:
//!
//! 1. shuffle the pairs;
//! 2. cut the shuffled order into pools of [`POOL_SIZE`] pairs and sort each pool by source
//!    length, then target length (a stable sort, so ties keep their shuffled order);
//! 3. walk each sorted pool, adding pairs to the current batch while both padded sides fit the
//!    budget: `B * n_s <= max_tokens` and `B * n_t <= max_tokens`, where `B` is the number of
//!    rows, `n_s` the longest source and `n_t` the longest target plus one (for `<s>` on the
//!    decoder input, `</s>` on its output); a pool's last batch may be small;
//! 4. shuffle the order of the batches.
//!
//! Sorting within pools rather than over the whole set is the usual compromise: the pool is
//! large enough that neighbours in sorted order have nearly equal lengths, and small enough
//! that which sentences share a batch changes from one call (epoch) to the next. The paper
//! counts real tokens ("approximately 25000"); the budget here bounds padded tokens, which is
//! what memory and time depend on; with sorted pools the two differ by a few percent.
//!
//! A single pair whose padded length exceeds the budget on its own still forms a batch of one,
//! so that no pair is ever dropped; `max_tokens = 0` makes every batch a single pair.

use super::tasks::{Pair, BOS, EOS, PAD};
use rand::seq::SliceRandom;
use rand::Rng;

/// Pairs per sorting pool in [`batches_by_length`].
pub const POOL_SIZE: usize = 4096;

/// A batch of sentence pairs, padded with [`PAD`] into rectangles.
///
/// # Shapes
/// `src`, `src_padding`: B rows of n_s; `tgt_in`, `tgt_out`, `tgt_padding`: B rows of n_t, where
/// n_s is the longest source and n_t the longest target plus one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Source rows, each padded with `PAD` to n_s.
    pub src: Vec<Vec<usize>>,
    /// True where `src` is padding (the encoder's key padding mask).
    pub src_padding: Vec<Vec<bool>>,
    /// Decoder input: `BOS` then the target, padded to n_t.
    pub tgt_in: Vec<Vec<usize>>,
    /// Decoder output to predict: the target then `EOS`, padded to n_t.
    pub tgt_out: Vec<Vec<usize>>,
    /// True where `tgt_out` (and so `tgt_in`) is padding: excluded from the loss.
    pub tgt_padding: Vec<Vec<bool>>,
    /// Row r is pair `indices[r]` of the slice the batch was made from.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Gathers `pairs[i]` for each `i` of `indices`, in that order, and pads them.
    ///
    /// # Panics
    /// If an index is out of range for `pairs`.
    ///
    /// # Example
    /// ```
    /// use aiayn::train::batch::Batch;
    /// use aiayn::train::tasks::{Pair, BOS, EOS, PAD};
    /// let pairs = [
    ///     Pair { src: vec![5, 6, 7], tgt: vec![8] },
    ///     Pair { src: vec![9], tgt: vec![10, 11] },
    /// ];
    /// let b = Batch::from_pairs(&pairs, &[1, 0]);
    /// assert_eq!(b.src, vec![vec![9, PAD, PAD], vec![5, 6, 7]]);
    /// assert_eq!(b.tgt_in, vec![vec![BOS, 10, 11], vec![BOS, 8, PAD]]);
    /// assert_eq!(b.tgt_out, vec![vec![10, 11, EOS], vec![8, EOS, PAD]]);
    /// assert_eq!((b.src_tokens(), b.tgt_tokens(), b.padded_tokens()), (4, 5, 12));
    /// ```
    pub fn from_pairs(pairs: &[Pair], indices: &[usize]) -> Batch {
        let n_s = indices
            .iter()
            .map(|&i| pairs[i].src.len())
            .max()
            .unwrap_or(0);
        let n_t = indices
            .iter()
            .map(|&i| pairs[i].tgt.len() + 1)
            .max()
            .unwrap_or(0);
        let pad = |mut row: Vec<usize>, n: usize| {
            row.resize(n, PAD);
            row
        };
        let flags = |len: usize, n: usize| (0..n).map(|j| j >= len).collect::<Vec<bool>>();
        let mut b = Batch {
            src: Vec::with_capacity(indices.len()),
            src_padding: Vec::with_capacity(indices.len()),
            tgt_in: Vec::with_capacity(indices.len()),
            tgt_out: Vec::with_capacity(indices.len()),
            tgt_padding: Vec::with_capacity(indices.len()),
            indices: indices.to_vec(),
        };
        for &i in indices {
            let Pair { src, tgt } = &pairs[i];
            b.src.push(pad(src.clone(), n_s));
            b.src_padding.push(flags(src.len(), n_s));
            let mut tgt_in = Vec::with_capacity(n_t);
            tgt_in.push(BOS);
            tgt_in.extend_from_slice(tgt);
            b.tgt_in.push(pad(tgt_in, n_t));
            let mut tgt_out = tgt.clone();
            tgt_out.push(EOS);
            b.tgt_out.push(pad(tgt_out, n_t));
            b.tgt_padding.push(flags(tgt.len() + 1, n_t));
        }
        b
    }

    /// B, the number of pairs.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True for a batch of no pairs ([`batches_by_length`] never makes one).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Real source tokens, padding excluded.
    pub fn src_tokens(&self) -> usize {
        count_real(&self.src_padding)
    }

    /// Real target tokens of `tgt_out` (each target plus its `EOS`), padding excluded: the
    /// number of positions the loss is summed over.
    pub fn tgt_tokens(&self) -> usize {
        count_real(&self.tgt_padding)
    }

    /// B * n_s, the size of the padded source.
    pub fn padded_src_tokens(&self) -> usize {
        self.src.iter().map(Vec::len).sum()
    }

    /// B * n_t, the size of the padded target.
    pub fn padded_tgt_tokens(&self) -> usize {
        self.tgt_out.iter().map(Vec::len).sum()
    }

    /// B * (n_s + n_t): positions on both sides, padding included (what the model computes
    /// over, compared with `src_tokens() + tgt_tokens()` that carry information).
    pub fn padded_tokens(&self) -> usize {
        self.padded_src_tokens() + self.padded_tgt_tokens()
    }
}

fn count_real(padding: &[Vec<bool>]) -> usize {
    padding
        .iter()
        .map(|row| row.iter().filter(|&&p| !p).count())
        .sum()
}

// ANCHOR: batches_by_length
/// Batches of `pairs` by approximate length, each holding at most `max_tokens` padded tokens
/// per side (B * n_s and B * n_t), with every pair in exactly one batch (§5.1). The steps and
/// their reasons are in the module documentation; pools hold [`POOL_SIZE`] pairs.
///
/// The result depends only on `pairs`, `max_tokens` and the state of `rng`: call it once per
/// epoch with the same generator for a fresh, reproducible order.
///
/// # Example
/// ```
/// use aiayn::train::batch::batches_by_length;
/// use aiayn::train::tasks::Task;
/// use rand::{rngs::StdRng, SeedableRng};
/// let task = Task::by_name("copy", 1).unwrap();
/// let batches = batches_by_length(&task.train, 1000, &mut StdRng::seed_from_u64(0));
/// assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), task.train.len());
/// assert!(batches.iter().all(|b| b.src.len() * b.src[0].len() <= 1000));
/// ```
pub fn batches_by_length(pairs: &[Pair], max_tokens: usize, rng: &mut impl Rng) -> Vec<Batch> {
    batches_by_length_in_pools(pairs, max_tokens, POOL_SIZE, rng)
}
// ANCHOR_END: batches_by_length

/// [`batches_by_length`] with pools of `pool_size` pairs instead of [`POOL_SIZE`]. A batch never
/// spans two pools, so `pool_size` 1 makes every batch a single pair, and `pairs.len()` or more
/// sorts the whole set at once.
///
/// # Panics
/// If `pool_size` is 0.
pub fn batches_by_length_in_pools(
    pairs: &[Pair],
    max_tokens: usize,
    pool_size: usize,
    rng: &mut impl Rng,
) -> Vec<Batch> {
    assert!(pool_size > 0, "the pool size must be at least 1");
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(pool_size) {
        pool.sort_by_key(|&i| (pairs[i].src.len(), pairs[i].tgt.len()));
        let mut rows: Vec<usize> = Vec::new();
        let (mut n_s, mut n_t) = (0, 0);
        for &i in pool.iter() {
            let s = n_s.max(pairs[i].src.len());
            let t = n_t.max(pairs[i].tgt.len() + 1);
            let b = rows.len() + 1;
            if !rows.is_empty() && (b * s > max_tokens || b * t > max_tokens) {
                batches.push(Batch::from_pairs(pairs, &rows));
                rows.clear();
                n_s = pairs[i].src.len();
                n_t = pairs[i].tgt.len() + 1;
            } else {
                (n_s, n_t) = (s, t);
            }
            rows.push(i);
        }
        if !rows.is_empty() {
            batches.push(Batch::from_pairs(pairs, &rows));
        }
    }
    batches.shuffle(rng);
    batches
}
