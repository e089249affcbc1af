use my_crate::config::Config;
use my_crate::model::Transformer;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    // The base model at a small size: N = 2, d_model = 32, h = 4; vocabulary 20.
    let config = Config { n_layers: 2, d_model: 32, d_ff: 64, h: 4, d_k: 8, d_v: 8,
        ..Config::base() };
    let mut rng = StdRng::seed_from_u64(0);
    let model = Transformer::<f64>::new(&config, 20, &mut rng).unwrap();
    let log_probs = model.forward(&[5, 6, 7, 8], &[1, 9, 10], None); // source, target
    println!("log-probabilities {:?}", log_probs.shape());
    println!("{} parameters", model.num_params());
}
// Output:
// log-probabilities (3, 20)
// 42624 parameters
