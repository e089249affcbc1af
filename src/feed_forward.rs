//! The position-wise feed-forward network, Eq. 2 (§3.3).
//!
//! ```text
//! FFN(x) = max(0, x W_1 + b_1) W_2 + b_2
//! ```
//!
//! Two linear maps with a ReLU between them, applied to every position separately and
//! identically: row i of the output depends on row i of the input alone. (The paper's other
//! description, two convolutions with kernel size 1, is the same computation.) In the base model
//! d_model = 512 and the inner width d_ff = 2048.

use nalgebra::{DMatrix, RealField, RowDVector};
use rand::Rng;

use crate::init::{xavier_uniform, zeros_row};

/// W_1 (d_model, d_ff), b_1 (d_ff), W_2 (d_ff, d_model), b_2 (d_model).
#[derive(Clone, Debug, PartialEq)]
pub struct FeedForward<T: RealField> {
    pub w_1: DMatrix<T>,
    pub b_1: RowDVector<T>,
    pub w_2: DMatrix<T>,
    pub b_2: RowDVector<T>,
}

impl<T: RealField + Copy> FeedForward<T> {
    /// Xavier-uniform weights, zero biases.
    pub fn new(d_model: usize, d_ff: usize, rng: &mut impl Rng) -> Self {
        FeedForward {
            w_1: xavier_uniform(d_model, d_ff, rng),
            b_1: zeros_row(d_ff),
            w_2: xavier_uniform(d_ff, d_model, rng),
            b_2: zeros_row(d_model),
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.w_1.len() + self.b_1.len() + self.w_2.len() + self.b_2.len()
    }

    // ANCHOR: ffn
    /// FFN(x) (`eq:ffn`).
    ///
    /// # Shapes
    /// `x`: (n, d_model) -> (n, d_model).
    ///
    /// # Panics
    /// If `x` is not d_model wide.
    pub fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        assert_eq!(
            x.ncols(),
            self.w_1.nrows(),
            "feed-forward: input is {} wide but d_model = {}",
            x.ncols(),
            self.w_1.nrows()
        );
        let mut hidden = x * &self.w_1; // (n, d_model) x (d_model, d_ff) -> (n, d_ff)
        for mut row in hidden.row_iter_mut() {
            row += &self.b_1;
            row.apply(|z| *z = z.max(T::zero())); // ReLU
        }
        let mut y = hidden * &self.w_2; // (n, d_ff) x (d_ff, d_model) -> (n, d_model)
        for mut row in y.row_iter_mut() {
            row += &self.b_2;
        }
        y
    }
    // ANCHOR_END: ffn
}
