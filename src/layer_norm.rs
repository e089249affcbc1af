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

    /// [`LayerNorm::forward`], keeping what [`LayerNorm::backward`] needs.
    pub fn forward_train(&self, x: &DMatrix<T>) -> (DMatrix<T>, LayerNormCache<T>) {
        let d_t: T = nalgebra::convert(self.gain.len() as f64);
        let eps: T = nalgebra::convert(self.eps);
        let mut x_hat = x.clone();
        let mut inv_std = Vec::with_capacity(x.nrows());
        for mut row in x_hat.row_iter_mut() {
            let mean = row.sum() / d_t;
            row.add_scalar_mut(-mean);
            let s = T::one() / (row.norm_squared() / d_t + eps).sqrt();
            row *= s;
            inv_std.push(s);
        }
        let mut y = x_hat.clone();
        for mut row in y.row_iter_mut() {
            row.component_mul_assign(&self.gain);
            row += &self.bias;
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
        let d_t: T = nalgebra::convert(self.gain.len() as f64);
        let grads = LayerNorm {
            gain: d_y.component_mul(&cache.x_hat).row_sum(),
            bias: d_y.row_sum(),
            eps: self.eps,
        };
        let mut d_x = d_y.clone();
        for (i, mut row) in d_x.row_iter_mut().enumerate() {
            row.component_mul_assign(&self.gain); // g = dy * gain
            let x_hat = cache.x_hat.row(i);
            let mean_g = row.sum() / d_t;
            let mean_gx = row.dot(&x_hat) / d_t;
            row.add_scalar_mut(-mean_g);
            row -= x_hat * mean_gx;
            row *= cache.inv_std[i];
        }
        (d_x, grads)
    }
    // ANCHOR_END: layer_norm_backward
}

/// What [`LayerNorm::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct LayerNormCache<T: RealField> {
    /// The normalised rows (x - mean) / sigma, before gain and bias.
    pub x_hat: DMatrix<T>,
    /// 1 / sigma for each row.
    pub inv_std: Vec<T>,
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
