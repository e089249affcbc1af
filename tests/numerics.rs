//! Numerical edge cases: logits up to ±1e4, subnormal inputs, n = 1, d_k = 1, fully masked
//! rows, and attention over n = 4096 positions, in f32, checked against an f64 oracle with a
//! stated error bound, and with no NaN or inf anywhere, forward and backward.
//!
//! The oracle is this library run in f64 on the same inputs, rounded to f32 first, so the two
//! runs see identical numbers and differ only by f32 rounding. That makes the comparison a check
//! of the f32 arithmetic (overflow, underflow, cancellation, accumulation), not of the formulas:
//! the formulas are pinned by the golden fixtures (`tests/golden.rs`) and by the exact cases at
//! the end of this file.
//!
//! # The error bound
//! u = 2^-24 is f32's unit roundoff and γ_k = k u / (1 - k u) the usual bound on the relative
//! error of a sum of k products, in any order (Higham, *Accuracy and Stability of Numerical
//! Algorithms*, §3.1). Every bound below is built from three first-order rules, applied to the
//! f64 values (written without hats; |.| is taken element by element):
//! - a product C = A B of inputs with errors ΔA, ΔB:
//!   |ΔC| <= |ΔA||B| + |A||ΔB| + |ΔA||ΔB| + γ_k (|A| + |ΔA|)(|B| + |ΔB|) + k η, k the inner
//!   size (η below: a product that underflows);
//! - the softmax of a row of m scores s with errors Δs (largest Δ over the row): with
//!   t_j = max(s) - s_j, w_j = exp(-t_j) / S,
//!   |Δw_j| <= w_j [ (e^(2Δ) - 1) + u (m + 6 + 4 t_j) ] + η.
//!   The first term is the exact effect of the score errors (each ratio w_j / w_l moves by at
//!   most e^(±2Δ)). The second is the rounding: the sum of m exponentials (γ_m), exp itself and
//!   the division (3u), and the rounding of s_j - max, which moves exp by u t_j (4u t_j also
//!   covers the fast path, which multiplies by the scale after the subtraction). η = 2^-147
//!   covers a result that underflows in f32 (below 2^-126) but not in f64;
//! - a sum or mean of k terms: γ_k times the sum of the absolute values.
//!
//! The fast path's exponential (`aiayn::fast::exp_f32`) returns 0 for arguments below -87, where
//! the C library gives a tiny or subnormal number; its checks add that loss, e^-87 per weight
//! (`FAST_FLUSH`).
//!
//! The tests compare against twice the first-order bound, which covers the second-order terms
//! as long as u times any size here (m <= 4096, d <= 512) stays below 1e-3, and the f64
//! oracle's own error, 2^-29 times smaller than the f32 one.
//!
//! Tight enough to catch a bug: over a row of m = 4096 keys the bound on a weight is about
//! w (4096 + 10) u ≈ 2.4e-4 w, while a scale off by 0.1% moves the weights by about 1e-3 w
//! (`attention_over_4096_positions_in_f32_is_within_the_bound_that_sees_a_wrong_scale`); a
//! softmax without the max subtraction gives inf and NaN for logits near 1e4, in f32 and f64
//! alike, which every test refuses (`softmax_in_f32_is_within_the_bound_of_the_f64_oracle`,
//! rows near ±1e4).
//!
//! `NUMERICS_REPORT=1 cargo test --release --test numerics -- --nocapture` prints each check's
//! largest error as a fraction of its first-order bound (0.6 at most at the time of writing).

