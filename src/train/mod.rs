//! Training (§5): the data and its batches, the learning-rate schedule, the optimiser and the
//! smoothed loss.

pub mod adam;
pub mod batch;
pub mod label_smoothing;
pub mod schedule;
pub mod tasks;
