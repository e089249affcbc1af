//! The book's figures, drawn as SVG by calling the library when the book is built.
//!
//! Plots with axes use plotters' SVG backend (no C libraries, no system fonts: it writes
//! `<text>` elements and lets the browser choose the face); grids and the data-flow diagram use
//! the small writer in [`super::svg`]. Every random draw is seeded, so the files are the same
//! on every build. A chapter shows a figure as `![what it shows](figures/NAME.svg)`.

use std::error::Error;

use nalgebra::DMatrix;
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::svg::{self, Anchor, Svg, TextStyle};
use crate::attention::{dot_product_moments, scaled_dot_product_attention};
use crate::embedding::Embedding;
use crate::mask::Mask;
use crate::multi_head::MultiHeadAttention;
use crate::positional::sinusoidal;
use crate::train::label_smoothing::{smoothed_targets, Spread};
use crate::train::schedule::lrate;

/// One figure: its file name (without `.svg`), what it shows, and the function that draws it.
pub struct Figure {
    pub name: &'static str,
    pub about: &'static str,
    pub draw: fn() -> Result<String, String>,
}

/// Every figure the book can reference.
pub const ALL: &[Figure] = &[
    Figure {
        name: "data-flow",
        about: "the encoder-decoder data flow (§3)",
        draw: data_flow,
    },
    Figure {
        name: "pe-curves",
        about: "sinusoidal positional encodings of a few dimensions against position (§3.5)",
        draw: pe_curves,
    },
    Figure {
        name: "pe-heatmap",
        about: "sinusoidal positional encodings, positions by dimensions (§3.5)",
        draw: pe_heatmap,
    },
    Figure {
        name: "lrate",
        about: "the learning-rate schedule of Eq. 3 for several d_model and warmup_steps (§5.3)",
        draw: lrate_curves,
    },
    Figure {
        name: "dot-variance",
        about: "footnote 4: the sample variance of q.k against d_k (§3.2.1)",
        draw: dot_variance,
    },
    Figure {
        name: "softmax-saturation",
        about: "the largest softmax weight against d_k, with and without the 1/sqrt(d_k) scale (§3.2.1)",
        draw: softmax_saturation,
    },
    Figure {
        name: "causal-mask",
        about: "the causal mask and the attention weights it leaves (§3.2.3)",
        draw: causal_mask,
    },
    Figure {
        name: "attention-heatmap",
        about: "per-head weights of an untrained multi-head self-attention (§3.2.2)",
        draw: attention_heatmap,
    },
    Figure {
        name: "label-smoothing",
        about: "the label-smoothed target distribution (§5.4)",
        draw: label_smoothing,
    },
    Figure {
        name: "training-copy",
        about: "the loss and held-out exact match of the book's copy run (§5), from its committed log",
        draw: training_copy,
    },
    Figure {
        name: "training-translate",
        about: "the loss and held-out exact match of the book's translate run (§5), from its committed log",
        draw: training_translate,
    },
    Figure {
        name: "layer-timing",
        about: "Table 1 measured: forward-pass time of each layer against n at d = 512 (§4), from its committed run",
        draw: table1_timing,
    },
    Figure {
        name: "attention-encoder",
        about: "encoder self-attention of the trained translate model on a held-out sentence, every layer and head (appendix)",
        draw: attention_encoder,
    },
    Figure {
        name: "attention-decoder",
        about: "masked decoder self-attention of the trained translate model on the same sentence (appendix)",
        draw: attention_decoder,
    },
    Figure {
        name: "attention-cross",
        about: "encoder-decoder attention of the trained translate model on the same sentence (appendix)",
        draw: attention_cross,
    },
];

/// The names of all figures.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|f| f.name)
}

/// Draws every figure: `(name, svg)` pairs.
///
/// # Errors
/// The first figure that fails, by name.
pub fn draw_all() -> Result<Vec<(&'static str, String)>, String> {
    ALL.iter()
        .map(|f| {
            (f.draw)()
                .map(|svg| (f.name, svg))
                .map_err(|e| format!("figure {}: {e}", f.name))
        })
        .collect()
}

