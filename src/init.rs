//! Random initialisation. The paper does not say how its weights were initialised; this crate
//! uses Xavier/Glorot uniform for weight matrices (as PyTorch's `nn.Transformer` does for every
//! matrix it holds) and zero biases.

use nalgebra::{DMatrix, RealField, RowDVector};
use rand::Rng;

/// Uniform in [-a, a] with a = sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010).
pub fn xavier_uniform<T: RealField + Copy>(
    fan_in: usize,
    fan_out: usize,
    rng: &mut impl Rng,
) -> DMatrix<T> {
    let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    DMatrix::from_fn(fan_in, fan_out, |_, _| {
        nalgebra::convert(rng.random_range(-a..=a))
    })
}

/// A zero row vector of length n.
pub fn zeros_row<T: RealField + Copy>(n: usize) -> RowDVector<T> {
    RowDVector::zeros(n)
}

/// A row vector of ones of length n.
pub fn ones_row<T: RealField + Copy>(n: usize) -> RowDVector<T> {
    RowDVector::from_element(n, T::one())
}
