use my_crate::config::Config;
use my_crate::model::Transformer;
use my_crate::train::tasks::Task;
use my_crate::train::trainer::{BatchStream, TrainOptions, Trainer};
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    let task = Task::by_name("copy", 1).unwrap();
    let config = Config { n_layers: 1, d_model: 32, d_ff: 64, h: 4, d_k: 8, d_v: 8,
        ..Config::base() };
    let mut rng = StdRng::seed_from_u64(0);
    let model = Transformer::<f32>::new(&config, task.vocab.len(), &mut rng).unwrap();
    let options = TrainOptions { p_drop: 0.1, eps_ls: 0.1, warmup: 100, lr_scale: 1.0,
        batch_tokens: 500, seed: 0, threads: 2 };
    let mut trainer = Trainer::new(model, options);
    let mut batches = BatchStream::new(&task.train, 500, 0);
    let mut step = || trainer.train_step(batches.next_batch()).loss;
    let first = step();
    let last = (2..=100).map(|_| step()).last().unwrap();
    println!("loss per token: {first:.1} at step 1, {last:.1} at step 100");
}
// Output:
// loss per token: 3.8 at step 1, 2.8 at step 100
