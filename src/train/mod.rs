//! Training (§5): the data and its batches, the learning-rate schedule, the optimiser, the
//! smoothed loss, the training loop and the held-out metrics.

pub mod adam;
pub mod batch;
pub mod evaluate;
pub mod label_smoothing;
pub mod schedule;
pub mod tasks;
pub mod trainer;
