//! Why self-attention: the layers of Table 1 (§4), built so that they can be measured.
//!
//! §4 of the paper compares a self-attention layer with a recurrent layer, a convolutional
//! layer and a restricted self-attention layer, each mapping a sequence of n vectors of width d
//! to another such sequence, on three counts: the computation per layer, the number of
//! operations that must run one after another, and the maximum length of a path between an
//! input position and an output position. The paper states the answers (Table 1) without
//! showing the layers; this module writes the layers down and lets the answers be measured:
//!
//! * [`Recurrent`], [`Convolution`], [`RestrictedSelfAttention`] and [`SelfAttention`] are
//!   small, plain layers on `DMatrix` (rows = positions, width d), all behind one trait,
//!   [`SequenceLayer`].
//! * [`ops`] counts the multiply-adds of each layer: the paper's leading terms and the exact
//!   counts of these implementations.
//! * [`dependencies`] finds which inputs and which earlier outputs each output row reads, by
//!   perturbing them one at a time and watching the real layer's output move; [`path_lengths`]
//!   builds the computation graph of a stack of layers from those reads and measures the
//!   sequential operations and the maximum path length on it.
//!
//! The attention layers here have no projections (queries, keys and values are the input
//! itself), so that they count what Table 1 counts: the n^2 d of comparing all pairs.
//! A multi-head attention sub-layer adds 4 n d^2 for its projections W^Q, W^K, W^V and W^O.

use nalgebra::{DMatrix, DVector, RealField};
use rand::Rng;

use crate::attention::scaled_dot_product_attention;
use crate::init::xavier_uniform;
use crate::mask::Mask;

/// A layer that maps a sequence (n, d) to a sequence (n, d), one output row at a time.
///
/// [`SequenceLayer::row`] is the definition; [`SequenceLayer::forward`] computes all rows, in
/// order, and a layer may replace it with whole-matrix products that give the same result.
pub trait SequenceLayer<T: RealField + Copy> {
    /// The layer's row name in Table 1, lower-cased.
    fn name(&self) -> &'static str;

    /// Output row `i` (shape (1, d)), from the input `x` (n, d) and the output rows computed
    /// before it: `earlier` is (n, d) and only its rows `0..i` may be read.
    fn row(&self, x: &DMatrix<T>, earlier: &DMatrix<T>, i: usize) -> DMatrix<T>;

    /// All output rows, (n, d) -> (n, d).
    fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let mut out = DMatrix::zeros(x.nrows(), x.ncols());
        for i in 0..x.nrows() {
            let row = self.row(x, &out, i);
            out.row_mut(i).copy_from(&row);
        }
        out
    }
}

// ANCHOR: recurrent
/// A recurrent layer: the plain tanh cell h_t = tanh(x_t W + h_{t-1} U + b), h_{-1} = 0, one
/// step per position; the output at position t is h_t.
///
/// # Shapes
/// `w`, `u`: (d, d); `b`: (1, d); input and output (n, d).
#[derive(Clone, Debug)]
pub struct Recurrent<T: RealField> {
    pub w: DMatrix<T>,
    pub u: DMatrix<T>,
    pub b: DMatrix<T>,
}

impl<T: RealField + Copy> SequenceLayer<T> for Recurrent<T> {
    fn name(&self) -> &'static str {
        "recurrent"
    }

    fn row(&self, x: &DMatrix<T>, earlier: &DMatrix<T>, t: usize) -> DMatrix<T> {
        let d = self.w.nrows();
        let h_prev = if t == 0 {
            DMatrix::zeros(1, d)
        } else {
            earlier.rows(t - 1, 1).into_owned()
        };
        // (1, d) x (d, d) + (1, d) x (d, d) -> (1, d)
        (x.rows(t, 1) * &self.w + h_prev * &self.u + &self.b).map(|v| v.tanh())
    }

    fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let (n, d) = x.shape();
        let x_w = x * &self.w; // (n, d) x (d, d) -> (n, d): every position at once
        let b = self.b.transpose(); // (d, 1)
        let mut h = DMatrix::zeros(n, d);
        let mut h_prev = DVector::zeros(d);
        for t in 0..n {
            // This step needs the previous one. h_{t-1} U is computed as the column
            // U^T h_{t-1}: (d, d)^T x (d, 1) -> (d, 1), d dot products down U's columns.
            let h_t = (x_w.row(t).transpose() + self.u.tr_mul(&h_prev) + &b).map(|v| v.tanh());
            h.row_mut(t).copy_from(&h_t.transpose());
            h_prev = h_t;
        }
        h
    }
}
// ANCHOR_END: recurrent

