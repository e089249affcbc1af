//! Layer normalisation (Ba, Kiros and Hinton, 2016), used after every sub-layer (§3.1).
//!
//! ```text
//! LayerNorm(x) = gain * (x - mean(x)) / sqrt(var(x) + eps) + bias
//! ```
//!
//! Each row (one position) is normalised over its d_model features to mean 0 and variance 1,
//! then scaled and shifted by learned per-feature `gain` and `bias`. The variance is the biased
//! one (divide by d_model), and eps sits inside the square root, as in PyTorch's `nn.LayerNorm`.
//! The paper does not state eps: PyTorch's default is 1e-5, tensor2tensor's 1e-6; it is a field.

use nalgebra::{DMatrix, RealField, RowDVector};

use crate::init::{ones_row, zeros_row};

/// Per-feature gain and bias, and the eps added to the variance.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T: RealField> {
    pub gain: RowDVector<T>,
    pub bias: RowDVector<T>,
    pub eps: f64,
}

impl<T: RealField + Copy> LayerNorm<T> {
    /// Gain 1, bias 0: a plain normalisation.
    pub fn new(d_model: usize, eps: f64) -> Self {
        LayerNorm {
            gain: ones_row(d_model),
            bias: zeros_row(d_model),
            eps,
        }
    }

    /// Number of parameters (gain and bias).
    pub fn num_params(&self) -> usize {
        self.gain.len() + self.bias.len()
    }

    // ANCHOR: layer_norm
    /// LayerNorm(x) over each row (`eq:layer-norm`).
    ///
    /// # Shapes
    /// `x`: (n, d_model) -> (n, d_model).
    ///
    /// # Panics
    /// If `x` is not d_model wide.
    pub fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let d = self.gain.len();
        assert_eq!(
            x.ncols(),
            d,
            "layer norm: input is {} wide but d_model = {d}",
            x.ncols()
        );
        let d_t: T = nalgebra::convert(d as f64);
        let eps: T = nalgebra::convert(self.eps);
        let mut y = x.clone();
        for mut row in y.row_iter_mut() {
            let mean = row.sum() / d_t;
            row.add_scalar_mut(-mean); // centre
            let var = row.norm_squared() / d_t; // biased variance
            row /= (var + eps).sqrt();
            row.component_mul_assign(&self.gain);
            row += &self.bias;
        }
        y
    }
    // ANCHOR_END: layer_norm
}
