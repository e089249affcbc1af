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
use crate::matmul::times;
use crate::params::{Param, ParamMut, Parameters};

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

    /// [`FeedForward::forward`] with products that stay fast for the single row of a decoding
    /// step (see the cached decoder, [`crate::decoder::DecoderLayer::forward_step`]); the same
    /// values up to rounding.
    ///
    /// # Shapes
    /// `x`: (n, d_model) -> (n, d_model).
    pub fn forward_step(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let mut hidden = times(x, &self.w_1); // (n, d_model) x (d_model, d_ff) -> (n, d_ff)
        for mut row in hidden.row_iter_mut() {
            row += &self.b_1;
            row.apply(|z| *z = z.max(T::zero())); // ReLU
        }
        let mut y = times(&hidden, &self.w_2); // (n, d_ff) x (d_ff, d_model) -> (n, d_model)
        for mut row in y.row_iter_mut() {
            row += &self.b_2;
        }
        y
    }

    /// [`FeedForward::forward`], keeping what [`FeedForward::backward`] needs.
    pub fn forward_train(&self, x: &DMatrix<T>) -> (DMatrix<T>, FeedForwardCache<T>) {
        // As `forward`, with the biases added column by column (adjacent in memory).
        let mut hidden = x * &self.w_1; // (n, d_model) x (d_model, d_ff) -> (n, d_ff)
        for (mut col, &b) in hidden.column_iter_mut().zip(self.b_1.iter()) {
            col.add_scalar_mut(b);
        }
        hidden.apply(|z| *z = z.max(T::zero())); // ReLU
        let mut y = &hidden * &self.w_2; // (n, d_ff) x (d_ff, d_model) -> (n, d_model)
        for (mut col, &b) in y.column_iter_mut().zip(self.b_2.iter()) {
            col.add_scalar_mut(b);
        }
        let cache = FeedForwardCache {
            x: x.clone(),
            hidden,
        };
        (y, cache)
    }

    // ANCHOR: ffn_backward
    /// The backward pass of Eq. 2 (`eq:ffn-backward`). With H = max(0, x W_1 + b_1):
    /// dW_2 = H^T dy, db_2 = sum of the rows of dy, dH = (dy W_2^T) * [H > 0],
    /// dW_1 = x^T dH, db_1 = sum of the rows of dH, dx = dH W_1^T.
    ///
    /// # Shapes
    /// `d_y`: (n, d_model) -> dL/dx (n, d_model), and the gradients of W_1, b_1, W_2, b_2.
    pub fn backward(
        &self,
        cache: &FeedForwardCache<T>,
        d_y: &DMatrix<T>,
    ) -> (DMatrix<T>, FeedForward<T>) {
        let w_2 = cache.hidden.transpose() * d_y; // (d_ff, n) x (n, d_model) -> (d_ff, d_model)
        let b_2 = d_y.row_sum();
        let mut d_hidden = d_y * self.w_2.transpose(); // (n, d_model) x (d_model, d_ff) -> (n, d_ff)
        d_hidden.zip_apply(&cache.hidden, |d, h| {
            if h <= T::zero() {
                *d = T::zero(); // ReLU passes no gradient where it output 0
            }
        });
        let w_1 = cache.x.transpose() * &d_hidden; // (d_model, n) x (n, d_ff) -> (d_model, d_ff)
        let b_1 = d_hidden.row_sum();
        let d_x = d_hidden * self.w_1.transpose(); // (n, d_ff) x (d_ff, d_model) -> (n, d_model)
        (d_x, FeedForward { w_1, b_1, w_2, b_2 })
    }
    // ANCHOR_END: ffn_backward
}

/// What [`FeedForward::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct FeedForwardCache<T: RealField> {
    /// The input, (n, d_model).
    pub x: DMatrix<T>,
    /// max(0, x W_1 + b_1), (n, d_ff).
    pub hidden: DMatrix<T>,
}

impl<T: RealField + Copy> Parameters<T> for FeedForward<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        vec![
            Param::matrix("w_1", &self.w_1),
            Param::row("b_1", &self.b_1),
            Param::matrix("w_2", &self.w_2),
            Param::row("b_2", &self.b_2),
        ]
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        vec![
            ParamMut::matrix("w_1", &mut self.w_1),
            ParamMut::row("b_1", &mut self.b_1),
            ParamMut::matrix("w_2", &mut self.w_2),
            ParamMut::row("b_2", &mut self.b_2),
        ]
    }
}