impl<T: RealField + Copy> Recurrent<T> {
    /// A layer of width d with Xavier-uniform W and U and a zero bias.
    pub fn random(d: usize, rng: &mut impl Rng) -> Self {
        Recurrent {
            w: xavier_uniform(d, d, rng),
            u: xavier_uniform(d, d, rng),
            b: DMatrix::zeros(1, d),
        }
    }
}

// ANCHOR: convolution
/// A convolutional layer of kernel width k with same-padding: output i is
/// b + sum over taps j = 0..k of x_{i + (j - c) s} W_j, where c = (k - 1) / 2 (rounded down)
/// centres the kernel, s is the dilation (1 = contiguous) and positions outside 0..n are
/// zero, so the output has as many positions as the input. Output i reads inputs up to
/// c s before it and (k - 1 - c) s after it: both directions, as in an encoder. (A causal
/// convolution, as in a decoder, would read only positions before i and could never connect
/// an early output to a late input.)
///
/// # Shapes
/// `w`: k matrices (d, d); `b`: (1, d); input and output (n, d).
#[derive(Clone, Debug)]
pub struct Convolution<T: RealField> {
    pub w: Vec<DMatrix<T>>,
    pub b: DMatrix<T>,
    pub dilation: usize,
}

impl<T: RealField + Copy> Convolution<T> {
    /// The offset of tap `j` from the output position: (j - c) s.
    pub fn offset(&self, j: usize) -> isize {
        let c = (self.w.len() - 1) / 2;
        (j as isize - c as isize) * self.dilation as isize
    }
}

impl<T: RealField + Copy> SequenceLayer<T> for Convolution<T> {
    fn name(&self) -> &'static str {
        "convolutional"
    }

    fn row(&self, x: &DMatrix<T>, _earlier: &DMatrix<T>, i: usize) -> DMatrix<T> {
        let mut out = self.b.clone();
        for (j, w_j) in self.w.iter().enumerate() {
            let p = i as isize + self.offset(j);
            if (0..x.nrows() as isize).contains(&p) {
                out += x.rows(p as usize, 1) * w_j; // (1, d) x (d, d) -> (1, d)
            }
        }
        out
    }

    fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let n = x.nrows() as isize;
        let mut out = DMatrix::zeros(x.nrows(), x.ncols());
        for i in 0..x.nrows() {
            out.row_mut(i).copy_from(&self.b);
        }
        for (j, w_j) in self.w.iter().enumerate() {
            // Tap j adds x_p W_j to output p - offset, for every p that lands inside 0..n.
            let o = self.offset(j);
            let first_out = (-o).max(0);
            let last_out = (n - o).min(n); // exclusive
            if first_out >= last_out {
                continue;
            }
            let len = (last_out - first_out) as usize;
            let shifted = x.rows((first_out + o) as usize, len) * w_j; // (len, d) x (d, d)
            let mut target = out.rows_mut(first_out as usize, len);
            target += shifted;
        }
        out
    }
}
// ANCHOR_END: convolution

impl<T: RealField + Copy> Convolution<T> {
    /// A layer of width d, kernel width k and dilation s, with Xavier-uniform weights (fan-in
    /// k d) and a zero bias.
    ///
    /// # Panics
    /// If k or s is 0.
    pub fn random(d: usize, k: usize, dilation: usize, rng: &mut impl Rng) -> Self {
        assert!(k >= 1, "a convolution needs a kernel width k >= 1, not {k}");
        assert!(
            dilation >= 1,
            "a convolution needs a dilation >= 1, not {dilation}"
        );
        Convolution {
            w: {
                let all: DMatrix<T> = xavier_uniform(k * d, d, rng); // (k d, d): fan-in k d
                (0..k).map(|j| all.rows(j * d, d).into_owned()).collect()
            },
            b: DMatrix::zeros(1, d),
            dilation,
        }
    }
}

