//! The worked example of the results chapter: one short sentence traced through the trained
//! model's first encoder layer, head 1, number by number, and the first steps of a beam search,
//! hypothesis by hypothesis. Every number is computed here, from the committed model, when the
//! book is built; `tests/worked_example.rs` checks them against the library's own functions.

use nalgebra::DMatrix;

use super::appendix::material;
use crate::decode::{beam_search_traced, BeamStep};
use crate::softmax::softmax_rows;
use crate::train::tasks::{BOS, EOS};

/// The sentence the example follows.
pub const SENTENCE: &str = "the dog sees a cat";

/// Columns of a wide matrix that the tables show (d_model is 64; four are enough to follow).
pub const SHOWN: usize = 4;

/// Everything the example prints, in f64.
#[derive(Clone, Debug)]
pub struct Trace {
    pub words: Vec<String>,
    /// E[x] sqrt(d_model) + PE: (n, d_model).
    pub x: DMatrix<f64>,
    /// Head 1's projections: (n, d_k) each.
    pub q: DMatrix<f64>,
    pub k: DMatrix<f64>,
    pub v: DMatrix<f64>,
    /// Q K^T (n, n), before scaling.
    pub scores: DMatrix<f64>,
    pub d_k: usize,
    /// softmax(Q K^T / sqrt(d_k)).
    pub weights: DMatrix<f64>,
    /// weights V: head 1's output (n, d_v).
    pub output: DMatrix<f64>,
    /// The beam search's steps (beam 4, alpha 0.6), in words.
    pub beam: Vec<BeamStep<f32>>,
    pub target_words: Vec<String>,
}

/// Runs the example.
///
/// # Errors
/// When the committed model cannot be read, or a word is not in its vocabulary.
pub fn trace() -> Result<Trace, String> {
    let m = material()?;
    let ids = m.task.vocab.encode(SENTENCE).map_err(|e| e.to_string())?;
    let model = &m.model;
    let x = (model.embedding.embed(&ids) + model.positional.encode(ids.len())).map(f64::from);
    let attn = &model.encoder.layers[0].self_attn;
    let d_k = attn.d_k;
    let w = |w: &DMatrix<f32>, cols: usize| w.columns(0, cols).into_owned().map(f64::from); // head 1
    let q = &x * w(&attn.w_q, d_k); // (n, d_model) x (d_model, d_k) -> (n, d_k)
    let k = &x * w(&attn.w_k, d_k);
    let v = &x * w(&attn.w_v, attn.d_v);
    let scores = &q * k.transpose(); // (n, d_k) x (d_k, n) -> (n, n)
    let weights = softmax_rows(&(&scores / (d_k as f64).sqrt()));
    let output = &weights * &v; // (n, n) x (n, d_v) -> (n, d_v)
    let (_, beam) = beam_search_traced(model, &ids, BOS, EOS, 4, 0.6f32, ids.len() + 50);
    let words = |ids: &[usize]| {
        ids.iter()
            .map(|&i| m.task.vocab.word(i).to_string())
            .collect()
    };
    let best = &beam
        .last()
        .and_then(|s| s.finished.first())
        .map(|h| h.tokens.clone());
    Ok(Trace {
        words: words(&ids),
        x,
        q,
        k,
        v,
        scores,
        d_k,
        weights,
        output,
        target_words: best.as_deref().map(words).unwrap_or_default(),
        beam,
    })
}

fn table(t: &mut String, row_names: &[String], m: &DMatrix<f64>, cols: usize, col_name: &str) {
    let more = m.ncols() > cols;
    t.push_str("| |");
    for j in 0..cols {
        t.push_str(&format!(" {col_name}{} |", j + 1));
    }
    if more {
        t.push_str(" … |");
    }
    t.push_str("\n|---|");
    for _ in 0..cols + usize::from(more) {
        t.push_str("---:|");
    }
    t.push('\n');
    for (i, name) in row_names.iter().enumerate() {
        t.push_str(&format!("| {name} |"));
        for j in 0..cols {
            t.push_str(&format!(" {:.3} |", m[(i, j)]));
        }
        if more {
            t.push_str(" |");
        }
        t.push('\n');
    }
    t.push('\n');
}

/// The example as markdown, for `{{#worked-example}}`.
///
/// # Errors
/// As [`trace`].
pub fn markdown() -> Result<String, String> {
    let t = trace()?;
    let m = material()?;
    let n = t.words.len();
    let mut s = String::new();
    s.push_str(&format!(
        "The sentence *{SENTENCE}* ({n} tokens), through {}.\n\n",
        m.about
    ));
    s.push_str(&format!(
        "**1. Embedding plus positional encoding**, $X = E_x \\sqrt{{d_{{\\mathrm{{model}}}}}} + \\mathrm{{PE}}$: one row per word, the first {SHOWN} of {} columns.\n\n",
        t.x.ncols()
    ));
    table(&mut s, &t.words, &t.x, SHOWN, "x");
    s.push_str(&format!(
        "**2. Head 1 of the first encoder layer** projects every row: $Q = X W_1^Q$, $K = X W_1^K$, $V = X W_1^V$, each {n} × {}; the first {SHOWN} columns of $Q$ and $K$:\n\n",
        t.d_k
    ));
    table(&mut s, &t.words, &t.q, SHOWN, "q");
    table(&mut s, &t.words, &t.k, SHOWN, "k");
    s.push_str(
        "**3. The scores** $QK^{\\top}$, one row per query word, one column per key word:\n\n",
    );
    table(&mut s, &t.words, &t.scores, n, "key ");
    s.push_str(&format!(
        "**4. Scaled and normalised**: divided by $\\sqrt{{d_k}} = \\sqrt{{{}}} = {}$, then a softmax along each row. Every row sums to 1:\n\n",
        t.d_k,
        (t.d_k as f64).sqrt()
    ));
    table(&mut s, &t.words, &t.weights, n, "key ");
    s.push_str(&format!(
        "**5. The output** $\\mathrm{{softmax}}(QK^{{\\top}}/\\sqrt{{d_k}})\\,V$, the first {SHOWN} of {} columns: each row is the weighted average of the rows of $V$.\n\n",
        t.v.ncols()
    ));
    table(&mut s, &t.words, &t.output, SHOWN, "o");
    s.push_str("**6. Beam search** (beam 4, $\\alpha = 0.6$) on the same sentence. After each step, the hypotheses it keeps, best first, with their log-probability and their score $\\log P(Y)/\\mathrm{lp}(Y)$:\n\n");
    s.push_str("| step | hypothesis | log P | score |\n|---:|---|---:|---:|\n");
    for (i, step) in t.beam.iter().enumerate().take(3) {
        for h in step.live.iter().chain(step.finished.iter()) {
            let words: Vec<&str> = h.tokens.iter().map(|&id| m.task.vocab.word(id)).collect();
            let end = if h.eos { " `</s>`" } else { "" };
            s.push_str(&format!(
                "| {} | {}{end} | {:.4} | {:.4} |\n",
                i + 1,
                words.join(" "),
                h.log_prob,
                h.score
            ));
        }
    }
    s.push_str(&format!(
        "\nThe search finishes after {} steps with *{}*.\n",
        t.beam.len(),
        t.target_words.join(" ")
    ));
    Ok(s)
}
