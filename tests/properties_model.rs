//! The whole model (§3, Figure 1; §3.4): causal in the target, blind to source padding, one
//! embedding matrix in three places, log-probabilities out, and the same answers in f32 as
//! in f64.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_model.txt";

use aiayn::config::{Config, Positional};
use aiayn::decoder::{Decoder, DecoderLayer};
use aiayn::embedding::Embedding;
use aiayn::encoder::{Encoder, EncoderLayer};
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::positional::PositionalEncoding;
use aiayn::sublayer::NormPlacement;
use aiayn::Transformer;
use approx::assert_abs_diff_eq;
use nalgebra::DMatrix;
use properties_support::{
    config, max_abs_diff, rng, scramble, scramble_ffn, scramble_norm, uniform_row,
};
use proptest::prelude::*;
use rand::Rng;

/// Small configurations: N <= 2, h <= 4, d_v in {2, 4} so d_model = h d_v <= 16 is even,
/// d_k <= 4 independent of d_v, d_ff <= 8, with or without attention biases, post- or pre-norm,
/// sinusoidal or learned positions (a table of 16).
fn small_config() -> impl Strategy<Value = Config> {
    (
        1..=2usize,
        1..=4usize,
        prop_oneof![Just(2usize), Just(4)],
        1..=4usize,
        1..=8usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n_layers, h, d_v, d_k, d_ff, bias, pre, learned)| Config {
            n_layers,
            d_model: h * d_v,
            d_ff,
            h,
            d_k,
            d_v,
            positional: if learned {
                Positional::Learned
            } else {
                Positional::Sinusoidal
            },
            max_len: 16,
            attention_bias: bias,
            layer_norm_eps: 1e-6,
            placement: if pre {
                NormPlacement::Pre
            } else {
                NormPlacement::Post
            },
            ..Config::base()
        })
}

/// A small model with vocab 2..=12, every bias and gain random too; and the vocab.
fn small_model() -> impl Strategy<Value = (Transformer<f64>, usize)> {
    (small_config(), 2..=12usize, any::<u64>()).prop_map(|(config, vocab, seed)| {
        let mut rng = rng(seed);
        let mut model = Transformer::new(&config, vocab, &mut rng).expect("valid config");
        scramble_model(&mut model, &mut rng);
        (model, vocab)
    })
}

/// n tokens below `vocab`.
fn tokens(vocab: usize, n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..vocab, n)
}

/// Random attention biases, FFN biases and LayerNorm gains and biases, in place of the zeros
/// and ones the constructor starts with.
fn scramble_model(model: &mut Transformer<f64>, rng: &mut impl Rng) {
    fn mha(m: &mut MultiHeadAttention<f64>, rng: &mut impl Rng) {
        for b in [&mut m.b_q, &mut m.b_k, &mut m.b_v, &mut m.b_o]
            .into_iter()
            .flatten()
        {
            scramble(b.as_mut_slice(), 0.5, rng);
        }
    }
    for layer in &mut model.encoder.layers {
        mha(&mut layer.self_attn, rng);
        scramble_ffn(&mut layer.ffn, rng);
        scramble_norm(&mut layer.norm_1, rng);
        scramble_norm(&mut layer.norm_2, rng);
    }
    for layer in &mut model.decoder.layers {
        mha(&mut layer.self_attn, rng);
        mha(&mut layer.cross_attn, rng);
        scramble_ffn(&mut layer.ffn, rng);
        scramble_norm(&mut layer.norm_1, rng);
        scramble_norm(&mut layer.norm_2, rng);
        scramble_norm(&mut layer.norm_3, rng);
    }
    for norm in [&mut model.encoder.final_norm, &mut model.decoder.final_norm]
        .into_iter()
        .flatten()
    {
        scramble_norm(norm, rng);
    }
}

// --- f64 -> f32, every parameter rounded once -------------------------------------------------

fn cast_multi_head(m: &MultiHeadAttention<f64>) -> MultiHeadAttention<f32> {
    let b = |b: &Option<nalgebra::RowDVector<f64>>| b.as_ref().map(|b| b.map(|x| x as f32));
    MultiHeadAttention {
        h: m.h,
        d_k: m.d_k,
        d_v: m.d_v,
        w_q: m.w_q.map(|x| x as f32),
        w_k: m.w_k.map(|x| x as f32),
        w_v: m.w_v.map(|x| x as f32),
        w_o: m.w_o.map(|x| x as f32),
        b_q: b(&m.b_q),
        b_k: b(&m.b_k),
        b_v: b(&m.b_v),
        b_o: b(&m.b_o),
    }
}

