//! The building blocks of the fast paths: products into column blocks, threads over fixed
//! blocks of work, and the row-wise operations (softmax, log-softmax, LayerNorm) done as sweeps
//! down contiguous columns.
//!
//! Every row-wise operation here keeps one accumulator per row (a running maximum, a sum) and
//! visits the matrix column by column: each column is contiguous in nalgebra's storage, so
//! every pass streams through memory and the per-row updates become vector instructions.

use std::any::{Any, TypeId};
use std::cell::RefCell;

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, MatrixView, RealField, RowDVector};

use crate::layer_norm::LayerNorm;
use crate::mask::Mask;

/// A matrix view with any strides: a transposed matrix is a view of the same memory with the
/// strides swapped, so products with transposes need no copy.
pub(crate) type StridedView<'a, T> = MatrixView<'a, T, Dyn, Dyn, Dyn, Dyn>;

/// Output columns per block of a position-wise product with `d_out` columns: a quarter of
/// them (a multiple of 16), at least 256, so that a product splits into at most four blocks
/// and the input is packed for the matrix kernel at most four times. The blocks are fixed by
/// the shapes, never by the thread count: each output entry is computed by the same call on
/// the same operands however many threads share the blocks, so the results are bit-identical
/// for any count.
fn column_block(d_out: usize) -> usize {
    d_out.div_ceil(4).next_multiple_of(16).max(256)
}

thread_local! {
    /// Buffers of finished temporaries, kept for the next temporary on the same thread.
    static SPARE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// How many spare buffers a thread keeps: enough for one layer's temporaries.
const SPARE_BUFFERS: usize = 8;

/// A zeroed (rows, cols) matrix for a temporary, in the memory of an earlier temporary of
/// this thread when there is one ([`recycle`]). A fresh allocation of a few megabytes costs a
/// page fault per 4 KiB page when first written (the allocator returns freed memory to the
/// system), about a tenth of an encoder layer's time; a reused buffer costs one memset.
pub(crate) fn scratch<T: RealField + Copy>(rows: usize, cols: usize) -> DMatrix<T> {
    let len = rows * cols;
    let spare = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let fits = spare
            .iter()
            .position(|b| {
                b.downcast_ref::<Vec<T>>()
                    .is_some_and(|v| v.capacity() >= len)
            })
            .or_else(|| spare.iter().position(|b| b.is::<Vec<T>>()));
        fits.map(|i| {
            *spare
                .swap_remove(i)
                .downcast::<Vec<T>>()
                .expect("checked above")
        })
    });
    let mut data = spare.unwrap_or_default();
    data.clear();
    data.resize(len, T::zero());
    DMatrix::from_vec(rows, cols, data)
}

/// Keeps the memory of a finished temporary for [`scratch`] on this thread.
pub(crate) fn recycle<T: RealField + Copy>(m: DMatrix<T>) {
    let data: Vec<T> = m.data.into();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(Box::new(data));
        }
    });
}

/// Runs `f(state, c, chunk)` for chunk c = 0 .. `lens.len()` of `data`, split into consecutive
/// pieces of `lens[c]` entries, on up to `threads` threads; each thread takes a run of
/// consecutive chunks and one `state` from `init` (its scratch space). The results come back
/// in chunk order.
pub(crate) fn map_chunks<T, S, R, I, F>(
    data: &mut [T],
    lens: &[usize],
    threads: usize,
    init: I,
    f: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize, &mut [T]) -> R + Sync,
{
    let mut chunks = Vec::with_capacity(lens.len());
    let mut rest = data;
    for &len in lens {
        let (chunk, tail) = rest.split_at_mut(len);
        chunks.push(chunk);
        rest = tail;
    }
    let groups = threads.clamp(1, lens.len().max(1));
    let run = |first: usize, group: Vec<&mut [T]>| -> Vec<R> {
        let mut state = init();
        group
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| f(&mut state, first + i, chunk))
            .collect()
    };
    if groups == 1 {
        return run(0, chunks);
    }
    // consecutive runs of chunks, as even as the count allows
    let mut runs = Vec::with_capacity(groups);
    let mut first = 0;
    let mut iter = chunks.into_iter();
    for g in 0..groups {
        let take = (lens.len() - first) / (groups - g);
        runs.push((first, iter.by_ref().take(take).collect::<Vec<_>>()));
        first += take;
    }
    std::thread::scope(|scope| {
        let mut runs = runs.into_iter();
        let (first0, group0) = runs.next().expect("at least two groups");
        let handles: Vec<_> = runs
            .map(|(first, group)| scope.spawn(move || run(first, group)))
            .collect();
        let mut out = run(first0, group0);
        for h in handles {
            out.extend(h.join().expect("a worker thread panicked"));
        }
        out
    })
}

