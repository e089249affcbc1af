//! The appendix's material: attention weights of the book's trained `translate` model
//! (`book/runs/translate-model.safetensors`, see the training chapter) on a few held-out
//! sentences, for the appendix figures and the attention explorer.
//!
//! The sentences are chosen by a fixed rule, not by looking at the maps: in the order of the
//! held-out set, the first ones of 6 to 10 words, with one clause, a transitive verb (whose
//! translation moves to the end of the clause), and a greedy translation equal to the
//! reference. Everything is a function of the committed checkpoint and the task's seed, so
//! the figures and the data file are the same on every build.
//!
//! The explorer's data file, [`DATA_FILE`], is a script that assigns one JSON object to
//! `window.aiaynAttention` (a script rather than a `.json` file so that it also loads when the
//! book is opened from the disk, where a page may not fetch files). Its fields:
//!
//! ```text
//! { "model": "...", "layers": N, "heads": h, "decimals": 3,
//!   "sentences": [ { "source": [words], "target": ["<s>", words...], "translation": "...",
//!                    "encoder": [layer][head][query][key],      (n_s, n_s)
//!                    "decoder": [layer][head][query][key],      (n_t, n_t), causal
//!                    "cross":   [layer][head][query][key] } ] } (n_t, n_s)
//! ```
//!
//! Weights are rounded to [`DECIMALS`] decimals.

use std::path::PathBuf;
use std::sync::OnceLock;

use nalgebra::DMatrix;
use serde_json::{json, Value};

use crate::decode::greedy;
use crate::model::{AttentionWeights, Transformer};
use crate::train::state::load_model;
use crate::train::tasks::{Task, BOS, EOS, TRANSITIVE_VERBS};

/// The trained model, relative to the crate root.
pub const MODEL: &str = "book/runs/translate-model.safetensors";
/// The explorer's data file, written next to the figures.
pub const DATA_FILE: &str = "attention-explorer-data.js";
/// The variable the data file assigns.
pub const DATA_VARIABLE: &str = "window.aiaynAttention";
/// Decimals kept in the data file.
pub const DECIMALS: i32 = 3;
/// How many held-out sentences the explorer offers.
pub const SENTENCES: usize = 5;

/// One held-out sentence and every attention weight of the model on it.
#[derive(Clone, Debug)]
pub struct Example {
    /// Its index in the task's held-out set.
    pub index: usize,
    pub source: Vec<String>,
    /// The decoder's input: `<s>` and the reference translation (the rows of decoder maps).
    pub target: Vec<String>,
    pub src_ids: Vec<usize>,
    pub tgt_ids: Vec<usize>,
    /// `[layer][head]`, in f64 for drawing.
    pub weights: AttentionWeights<f64>,
}

/// The model, its description and the chosen sentences.
#[derive(Debug)]
pub struct Material {
    pub model: Transformer<f32>,
    pub task: Task,
    /// One line describing the model and the run, for captions.
    pub about: String,
    pub layers: usize,
    pub heads: usize,
    pub examples: Vec<Example>,
}

/// The material, computed once per process (the figures and the data file share it).
///
/// # Errors
/// A missing or unreadable checkpoint, or a checkpoint of another task.
pub fn material() -> Result<&'static Material, String> {
    static MATERIAL: OnceLock<Result<Material, String>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| compute(super::default_root().join(MODEL)))
        .as_ref()
        .map_err(Clone::clone)
}

fn to_f64(maps: &[Vec<DMatrix<f32>>]) -> Vec<Vec<DMatrix<f64>>> {
    maps.iter()
        .map(|layer| layer.iter().map(|w| w.map(f64::from)).collect())
        .collect()
}

/// True for the sentences the appendix shows (see the module documentation).
pub fn is_candidate(task: &Task, src: &[usize]) -> bool {
    let words: Vec<&str> = src.iter().map(|&id| task.vocab.word(id)).collect();
    let transitive = words
        .iter()
        .any(|w| TRANSITIVE_VERBS.iter().any(|v| v.0 == *w || v.1 == *w));
    (6..=10).contains(&words.len()) && transitive && !words.contains(&"and")
}

