//! §3.5 Positional encoding.
//!
//! `PE(pos, 2i) = sin(pos w_i)`, `PE(pos, 2i + 1) = cos(pos w_i)`, `w_i = 1 / 10000^(2i/d_model)`.
//! The paper chose sinusoids because PE(pos + k) is a linear function of PE(pos) for every
//! fixed k. The rotation tests below build that linear map from k and the frequencies alone,
//! without calling the function under test, and check it against every position.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_positional.txt";

use aiayn::positional::{sinusoidal, PositionalEncoding};
use approx::assert_abs_diff_eq;
use nalgebra::{DMatrix, DVector};
use properties_support::{config, matrix};
use proptest::prelude::*;
use std::f64::consts::PI;

/// Even d_model in 2..=16 (the sin/cos pairs need an even width).
fn even_d_model() -> impl Strategy<Value = usize> {
    (1..=8usize).prop_map(|half| 2 * half)
}

/// The paper's frequencies w_i = 10000^(-2i / d_model), computed here as
/// exp(-(2i / d_model) ln 10000) so as not to share the library's arithmetic.
fn frequencies(d_model: usize) -> Vec<f64> {
    (0..d_model / 2)
        .map(|i| (-(2.0 * i as f64 / d_model as f64) * 10000f64.ln()).exp())
        .collect()
}

/// M_k: block diagonal, one 2x2 rotation per frequency acting on the (sin, cos) pair,
/// [[cos(k w_i), sin(k w_i)], [-sin(k w_i), cos(k w_i)]], from the angle-addition formulas
/// sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b.
fn rotation(k: usize, d_model: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(d_model, d_model);
    for (i, w) in frequencies(d_model).into_iter().enumerate() {
        let (s, c) = (k as f64 * w).sin_cos();
        m[(2 * i, 2 * i)] = c;
        m[(2 * i, 2 * i + 1)] = s;
        m[(2 * i + 1, 2 * i)] = -s;
        m[(2 * i + 1, 2 * i + 1)] = c;
    }
    m
}

