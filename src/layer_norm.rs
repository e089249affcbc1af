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

use nalgebra::{DMatrix, DVector, RealField, RowDVector};

use crate::init::{ones_row, zeros_row};
use crate::params::{Param, ParamMut, Parameters};

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
        check_width(x, d);
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

    /// [`LayerNorm::forward`], keeping what [`LayerNorm::backward`] needs.
    ///
    /// The same arithmetic as `forward`, arranged column by column: nalgebra stores a matrix
    /// column after column, so a row's entries are far apart in memory while a column's are
    /// adjacent. The per-row statistics are gathered in vectors with one entry per row.
    pub fn forward_train(&self, x: &DMatrix<T>) -> (DMatrix<T>, LayerNormCache<T>) {
        let d = self.gain.len();
        check_width(x, d);
        let d_t: T = nalgebra::convert(d as f64);
        let eps: T = nalgebra::convert(self.eps);
        let mean = x.column_mean(); // one entry per row
        let mut x_hat = x.clone();
        let mut var = DVector::zeros(x.nrows());
        for mut col in x_hat.column_iter_mut() {
            col -= &mean; // centre every row
            var += col.component_mul(&col);
        }
        let inv_std = var.map(|v| T::one() / (v / d_t + eps).sqrt()); // 1 / sigma per row
        let mut y = x_hat.clone();
        for (j, (mut x_col, mut y_col)) in
            x_hat.column_iter_mut().zip(y.column_iter_mut()).enumerate()
        {
            x_col.component_mul_assign(&inv_std);
            y_col.copy_from(&x_col);
            y_col *= self.gain[j];
            y_col.add_scalar_mut(self.bias[j]);
        }
        (y, LayerNormCache { x_hat, inv_std })
    }

    // ANCHOR: layer_norm_backward
    /// The backward pass of LayerNorm (`eq:layer-norm-backward`). With x_hat the normalised row,
    /// sigma = sqrt(var + eps) and g = dy * gain: dgain = sum over rows of dy * x_hat,
    /// dbias = sum over rows of dy, and per row
    /// dx = (g - mean(g) - x_hat mean(g * x_hat)) / sigma.
    ///
    /// # Shapes
    /// `d_y`: (n, d_model) -> dL/dx (n, d_model), and the gradients of gain and bias.
    pub fn backward(
        &self,
        cache: &LayerNormCache<T>,
        d_y: &DMatrix<T>,
    ) -> (DMatrix<T>, LayerNorm<T>) {
        let grads = LayerNorm {
            gain: d_y.component_mul(&cache.x_hat).row_sum(),
            bias: d_y.row_sum(),
            eps: self.eps,
        };
        let mut g = d_y.clone();
        for (j, mut col) in g.column_iter_mut().enumerate() {
            col *= self.gain[j]; // g = dy * gain
        }
        let mean_g = g.column_mean(); // per row
        let mean_gx = g.component_mul(&cache.x_hat).column_mean(); // per row
        for (mut col, x_hat) in g.column_iter_mut().zip(cache.x_hat.column_iter()) {
            col -= &mean_g;
            col -= x_hat.component_mul(&mean_gx);
            col.component_mul_assign(&cache.inv_std);
        }
        (g, grads)
    }
    // ANCHOR_END: layer_norm_backward
}

/// What [`LayerNorm::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct LayerNormCache<T: RealField> {
    /// The normalised rows (x - mean) / sigma, before gain and bias.
    pub x_hat: DMatrix<T>,
    /// 1 / sigma for each row.
    pub inv_std: DVector<T>,
}

impl<T: RealField + Copy> Parameters<T> for LayerNorm<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        vec![
            Param::row("gain", &self.gain),
            Param::row("bias", &self.bias),
        ]
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        vec![
            ParamMut::row("gain", &mut self.gain),
            ParamMut::row("bias", &mut self.bias),
        ]
    }
}

/// Panics, naming both widths, unless `x` is `d` wide.
fn check_width<T: RealField>(x: &DMatrix<T>, d: usize) {
    assert_eq!(
        x.ncols(),
        d,
        "layer norm: input is {} wide but d_model = {d}",
        x.ncols()
    );
}
