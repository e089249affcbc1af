//! The residual connection around every sub-layer (§3.1).
//!
//! ```text
//! output = LayerNorm(x + Sublayer(x))
//! ```
//!
//! The paper normalises after the residual sum ("post-norm"). Many later implementations
//! (tensor2tensor from its v2 settings on, the Annotated Transformer's code) normalise the
//! sub-layer's input instead, `x + Sublayer(LayerNorm(x))` ("pre-norm"), which trains more
//! easily in deep stacks but is a different model. Both are here; post-norm is the default, and
//! pre-norm is labelled as the departure it is.

use nalgebra::{DMatrix, RealField};

use crate::layer_norm::LayerNorm;

/// Where the LayerNorm sits relative to the residual connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NormPlacement {
    /// LayerNorm(x + Sublayer(x)): the paper.
    #[default]
    Post,
    /// x + Sublayer(LayerNorm(x)).
    // DEVIATION(§3.1): pre-norm is not the paper's model; offered because it is what many
    // implementations run, and the audit chapter compares the two.
    Pre,
}

// ANCHOR: sublayer
/// One residual sub-layer connection (`eq:sublayer`): `LayerNorm(x + sublayer(x))` for
/// [`NormPlacement::Post`], `x + sublayer(LayerNorm(x))` for [`NormPlacement::Pre`].
///
/// # Shapes
/// `x`: (n, d_model); `sublayer` must map (n, d_model) to (n, d_model).
pub fn residual<T: RealField + Copy>(
    x: &DMatrix<T>,
    norm: &LayerNorm<T>,
    placement: NormPlacement,
    sublayer: impl FnOnce(&DMatrix<T>) -> DMatrix<T>,
) -> DMatrix<T> {
    match placement {
        NormPlacement::Post => norm.forward(&(x + sublayer(x))),
        NormPlacement::Pre => x + sublayer(&norm.forward(x)),
    }
}
// ANCHOR_END: sublayer
