//! The product x W of a matrix of positions (one row each) and a weight matrix, as the
//! position-wise layers compute it: the feed-forward network, and multi-head attention's
//! projections during a decoding step. A module of its own, so that the feed-forward network
//! can be lifted out without multi-head attention.

use nalgebra::{DMatrix, RealField};

/// The product x W, also fast when x has only a few rows (a decoding step has one).
///
/// nalgebra hands a product to its blocked kernel only when every dimension exceeds 5; below
/// that, x W runs column by column as axpy updates of length n, which for n = 1 is about ten
/// times slower than the blocked product of a dozen rows. For up to 5 rows this computes each
/// row as W^T x_i^T instead: one contiguous dot product per column of W. The sums are the same
/// up to rounding.
///
/// # Shapes
/// `x`: (n, d_in), `w`: (d_in, d_out) -> (n, d_out).
pub(crate) fn times<T: RealField + Copy>(x: &DMatrix<T>, w: &DMatrix<T>) -> DMatrix<T> {
    if x.nrows() > 5 {
        return x * w; // (n, d_in) x (d_in, d_out) -> (n, d_out)
    }
    let mut y = DMatrix::zeros(x.nrows(), w.ncols());
    for i in 0..x.nrows() {
        let y_i = w.tr_mul(&x.row(i).transpose()); // (d_out, d_in) x (d_in, 1) -> (d_out, 1)
        y.row_mut(i).tr_copy_from(&y_i);
    }
    y
}
