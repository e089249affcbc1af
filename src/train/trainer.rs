//! The training loop (§5): batches of sentence pairs, the label-smoothed loss over the real
//! (unpadded) target positions, one backward pass per pair, Adam with the Eq. 3 schedule.
//!
//! One step:
//!
//! 1. the batch is cut into chunks of [`CHUNK`] pairs; each chunk runs
//!    [`Transformer::forward_train`] as one stacked matrix, with its own dropout seed (from the
//!    run's seed, the step and the chunk's index), so the masks do not depend on which thread
//!    runs it;
//! 2. the loss is the label-smoothed cross-entropy summed over the target positions that are
//!    not padding, divided by the number of such tokens in the whole batch;
//! 3. [`Transformer::backward`] turns its gradient into the gradient of every parameter;
//! 4. the chunks' gradients are added up in chunk order, whichever thread computed them, so a
//!    run gives the same parameters bit for bit whatever the number of threads;
//! 5. Adam takes one step at the learning rate of Eq. 3.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nalgebra::{DMatrix, RealField};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::dropout::Dropout;
use crate::model::Transformer;
use crate::params::{add_assign, scale, zeros_like};
use crate::train::adam::Adam;
use crate::train::batch::{batches_by_length, Batch};
use crate::train::label_smoothing::{label_smoothed_loss, label_smoothed_loss_backward, Spread};
use crate::train::schedule::lrate;
use crate::train::tasks::Pair;

/// Pairs of a batch that run through the model as one stacked matrix, on one thread.
pub const CHUNK: usize = 16;

/// The settings of a run that are not the model's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// P_drop (§5.4), 0.1 in the paper.
    pub p_drop: f64,
    /// eps_ls (§5.4), 0.1 in the paper.
    pub eps_ls: f64,
    /// warmup_steps of Eq. 3; 4000 in the paper.
    pub warmup: usize,
    /// A factor on Eq. 3's learning rate; 1 is the paper's schedule.
    // DEVIATION(§5.3): Eq. 3 scales the rate by d_model^-0.5, which for the book's small models
    // (d_model = 64) is 2.8 times the base model's; `aiayn train` uses 0.25 by default to
    // train them stably. 1 gives the paper's schedule exactly.
    pub lr_scale: f64,
    /// The token budget of a batch (per side, padding included); 25000 in the paper.
    pub batch_tokens: usize,
    /// Seeds the batch order and every dropout mask.
    pub seed: u64,
    /// Threads computing gradients; the result does not depend on it.
    pub threads: usize,
}

/// What one step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The step just taken, from 1.
    pub step: usize,
    /// Label-smoothed loss per target token.
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// Real (unpadded) target tokens, end-of-sentence included.
    pub tgt_tokens: usize,
    /// Real source tokens.
    pub src_tokens: usize,
}

/// A model, its optimiser and its step count.
#[derive(Clone, Debug)]
pub struct Trainer<T: RealField> {
    pub model: Transformer<T>,
    pub adam: Adam<T>,
    /// Steps taken.
    pub step: usize,
    pub options: TrainOptions,
}

impl<T: RealField + Copy + Send + Sync> Trainer<T> {
    /// A trainer at step 0 with the paper's Adam.
    pub fn new(model: Transformer<T>, options: TrainOptions) -> Self {
        Trainer {
            model,
            adam: Adam::paper(),
            step: 0,
            options,
        }
    }

    // ANCHOR: train_step
    /// One training step on `batch`: gradients of the mean loss per token, then Adam at the
    /// rate of Eq. 3 for the new step number.
    pub fn train_step(&mut self, batch: &Batch) -> StepStats {
        self.step += 1;
        let (mut grads, loss_sum) = batch_gradients(&self.model, batch, &self.options, self.step);
        let tokens = batch.tgt_tokens().max(1);
        scale(&mut grads, nalgebra::convert(1.0 / tokens as f64)); // mean over the batch's tokens
        let d_model = self.model.embedding.d_model();
        let lr = self.options.lr_scale * lrate(d_model, self.options.warmup, self.step);
        self.adam.step_params(&mut self.model, &grads, lr);
        StepStats {
            step: self.step,
            loss: loss_sum / tokens as f64,
            lr,
            tgt_tokens: batch.tgt_tokens(),
            src_tokens: batch.src_tokens(),
        }
    }
    // ANCHOR_END: train_step
}