/// `y = x w (+ b)`, with ReLU after the bias when `relu`: the position-wise product of the
/// projections and the feed-forward network. The columns of y are computed in blocks of
/// [`column_block`], spread over `threads`; each block starts as the bias and the product is
/// added to it, and the ReLU runs on the block while it is in cache.
///
/// # Shapes
/// `x`: (n, d_in), `w`: (d_in, d_out), `b`: (d_out) -> (n, d_out).
pub(crate) fn linear<T: RealField + Copy>(
    x: &DMatrix<T>,
    w: StridedView<'_, T>,
    b: Option<&RowDVector<T>>,
    relu: bool,
    threads: usize,
) -> DMatrix<T> {
    assert_eq!(
        x.ncols(),
        w.nrows(),
        "product: input is {} wide but the weights have {} rows",
        x.ncols(),
        w.nrows()
    );
    let (n, d_out) = (x.nrows(), w.ncols());
    let mut y = scratch(n, d_out);
    let width = column_block(d_out);
    let lens: Vec<usize> = (0..d_out.div_ceil(width))
        .map(|c| n * width.min(d_out - c * width))
        .collect();
    map_chunks(
        y.as_mut_slice(),
        &lens,
        threads,
        || (),
        |_, c, out| {
            let j0 = c * width;
            let width = width.min(d_out - j0);
            let beta = match b {
                Some(b) if n > 0 => {
                    for (col, &b_j) in out.chunks_exact_mut(n).zip(b.columns(j0, width).iter()) {
                        col.fill(b_j);
                    }
                    T::one()
                }
                _ => T::zero(),
            };
            DMatrixViewMut::from_slice(out, n, width).gemm(
                T::one(),
                x,
                &w.columns(j0, width),
                beta,
            );
            if relu {
                for z in out.iter_mut() {
                    // a select, not a branch: the signs are unpredictable
                    *z = if *z < T::zero() { T::zero() } else { *z };
                }
            }
        },
    );
    y
}

/// `w` as a [`StridedView`].
pub(crate) fn strided<T: RealField>(w: &DMatrix<T>) -> StridedView<'_, T> {
    let rows = w.nrows();
    MatrixView::from_slice_with_strides_generic(
        w.as_slice(),
        Dyn(rows),
        Dyn(w.ncols()),
        Dyn(1),
        Dyn(rows),
    )
}

/// The transpose of the (rows, cols) column-major matrix in `data`, as a view: (cols, rows).
pub(crate) fn transposed<T: RealField>(data: &[T], rows: usize, cols: usize) -> StridedView<'_, T> {
    MatrixView::from_slice_with_strides_generic(data, Dyn(cols), Dyn(rows), Dyn(rows), Dyn(1))
}

/// Contiguous column block `data` as an (n, cols) view.
pub(crate) fn block<T: RealField>(data: &[T], n: usize, cols: usize) -> DMatrixView<'_, T> {
    DMatrixView::from_slice(data, n, cols)
}

/// exp of every entry, in place: [`exp_f32`] for f32 (which the compiler turns into vector
/// instructions), the standard exp for any other type.
#[inline(always)]
pub(crate) fn exp_in_place<T: RealField + Copy>(xs: &mut [T]) {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (checked just above), so the slice is a slice of f32.
        let xs = unsafe { std::slice::from_raw_parts_mut(xs.as_mut_ptr().cast::<f32>(), xs.len()) };
        for x in xs.iter_mut() {
            *x = exp_f32(*x);
        }
    } else {
        for x in xs.iter_mut() {
            *x = x.exp();
        }
    }
}

/// e^x in f32 without a library call, so that a loop of them vectorises.
///
/// x = n ln 2 + r with n an integer and |r| <= ln 2 / 2; e^r is a degree-7 polynomial
/// (1 + r + r^2 P(r), P of degree 5) and 2^n is put into the exponent bits. Relative error at
/// most 2 units in the last place for results above 2^-125 (tested against f64's exp over the
/// whole range); below x = -86.99 or so (n = -126) the result is 0, off by less than 2^-125;
/// above x = 88.72283 (where e^x leaves the f32 range) it is infinite; e^-inf = 0.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // ln 2 split in two so that n ln 2 is exact for |n| < 2^9
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LO: f32 = -87.0;
    const HI: f32 = 88.722_83; // the largest x whose e^x is a finite f32
    let xc = x.clamp(LO, HI);
    let t = xc * LOG2_E + ROUND;
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32; // the integer n
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * (r * r) + r + 1.0;
    // 2^n as 2^(n - 1) * 2, so that n = 128 (x near HI) does not overflow the exponent bits
    let half_scale = f32::from_bits(((n_int + 126) << 23) as u32);
    let y = e * half_scale * 2.0;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// Scratch space for the row-wise sweeps: one accumulator per row.
