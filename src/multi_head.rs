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

use crate::attention::{scaled_dot_product_attention, scaled_dot_product_attention_backward};
use crate::init::{xavier_uniform, zeros_row};
use crate::mask::Mask;
use crate::matmul::times;
use crate::params::{Param, ParamMut, Parameters};

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
        // (n, h d_v) x (h d_v, d_model) -> (n, d_model)
        let output = project(&concat, &self.w_o, &self.b_o);
        MultiHeadOutput { output, weights }
    }
    // ANCHOR_END: multi_head

    /// [`MultiHeadAttention::forward`] for training, over a batch of sequences stacked row-wise,
    /// keeping what [`MultiHeadAttention::backward`] needs.
    ///
    /// The projections are position-wise, so they run on all B sequences at once; attention runs
    /// within each sequence, head by head, under that sequence's mask. With one mask this is
    /// exactly [`MultiHeadAttention::forward`].
    ///
    /// # Shapes
    /// `query`: (B n, d_model), `key`, `value`: (B m, d_model), `masks`: B masks (n, m)
    /// -> output (B n, d_model), and B h weight matrices (n, m), sequence by sequence.
    ///
    /// # Panics
    /// If `masks` is empty, or the rows are not B blocks of the masks' shape.
    pub fn forward_train(
        &self,
        query: &DMatrix<T>,
        key: &DMatrix<T>,
        value: &DMatrix<T>,
        masks: &[Mask],
    ) -> (MultiHeadOutput<T>, MultiHeadCache<T>) {
        self.check_inputs(query, key, value);
        let (n, m) = block_shape(query, key, masks);
        let q = project(query, &self.w_q, &self.b_q); // (B n, h d_k)
        let k = project(key, &self.w_k, &self.b_k); // (B m, h d_k)
        let v = project(value, &self.w_v, &self.b_v); // (B m, h d_v)
        let mut concat = DMatrix::zeros(query.nrows(), self.h * self.d_v); // (B n, h d_v)
        let mut weights = Vec::with_capacity(masks.len() * self.h);
        for (s, mask) in masks.iter().enumerate() {
            for i in 0..self.h {
                let head = scaled_dot_product_attention(
                    &q.view((s * n, i * self.d_k), (n, self.d_k)).into_owned(),
                    &k.view((s * m, i * self.d_k), (m, self.d_k)).into_owned(),
                    &v.view((s * m, i * self.d_v), (m, self.d_v)).into_owned(),
                    Some(mask),
                );
                concat
                    .view_mut((s * n, i * self.d_v), (n, self.d_v))
                    .copy_from(&head.output);
                weights.push(head.weights);
            }
        }
        let output = project(&concat, &self.w_o, &self.b_o); // (B n, d_model)
        let cache = MultiHeadCache {
            query: query.clone(),
            key: key.clone(),
            value: value.clone(),
            q,
            k,
            v,
            weights: weights.clone(),
            concat,
        };
        (MultiHeadOutput { output, weights }, cache)
    }

    // ANCHOR: multi_head_backward
    /// The backward pass of multi-head attention (`eq:multi-head-backward`): back through W^O,
    /// through each head's Eq. 1 ([`scaled_dot_product_attention_backward`]) on its own columns
    /// of its own sequence, and back through W^Q, W^K and W^V. For a projection Y = X W + b:
    /// dW = X^T dY, db = the sum of the rows of dY, dX = dY W^T.
    ///
    /// In self-attention the same x is query, key and value: its gradient is the sum
    /// `d_query + d_key + d_value`; in encoder-decoder attention the memory's is
    /// `d_key + d_value`.
    ///
    /// # Shapes
    /// `d_output`: (B n, d_model) -> `d_query` (B n, d_model), `d_key`, `d_value` (B m, d_model).
    pub fn backward(&self, cache: &MultiHeadCache<T>, d_output: &DMatrix<T>) -> MultiHeadGrads<T> {
        let (d_concat, w_o, b_o) = project_backward(&cache.concat, &self.w_o, &self.b_o, d_output);
        let blocks = cache.weights.len() / self.h;
        let (n, m) = (cache.q.nrows() / blocks, cache.k.nrows() / blocks);
        let mut d_q = DMatrix::zeros(cache.q.nrows(), cache.q.ncols()); // (B n, h d_k)
        let mut d_k = DMatrix::zeros(cache.k.nrows(), cache.k.ncols()); // (B m, h d_k)
        let mut d_v = DMatrix::zeros(cache.v.nrows(), cache.v.ncols()); // (B m, h d_v)
        for s in 0..blocks {
            for i in 0..self.h {
                let (qc, vc) = (i * self.d_k, i * self.d_v); // this head's first columns
                let g = scaled_dot_product_attention_backward(
                    &cache.q.view((s * n, qc), (n, self.d_k)).into_owned(),
                    &cache.k.view((s * m, qc), (m, self.d_k)).into_owned(),
                    &cache.v.view((s * m, vc), (m, self.d_v)).into_owned(),
                    &cache.weights[s * self.h + i],
                    &d_concat.view((s * n, vc), (n, self.d_v)).into_owned(),
                );
                d_q.view_mut((s * n, qc), (n, self.d_k)).copy_from(&g.d_q);
                d_k.view_mut((s * m, qc), (m, self.d_k)).copy_from(&g.d_k);
                d_v.view_mut((s * m, vc), (m, self.d_v)).copy_from(&g.d_v);
            }
        }
        let (d_query, w_q, b_q) = project_backward(&cache.query, &self.w_q, &self.b_q, &d_q);
        let (d_key, w_k, b_k) = project_backward(&cache.key, &self.w_k, &self.b_k, &d_k);
        let (d_value, w_v, b_v) = project_backward(&cache.value, &self.w_v, &self.b_v, &d_v);
        let params = MultiHeadAttention {
            h: self.h,
            d_k: self.d_k,
            d_v: self.d_v,
            w_q,
            w_k,
            w_v,
            w_o,
            b_q,
            b_k,
            b_v,
            b_o,
        };
        MultiHeadGrads {
            d_query,
            d_key,
            d_value,
            params,
        }
    }
    // ANCHOR_END: multi_head_backward

    /// The keys and values of `x`, projected for all heads side by side, to keep in a
    /// [`KvCache`]: encoder-decoder attention projects the memory once per sentence.
    ///
    /// # Shapes
    /// `x`: (m, d_model) -> k (m, h d_k), v (m, h d_v).
    pub fn cache(&self, x: &DMatrix<T>) -> KvCache<T> {
        let mut cache = KvCache {
            k: DMatrix::zeros(0, self.h * self.d_k),
            v: DMatrix::zeros(0, self.h * self.d_v),
        };
        self.extend_cache(&mut cache, x);
        cache
    }

    /// Appends the keys and values of new positions to `cache`: the decoder's self-attention
    /// projects each position once, when it is decoded.
    ///
    /// # Shapes
    /// `cache`: (m, h d_k) and (m, h d_v), `x`: (r, d_model) -> (m + r, h d_k), (m + r, h d_v).
    ///
    /// # Panics
    /// If `x` is not d_model wide.
    pub fn extend_cache(&self, cache: &mut KvCache<T>, x: &DMatrix<T>) {
        self.check_inputs(x, x, x);
        let k = project_step(x, &self.w_k, &self.b_k); // (r, d_model) x (d_model, h d_k) -> (r, h d_k)
        let v = project_step(x, &self.w_v, &self.b_v); // (r, d_model) x (d_model, h d_v) -> (r, h d_v)
        cache.k = append_rows(&cache.k, &k);
        cache.v = append_rows(&cache.v, &v);
    }

    /// [`MultiHeadAttention::forward`] with keys and values already projected: the same
    /// arithmetic, minus the projections of `key` and `value`.
    ///
    /// # Shapes
    /// `query`: (n, d_model), `cache`: (m, h d_k) and (m, h d_v), `mask`: (n, m) -> (n, d_model).
    ///
    /// # Panics
    /// If `query` is not d_model wide, or the mask does not fit.
    pub fn forward_cached(
        &self,
        query: &DMatrix<T>,
        cache: &KvCache<T>,
        mask: Option<&Mask>,
    ) -> DMatrix<T> {
        self.check_inputs(query, query, query);
        let q = project_step(query, &self.w_q, &self.b_q); // (n, d_model) x (d_model, h d_k) -> (n, h d_k)
        let mut concat = DMatrix::zeros(query.nrows(), self.h * self.d_v); // (n, h d_v)
        for i in 0..self.h {
            let q_i = q.columns(i * self.d_k, self.d_k).into_owned(); // (n, d_k)
            let k_i = cache.k.columns(i * self.d_k, self.d_k).into_owned(); // (m, d_k)
            let v_i = cache.v.columns(i * self.d_v, self.d_v).into_owned(); // (m, d_v)
            let head_i = scaled_dot_product_attention(&q_i, &k_i, &v_i, mask);
            concat
                .columns_mut(i * self.d_v, self.d_v)
                .copy_from(&head_i.output);
        }
        project_step(&concat, &self.w_o, &self.b_o) // (n, h d_v) x (h d_v, d_model) -> (n, d_model)
    }

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