fn cast_ffn(f: &FeedForward<f64>) -> FeedForward<f32> {
    FeedForward {
        w_1: f.w_1.map(|x| x as f32),
        b_1: f.b_1.map(|x| x as f32),
        w_2: f.w_2.map(|x| x as f32),
        b_2: f.b_2.map(|x| x as f32),
    }
}

fn cast_norm(n: &LayerNorm<f64>) -> LayerNorm<f32> {
    LayerNorm {
        gain: n.gain.map(|x| x as f32),
        bias: n.bias.map(|x| x as f32),
        eps: n.eps,
    }
}

fn cast_model(m: &Transformer<f64>) -> Transformer<f32> {
    Transformer {
        embedding: Embedding {
            weight: m.embedding.weight.map(|x| x as f32),
        },
        positional: match &m.positional {
            PositionalEncoding::Sinusoidal { d_model } => {
                PositionalEncoding::Sinusoidal { d_model: *d_model }
            }
            PositionalEncoding::Learned { table } => PositionalEncoding::Learned {
                table: table.map(|x| x as f32),
            },
        },
        encoder: Encoder {
            layers: m
                .encoder
                .layers
                .iter()
                .map(|l| EncoderLayer {
                    self_attn: cast_multi_head(&l.self_attn),
                    ffn: cast_ffn(&l.ffn),
                    norm_1: cast_norm(&l.norm_1),
                    norm_2: cast_norm(&l.norm_2),
                    placement: l.placement,
                })
                .collect(),
            final_norm: m.encoder.final_norm.as_ref().map(cast_norm),
        },
        decoder: Decoder {
            layers: m
                .decoder
                .layers
                .iter()
                .map(|l| DecoderLayer {
                    self_attn: cast_multi_head(&l.self_attn),
                    cross_attn: cast_multi_head(&l.cross_attn),
                    ffn: cast_ffn(&l.ffn),
                    norm_1: cast_norm(&l.norm_1),
                    norm_2: cast_norm(&l.norm_2),
                    norm_3: cast_norm(&l.norm_3),
                    placement: l.placement,
                })
                .collect(),
            final_norm: m.decoder.final_norm.as_ref().map(cast_norm),
        },
    }
}