// ANCHOR: self_attention
/// Full self-attention without projections: Attention(X, X, X) of Eq. 1, every position
/// attending to every position.
#[derive(Clone, Copy, Debug, Default)]
pub struct SelfAttention;

impl<T: RealField + Copy> SequenceLayer<T> for SelfAttention {
    fn name(&self) -> &'static str {
        "self-attention"
    }

    fn row(&self, x: &DMatrix<T>, _earlier: &DMatrix<T>, i: usize) -> DMatrix<T> {
        let q = x.rows(i, 1).into_owned(); // (1, d): one query against all n keys
        scaled_dot_product_attention(&q, x, x, None).output
    }

    fn forward(&self, x: &DMatrix<T>) -> DMatrix<T> {
        // (n, d) x (d, n) -> (n, n), then (n, n) x (n, d) -> (n, d)
        scaled_dot_product_attention(x, x, x, None).output
    }
}
// ANCHOR_END: self_attention

// ANCHOR: restricted
/// Restricted self-attention: query i attends only to the r positions of its window,
/// i - (r - 1) / 2 ..= i + r / 2 (divisions rounded down), clipped to 0..n.
///
/// [`RestrictedSelfAttention::band_mask`] says the same thing as a mask on full attention;
/// [`SequenceLayer::forward`] computes only the window of each query, which is what makes the
/// cost r n d instead of n^2 d.
#[derive(Clone, Copy, Debug)]
pub struct RestrictedSelfAttention {
    pub r: usize,
}

impl RestrictedSelfAttention {
    /// The positions query `i` of `n` may attend to.
    ///
    /// # Panics
    /// If r is 0.
    pub fn window(&self, i: usize, n: usize) -> std::ops::Range<usize> {
        assert!(self.r >= 1, "a restricted neighbourhood needs r >= 1");
        i.saturating_sub((self.r - 1) / 2)..(i + self.r / 2 + 1).min(n)
    }

    /// The window as an (n, n) mask: `true` where query i may see key j.
    pub fn band_mask(&self, n: usize) -> Mask {
        Mask::from_fn(n, n, |i, j| self.window(i, n).contains(&j))
    }

    /// Full self-attention under the band mask: the same output, at the full n^2 d cost.
    pub fn forward_masked<T: RealField + Copy>(&self, x: &DMatrix<T>) -> DMatrix<T> {
        scaled_dot_product_attention(x, x, x, Some(&self.band_mask(x.nrows()))).output
    }
}

impl<T: RealField + Copy> SequenceLayer<T> for RestrictedSelfAttention {
    fn name(&self) -> &'static str {
        "self-attention (restricted)"
    }

    fn row(&self, x: &DMatrix<T>, _earlier: &DMatrix<T>, i: usize) -> DMatrix<T> {
        let window = self.window(i, x.nrows());
        // (1, d) x (d, r) -> (1, r), then (1, r) x (r, d) -> (1, d)
        let q = x.rows(i, 1).into_owned(); // (1, d)
        let kv = x.rows(window.start, window.len()).into_owned(); // (r, d)
        scaled_dot_product_attention(&q, &kv, &kv, None).output
    }
}
// ANCHOR_END: restricted

/// Multiply-add counts per layer, for an input of n positions of width d.
///
/// The `paper_*` functions are Table 1's complexities with their constants made explicit
/// (two products of n^2 d for attention, two of n d^2 for the recurrence, ...); the `exact_*`
/// functions count what this module's layers do, including the positions near the ends of the
/// sequence where a kernel or a window is clipped. Softmax, tanh and bias additions are not
/// multiply-adds and are not counted: they are O(n^2), O(n d) and O(n d).
pub mod ops {
    // ANCHOR: ops
    /// Self-attention, O(n^2 d): Q K^T and A V, each n^2 d multiply-adds.
    pub fn paper_self_attention(n: u64, d: u64) -> u64 {
        2 * n * n * d
    }

    /// Recurrent, O(n d^2): x_t W and h_{t-1} U at each of n steps, each d^2.
    pub fn paper_recurrent(n: u64, d: u64) -> u64 {
        2 * n * d * d
    }

    /// Convolutional, O(k n d^2): k products of (1, d) x (d, d) at each of n positions.
    pub fn paper_convolutional(n: u64, d: u64, k: u64) -> u64 {
        k * n * d * d
    }

