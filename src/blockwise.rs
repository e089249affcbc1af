//! Eq. 1 (§3.2.1) in O(n) memory: scaled dot-product attention computed block by block with an
//! online softmax, never holding the (n, m) matrix of scores or weights.
//!
//! The paper computes Eq. 1 directly, `softmax(Q K^T / sqrt(d_k)) V`, and so does
//! [`crate::attention`]: its scores and weights are n m numbers each, 1 GiB apiece in f32 at
//! n = m = 16384. This module is an addition beside it, not a change of the model: the same
//! function of Q, K and V, equal up to rounding (`tests/properties_blockwise.rs`), with the same
//! masks, returning the output only.
//!
//! # The idea
//! Take one query and its scores `s_j = q . k_j / sqrt(d_k)` over the keys, split into blocks
//! `B_1, B_2, ...`. The softmax needs the maximum of all the scores (for stability) and the sum
//! of all the exponentials (to normalise), which seems to require every score before any weight.
//! It does not: keep, after block t, a running maximum `mu_t`, a running sum `l_t` and an
//! unnormalised output `o_t`, each taken relative to `mu_t`:
//!
//! ```text
//! mu_t = max(mu_{t-1}, max_{j in B_t} s_j)
//! l_t  = exp(mu_{t-1} - mu_t) l_{t-1} + sum_{j in B_t} exp(s_j - mu_t)
//! o_t  = exp(mu_{t-1} - mu_t) o_{t-1} + sum_{j in B_t} exp(s_j - mu_t) v_j
//! ```
//!
//! with `mu_0 = -inf`, `l_0 = 0`, `o_0 = 0`. The rescaling works because of the identity
//! `exp(s_j - mu_{t-1}) exp(mu_{t-1} - mu_t) = exp(s_j - mu_t)`: every term already in `l` and
//! `o` moves from the old maximum to the new one by one multiplication. After the last block,
//! `o_T / l_T = sum_j exp(s_j - mu_T) v_j / sum_j exp(s_j - mu_T) = softmax(s) V`, exactly the
//! stable softmax of [`crate::softmax::softmax_rows`] followed by the product with V. Every
//! exponent is at most 0, so nothing overflows, whatever the logits.
//!
//! The online softmax is Milakov and Gimelshein (2018), "Online normalizer calculation for
//! softmax"; attention built on it in O(n) memory is Rabe and Staats (2021), "Self-attention
//! does not need O(n^2) memory", and, as a fused GPU kernel, Dao et al. (2022),
//! "FlashAttention". The module is named for what it does, blocks, rather than after that
//! kernel, whose tiling for GPU memory and recomputing backward pass are not here.
//!
//! # The arrangement
//! Queries are taken in blocks too, so that each step is two matrix products on a small tile:
//! the scores of `b_k` keys against `b_q` queries, `S^T = K_B Q_B^T` (b_k, b_q), then the
//! accumulator `O^T += V_B^T P` (d_v, b_q), where P holds the exponentials. Everything is kept
//! transposed (one column per query) because a `DMatrix` stores columns contiguously: a
//! query's scores, and its running output, are each one contiguous run of memory. Memory
//! beyond the inputs and the output: transposed copies of Q, V and the output (O(n) each, as
//! the inputs are), one (b_k, b_q) tile, and mu and l for the b_q queries of the current tile.
//!
//! Masks are read through [`Allows`]: a [`Mask`](crate::mask::Mask) grid, or an
//! [`ImplicitMask`](crate::mask::ImplicitMask) for causal and padding masks, which stores no
//! grid. A block of keys that no query of the block may see is skipped (half of all blocks
//! under a causal mask). A query that may see no key keeps `l = 0` and gets a zero output, as
//! in Eq. 1.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, RealField};

use crate::mask::Allows;

/// How many queries and keys one tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// b_q, queries per tile.
    pub queries: usize,
    /// b_k, keys per tile.
    pub keys: usize,
}

impl Default for Blocks {
    /// 128 queries by 256 keys: a 128 KiB tile in f32, which stays in a core's L2 cache. (At
    /// n = 4096, tiles from 64 x 256 to 256 x 256 ran within 10 % of each other: the time goes
    /// to the exponentials and the two products, not to the tiling.)
    fn default() -> Self {
        Blocks {
            queries: 128,
            keys: 256,
        }
    }
}