/// (n, m): the rows of one sequence's queries and keys when `query` and `key` stack one
/// sequence per mask.
fn block_shape<T: RealField>(
    query: &DMatrix<T>,
    key: &DMatrix<T>,
    masks: &[Mask],
) -> (usize, usize) {
    assert!(
        !masks.is_empty(),
        "multi-head attention: a batch needs at least one mask"
    );
    let (n, m) = masks[0].shape();
    assert!(
        query.nrows() == masks.len() * n && key.nrows() == masks.len() * m,
        "multi-head attention: {} query rows and {} key rows are not {} sequences of {n} and {m}",
        query.nrows(),
        key.nrows(),
        masks.len()
    );
    assert!(
        masks.iter().all(|mask| mask.shape() == (n, m)),
        "multi-head attention: the masks of a batch must share one shape"
    );
    (n, m)
}

/// Projected keys and values kept between decoding steps (§6.1: incremental decoding).
///
/// Row j holds position j's keys K W^K (+ b) and values V W^V (+ b) for all heads side by side,
/// exactly as [`MultiHeadAttention::forward`] computes them before splitting the heads. The
/// decoder's self-attention grows its cache by one row per decoded position; encoder-decoder
/// attention fills its cache from the memory once.
#[derive(Clone, Debug, PartialEq)]
pub struct KvCache<T: RealField> {
    /// (m, h d_k).
    pub k: DMatrix<T>,
    /// (m, h d_v).
    pub v: DMatrix<T>,
}