use aiayn::attention::{scaled_dot_product_attention, scaled_dot_product_attention_backward};
use aiayn::fast::{multi_head_forward_fast, scaled_dot_product_attention_fast};
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::softmax::{
    log_softmax_rows, log_softmax_rows_backward, softmax_rows, softmax_rows_backward,
};
use aiayn::train::label_smoothing::{
    label_smoothed_loss, label_smoothed_loss_backward, smoothed_targets, Spread,
};
use nalgebra::{DMatrix, RowDVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// f32's unit roundoff, 2^-24.
const U: f64 = f32::EPSILON as f64 / 2.0;
/// Twice the smallest positive f32 subnormal (2^-149): the absolute error of an underflow.
const ETA: f64 = 1.401298464324817e-45 * 4.0;

/// e^-87, below which the fast path's exponential returns 0 (see `check_attention_forward`).
const FAST_FLUSH: f64 = 1.6458114310822737e-38;
/// The factor between the first-order bound and what is checked.
const SAFETY: f64 = 2.0;

fn gamma(k: usize) -> f64 {
    k as f64 * U / (1.0 - k as f64 * U)
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform in [-scale, scale], rounded to f32.
fn random(rows: usize, cols: usize, scale: f64, rng: &mut StdRng) -> DMatrix<f32> {
    DMatrix::from_fn(rows, cols, |_, _| {
        (rng.random_range(-1.0..=1.0) * scale) as f32
    })
}

fn to64(m: &DMatrix<f32>) -> DMatrix<f64> {
    m.map(f64::from)
}

fn row64(r: &RowDVector<f32>) -> RowDVector<f64> {
    r.map(f64::from)
}

fn abs(m: &DMatrix<f64>) -> DMatrix<f64> {
    m.abs()
}

fn zeros(like: &DMatrix<f64>) -> DMatrix<f64> {
    DMatrix::zeros(like.nrows(), like.ncols())
}

/// Rows of logits for the softmax tests: every scale from 1e-3 to 1e4, ties, a single column,
/// subnormal entries, and -inf entries (masked), including a row of nothing but -inf.
fn logit_rows(m: usize, rng: &mut StdRng) -> DMatrix<f32> {
    let rows = 12;
    let mut x = DMatrix::zeros(rows, m);
    for j in 0..m {
        let r = |rng: &mut StdRng| -> f64 { rng.random_range(-1.0..=1.0) };
        x[(0, j)] = (r(rng) * 1e4) as f32; // logits up to ±1e4
        x[(1, j)] = (1e4 - r(rng).abs()) as f32; // all near +1e4
        x[(2, j)] = (-1e4 + r(rng).abs()) as f32; // all near -1e4
        x[(3, j)] = (r(rng) * 10.0) as f32;
        x[(4, j)] = (r(rng) * 1e-3) as f32;
        x[(5, j)] = 7.0; // ties
        x[(6, j)] = (r(rng) * 1e-40) as f32; // subnormal
        x[(7, j)] = if j % 2 == 0 { 1e-45 } else { -1e-45 }; // the smallest subnormal
        x[(8, j)] = if j == 0 { 1e4 } else { -1e4 }; // one logit far above the rest
        x[(9, j)] = if j % 3 == 0 {
            f32::NEG_INFINITY
        } else {
            (r(rng) * 30.0) as f32
        };
        x[(10, j)] = f32::NEG_INFINITY; // fully masked
        x[(11, j)] = if j == m - 1 { 0.0 } else { f32::NEG_INFINITY }; // one key left
    }
    x
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Every entry of an f32 result is finite.
fn assert_finite(name: &str, m: &DMatrix<f32>) {
    if let Some((i, x)) = m.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        panic!("{name}: entry {i} of {:?} is {x}", m.shape());
    }
}

/// |got - want| <= SAFETY * bound, element by element (false for NaN).
fn assert_within(name: &str, got: &DMatrix<f32>, want: &DMatrix<f64>, bound: &DMatrix<f64>) {
    assert_eq!(got.shape(), want.shape(), "{name}: shapes");
    let mut worst = (0.0f64, 0usize);
    for (i, ((&g, &w), &b)) in got.iter().zip(want.iter()).zip(bound.iter()).enumerate() {
        let e = (f64::from(g) - w).abs();
        let ok = e <= SAFETY * b || (g as f64 == w); // equal infinities pass
        assert!(
            ok,
            "{name}: entry {i} of {:?}: f32 {g:e}, f64 {w:e}, error {e:.3e} > bound {:.3e}",
            got.shape(),
            SAFETY * b
        );
        if b > 0.0 && e / b > worst.0 {
            worst = (e / b, i);
        }
    }
    if std::env::var_os("NUMERICS_REPORT").is_some() {
        eprintln!("{name}: worst error / bound = {:.3e}", worst.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Bounds (see the module header)

/// The bound on fl(A B) from A, B (f64) and the bounds dA, dB on their errors; k is the inner
/// size (plus one where a bias is added).
fn product_bound(
    a: &DMatrix<f64>,
    da: &DMatrix<f64>,
    b: &DMatrix<f64>,
    db: &DMatrix<f64>,
    k: usize,
) -> DMatrix<f64> {
    let exact = |m: &DMatrix<f64>| m.iter().all(|&x| x == 0.0);
    let (aa, ab) = (abs(a), abs(b));
    let underflow = ETA * k as f64; // each of the k products may underflow
    let bound = match (exact(da), exact(db)) {
        (true, true) => &aa * &ab * gamma(k),
        (false, true) => da * &ab + (&aa + da) * &ab * gamma(k),
        (true, false) => &aa * db + &aa * (&ab + db) * gamma(k),
        (false, false) => &(da * &ab) + &(&aa * db) + da * db + (&aa + da) * (&ab + db) * gamma(k),
    };
    bound.add_scalar(underflow)
}

/// The bound on a row-wise softmax from the scores s (f64, -inf where masked), the bound ds
/// on their errors, and the f64 weights w.
fn softmax_bound(s: &DMatrix<f64>, ds: &DMatrix<f64>, w: &DMatrix<f64>) -> DMatrix<f64> {
    let (n, m) = s.shape();
    // per row: the largest allowed score and the largest error of an allowed score
    let (mut max, mut delta) = (vec![f64::NEG_INFINITY; n], vec![0f64; n]);
    for j in 0..m {
        for i in 0..n {
            if s[(i, j)] > f64::NEG_INFINITY {
                max[i] = max[i].max(s[(i, j)]);
                delta[i] = delta[i].max(ds[(i, j)]);
            }
        }
    }
    DMatrix::from_fn(n, m, |i, j| {
        if s[(i, j)] == f64::NEG_INFINITY {
            return 0.0; // masked, or a fully masked row: exactly zero in both
        }
        let t = max[i] - s[(i, j)];
        w[(i, j)] * ((2.0 * delta[i]).exp_m1() + U * (m as f64 + 6.0 + 4.0 * t)) + ETA
    })
}

/// The bound on `softmax_rows_backward(y, dy)` = y * (dy - sum(y dy)) (times `scale`), from
/// y, dy (f64) and the bounds on their errors.
fn softmax_backward_bound(
    y: &DMatrix<f64>,
    dy_bound_y: &DMatrix<f64>,
    dy: &DMatrix<f64>,
    d_dy: &DMatrix<f64>,
    scale: f64,
) -> DMatrix<f64> {
    let m = y.ncols();
    let mut b = zeros(y);
    for i in 0..y.nrows() {
        let dot: f64 = (0..m).map(|j| y[(i, j)] * dy[(i, j)]).sum();
        let abs_dot: f64 = (0..m).map(|j| (y[(i, j)] * dy[(i, j)]).abs()).sum();
        let d_dot: f64 = (0..m)
            .map(|j| dy_bound_y[(i, j)] * dy[(i, j)].abs() + y[(i, j)].abs() * d_dy[(i, j)])
            .sum::<f64>()
            + gamma(m) * abs_dot;
        for j in 0..m {
            let (yj, gj) = (y[(i, j)].abs(), dy[(i, j)].abs());
            b[(i, j)] = scale
                * (dy_bound_y[(i, j)] * (gj + dot.abs())
                    + yj * (d_dy[(i, j)] + d_dot)
                    + 4.0 * U * yj * (gj + dot.abs()))
                + ETA;
        }
    }
    b
}

/// The f64 scores of Eq. 1, -inf where masked, and the bound on their f32 errors given bounds
/// on the errors of q and k.
fn score_bound(
    q: &DMatrix<f64>,
    dq: &DMatrix<f64>,
    k: &DMatrix<f64>,
    dk: &DMatrix<f64>,
    mask: Option<&Mask>,
) -> (DMatrix<f64>, DMatrix<f64>) {
    let d_k = q.ncols();
    let root = (d_k as f64).sqrt();
    let mut s = q * k.transpose() / root; // (n, d_k) x (d_k, m) -> (n, m)
    let mut ds = product_bound(q, dq, &k.transpose(), &dk.transpose(), d_k) / root;
    ds += abs(&s) * (2.0 * U); // the rounded sqrt and the division
    ds.add_scalar_mut(ETA * d_k as f64); // products that underflow
    if let Some(mask) = mask {
        for j in 0..s.ncols() {
            for i in 0..s.nrows() {
                if !mask.allows(i, j) {
                    s[(i, j)] = f64::NEG_INFINITY;
                    ds[(i, j)] = 0.0;
                }
            }
        }
    }
    (s, ds)
}

/// Bounds on the weights and the output of Eq. 1 in f32, given bounds on the inputs' errors.
struct AttentionBound {
    weights: DMatrix<f64>,
    output: DMatrix<f64>,
}

#[allow(clippy::too_many_arguments)]
fn attention_bound(
    q: &DMatrix<f64>,
    dq: &DMatrix<f64>,
    k: &DMatrix<f64>,
    dk: &DMatrix<f64>,
    v: &DMatrix<f64>,
    dv: &DMatrix<f64>,
    mask: Option<&Mask>,
    weights: &DMatrix<f64>,
) -> AttentionBound {
    let (s, ds) = score_bound(q, dq, k, dk, mask);
    let bw = softmax_bound(&s, &ds, weights);
    let output = product_bound(weights, &bw, v, dv, k.nrows());
    AttentionBound {
        weights: bw,
        output,
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax and log-softmax (§3.2.1, §3.4)

#[test]
fn softmax_in_f32_is_within_the_bound_of_the_f64_oracle() {
    for (m, seed) in [(1, 1), (7, 2), (4096, 3)] {
        let x32 = logit_rows(m, &mut rng(seed));
        let x = to64(&x32);
        let (y32, y) = (softmax_rows(&x32), softmax_rows(&x));
        assert_finite("softmax", &y32);
        let by = softmax_bound(&x, &zeros(&x), &y);
        assert_within(&format!("softmax, m = {m}"), &y32, &y, &by);

        // backward, with an upstream gradient of every sign
        let dy32 = random(x.nrows(), m, 1.0, &mut rng(seed + 10));
        let dy = to64(&dy32);
        let dx32 = softmax_rows_backward(&y32, &dy32);
        assert_finite("softmax backward", &dx32);
        let bdx = softmax_backward_bound(&y, &by, &dy, &zeros(&dy), 1.0);
        assert_within(
            &format!("softmax backward, m = {m}"),
            &dx32,
            &softmax_rows_backward(&y, &dy),
            &bdx,
        );
    }
}

/// log softmax(x)_j = x_j - max - ln S with S = sum exp(x_l - max) in [1, m]. In f32: the
/// subtraction x_j - max is off by u t_j; S by u (m + 2 + ln m) relatively (the exponentials
/// move by u t_l each, and sum_l w_l t_l <= ln m); ln S by that plus u ln m; the two final
/// subtractions by u (t_j + |l_j|) together. So |Δl_j| <= u (2 t_j + |l_j| + m + 3 + 2 ln m).
fn log_softmax_bound(x: &DMatrix<f64>, l: &DMatrix<f64>) -> DMatrix<f64> {
    let m = x.ncols();
    let mut b = zeros(l);
    for i in 0..x.nrows() {
        let max = x.row(i).max();
        if max == f64::NEG_INFINITY {
            continue;
        }
        for j in 0..m {
            if x[(i, j)] == f64::NEG_INFINITY {
                continue; // -inf in both
            }
            let t = max - x[(i, j)];
            b[(i, j)] =
                U * (2.0 * t + l[(i, j)].abs() + m as f64 + 3.0 + 2.0 * (m as f64).ln()) + ETA;
        }
    }
    b
}

/// dx = g - exp(l) sum(g): exp(l) carries l's error plus exp's (2u), the sum γ_m.
fn log_softmax_backward_bound(
    l: &DMatrix<f64>,
    bl: &DMatrix<f64>,
    g: &DMatrix<f64>,
    bg: &DMatrix<f64>,
) -> DMatrix<f64> {
    let mut b = zeros(l);
    for i in 0..l.nrows() {
        let total: f64 = g.row(i).sum();
        let abs_total: f64 = g.row(i).abs().sum();
        let d_total: f64 = bg.row(i).sum() + gamma(l.ncols()) * abs_total;
        for j in 0..l.ncols() {
            let p = l[(i, j)].exp();
            b[(i, j)] = bg[(i, j)]
                + p * ((bl[(i, j)] + 2.0 * U) * total.abs() + d_total)
                + 2.0 * U * (g[(i, j)].abs() + p * total.abs())
                + ETA;
        }
    }
    b
}

#[test]
fn log_softmax_in_f32_is_within_the_bound_of_the_f64_oracle() {
    for (m, seed) in [(1, 4), (7, 5), (4096, 6)] {
        let x32 = logit_rows(m, &mut rng(seed));
        let x = to64(&x32);
        let (l32, l) = (log_softmax_rows(&x32), log_softmax_rows(&x));
        // -inf exactly where the input is -inf, finite everywhere else
        for (a, b) in l32.iter().zip(x32.iter()) {
            assert_eq!(*b == f32::NEG_INFINITY, *a == f32::NEG_INFINITY);
            assert!(!a.is_nan());
        }
        let bl = log_softmax_bound(&x, &l);
        assert_within(&format!("log-softmax, m = {m}"), &l32, &l, &bl);

        let g32 = random(x.nrows(), m, 1.0, &mut rng(seed + 10));
        let g = to64(&g32);
        let dx32 = log_softmax_rows_backward(&l32, &g32);
        assert_finite("log-softmax backward", &dx32);
        let bdx = log_softmax_backward_bound(&l, &bl, &g, &zeros(&g));
        assert_within(
            &format!("log-softmax backward, m = {m}"),
            &dx32,
            &log_softmax_rows_backward(&l, &g),
            &bdx,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Eq. 1, plain and fast, forward and backward

/// Queries, keys and values in f32 with the mask of the case.
struct Case {
    q: DMatrix<f32>,
    k: DMatrix<f32>,
    v: DMatrix<f32>,
    mask: Option<Mask>,
}

/// n queries over m keys; scores up to about `scale`^2 sqrt(d_k); the first query fully
/// masked (padding on every key it may see under a causal mask) when `masked`.
fn case(n: usize, m: usize, d_k: usize, scale: f64, masked: bool, seed: u64) -> Case {
    let mut r = rng(seed);
    let q = random(n, d_k, scale, &mut r);
    let k = random(m, d_k, scale, &mut r);
    let v = random(m, 3, 1.0, &mut r);
    let mask = masked.then(|| {
        let mut pad = vec![false; m];
        pad[..=m - n].fill(true); // query 0 sees keys 0..=m-n only: all padding
        Mask::causal_suffix(n, m).and(&Mask::padding(n, &pad))
    });
    Case { q, k, v, mask }
}

/// Checks the plain and the fast path against the f64 oracle; returns the oracle's weights and
/// their bound.
fn check_attention_forward(name: &str, c: &Case) -> (DMatrix<f64>, DMatrix<f64>) {
    let (q, k, v) = (to64(&c.q), to64(&c.k), to64(&c.v));
    let want = scaled_dot_product_attention(&q, &k, &v, c.mask.as_ref());
    let bound = attention_bound(
        &q,
        &zeros(&q),
        &k,
        &zeros(&k),
        &v,
        &zeros(&v),
        c.mask.as_ref(),
        &want.weights,
    );
    let plain = scaled_dot_product_attention(&c.q, &c.k, &c.v, c.mask.as_ref());
    let fast = scaled_dot_product_attention_fast(&c.q, &c.k, &c.v, c.mask.as_ref());
    // The fast path's exponential (`aiayn::fast::exp_f32`) returns 0 below e^-87 instead of a
    // subnormal or tiny normal number: a weight below FAST_FLUSH may become 0, and each output
    // entry may lose up to m such weights times the largest |v|.
    let v_max = c.v.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
    let fast_weights = bound.weights.add_scalar(FAST_FLUSH / SAFETY);
    let fast_output = bound
        .output
        .add_scalar(FAST_FLUSH * c.k.nrows() as f64 * v_max / SAFETY);
    for (path, got, weights_bound, output_bound) in [
        ("plain", plain, &bound.weights, &bound.output),
        ("fast", fast, &fast_weights, &fast_output),
    ] {
        assert_finite(&format!("{name} {path} weights"), &got.weights);
        assert_finite(&format!("{name} {path} output"), &got.output);
        let what = format!("{name}, {path}");
        assert_within(
            &format!("{what} weights"),
            &got.weights,
            &want.weights,
            weights_bound,
        );
        assert_within(
            &format!("{what} output"),
            &got.output,
            &want.output,
            output_bound,
        );
    }
    (want.weights, bound.weights)
}

#[test]
fn attention_over_4096_positions_in_f32_is_within_the_bound_that_sees_a_wrong_scale() {
    // The last 512 queries of a causal self-attention over n = 4096 positions: rows of up to
    // 4096 keys, the length the rounding of the softmax's sum grows with. (All 4096 queries
    // would only repeat such rows, eight times slower.)
    let (n, m) = (512, 4096);
    let c = Case {
        mask: Some(Mask::causal_suffix(n, m)),
        ..case(n, m, 16, 1.5, false, 7)
    };
    let (want, bound) = check_attention_forward("last 512 of n = 4096", &c);

    // A wrong scale in the f32 code, which the f64 oracle would not share: q * 1.001 stands
    // for 1.001 / sqrt(d_k). The bound must see it, or it could not see a real bug.
    let wrong = scaled_dot_product_attention(&(&c.q * 1.001f32), &c.k, &c.v, c.mask.as_ref());
    let outside = wrong
        .weights
        .iter()
        .zip(want.iter().zip(bound.iter()))
        .filter(|(&g, (&w, &b))| (f64::from(g) - w).abs() > SAFETY * b)
        .count();
    let allowed = want.iter().filter(|&&w| w > 0.0).count();
    assert!(
        outside > allowed / 4,
        "only {outside} of {allowed} weights leave the bound"
    );
}

#[test]
fn attention_with_extreme_and_tiny_scores_is_within_the_bound() {
    // d_k = 1 and scores up to ±1e4; subnormal queries and keys; a single query and key.
    check_attention_forward("d_k = 1, scores ±1e4", &case(64, 64, 1, 100.0, true, 8));
    check_attention_forward("d_k = 64, scores ±1e4", &case(33, 65, 64, 12.0, true, 9));
    check_attention_forward("subnormal q, k", &case(16, 16, 8, 1e-20, true, 10));
    check_attention_forward("n = m = 1", &case(1, 1, 1, 1.0, false, 11));
    check_attention_forward("n = 1, m = 300", &case(1, 300, 4, 3.0, false, 12));
}

#[test]
fn attention_backward_in_f32_is_within_the_bound() {
    for (name, c) in [
        (
            // rows of up to 4096 keys, as in the forward check above (128 queries: the
            // backward pass and its bound cost about 8 times the forward's per query)
            "last 128 of n = 4096",
            Case {
                mask: Some(Mask::causal_suffix(128, 4096)),
                ..case(128, 4096, 16, 1.5, false, 18)
            },
        ),
        ("n = m = 1024", case(1024, 1024, 16, 1.5, true, 13)),
        ("d_k = 1, scores ±1e4", case(48, 64, 1, 100.0, true, 14)),
        ("subnormal q, k", case(16, 16, 8, 1e-20, true, 15)),
        ("n = m = 1", case(1, 1, 1, 1.0, false, 16)),
    ] {
        let (q, k, v) = (to64(&c.q), to64(&c.k), to64(&c.v));
        let d_out32 = random(c.q.nrows(), c.v.ncols(), 1.0, &mut rng(17));
        let d_out = to64(&d_out32);
        let a = scaled_dot_product_attention(&q, &k, &v, c.mask.as_ref());
        let want = scaled_dot_product_attention_backward(&q, &k, &v, &a.weights, &d_out);
        let a32 = scaled_dot_product_attention(&c.q, &c.k, &c.v, c.mask.as_ref());
        let got = scaled_dot_product_attention_backward(&c.q, &c.k, &c.v, &a32.weights, &d_out32);
        for (what, m) in [("d_q", &got.d_q), ("d_k", &got.d_k), ("d_v", &got.d_v)] {
            assert_finite(&format!("{name}: {what}"), m);
        }

        // dV = A^T dO; dA = dO V^T; dS = softmax'(dA) / sqrt(d_k); dQ = dS K; dK = dS^T Q.
        let zero = |m: &DMatrix<f64>| zeros(m);
        let bw = attention_bound(
            &q,
            &zero(&q),
            &k,
            &zero(&k),
            &v,
            &zero(&v),
            c.mask.as_ref(),
            &a.weights,
        )
        .weights;
        let b_dv = product_bound(
            &a.weights.transpose(),
            &bw.transpose(),
            &d_out,
            &zero(&d_out),
            q.nrows(),
        );
        let d_a = &d_out * v.transpose();
        let b_da = product_bound(
            &d_out,
            &zero(&d_out),
            &v.transpose(),
            &zero(&v.transpose()),
            v.ncols(),
        );
        let scale = 1.0 / (q.ncols() as f64).sqrt();
        let d_s = softmax_rows_backward(&a.weights, &d_a) * scale;
        let b_ds =
            softmax_backward_bound(&a.weights, &bw, &d_a, &b_da, scale) + abs(&d_s) * (2.0 * U);
        let b_dq = product_bound(&d_s, &b_ds, &k, &zero(&k), k.nrows());
        let b_dk = product_bound(
            &d_s.transpose(),
            &b_ds.transpose(),
            &q,
            &zero(&q),
            q.nrows(),
        );
        assert_within(&format!("{name}: d_v"), &got.d_v, &want.d_v, &b_dv);
        assert_within(&format!("{name}: d_q"), &got.d_q, &want.d_q, &b_dq);
        assert_within(&format!("{name}: d_k"), &got.d_k, &want.d_k, &b_dk);
    }
}

// ---------------------------------------------------------------------------------------------
// Multi-head attention (§3.2.2), plain and fast

/// A bias-free layer with f32 weights and the same weights in f64.
fn multi_head(
    d_model: usize,
    h: usize,
    d_k: usize,
    scale: f64,
    seed: u64,
) -> (MultiHeadAttention<f32>, MultiHeadAttention<f64>) {
    let mut r = rng(seed);
    let mut w = |rows, cols| random(rows, cols, scale / (rows as f64).sqrt(), &mut r);
    let m32 = MultiHeadAttention {
        h,
        d_k,
        d_v: d_k,
        w_q: w(d_model, h * d_k),
        w_k: w(d_model, h * d_k),
        w_v: w(d_model, h * d_k),
        w_o: w(h * d_k, d_model),
        b_q: None,
        b_k: None,
        b_v: None,
        b_o: None,
    };
    let m64 = MultiHeadAttention {
        h,
        d_k,
        d_v: d_k,
        w_q: to64(&m32.w_q),
        w_k: to64(&m32.w_k),
        w_v: to64(&m32.w_v),
        w_o: to64(&m32.w_o),
        b_q: None,
        b_k: None,
        b_v: None,
        b_o: None,
    };
    (m32, m64)
}

/// The bound on the output: the projections' (product rule), each head's (Eq. 1 with those
/// input errors), then W^O's.
fn multi_head_bound(
    mha: &MultiHeadAttention<f64>,
    x: &DMatrix<f64>,
    mask: Option<&Mask>,
    weights: &[DMatrix<f64>],
) -> DMatrix<f64> {
    let d_model = x.ncols();
    let zx = zeros(x);
    let proj = |w: &DMatrix<f64>| (x * w, product_bound(x, &zx, w, &zeros(w), d_model));
    let ((q, bq), (k, bk), (v, bv)) = (proj(&mha.w_q), proj(&mha.w_k), proj(&mha.w_v));
    let d_k = mha.d_k;
    let mut concat = DMatrix::zeros(x.nrows(), mha.h * d_k);
    let mut b_concat = concat.clone();
    for (i, w) in weights.iter().enumerate() {
        let cols = |m: &DMatrix<f64>| m.columns(i * d_k, d_k).into_owned();
        let b = attention_bound(
            &cols(&q),
            &cols(&bq),
            &cols(&k),
            &cols(&bk),
            &cols(&v),
            &cols(&bv),
            mask,
            w,
        );
        concat.columns_mut(i * d_k, d_k).copy_from(&(w * cols(&v)));
        b_concat.columns_mut(i * d_k, d_k).copy_from(&b.output);
    }
    product_bound(&concat, &b_concat, &mha.w_o, &zeros(&mha.w_o), mha.h * d_k)
}

#[test]
fn multi_head_attention_in_f32_is_within_the_bound() {
    for (name, n, d_model, h, scale, seed) in [
        ("n = 128, h = 4", 128, 32, 4, 1.0, 20),
        ("d_k = 1, large scores", 40, 8, 8, 30.0, 21),
        ("n = 1", 1, 16, 2, 1.0, 22),
        ("subnormal x", 16, 16, 4, 1.0, 23),
    ] {
        let (m32, m64) = multi_head(d_model, h, d_model / h, scale, seed);
        let x_scale = if name.starts_with("subnormal") {
            1e-39
        } else {
            1.0
        };
        let x32 = random(n, d_model, x_scale, &mut rng(seed + 100));
        let x = to64(&x32);
        let mask = (n > 1).then(|| {
            let mut pad = vec![false; n];
            pad[0] = true; // query 0 may see key 0 only, which is padding
            Mask::causal(n).and(&Mask::padding(n, &pad))
        });
        let want = m64.forward(&x, &x, &x, mask.as_ref());
        let bound = multi_head_bound(&m64, &x, mask.as_ref(), &want.weights);
        let plain = m32.forward(&x32, &x32, &x32, mask.as_ref());
        let fast = multi_head_forward_fast(&m32, &x32, &x32, &x32, mask.as_ref(), 1);
        for (path, got) in [("plain", plain.output), ("fast", fast.output)] {
            assert_finite(&format!("{name} {path}"), &got);
            assert_within(&format!("{name}, {path}"), &got, &want.output, &bound);
            if n > 1 {
                // the fully masked query attends to nothing: a zero row, without biases
                assert!(
                    got.row(0).iter().all(|&z| z == 0.0),
                    "{name} {path}: {}",
                    got.row(0)
                );
            }
        }
    }
}

/// Bounds on the f32 gradients of multi-head attention, in the order the backward pass computes
/// them: W^O's product, each head's Eq. 1 backward (with the errors of the projections, the
/// weights and the incoming gradient), then the three input projections'.
struct MultiHeadBackwardBound {
    d_query: DMatrix<f64>,
    d_key: DMatrix<f64>,
    d_value: DMatrix<f64>,
    w_q: DMatrix<f64>,
    w_k: DMatrix<f64>,
    w_v: DMatrix<f64>,
    w_o: DMatrix<f64>,
}

fn multi_head_backward_bound(
    mha: &MultiHeadAttention<f64>,
    x: &DMatrix<f64>,
    mask: &Mask,
    weights: &[DMatrix<f64>],
    d_out: &DMatrix<f64>,
) -> MultiHeadBackwardBound {
    let (n, d_model, d_k) = (x.nrows(), x.ncols(), mha.d_k);
    let (zx, zd) = (zeros(x), zeros(d_out));
    let t = |m: &DMatrix<f64>| m.transpose();
    let proj = |w: &DMatrix<f64>| (x * w, product_bound(x, &zx, w, &zeros(w), d_model));
    let ((q, bq), (k, bk), (v, bv)) = (proj(&mha.w_q), proj(&mha.w_k), proj(&mha.w_v));
    let cols = |m: &DMatrix<f64>, i: usize| m.columns(i * d_k, d_k).into_owned();

    // forward: each head's weights and output, and the concatenation
    let mut concat = DMatrix::zeros(n, mha.h * d_k);
    let mut b_concat = concat.clone();
    let mut b_weights = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        let (qi, ki, vi) = (cols(&q, i), cols(&k, i), cols(&v, i));
        let (bqi, bki, bvi) = (cols(&bq, i), cols(&bk, i), cols(&bv, i));
        let b = attention_bound(&qi, &bqi, &ki, &bki, &vi, &bvi, Some(mask), w);
        concat.columns_mut(i * d_k, d_k).copy_from(&(w * vi));
        b_concat.columns_mut(i * d_k, d_k).copy_from(&b.output);
        b_weights.push(b.weights);
    }

    // W^O: dW^O = concat^T dO, d_concat = dO W^O^T
    let w_o = product_bound(&t(&concat), &t(&b_concat), d_out, &zd, n);
    let d_concat = d_out * t(&mha.w_o);
    let b_dc = product_bound(d_out, &zd, &t(&mha.w_o), &zeros(&t(&mha.w_o)), d_model);

    // each head: dV = A^T dO_i, dA = dO_i V^T, dS = softmax'(dA) / sqrt(d_k), dQ = dS K,
    // dK = dS^T Q
    let scale = 1.0 / (d_k as f64).sqrt();
    let (mut b_dq, mut b_dk, mut b_dv) = (zeros(&q), zeros(&k), zeros(&v));
    let (mut d_q, mut d_k_all, mut d_v) = (zeros(&q), zeros(&k), zeros(&v));
    for (i, (a, bw)) in weights.iter().zip(&b_weights).enumerate() {
        let (qi, ki, vi) = (cols(&q, i), cols(&k, i), cols(&v, i));
        let (bqi, bki, bvi) = (cols(&bq, i), cols(&bk, i), cols(&bv, i));
        let (doi, b_doi) = (cols(&d_concat, i), cols(&b_dc, i));
        let dv = t(a) * &doi;
        let bdv = product_bound(&t(a), &t(bw), &doi, &b_doi, n);
        let da = &doi * t(&vi);
        let bda = product_bound(&doi, &b_doi, &t(&vi), &t(&bvi), d_k);
        let ds = softmax_rows_backward(a, &da) * scale;
        let bds = softmax_backward_bound(a, bw, &da, &bda, scale) + abs(&ds) * (2.0 * U);
        let bdq = product_bound(&ds, &bds, &ki, &bki, ki.nrows());
        let bdk = product_bound(&t(&ds), &t(&bds), &qi, &bqi, n);
        d_q.columns_mut(i * d_k, d_k).copy_from(&(&ds * &ki));
        d_k_all.columns_mut(i * d_k, d_k).copy_from(&(t(&ds) * &qi));
        d_v.columns_mut(i * d_k, d_k).copy_from(&dv);
        b_dq.columns_mut(i * d_k, d_k).copy_from(&bdq);
        b_dk.columns_mut(i * d_k, d_k).copy_from(&bdk);
        b_dv.columns_mut(i * d_k, d_k).copy_from(&bdv);
    }

    // the projections: dX = dP W^T, dW = X^T dP
    let hd = mha.h * d_k;
    let back = |w: &DMatrix<f64>, dp: &DMatrix<f64>, bdp: &DMatrix<f64>| {
        (
            product_bound(dp, bdp, &t(w), &zeros(&t(w)), hd),
            product_bound(&t(x), &t(&zx), dp, bdp, n),
        )
    };
    let (d_query, w_q) = back(&mha.w_q, &d_q, &b_dq);
    let (d_key, w_k) = back(&mha.w_k, &d_k_all, &b_dk);
    let (d_value, w_v) = back(&mha.w_v, &d_v, &b_dv);
    MultiHeadBackwardBound {
        d_query,
        d_key,
        d_value,
        w_q,
        w_k,
        w_v,
        w_o,
    }
}

#[test]
fn multi_head_backward_in_f32_is_within_the_bound_and_exactly_zero_through_a_masked_query() {
    for (name, n, scale, x_scale, seed) in [
        ("n = 24", 24, 1.0, 1.0, 24),
        ("large scores", 24, 30.0, 3.0, 25),
        ("subnormal x", 24, 1.0, 1e-39, 26),
        ("n = 256", 256, 1.0, 1.0, 27),
    ] {
        let (m32, m64) = multi_head(16, 4, 4, scale, seed);
        let x32 = random(n, 16, x_scale, &mut rng(seed + 100));
        let x = to64(&x32);
        let mut pad = vec![false; n];
        pad[0] = true; // query 0 may see key 0 only, which is padding
        let mask = Mask::causal(n).and(&Mask::padding(n, &pad));
        let d_out32 = random(n, 16, 1.0, &mut rng(seed + 200));
        let d_out = to64(&d_out32);

        let (out, cache) = m32.forward_train(&x32, &x32, &x32, std::slice::from_ref(&mask));
        assert_finite(&format!("{name}: forward_train"), &out.output);
        let got = m32.backward(&cache, &d_out32);
        let (out64, cache64) = m64.forward_train(&x, &x, &x, std::slice::from_ref(&mask));
        let want = m64.backward(&cache64, &d_out);
        let bound = multi_head_backward_bound(&m64, &x, &mask, &out64.weights, &d_out);
        for (what, g, w, b) in [
            ("d_query", &got.d_query, &want.d_query, &bound.d_query),
            ("d_key", &got.d_key, &want.d_key, &bound.d_key),
            ("d_value", &got.d_value, &want.d_value, &bound.d_value),
            ("w_q", &got.params.w_q, &want.params.w_q, &bound.w_q),
            ("w_k", &got.params.w_k, &want.params.w_k, &bound.w_k),
            ("w_v", &got.params.w_v, &want.params.w_v, &bound.w_v),
            ("w_o", &got.params.w_o, &want.params.w_o, &bound.w_o),
        ] {
            assert_finite(&format!("{name}: {what}"), g);
            assert_within(&format!("{name}: {what}"), g, w, b);
        }
        // Query 0 attends to nothing, so its gradient through the queries is exactly zero,
        // and key and value 0 (padding everywhere) get none through the keys and values.
        // With x as query, key and value separately, each slot is separate here.
        for (what, m) in [
            ("d_query", &got.d_query),
            ("d_key", &got.d_key),
            ("d_value", &got.d_value),
        ] {
            assert!(
                m.row(0).iter().all(|&z| z == 0.0),
                "{name}: {what} row 0: {}",
                m.row(0)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm (§3.1)

/// Rows for LayerNorm: ordinary spread, a large mean with a small spread (cancellation), zero
/// spread, a subnormal spread, and logits-sized values.
fn norm_rows(d: usize, rng: &mut StdRng) -> DMatrix<f32> {
    let mut x = DMatrix::zeros(6, d);
    for j in 0..d {
        let r = |rng: &mut StdRng| -> f64 { rng.random_range(-1.0..=1.0) };
        x[(0, j)] = r(rng) as f32;
        x[(1, j)] = (1000.0 + 0.1 * r(rng)) as f32;
        x[(2, j)] = 0.5; // zero spread, and a mean that is exact
        x[(3, j)] = (r(rng) * 1e-40) as f32; // subnormal spread around 0
        x[(4, j)] = (r(rng) * 1e4) as f32;
        x[(5, j)] = (-3.0 + r(rng) * 1e-3) as f32;
    }
    x
}

/// Per row: the mean μ is off by ε_μ = γ_d mean|x| + u|μ|; x - μ by ε_μ + u|x - μ|; the
/// biased variance by the centred values' errors plus γ_(d+1), plus u ε for ε rounded to f32;
/// σ = sqrt(var + ε) relatively by Δvar / (2σ^2) + 2u. x̂ = (x - μ)/σ then carries
/// Δ(x - μ)/σ + |x̂| (Δσ/σ + 2u) (2u: forward divides, forward_train multiplies by 1/σ).
/// Returns x̂ (f64), its bound, and per row σ with the bound on its relative error.
#[allow(clippy::type_complexity)]
fn norm_hat_bound(x: &DMatrix<f64>, eps: f64) -> (DMatrix<f64>, DMatrix<f64>, Vec<(f64, f64)>) {
    let d = x.ncols();
    let (mut x_hat, mut b) = (zeros(x), zeros(x));
    let mut sigmas = Vec::new();
    for i in 0..x.nrows() {
        let row = x.row(i);
        let mu = row.mean();
        let e_mu = gamma(d) * row.abs().mean() + U * mu.abs();
        let c: Vec<f64> = row.iter().map(|&z| z - mu).collect();
        let dc: Vec<f64> = c.iter().map(|z| e_mu + U * z.abs()).collect();
        let var = c.iter().map(|z| z * z).sum::<f64>() / d as f64;
        let d_var = c
            .iter()
            .zip(&dc)
            .map(|(z, e)| 2.0 * z.abs() * e + e * e)
            .sum::<f64>()
            / d as f64
            + gamma(d + 1) * var
            + U * eps
            + ETA * d as f64;
        let sigma = (var + eps).sqrt();
        let rel_sigma = d_var / (2.0 * sigma * sigma) + 2.0 * U;
        for j in 0..d {
            x_hat[(i, j)] = c[j] / sigma;
            b[(i, j)] = dc[j] / sigma + x_hat[(i, j)].abs() * (rel_sigma + 2.0 * U) + ETA;
        }
        sigmas.push((sigma, rel_sigma));
    }
    (x_hat, b, sigmas)
}

/// y = gain x̂ + bias: gain carries x̂'s error, and the product and the sum round.
fn layer_norm_output_bound(
    norm: &LayerNorm<f64>,
    x_hat: &DMatrix<f64>,
    b_hat: &DMatrix<f64>,
) -> DMatrix<f64> {
    DMatrix::from_fn(x_hat.nrows(), x_hat.ncols(), |i, j| {
        let gx = (norm.gain[j] * x_hat[(i, j)]).abs();
        norm.gain[j].abs() * b_hat[(i, j)] + 2.0 * U * (gx + norm.bias[j].abs())
    })
}

/// g = dy * gain; dx = (g - mean(g) - x̂ mean(g x̂)) / σ: each mean carries its terms'
/// errors and γ_(d+1), the three-term sum 3u, and the division σ's relative error.
fn layer_norm_dx_bound(
    norm: &LayerNorm<f64>,
    dy: &DMatrix<f64>,
    x_hat: &DMatrix<f64>,
    b_hat: &DMatrix<f64>,
    sigmas: &[(f64, f64)],
) -> DMatrix<f64> {
    let d = dy.ncols();
    let mut b_dx = zeros(dy);
    for i in 0..dy.nrows() {
        let gi: Vec<f64> = (0..d).map(|j| dy[(i, j)] * norm.gain[j]).collect();
        let m_g = gi.iter().sum::<f64>() / d as f64;
        let m_gx = (0..d).map(|j| gi[j] * x_hat[(i, j)]).sum::<f64>() / d as f64;
        let abs_g = gi.iter().map(|z| z.abs()).sum::<f64>() / d as f64;
        let d_mg = gamma(d + 1) * abs_g;
        let d_mgx = (0..d)
            .map(|j| gi[j].abs() * (b_hat[(i, j)] + 2.0 * U * x_hat[(i, j)].abs()))
            .sum::<f64>()
            / d as f64
            + gamma(d + 1) * (0..d).map(|j| (gi[j] * x_hat[(i, j)]).abs()).sum::<f64>() / d as f64;
        for j in 0..d {
            let r = gi[j] - m_g - x_hat[(i, j)] * m_gx;
            let d_r = U * gi[j].abs()
                + d_mg
                + b_hat[(i, j)] * m_gx.abs()
                + x_hat[(i, j)].abs() * d_mgx
                + 3.0 * U * (gi[j].abs() + m_g.abs() + (x_hat[(i, j)] * m_gx).abs());
            let (sigma, rel) = sigmas[i];
            b_dx[(i, j)] = d_r / sigma + r.abs() / sigma * (rel + 2.0 * U) + ETA;
        }
    }
    b_dx
}

/// dgain = sum over rows of dy x̂: x̂'s error times |dy|, the product's u, and γ_n.
fn layer_norm_gain_bound(
    dy: &DMatrix<f64>,
    x_hat: &DMatrix<f64>,
    b_hat: &DMatrix<f64>,
) -> RowDVector<f64> {
    let (n, d) = dy.shape();
    RowDVector::from_fn(d, |_, j| {
        (0..n)
            .map(|i| dy[(i, j)].abs() * (b_hat[(i, j)] + U * x_hat[(i, j)].abs()))
            .sum::<f64>()
            + gamma(n)
                * (0..n)
                    .map(|i| (dy[(i, j)] * x_hat[(i, j)]).abs())
                    .sum::<f64>()
    })
}

#[test]
fn layer_norm_in_f32_is_within_the_bound_including_rows_without_spread() {
    for (d, eps, seed) in [(1, 1e-6, 30), (8, 1e-6, 31), (512, 1e-5, 32)] {
        let mut r = rng(seed);
        let x32 = norm_rows(d, &mut r);
        let gain32 = RowDVector::from_fn(d, |_, _| r.random_range(0.5..1.5) as f32);
        let bias32 = RowDVector::from_fn(d, |_, _| r.random_range(-1.0..1.0) as f32);
        let n32 = LayerNorm {
            gain: gain32.clone(),
            bias: bias32.clone(),
            eps,
        };
        let n64 = LayerNorm {
            gain: row64(&gain32),
            bias: row64(&bias32),
            eps,
        };
        let x = to64(&x32);
        let (x_hat, b_hat, sigmas) = norm_hat_bound(&x, eps);
        let by = layer_norm_output_bound(&n64, &x_hat, &b_hat);
        let want = n64.forward(&x);
        for (path, got) in [
            ("forward", n32.forward(&x32)),
            ("forward_train", n32.forward_train(&x32).0),
        ] {
            assert_finite(&format!("layer norm {path}, d = {d}"), &got);
            assert_within(&format!("layer norm {path}, d = {d}"), &got, &want, &by);
            // zero spread: x̂ = 0 exactly, so the output is the bias exactly
            for j in 0..d {
                assert_eq!(
                    got[(2, j)],
                    bias32[j],
                    "{path}, d = {d}: row without spread"
                );
            }
        }

        // backward: g = dy * gain; dx = (g - mean(g) - x̂ mean(g x̂)) / σ.
        let dy32 = random(x.nrows(), d, 1.0, &mut rng(seed + 10));
        let dy = to64(&dy32);
        let (_, cache32) = n32.forward_train(&x32);
        let (dx32, g32) = n32.backward(&cache32, &dy32);
        let (_, cache) = n64.forward_train(&x);
        let (dx, g) = n64.backward(&cache, &dy);
        assert_finite("layer norm backward dx", &dx32);
        let b_dx = layer_norm_dx_bound(&n64, &dy, &x_hat, &b_hat, &sigmas);
        assert_within(
            &format!("layer norm backward dx, d = {d}"),
            &dx32,
            &dx,
            &b_dx,
        );
        let b_gain = layer_norm_gain_bound(&dy, &x_hat, &b_hat);
        let as_matrix = |r: &RowDVector<f64>| DMatrix::from_row_slice(1, r.len(), r.as_slice());
        let as_matrix32 = |r: &RowDVector<f32>| DMatrix::from_row_slice(1, r.len(), r.as_slice());
        assert_within(
            &format!("layer norm backward gain, d = {d}"),
            &as_matrix32(&g32.gain),
            &as_matrix(&g.gain),
            &as_matrix(&b_gain),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The position-wise network (Eq. 2)

/// A layer with f32 weights, and the same weights in f64.
fn feed_forward(
    d_model: usize,
    d_ff: usize,
    r: &mut StdRng,
) -> (FeedForward<f32>, FeedForward<f64>) {
    let f32_ = FeedForward {
        w_1: random(d_model, d_ff, 1.0 / (d_model as f64).sqrt(), r),
        b_1: RowDVector::from_fn(d_ff, |_, _| r.random_range(-0.1..0.1) as f32),
        w_2: random(d_ff, d_model, 1.0 / (d_ff as f64).sqrt(), r),
        b_2: RowDVector::from_fn(d_model, |_, _| r.random_range(-0.1..0.1) as f32),
    };
    let f64_ = FeedForward {
        w_1: to64(&f32_.w_1),
        b_1: row64(&f32_.b_1),
        w_2: to64(&f32_.w_2),
        b_2: row64(&f32_.b_2),
    };
    (f32_, f64_)
}

/// Bounds on the FFN's output and gradients in f32.
struct FeedForwardBounds {
    y: DMatrix<f64>,
    d_x: DMatrix<f64>,
    w_1: DMatrix<f64>,
    w_2: DMatrix<f64>,
}

/// Forward: H = x W_1 + b_1 (d_model products and a bias), relu is 1-Lipschitz,
/// y = relu(H) W_2 + b_2 (d_ff products and a bias). Backward: dH = (dy W_2^T) where H > 0,
/// dx = dH W_1^T, dW_1 = x^T dH, dW_2 = relu(H)^T dy. Where |H| is within its bound the two
/// runs may disagree on the ReLU, and the whole of (dy W_2^T) is allowed there.
fn feed_forward_bounds(
    f: &FeedForward<f64>,
    x: &DMatrix<f64>,
    dy: &DMatrix<f64>,
) -> FeedForwardBounds {
    let (n, d_model, d_ff) = (x.nrows(), f.w_1.nrows(), f.w_1.ncols());
    let ones = DMatrix::from_element(n, 1, 1.0);
    // the biases as full matrices, (n, d_ff) and (n, d_model)
    let b1 = &ones * DMatrix::from_row_slice(1, d_ff, f.b_1.as_slice());
    let b2 = &ones * DMatrix::from_row_slice(1, d_model, f.b_2.as_slice());
    let pre = x * &f.w_1 + &b1;
    let b_pre = (abs(x) * abs(&f.w_1) + abs(&b1)) * gamma(d_model + 1);
    let hidden = pre.map(|z| z.max(0.0));
    let y = product_bound(&hidden, &b_pre, &f.w_2, &zeros(&f.w_2), d_ff + 1) + abs(&b2) * U;

    let mut d_hidden = dy * f.w_2.transpose();
    let mut b_dh = abs(dy) * abs(&f.w_2.transpose()) * gamma(d_ff);
    for ((d, b), (&h, &bh)) in d_hidden
        .iter_mut()
        .zip(b_dh.iter_mut())
        .zip(pre.iter().zip(b_pre.iter()))
    {
        if h.abs() <= SAFETY * bh {
            *b += d.abs(); // the ReLU may go either way
        }
        if h <= 0.0 {
            *d = 0.0;
        }
    }
    let w_1t = f.w_1.transpose();
    FeedForwardBounds {
        y,
        d_x: product_bound(&d_hidden, &b_dh, &w_1t, &zeros(&w_1t), d_ff),
        w_1: product_bound(&x.transpose(), &zeros(&x.transpose()), &d_hidden, &b_dh, n),
        w_2: product_bound(&hidden.transpose(), &b_pre.transpose(), dy, &zeros(dy), n),
    }
}

#[test]
fn feed_forward_in_f32_is_within_the_bound() {
    for (name, n, d_model, d_ff, x_scale, seed) in [
        ("n = 64", 64, 32, 128, 1.0, 40),
        ("n = 1, inputs ±1e4", 1, 16, 64, 1e4, 41),
        ("subnormal x", 8, 16, 64, 1e-39, 42),
    ] {
        let mut r = rng(seed);
        let (f32_, f64_) = feed_forward(d_model, d_ff, &mut r);
        let x32 = random(n, d_model, x_scale, &mut r);
        let dy32 = random(n, d_model, 1.0, &mut r);
        let (x, dy) = (to64(&x32), to64(&dy32));
        let bounds = feed_forward_bounds(&f64_, &x, &dy);
        let want = f64_.forward(&x);
        for (path, got) in [
            ("forward", f32_.forward(&x32)),
            ("forward_train", f32_.forward_train(&x32).0),
        ] {
            assert_finite(&format!("ffn {path}, {name}"), &got);
            assert_within(&format!("ffn {path}, {name}"), &got, &want, &bounds.y);
        }
        let (_, c32) = f32_.forward_train(&x32);
        let (dx32, g32) = f32_.backward(&c32, &dy32);
        let (_, c) = f64_.forward_train(&x);
        let (dx, g) = f64_.backward(&c, &dy);
        for (what, got, want, bound) in [
            ("dx", &dx32, &dx, &bounds.d_x),
            ("w_1", &g32.w_1, &g.w_1, &bounds.w_1),
            ("w_2", &g32.w_2, &g.w_2, &bounds.w_2),
        ] {
            assert_finite(&format!("ffn backward {what}, {name}"), got);
            assert_within(&format!("ffn backward {what}, {name}"), got, want, bound);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The label-smoothed loss (§5.4)

#[test]
fn label_smoothed_loss_in_f32_is_within_the_bound_for_logits_up_to_1e4() {
    for (vocab, seed) in [(2, 50), (37, 51), (4096, 52)] {
        let mut r = rng(seed);
        let mut logits32 = logit_rows(vocab, &mut r);
        // keep the rows a loss can see: no -inf logit (those are masks, not predictions)
        logits32 = logits32.rows(0, 9).into_owned();
        let n = logits32.nrows();
        // targets on the smallest logit of some rows: log p near -2e4, still finite
        let targets: Vec<usize> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    (0..vocab)
                        .min_by(|&a, &b| logits32[(i, a)].total_cmp(&logits32[(i, b)]))
                        .unwrap_or(0)
                } else {
                    r.random_range(0..vocab)
                }
            })
            .collect();
        let logits = to64(&logits32);
        for (spread, eps) in [
            (Spread::AllClasses, 0.1),
            (Spread::OtherClasses, 0.1),
            (Spread::AllClasses, 0.0),
        ] {
            let (l32, l) = (log_softmax_rows(&logits32), log_softmax_rows(&logits));
            let loss32 = label_smoothed_loss(&l32, &targets, eps, spread);
            let loss = label_smoothed_loss(&l, &targets, eps, spread);
            assert!(loss32.is_finite(), "loss {loss32}");
            // L = -(1/n) sum q l: each l_ij off by its bound, q by 2u relatively, and a sum
            // of n V products.
            let q = smoothed_targets::<f64>(&targets, vocab, eps, spread);
            let bl = log_softmax_bound(&logits, &l);
            let terms = q.component_mul(&abs(&l));
            let b_loss = (q.component_mul(&bl).sum()
                + 2.0 * U * terms.sum()
                + gamma(n * vocab + 1) * terms.sum())
                / n as f64;
            assert!(
                (f64::from(loss32) - loss).abs() <= SAFETY * b_loss,
                "vocab {vocab}: loss f32 {loss32}, f64 {loss}, bound {b_loss:e}"
            );

            // d logits = log-softmax backward of -q / n
            let g32 = label_smoothed_loss_backward::<f32>(&targets, vocab, eps, spread);
            let g = label_smoothed_loss_backward::<f64>(&targets, vocab, eps, spread);
            let d32 = log_softmax_rows_backward(&l32, &g32);
            assert_finite("loss backward", &d32);
            let b_d = log_softmax_backward_bound(&l, &bl, &g, &(abs(&g) * (3.0 * U)));
            assert_within(
                &format!("loss backward, vocab {vocab}"),
                &d32,
                &log_softmax_rows_backward(&l, &g),
                &b_d,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exact cases: the documented choices, and values known in closed form

#[test]
fn a_fully_masked_row_gives_exactly_zero_weights_output_and_gradient() {
    let c = case(5, 5, 4, 1.0, true, 60);
    let plain = scaled_dot_product_attention(&c.q, &c.k, &c.v, c.mask.as_ref());
    let fast = scaled_dot_product_attention_fast(&c.q, &c.k, &c.v, c.mask.as_ref());
    for a in [&plain, &fast] {
        assert!(
            a.weights.row(0).iter().all(|&w| w == 0.0),
            "{}",
            a.weights.row(0)
        );
        assert!(
            a.output.row(0).iter().all(|&o| o == 0.0),
            "{}",
            a.output.row(0)
        );
        // every other row is a distribution
        for i in 1..5 {
            assert!((a.weights.row(i).sum() - 1.0).abs() <= 5.0 * f32::EPSILON);
        }
    }
    let d_out = random(5, 3, 1.0, &mut rng(61));
    let g = scaled_dot_product_attention_backward(&c.q, &c.k, &c.v, &plain.weights, &d_out);
    assert!(g.d_q.row(0).iter().all(|&z| z == 0.0), "{}", g.d_q.row(0));
    // softmax and log-softmax of a row of -inf: zeros and -inf, with zero gradients
    let x = DMatrix::from_element(1, 4, f32::NEG_INFINITY);
    assert_eq!(softmax_rows(&x), DMatrix::zeros(1, 4));
    assert_eq!(log_softmax_rows(&x), x);
    let g = DMatrix::from_element(1, 4, 1.0f32);
    assert_eq!(
        softmax_rows_backward(&softmax_rows(&x), &g),
        DMatrix::zeros(1, 4)
    );
    assert_eq!(log_softmax_rows_backward(&x, &g), DMatrix::zeros(1, 4));
}

#[test]
fn one_key_takes_all_the_weight_exactly() {
    // n = 1, m = 1, d_k = 1: softmax of one score is exp(0) / 1 = 1, whatever the score.
    for s in [1e4f32, -1e4, 1e-45, 0.0] {
        let (q, k) = (
            DMatrix::from_element(1, 1, s),
            DMatrix::from_element(1, 1, 1.0f32),
        );
        let v = DMatrix::from_row_slice(1, 2, &[3.5f32, -1e-40]);
        for a in [
            scaled_dot_product_attention(&q, &k, &v, None),
            scaled_dot_product_attention_fast(&q, &k, &v, None),
        ] {
            assert_eq!(a.weights, DMatrix::from_element(1, 1, 1.0));
            assert_eq!(a.output, v);
        }
    }
}

#[test]
fn two_keys_split_the_weight_as_exp_of_the_scaled_score_difference() {
    // d_k = 4, q = ln 3 (1, 1, 1, 1), k_1 = (1/2, 1/2, 1/2, 1/2), k_2 = 0: the scores are
    // 2 ln 3 and 0, scaled by 1/sqrt(4) to ln 3 and 0, so the weights are 3/4 and 1/4. A scale
    // of 1/d_k would give ln 3 / 2 and weights 0.634 and 0.366; no scale, 0.9 and 0.1.
    let ln3 = 3f64.ln();
    let q = DMatrix::from_element(1, 4, ln3);
    let k = DMatrix::from_row_slice(2, 4, &[0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
    let v = DMatrix::from_row_slice(2, 1, &[1.0, 0.0]);
    let a = scaled_dot_product_attention(&q, &k, &v, None);
    assert!((a.weights[(0, 0)] - 0.75).abs() < 1e-15, "{}", a.weights);
    assert!((a.weights[(0, 1)] - 0.25).abs() < 1e-15, "{}", a.weights);
    assert!((a.output[(0, 0)] - 0.75).abs() < 1e-15);
    // In f32 against the exact 3/4: the score ln 3 carries (d_k + 3) u ln 3 (ln 3 rounded to
    // f32, four products summed, the scale), doubled in the weights, and the softmax rounds by
    // (m + 6 + 4 t) u with m = 2, t = ln 3 (see the header).
    let a32 = scaled_dot_product_attention(
        &q.map(|x| x as f32),
        &k.map(|x| x as f32),
        &v.map(|x| x as f32),
        None,
    );
    let bound = SAFETY * 0.75 * U * (2.0 * 7.0 * ln3 + 8.0 + 4.0 * ln3);
    let error = (f64::from(a32.weights[(0, 0)]) - 0.75).abs();
    assert!(
        error <= bound,
        "f32 weight {}: error {error:e} > {bound:e}",
        a32.weights
    );
}

#[test]
fn layer_norm_of_a_row_with_subnormal_spread_stays_finite_and_centred() {
    // The squares of subnormal deviations underflow to 0 in f32; σ is then sqrt(ε), and x̂
    // is the deviation over sqrt(ε), tiny but finite, in the forward and the backward pass.
    let x = DMatrix::from_row_slice(1, 4, &[1e-40f32, -1e-40, 3e-41, -3e-41]);
    let norm = LayerNorm {
        gain: RowDVector::from_element(4, 1.0f32),
        bias: RowDVector::zeros(4),
        eps: 1e-6,
    };
    let (y, cache) = norm.forward_train(&x);
    assert_finite("subnormal spread forward", &y);
    assert!(y.iter().all(|z| z.abs() < 1e-36), "{y}");
    assert!((y.sum()).abs() <= 1e-43);
    let (dx, _) = norm.backward(
        &cache,
        &DMatrix::from_row_slice(1, 4, &[1.0f32, -2.0, 0.5, 0.25]),
    );
    assert_finite("subnormal spread backward", &dx);
}