pub(crate) struct RowStats<T> {
    pub(crate) a: Vec<T>,
    pub(crate) b: Vec<T>,
}

impl<T: RealField + Copy> RowStats<T> {
    pub(crate) fn new() -> Self {
        RowStats {
            a: Vec::new(),
            b: Vec::new(),
        }
    }

    fn reset(&mut self, n: usize, a: T, b: T) {
        self.a.clear();
        self.a.resize(n, a);
        self.b.clear();
        self.b.resize(n, b);
    }
}

fn neg_inf<T: RealField + Copy>() -> T {
    -T::one() / T::zero()
}

/// The row-wise softmax of the (n, m) scores in `s` (column-major), in place, with the
/// entries `mask` forbids set to -inf first; a row
/// with every entry forbidden becomes zeros. When `normalise` is false the division by each
/// row's sum is left out and `stats.b` holds 1 / sum per row (0 for an empty row), for the
/// caller to apply to a smaller matrix instead.
pub(crate) fn softmax_rows_in_place<T: RealField + Copy>(
    s: &mut [T],
    n: usize,
    mask: Option<&Mask>,
    normalise: bool,
    stats: &mut RowStats<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { softmax_rows_avx2(s, n, mask, normalise, stats) };
    }
    softmax_rows(s, n, mask, normalise, stats)
}

/// [`softmax_rows`] compiled for AVX2: twice the width of the baseline's vector instructions.
/// The same operations in the same order (Rust never fuses a multiply and an add on its own),
/// so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softmax_rows_avx2<T: RealField + Copy>(
    s: &mut [T],
    n: usize,
    mask: Option<&Mask>,
    normalise: bool,
    stats: &mut RowStats<T>,
) {
    softmax_rows(s, n, mask, normalise, stats)
}

#[inline(always)]
fn softmax_rows<T: RealField + Copy>(
    s: &mut [T],
    n: usize,
    mask: Option<&Mask>,
    normalise: bool,
    stats: &mut RowStats<T>,
) {
    let minus_inf = neg_inf::<T>();
    stats.reset(n, minus_inf, T::zero());
    let (max, sum) = (&mut stats.a, &mut stats.b);
    if n == 0 {
        return;
    }
    for (j, col) in s.chunks_exact_mut(n).enumerate() {
        if let Some(mask) = mask {
            for (z, &ok) in col.iter_mut().zip(mask.key_column(j)) {
                if !ok {
                    *z = minus_inf;
                }
            }
        }
        for (m, &z) in max.iter_mut().zip(col.iter()) {
            *m = if z > *m { z } else { *m }; // a select, which vectorises
        }
    }
    for m in max.iter_mut() {
        if *m == minus_inf {
            *m = T::zero(); // every key forbidden: exp(-inf - 0) = 0 everywhere in the row
        }
    }
    for col in s.chunks_exact_mut(n) {
        for (z, &m) in col.iter_mut().zip(max.iter()) {
            *z -= m;
        }
        exp_in_place(col);
        for (acc, &z) in sum.iter_mut().zip(col.iter()) {
            *acc += z;
        }
    }
    for acc in sum.iter_mut() {
        *acc = if *acc > T::zero() {
            T::one() / *acc
        } else {
            T::zero()
        };
    }
    if normalise {
        scale_rows(s, n, sum);
    }
}

/// Multiplies row i of the (n, _) column-major matrix in `s` by `factor[i]`.
#[inline(always)]
pub(crate) fn scale_rows<T: RealField + Copy>(s: &mut [T], n: usize, factor: &[T]) {
    if n == 0 {
        return;
    }
    for col in s.chunks_exact_mut(n) {
        for (z, &f) in col.iter_mut().zip(factor) {
            *z *= f;
        }
    }
}

