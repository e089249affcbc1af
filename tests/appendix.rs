//! The appendix: the attention explorer's data file holds the trained model's attention
//! weights, recomputed here layer by layer with the library, for the same sentences.

#![cfg(feature = "book")]

use aiayn::book::appendix::{self, DECIMALS};
use aiayn::mask::Mask;
use aiayn::train::state::load_model;
use aiayn::train::tasks::{Task, BOS};
use nalgebra::DMatrix;
use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `[layer][head][row][col]` JSON with the library's matrices, within the rounding.
fn assert_maps(what: &str, json: &Value, maps: &[Vec<DMatrix<f32>>], shape: (usize, usize)) {
    // Rounding to DECIMALS decimals moves a weight by at most half a unit in the last place;
    // the f32 weights printed through f64 add nothing visible at that scale.
    let tolerance = 0.5 * 10f64.powi(-DECIMALS) + 1e-9;
    let layers = json
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not an array"));
    assert_eq!(layers.len(), maps.len(), "{what}: layers");
    for (l, (jl, ml)) in layers.iter().zip(maps).enumerate() {
        let heads = jl.as_array().unwrap();
        assert_eq!(heads.len(), ml.len(), "{what}: heads of layer {l}");
        for (h, (jh, w)) in heads.iter().zip(ml).enumerate() {
            assert_eq!(w.shape(), shape, "{what}: layer {l} head {h}");
            let rows = jh.as_array().unwrap();
            assert_eq!(rows.len(), shape.0, "{what}: rows of layer {l} head {h}");
            for (i, row) in rows.iter().enumerate() {
                let row = row.as_array().unwrap();
                assert_eq!(row.len(), shape.1, "{what}: row {i} of layer {l} head {h}");
                for (j, x) in row.iter().enumerate() {
                    let got = x.as_f64().unwrap();
                    let want = f64::from(w[(i, j)]);
                    assert!(
                        (got - want).abs() <= tolerance,
                        "{what}: layer {l} head {h} ({i}, {j}): file {got}, library {want}"
                    );
                }
            }
        }
    }
}

fn words(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_explorer_data_file_holds_the_trained_models_attention_weights() {
    let text = appendix::explorer_data().unwrap_or_else(|e| panic!("{e}"));
    let data = appendix::parse_explorer_data(&text).unwrap_or_else(|e| panic!("{e}"));
    let (model, info, _) = load_model(&root().join(appendix::MODEL)).unwrap();
    let task = Task::by_name(&info.task, info.data_seed).unwrap();
    assert_eq!(data["layers"], info.config.n_layers);
    assert_eq!(data["heads"], info.config.h);
    let sentences = data["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), appendix::SENTENCES);
    for s in sentences {
        let index = s["heldOut"].as_u64().unwrap() as usize;
        let pair = &task.held_out[index];
        let src_words: Vec<String> = pair
            .src
            .iter()
            .map(|&id| task.vocab.word(id).to_string())
            .collect();
        assert_eq!(words(&s["source"]), src_words, "held-out {index}");
        let tgt: Vec<usize> = std::iter::once(BOS)
            .chain(pair.tgt.iter().copied())
            .collect();
        let tgt_words: Vec<String> = tgt
            .iter()
            .map(|&id| task.vocab.word(id).to_string())
            .collect();
        assert_eq!(words(&s["target"]), tgt_words, "held-out {index}");
        assert_eq!(tgt_words[0], "<s>");

        // Recomputed from the stacks, not through Transformer::attention_weights.
        let (n_s, n_t) = (pair.src.len(), tgt.len());
        let x = model.embedding.embed(&pair.src) + model.positional.encode(n_s);
        let (memory, encoder) = model.encoder.forward_with_weights(&x, None);
        let y = model.embedding.embed(&tgt) + model.positional.encode(n_t);
        let causal = Mask::causal(n_t);
        let (_, decoder) = model
            .decoder
            .forward_with_weights(&y, &memory, Some(&causal), None);
        let decoder_self: Vec<_> = decoder.iter().map(|w| w.self_attn.clone()).collect();
        let cross: Vec<_> = decoder.iter().map(|w| w.cross_attn.clone()).collect();
        assert_maps("encoder", &s["encoder"], &encoder, (n_s, n_s));
        assert_maps("decoder", &s["decoder"], &decoder_self, (n_t, n_t));
        assert_maps("cross", &s["cross"], &cross, (n_t, n_s));
    }
}

#[test]
fn the_explorer_data_file_is_small_and_parses() {
    let text = appendix::explorer_data().unwrap();
    assert!(text.starts_with("window.aiaynAttention = {"));
    assert!(
        text.len() < 100_000,
        "the data file is {} bytes; the explorer should stay small",
        text.len()
    );
    assert!(appendix::parse_explorer_data("var x = {};").is_err());
}

#[test]
fn the_appendix_figures_are_registered_and_deterministic() {
    for name in ["attention-encoder", "attention-decoder", "attention-cross"] {
        let figure = aiayn::book::figures::ALL
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not in figures::ALL"));
        let a = (figure.draw)().unwrap();
        assert_eq!(a, (figure.draw)().unwrap(), "{name} differs between draws");
        assert!(a.contains("layer 2, head 4"), "{name} lacks a panel");
    }
}