// ANCHOR: blockwise_attention
/// Scaled dot-product attention (`eq:attention`) block by block, with the online softmax
/// (`eq:online-softmax`): the output of
/// [`scaled_dot_product_attention`](crate::attention::scaled_dot_product_attention) without its
/// (n, m) weights.
///
/// # Shapes
/// `q`: (n, d_k), `k`: (m, d_k), `v`: (m, d_v), `mask`: (n, m) -> (n, d_v).
///
/// # Panics
/// If the shapes do not fit together or a block size is 0; the message names them.
///
/// # Example
/// Two keys, equally similar to the query: the output is the mean of the two values.
/// ```
/// use aiayn::blockwise::{blockwise_attention, Blocks};
/// use nalgebra::dmatrix;
/// let (q, k, v) = (dmatrix![1.0, 0.0], dmatrix![0.0, 1.0; 0.0, -1.0], dmatrix![2.0; 4.0]);
/// let one_key_per_block = Blocks { queries: 1, keys: 1 };
/// assert_eq!(blockwise_attention(&q, &k, &v, None, one_key_per_block), dmatrix![3.0]);
/// ```
pub fn blockwise_attention<T: RealField + Copy>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    mask: Option<&dyn Allows>,
    blocks: Blocks,
) -> DMatrix<T> {
    check(q, k, v, mask, blocks);
    let (n, m) = (q.nrows(), k.nrows());
    let (b_q, b_k) = (blocks.queries.min(n), blocks.keys.min(m));
    let scale = T::one() / nalgebra::convert::<f64, T>(q.ncols() as f64).sqrt();
    let q_t = q.transpose(); // (d_k, n): column i is query i
    let v_t = v.transpose(); // (d_v, m): column j is value j
    let mut out_t = DMatrix::zeros(v.ncols(), n); // (d_v, n): column i is o for query i
    let mut tile = vec![T::zero(); b_k * b_q]; // S^T, then P, for one tile
    let mut allowed = vec![true; b_k];
    let neg_inf = -T::one() / T::zero();
    for i0 in (0..n).step_by(b_q) {
        let queries = i0..(i0 + b_q).min(n);
        let mut sum = vec![T::zero(); queries.len()]; // l, 0 until a visible key is met
        let mut max = vec![T::zero(); queries.len()]; // mu, read only once l > 0
        for j0 in (0..m).step_by(b_k) {
            let keys = j0..(j0 + b_k).min(m);
            if mask.is_some_and(|a| !a.any_allowed(queries.clone(), keys.clone())) {
                continue; // no query of this block may see these keys
            }
            let tile = &mut tile[..keys.len() * queries.len()];
            let mut s_t = DMatrixViewMut::from_slice(tile, keys.len(), queries.len());
            // (b_k, d_k) x (d_k, b_q) -> (b_k, b_q), scaled by 1 / sqrt(d_k)
            s_t.gemm(
                scale,
                &k.rows(j0, keys.len()),
                &q_t.columns(i0, queries.len()),
                T::zero(),
            );
            for (c, s) in tile.chunks_exact_mut(keys.len()).enumerate() {
                let i = i0 + c; // this column is query i's scores over the block's keys
                if let Some(mask) = mask {
                    mask.allowed_keys(i, keys.clone(), &mut allowed);
                    for (x, _) in s.iter_mut().zip(&allowed).filter(|(_, &ok)| !ok) {
                        *x = neg_inf; // as Eq. 1 does: exp(-inf) = 0
                    }
                }
                let rescale = fold_block(s, &mut max[c], &mut sum[c]);
                if rescale != T::one() {
                    out_t.column_mut(i).scale_mut(rescale); // o_{t-1} onto the new maximum
                }
            }
            let p = DMatrixView::from_slice(&*tile, keys.len(), queries.len()); // (b_k, b_q)
            let v_block = v_t.columns(j0, keys.len()); // (d_v, b_k)
            let mut o_block = out_t.columns_mut(i0, queries.len());
            // (d_v, b_k) x (b_k, b_q) -> (d_v, b_q), added to the rescaled o
            o_block.gemm(T::one(), &v_block, &p, T::one());
        }
        for (c, &l) in sum.iter().enumerate() {
            if l > T::zero() {
                out_t.column_mut(i0 + c).unscale_mut(l); // o_T / l_T
            } // l = 0: every key masked, o stays 0
        }
    }
    out_t.transpose() // (n, d_v)
}
// ANCHOR_END: blockwise_attention

// ANCHOR: fold_block
/// One step of the online softmax (`eq:online-softmax`) for one query: folds the scores `s` of
/// a new block of keys (`-inf` where masked) into the running maximum `max` (mu) and sum `sum`
/// (l), replaces each score by its unnormalised weight `exp(s_j - mu_t)`, and returns
/// `exp(mu_{t-1} - mu_t)`, the factor that moves the accumulated output onto the new maximum.
fn fold_block<T: RealField + Copy>(s: &mut [T], max: &mut T, sum: &mut T) -> T {
    let block_max = s.iter().fold(s[0], |a, &b| a.max(b));
    if !block_max.is_finite() && block_max < T::zero() {
        s.fill(T::zero()); // every key of this block is masked: nothing changes
        return T::one();
    }
    let first = *sum == T::zero(); // mu_{t-1} = -inf: nothing to rescale yet
    let new_max = if first { block_max } else { max.max(block_max) };
    let rescale = if first {
        T::zero()
    } else {
        (*max - new_max).exp()
    };
    let mut block_sum = T::zero();
    for x in s.iter_mut() {
        *x = (*x - new_max).exp(); // exp(-inf) = 0 for a masked key
        block_sum += *x;
    }
    *sum = *sum * rescale + block_sum;
    *max = new_max;
    rescale
}
// ANCHOR_END: fold_block

fn check<T: RealField>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    mask: Option<&dyn Allows>,
    blocks: Blocks,
) {
    crate::attention::check_shapes(q, k, v);
    if let Some(mask) = mask {
        assert_eq!(
            mask.shape(),
            (q.nrows(), k.nrows()),
            "a mask of shape {:?} does not fit {} queries and {} keys",
            mask.shape(),
            q.nrows(),
            k.nrows()
        );
    }
    assert!(
        blocks.queries > 0 && blocks.keys > 0,
        "blocks of {} queries by {} keys: both must be at least 1",
        blocks.queries,
        blocks.keys
    );
}