    /// Restricted self-attention, O(r n d): scores and weighted sum over r keys per query.
    pub fn paper_restricted(n: u64, d: u64, r: u64) -> u64 {
        2 * r * n * d
    }
    // ANCHOR_END: ops

    /// What [`super::SelfAttention`] does: exactly the paper's count.
    pub fn exact_self_attention(n: u64, d: u64) -> u64 {
        paper_self_attention(n, d)
    }

    /// What [`super::Recurrent`] does: exactly the paper's count (h_{-1} U is computed on the
    /// zero vector like any other step).
    pub fn exact_recurrent(n: u64, d: u64) -> u64 {
        paper_recurrent(n, d)
    }

    /// What [`super::Convolution`] does: d^2 for every tap that lands inside the sequence.
    /// A tap with offset o lands inside for n - |o| outputs (none if |o| >= n).
    pub fn exact_convolutional(n: u64, d: u64, k: u64, dilation: u64) -> u64 {
        let c = (k - 1) / 2;
        let inside: u64 = (0..k)
            .map(|j| {
                let o = j.abs_diff(c) * dilation;
                n.saturating_sub(o)
            })
            .sum();
        inside * d * d
    }

    /// What [`super::RestrictedSelfAttention`] does: 2 d for every (query, key) pair of a
    /// window. The window of query i has r keys, less those that fall off either end.
    pub fn exact_restricted(n: u64, d: u64, r: u64) -> u64 {
        let (left, right) = ((r - 1) / 2, r / 2);
        let pairs: u64 = (0..n)
            .map(|i| (i + right).min(n - 1) - i.saturating_sub(left) + 1)
            .sum();
        2 * pairs * d
    }
}

/// What one layer's output rows read, found by perturbing the real layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reads {
    /// `inputs[i][j]`: output row i changes when input row j is changed.
    pub inputs: Vec<Vec<bool>>,
    /// `earlier[i][s]` (s < i): output row i changes when earlier output row s is changed.
    pub earlier: Vec<Vec<bool>>,
}

// ANCHOR: dependencies
/// Which input rows and which earlier output rows each output row of `layer` reads, measured
/// on the input `x` (n, d): add `delta` to one row at a time and compare the output row with
/// the unperturbed one. Any change at all counts as a read.
///
/// A read that happens to leave the output unchanged (a tanh saturated to exactly 1, say) is
/// missed; random inputs of moderate size and a delta that is not tiny make that unlikely.
pub fn dependencies(layer: &dyn SequenceLayer<f64>, x: &DMatrix<f64>, delta: f64) -> Reads {
    let n = x.nrows();
    let out = layer.forward(x);
    let changed = |a: &DMatrix<f64>, b: &DMatrix<f64>| a.iter().zip(b.iter()).any(|(p, q)| p != q);
    let perturbed = |m: &DMatrix<f64>, r: usize| {
        let mut m = m.clone();
        m.row_mut(r).add_scalar_mut(delta);
        m
    };
    let (mut inputs, mut earlier) = (Vec::new(), Vec::new());
    for i in 0..n {
        let base = layer.row(x, &out, i);
        let reads_input = |j| changed(&layer.row(&perturbed(x, j), &out, i), &base);
        let reads_earlier = |s| s < i && changed(&layer.row(x, &perturbed(&out, s), i), &base);
        inputs.push((0..n).map(reads_input).collect());
        earlier.push((0..n).map(reads_earlier).collect());
    }
    Reads { inputs, earlier }
}
// ANCHOR_END: dependencies

/// What the computation graph of a layer, and of a stack of such layers, says about Table 1's
/// last two columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathLengths {
    /// The longest chain of output rows of one layer that must be computed one after another
    /// (each reading the one before): Table 1's sequential operations.
    pub sequential: usize,
    /// The fewest stacked layers after which adding another connects no new (input, output)
    /// pair.
    pub layers: usize,
    /// Whether, at that depth, every output depends on every input.
    pub all_connected: bool,
    /// At that depth, the longest of the shortest paths from an input row to an output row
    /// that it reaches, counting one step for each row computation on the way: Table 1's
    /// maximum path length.
    pub max_path: usize,
}

