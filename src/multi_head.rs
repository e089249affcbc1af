//! Multi-head attention (§3.2.2).
//!
//! ```text
//! MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O
//!     head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
//! ```
//!
//! Instead of one attention over d_model-wide vectors, the inputs are projected h times into
//! smaller spaces (d_k for queries and keys, d_v for values), attention runs in each, and the h
//! results are concatenated and projected back to d_model by W^O. Each head can attend to a
//! different kind of relation; with d_k = d_v = d_model / h the total cost is about that of one
//! full-width head.
//!
//! The h per-head matrices W_i^Q (d_model, d_k) are stored side by side as one (d_model, h d_k)
//! matrix `w_q`, head i owning columns `i d_k .. (i + 1) d_k`; likewise `w_k` and `w_v`. This
//! is the same arithmetic as the paper's per-head formula, done as one product (a test checks
//! it against the explicit loop over heads).
//!
//! The paper's projections have no bias. PyTorch's `nn.MultiheadAttention` adds one to each of
//! the four projections; `bias = true` reproduces that, for the golden fixtures.

use nalgebra::{DMatrix, RealField, RowDVector};
use rand::Rng;

use crate::attention::scaled_dot_product_attention;
use crate::init::{xavier_uniform, zeros_row};
use crate::mask::Mask;

/// The parameters of one multi-head attention sub-layer.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadAttention<T: RealField> {
    /// Number of heads.
    pub h: usize,
    /// Width of each head's queries and keys.
    pub d_k: usize,
    /// Width of each head's values.
    pub d_v: usize,
    /// W^Q for all heads side by side: (d_model, h d_k).
    pub w_q: DMatrix<T>,
    /// W^K for all heads side by side: (d_model, h d_k).
    pub w_k: DMatrix<T>,
    /// W^V for all heads side by side: (d_model, h d_v).
    pub w_v: DMatrix<T>,
    /// W^O: (h d_v, d_model).
    pub w_o: DMatrix<T>,
    /// Optional biases (not in the paper; PyTorch has them): (h d_k), (h d_k), (h d_v), (d_model).
    // DEVIATION(§3.2.2): the paper's projections are bias-free; `None` is the paper's model, and
    // the biases exist to load PyTorch's `nn.MultiheadAttention`.
    pub b_q: Option<RowDVector<T>>,
    pub b_k: Option<RowDVector<T>>,
    pub b_v: Option<RowDVector<T>>,
    pub b_o: Option<RowDVector<T>>,
}

/// What multi-head attention computes: the output, and each head's attention weights.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadOutput<T: RealField> {
    /// (n, d_model).
    pub output: DMatrix<T>,
    /// One (n, m) matrix per head.
    pub weights: Vec<DMatrix<T>>,
}

impl<T: RealField + Copy> MultiHeadAttention<T> {
    /// Random initialisation (Xavier-uniform weights, zero biases). The paper does not state
    /// its initialisation.
    pub fn new(
        d_model: usize,
        h: usize,
        d_k: usize,
        d_v: usize,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let b = |n: usize| bias.then(|| zeros_row(n));
        MultiHeadAttention {
            h,
            d_k,
            d_v,
            w_q: xavier_uniform(d_model, h * d_k, rng),
            w_k: xavier_uniform(d_model, h * d_k, rng),
            w_v: xavier_uniform(d_model, h * d_v, rng),
            w_o: xavier_uniform(h * d_v, d_model, rng),
            b_q: b(h * d_k),
            b_k: b(h * d_k),
            b_v: b(h * d_v),
            b_o: b(d_model),
        }
    }

    /// d_model, the width of inputs and outputs.
    pub fn d_model(&self) -> usize {
        self.w_q.nrows()
    }

    /// Number of parameters (weights and biases).
    pub fn num_params(&self) -> usize {
        let bias_len = |b: &Option<RowDVector<T>>| b.as_ref().map_or(0, |b| b.len());
        self.w_q.len()
            + self.w_k.len()
            + self.w_v.len()
            + self.w_o.len()
            + bias_len(&self.b_q)
            + bias_len(&self.b_k)
            + bias_len(&self.b_v)
            + bias_len(&self.b_o)
    }

    // ANCHOR: multi_head
    /// MultiHead(Q, K, V) (`eq:multi-head`).
    ///
    /// In self-attention `query`, `key` and `value` are the same matrix; in encoder-decoder
    /// attention `query` comes from the decoder and `key` = `value` is the encoder output.
    ///
    /// # Shapes
    /// `query`: (n, d_model), `key`: (m, d_model), `value`: (m, d_model), `mask`: (n, m)
    /// -> output (n, d_model), h weight matrices (n, m).
    ///
    /// # Panics
    /// If an input is not d_model wide or `key` and `value` have different lengths.
    pub fn forward(
        &self,
        query: &DMatrix<T>,
        key: &DMatrix<T>,
        value: &DMatrix<T>,
        mask: Option<&Mask>,
    ) -> MultiHeadOutput<T> {
        self.check_inputs(query, key, value);
        let q = project(query, &self.w_q, &self.b_q); // (n, d_model) x (d_model, h d_k) -> (n, h d_k)
        let k = project(key, &self.w_k, &self.b_k); // (m, d_model) x (d_model, h d_k) -> (m, h d_k)
        let v = project(value, &self.w_v, &self.b_v); // (m, d_model) x (d_model, h d_v) -> (m, h d_v)
        let mut concat = DMatrix::zeros(query.nrows(), self.h * self.d_v); // (n, h d_v)
        let mut weights = Vec::with_capacity(self.h);
        for i in 0..self.h {
            let q_i = q.columns(i * self.d_k, self.d_k).into_owned(); // (n, d_k)
            let k_i = k.columns(i * self.d_k, self.d_k).into_owned(); // (m, d_k)
            let v_i = v.columns(i * self.d_v, self.d_v).into_owned(); // (m, d_v)
            let head_i = scaled_dot_product_attention(&q_i, &k_i, &v_i, mask);
            concat
                .columns_mut(i * self.d_v, self.d_v)
                .copy_from(&head_i.output);
            weights.push(head_i.weights);
        }
        let output = project(&concat, &self.w_o, &self.b_o); // (n, h d_v) x (h d_v, d_model) -> (n, d_model)
        MultiHeadOutput { output, weights }
    }
    // ANCHOR_END: multi_head

    fn check_inputs(&self, query: &DMatrix<T>, key: &DMatrix<T>, value: &DMatrix<T>) {
        let d_model = self.d_model();
        for (name, x) in [("query", query), ("key", key), ("value", value)] {
            assert_eq!(
                x.ncols(),
                d_model,
                "multi-head attention: {name} is {} wide but d_model = {d_model}",
                x.ncols()
            );
        }
        assert_eq!(
            key.nrows(),
            value.nrows(),
            "multi-head attention: {} keys but {} values",
            key.nrows(),
            value.nrows()
        );
    }
}

/// x W (+ b): a linear projection in the paper's row-vector convention.
pub(crate) fn project<T: RealField + Copy>(
    x: &DMatrix<T>,
    w: &DMatrix<T>,
    b: &Option<RowDVector<T>>,
) -> DMatrix<T> {
    let mut y = x * w;
    if let Some(b) = b {
        for mut row in y.row_iter_mut() {
            row += b;
        }
    }
    y
}