/// [`crate::softmax::log_softmax_rows`] in place, sweeping columns.
pub(crate) fn log_softmax_rows_in_place<T: RealField + Copy>(x: &mut DMatrix<T>) {
    let n = x.nrows();
    if n == 0 {
        return;
    }
    let minus_inf = neg_inf::<T>();
    let mut max = vec![minus_inf; n];
    let mut sum = vec![T::zero(); n];
    let mut tmp = vec![T::zero(); n];
    let s = x.as_mut_slice();
    for col in s.chunks_exact(n) {
        for (m, &z) in max.iter_mut().zip(col) {
            *m = if z > *m { z } else { *m }; // a select, which vectorises
        }
    }
    for col in s.chunks_exact(n) {
        for ((t, &z), &m) in tmp.iter_mut().zip(col).zip(&max) {
            *t = z - m;
        }
        exp_in_place(&mut tmp);
        for (acc, &t) in sum.iter_mut().zip(&tmp) {
            *acc += t;
        }
    }
    // the offset of each row: max + ln(sum); a row of all -inf stays as it is
    for (m, &acc) in max.iter_mut().zip(&sum) {
        *m = if *m == minus_inf {
            T::zero()
        } else {
            *m + acc.ln()
        };
    }
    for col in s.chunks_exact_mut(n) {
        for (z, &m) in col.iter_mut().zip(&max) {
            *z -= m;
        }
    }
}

