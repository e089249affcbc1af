//! §3: the encoder-decoder data-flow diagram.

use crate::book::svg::{Anchor, Svg, TextStyle};

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

// Colours: the boxes by kind of sub-layer, and the arrows.
const ATTENTION: &str = "#fde0c5";
const FFN: &str = "#cfe8f3";
const NORM: &str = "#fff7bc";
const EMBED: &str = "#f2d7ee";
const OUTPUT: &str = "#d9f0d3";
const ARROW: &str = "#333333";
// The width of every box, where the encoder's and the decoder's columns start, and the
// height of the input boxes.
const W: f64 = 250.0;
const ENC_X: f64 = 60.0;
const DEC_X: f64 = 440.0;
const BH: f64 = 36.0;
/// The height of the sums with the positional encodings.
const SUM_Y: f64 = 728.0;

pub(super) fn data_flow() -> Result<String, String> {
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
    inputs(&mut svg);
    let encoder_top = encoder(&mut svg);
    let decoder_top = decoder(&mut svg);
    encoder_output(&mut svg, &encoder_top);
    output_head(&mut svg, &decoder_top);
    legend(&mut svg);
    Ok(svg.finish())
}

/// Inputs, embeddings and positional encodings, at the bottom.
fn inputs(svg: &mut Svg) {
    let (w, enc_x, dec_x, bh) = (W, ENC_X, DEC_X, BH);
    let src = block(
        svg,
        enc_x,
        836.0,
        w,
        bh,
        "#ffffff",
        &["inputs (source tokens)"],
    );
    let tgt = block(
        svg,
        dec_x,
        836.0,
        w,
        bh,
        "#ffffff",
        &["outputs, shifted right (target tokens)"],
    );
    let src_emb = block(
        svg,
        enc_x,
        770.0,
        w,
        40.0,
        EMBED,
        &["input embedding × sqrt(d_model)"],
    );
    let tgt_emb = block(
        svg,
        dec_x,
        770.0,
        w,
        40.0,
        EMBED,
        &["output embedding × sqrt(d_model)"],
    );
    svg.arrow(&[src.top(), src_emb.bottom()], ARROW);
    svg.arrow(&[tgt.top(), tgt_emb.bottom()], ARROW);
    let sum_y = SUM_Y;
    for (emb, anchor) in [(&src_emb, Anchor::End), (&tgt_emb, Anchor::Start)] {
        positional_encoding(svg, emb, anchor, sum_y);
    }
}

/// The sum of an embedding with the positional encoding, which enters from the side.
fn positional_encoding(svg: &mut Svg, emb: &Block, anchor: Anchor, sum_y: f64) {
    let (cx, _) = emb.top();
    plus(svg, cx, sum_y);
    svg.arrow(&[emb.top(), (cx, sum_y + 11.0)], ARROW);
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

/// A circled plus.
fn plus(svg: &mut Svg, cx: f64, cy: f64) {
    svg.circle(cx, cy, 11.0, "#ffffff", "#333333");
    svg.line(cx - 6.0, cy, cx + 6.0, cy, "#333333", 1.6);
    svg.line(cx, cy - 6.0, cx, cy + 6.0, "#333333", 1.6);
}

/// The encoder stack: N x (self-attention, add & norm, FFN, add & norm); returns its top box.
fn encoder(svg: &mut Svg) -> Block {
    let (w, enc_x, sum_y) = (W, ENC_X, SUM_Y);
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
        svg,
        enc_x,
        620.0,
        w,
        44.0,
        ATTENTION,
        &["multi-head self-attention", "(Q = K = V = x)"],
    );
    let e_norm1 = block(svg, enc_x, 566.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let e_ffn = block(
        svg,
        enc_x,
        490.0,
        w,
        44.0,
        FFN,
        &["position-wise feed-forward", "max(0, xW1 + b1)W2 + b2"],
    );
    let e_norm2 = block(svg, enc_x, 430.0, w, 30.0, NORM, &["add & LayerNorm"]);
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
    residual(svg, enc_x, 680.0, e_norm1.y + 15.0);
    residual(svg, enc_x, 552.0, e_norm2.y + 15.0);

    e_norm2
}

/// The decoder stack: N x (masked self-attention, cross-attention, FFN), each with add &
/// norm; returns its top box.
fn decoder(svg: &mut Svg) -> Block {
    let (w, dec_x, sum_y) = (W, DEC_X, SUM_Y);
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
        svg,
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
    let d_norm1 = block(svg, dec_x, 566.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let d_cross = block(
        svg,
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
    let d_norm2 = block(svg, dec_x, 416.0, w, 30.0, NORM, &["add & LayerNorm"]);
    let d_ffn = block(
        svg,
        dec_x,
        330.0,
        w,
        44.0,
        FFN,
        &["position-wise feed-forward", "max(0, xW1 + b1)W2 + b2"],
    );
    let d_norm3 = block(svg, dec_x, 270.0, w, 30.0, NORM, &["add & LayerNorm"]);
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
    residual_right(svg, dec_x, 680.0, d_norm1.y + 15.0);
    residual_right(svg, dec_x, 552.0, d_norm2.y + 15.0);
    residual_right(svg, dec_x, 392.0, d_norm3.y + 15.0);

    d_norm3
}

/// Encoder output to every decoder layer's cross-attention.
fn encoder_output(svg: &mut Svg, e_norm2: &Block) {
    let dec_x = DEC_X;
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
}

/// The output head: the linear map with the shared embedding, and the softmax.
fn output_head(svg: &mut Svg, d_norm3: &Block) {
    let (w, dec_x) = (W, DEC_X);
    let linear = block(
        svg,
        dec_x,
        140.0,
        w,
        44.0,
        OUTPUT,
        &["linear: logits = y E^T", "(E: the shared embedding matrix)"],
    );
    let softmax = block(svg, dec_x, 84.0, w, 32.0, OUTPUT, &["softmax"]);
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
}

/// The legend of the colours, top left.
fn legend(svg: &mut Svg) {
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
}
