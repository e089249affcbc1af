//! Eq. 1 and multi-head attention (§3.2.1, §3.2.2) on the fast path.
//!
//! The scores Q K^T are one product with the scale 1 / sqrt(d_k) as its factor, K^T being a
//! view of K's memory with the strides swapped (no copy). The softmax then runs in place, row by
//! row but sweeping down the contiguous columns (see [`super::kernels`]); the masked entries are
//! set to -inf in the same sweep that finds each row's maximum. Each head reads its columns of
//! Q, K and V where they are (a head's columns are contiguous) and writes its output straight
//! into its columns of the concatenation. The heads are independent and run on the threads,
//! each thread reusing one scores buffer for all its heads when the weights are not kept; then
//! the division by each row's sum is applied to the (n, d_v) output instead of the (n, m)
//! weights.

use nalgebra::{DMatrix, DMatrixViewMut, RealField};

use super::kernels::{
    block, linear, map_chunks, recycle, scale_rows, scratch, softmax_rows_in_place, strided,
    transposed, RowStats,
};
use crate::attention::Attention;
use crate::mask::Mask;
use crate::multi_head::{MultiHeadAttention, MultiHeadOutput};

/// [`crate::attention::scaled_dot_product_attention`] on the fast path. Equal to the plain
/// function up to rounding (including fully masked queries, which get zero weights and a zero
/// output).
///
/// # Shapes
/// `q`: (n, d_k), `k`: (m, d_k), `v`: (m, d_v), `mask`: (n, m) -> output (n, d_v),
/// weights (n, m).
///
/// # Panics
/// If the shapes do not fit together.
pub fn scaled_dot_product_attention_fast<T: RealField + Copy>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    mask: Option<&Mask>,
) -> Attention<T> {
    assert!(
        q.ncols() == k.ncols() && k.nrows() == v.nrows(),
        "attention: q is {:?}, k is {:?}, v is {:?}; need q and k equally wide, k and v equally long",
        q.shape(),
        k.shape(),
        v.shape()
    );
    check_mask(mask, q.nrows(), k.nrows());
    let (n, m, d_v) = (q.nrows(), k.nrows(), v.ncols());
    let mut weights = DMatrix::zeros(n, m);
    let mut output = DMatrix::zeros(n, d_v);
    let head = Head {
        q: q.as_slice(),
        k: k.as_slice(),
        v: v.as_slice(),
        n,
        m,
        d_k: q.ncols(),
        d_v,
    };
    head.attend(
        mask,
        weights.as_mut_slice(),
        true,
        &mut RowStats::new(),
        output.as_mut_slice(),
    );
    Attention { output, weights }
}

/// One head's operands: its contiguous column blocks of Q (n, d_k), K (m, d_k) and V (m, d_v).
struct Head<'a, T> {
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    n: usize,
    m: usize,
    d_k: usize,
    d_v: usize,
}

impl<T: RealField + Copy> Head<'_, T> {
    /// softmax(Q K^T / sqrt(d_k)) V into `out` (n, d_v), with the (n, m) weights computed in
    /// `scores`; they are normalised there only when `keep_weights`.
    fn attend(
        &self,
        mask: Option<&Mask>,
        scores: &mut [T],
        keep_weights: bool,
        stats: &mut RowStats<T>,
        out: &mut [T],
    ) {
        let (n, m) = (self.n, self.m);
        let scale = T::one() / nalgebra::convert::<f64, T>(self.d_k as f64).sqrt();
        let q = block(self.q, n, self.d_k);
        let k_t = transposed(self.k, m, self.d_k); // (d_k, m), K's memory
        DMatrixViewMut::from_slice(scores, n, m).gemm(scale, &q, &k_t, T::zero()); // (n, m)
        softmax_rows_in_place(scores, n, mask, keep_weights, stats);
        let mut o = DMatrixViewMut::from_slice(out, n, self.d_v);
        o.gemm(
            T::one(),
            &block(scores, n, m),
            &block(self.v, m, self.d_v),
            T::zero(),
        ); // (n, m) x (m, d_v)
        if !keep_weights {
            scale_rows(out, n, &stats.b); // the softmax's division, on the smaller matrix
        }
    }
}

