//! Softmax over the rows of a matrix, the normaliser inside Eq. 1 (§3.2.1) and the generator's
//! output distribution (§3.4).
//!
//! `softmax(x)_j = exp(x_j) / sum_l exp(x_l)`, taken along each row. Computed the stable way:
//! the row maximum is subtracted first, which changes nothing mathematically (softmax is
//! invariant to adding a constant to a row) but keeps `exp` from overflowing for logits in the
//! thousands.
//!
//! A row whose entries are all `-inf` (every key masked, §3.2.3) has no defined softmax; here it
//! maps to a row of zeros, so that attention over nothing returns the zero vector instead of NaN.

use nalgebra::{DMatrix, RealField};

// ANCHOR: softmax
/// Row-wise softmax (`eq:softmax`).
///
/// # Shapes
/// `x`: (n, m) -> (n, m); every row of the result is a probability distribution, except that
/// a row of all `-inf` gives a row of zeros.
///
/// # Example
/// ```
/// use nalgebra::dmatrix;
/// let p = aiayn::softmax::softmax_rows(&dmatrix![0.0, 0.0, 0.0, 0.0]);
/// assert_eq!(p, dmatrix![0.25, 0.25, 0.25, 0.25]);
/// ```
pub fn softmax_rows<T: RealField + Copy>(x: &DMatrix<T>) -> DMatrix<T> {
    let mut y = x.clone();
    for mut row in y.row_iter_mut() {
        let max = row.max();
        if !max.is_finite() && max < T::zero() {
            row.fill(T::zero()); // every entry is -inf: attend to nothing
            continue;
        }
        row.apply(|z| *z = (*z - max).exp()); // largest entry becomes exp(0) = 1
        let sum = row.sum(); // >= 1, so the division is safe
        row /= sum;
    }
    y
}
// ANCHOR_END: softmax

/// Row-wise log-softmax: `log softmax(x)_j = x_j - max - log sum_l exp(x_l - max)`.
///
/// Used by the generator (§3.4) and the loss (§5.4); computed directly rather than as
/// `ln(softmax(x))`, which would turn tiny probabilities into `-inf`.
///
/// # Shapes
/// `x`: (n, m) -> (n, m). A row of all `-inf` stays all `-inf`.
pub fn log_softmax_rows<T: RealField + Copy>(x: &DMatrix<T>) -> DMatrix<T> {
    let mut y = x.clone();
    for mut row in y.row_iter_mut() {
        let max = row.max();
        if !max.is_finite() && max < T::zero() {
            continue; // all -inf: log of an empty distribution
        }
        let log_sum = row
            .iter()
            .map(|&z| (z - max).exp())
            .fold(T::zero(), |a, b| a + b)
            .ln();
        row.apply(|z| *z = *z - max - log_sum);
    }
    y
}

// ANCHOR: softmax_backward
/// The backward pass of [`softmax_rows`] (`eq:softmax-backward`): given y = softmax(x) and
/// dL/dy, returns dL/dx, row by row `dx_j = y_j (dy_j - sum_l y_l dy_l)`.
///
/// A fully masked row (y = 0) gets gradient 0: no score of it can change the output.
///
/// # Shapes
/// `y`, `d_y`: (n, m) -> (n, m).
pub fn softmax_rows_backward<T: RealField + Copy>(y: &DMatrix<T>, d_y: &DMatrix<T>) -> DMatrix<T> {
    assert_eq!(
        y.shape(),
        d_y.shape(),
        "softmax backward: y is {:?} but dL/dy is {:?}",
        y.shape(),
        d_y.shape()
    );
    let mut d_x = y.component_mul(d_y); // y_j dy_j
    for (mut row, y_row) in d_x.row_iter_mut().zip(y.row_iter()) {
        let dot = row.sum(); // sum_l y_l dy_l
        row -= y_row * dot; // y_j dy_j - y_j dot
    }
    d_x
}
// ANCHOR_END: softmax_backward

// ANCHOR: log_softmax_backward
/// The backward pass of [`log_softmax_rows`] (`eq:log-softmax-backward`): given
/// log y = log_softmax(x) and dL/d(log y), returns dL/dx = d(log y) - y sum_l d(log y)_l.
///
/// A row of all `-inf` inputs gets gradient 0.
///
/// # Shapes
/// `log_y`, `d_log_y`: (n, m) -> (n, m).
pub fn log_softmax_rows_backward<T: RealField + Copy>(
    log_y: &DMatrix<T>,
    d_log_y: &DMatrix<T>,
) -> DMatrix<T> {
    assert_eq!(
        log_y.shape(),
        d_log_y.shape(),
        "log-softmax backward: log y is {:?} but its gradient is {:?}",
        log_y.shape(),
        d_log_y.shape()
    );
    let mut d_x = d_log_y.clone();
    for (mut row, log_row) in d_x.row_iter_mut().zip(log_y.row_iter()) {
        if log_row.iter().all(|z| !z.is_finite() && *z < T::zero()) {
            row.fill(T::zero()); // a row of all -inf: nothing to move
            continue;
        }
        let total = row.sum(); // sum_l d(log y)_l
        for (d, &l) in row.iter_mut().zip(log_row.iter()) {
            *d -= l.exp() * total;
        }
    }
    d_x
}
// ANCHOR_END: log_softmax_backward
