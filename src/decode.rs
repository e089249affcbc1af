//! Greedy decoding (§6.1 uses beam search; greedy is its beam size 1).
//!
//! The encoder runs once. The decoder then runs again for every new position: it reads the
//! start symbol and the tokens chosen so far, and the most probable next token is appended,
//! until the end-of-sentence symbol or the length limit. (Each step here recomputes the whole
//! prefix; the causal mask makes the earlier rows equal to those of the previous step.)

use nalgebra::{Dyn, Matrix, RealField, Storage, U1};

use crate::model::Transformer;

// ANCHOR: greedy
/// The greedy translation of `src`: at each step the most probable next token, stopping at
/// `eos` (not included) or after `max_len` tokens.
///
/// # Shapes
/// `src`: n_s ids -> at most `max_len` ids.
pub fn greedy<T: RealField + Copy>(
    model: &Transformer<T>,
    src: &[usize],
    bos: usize,
    eos: usize,
    max_len: usize,
) -> Vec<usize> {
    let memory = model.encode(src, None); // (n_s, d_model), computed once
    let mut tgt = vec![bos];
    while tgt.len() <= max_len {
        let y = model.decode(&tgt, &memory, None); // (n_t, d_model)
        let last = y.rows(tgt.len() - 1, 1).into_owned(); // (1, d_model)
        let logits = model.embedding.logits(&last); // (1, vocab)
        let next = argmax(&logits.row(0)); // the softmax keeps the order of the logits
        if next == eos {
            break;
        }
        tgt.push(next);
    }
    tgt.split_off(1) // without the start symbol
}
// ANCHOR_END: greedy

/// The index of the largest entry of a row (the first one on a tie).
pub fn argmax<T: RealField + Copy, S: Storage<T, U1, Dyn>>(row: &Matrix<T, U1, Dyn, S>) -> usize {
    let mut best = 0;
    for (j, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = j;
        }
    }
    best
}
