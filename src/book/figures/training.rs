//! §5: the learning-rate schedule of Eq. 3, the label-smoothed targets (§5.4), and the
//! training runs' curves from the logs committed under `book/runs/`.

use plotters::prelude::*;

use super::plot::{legend_at, legend_style, plot, FONT, PALETTE};
use crate::book::svg::{Anchor, Svg, TextStyle};
use crate::train::label_smoothing::{smoothed_targets, Spread};
use crate::train::schedule::lrate;

pub(super) fn lrate_curves() -> Result<String, String> {
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

pub(super) fn label_smoothing() -> Result<String, String> {
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
        draw_bar(
            &mut svg,
            (left, top, plot_h, bar),
            j,
            q[(0, j)],
            j == target,
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

/// Bar j of the label-smoothing figure: the smoothed probability p filled, the one-hot target
/// outlined, the value above and the index below; `(left, top, plot_h, bar)` place the plot.
fn draw_bar(
    svg: &mut Svg,
    (left, top, plot_h, bar): (f64, f64, f64, f64),
    j: usize,
    p: f64,
    is_target: bool,
) {
    let y_of = |p: f64| top + plot_h * (1.0 - p);
    let x = left + j as f64 * bar;
    svg.rect(
        x + 8.0,
        y_of(p),
        bar - 16.0,
        plot_h * p,
        "#2171b5",
        None,
        0.0,
    );
    let one_hot = if is_target { 1.0 } else { 0.0 };
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

pub(super) fn training_copy() -> Result<String, String> {
    training_curves(include_str!("../../../book/runs/copy.csv"), "copy")
}

pub(super) fn training_translate() -> Result<String, String> {
    training_curves(
        include_str!("../../../book/runs/translate.csv"),
        "translate",
    )
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
