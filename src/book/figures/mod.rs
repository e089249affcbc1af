//! The book's figures, drawn as SVG by calling the library when the book is built.
//!
//! Plots with axes use plotters' SVG backend (no C libraries, no system fonts: it writes
//! `<text>` elements and lets the browser choose the face); grids and the data-flow diagram use
//! the small writer in [`super::svg`]. Every random draw is seeded, so the files are the same
//! on every build. A chapter shows a figure as `![what it shows](figures/NAME.svg)`.

mod attention;
mod data_flow;
mod grid;
mod plot;
mod positional;
mod scale;
mod timing;
mod trained;
mod training;

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
        draw: data_flow::data_flow,
    },
    Figure {
        name: "pe-curves",
        about: "sinusoidal positional encodings of a few dimensions against position (§3.5)",
        draw: positional::pe_curves,
    },
    Figure {
        name: "pe-heatmap",
        about: "sinusoidal positional encodings, positions by dimensions (§3.5)",
        draw: positional::pe_heatmap,
    },
    Figure {
        name: "lrate",
        about: "the learning-rate schedule of Eq. 3 for several d_model and warmup_steps (§5.3)",
        draw: training::lrate_curves,
    },
    Figure {
        name: "dot-variance",
        about: "footnote 4: the sample variance of q.k against d_k (§3.2.1)",
        draw: scale::dot_variance,
    },
    Figure {
        name: "softmax-saturation",
        about: "the largest softmax weight against d_k, with and without the 1/sqrt(d_k) scale (§3.2.1)",
        draw: scale::softmax_saturation,
    },
    Figure {
        name: "causal-mask",
        about: "the causal mask and the attention weights it leaves (§3.2.3)",
        draw: attention::causal_mask,
    },
    Figure {
        name: "attention-heatmap",
        about: "per-head weights of an untrained multi-head self-attention (§3.2.2)",
        draw: attention::attention_heatmap,
    },
    Figure {
        name: "label-smoothing",
        about: "the label-smoothed target distribution (§5.4)",
        draw: training::label_smoothing,
    },
    Figure {
        name: "training-copy",
        about: "the loss and held-out exact match of the book's copy run (§5), from its committed log",
        draw: training::training_copy,
    },
    Figure {
        name: "training-translate",
        about: "the loss and held-out exact match of the book's translate run (§5), from its committed log",
        draw: training::training_translate,
    },
    Figure {
        name: "layer-timing",
        about: "Table 1 measured: forward-pass time of each layer against n at d = 512 (§4), from its committed run",
        draw: timing::table1_timing,
    },
    Figure {
        name: "attention-encoder",
        about: "encoder self-attention of the trained translate model on a held-out sentence, every layer and head (appendix)",
        draw: trained::attention_encoder,
    },
    Figure {
        name: "attention-decoder",
        about: "masked decoder self-attention of the trained translate model on the same sentence (appendix)",
        draw: trained::attention_decoder,
    },
    Figure {
        name: "attention-cross",
        about: "encoder-decoder attention of the trained translate model on the same sentence (appendix)",
        draw: trained::attention_cross,
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