/// Row `pos` of `pe` as a column vector.
fn at(pe: &DMatrix<f64>, pos: usize) -> DVector<f64> {
    pe.row(pos).transpose()
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:positional (property)
    fn position_zero_encodes_as_zero_one_zero_one(d_model in 1..=64usize) {
        // sin 0 = 0 and cos 0 = 1 exactly, whatever the frequency.
        let pe = sinusoidal::<f64>(1, d_model);
        for c in 0..d_model {
            let want = if c % 2 == 0 { 0.0 } else { 1.0 };
            assert_abs_diff_eq!(pe[(0, c)], want, epsilon = 0.0);
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn every_encoding_lies_in_minus_one_to_one((n, d_model) in (1..=512usize, 1..=64usize)) {
        let pe = sinusoidal::<f64>(n, d_model);
        prop_assert!(pe.iter().all(|x| x.abs() <= 1.0));
        // and the range is used: column 0 is sin(pos), which over pos = 0..=8 reaches
        // sin 8 = 0.989 and sin 5 = -0.959.
        if n >= 9 {
            let col = pe.column(0);
            prop_assert!(col.max() >= 0.98 && col.min() <= -0.95, "{} {}", col.max(), col.min());
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn each_sine_cosine_pair_lies_on_the_unit_circle((n, d_model) in (1..=512usize, even_d_model())) {
        // Columns 2i and 2i + 1 are the sine and cosine of one angle.
        let pe = sinusoidal::<f64>(n, d_model);
        for pos in 0..n {
            for i in 0..d_model / 2 {
                let (s, c) = (pe[(pos, 2 * i)], pe[(pos, 2 * i + 1)]);
                assert_abs_diff_eq!(s * s + c * c, 1.0, epsilon = 1e-12);
            }
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn pe_of_pos_plus_k_is_a_fixed_rotation_of_pe_of_pos(
        (d_model, n, k) in (even_d_model(), 1..=64usize, 0..=200usize)
    ) {
        // One matrix M_k, built from k alone, for every position.
        let pe = sinusoidal::<f64>(n + k, d_model);
        let m_k = rotation(k, d_model);
        for pos in 0..n {
            // Angles reach 264 rad; the two routes to sin(angle) differ by rounding of order
            // 264 * 2^-52 ~ 6e-14.
            assert_abs_diff_eq!(at(&pe, pos + k), &m_k * at(&pe, pos), epsilon = 1e-10);
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn pe_of_pos_is_the_rotation_by_pos_of_pe_of_zero(
        (d_model, pos) in (even_d_model(), 0..=1000usize)
    ) {
        // With PE(0) = (0, 1, 0, 1, ...) this pins every entry: column 2i is sin(pos w_i), a
        // sine (odd in pos), and column 2i + 1 is cos(pos w_i), a cosine (even), interleaved.
        let pe = sinusoidal::<f64>(pos + 1, d_model);
        let e = DVector::from_fn(d_model, |c, _| if c % 2 == 0 { 0.0 } else { 1.0 });
        assert_abs_diff_eq!(at(&pe, pos), rotation(pos, d_model) * e, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:positional (property)
    fn the_wavelengths_grow_geometrically_from_2pi_towards_10000_times_2pi(d_model in even_d_model()) {
        // Each pair's angular frequency is read off position 1: atan2(sin w, cos w) = w, since
        // 0 < w <= 1 < pi. The first wavelength is 2 pi, each next one is 10000^(2/d_model)
        // times longer, and all stay below 10000 * 2 pi.
        let pe = sinusoidal::<f64>(2, d_model);
        let w: Vec<f64> = (0..d_model / 2).map(|i| pe[(1, 2 * i)].atan2(pe[(1, 2 * i + 1)])).collect();
        assert_abs_diff_eq!(2.0 * PI / w[0], 2.0 * PI, epsilon = 1e-12);
        let ratio = 10000f64.powf(2.0 / d_model as f64);
        for pair in w.windows(2) {
            assert_abs_diff_eq!(pair[0] / pair[1], ratio, epsilon = 1e-9 * ratio);
        }
        for wi in &w {
            let wavelength = 2.0 * PI / wi;
            prop_assert!((2.0 * PI - 1e-12..10000.0 * 2.0 * PI).contains(&wavelength));
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn dot_product_of_two_encodings_depends_only_on_their_offset(
        (d_model, p, q, k) in (even_d_model(), 0..=300usize, 0..=300usize, 0..=300usize)
    ) {
        // A consequence of the rotation: PE(p) . PE(p + k) = sum_i cos(k w_i) for every p.
        let pe = sinusoidal::<f64>(p.max(q) + k + 1, d_model);
        let at_p = pe.row(p).dot(&pe.row(p + k));
        let at_q = pe.row(q).dot(&pe.row(q + k));
        assert_abs_diff_eq!(at_p, at_q, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:positional (property)
    fn distinct_positions_get_distinct_encodings((d_model, n) in (even_d_model(), 2..=128usize)) {
        // The smallest distance over positions 0..128 is 0.0177 for d_model = 2 (positions 0
        // and 44, since 44 rad is nearly 7 turns) and above 0.24 for d_model >= 4.
        let pe = sinusoidal::<f64>(n, d_model);
        for a in 0..n {
            for b in 0..a {
                let dist = (pe.row(a) - pe.row(b)).norm();
                prop_assert!(dist > 1e-3, "positions {a} and {b} are {dist} apart");
            }
        }
    }

    #[test]
    // verifies: eq:positional (property)
    fn sinusoids_extend_to_longer_sequences_without_changing_earlier_positions(
        (d_model, n, more) in (even_d_model(), 1..=64usize, 0..=64usize)
    ) {
        // What lets sinusoids extrapolate: the encoding of a position does not depend on the
        // sequence length.
        let short = sinusoidal::<f64>(n, d_model);
        let long = sinusoidal::<f64>(n + more, d_model);
        assert_abs_diff_eq!(long.rows(0, n), short.rows(0, n), epsilon = 0.0);
        let enum_form = PositionalEncoding::<f64>::Sinusoidal { d_model }.encode(n);
        assert_abs_diff_eq!(enum_form, short, epsilon = 0.0);
    }

    #[test]
    // verifies: eq:positional (property)
    fn learned_positions_are_the_first_rows_of_their_table(
        (table, n) in (1..=16usize, 1..=16usize)
            .prop_flat_map(|(max_len, d)| (matrix(max_len, d, -1.0, 1.0), 0..=max_len))
    ) {
        // Position i reads row i of the table and nothing else: changing row j moves exactly
        // output row j when j < n, and nothing when j >= n.
        let learned = PositionalEncoding::Learned { table: table.clone() };
        let before = learned.encode(n);
        prop_assert_eq!(before.shape(), (n, table.ncols()));
        for j in 0..table.nrows() {
            let mut changed = table.clone();
            changed.row_mut(j).add_scalar_mut(1.0);
            let after = PositionalEncoding::Learned { table: changed }.encode(n);
            for i in 0..n {
                let moved = (after.row(i) - before.row(i)).norm();
                if i == j {
                    assert_abs_diff_eq!(moved, (table.ncols() as f64).sqrt(), epsilon = 1e-12);
                } else {
                    prop_assert_eq!(moved, 0.0);
                }
            }
        }
        prop_assert_eq!(learned.num_params(), table.len());
    }
}

#[test]
#[should_panic(expected = "learned positional embeddings cover 4 positions; asked for 5")]
fn learned_positions_cannot_extrapolate_past_their_table() {
    let learned = PositionalEncoding::Learned {
        table: DMatrix::<f64>::zeros(4, 2),
    };
    let _ = learned.encode(5);
}

#[test]
fn one_position_alone_equals_its_row_of_the_table() {
    // decoding adds PE(pos) one position at a time; it must be row pos of the table sinusoidal
    // builds (which the tests above pin), for even and odd widths of d_model's halves
    for d_model in [2, 6, 8, 10] {
        let pe = PositionalEncoding::<f64>::Sinusoidal { d_model };
        let table = sinusoidal::<f64>(50, d_model);
        for pos in [0, 1, 2, 7, 49] {
            let row = pe.encode_position(pos);
            assert_eq!(row.shape(), (1, d_model));
            for j in 0..d_model {
                assert_eq!(
                    row[(0, j)],
                    table[(pos, j)],
                    "d_model {d_model}, pos {pos}, column {j}"
                );
            }
        }
    }
}