impl<T: RealField> KvCache<T> {
    /// m, the number of cached positions.
    pub fn len(&self) -> usize {
        self.k.nrows()
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `top` with the rows of `bottom` below it.
fn append_rows<T: RealField + Copy>(top: &DMatrix<T>, bottom: &DMatrix<T>) -> DMatrix<T> {
    let m = top.nrows();
    DMatrix::from_fn(m + bottom.nrows(), top.ncols(), |i, j| {
        if i < m {
            top[(i, j)]
        } else {
            bottom[(i - m, j)]
        }
    })
}

/// What [`MultiHeadAttention::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct MultiHeadCache<T: RealField> {
    /// The inputs, (B n, d_model), (B m, d_model), (B m, d_model).
    pub query: DMatrix<T>,
    pub key: DMatrix<T>,
    pub value: DMatrix<T>,
    /// The projections of all heads side by side: (B n, h d_k), (B m, h d_k), (B m, h d_v).
    pub q: DMatrix<T>,
    pub k: DMatrix<T>,
    pub v: DMatrix<T>,
    /// Each sequence's and head's attention weights (n, m): sequence s, head i at s h + i.
    pub weights: Vec<DMatrix<T>>,
    /// The heads' outputs side by side, (B n, h d_v).
    pub concat: DMatrix<T>,
}

/// The gradients of multi-head attention: its three inputs and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadGrads<T: RealField> {
    pub d_query: DMatrix<T>,
    pub d_key: DMatrix<T>,
    pub d_value: DMatrix<T>,
    /// dL/dW^Q, ..., dL/db^O, in the shape of the parameters.
    pub params: MultiHeadAttention<T>,
}

