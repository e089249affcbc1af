//! §3.2.1, footnote 4 and the scale 1/sqrt(d_k): the variance of q.k against d_k, and how
//! the largest softmax weight saturates without the scale.

use nalgebra::DMatrix;
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::plot::{plot, FONT, PALETTE};
use crate::attention::{dot_product_moments, scaled_dot_product_attention};

const WIDTHS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

pub(super) fn dot_variance() -> Result<String, String> {
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
pub(super) fn unit_variance(rows: usize, cols: usize, rng: &mut StdRng) -> DMatrix<f64> {
    let a = 3f64.sqrt();
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-a..=a))
}

pub(super) fn softmax_saturation() -> Result<String, String> {
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