// ANCHOR: path_lengths
/// Measures sequential operations and maximum path length on the computation graph of a stack
/// of layers, built from each layer's `reads` (see [`dependencies`]), bottom layer first.
///
/// The graph's nodes are the n inputs and the n rows of each layer; row i of layer l has an
/// edge from row j of the layer below (or input j) when it reads it, and from row s of layer l
/// when it reads that earlier output. A path's length is its number of edges, so it counts the
/// row computations a signal passes through.
pub fn stack_path_lengths(stack: &[Reads]) -> PathLengths {
    let n = stack.first().map_or(0, |r| r.inputs.len());
    // Sequential operations: the longest chain through `earlier` reads within one layer.
    let mut sequential = 0;
    for reads in stack {
        let mut chain = vec![1usize; n];
        for i in 0..n {
            for s in 0..i {
                if reads.earlier[i][s] {
                    chain[i] = chain[i].max(chain[s] + 1);
                }
            }
        }
        sequential = sequential.max(chain.into_iter().max().unwrap_or(0));
    }
    // dist[j][i]: the shortest path from input j to row i of the layer reached so far.
    let mut dist: Vec<Vec<Option<usize>>> = (0..n)
        .map(|j| (0..n).map(|i| (i == j).then_some(0)).collect())
        .collect();
    for reads in stack {
        dist = dist.iter().map(|below| next_layer(reads, below)).collect();
    }
    let reached: Vec<usize> = dist.iter().flatten().flatten().copied().collect();
    PathLengths {
        sequential,
        layers: stack.len(),
        all_connected: reached.len() == n * n,
        max_path: reached.into_iter().max().unwrap_or(0),
    }
}

/// [`stack_path_lengths`] for a stack of identical layers, as deep as it takes: the fewest
/// layers after which one more would connect no new (input, output) pair (at most
/// `max_layers`).
pub fn path_lengths(reads: &Reads, max_layers: usize) -> PathLengths {
    let mut layers = 1;
    while layers < max_layers && count_pairs(reads, layers + 1) > count_pairs(reads, layers) {
        layers += 1;
    }
    stack_path_lengths(&vec![reads.clone(); layers])
}

/// How many (input, output) pairs a stack of `layers` identical layers connects.
fn count_pairs(reads: &Reads, layers: usize) -> usize {
    let n = reads.inputs.len();
    let mut dist: Vec<Vec<Option<usize>>> = (0..n)
        .map(|j| (0..n).map(|i| (i == j).then_some(0)).collect())
        .collect();
    for _ in 0..layers {
        dist = dist.iter().map(|below| next_layer(reads, below)).collect();
    }
    dist.iter().flatten().flatten().count()
}

/// Shortest distances to the rows of one more layer, given those to the layer below. Rows are
/// visited in order, so that a row's earlier reads are final when it is reached.
fn next_layer(reads: &Reads, below: &[Option<usize>]) -> Vec<Option<usize>> {
    let n = below.len();
    let mut here: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let from_below = (0..n).filter(|&j| reads.inputs[i][j]).map(|j| below[j]);
        let from_earlier = (0..i).filter(|&s| reads.earlier[i][s]).map(|s| here[s]);
        here[i] = from_below
            .chain(from_earlier)
            .flatten()
            .min()
            .map(|v| v + 1);
    }
    here
}
// ANCHOR_END: path_lengths

/// The paper's maximum path lengths for a stack of same-padded layers, as closed forms for
/// this module's windows: the fewest layers whose reach covers n - 1 positions either way.
pub mod reach {
    /// Contiguous convolution, kernel k: each layer reaches (k - 1) / 2 back and k / 2 ahead
    /// (rounded down), so ceil((n - 1) / ((k - 1) / 2)) layers; O(n / k).
    ///
    /// # Panics
    /// If k < 3 (a kernel of width 1 or 2 never reaches back).
    pub fn convolution_layers(n: usize, k: usize) -> usize {
        assert!(k >= 3, "a kernel of width {k} never reaches backwards");
        (n - 1).div_ceil((k - 1) / 2)
    }

    /// Restricted self-attention, neighbourhood r: as a convolution of width r; O(n / r).
    pub fn restricted_layers(n: usize, r: usize) -> usize {
        convolution_layers(n, r)
    }
}