type DrawResult = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const FONT: &str = "sans-serif";
/// Line colours, distinguishable in colour and in grey.
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Runs a plotters drawing on a white canvas and returns the SVG.
fn plot(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn legend_style<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB::ErrorType: 'static,
{
    legend_at(chart, SeriesLabelPosition::UpperRight)
}

fn legend_at<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .position(position)
        .draw()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// §3.5 positional encoding

fn pe_curves() -> Result<String, String> {
    let (n, d_model) = (101, 128);
    let pe = sinusoidal::<f64>(n, d_model);
    // Sine columns from fast to slow. The encoding exists only at integer positions: the
    // fastest column (wavelength 2 pi) is drawn thin with a dot at each position.
    let columns = [0usize, 16, 32, 48];
    plot(720, 400, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), d_model = 128",
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..100f64, -1.15f64..2.1f64)?;
        chart
            .configure_mesh()
            .x_desc("position pos")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .y_desc("encoding")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        for (c, &col) in columns.iter().enumerate() {
            let color = PALETTE[c];
            let wavelength =
                2.0 * std::f64::consts::PI * 10000f64.powf(col as f64 / d_model as f64);
            let width = if c == 0 { 1 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    (0..n).map(|pos| (pos as f64, pe[(pos, col)])),
                    color.stroke_width(width),
                ))?
                .label(format!("column {col}: wavelength {wavelength:.1}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            if c == 0 {
                chart.draw_series(
                    (0..n).map(|pos| Circle::new((pos as f64, pe[(pos, col)]), 2, color.filled())),
                )?;
            }
        }
        legend_style(&mut chart)
    })
}

fn pe_heatmap() -> Result<String, String> {
    let (n, d_model) = (64, 64);
    let pe = sinusoidal::<f64>(n, d_model);
    let (left, top, cell) = (60.0, 40.0, 8.0);
    let (w, h) = (
        left + d_model as f64 * cell + 110.0,
        top + n as f64 * cell + 50.0,
    );
    let mut svg = Svg::new(
        w,
        h,
        "Sinusoidal positional encodings, 64 positions by 64 dimensions",
    );
    svg.text(
        w / 2.0,
        24.0,
        "PE(pos, j), d_model = 64: even j sine, odd j cosine",
        16.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    let cells = (0..n).flat_map(|pos| {
        let pe = &pe;
        (0..d_model).map(move |j| {
            (
                left + j as f64 * cell,
                top + pos as f64 * cell,
                cell,
                cell,
                svg::diverging(quantize(pe[(pos, j)], 32)),
            )
        })
    });
    svg.cells(cells);
    axis_ticks(&mut svg, left, top, cell, n, d_model, 8);
    svg.text(
        left + d_model as f64 * cell / 2.0,
        h - 12.0,
        "dimension j",
        14.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    svg.vertical_text(18.0, top + n as f64 * cell / 2.0, "position pos", 14.0);
    colour_bar(
        &mut svg,
        left + d_model as f64 * cell + 30.0,
        top,
        n as f64 * cell,
        (-1.0, 1.0),
        svg::diverging,
    );
    Ok(svg.finish())
}

/// Rounds v in [-1, 1] to one of `levels` steps per unit, so heatmaps share few colours.
fn quantize(v: f64, levels: u32) -> f64 {
    (v * levels as f64).round() / levels as f64
}

/// Tick labels every `every` cells along the top-left edges of a grid.
fn axis_ticks(
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
fn colour_bar(
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

fn format_tick(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------------------------
// §5.3 Eq. 3

fn lrate_curves() -> Result<String, String> {
    let settings = [
        (512usize, 4000usize),
        (512, 8000),
        (256, 4000),
        (1024, 4000),
    ];
    let steps: Vec<usize> = (1..=400).map(|s| s * 100).collect();
    let peak = settings
        .iter()
        .map(|&(d, w)| lrate(d, w, w))
        .fold(0.0, f64::max);
    plot(720, 380, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)",
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..40_000f64, 0f64..peak * 1.1e3)?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("learning rate (× 10^-3)")
            .x_label_formatter(&|x| format!("{}k", (x / 1000.0).round()))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        for (c, &(d_model, warmup)) in settings.iter().enumerate() {
            let color = PALETTE[c];
            let label = if (d_model, warmup) == (512, 4000) {
                format!("d_model = {d_model}, warmup = {warmup} (base)")
            } else {
                format!("d_model = {d_model}, warmup = {warmup}")
            };
            let points = std::iter::once((0.0, 0.0)).chain(
                steps
                    .iter()
                    .map(|&s| (s as f64, lrate(d_model, warmup, s) * 1e3)),
            );
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend_style(&mut chart)
    })
}

// ---------------------------------------------------------------------------------------------
// §3.2.1 footnote 4 and the scale

const WIDTHS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

fn dot_variance() -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(4);
    let samples = 4000;
    let measured: Vec<(f64, f64)> = WIDTHS
        .iter()
        .map(|&d_k| {
            let (_, variance) = dot_product_moments(d_k, samples, &mut rng);
            (d_k as f64, variance)
        })
        .collect();
    plot(720, 400, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Footnote 4: Var(q · k) = d_k  (4000 samples per point)",
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0.8f64..700f64).log_scale(), (0.3f64..900f64).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("d_k")
            .y_desc("variance")
            .x_label_formatter(&|x| format!("{x}"))
            .y_label_formatter(&|y| format!("{y}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        let line = PALETTE[0];
        chart
            .draw_series(LineSeries::new(
                [(0.8, 0.8), (700.0, 700.0)],
                line.stroke_width(2),
            ))?
            .label("prediction: variance = d_k")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(2))
            });
        let dots = PALETTE[1];
        chart
            .draw_series(
                measured
                    .iter()
                    .map(|&(x, v)| Circle::new((x, v), 5, dots.filled())),
            )?
            .label("sample variance of q · k")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, dots.filled()));
        let scaled = PALETTE[2];
        chart.draw_series(LineSeries::new(
            [(0.8, 1.0), (700.0, 1.0)],
            scaled.stroke_width(1),
        ))?;
        chart
            .draw_series(
                measured
                    .iter()
                    .map(|&(x, v)| TriangleMarker::new((x, v / x), 6, scaled.filled())),
            )?
            .label("sample variance of q · k / sqrt(d_k): stays 1")
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, scaled.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, 14))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    })
}

