//! The model's parameters as one list of named tensors.
//!
//! Every parameter struct (a LayerNorm, an FFN, a multi-head attention, the layers, the stacks,
//! the whole model) lists its tensors under the names the golden fixtures use: `w_q`, `b_1`,
//! `gain`, and, prefixed by where they sit, `encoder.layers.0.self_attn.w_q`,
//! `decoder.layers.1.norm3.gain`, `embedding`. That one list, in one fixed order, is what the
//! optimiser walks, what checkpoints store, and what parameter counts sum.
//!
//! A gradient has the same structure as the parameters it belongs to, so the backward passes
//! return their gradients as a value of the parameter struct itself: the gradient of a
//! [`crate::feed_forward::FeedForward`] is a `FeedForward` whose `w_1` holds dL/dW_1. Its
//! list of names is then the parameters' list, name for name.

use nalgebra::{DMatrix, RealField, RowDVector};

/// One named parameter tensor, read-only. `data` is nalgebra's column-major storage of a
/// (rows, cols) matrix; a bias or gain is a (1, n) row.
#[derive(Debug)]
pub struct Param<'a, T> {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [T],
}

/// One named parameter tensor, writable.
#[derive(Debug)]
pub struct ParamMut<'a, T> {
    pub name: String,
    pub data: &'a mut [T],
}

impl<'a, T: RealField + Copy> Param<'a, T> {
    /// A weight matrix.
    pub fn matrix(name: &str, m: &'a DMatrix<T>) -> Self {
        Param {
            name: name.to_string(),
            rows: m.nrows(),
            cols: m.ncols(),
            data: m.as_slice(),
        }
    }

    /// A bias or gain vector, as a (1, n) row.
    pub fn row(name: &str, r: &'a RowDVector<T>) -> Self {
        Param {
            name: name.to_string(),
            rows: 1,
            cols: r.len(),
            data: r.as_slice(),
        }
    }

    /// The parameter as a matrix (a copy).
    pub fn to_matrix(&self) -> DMatrix<T> {
        DMatrix::from_column_slice(self.rows, self.cols, self.data)
    }
}

impl<'a, T: RealField + Copy> ParamMut<'a, T> {
    /// A weight matrix.
    pub fn matrix(name: &str, m: &'a mut DMatrix<T>) -> Self {
        ParamMut {
            name: name.to_string(),
            data: m.as_mut_slice(),
        }
    }

    /// A bias or gain vector.
    pub fn row(name: &str, r: &'a mut RowDVector<T>) -> Self {
        ParamMut {
            name: name.to_string(),
            data: r.as_mut_slice(),
        }
    }
}

/// A struct that holds named parameter tensors.
pub trait Parameters<T: RealField + Copy> {
    /// Every tensor, in a fixed order, with its name.
    fn params(&self) -> Vec<Param<'_, T>>;

    /// Every tensor, writable, in the same order as [`Parameters::params`].
    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>>;
}

/// Prefixes every name of `list` with `prefix.`.
pub fn prefixed<'a, T>(
    prefix: &str,
    list: Vec<Param<'a, T>>,
) -> impl Iterator<Item = Param<'a, T>> {
    let prefix = prefix.to_string();
    list.into_iter().map(move |mut p| {
        p.name = format!("{prefix}.{}", p.name);
        p
    })
}

/// Prefixes every name of `list` with `prefix.`.
pub fn prefixed_mut<'a, T>(
    prefix: &str,
    list: Vec<ParamMut<'a, T>>,
) -> impl Iterator<Item = ParamMut<'a, T>> {
    let prefix = prefix.to_string();
    list.into_iter().map(move |mut p| {
        p.name = format!("{prefix}.{}", p.name);
        p
    })
}

/// A copy of `p` with every parameter set to zero: the starting point for summing gradients.
pub fn zeros_like<T: RealField + Copy, P: Parameters<T> + Clone>(p: &P) -> P {
    let mut z = p.clone();
    for t in z.params_mut() {
        t.data.fill(T::zero());
    }
    z
}

/// `acc += g`, tensor by tensor.
///
/// # Panics
/// If the two do not have the same tensors (names and sizes).
pub fn add_assign<T: RealField + Copy, P: Parameters<T>>(acc: &mut P, g: &P) {
    let g = g.params();
    let mut acc = acc.params_mut();
    assert_eq!(
        acc.len(),
        g.len(),
        "add_assign: different numbers of tensors"
    );
    for (a, b) in acc.iter_mut().zip(&g) {
        assert!(
            a.name == b.name && a.data.len() == b.data.len(),
            "add_assign: {} ({} values) does not match {} ({} values)",
            a.name,
            a.data.len(),
            b.name,
            b.data.len()
        );
        for (x, &y) in a.data.iter_mut().zip(b.data) {
            *x += y;
        }
    }
}

/// Multiplies every tensor by `s`.
pub fn scale<T: RealField + Copy, P: Parameters<T>>(p: &mut P, s: T) {
    for t in p.params_mut() {
        for x in t.data.iter_mut() {
            *x *= s;
        }
    }
}

/// The total number of scalar parameters.
pub fn count<T: RealField + Copy, P: Parameters<T>>(p: &P) -> usize {
    p.params().iter().map(|t| t.data.len()).sum()
}
