use my_crate::layer_norm::LayerNorm;
use my_crate::sublayer::{residual, NormPlacement};
use nalgebra::dmatrix;

fn main() {
    // LayerNorm(x + Sublayer(x)), the sub-layer doubling x: each row of 3x, normalised.
    let x = dmatrix![1.0, 2.0, 3.0; 10.0, 10.0, 40.0]; // 2 positions, d_model = 3
    let norm = LayerNorm::new(3, 0.0); // gain 1, bias 0, eps 0
    let y = residual(&x, &norm, NormPlacement::Post, |x| x * 2.0);
    // (-1, 0, 1) sqrt(3/2) and (-1, -1, 2) / sqrt(2)
    for row in y.row_iter() {
        println!("{:.4?}", row.iter().collect::<Vec<_>>());
    }
}
// Output:
// [-1.2247, 0.0000, 1.2247]
// [-0.7071, -0.7071, 1.4142]