fn check_mask(mask: Option<&Mask>, n: usize, m: usize) {
    if let Some(mask) = mask {
        assert_eq!(mask.shape(), (n, m), "mask does not fit the scores");
    }
}

/// [`MultiHeadAttention::forward`] on the fast path, heads spread over `threads` threads.
/// The result is the same, bit for bit, for every thread count.
///
/// # Shapes
/// As [`MultiHeadAttention::forward`].
pub fn multi_head_forward_fast<T: RealField + Copy>(
    mha: &MultiHeadAttention<T>,
    query: &DMatrix<T>,
    key: &DMatrix<T>,
    value: &DMatrix<T>,
    mask: Option<&Mask>,
    threads: usize,
) -> MultiHeadOutput<T> {
    let (output, weights) = multi_head(mha, query, key, value, mask, true, threads);
    MultiHeadOutput { output, weights }
}

/// [`multi_head_forward_fast`] without the attention weights, which are then never
/// normalised nor kept: what the layers use.
///
/// # Shapes
/// As [`MultiHeadAttention::forward`] -> (n, d_model).
pub fn multi_head_output_fast<T: RealField + Copy>(
    mha: &MultiHeadAttention<T>,
    query: &DMatrix<T>,
    key: &DMatrix<T>,
    value: &DMatrix<T>,
    mask: Option<&Mask>,
    threads: usize,
) -> DMatrix<T> {
    multi_head(mha, query, key, value, mask, false, threads).0
}

fn multi_head<T: RealField + Copy>(
    mha: &MultiHeadAttention<T>,
    query: &DMatrix<T>,
    key: &DMatrix<T>,
    value: &DMatrix<T>,
    mask: Option<&Mask>,
    keep_weights: bool,
    threads: usize,
) -> (DMatrix<T>, Vec<DMatrix<T>>) {
    let (h, d_k, d_v) = (mha.h, mha.d_k, mha.d_v);
    assert!(
        query.ncols() == mha.d_model()
            && key.ncols() == mha.d_model()
            && value.ncols() == mha.d_model()
            && key.nrows() == value.nrows(),
        "multi-head attention: query is {:?}, key {:?}, value {:?}; need d_model = {} wide, key and value equally long",
        query.shape(),
        key.shape(),
        value.shape(),
        mha.d_model()
    );
    let (n, m) = (query.nrows(), key.nrows());
    check_mask(mask, n, m);
    let q = linear(query, strided(&mha.w_q), mha.b_q.as_ref(), false, threads); // (n, h d_k)
    let k = linear(key, strided(&mha.w_k), mha.b_k.as_ref(), false, threads); // (m, h d_k)
    let v = linear(value, strided(&mha.w_v), mha.b_v.as_ref(), false, threads); // (m, h d_v)
    let mut concat = scratch(n, h * d_v); // (n, h d_v); head i writes its d_v columns
    let weights = map_chunks(
        concat.as_mut_slice(),
        &vec![n * d_v; h],
        threads,
        || {
            let scores = scratch(if keep_weights { 0 } else { n }, m);
            (Spare(scores), RowStats::new())
        },
        |(Spare(scores), stats), i, out| {
            let head = Head {
                q: &q.as_slice()[i * n * d_k..(i + 1) * n * d_k],
                k: &k.as_slice()[i * m * d_k..(i + 1) * m * d_k],
                v: &v.as_slice()[i * m * d_v..(i + 1) * m * d_v],
                n,
                m,
                d_k,
                d_v,
            };
            if keep_weights {
                let mut w = DMatrix::zeros(n, m);
                head.attend(mask, w.as_mut_slice(), true, stats, out);
                Some(w)
            } else {
                head.attend(mask, scores.as_mut_slice(), false, stats, out);
                None
            }
        },
    );
    let output = linear(&concat, strided(&mha.w_o), mha.b_o.as_ref(), false, threads); // (n, d_model)
    for temporary in [q, k, v, concat] {
        recycle(temporary);
    }
    (output, weights.into_iter().flatten().collect())
}

/// A thread's scores buffer, handed back to that thread's spare buffers when the thread is
/// done with its heads.
struct Spare<T: RealField + Copy>(DMatrix<T>);

impl<T: RealField + Copy> Drop for Spare<T> {
    fn drop(&mut self) {
        recycle(std::mem::replace(&mut self.0, DMatrix::zeros(0, 0)));
    }
}