/// Vectors with independent components of mean 0 and variance 1, as in footnote 4.
fn unit_variance(rows: usize, cols: usize, rng: &mut StdRng) -> DMatrix<f64> {
    let a = 3f64.sqrt();
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-a..=a))
}

fn softmax_saturation() -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(42);
    let (keys, trials) = (16usize, 200usize);
    let mut scaled = Vec::new();
    let mut unscaled = Vec::new();
    for &d_k in &WIDTHS {
        let (mut s, mut u) = (0.0, 0.0);
        for _ in 0..trials {
            let q = unit_variance(1, d_k, &mut rng);
            let k = unit_variance(keys, d_k, &mut rng);
            let v = DMatrix::zeros(keys, 1);
            let with_scale = scaled_dot_product_attention(&q, &k, &v, None);
            // Multiplying q by sqrt(d_k) cancels the division: softmax(q k^T).
            let q_raw = &q * (d_k as f64).sqrt();
            let without_scale = scaled_dot_product_attention(&q_raw, &k, &v, None);
            s += with_scale.weights.max();
            u += without_scale.weights.max();
        }
        scaled.push((d_k as f64, s / trials as f64));
        unscaled.push((d_k as f64, u / trials as f64));
    }
    plot(720, 380, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Largest of {keys} attention weights (mean of {trials} random queries)"),
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0.8f64..700f64).log_scale(), 0f64..1.05f64)?;
        chart
            .configure_mesh()
            .x_desc("d_k")
            .y_desc("largest weight")
            .x_label_formatter(&|x| format!("{x}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        let series = [
            (
                &unscaled,
                PALETTE[1],
                "softmax(q · k): saturates towards one key",
            ),
            (
                &scaled,
                PALETTE[0],
                "softmax(q · k / sqrt(d_k)): the paper's scale",
            ),
        ];
        for (points, color, label) in series {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        let uniform = 1.0 / keys as f64;
        chart
            .draw_series(LineSeries::new(
                [(0.8, uniform), (700.0, uniform)],
                BLACK.mix(0.5).stroke_width(1),
            ))?
            .label(format!("uniform weights: 1/{keys}"))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5).stroke_width(1))
            });
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, 14))
            .position(SeriesLabelPosition::MiddleRight)
            .draw()?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// §3.2.3 masks, §3.2.2 heads

/// Draws an (n, m) matrix as a grid of cells with optional numbers, and returns nothing.
#[allow(clippy::too_many_arguments)]
fn grid(
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
        svg.text(
            left - 6.0,
            top + (i as f64 + 0.5) * cell + 4.0,
            label,
            12.0,
            Anchor::End,
            TextStyle::PLAIN,
        );
    }
    for (j, label) in col_labels.iter().enumerate() {
        svg.text(
            left + (j as f64 + 0.5) * cell,
            top - 6.0,
            label,
            12.0,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
    }
}

