use my_crate::decoder::Decoder;
use my_crate::encoder::{Encoder, LayerSizes};
use my_crate::mask::Mask;
use my_crate::sublayer::NormPlacement;
use nalgebra::DMatrix;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    let s = LayerSizes { d_model: 16, h: 4, d_k: 4, d_v: 4, d_ff: 64,
        attention_bias: false, layer_norm_eps: 1e-6, placement: NormPlacement::Post };
    let mut rng = StdRng::seed_from_u64(0);
    let encoder = Encoder::<f64>::new(2, &s, &mut rng); // N = 2 layers
    let decoder = Decoder::<f64>::new(2, &s, &mut rng);
    let x = DMatrix::from_fn(5, 16, |i, j| ((16 * i + j) as f64).sin()); // 5 sources
    let y = DMatrix::from_fn(3, 16, |i, j| ((16 * i + j) as f64).cos()); // 3 targets
    let memory = encoder.forward(&x, None);
    let out = decoder.forward(&y, &memory, Some(&Mask::causal(3)), None);
    println!("memory {:?}, decoder output {:?}", memory.shape(), out.shape());
    // Post-norm: each layer ends in a LayerNorm, so every output row has mean 0.
    println!("rows of mean 0: {}", out.row_iter().all(|r| r.mean().abs() < 1e-12));
}
// Output:
// memory (5, 16), decoder output (3, 16)
// rows of mean 0: true
