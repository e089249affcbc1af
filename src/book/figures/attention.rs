//! §3.2.3 and §3.2.2: the causal mask with the weights it leaves, and the heads of an untrained
//! multi-head self-attention.

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::grid::{column_label, grid, row_label};
use super::scale::unit_variance;
use crate::attention::scaled_dot_product_attention;
use crate::book::svg::{self, Anchor, Svg, TextStyle};
use crate::embedding::Embedding;
use crate::mask::Mask;
use crate::multi_head::MultiHeadAttention;
use crate::positional::sinusoidal;

pub(super) fn causal_mask() -> Result<String, String> {
    let tokens = ["<s>", "the", "cat", "sat", "down"];
    let n = tokens.len();
    let d_k = 8;
    let mut rng = StdRng::seed_from_u64(3);
    let mask = Mask::causal(n);
    let x = unit_variance(n, d_k, &mut rng);
    let scores = &x * x.transpose() / (d_k as f64).sqrt(); // (n, d_k) x (d_k, n) -> (n, n)
    let a = scaled_dot_product_attention(&x, &x, &x, Some(&mask));
    // Narrow enough (850 px) that the book's 800 px column shows its 13 px labels above 12 px.
    let cell = 44.0;
    let (left1, top) = (70.0, 92.0);
    let left2 = left1 + n as f64 * cell + 50.0;
    let left3 = left2 + n as f64 * cell + 50.0;
    let width = left3 + n as f64 * cell + 20.0;
    let height = top + n as f64 * cell + 56.0;
    let mut svg = Svg::new(
        width,
        height,
        "Causal mask: scores, masked scores and attention weights",
    );
    let headings = [
        (left1, "1. scores q_i · k_j / sqrt(d_k)"),
        (left2, "2. mask: j > i becomes -inf"),
        (left3, "3. softmax of each row"),
    ];
    for (left, heading) in headings {
        svg.text(
            left + n as f64 * cell / 2.0,
            30.0,
            heading,
            14.0,
            Anchor::Middle,
            TextStyle::BOLD,
        );
        svg.text(
            left + n as f64 * cell / 2.0,
            60.0,
            "keys j",
            13.0,
            Anchor::Middle,
            TextStyle::MUTED,
        );
    }
    for (panel, left) in [left1, left2, left3].into_iter().enumerate() {
        let values = Panel {
            mask: &mask,
            scores: &scores,
            weights: &a.weights,
        };
        draw_panel(&mut svg, panel, (left, top, cell), &tokens, &values);
    }
    svg.vertical_text(16.0, top + n as f64 * cell / 2.0, "queries i", 12.0);
    svg.text(
        width / 2.0,
        height - 18.0,
        "Self-attention of five random vectors x (q = k = x, d_k = 8, seed 3). Each row of weights sums to 1; masked entries are exactly 0.",
        13.0,
        Anchor::Middle,
        TextStyle::MUTED,
    );
    Ok(svg.finish())
}

/// What the three panels of the causal-mask figure show.
struct Panel<'a> {
    mask: &'a Mask,
    scores: &'a DMatrix<f64>,
    weights: &'a DMatrix<f64>,
}

/// Panel 0 shows the scores, 1 the masked scores, 2 the weights; `(left, top, cell)` place it.
fn draw_panel(
    svg: &mut Svg,
    panel: usize,
    (left, top, cell): (f64, f64, f64),
    tokens: &[&str],
    values: &Panel,
) {
    for (i, token) in tokens.iter().enumerate() {
        for j in 0..tokens.len() {
            let (x0, y0) = (left + j as f64 * cell, top + i as f64 * cell);
            let (fill, text, style) = cell_look(panel, values, i, j);
            svg.rect(x0, y0, cell, cell, &fill, Some("#ffffff"), 0.0);
            svg.text(
                x0 + cell / 2.0,
                y0 + cell / 2.0 + 4.0,
                &text,
                13.0,
                Anchor::Middle,
                style,
            );
        }
        row_label(svg, (left, top, cell), i, token, 13.0);
    }
    for (j, token) in tokens.iter().enumerate() {
        column_label(svg, (left, top - 8.0, cell), j, token, 13.0);
    }
}

/// The fill, the text and the text's style of cell (i, j) of a panel.
fn cell_look(panel: usize, values: &Panel, i: usize, j: usize) -> (String, String, TextStyle) {
    let score = values.scores[(i, j)];
    match panel {
        0 => (
            svg::diverging(score / 4.0),
            format!("{score:.1}"),
            TextStyle::PLAIN,
        ),
        1 if !values.mask.allows(i, j) => {
            ("#d9d9d9".to_string(), "-inf".to_string(), TextStyle::MUTED)
        }
        1 => (
            svg::diverging(score / 4.0),
            format!("{score:.1}"),
            TextStyle::PLAIN,
        ),
        _ => {
            let w = values.weights[(i, j)];
            let style = if svg::dark(w) {
                TextStyle::WHITE
            } else {
                TextStyle::PLAIN
            };
            let text = if w == 0.0 {
                "0".to_string()
            } else {
                format!("{w:.2}")
            };
            (svg::sequential(w), text, style)
        }
    }
}

pub(super) fn attention_heatmap() -> Result<String, String> {
    let tokens = ["the", "cat", "sat", "on", "the", "mat"];
    let ids = [0usize, 1, 2, 3, 0, 4];
    let (d_model, h) = (32, 4);
    let d_k = d_model / h;
    let mut rng = StdRng::seed_from_u64(7);
    let embedding = Embedding::<f64>::new(5, d_model, &mut rng);
    let x = embedding.embed(&ids) + sinusoidal::<f64>(ids.len(), d_model); // (n, d_model)
    let mha = MultiHeadAttention::<f64>::new(d_model, h, d_k, d_k, false, &mut rng);
    let out = mha.forward(&x, &x, &x, None);
    let n = tokens.len();
    let cell = 40.0;
    let (left, top, gap) = (56.0, 96.0, 70.0);
    let panel = n as f64 * cell;
    let width = left + 2.0 * panel + gap + 20.0;
    let height = top + 2.0 * panel + gap + 20.0;
    let mut svg = Svg::new(
        width,
        height,
        "Per-head self-attention weights of an untrained multi-head attention",
    );
    svg.text(
        width / 2.0,
        24.0,
        "UNTRAINED multi-head self-attention (random weights, seed 7)",
        15.0,
        Anchor::Middle,
        TextStyle::BOLD,
    );
    svg.text(
        width / 2.0,
        44.0,
        "d_model = 32, h = 4, d_k = d_v = 8; rows: queries, columns: keys; each row sums to 1",
        12.0,
        Anchor::Middle,
        TextStyle::MUTED,
    );
    for (head, weights) in out.weights.iter().enumerate() {
        let x0 = left + (head % 2) as f64 * (panel + gap);
        let y0 = top + (head / 2) as f64 * (panel + gap);
        svg.text(
            x0 + panel / 2.0,
            y0 - 28.0,
            &format!("head {}", head + 1),
            13.0,
            Anchor::Middle,
            TextStyle::BOLD,
        );
        grid(&mut svg, x0, y0, cell, weights, &tokens, &tokens, true);
    }
    Ok(svg.finish())
}
