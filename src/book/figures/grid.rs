//! What the grid figures share (heatmaps drawn cell by cell with the small SVG writer): the
//! cells of a matrix with labels, tick labels, a colour bar.

use nalgebra::DMatrix;

use crate::book::svg::{self, Anchor, Svg, TextStyle};

/// Rounds v in [-1, 1] to one of `levels` steps per unit, so heatmaps share few colours.
pub(super) fn quantize(v: f64, levels: u32) -> f64 {
    (v * levels as f64).round() / levels as f64
}

/// Tick labels every `every` cells along the top-left edges of a grid.
pub(super) fn axis_ticks(
    svg: &mut Svg,
    left: f64,
    top: f64,
    cell: f64,
    rows: usize,
    cols: usize,
    every: usize,
) {
    for i in (0..cols).step_by(every) {
        svg.text(
            left + (i as f64 + 0.5) * cell,
            top + rows as f64 * cell + 14.0,
            &i.to_string(),
            11.0,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
    }
    for p in (0..rows).step_by(every) {
        svg.text(
            left - 6.0,
            top + (p as f64 + 0.5) * cell + 4.0,
            &p.to_string(),
            11.0,
            Anchor::End,
            TextStyle::PLAIN,
        );
    }
}

/// A vertical colour bar from `range.1` (top) to `range.0` (bottom).
pub(super) fn colour_bar(
    svg: &mut Svg,
    x: f64,
    top: f64,
    height: f64,
    range: (f64, f64),
    colour: fn(f64) -> String,
) {
    let steps = 64;
    let cells = (0..steps).map(|s| {
        let t = 1.0 - (s as f64 + 0.5) / steps as f64;
        let v = range.0 + t * (range.1 - range.0);
        (
            x,
            top + s as f64 * height / steps as f64,
            16.0,
            height / steps as f64 + 0.3,
            colour(v),
        )
    });
    svg.cells(cells);
    svg.rect(x, top, 16.0, height, "none", Some("#888888"), 0.0);
    for (t, label) in [
        (0.0, range.1),
        (0.5, (range.0 + range.1) / 2.0),
        (1.0, range.0),
    ] {
        svg.text(
            x + 22.0,
            top + t * height + 4.0,
            &format_tick(label),
            11.0,
            Anchor::Start,
            TextStyle::PLAIN,
        );
    }
}

pub(super) fn format_tick(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws an (n, m) matrix as a grid of cells with optional numbers, and returns nothing.
#[allow(clippy::too_many_arguments)]
pub(super) fn grid(
    svg: &mut Svg,
    left: f64,
    top: f64,
    cell: f64,
    values: &DMatrix<f64>,
    row_labels: &[&str],
    col_labels: &[&str],
    numbers: bool,
) {
    let (rows, cols) = values.shape();
    for i in 0..rows {
        for j in 0..cols {
            let t = values[(i, j)];
            let (x, y) = (left + j as f64 * cell, top + i as f64 * cell);
            svg.rect(x, y, cell, cell, &svg::sequential(t), Some("#ffffff"), 0.0);
            if numbers {
                let style = if svg::dark(t) {
                    TextStyle::WHITE
                } else {
                    TextStyle::PLAIN
                };
                let label = if t == 0.0 {
                    "0".to_string()
                } else {
                    format!("{t:.2}")
                };
                svg.text(
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0,
                    &label,
                    11.5,
                    Anchor::Middle,
                    style,
                );
            }
        }
    }
    for (i, label) in row_labels.iter().enumerate() {
        row_label(svg, (left, top, cell), i, label, 12.0);
    }
    for (j, label) in col_labels.iter().enumerate() {
        column_label(svg, (left, top - 6.0, cell), j, label, 12.0);
    }
}

/// The label of row i of a grid at `(left, top, cell)`, right-aligned left of it.
pub(super) fn row_label(
    svg: &mut Svg,
    (left, top, cell): (f64, f64, f64),
    i: usize,
    label: &str,
    size: f64,
) {
    svg.text(
        left - 6.0,
        top + (i as f64 + 0.5) * cell + 4.0,
        label,
        size,
        Anchor::End,
        TextStyle::PLAIN,
    );
}

/// The label of column j of a grid at `(left, _, cell)`, centred on it at height y.
pub(super) fn column_label(
    svg: &mut Svg,
    (left, y, cell): (f64, f64, f64),
    j: usize,
    label: &str,
    size: f64,
) {
    svg.text(
        left + (j as f64 + 0.5) * cell,
        y,
        label,
        size,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
}

#[cfg(test)]
mod tests {
    use super::colour_bar;
    use crate::book::svg::{self, Svg};

    #[test]
    fn a_colour_bar_is_labelled_top_middle_and_bottom_with_its_range() {
        let mut canvas = Svg::new(100.0, 200.0, "bar");
        colour_bar(&mut canvas, 10.0, 20.0, 100.0, (0.0, 1.0), svg::sequential);
        let out = canvas.finish();
        // each label's height (the baseline, 4 px under the point it marks) and text
        let labels: Vec<(&str, &str)> = out
            .split("<text ")
            .skip(1)
            .map(|t| {
                let y = t.split("y=\"").nth(1).unwrap().split('"').next().unwrap();
                let text = t.split('>').nth(1).unwrap().split('<').next().unwrap();
                (y, text)
            })
            .collect();
        assert_eq!(labels, [("24", "1"), ("74", "0.50"), ("124", "0")]);
    }
}