/// Padding flags for n positions: the first `real` are real, the rest padding (real >= 1).
fn trailing_padding(n: usize, real: usize) -> Vec<bool> {
    (0..n).map(|j| j >= real).collect()
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:causal-mask (property)
    fn log_probs_row_i_ignores_target_tokens_after_i(
        ((model, _), src, tgt, tgt2, i) in small_model().prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            tokens(vocab, 1..=8),
            tokens(vocab, 8..=8),
            tokens(vocab, 8..=8),
            0..8usize,
        ))
    ) {
        // The two targets agree on tokens 0..=i and may differ after.
        let spliced: Vec<usize> = (0..8).map(|j| if j <= i { tgt[j] } else { tgt2[j] }).collect();
        let a = model.forward(&src, &tgt, None);
        let b = model.forward(&src, &spliced, None);
        assert_abs_diff_eq!(b.rows(0, i + 1), a.rows(0, i + 1), epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:causal-mask (property)
    fn log_probs_of_a_target_prefix_are_the_first_rows_of_the_log_probs(
        ((model, _), src, tgt) in small_model().prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            tokens(vocab, 1..=8),
            tokens(vocab, 1..=8),
        ))
    ) {
        // What lets a decoder run one position at a time: the prediction after i + 1 target
        // tokens is the same whether or not later tokens are present.
        let full = model.forward(&src, &tgt, None);
        for len in 1..=tgt.len() {
            let prefix = model.forward(&src, &tgt[..len], None);
            assert_abs_diff_eq!(prefix, full.rows(0, len).into_owned(), epsilon = 1e-9);
        }
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn log_probs_ignore_source_tokens_at_padded_positions(
        ((model, _), src, other, pad, tgt) in small_model().prop_flat_map(|(m, vocab)| {
            (1..=8usize).prop_flat_map(move |n_s| (
                Just((m.clone(), vocab)),
                tokens(vocab, n_s..=n_s),
                tokens(vocab, n_s..=n_s),
                (prop::collection::vec(any::<bool>(), n_s), 0..n_s).prop_map(|(mut p, r)| {
                    p[r] = false; // at least one real source token
                    p
                }),
                tokens(vocab, 1..=8),
            ))
        })
    ) {
        let src2: Vec<usize> = (0..src.len()).map(|j| if pad[j] { other[j] } else { src[j] }).collect();
        let a = model.forward(&src, &tgt, Some(&pad));
        let b = model.forward(&src2, &tgt, Some(&pad));
        assert_abs_diff_eq!(b, a, epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn padding_at_the_end_of_the_source_changes_nothing(
        ((model, vocab), src, extra, tgt) in small_model().prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            tokens(vocab, 1..=5),
            0..=3usize,
            tokens(vocab, 1..=8),
        ))
    ) {
        // A sentence padded to a longer batch gets the same log-probabilities as alone: its
        // real positions keep their positional encodings, and no one sees the padding.
        let real = src.len();
        let mut padded = src.clone();
        padded.extend((0..extra).map(|j| j % vocab));
        let pad = trailing_padding(real + extra, real);
        let alone = model.forward(&src, &tgt, None);
        let batched = model.forward(&padded, &tgt, Some(&pad));
        assert_abs_diff_eq!(batched, alone, epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:generator (property)
    fn generator_rows_are_log_distributions(
        ((model, _), src, tgt) in small_model().prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            tokens(vocab, 1..=8),
            tokens(vocab, 1..=8),
        ))
    ) {
        let log_p = model.forward(&src, &tgt, None);
        prop_assert_eq!(log_p.shape(), (tgt.len(), model.embedding.vocab()));
        // The scores come from the shared matrix: log p_j - log p_k = y . (E_j - E_k) for the
        // decoder output y of the position, whatever the normalisation.
        let y = model.decode(&tgt, &model.encode(&src, None), None);
        let e = &model.embedding.weight;
        for (i, row) in log_p.row_iter().enumerate() {
            for j in 1..row.len() {
                let want = y.row(i).dot(&(e.row(j) - e.row(0)));
                assert_abs_diff_eq!(row[j] - row[0], want, epsilon = 1e-9 * (1.0 + want.abs()));
            }
        }
        for row in log_p.row_iter() {
            prop_assert!(row.iter().all(|&l| l <= 1e-12));
            // logsumexp, computed here the stable way: max + ln sum exp(l - max).
            let max = row.max();
            let lse = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            assert_abs_diff_eq!(lse, 0.0, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:embedding, eq:generator (property)
    fn one_embedding_matrix_serves_source_target_and_generator(
        ((model, vocab), t, src, tgt, seed) in small_model()
            .prop_filter("d_model >= 4", |(m, _)| m.embedding.d_model() >= 4)
            .prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            0..vocab,
            tokens(vocab, 1..=8),
            tokens(vocab, 1..=8),
            any::<u64>(),
        ))
    ) {
        // Change row t of E and nothing else. (d_model >= 4: a 2-wide LayerNorm maps every
        // row to (g1, -g2) + bias or (-g1, g2) + bias, so in post-norm a changed input
        // usually leaves the output as it was.)
        let mut changed = model.clone();
        let d_model = model.embedding.d_model();
        let new_row = uniform_row(d_model, 1.0, &mut rng(seed));
        changed.embedding.weight.set_row(t, &new_row);
        let uses_t = |s: &[usize]| s.contains(&t);

        // The source embedding: the encoder output moves iff the source contains t.
        let memory = model.encode(&src, None);
        let memory_changed = changed.encode(&src, None);
        if uses_t(&src) {
            prop_assert!(max_abs_diff(&memory, &memory_changed) > 1e-6);
        } else {
            assert_abs_diff_eq!(memory_changed, memory.clone(), epsilon = 0.0);
        }

        // The target embedding: with the memory held fixed, the decoder output moves iff the
        // target contains t.
        let y = model.decode(&tgt, &memory, None);
        let y_changed = changed.decode(&tgt, &memory, None);
        if uses_t(&tgt) {
            prop_assert!(max_abs_diff(&y, &y_changed) > 1e-6);
        } else {
            assert_abs_diff_eq!(y_changed, y.clone(), epsilon = 0.0);
        }

        // The pre-softmax linear map: for a fixed decoder output, exactly logit column t moves.
        let logits = model.embedding.logits(&y);
        let logits_changed = changed.embedding.logits(&y);
        for j in 0..vocab {
            let diff = (logits.column(j) - logits_changed.column(j)).abs().max();
            if j == t {
                prop_assert!(diff > 1e-6, "column {} of the logits did not move", t);
            } else {
                prop_assert!(diff == 0.0, "column {} moved by {}", j, diff);
            }
        }
    }

    #[test]
    // verifies: eq:embedding (property)
    fn embeddings_are_the_table_rows_scaled_by_sqrt_d_model(
        ((model, _), src) in small_model().prop_flat_map(|(m, vocab)| (Just((m, vocab)), tokens(vocab, 1..=8)))
    ) {
        // The embedded row is parallel to the table row and sqrt(d_model) times as long.
        let x = model.embedding.embed(&src);
        let d = model.embedding.d_model() as f64;
        for (i, &t) in src.iter().enumerate() {
            let e = model.embedding.weight.row(t);
            let xi = x.row(i);
            assert_abs_diff_eq!(xi.norm(), d.sqrt() * e.norm(), epsilon = 1e-12);
            assert_abs_diff_eq!(xi.dot(&e), xi.norm() * e.norm(), epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:generator (property)
    fn f32_model_agrees_with_f64_to_1e_3(
        ((model, _), src, real, tgt) in small_model()
            .prop_filter("d_model >= 4", |(m, _)| m.embedding.d_model() >= 4)
            .prop_flat_map(|(m, vocab)| (
                Just((m, vocab)),
                tokens(vocab, 1..=8),
                1..=8usize,
                tokens(vocab, 1..=8),
            ))
    ) {
        // The f32 model has every f64 parameter rounded once to f32; the source ends in
        // padding, so the -inf masks run in f32 too.
        //
        // Tolerance: f32 rounds to 2^-24 = 6e-8 relative. Over 40,000 random models of this
        // strategy the largest difference in log-probabilities was 3e-5 (median 5e-7); the tail
        // comes from LayerNorm rows with a small spread, whose 1 / std amplifies rounding.
        // 1e-3 leaves a margin of 30 over that, and still catches what an f32 bug looks like:
        // a constant that overflows or underflows in f32, NaN from the mask, a missed
        // conversion (errors of 1e-2 and up, or non-finite values). d_model >= 4: with two
        // features LayerNorm jumps between (1, -1) and (-1, 1) as the two entries cross, and
        // near the crossing f32 and f64 may land on different sides.
        let real = real.min(src.len());
        let pad = trailing_padding(src.len(), real);
        let model32 = cast_model(&model);
        let log_p = model.forward(&src, &tgt, Some(&pad));
        let log_p32 = model32.forward(&src, &tgt, Some(&pad)).map(|x| x as f64);
        prop_assert!(log_p32.iter().all(|x| x.is_finite()));
        assert_abs_diff_eq!(log_p32, log_p, epsilon = 1e-3);
    }

    #[test]
    fn parameter_count_formula_equals_the_count_of_a_built_model(
        (config, vocab) in (small_config(), 1..=12usize)
    ) {
        // Config::param_counts works from sizes alone; num_params walks the built model.
        let model = Transformer::<f64>::new(&config, vocab, &mut rng(0)).expect("valid config");
        prop_assert_eq!(config.param_counts(vocab).total, model.num_params());
    }
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    /// Figure 1: each stack reads the scaled embeddings *plus* the positional encodings of
    /// their positions (§3.4, §3.5), with the source padding masked and the target causal.
    // verifies: eq:positional, eq:embedding (property)
    #[test]
    fn encode_and_decode_add_positional_encodings_to_the_scaled_embeddings(
        ((model, _), src, tgt) in small_model().prop_flat_map(|(m, vocab)| (
            Just((m, vocab)),
            tokens(vocab, 1..=8),
            tokens(vocab, 1..=8),
        ))
    ) {
        let d = model.embedding.d_model() as f64;
        let rows = |ids: &[usize]| {
            DMatrix::from_fn(ids.len(), model.embedding.d_model(), |i, j| model.embedding.weight[(ids[i], j)] * d.sqrt())
        };
        let x = rows(&src) + model.positional.encode(src.len());
        let memory = model.encode(&src, None);
        assert_abs_diff_eq!(memory, model.encoder.forward(&x, None), epsilon = 1e-12);
        let y = rows(&tgt) + model.positional.encode(tgt.len());
        let causal = Mask::causal(tgt.len());
        let out = model.decode(&tgt, &memory, None);
        assert_abs_diff_eq!(out, model.decoder.forward(&y, &memory, Some(&causal), None), epsilon = 1e-12);
    }
}
