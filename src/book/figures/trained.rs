//! Appendix: attention maps of the trained translate model, every layer and head.

use crate::book::svg::{self, Anchor, Svg, TextStyle};

/// Which attention of the model a figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Encoder,
    Decoder,
    Cross,
}

pub(super) fn attention_encoder() -> Result<String, String> {
    trained_maps(Kind::Encoder)
}

pub(super) fn attention_decoder() -> Result<String, String> {
    trained_maps(Kind::Decoder)
}

pub(super) fn attention_cross() -> Result<String, String> {
    trained_maps(Kind::Cross)
}

/// Every layer (rows of panels) and head (columns) of one kind of attention, for the first of
/// the appendix's held-out sentences.
fn trained_maps(kind: Kind) -> Result<String, String> {
    let m = crate::book::appendix::material()?;
    let e = &m.examples[0];
    let (maps, rows, cols, title, rows_are, cols_are) = match kind {
        Kind::Encoder => (
            &e.weights.encoder,
            &e.source,
            &e.source,
            "Encoder self-attention",
            "queries: source words",
            "keys: source words",
        ),
        Kind::Decoder => (
            &e.weights.decoder_self,
            &e.target,
            &e.target,
            "Decoder self-attention (masked)",
            "queries: decoder input",
            "keys: decoder input",
        ),
        Kind::Cross => (
            &e.weights.cross,
            &e.target,
            &e.source,
            "Encoder-decoder attention",
            "queries: decoder input",
            "keys: source words",
        ),
    };
    let row_labels: Vec<&str> = rows.iter().map(String::as_str).collect();
    let col_labels: Vec<&str> = cols.iter().map(String::as_str).collect();
    let (layers, heads) = (maps.len(), maps[0].len());
    let longest = |labels: &[&str]| labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let label_w = 14.0 + 7.0 * longest(&row_labels) as f64; // 12 px text, about 7 px a letter
    let label_h = 10.0 + 5.5 * longest(&col_labels) as f64; // rotated by 60 degrees
    let gap = 16.0;
    let budget = 760.0 - label_w - 20.0 - gap * (heads - 1) as f64;
    let cell = (budget / (heads * cols.len()) as f64)
        .clamp(16.0, 28.0)
        .floor();
    let panel_w = cols.len() as f64 * cell;
    let panel_h = rows.len() as f64 * cell;
    let top = 64.0;
    let band = 22.0 + label_h + panel_h + 14.0; // head titles, column labels, cells
    let width = label_w + heads as f64 * panel_w + (heads - 1) as f64 * gap + 20.0;
    let height = top + layers as f64 * band + 74.0;
    let mut svg = Svg::new(
        width,
        height,
        &format!("{title} of the trained translate model, every layer and head"),
    );
    svg.text(
        width / 2.0,
        22.0,
        &format!("{title}: \"{}\"", e.source.join(" ")),
        14.0,
        Anchor::Middle,
        TextStyle::BOLD,
    );
    svg.text(
        width / 2.0,
        42.0,
        &format!("rows = {rows_are}, columns = {cols_are}; each row sums to 1"),
        12.0,
        Anchor::Middle,
        TextStyle::MUTED,
    );
    for (l, layer) in maps.iter().enumerate() {
        let y_band = top + l as f64 * band;
        let y0 = y_band + 22.0 + label_h;
        for (h, w) in layer.iter().enumerate() {
            let x0 = label_w + h as f64 * (panel_w + gap);
            svg.text(
                x0 + panel_w / 2.0,
                y_band + 14.0,
                &format!("layer {}, head {}", l + 1, h + 1),
                12.0,
                Anchor::Middle,
                TextStyle::BOLD,
            );
            let mut cells = Vec::new();
            for i in 0..w.nrows() {
                for j in 0..w.ncols() {
                    let (x, y) = (x0 + j as f64 * cell, y0 + i as f64 * cell);
                    cells.push((x, y, cell, cell, svg::sequential(w[(i, j)])));
                }
            }
            svg.cells(cells);
            svg.rect(x0, y0, panel_w, panel_h, "none", Some("#bbbbbb"), 0.0);
            for (j, label) in col_labels.iter().enumerate() {
                let x = x0 + (j as f64 + 0.5) * cell + 4.0;
                svg.rotated_text(x, y0 - 5.0, label, 11.0, -60.0);
            }
        }
        for (i, label) in row_labels.iter().enumerate() {
            svg.text(
                label_w - 6.0,
                y0 + (i as f64 + 0.5) * cell + 4.0,
                label,
                12.0,
                Anchor::End,
                TextStyle::PLAIN,
            );
        }
    }
    // A legend of the colour scale.
    let y = height - 58.0;
    svg.text(
        label_w,
        y + 13.0,
        "weight",
        12.0,
        Anchor::End,
        TextStyle::PLAIN,
    );
    for k in 0..=10 {
        let t = k as f64 / 10.0;
        svg.cell(
            label_w + 6.0 + k as f64 * 18.0,
            y,
            18.0,
            18.0,
            &svg::sequential(t),
        );
    }
    svg.rect(
        label_w + 6.0,
        y,
        11.0 * 18.0,
        18.0,
        "none",
        Some("#bbbbbb"),
        0.0,
    );
    svg.text(
        label_w + 6.0,
        y + 32.0,
        "0",
        11.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    svg.text(
        label_w + 6.0 + 99.0,
        y + 32.0,
        "0.5",
        11.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    svg.text(
        label_w + 6.0 + 198.0,
        y + 32.0,
        "1",
        11.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    svg.text(
        20.0,
        height - 8.0,
        &format!("{}; held-out sentence {}", m.about, e.index),
        11.0,
        Anchor::Start,
        TextStyle::MUTED,
    );
    Ok(svg.finish())
}
