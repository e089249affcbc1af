//! §4 Table 1 measured: forward-pass times of each layer against n, from the timing run
//! committed under `book/runs/`.

use plotters::prelude::*;

use super::grid::format_tick;
use super::plot::{legend_at, plot, FONT, PALETTE};

/// Times against n on log-log axes (log2 n across, log10 milliseconds up), one line per layer,
/// a dashed line at n = d where the paper's counts for attention and recurrence cross.
pub(super) fn table1_timing() -> Result<String, String> {
    let run: serde_json::Value =
        serde_json::from_str(include_str!("../../../book/runs/table1.json"))
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
