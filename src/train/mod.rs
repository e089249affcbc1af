//! Training (§5): the learning-rate schedule, the optimiser and the smoothed loss.

pub mod adam;
pub mod label_smoothing;
pub mod schedule;
