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

use crate::dropout::{dropout_backward, Dropout, DropoutMask};
use crate::layer_norm::{LayerNorm, LayerNormCache};

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

/// What [`residual_backward`] needs: the sub-layer's own cache, the dropout mask applied to
/// its output, and the LayerNorm's cache.
#[derive(Clone, Debug)]
pub struct ResidualCache<T: RealField, C> {
    pub sublayer: C,
    pub dropout: DropoutMask<T>,
    pub norm: LayerNormCache<T>,
}

// ANCHOR: residual_train
/// [`residual`] for training: dropout on the sub-layer's output before the residual add
/// (§5.4), and a cache for [`residual_backward`].
///
/// Post: `LayerNorm(x + Dropout(Sublayer(x)))`. Pre: `x + Dropout(Sublayer(LayerNorm(x)))`.
pub fn residual_train<T: RealField + Copy, C>(
    x: &DMatrix<T>,
    norm: &LayerNorm<T>,
    placement: NormPlacement,
    dropout: &mut Dropout,
    sublayer: impl FnOnce(&DMatrix<T>) -> (DMatrix<T>, C),
) -> (DMatrix<T>, ResidualCache<T, C>) {
    match placement {
        NormPlacement::Post => {
            let (f, sub) = sublayer(x);
            let (f, mask) = dropout.apply(&f);
            let (y, norm) = norm.forward_train(&(x + f));
            let cache = ResidualCache {
                sublayer: sub,
                dropout: mask,
                norm,
            };
            (y, cache)
        }
        NormPlacement::Pre => {
            let (x_norm, norm) = norm.forward_train(x);
            let (f, sub) = sublayer(&x_norm);
            let (f, mask) = dropout.apply(&f);
            let cache = ResidualCache {
                sublayer: sub,
                dropout: mask,
                norm,
            };
            (x + f, cache)
        }
    }
}
// ANCHOR_END: residual_train

// ANCHOR: residual_backward
/// The backward pass of a residual sub-layer connection (`eq:sublayer-backward`).
/// `sublayer_backward` maps the sub-layer's cache and the gradient of its output to the
/// gradient of its input and its own parameter gradients `G`.
///
/// Post: with s = x + f(x), ds = LayerNorm'(dy) and dx = ds + f'(ds): the residual path adds ds.
/// Pre: dx = dy + LayerNorm'(f'(dy)): the residual path carries dy unchanged.
///
/// Returns dL/dx, the sub-layer's gradients and the LayerNorm's gradients.
pub fn residual_backward<T: RealField + Copy, C, G>(
    cache: &ResidualCache<T, C>,
    norm: &LayerNorm<T>,
    placement: NormPlacement,
    d_y: &DMatrix<T>,
    sublayer_backward: impl FnOnce(&C, &DMatrix<T>) -> (DMatrix<T>, G),
) -> (DMatrix<T>, G, LayerNorm<T>) {
    match placement {
        NormPlacement::Post => {
            let (d_s, d_norm) = norm.backward(&cache.norm, d_y); // through LayerNorm
            let d_f = dropout_backward(&cache.dropout, &d_s);
            let (d_x_sub, d_sub) = sublayer_backward(&cache.sublayer, &d_f);
            (d_s + d_x_sub, d_sub, d_norm) // the residual path adds d_s
        }
        NormPlacement::Pre => {
            let d_f = dropout_backward(&cache.dropout, d_y);
            let (d_x_norm, d_sub) = sublayer_backward(&cache.sublayer, &d_f);
            let (d_x_sub, d_norm) = norm.backward(&cache.norm, &d_x_norm);
            (d_y + d_x_sub, d_sub, d_norm) // the residual path carries d_y unchanged
        }
    }
}
// ANCHOR_END: residual_backward
