//! §3.5: the sinusoidal positional encodings, as curves and as a heatmap.

use plotters::prelude::*;

use super::grid::{axis_ticks, colour_bar, quantize};
use super::plot::{legend_style, plot, FONT, PALETTE};
use crate::book::svg::{self, Anchor, Svg, TextStyle};
use crate::positional::sinusoidal;

pub(super) fn pe_curves() -> Result<String, String> {
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

pub(super) fn pe_heatmap() -> Result<String, String> {
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