impl<T: RealField + Copy> Parameters<T> for MultiHeadAttention<T> {
    fn params(&self) -> Vec<Param<'_, T>> {
        let mut list = vec![
            Param::matrix("w_q", &self.w_q),
            Param::matrix("w_k", &self.w_k),
            Param::matrix("w_v", &self.w_v),
            Param::matrix("w_o", &self.w_o),
        ];
        let biases = [
            ("b_q", &self.b_q),
            ("b_k", &self.b_k),
            ("b_v", &self.b_v),
            ("b_o", &self.b_o),
        ];
        for (name, b) in biases {
            if let Some(b) = b {
                list.push(Param::row(name, b));
            }
        }
        list
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, T>> {
        let mut list = vec![
            ParamMut::matrix("w_q", &mut self.w_q),
            ParamMut::matrix("w_k", &mut self.w_k),
            ParamMut::matrix("w_v", &mut self.w_v),
            ParamMut::matrix("w_o", &mut self.w_o),
        ];
        let biases = [
            ("b_q", &mut self.b_q),
            ("b_k", &mut self.b_k),
            ("b_v", &mut self.b_v),
            ("b_o", &mut self.b_o),
        ];
        for (name, b) in biases {
            if let Some(b) = b {
                list.push(ParamMut::row(name, b));
            }
        }
        list
    }
}

/// The backward pass of [`project`]: for Y = X W + b, returns dX = dY W^T, dW = X^T dY and
/// db = the sum of the rows of dY (when there is a bias).
pub(crate) fn project_backward<T: RealField + Copy>(
    x: &DMatrix<T>,
    w: &DMatrix<T>,
    b: &Option<RowDVector<T>>,
    d_y: &DMatrix<T>,
) -> (DMatrix<T>, DMatrix<T>, Option<RowDVector<T>>) {
    let d_x = d_y * w.transpose(); // (n, d_out) x (d_out, d_in) -> (n, d_in)
    let d_w = x.transpose() * d_y; // (d_in, n) x (n, d_out) -> (d_in, d_out)
    let d_b = b.as_ref().map(|_| d_y.row_sum());
    (d_x, d_w, d_b)
}

/// x W (+ b): a linear projection in the paper's row-vector convention.
pub(crate) fn project<T: RealField + Copy>(
    x: &DMatrix<T>,
    w: &DMatrix<T>,
    b: &Option<RowDVector<T>>,
) -> DMatrix<T> {
    let mut y = x * w;
    if let Some(b) = b {
        for (mut col, &b_j) in y.column_iter_mut().zip(b.iter()) {
            col.add_scalar_mut(b_j); // b_j to every row's entry j
        }
    }
    y
}

/// [`project`] through [`times`]: the decoding step's projections of a single row.
fn project_step<T: RealField + Copy>(
    x: &DMatrix<T>,
    w: &DMatrix<T>,
    b: &Option<RowDVector<T>>,
) -> DMatrix<T> {
    let mut y = times(x, w);
    if let Some(b) = b {
        for mut row in y.row_iter_mut() {
            row += b;
        }
    }
    y
}
