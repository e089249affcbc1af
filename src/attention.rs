//! Scaled dot-product attention, Eq. 1 of the paper (§3.2.1).
//!
//! ```text
//! Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
//! ```
//!
//! Each of the n queries (rows of Q) is compared with each of the m keys (rows of K) by a dot
//! product; the scores of one query become a probability distribution over the keys; the
//! output for that query is the matching weighted average of the values (rows of V). So every
//! output row is a convex combination of the rows of V.
//!
//! Why divide by sqrt(d_k)? Footnote 4: if the components of q and k are independent with mean 0
//! and variance 1, then q . k has mean 0 and variance d_k. Left unscaled, large d_k pushes the
//! softmax into regions where one key takes almost all the weight and the gradients vanish.
//! Dividing by sqrt(d_k) brings the variance back to 1, whatever the width.

use nalgebra::{DMatrix, RealField};

use crate::mask::Mask;
use crate::softmax::{softmax_rows, softmax_rows_backward};

/// The result of Eq. 1: the output and the attention weights that produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention<T: RealField> {
    /// softmax(Q K^T / sqrt(d_k)) V, shape (n, d_v).
    pub output: DMatrix<T>,
    /// softmax(Q K^T / sqrt(d_k)), shape (n, m): row i is query i's distribution over the keys.
    pub weights: DMatrix<T>,
}

// ANCHOR: attention
/// Scaled dot-product attention (`eq:attention`), with an optional mask (`eq:causal-mask`).
///
/// # Shapes
/// `q`: (n, d_k), `k`: (m, d_k), `v`: (m, d_v), `mask`: (n, m) -> output (n, d_v),
/// weights (n, m).
///
/// # Panics
/// If the shapes do not fit together; the message names them.
///
/// # Example
/// Two keys, equally similar to the query, so the output is the mean of the two values:
/// ```
/// use nalgebra::dmatrix;
/// let q = dmatrix![1.0, 0.0];
/// let k = dmatrix![0.0, 1.0; 0.0, -1.0];
/// let v = dmatrix![2.0; 4.0];
/// let a = aiayn::attention::scaled_dot_product_attention(&q, &k, &v, None);
/// assert_eq!(a.weights, dmatrix![0.5, 0.5]);
/// assert_eq!(a.output, dmatrix![3.0]);
/// ```
pub fn scaled_dot_product_attention<T: RealField + Copy>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    mask: Option<&Mask>,
) -> Attention<T> {
    check_shapes(q, k, v);
    let d_k: T = nalgebra::convert(q.ncols() as f64);
    let mut scores = q * k.transpose() / d_k.sqrt(); // (n, d_k) x (d_k, m) -> (n, m)
    if let Some(mask) = mask {
        mask.apply(&mut scores); // forbidden pairs -> -inf
    }
    let weights = softmax_rows(&scores); // each row sums to 1 (or is 0 if fully masked)
    let output = &weights * v; // (n, m) x (m, d_v) -> (n, d_v)
    Attention { output, weights }
}
// ANCHOR_END: attention

/// The gradients of Eq. 1 with respect to its three inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionGrads<T: RealField> {
    /// dL/dQ, (n, d_k).
    pub d_q: DMatrix<T>,
    /// dL/dK, (m, d_k).
    pub d_k: DMatrix<T>,
    /// dL/dV, (m, d_v).
    pub d_v: DMatrix<T>,
}

// ANCHOR: attention_backward
/// The backward pass of Eq. 1 (`eq:attention-backward`). With S = Q K^T / sqrt(d_k),
/// A = softmax(S) (the `weights` of the forward pass) and O = A V:
/// dV = A^T dO, dA = dO V^T, dS = softmax'(dA), dQ = dS K / sqrt(d_k), dK = dS^T Q / sqrt(d_k).
///
/// Masked pairs have weight 0, so their score gradient is 0 and nothing flows to them.
///
/// # Shapes
/// `q`: (n, d_k), `k`: (m, d_k), `v`: (m, d_v), `weights`: (n, m), `d_output`: (n, d_v).
pub fn scaled_dot_product_attention_backward<T: RealField + Copy>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    weights: &DMatrix<T>,
    d_output: &DMatrix<T>,
) -> AttentionGrads<T> {
    check_shapes(q, k, v);
    let scale = T::one() / nalgebra::convert::<f64, T>(q.ncols() as f64).sqrt();
    let d_v = weights.transpose() * d_output; // (m, n) x (n, d_v) -> (m, d_v)
    let d_weights = d_output * v.transpose(); // (n, d_v) x (d_v, m) -> (n, m)
    let d_scores = softmax_rows_backward(weights, &d_weights) * scale; // (n, m)
    let d_q = &d_scores * k; // (n, m) x (m, d_k) -> (n, d_k)
    let d_k = d_scores.transpose() * q; // (m, n) x (n, d_k) -> (m, d_k)
    AttentionGrads { d_q, d_k, d_v }
}
// ANCHOR_END: attention_backward

// ANCHOR: dot_variance
/// Footnote 4's experiment (`eq:dot-variance`): draws `samples` pairs of vectors q, k with
/// independent components of mean 0 and variance 1 (uniform on [-sqrt 3, sqrt 3]) and returns
/// the sample mean and sample variance of q . k. The footnote predicts mean 0 and variance d_k.
pub fn dot_product_moments(d_k: usize, samples: usize, rng: &mut impl rand::Rng) -> (f64, f64) {
    let a = 3f64.sqrt(); // uniform on [-a, a] has variance a^2 / 3 = 1
    let dots: Vec<f64> = (0..samples)
        .map(|_| {
            (0..d_k)
                .map(|_| rng.random_range(-a..=a) * rng.random_range(-a..=a))
                .sum()
        })
        .collect();
    sample_moments(&dots)
}
// ANCHOR_END: dot_variance

/// The sample mean and the unbiased sample variance (divisor n - 1) of `xs`.
///
/// # Example
/// ```
/// assert_eq!(aiayn::attention::sample_moments(&[1.0, 2.0, 3.0, 6.0]), (3.0, 14.0 / 3.0));
/// ```
pub fn sample_moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let variance = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance)
}

/// Panics unless q and k are equally wide and k and v equally long; the message names the sizes.
pub(crate) fn check_shapes<T: RealField>(q: &DMatrix<T>, k: &DMatrix<T>, v: &DMatrix<T>) {
    assert_eq!(
        q.ncols(),
        k.ncols(),
        "attention: queries have d_k = {} but keys have d_k = {}",
        q.ncols(),
        k.ncols()
    );
    assert_eq!(
        k.nrows(),
        v.nrows(),
        "attention: {} keys but {} values; each key needs one value",
        k.nrows(),
        v.nrows()
    );
}
