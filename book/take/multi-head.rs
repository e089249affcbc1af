use my_crate::multi_head::MultiHeadAttention;
use nalgebra::DMatrix;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    // d_model = 16 in h = 4 heads of d_k = d_v = 4, without biases (as in the paper).
    let mut rng = StdRng::seed_from_u64(0);
    let mha = MultiHeadAttention::<f64>::new(16, 4, 4, 4, false, &mut rng);
    let x = DMatrix::from_fn(5, 16, |i, j| ((16 * i + j) as f64).sin()); // 5 queries
    let memory = DMatrix::from_fn(7, 16, |i, j| ((16 * i + j) as f64).cos()); // 7 keys
    let out = mha.forward(&x, &memory, &memory, None);
    let (weights, h) = (out.weights[0].shape(), out.weights.len());
    println!("output {:?}, {h} heads of weights {weights:?}", out.output.shape());
    let one = |w: &DMatrix<f64>| w.column_sum().iter().all(|s| (s - 1.0).abs() < 1e-9);
    println!("every row of weights sums to 1: {}", out.weights.iter().all(one));
}
// Output:
// output (5, 16), 4 heads of weights (5, 7)
// every row of weights sums to 1: true
