//! Appendix: attention maps of the trained translate model, every layer and head.

use nalgebra::DMatrix;

use crate::book::appendix::Example;
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
    let maps = Maps::of(kind, e);
    let row_labels: Vec<&str> = maps.rows.iter().map(String::as_str).collect();
    let col_labels: Vec<&str> = maps.cols.iter().map(String::as_str).collect();
    let (layers, heads) = (maps.weights.len(), maps.weights[0].len());
    let l = Layout::new(&row_labels, &col_labels, heads);
    let width = l.label_w + heads as f64 * l.panel_w + (heads - 1) as f64 * l.gap + 20.0;
    let height = l.top + layers as f64 * l.band + 74.0;
    let title = maps.title;
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
        &format!(
            "rows = {}, columns = {}; each row sums to 1",
            maps.rows_are, maps.cols_are
        ),
        12.0,
        Anchor::Middle,
        TextStyle::MUTED,
    );
    for (i, layer) in maps.weights.iter().enumerate() {
        draw_layer(&mut svg, &l, i, layer, &row_labels, &col_labels);
    }
    weight_scale(&mut svg, l.label_w, height - 58.0);
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

/// One kind of attention of an example: the weights by layer and head, what the rows and the
/// columns are, and the figure's title.
struct Maps<'a> {
    weights: &'a [Vec<DMatrix<f64>>],
    rows: &'a [String],
    cols: &'a [String],
    title: &'static str,
    rows_are: &'static str,
    cols_are: &'static str,
}

impl<'a> Maps<'a> {
    fn of(kind: Kind, e: &'a Example) -> Maps<'a> {
        let w = &e.weights;
        let (weights, rows, cols, title, rows_are, cols_are) = match kind {
            Kind::Encoder => (
                &w.encoder,
                &e.source,
                &e.source,
                "Encoder self-attention",
                "queries: source words",
                "keys: source words",
            ),
            Kind::Decoder => (
                &w.decoder_self,
                &e.target,
                &e.target,
                "Decoder self-attention (masked)",
                "queries: decoder input",
                "keys: decoder input",
            ),
            Kind::Cross => (
                &w.cross,
                &e.target,
                &e.source,
                "Encoder-decoder attention",
                "queries: decoder input",
                "keys: source words",
            ),
        };
        Maps {
            weights,
            rows,
            cols,
            title,
            rows_are,
            cols_are,
        }
    }
}

/// Where the panels go: the width of the row labels, the height of the column labels, the
/// gap between heads, the size of a cell and of a panel, and the height of a layer's band.
struct Layout {
    label_w: f64,
    label_h: f64,
    gap: f64,
    cell: f64,
    panel_w: f64,
    panel_h: f64,
    top: f64,
    band: f64,
}

impl Layout {
    fn new(row_labels: &[&str], col_labels: &[&str], heads: usize) -> Layout {
        let longest = |labels: &[&str]| labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
        let label_w = 14.0 + 7.0 * longest(row_labels) as f64; // 12 px text, about 7 px a letter
        let label_h = 10.0 + 5.5 * longest(col_labels) as f64; // rotated by 60 degrees
        let gap = 16.0;
        let budget = 760.0 - label_w - 20.0 - gap * (heads - 1) as f64;
        let cell = (budget / (heads * col_labels.len()) as f64)
            .clamp(16.0, 28.0)
            .floor();
        let panel_w = col_labels.len() as f64 * cell;
        let panel_h = row_labels.len() as f64 * cell;
        let band = 22.0 + label_h + panel_h + 14.0; // head titles, column labels, cells
        Layout {
            label_w,
            label_h,
            gap,
            cell,
            panel_w,
            panel_h,
            top: 64.0,
            band,
        }
    }
}

/// The band of layer `l`: one panel per head, with its title and column labels, and the row
/// labels at the left.
fn draw_layer(
    svg: &mut Svg,
    lay: &Layout,
    l: usize,
    layer: &[DMatrix<f64>],
    row_labels: &[&str],
    col_labels: &[&str],
) {
    let y_band = lay.top + l as f64 * lay.band;
    let y0 = y_band + 22.0 + lay.label_h;
    for (h, w) in layer.iter().enumerate() {
        let x0 = lay.label_w + h as f64 * (lay.panel_w + lay.gap);
        svg.text(
            x0 + lay.panel_w / 2.0,
            y_band + 14.0,
            &format!("layer {}, head {}", l + 1, h + 1),
            12.0,
            Anchor::Middle,
            TextStyle::BOLD,
        );
        let mut cells = Vec::new();
        for i in 0..w.nrows() {
            for j in 0..w.ncols() {
                let (x, y) = (x0 + j as f64 * lay.cell, y0 + i as f64 * lay.cell);
                cells.push((x, y, lay.cell, lay.cell, svg::sequential(w[(i, j)])));
            }
        }
        svg.cells(cells);
        svg.rect(
            x0,
            y0,
            lay.panel_w,
            lay.panel_h,
            "none",
            Some("#bbbbbb"),
            0.0,
        );
        for (j, label) in col_labels.iter().enumerate() {
            let x = x0 + (j as f64 + 0.5) * lay.cell + 4.0;
            svg.rotated_text(x, y0 - 5.0, label, 11.0, -60.0);
        }
    }
    for (i, label) in row_labels.iter().enumerate() {
        svg.text(
            lay.label_w - 6.0,
            y0 + (i as f64 + 0.5) * lay.cell + 4.0,
            label,
            12.0,
            Anchor::End,
            TextStyle::PLAIN,
        );
    }
}

/// A legend of the colour scale, at height y.
fn weight_scale(svg: &mut Svg, label_w: f64, y: f64) {
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
}