fn causal_mask() -> Result<String, String> {
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
        for i in 0..n {
            for j in 0..n {
                let (x0, y0) = (left + j as f64 * cell, top + i as f64 * cell);
                let allowed = mask.allows(i, j);
                let (fill, text, style) = match panel {
                    0 => (
                        svg::diverging(scores[(i, j)] / 4.0),
                        format!("{:.1}", scores[(i, j)]),
                        TextStyle::PLAIN,
                    ),
                    1 if !allowed => ("#d9d9d9".to_string(), "-inf".to_string(), TextStyle::MUTED),
                    1 => (
                        svg::diverging(scores[(i, j)] / 4.0),
                        format!("{:.1}", scores[(i, j)]),
                        TextStyle::PLAIN,
                    ),
                    _ => {
                        let w = a.weights[(i, j)];
                        let style = if svg::dark(w) {
                            TextStyle::WHITE
                        } else {
                            TextStyle::PLAIN
                        };
                        (
                            svg::sequential(w),
                            if w == 0.0 {
                                "0".to_string()
                            } else {
                                format!("{w:.2}")
                            },
                            style,
                        )
                    }
                };
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
            svg.text(
                left - 6.0,
                top + (i as f64 + 0.5) * cell + 4.0,
                tokens[i],
                13.0,
                Anchor::End,
                TextStyle::PLAIN,
            );
        }
        for (j, token) in tokens.iter().enumerate() {
            svg.text(
                left + (j as f64 + 0.5) * cell,
                top - 8.0,
                token,
                13.0,
                Anchor::Middle,
                TextStyle::PLAIN,
            );
        }
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

fn attention_heatmap() -> Result<String, String> {
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

// ---------------------------------------------------------------------------------------------
// §5.4 label smoothing

fn label_smoothing() -> Result<String, String> {
    let (vocab, target, eps) = (8usize, 2usize, 0.1);
    let q = smoothed_targets::<f64>(&[target], vocab, eps, Spread::AllClasses);
    let (left, top, plot_h, bar) = (70.0, 50.0, 260.0, 56.0);
    let width = left + vocab as f64 * bar + 40.0;
    let height = top + plot_h + 70.0;
    let mut svg = Svg::new(width, height, "Label-smoothed target distribution");
    svg.text(
        width / 2.0,
        26.0,
        &format!("Target token {target} of {vocab}, eps_ls = {eps}: one-hot (outline) and smoothed (filled)"),
        14.0,
        Anchor::Middle,
        TextStyle::BOLD,
    );
    let y_of = |p: f64| top + plot_h * (1.0 - p);
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        svg.line(
            left,
            y_of(tick),
            left + vocab as f64 * bar,
            y_of(tick),
            "#e5e5e5",
            1.0,
        );
        svg.text(
            left - 8.0,
            y_of(tick) + 4.0,
            &format!("{tick:.2}"),
            11.0,
            Anchor::End,
            TextStyle::PLAIN,
        );
    }
    for j in 0..vocab {
        let x = left + j as f64 * bar;
        let p = q[(0, j)];
        svg.rect(
            x + 8.0,
            y_of(p),
            bar - 16.0,
            plot_h * p,
            "#2171b5",
            None,
            0.0,
        );
        let one_hot = if j == target { 1.0 } else { 0.0 };
        if one_hot > 0.0 {
            svg.rect(
                x + 4.0,
                y_of(one_hot),
                bar - 8.0,
                plot_h * one_hot,
                "none",
                Some("#d62728"),
                0.0,
            );
        }
        svg.text(
            x + bar / 2.0,
            y_of(p) - 6.0,
            &format!("{p:.4}"),
            11.0,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
        svg.text(
            x + bar / 2.0,
            top + plot_h + 16.0,
            &j.to_string(),
            12.0,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
    }
    svg.line(
        left,
        top + plot_h,
        left + vocab as f64 * bar,
        top + plot_h,
        "#444444",
        1.2,
    );
    svg.text(
        left + vocab as f64 * bar / 2.0,
        top + plot_h + 36.0,
        "vocabulary entry",
        13.0,
        Anchor::Middle,
        TextStyle::PLAIN,
    );
    svg.text(
        left + vocab as f64 * bar / 2.0,
        height - 10.0,
        &format!("1 - eps + eps/V = {:.4} on the target, eps/V = {:.4} elsewhere (eps spread over all V classes)", 1.0 - eps + eps / vocab as f64, eps / vocab as f64),
        12.0,
        Anchor::Middle,
        TextStyle::MUTED,
    );
    svg.vertical_text(18.0, top + plot_h / 2.0, "target probability", 13.0);
    Ok(svg.finish())
}

// ---------------------------------------------------------------------------------------------
// §3 the data flow

/// A labelled box of the diagram.
struct Block {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Block {
    fn top(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y)
    }
    fn bottom(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h)
    }
}

fn block(svg: &mut Svg, x: f64, y: f64, w: f64, h: f64, fill: &str, lines: &[&str]) -> Block {
    svg.rect(x, y, w, h, fill, Some("#333333"), 6.0);
    let first = y + h / 2.0 - (lines.len() as f64 - 1.0) * 8.0 + 5.0;
    for (i, line) in lines.iter().enumerate() {
        svg.text(
            x + w / 2.0,
            first + i as f64 * 16.0,
            line,
            13.5,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
    }
    Block { x, y, w, h }
}

fn data_flow() -> Result<String, String> {
    const ATTENTION: &str = "#fde0c5";
    const FFN: &str = "#cfe8f3";
    const NORM: &str = "#fff7bc";
    const EMBED: &str = "#f2d7ee";
    const OUTPUT: &str = "#d9f0d3";
    const ARROW: &str = "#333333";
    let (width, height) = (760.0, 900.0);
    let mut svg = Svg::new(
        width,
        height,
        "The Transformer's data flow: encoder and decoder stacks",
    );
    svg.text(
        width / 2.0,
        28.0,
        "The Transformer (§3): data flows upwards",
        17.0,
        Anchor::Middle,
        TextStyle::BOLD,
    );
    let w = 250.0;
    let (enc_x, dec_x) = (60.0, 440.0);
    let bh = 36.0;

    // Inputs, embeddings and positional encodings, at the bottom.
    let src = block(
        &mut svg,
        enc_x,
        836.0,
        w,
        bh,
        "#ffffff",
        &["inputs (source tokens)"],
    );
    let tgt = block(
        &mut svg,
        dec_x,
        836.0,
        w,
        bh,
        "#ffffff",
        &["outputs, shifted right (target tokens)"],
    );
    let src_emb = block(
        &mut svg,
        enc_x,
        770.0,
        w,
        40.0,
        EMBED,
        &["input embedding × sqrt(d_model)"],
    );
    let tgt_emb = block(
        &mut svg,
        dec_x,
        770.0,
        w,
        40.0,
        EMBED,
        &["output embedding × sqrt(d_model)"],
    );
    svg.arrow(&[src.top(), src_emb.bottom()], ARROW);
    svg.arrow(&[tgt.top(), tgt_emb.bottom()], ARROW);
    // The sum with the positional encoding.
    let plus = |svg: &mut Svg, cx: f64, cy: f64| {
        svg.circle(cx, cy, 11.0, "#ffffff", "#333333");
        svg.line(cx - 6.0, cy, cx + 6.0, cy, "#333333", 1.6);
        svg.line(cx, cy - 6.0, cx, cy + 6.0, "#333333", 1.6);
    };
    let sum_y = 728.0;
    for (emb, label_x, anchor) in [
        (&src_emb, enc_x - 8.0, Anchor::End),
        (&tgt_emb, dec_x + w + 8.0, Anchor::Start),
    ] {
        let (cx, _) = emb.top();
        plus(&mut svg, cx, sum_y);
        svg.arrow(&[emb.top(), (cx, sum_y + 11.0)], ARROW);
        // The positional encoding enters from the side.
        let side = if anchor == Anchor::End {
            cx - 70.0
        } else {
            cx + 70.0
        };
        svg.circle(side, sum_y, 15.0, "#ffffff", "#333333");
        svg.text(
            side,
            sum_y + 5.0,
            "~",
            18.0,
            Anchor::Middle,
            TextStyle::PLAIN,
        );
        let edge = if anchor == Anchor::End {
            cx - 11.0
        } else {
            cx + 11.0
        };
        let from = if anchor == Anchor::End {
            side + 15.0
        } else {
            side - 15.0
        };
        svg.arrow(&[(from, sum_y), (edge, sum_y)], ARROW);
        let text_x = if anchor == Anchor::End {
            side - 20.0
        } else {
            side + 20.0
        };
        let _ = label_x;
        svg.text(
            text_x,
            sum_y - 2.0,
            "positional",
            12.0,
            anchor,
            TextStyle::MUTED,
        );
        svg.text(
            text_x,
            sum_y + 12.0,
            "encoding",
            12.0,
            anchor,
            TextStyle::MUTED,
        );
    }

    // The encoder stack: N x (self-attention, add & norm, FFN, add & norm).
    let enc_top = 400.0;
    let enc_bottom = 690.0;
    svg.rect(
        enc_x - 18.0,
        enc_top,
        w + 36.0,
        enc_bottom - enc_top,
        "#f4f4f4",
        Some("#777777"),
        10.0,
    );
    svg.vertical_text(
        enc_x - 30.0,
        (enc_top + enc_bottom) / 2.0,
        "encoder: N × this layer (N = 6)",
        14.0,
    );
    let e_attn = block(
        &mut svg,
        enc_x,
        620.0,
        w,
        44.0,
        ATTENTION,
        &["multi-head self-attention", "(Q = K = V = x)"],
    );
    let e_norm1 = block(&mut svg, enc_x, 566.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let e_ffn = block(
        &mut svg,
        enc_x,
        490.0,
        w,
        44.0,
        FFN,
        &["position-wise feed-forward", "max(0, xW1 + b1)W2 + b2"],
    );
    let e_norm2 = block(&mut svg, enc_x, 430.0, w, 30.0, NORM, &["add & LayerNorm"]);
    svg.arrow(&[(enc_x + w / 2.0, sum_y - 11.0), e_attn.bottom()], ARROW);
    svg.arrow(&[e_attn.top(), e_norm1.bottom()], ARROW);
    svg.arrow(&[e_norm1.top(), e_ffn.bottom()], ARROW);
    svg.arrow(&[e_ffn.top(), e_norm2.bottom()], ARROW);
    // Residual connections around each sub-layer.
    let residual = |svg: &mut Svg, x: f64, from_y: f64, to_y: f64| {
        svg.arrow(
            &[
                (x + w / 2.0, from_y),
                (x - 10.0, from_y),
                (x - 10.0, to_y),
                (x, to_y),
            ],
            "#888888",
        );
    };
    residual(&mut svg, enc_x, 680.0, e_norm1.y + 15.0);
    residual(&mut svg, enc_x, 552.0, e_norm2.y + 15.0);

    // The decoder stack: N x (masked self-attention, cross-attention, FFN), each with add & norm.
    let dec_top = 252.0;
    let dec_bottom = 690.0;
    svg.rect(
        dec_x - 18.0,
        dec_top,
        w + 36.0,
        dec_bottom - dec_top,
        "#f4f4f4",
        Some("#777777"),
        10.0,
    );
    svg.vertical_text(
        dec_x + w + 34.0,
        (dec_top + dec_bottom) / 2.0,
        "decoder: N × this layer (N = 6)",
        14.0,
    );
    let d_attn = block(
        &mut svg,
        dec_x,
        620.0,
        w,
        44.0,
        ATTENTION,
        &[
            "masked multi-head self-attention",
            "(position i sees positions ≤ i)",
        ],
    );
    let d_norm1 = block(&mut svg, dec_x, 566.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let d_cross = block(
        &mut svg,
        dec_x,
        476.0,
        w,
        60.0,
        ATTENTION,
        &[
            "multi-head cross-attention",
            "Q from the decoder,",
            "K = V = encoder output",
        ],
    );
    let d_norm2 = block(&mut svg, dec_x, 416.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let d_ffn = block(
        &mut svg,
        dec_x,
        330.0,
        w,
        44.0,
        FFN,
        &["position-wise feed-forward", "max(0, xW1 + b1)W2 + b2"],
    );
    let d_norm3 = block(&mut svg, dec_x, 270.0, w, 30.0, NORM, &["add & LayerNorm"]);
    svg.arrow(&[(dec_x + w / 2.0, sum_y - 11.0), d_attn.bottom()], ARROW);
    svg.arrow(&[d_attn.top(), d_norm1.bottom()], ARROW);
    svg.arrow(&[d_norm1.top(), d_cross.bottom()], ARROW);
    svg.arrow(&[d_cross.top(), d_norm2.bottom()], ARROW);
    svg.arrow(&[d_norm2.top(), d_ffn.bottom()], ARROW);
    svg.arrow(&[d_ffn.top(), d_norm3.bottom()], ARROW);
    let residual_right = |svg: &mut Svg, x: f64, from_y: f64, to_y: f64| {
        svg.arrow(
            &[
                (x + w / 2.0, from_y),
                (x + w + 10.0, from_y),
                (x + w + 10.0, to_y),
                (x + w, to_y),
            ],
            "#888888",
        );
    };
    residual_right(&mut svg, dec_x, 680.0, d_norm1.y + 15.0);
    residual_right(&mut svg, dec_x, 552.0, d_norm2.y + 15.0);
    residual_right(&mut svg, dec_x, 392.0, d_norm3.y + 15.0);

    // Encoder output to every decoder layer's cross-attention.
    let (ex, ey) = e_norm2.top();
    svg.arrow(
        &[
            (ex, ey),
            (ex, 360.0),
            (dec_x - 40.0, 360.0),
            (dec_x - 40.0, 506.0),
            (dec_x, 506.0),
        ],
        "#c0504d",
    );
    svg.text(
        ex + 8.0,
        352.0,
        "encoder output (K, V)",
        12.5,
        Anchor::Start,
        TextStyle::MUTED,
    );

    // Output head.
    let linear = block(
        &mut svg,
        dec_x,
        140.0,
        w,
        44.0,
        OUTPUT,
        &["linear: logits = y E^T", "(E: the shared embedding matrix)"],
    );
    let softmax = block(&mut svg, dec_x, 84.0, w, 32.0, OUTPUT, &["softmax"]);
    svg.arrow(&[d_norm3.top(), linear.bottom()], ARROW);
    svg.arrow(&[linear.top(), softmax.bottom()], ARROW);
    svg.text(
        dec_x + w / 2.0,
        62.0,
        "output probabilities (next token)",
        13.5,
        Anchor::Middle,
        TextStyle::BOLD,
    );
    svg.arrow(&[softmax.top(), (dec_x + w / 2.0, 68.0)], ARROW);

    // Legend.
    let legend = [
        (ATTENTION, "attention (§3.2)"),
        (FFN, "feed-forward (§3.3)"),
        (NORM, "residual + LayerNorm (§3.1)"),
        (EMBED, "embeddings (§3.4)"),
        (OUTPUT, "generator (§3.4)"),
    ];
    for (i, (fill, label)) in legend.iter().enumerate() {
        let y = 80.0 + i as f64 * 26.0;
        svg.rect(60.0, y, 18.0, 18.0, fill, Some("#333333"), 3.0);
        svg.text(86.0, y + 14.0, label, 13.0, Anchor::Start, TextStyle::PLAIN);
    }
    svg.text(
        60.0,
        80.0 + 5.0 * 26.0 + 14.0,
        "grey arrows: residual connections",
        13.0,
        Anchor::Start,
        TextStyle::MUTED,
    );
    Ok(svg.finish())
}

// ---------------------------------------------------------------------------------------------
// §5 training runs, from the logs committed under book/runs/

/// One row of a training log: step, loss, and the held-out exact match and token accuracy
/// where the row was evaluated.
struct LogRow {
    step: f64,
    loss: f64,
    held_out: Option<(f64, f64)>,
}

/// Reads the CSV that `aiayn train` writes (columns named in its header).
fn read_log(csv: &str) -> Result<Vec<LogRow>, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().ok_or("an empty log")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("the log has no column {name}"))
    };
    let (step, loss, exact, tokens) = (
        col("step")?,
        col("loss")?,
        col("heldout_exact_match")?,
        col("heldout_token_accuracy")?,
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |c: usize| -> Result<f64, String> {
                f.get(c).and_then(|v| v.parse().ok()).ok_or(format!(
                    "line {}: column {} is not a number",
                    i + 2,
                    header[c]
                ))
            };
            let held_out = match f.get(exact) {
                Some(v) if !v.is_empty() => Some((num(exact)?, num(tokens)?)),
                _ => None,
            };
            Ok(LogRow {
                step: num(step)?,
                loss: num(loss)?,
                held_out,
            })
        })
        .collect()
}

fn training_copy() -> Result<String, String> {
    training_curves(include_str!("../../book/runs/copy.csv"), "copy")
}

fn training_translate() -> Result<String, String> {
    training_curves(include_str!("../../book/runs/translate.csv"), "translate")
}

/// Two panels: the training loss by step, and the held-out exact match and token accuracy.
fn training_curves(csv: &str, task: &str) -> Result<String, String> {
    let rows = read_log(csv)?;
    let last = rows.last().ok_or("a log with no steps")?.step;
    let max_loss = rows.iter().map(|r| r.loss).fold(0.0, f64::max);
    plot(720, 520, |root| {
        let (top, bottom) = root.split_vertically(260);
        let mut loss = ChartBuilder::on(&top)
            .caption(
                format!("{task}: training loss (label-smoothed, per token)"),
                (FONT, 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..last, 0f64..max_loss * 1.05)?;
        loss.configure_mesh()
            .y_desc("loss (nats)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        loss.draw_series(LineSeries::new(
            rows.iter().map(|r| (r.step, r.loss)),
            PALETTE[0].stroke_width(1),
        ))?;
        let mut acc = ChartBuilder::on(&bottom)
            .caption(format!("{task}: held-out pairs"), (FONT, 16))
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..last, 0f64..100f64)?;
        acc.configure_mesh()
            .x_desc("training step")
            .y_desc("%")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        let evaluated: Vec<(f64, (f64, f64))> = rows
            .iter()
            .filter_map(|r| r.held_out.map(|h| (r.step, h)))
            .collect();
        for (c, (label, pick)) in [
            ("exact match (greedy)", 0usize),
            ("token accuracy (teacher forcing)", 1),
        ]
        .into_iter()
        .enumerate()
        {
            let color = PALETTE[c + 1];
            let points: Vec<(f64, f64)> = evaluated
                .iter()
                .map(|&(s, (e, t))| (s, 100.0 * if pick == 0 { e } else { t }))
                .collect();
            acc.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            acc.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        legend_at(&mut acc, SeriesLabelPosition::LowerRight)
    })
}

// ---------------------------------------------------------------------------------------------
// §4 Table 1, from the timing run committed under book/runs/

/// Times against n on log-log axes (log2 n across, log10 milliseconds up), one line per layer,
/// a dashed line at n = d where the paper's counts for attention and recurrence cross.
fn table1_timing() -> Result<String, String> {
    let run: serde_json::Value = serde_json::from_str(include_str!("../../book/runs/table1.json"))
        .map_err(|e| format!("book/runs/table1.json: {e}"))?;
    let d = run["d"].as_f64().ok_or("the run has no d")?;
    let rows = run["rows"].as_array().ok_or("the run has no rows")?;
    let kinds = [
        ("self_attention_s", "self-attention"),
        ("recurrent_s", "recurrent"),
        ("convolutional_s", "convolutional (k = 3)"),
        (
            "restricted_self_attention_s",
            "restricted self-attention (r = 32)",
        ),
    ];
    let mut series = Vec::new();
    for (key, label) in kinds {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| {
                let n = r["n"].as_f64().ok_or("a row without n")?;
                let s = r[key].as_f64().ok_or(format!("a row without {key}"))?;
                Ok((n.log2(), (s * 1e3).log10()))
            })
            .collect::<Result<_, String>>()?;
        series.push((label, points));
    }
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (x_lo, x_hi) = all
        .clone()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y_lo, y_hi) = all.fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (y_lo, y_hi) = (y_lo.floor(), y_hi.ceil());
    plot(720, 440, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("one forward pass, f32, one thread, d = {d}"),
                (FONT, 16),
            )
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo - 0.2..x_hi + 0.2, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("sequence length n")
            .y_desc("milliseconds")
            .x_labels((x_hi - x_lo) as usize + 1)
            .y_labels((y_hi - y_lo) as usize + 1)
            .x_label_formatter(&|x| format!("{:.0}", 2f64.powf(*x)))
            .y_label_formatter(&|y| format_tick(10f64.powf(*y)))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        let x_d = d.log2();
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_d, y_lo), (x_d, y_hi)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?
            .label("n = d")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        for (c, (label, points)) in series.into_iter().enumerate() {
            let color = PALETTE[c];
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        legend_at(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

// ---------------------------------------------------------------------------------------------
// Appendix: attention maps of the trained translate model

/// Which attention of the model a figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Encoder,
    Decoder,
    Cross,
}

fn attention_encoder() -> Result<String, String> {
    trained_maps(Kind::Encoder)
}

fn attention_decoder() -> Result<String, String> {
    trained_maps(Kind::Decoder)
}

fn attention_cross() -> Result<String, String> {
    trained_maps(Kind::Cross)
}

/// Every layer (rows of panels) and head (columns) of one kind of attention, for the first of
/// the appendix's held-out sentences.
fn trained_maps(kind: Kind) -> Result<String, String> {
    let m = super::appendix::material()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_draws_a_deterministic_svg() {
        for figure in ALL {
            let a = (figure.draw)().unwrap();
            let b = (figure.draw)().unwrap();
            assert!(a.contains("<svg"), "{}", figure.name);
            assert_eq!(a, b, "{} differs between two draws", figure.name);
        }
    }

    #[test]
    fn figure_names_are_unique_file_names() {
        let mut names: Vec<_> = names().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
    }
}
