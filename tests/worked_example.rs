//! The results chapter's worked example: its numbers are what the library computes.

use aiayn::book::worked::{markdown, trace};
use aiayn::decode::length_penalty;
use aiayn::mask::Mask;
use aiayn::train::tasks::BOS;
use approx::assert_abs_diff_eq;

#[test]
fn the_worked_example_is_eq_1_on_head_1_of_the_trained_model() {
    let t = trace().expect("the committed model loads");
    let n = t.words.len();
    assert_eq!(t.words.join(" "), aiayn::book::worked::SENTENCE);
    // the weights are softmax(scores / sqrt(d_k)) by Eq. 1 as the library computes it, and
    // each row is a distribution
    let a = aiayn::attention::scaled_dot_product_attention(&t.q, &t.k, &t.v, None);
    assert_abs_diff_eq!(a.weights, t.weights, epsilon = 1e-12);
    assert_abs_diff_eq!(a.output, t.output, epsilon = 1e-12);
    for row in t.weights.row_iter() {
        assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
    }
    assert_abs_diff_eq!(t.scores, &t.q * t.k.transpose(), epsilon = 1e-12);
    // head 1 of the model's own first encoder layer gives the same output columns
    let m = aiayn::book::appendix::material().unwrap();
    let attn = &m.model.encoder.layers[0].self_attn;
    let x32 = t.x.map(|v| v as f32);
    let (_, cache) = attn.forward_train(&x32, &x32, &x32, &[Mask::full(n, n)]);
    let head_1 = cache
        .concat
        .columns(0, attn.d_v)
        .into_owned()
        .map(f64::from);
    assert_abs_diff_eq!(head_1, t.output, epsilon = 1e-4); // f32 against f64

    // and the input is the model's own: the weights of head 1 of layer 1 in a whole forward
    // pass over the sentence, embeddings and positions included
    let src = m.task.vocab.encode(aiayn::book::worked::SENTENCE).unwrap();
    let seen = m.model.attention_weights(&src, &[BOS]);
    assert_abs_diff_eq!(seen.encoder[0][0].map(f64::from), t.weights, epsilon = 1e-4);
}

#[test]
fn the_beam_steps_score_log_probabilities_over_the_length_penalty() {
    let t = trace().unwrap();
    let m = aiayn::book::appendix::material().unwrap();
    let src = m.task.vocab.encode(aiayn::book::worked::SENTENCE).unwrap();
    assert!(t.beam.len() >= 3);
    for step in &t.beam {
        for h in step.live.iter().chain(step.finished.iter()) {
            // log P from a teacher-forced forward pass over the hypothesis
            let tgt: Vec<usize> = std::iter::once(BOS)
                .chain(h.tokens.iter().copied())
                .collect();
            let log_probs = m.model.forward(&src, &tgt, None);
            let mut want = 0.0f64;
            for (i, &tok) in h.tokens.iter().enumerate() {
                want += f64::from(log_probs[(i, tok)]);
            }
            if h.eos {
                want += f64::from(log_probs[(h.tokens.len(), aiayn::train::tasks::EOS)]);
            }
            assert_abs_diff_eq!(f64::from(h.log_prob), want, epsilon = 1e-3);
            let lp = length_penalty(h.length(), 0.6f32);
            assert_abs_diff_eq!(h.score, h.log_prob / lp, epsilon = 1e-6);
        }
        // best first
        for pair in step.live.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
    }
}

#[test]
fn the_chapter_prints_the_numbers_the_trace_computed() {
    let t = trace().unwrap();
    let md = markdown().unwrap();
    for v in [
        t.weights[(0, 0)],
        t.weights[(2, 3)],
        t.scores[(1, 1)],
        t.output[(4, 0)],
        t.x[(0, 1)],
    ] {
        assert!(
            md.contains(&format!(" {v:.3} |")),
            "{v:.3} is not in the example"
        );
    }
    assert!(md.contains(&t.target_words.join(" ")));
    // a matrix wider than the page shows its first columns and an ellipsis column; one that
    // fits shows every column and no ellipsis
    let (shown, n) = (aiayn::book::worked::SHOWN, t.words.len());
    assert!(t.x.ncols() > shown && t.weights.ncols() <= 8);
    let tables: Vec<Vec<&str>> = md
        .split("\n\n")
        .filter(|b| b.starts_with("| |"))
        .map(|b| b.lines().collect())
        .collect();
    let (x, weights) = (&tables[0], &tables[4]);
    let head: String = (1..=shown).map(|j| format!(" x{j} |")).collect();
    assert_eq!(x[0], format!("| |{head} … |"));
    assert_eq!(x[1], format!("|---|{}", "---:|".repeat(shown + 1)));
    assert_eq!(x.len(), 2 + n);
    for (row, word) in x[2..].iter().zip(&t.words) {
        assert!(row.starts_with(&format!("| {word} |")), "{row}");
        assert!(row.ends_with(" | |"), "{row}");
        assert_eq!(row.matches('|').count(), shown + 3, "{row}");
    }
    let head: String = (1..=n).map(|j| format!(" key {j} |")).collect();
    assert_eq!(weights[0], format!("| |{head}"));
    assert_eq!(weights[1], format!("|---|{}", "---:|".repeat(n)));
    assert_eq!(weights[2].matches('|').count(), n + 2, "{}", weights[2]);
}
