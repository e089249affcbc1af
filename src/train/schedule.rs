//! The learning-rate schedule, Eq. 3 (§5.3).
//!
//! ```text
//! lrate = d_model^-0.5 * min(step_num^-0.5, step_num * warmup_steps^-1.5)
//! ```
//!
//! The rate grows linearly for the first `warmup_steps` steps, peaks at step `warmup_steps`
//! with value `(d_model * warmup_steps)^-0.5`, then decays with the inverse square root of the
//! step. Steps count from 1; at step 0 the formula gives 0 (min(inf, 0)). The paper uses
//! warmup_steps = 4000.

// ANCHOR: lrate
/// The learning rate at step `step_num` (`eq:lrate`).
///
/// # Example
/// At the peak, step 4000 of the base model: (512 * 4000)^-0.5.
/// ```
/// let peak = aiayn::train::schedule::lrate(512, 4000, 4000);
/// assert!((peak - 1.0 / (512.0f64 * 4000.0).sqrt()).abs() < 1e-15);
/// ```
pub fn lrate(d_model: usize, warmup_steps: usize, step_num: usize) -> f64 {
    if step_num == 0 {
        return 0.0;
    }
    let step = step_num as f64;
    let warmup = warmup_steps as f64;
    (d_model as f64).powf(-0.5) * step.powf(-0.5).min(step * warmup.powf(-1.5))
}
// ANCHOR_END: lrate