/// The gradient of the summed loss over every real target token of `batch`, and that sum.
/// The same for any `options.threads`.
pub fn batch_gradients<T: RealField + Copy + Send + Sync>(
    model: &Transformer<T>,
    batch: &Batch,
    options: &TrainOptions,
    step: usize,
) -> (Transformer<T>, f64) {
    let chunks = batch.len().div_ceil(CHUNK);
    let sums = parallel_map(chunks, options.threads, |c| {
        let rows = c * CHUNK..((c + 1) * CHUNK).min(batch.len());
        let mut dropout = Dropout::new(options.p_drop, dropout_seed(options.seed, step, c));
        chunk_gradients(model, batch, rows, options.eps_ls, &mut dropout)
    });
    let mut total = zeros_like(model);
    let mut loss = 0.0;
    for (g, l) in &sums {
        add_assign(&mut total, g); // in chunk order: independent of the threads
        loss += l;
    }
    (total, loss)
}

// ANCHOR: chunk_gradients
/// Forward and backward for the pairs `rows` of the batch, stacked: the gradient of the
/// label-smoothed loss summed over their real (unpadded) target positions, and that sum.
pub fn chunk_gradients<T: RealField + Copy>(
    model: &Transformer<T>,
    batch: &Batch,
    rows: std::ops::Range<usize>,
    eps_ls: f64,
    dropout: &mut Dropout,
) -> (Transformer<T>, f64) {
    let (log_probs, cache) = model.forward_train(
        &batch.src[rows.clone()],
        &batch.tgt_in[rows.clone()],
        &batch.src_padding[rows.clone()],
        dropout,
    ); // (B n_t, vocab)
       // the positions that count: target positions that are not padding
    let n_t = batch.tgt_out[rows.start].len();
    let mut real = Vec::new();
    let mut targets = Vec::new();
    for (b, row) in rows.enumerate() {
        for i in 0..n_t {
            if !batch.tgt_padding[row][i] {
                real.push(b * n_t + i);
                targets.push(batch.tgt_out[row][i]);
            }
        }
    }
    let n: T = nalgebra::convert(real.len() as f64);
    let vocab = log_probs.ncols();
    let spread = Spread::AllClasses;
    let real_log_probs = log_probs.select_rows(&real); // (n_real, vocab)
    let loss = label_smoothed_loss(&real_log_probs, &targets, eps_ls, spread) * n; // a sum
    let d_real = label_smoothed_loss_backward::<T>(&targets, vocab, eps_ls, spread) * n;
    let mut d_log_probs = DMatrix::zeros(log_probs.nrows(), vocab); // padding: no gradient
    for (k, &i) in real.iter().enumerate() {
        d_log_probs.row_mut(i).copy_from(&d_real.row(k));
    }
    let grads = model.backward(&cache, &d_log_probs);
    (grads, nalgebra::try_convert(loss).unwrap_or(f64::NAN))
}
// ANCHOR_END: chunk_gradients

/// The dropout seed of one chunk of one step: distinct for every (seed, step, chunk).
pub fn dropout_seed(seed: u64, step: usize, row: usize) -> u64 {
    // the three numbers combined, then SplitMix64's output function (its mix of one state)
    let mut z = seed
        ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `f(0), ..., f(n - 1)` computed on `threads` threads, returned in order.
pub fn parallel_map<R: Send>(n: usize, threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if threads <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.min(n) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = f(i);
                results.lock().expect("no thread panicked")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("no thread panicked")
        .into_iter()
        .map(|r| r.expect("every index was computed"))
        .collect()
}

/// The batches of a run, epoch after epoch: epoch e shuffles and packs the training pairs
/// with a generator seeded from (seed, e), so the batch of any step can be found again when
/// a run resumes.
#[derive(Clone, Debug)]
pub struct BatchStream<'a> {
    pairs: &'a [Pair],
    max_tokens: usize,
    seed: u64,
    epoch: u64,
    batches: Vec<Batch>,
    next: usize,
}

impl<'a> BatchStream<'a> {
    /// The stream at its first batch.
    pub fn new(pairs: &'a [Pair], max_tokens: usize, seed: u64) -> Self {
        let mut s = BatchStream {
            pairs,
            max_tokens,
            seed,
            epoch: 0,
            batches: Vec::new(),
            next: 0,
        };
        s.load_epoch();
        s
    }

    fn load_epoch(&mut self) {
        let mut rng =
            StdRng::seed_from_u64(dropout_seed(self.seed, self.epoch as usize, usize::MAX));
        self.batches = batches_by_length(self.pairs, self.max_tokens, &mut rng);
        self.next = 0;
    }

    /// The epoch of the batch returned last, from 0 (0 before the first batch too).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Skips `n` batches (to resume after `n` steps).
    pub fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.next_batch();
        }
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> &Batch {
        if self.next == self.batches.len() {
            self.epoch += 1;
            self.load_epoch();
        }
        self.next += 1;
        &self.batches[self.next - 1]
    }
}
