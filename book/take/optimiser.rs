use my_crate::train::adam::Adam;
use my_crate::train::label_smoothing::{smoothed_targets, Spread};
use my_crate::train::schedule::lrate;
use nalgebra::dmatrix;

fn main() {
    // Eq. 3 peaks at step warmup_steps: (512 * 4000)^-0.5 for the base model.
    println!("lrate(step 4000) = {:.6}", lrate(512, 4000, 4000));
    // eps_ls = 0.1 over 4 classes, target 2: 0.1 / 4 each, plus 0.9 on the target.
    let q = smoothed_targets::<f64>(&[2], 4, 0.1, Spread::AllClasses);
    println!("smoothed target {:.3?}", q.as_slice());
    // Adam's first step moves a parameter by about lr, against its gradient's sign.
    let (mut w, g) = (dmatrix![1.0, 1.0], dmatrix![0.5, -2.0]);
    Adam::paper().step(&mut [&mut w], &[&g], 0.1);
    println!("after one step {:.4?}", w.as_slice());
}
// Output:
// lrate(step 4000) = 0.000699
// smoothed target [0.025, 0.025, 0.925, 0.025]
// after one step [0.9000, 1.1000]
