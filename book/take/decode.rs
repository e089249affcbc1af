use my_crate::config::Config;
use my_crate::decode::{beam_search, greedy};
use my_crate::model::Transformer;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    let config = Config { n_layers: 1, d_model: 16, d_ff: 32, h: 2, d_k: 8, d_v: 8,
        ..Config::base() };
    let mut rng = StdRng::seed_from_u64(0);
    let model = Transformer::<f64>::new(&config, 12, &mut rng).unwrap(); // untrained
    let (src, bos, eos, max_len) = ([3, 4, 5, 6], 1, 2, 8);
    // Beam 4 with length penalty alpha = 0.6, as in §6.1; best hypothesis first.
    let beams = beam_search(&model, &src, bos, eos, 4, 0.6, max_len);
    println!("{} hypotheses, the best {:?}", beams.len(), beams[0].tokens);
    let one = beam_search(&model, &src, bos, eos, 1, 0.6, max_len).remove(0).tokens;
    let greedy = greedy(&model, &src, bos, eos, max_len);
    println!("greedy is a beam of one: {}", greedy == one);
}
// Output:
// 4 hypotheses, the best [5, 5, 5, 5, 5, 5, 5, 5]
// greedy is a beam of one: true
