//! Fast paths beside the plain code: the same arithmetic as [`crate::attention`] and
//! [`crate::multi_head`], arranged for nalgebra's column-major storage. The book shows the
//! plain code; property tests (`tests/properties_fast.rs`) hold these equal to it.
//!
//! What is different. A `DMatrix` stores its columns one after the other, so the row-wise
//! softmax of [`crate::softmax::softmax_rows`] walks each row with a stride of n entries, one
//! cache line per entry, three times (maximum, exponentials, sum and division). Here the scores
//! are computed transposed, `S^T = K Q^T` (m, n), so that query i's scores are column i,
//! contiguous in memory; the softmax runs down the columns, and one transpose at the end gives
//! the weights in the plain layout, ready for the product with V.

use nalgebra::{DMatrix, RealField};

use crate::attention::Attention;
use crate::mask::Mask;
use crate::multi_head::{project, MultiHeadAttention, MultiHeadOutput};

/// [`crate::attention::scaled_dot_product_attention`], with the softmax taken down the columns
/// of the transposed scores. Equal to the plain function up to rounding (including fully masked
/// queries, which get zero weights and a zero output).
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
    let scale = T::one() / nalgebra::convert::<f64, T>(q.ncols() as f64).sqrt();
    let mut scores_t = k * q.transpose(); // (m, d_k) x (d_k, n) -> (m, n): column i is query i
    if let Some(mask) = mask {
        assert_eq!(
            mask.shape(),
            (q.nrows(), k.nrows()),
            "mask does not fit the scores"
        );
        let neg_inf = -T::one() / T::zero();
        for (i, mut column) in scores_t.column_iter_mut().enumerate() {
            for (j, s) in column.iter_mut().enumerate() {
                if !mask.allows(i, j) {
                    *s = neg_inf;
                }
            }
        }
    }
    for mut column in scores_t.column_iter_mut() {
        let column = column.as_mut_slice(); // contiguous
        let max = column
            .iter()
            .fold(T::zero() - T::one() / T::zero(), |a, &b| a.max(b));
        if !max.is_finite() && max < T::zero() {
            column.fill(T::zero()); // every key masked: attend to nothing
            continue;
        }
        let mut sum = T::zero();
        for s in column.iter_mut() {
            *s = ((*s - max) * scale).exp(); // the scale folded into the exponent
            sum += *s;
        }
        let inv = T::one() / sum;
        for s in column.iter_mut() {
            *s *= inv;
        }
    }
    let weights = scores_t.transpose(); // (n, m)
    let output = &weights * v; // (n, m) x (m, d_v) -> (n, d_v)
    Attention { output, weights }
}

/// [`MultiHeadAttention::forward`] with [`scaled_dot_product_attention_fast`] in each head.
///
/// # Shapes
/// As [`MultiHeadAttention::forward`].
pub fn multi_head_forward_fast<T: RealField + Copy>(
    mha: &MultiHeadAttention<T>,
    query: &DMatrix<T>,
    key: &DMatrix<T>,
    value: &DMatrix<T>,
    mask: Option<&Mask>,
) -> MultiHeadOutput<T> {
    let (h, d_k, d_v) = (mha.h, mha.d_k, mha.d_v);
    assert!(
        query.ncols() == mha.d_model()
            && key.ncols() == mha.d_model()
            && value.ncols() == mha.d_model(),
        "multi-head attention: inputs must be d_model = {} wide",
        mha.d_model()
    );
    let q = project(query, &mha.w_q, &mha.b_q); // (n, h d_k)
    let k = project(key, &mha.w_k, &mha.b_k); // (m, h d_k)
    let v = project(value, &mha.w_v, &mha.b_v); // (m, h d_v)
    let mut concat = DMatrix::zeros(query.nrows(), h * d_v); // (n, h d_v)
    let mut weights = Vec::with_capacity(h);
    for i in 0..h {
        // columns are contiguous: these copies are plain memory copies
        let q_i = q.columns(i * d_k, d_k).into_owned(); // (n, d_k)
        let k_i = k.columns(i * d_k, d_k).into_owned(); // (m, d_k)
        let v_i = v.columns(i * d_v, d_v).into_owned(); // (m, d_v)
        let head_i = scaled_dot_product_attention_fast(&q_i, &k_i, &v_i, mask);
        concat.columns_mut(i * d_v, d_v).copy_from(&head_i.output);
        weights.push(head_i.weights);
    }
    let output = project(&concat, &mha.w_o, &mha.b_o); // (n, h d_v) x (h d_v, d_model) -> (n, d_model)
    MultiHeadOutput { output, weights }
}
