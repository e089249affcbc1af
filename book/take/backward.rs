use my_crate::config::Config;
use my_crate::dropout::Dropout;
use my_crate::model::Transformer;
use my_crate::train::label_smoothing::{label_smoothed_loss as loss, Spread};
use my_crate::train::label_smoothing::label_smoothed_loss_backward as loss_backward;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    let config = Config { n_layers: 1, d_model: 8, d_ff: 16, h: 2, d_k: 4, d_v: 4,
        ..Config::base() };
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Transformer::<f64>::new(&config, 10, &mut rng).unwrap();
    let (src, tgt_in, tgt_out) = (vec![3, 4, 5], vec![1, 6, 7], [6, 7, 2]); // <s> = 1
    let (eps, spread) = (0.1, Spread::AllClasses);
    let pad = vec![false; 3];
    let (_, cache) = model.forward_train(&[src.clone()], &[tgt_in.clone()], &[pad],
        &mut Dropout::off());
    let grads = model.backward(&cache, &loss_backward(&tgt_out, 10, eps, spread));
    // One entry of the shared embedding: backward pass against a central difference.
    let mut loss_at = |h: f64| {
        model.embedding.weight[(6, 0)] += h;
        loss(&model.forward(&src, &tgt_in, None), &tgt_out, eps, spread)
    };
    let difference = (loss_at(1e-6) - loss_at(-2e-6)) / 2e-6;
    println!("dL/dE[6, 0]: backward {:.7}, finite difference {difference:.7}",
        grads.embedding.weight[(6, 0)]);
}
// Output:
// dL/dE[6, 0]: backward -0.4331399, finite difference -0.4331399
