//! Positional encoding (§3.5).
//!
//! Attention treats its inputs as a set: permute the positions and the outputs are permuted
//! the same way. To let the model use word order, a position-dependent vector is added to each
//! embedding. The paper's choice is a fixed set of sinusoids:
//!
//! ```text
//! PE(pos, 2i)     = sin(pos / 10000^(2i / d_model))
//! PE(pos, 2i + 1) = cos(pos / 10000^(2i / d_model))
//! ```
//!
//! Sine and cosine of the same frequency sit side by side (interleaved), and the wavelengths
//! grow geometrically from 2 pi to 10000 2 pi. Because sin and cos of `pos + k` are a rotation
//! of sin and cos of `pos` by an angle that depends only on k, `PE(pos + k)` is a fixed linear
//! function of `PE(pos)`: the property the paper gives for choosing them.
//!
//! Table 3 row E replaces them with learned position embeddings, with nearly identical results;
//! [`PositionalEncoding::Learned`] is that variant.

use nalgebra::{DMatrix, RealField};

// ANCHOR: sinusoidal
/// The sinusoidal encodings of positions `0..n` (`eq:positional`).
///
/// # Shapes
/// -> (n, d_model). For odd d_model the last column is a sine without its cosine.
///
/// # Example
/// Position 0 is `[sin 0, cos 0, sin 0, cos 0, ...] = [0, 1, 0, 1, ...]`:
/// ```
/// let pe = aiayn::positional::sinusoidal::<f64>(1, 4);
/// assert_eq!(pe.row(0).iter().copied().collect::<Vec<_>>(), vec![0.0, 1.0, 0.0, 1.0]);
/// ```
pub fn sinusoidal<T: RealField + Copy>(n: usize, d_model: usize) -> DMatrix<T> {
    DMatrix::from_fn(n, d_model, |pos, col| {
        let two_i = (col - col % 2) as f64; // columns 2i and 2i + 1 share a frequency
        let angle = pos as f64 / 10000f64.powf(two_i / d_model as f64);
        let value = if col % 2 == 0 {
            angle.sin()
        } else {
            angle.cos()
        };
        nalgebra::convert(value)
    })
}
// ANCHOR_END: sinusoidal

/// The two ways of encoding position the paper compares.
#[derive(Clone, Debug, PartialEq)]
pub enum PositionalEncoding<T: RealField> {
    /// The fixed sinusoids of §3.5, for any length.
    Sinusoidal { d_model: usize },
    /// Learned embeddings, one row per position up to a maximum length (Table 3 row E).
    Learned { table: DMatrix<T> },
}

impl<T: RealField + Copy> PositionalEncoding<T> {
    /// The encodings of positions `0..n`, to add to the embeddings.
    ///
    /// # Shapes
    /// -> (n, d_model).
    ///
    /// # Panics
    /// For a learned table with fewer than n rows (it cannot extrapolate; the sinusoids can).
    pub fn encode(&self, n: usize) -> DMatrix<T> {
        match self {
            PositionalEncoding::Sinusoidal { d_model } => sinusoidal(n, *d_model),
            PositionalEncoding::Learned { table } => {
                assert!(
                    n <= table.nrows(),
                    "learned positional embeddings cover {} positions; asked for {n}",
                    table.nrows()
                );
                table.rows(0, n).into_owned()
            }
        }
    }

    /// The encoding of the single position `pos`: row `pos` of
    /// [`PositionalEncoding::encode`]`(pos + 1)`, for decoding one position at a time.
    ///
    /// # Shapes
    /// -> (1, d_model).
    ///
    /// # Panics
    /// For a learned table with `pos + 1` rows or fewer.
    pub fn encode_position(&self, pos: usize) -> DMatrix<T> {
        match self {
            PositionalEncoding::Sinusoidal { d_model } => {
                // the entries of `sinusoidal`'s row `pos`, computed alone
                DMatrix::from_fn(1, *d_model, |_, col| {
                    let two_i = (col - col % 2) as f64;
                    let angle = pos as f64 / 10000f64.powf(two_i / *d_model as f64);
                    nalgebra::convert(if col % 2 == 0 {
                        angle.sin()
                    } else {
                        angle.cos()
                    })
                })
            }
            PositionalEncoding::Learned { table } => {
                assert!(
                    pos < table.nrows(),
                    "learned positional embeddings cover {} positions; asked for position {pos}",
                    table.nrows()
                );
                table.rows(pos, 1).into_owned()
            }
        }
    }

    /// The backward pass of [`PositionalEncoding::encode`]: a learned table's rows 0..n
    /// collect the gradient of the positions (added to `d_table`); sinusoids have no
    /// parameters, so nothing happens.
    ///
    /// # Shapes
    /// `d_x`: (n, d_model); `grads` has the shape of `self`.
    pub fn backward(&self, d_x: &DMatrix<T>, grads: &mut PositionalEncoding<T>) {
        if let PositionalEncoding::Learned { table } = grads {
            let mut rows = table.rows_mut(0, d_x.nrows());
            rows += d_x;
        }
    }

    /// Number of learned parameters (0 for sinusoids).
    pub fn num_params(&self) -> usize {
        match self {
            PositionalEncoding::Sinusoidal { .. } => 0,
            PositionalEncoding::Learned { table } => table.len(),
        }
    }
}