fn compute(path: PathBuf) -> Result<Material, String> {
    let (model, info, _) =
        load_model(&path).map_err(|e| format!("the appendix needs the trained model: {e}"))?;
    if info.task != "translate" {
        return Err(format!(
            "{} is a model of the {} task, the appendix expects translate",
            path.display(),
            info.task
        ));
    }
    let task = Task::by_name(&info.task, info.data_seed).map_err(|e| e.to_string())?;
    let c = &info.config;
    let about = format!(
        "the book's translate model (d_model {}, h {}, {} + {} layers, trained in §5)",
        c.d_model, c.h, c.n_layers, c.n_layers
    );
    let mut examples = Vec::new();
    for (index, pair) in task.held_out.iter().enumerate() {
        if examples.len() == SENTENCES {
            break;
        }
        if !is_candidate(&task, &pair.src) {
            continue;
        }
        if greedy(&model, &pair.src, BOS, EOS, pair.tgt.len() + 5) != pair.tgt {
            continue;
        }
        let tgt_ids: Vec<usize> = std::iter::once(BOS)
            .chain(pair.tgt.iter().copied())
            .collect();
        let w = model.attention_weights(&pair.src, &tgt_ids);
        let words = |ids: &[usize]| {
            ids.iter()
                .map(|&id| task.vocab.word(id).to_string())
                .collect()
        };
        examples.push(Example {
            index,
            source: words(&pair.src),
            target: words(&tgt_ids),
            src_ids: pair.src.clone(),
            tgt_ids,
            weights: AttentionWeights {
                encoder: to_f64(&w.encoder),
                decoder_self: to_f64(&w.decoder_self),
                cross: to_f64(&w.cross),
            },
        });
    }
    if examples.is_empty() {
        return Err("no held-out sentence fits the appendix's rule".to_string());
    }
    Ok(Material {
        layers: c.n_layers,
        heads: c.h,
        model,
        task,
        about,
        examples,
    })
}

/// A weight rounded to [`DECIMALS`] decimals.
pub fn round(x: f64) -> f64 {
    let scale = 10f64.powi(DECIMALS);
    let r = (x * scale).round() / scale;
    if r == 0.0 {
        0.0 // no "-0"
    } else {
        r
    }
}

fn maps_json(maps: &[Vec<DMatrix<f64>>]) -> Value {
    Value::Array(
        maps.iter()
            .map(|layer| {
                Value::Array(
                    layer
                        .iter()
                        .map(|w| {
                            Value::Array(
                                w.row_iter()
                                    .map(|row| row.iter().map(|&x| json!(round(x))).collect())
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// The explorer's data file (see the module documentation for its fields).
///
/// # Errors
/// As [`material`].
pub fn explorer_data() -> Result<String, String> {
    let m = material()?;
    let sentences: Vec<Value> = m
        .examples
        .iter()
        .map(|e| {
            json!({
                "heldOut": e.index,
                "source": e.source,
                "target": e.target,
                "translation": e.target[1..].join(" "),
                "encoder": maps_json(&e.weights.encoder),
                "decoder": maps_json(&e.weights.decoder_self),
                "cross": maps_json(&e.weights.cross),
            })
        })
        .collect();
    let data = json!({
        "model": m.about,
        "layers": m.layers,
        "heads": m.heads,
        "decimals": DECIMALS,
        "sentences": sentences,
    });
    Ok(format!("{DATA_VARIABLE} = {data};\n"))
}

/// The JSON object inside a data file written by [`explorer_data`].
///
/// # Errors
/// If the text is not `window.aiaynAttention = {...};`.
pub fn parse_explorer_data(text: &str) -> Result<Value, String> {
    let json = text
        .trim()
        .strip_prefix(DATA_VARIABLE)
        .and_then(|s| s.trim_start().strip_prefix('='))
        .and_then(|s| s.trim_end().strip_suffix(';'))
        .ok_or_else(|| format!("not of the form `{DATA_VARIABLE} = {{...}};`"))?;
    serde_json::from_str(json).map_err(|e| e.to_string())
}