/// [`LayerNorm::forward`] in place: mean, variance and normalisation as three sweeps down the
/// columns, with one mean and one 1 / sigma per row.
pub(crate) fn layer_norm_in_place<T: RealField + Copy>(norm: &LayerNorm<T>, x: &mut DMatrix<T>) {
    let (n, d) = x.shape();
    assert_eq!(
        d,
        norm.gain.len(),
        "layer norm: input is {d} wide but d_model = {}",
        norm.gain.len()
    );
    if n == 0 {
        return;
    }
    let d_t: T = nalgebra::convert(d as f64);
    let eps: T = nalgebra::convert(norm.eps);
    let mut mean = vec![T::zero(); n];
    let mut inv_std = vec![T::zero(); n];
    let s = x.as_mut_slice();
    for col in s.chunks_exact(n) {
        for (m, &z) in mean.iter_mut().zip(col) {
            *m += z;
        }
    }
    for m in mean.iter_mut() {
        *m /= d_t;
    }
    for col in s.chunks_exact(n) {
        for ((v, &z), &m) in inv_std.iter_mut().zip(col).zip(&mean) {
            *v += (z - m) * (z - m);
        }
    }
    for v in inv_std.iter_mut() {
        *v = T::one() / (*v / d_t + eps).sqrt(); // biased variance, as the plain code
    }
    for ((col, &g), &b) in s
        .chunks_exact_mut(n)
        .zip(norm.gain.iter())
        .zip(norm.bias.iter())
    {
        for ((z, &m), &v) in col.iter_mut().zip(&mean).zip(&inv_std) {
            *z = (*z - m) * v * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::{self, ThreadId};

    /// This thread's spare f64 buffers: where each one's memory is, and its capacity.
    fn spares() -> Vec<(*const f64, usize)> {
        SPARE.with(|s| {
            s.borrow()
                .iter()
                .filter_map(|b| b.downcast_ref::<Vec<f64>>())
                .map(|v| (v.as_ptr(), v.capacity()))
                .collect()
        })
    }

    #[test]
    fn a_column_block_is_the_smallest_multiple_of_16_from_256_that_cuts_a_product_in_four() {
        let fits =
            |d_out: usize, w: usize| w.is_multiple_of(16) && w >= 256 && d_out.div_ceil(w) <= 4;
        for d_out in 1..=5000 {
            let w = column_block(d_out);
            assert!(fits(d_out, w), "d_out {d_out}: block {w}");
            assert!(
                !fits(d_out, w - 16),
                "d_out {d_out}: block {w} is not the smallest"
            );
        }
    }

    #[test]
    fn a_temporary_takes_the_memory_of_a_recycled_buffer_that_fits_and_comes_zeroed() {
        // on a thread of its own, whose spare buffers start empty
        thread::spawn(|| {
            let small = DMatrix::<f64>::from_element(2, 2, 7.0);
            let big = DMatrix::<f64>::from_element(10, 10, 7.0);
            let big_at = big.as_ptr();
            recycle(small);
            recycle(big);
            assert_eq!(spares().len(), 2);
            let m = scratch::<f64>(5, 5); // 25 entries: only the big buffer holds them
            assert_eq!(m.as_ptr(), big_at, "the buffer that fits is reused");
            assert_eq!(m, DMatrix::zeros(5, 5));
            let other = scratch::<f64>(3, 3); // none fits: the small one is taken and grown
            assert_eq!(other, DMatrix::zeros(3, 3));
            assert!(spares().is_empty());
            // a buffer of another element type is never handed out as f64
            recycle(DMatrix::<f32>::from_element(4, 4, 1.0));
            assert_eq!(scratch::<f64>(2, 2), DMatrix::zeros(2, 2));
            // the spare buffers are bounded
            for _ in 0..SPARE_BUFFERS + 4 {
                recycle(DMatrix::<f64>::zeros(1, 1));
            }
            let total = SPARE.with(|s| s.borrow().len());
            assert_eq!(total, SPARE_BUFFERS);
        })
        .join()
        .expect("the checks pass");
    }

    #[test]
    fn map_chunks_gives_each_thread_a_run_of_consecutive_chunks_as_even_as_the_count_allows() {
        let caller = thread::current().id();
        // (chunk, the thread that ran it, the chunk's length)
        let run = |lens: &[usize], threads: usize| -> (Vec<(usize, ThreadId, usize)>, Vec<usize>) {
            let mut data = vec![usize::MAX; lens.iter().sum()];
            let out = map_chunks(
                &mut data,
                lens,
                threads,
                || thread::current().id(),
                |id, c, chunk| {
                    chunk.fill(c);
                    (c, *id, chunk.len())
                },
            );
            (out, data)
        };
        let (out, data) = run(&[1, 2, 3, 4, 5], 3);
        let order: Vec<(usize, usize)> = out.iter().map(|&(c, _, len)| (c, len)).collect();
        assert_eq!(order, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
        assert_eq!(data, [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4]);
        // runs [0], [1, 2], [3, 4]: the first on the caller's thread, each other on its own
        let ids: Vec<ThreadId> = out.iter().map(|r| r.1).collect();
        assert_eq!(ids[0], caller);
        assert!(ids[1] == ids[2] && ids[3] == ids[4], "{ids:?}");
        assert!(
            ids[1] != caller && ids[3] != caller && ids[1] != ids[3],
            "{ids:?}"
        );
        // one thread, or one chunk: everything on the caller's thread
        for (lens, threads) in [(&[1, 2, 3][..], 1), (&[6][..], 4), (&[2, 2][..], 0)] {
            let (out, _) = run(lens, threads);
            assert!(out.iter().all(|r| r.1 == caller), "{lens:?} on {threads}");
        }
        // more threads than chunks: one thread per chunk
        let (out, _) = run(&[2, 2, 2], 8);
        let ids: Vec<ThreadId> = out.iter().map(|r| r.1).collect();
        assert!(ids[0] == caller && ids[1] != ids[2] && ids[1] != caller && ids[2] != caller);
        // no chunks at all
        assert!(run(&[], 2).0.is_empty());
    }

    #[test]
    fn layer_norm_in_f32_stays_accurate_for_rows_far_from_zero() {
        // Rows of mean 10^4 and spread about 1: the variance taken as mean(z^2) - mean^2 would
        // cancel 10^8 against 10^8 in f32 (outputs off by about 1.5); the two-pass variance, as
        // in the plain code, keeps them within 0.01 of LayerNorm in f64 of the same input (the
        // f32 sum of 64 entries near 10^4 alone moves the mean by about 0.002 of the spread).
        let (n, d) = (5, 64);
        let mut x32 = DMatrix::<f32>::from_fn(n, d, |i, j| {
            1e4 + ((i * 31 + j * 17) % 23) as f32 / 11.0 - 1.0
        });
        let plain = LayerNorm::<f64>::new(d, 1e-6).forward(&x32.map(f64::from));
        layer_norm_in_place(&LayerNorm::<f32>::new(d, 1e-6), &mut x32);
        let worst = x32
            .iter()
            .zip(plain.iter())
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.01, "largest difference {worst}");
    }

    #[test]
    fn a_product_of_no_rows_is_empty_with_or_without_a_bias_and_relu() {
        let w = DMatrix::<f64>::from_element(3, 300, 1.0);
        let b = RowDVector::from_element(300, 1.0);
        for (bias, relu) in [(None, false), (Some(&b), false), (Some(&b), true)] {
            let y = linear(&DMatrix::zeros(0, 3), strided(&w), bias, relu, 2);
            assert_eq!(y.shape(), (0, 300));
        }
    }
}
