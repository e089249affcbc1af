//! §5 end to end, on tiny models: the loss falls, a run does not depend on the number of
//! threads, checkpoints round-trip bit for bit, a resumed run ends where the uninterrupted one
//! does, and malformed checkpoints give errors that name the file and the tensor.

use std::path::{Path, PathBuf};

use aiayn::checkpoint::{load, save, CheckpointError};
use aiayn::config::{Config, Positional};
use aiayn::params::Parameters;
use aiayn::train::state::{load_model, load_trainer, save_trainer, RunInfo};
use aiayn::train::tasks::Task;
use aiayn::train::trainer::{BatchStream, TrainOptions, Trainer};
use aiayn::Transformer;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn tiny_config() -> Config {
    Config {
        n_layers: 1,
        d_model: 16,
        d_ff: 32,
        h: 2,
        d_k: 8,
        d_v: 8,
        positional: Positional::Sinusoidal,
        ..Config::base()
    }
}

fn options(threads: usize) -> TrainOptions {
    TrainOptions {
        p_drop: 0.1,
        eps_ls: 0.1,
        warmup: 20,
        lr_scale: 1.0,
        batch_tokens: 300,
        seed: 7,
        threads,
    }
}

fn tiny_trainer(task: &Task, threads: usize) -> Trainer<f32> {
    let model = Transformer::new(
        &tiny_config(),
        task.vocab.len(),
        &mut StdRng::seed_from_u64(3),
    )
    .expect("a valid config");
    Trainer::new(model, options(threads))
}

/// A tiny model trained for 200 steps, without dropout, on the task's first eight pairs as one
/// batch; and the loss of every step.
fn memorised(task: &Task) -> (Trainer<f32>, Vec<f64>) {
    let batch = aiayn::train::batch::Batch::from_pairs(&task.train, &(0..8).collect::<Vec<_>>());
    let mut trainer = tiny_trainer(task, 2);
    trainer.options.warmup = 10;
    trainer.options.p_drop = 0.0;
    let losses = (0..200).map(|_| trainer.train_step(&batch).loss).collect();
    (trainer, losses)
}

/// Runs `trainer` until step `until` on the task's batches, starting where its step says.
fn run(trainer: &mut Trainer<f32>, task: &Task, until: usize) -> Vec<f64> {
    let mut stream = BatchStream::new(
        &task.train,
        trainer.options.batch_tokens,
        trainer.options.seed,
    );
    stream.skip(trainer.step);
    let mut losses = Vec::new();
    while trainer.step < until {
        losses.push(trainer.train_step(stream.next_batch()).loss);
    }
    losses
}

fn bits(model: &Transformer<f32>) -> Vec<(String, Vec<u32>)> {
    model
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.data.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

fn info(task: &Task) -> RunInfo {
    RunInfo {
        task: task.name.clone(),
        data_seed: 1,
        config: tiny_config(),
        vocab: task.vocab.len(),
    }
}

/// A fresh directory under the target directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

#[test]
fn a_tiny_model_memorises_a_batch_of_eight_pairs() {
    // Every parameter has to move in the right direction for the loss to fall this far: the
    // smoothed targets' own entropy is the floor (about 0.52 nats here), and guessing the
    // marginal distribution of the target tokens costs about ln 20 = 3.0.
    let task = Task::by_name("copy", 1).unwrap();
    let (_, losses) = memorised(&task);
    assert!(
        losses[0] > 2.8,
        "the untrained loss is near ln V: {}",
        losses[0]
    );
    let last = losses[195..].iter().sum::<f64>() / 5.0;
    assert!(last < 1.2, "the loss fell from {} to {last}", losses[0]);
}

#[test]
fn one_thread_and_two_threads_give_the_same_parameters_bit_for_bit() {
    let task = Task::by_name("reverse", 1).unwrap();
    let mut one = tiny_trainer(&task, 1);
    let mut two = tiny_trainer(&task, 2);
    let l1 = run(&mut one, &task, 6);
    let l2 = run(&mut two, &task, 6);
    assert_eq!(l1, l2);
    assert_eq!(bits(&one.model), bits(&two.model));
    // and the run moved the parameters at all
    assert_ne!(bits(&one.model), bits(&tiny_trainer(&task, 1).model));
}

#[test]
fn a_checkpoint_round_trips_bit_for_bit_and_a_resumed_run_ends_where_the_uninterrupted_one_does() {
    let task = Task::by_name("copy", 1).unwrap();
    let dir = scratch("resume");
    let mut straight = tiny_trainer(&task, 2);
    run(&mut straight, &task, 8);

    let mut first_half = tiny_trainer(&task, 2);
    run(&mut first_half, &task, 4);
    let path = dir.join("ckpt-4.safetensors");
    save_trainer(&path, &first_half, &info(&task)).expect("saved");
    let (mut resumed, restored_info) = load_trainer(&path, 1).expect("loaded");
    assert_eq!(restored_info, info(&task));
    assert_eq!(resumed.step, 4);
    assert_eq!(bits(&resumed.model), bits(&first_half.model));
    assert_eq!(
        resumed.adam, first_half.adam,
        "Adam's moments and step count round-trip"
    );
    assert_eq!(resumed.options, options(1));
    run(&mut resumed, &task, 8);
    assert_eq!(bits(&resumed.model), bits(&straight.model));
}

fn saved_model(dir: &Path) -> PathBuf {
    let task = Task::by_name("copy", 1).unwrap();
    let path = dir.join("model.safetensors");
    save_trainer(&path, &tiny_trainer(&task, 1), &info(&task)).expect("saved");
    path
}

fn message(e: CheckpointError) -> String {
    e.to_string()
}

#[test]
fn malformed_checkpoints_give_errors_naming_the_file_and_the_tensor() {
    let dir = scratch("malformed");
    let good = saved_model(&dir);
    let ckpt = load(&good).unwrap();
    let write = |name: &str, c: &aiayn::checkpoint::Checkpoint| {
        let p = dir.join(name);
        save(&p, c).unwrap();
        p
    };
    // a tensor removed
    let mut missing = ckpt.clone();
    missing
        .tensors
        .retain(|t| t.name != "decoder.layers.0.ffn.w_2");
    let p = write("missing.safetensors", &missing);
    let e = message(load_model(&p).unwrap_err());
    assert!(
        e.contains("missing.safetensors") && e.contains("decoder.layers.0.ffn.w_2"),
        "{e}"
    );
    // a tensor of the wrong shape
    let mut shape = ckpt.clone();
    let t = shape
        .tensors
        .iter_mut()
        .find(|t| t.name == "encoder.layers.0.norm1.gain")
        .unwrap();
    t.shape = vec![8];
    t.data.truncate(8);
    let p = write("shape.safetensors", &shape);
    let e = message(load_model(&p).unwrap_err());
    assert!(
        e.contains("encoder.layers.0.norm1.gain") && e.contains("[16]"),
        "{e}"
    );
    // metadata that does not make a model
    let mut sizes = ckpt.clone();
    sizes.metadata.insert("h".into(), "3".into());
    let p = write("sizes.safetensors", &sizes);
    let e = message(load_model(&p).unwrap_err());
    assert!(
        e.contains("sizes.safetensors") && e.contains("d_model"),
        "{e}"
    );
    // another format
    let mut format = ckpt.clone();
    format
        .metadata
        .insert("format".into(), "something-else/9".into());
    let p = write("format.safetensors", &format);
    let e = message(load_model(&p).unwrap_err());
    assert!(
        e.contains("format") && e.contains("something-else/9"),
        "{e}"
    );
    // a step that is not a number
    let mut step = ckpt.clone();
    step.metadata.insert("step".into(), "ten".into());
    let p = write("step.safetensors", &step);
    let e = message(load_trainer(&p, 1).unwrap_err());
    assert!(e.contains("step") && e.contains("ten"), "{e}");
    // truncated
    let bytes = std::fs::read(&good).unwrap();
    let p = dir.join("truncated.safetensors");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = message(load_model(&p).unwrap_err());
    assert!(e.contains("truncated.safetensors"), "{e}");
}

// verifies: eq:lrate (example)
#[test]
fn every_size_and_setting_of_the_config_survives_a_checkpoint() {
    use aiayn::sublayer::NormPlacement;
    use aiayn::train::state::save_model;
    let dir = scratch("config-round-trip");
    let task = Task::by_name("copy", 1).unwrap();
    let base = tiny_config();
    let configs = [
        Config {
            positional: Positional::Learned,
            max_len: 37,
            ..base.clone()
        },
        Config {
            attention_bias: true,
            layer_norm_eps: 1e-5,
            placement: NormPlacement::Pre,
            n_layers: 2,
            d_ff: 24,
            h: 4,
            d_k: 3,
            d_v: 4,
            ..base.clone()
        },
    ];
    for (i, config) in configs.into_iter().enumerate() {
        assert_ne!(config, base, "config {i} differs from the tiny one");
        let model = Transformer::<f32>::new(
            &config,
            task.vocab.len(),
            &mut StdRng::seed_from_u64(i as u64),
        )
        .expect("a valid config");
        let run = RunInfo {
            config: config.clone(),
            ..info(&task)
        };
        let path = dir.join(format!("config-{i}.safetensors"));
        save_model(&path, &model, &run, 5).unwrap();
        let (back, back_info, _) = load_model(&path).unwrap();
        assert_eq!(back_info, run, "config {i}");
        assert_eq!(bits(&back), bits(&model), "config {i}");
    }
    // a trainer saved before its first step resumes with a fresh optimiser
    let path = saved_model(&dir);
    let (fresh, _) = load_trainer(&path, 1).expect("a trainer at step 0 loads");
    assert_eq!((fresh.step, fresh.adam.t), (0, 0));
}

#[test]
fn the_size_checks_refuse_exactly_the_sizes_the_file_cannot_hold() {
    // A file's metadata may claim any sizes; before allocating, the reader checks the model
    // they make against the values the file holds, or 2^24 if that is more (up to then it
    // builds the model, so that the missing or misshapen tensor can be named). At exactly
    // 2^24 the model is built; one more is refused with the size named.
    let dir = scratch("size-checks");
    let ckpt = load(&saved_model(&dir)).unwrap();
    let limit = 1usize << 24;
    let values: usize = ckpt.tensors.iter().map(|t| t.data.len()).sum();
    assert!(values < limit && ckpt.tensors.len() < 1024);
    let attempt = |name: &str, meta: &[(&str, String)]| {
        let mut c = ckpt.clone();
        for (k, v) in meta {
            c.metadata.insert(k.to_string(), v.clone());
        }
        let p = dir.join(format!("{name}.safetensors"));
        save(&p, &c).unwrap();
        message(load_model(&p).unwrap_err())
    };
    let refused = |e: &str, key: &str| e.contains(&format!("metadata {key} does not fit the file"));
    // vocab x d_model: 2^20 x 16 = 2^24 passes that check (and the whole count then fails)
    let e = attempt("vocab-at", &[("vocab", (1 << 20).to_string())]);
    assert!(refused(&e, "sizes") && !refused(&e, "vocab"), "{e}");
    let e = attempt("vocab-over", &[("vocab", ((1 << 20) + 1).to_string())]);
    assert!(refused(&e, "vocab"), "{e}");
    // 1024 layers pass (and the model is built, then a layer's tensors are missing); 1025 not
    let e = attempt("layers-at", &[("n_layers", "1024".to_string())]);
    assert!(
        e.contains("encoder.layers.1.") && !refused(&e, "n_layers"),
        "{e}"
    );
    let e = attempt("layers-over", &[("n_layers", "1025".to_string())]);
    assert!(refused(&e, "n_layers"), "{e}");
    // the whole count at exactly 2^24: built, and then the embedding's shape is wrong
    let config = tiny_config();
    let vocab = (limit - config.param_counts(0).total) / config.d_model;
    assert_eq!(
        config.param_counts(vocab).total,
        limit,
        "the count lands on 2^24"
    );
    let e = attempt("count-at", &[("vocab", vocab.to_string())]);
    assert!(e.contains("embedding") && !refused(&e, "sizes"), "{e}");
    let e = attempt("count-over", &[("vocab", (vocab + 1).to_string())]);
    assert!(refused(&e, "sizes"), "{e}");
    // learned positions add max_len x d_model to the products checked
    let e = attempt(
        "positions-over",
        &[
            ("positional", "learned".to_string()),
            ("max_len", ((1 << 20) + 1).to_string()),
        ],
    );
    assert!(refused(&e, "max_len"), "{e}");
}

#[test]
fn the_learning_rate_is_eq3_times_lr_scale() {
    // d_model 16, warmup 4: Eq. 3 peaks at step 4 with (16 * 4)^-0.5 = 1/8, and is 1/32 at
    // step 1 (16^-0.5 * 1 * 4^-1.5 = 1/4 * 1/8).
    let task = Task::by_name("copy", 1).unwrap();
    let batch = aiayn::train::batch::Batch::from_pairs(&task.train, &[0, 1]);
    for (scale, want) in [
        (1.0, [1.0 / 32.0, 1.0 / 16.0, 3.0 / 32.0, 1.0 / 8.0]),
        (0.25, [1.0 / 128.0, 1.0 / 64.0, 3.0 / 128.0, 1.0 / 32.0]),
    ] {
        let mut trainer = tiny_trainer(&task, 1);
        trainer.options.warmup = 4;
        trainer.options.lr_scale = scale;
        for w in want {
            let lr = trainer.train_step(&batch).lr;
            assert!((lr - w).abs() <= 1e-15, "scale {scale}: {lr} vs {w}");
        }
    }
}

#[test]
fn dropout_seed_mixes_with_the_splitmix64_output_function() {
    // The mixing is SplitMix64's output function (Steele, Lea and Flood 2014; Vigna's
    // splitmix64.c), whose k-th output from state s is mix(s + k * 0x9E3779B97F4A7C15).
    // dropout_seed(s, 0, 0) is mix(s) and dropout_seed(0, k, 0) is mix(k * 0x9E37...), so both
    // published reference sequences come out of it: the first five outputs for the seed 1234567
    // (Rosetta Code, "Pseudo-random numbers/Splitmix64") and for the seed 0.
    use aiayn::train::trainer::dropout_seed;
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let seed_1234567: [u64; 5] = [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ];
    let seed_0: [u64; 5] = [
        0xE220_A839_7B1D_CDAF,
        0x6E78_9E6A_A1B9_65F4,
        0x06C4_5D18_8009_454F,
        0xF88B_B8A8_724C_81EC,
        0x1B39_896A_51A8_749B,
    ];
    for k in 1..=5u64 {
        let state = 1234567u64.wrapping_add(k.wrapping_mul(GAMMA));
        assert_eq!(
            dropout_seed(state, 0, 0),
            seed_1234567[k as usize - 1],
            "output {k}, seed 1234567"
        );
        assert_eq!(
            dropout_seed(0, k as usize, 0),
            seed_0[k as usize - 1],
            "output {k}, seed 0"
        );
    }
}

#[test]
fn dropout_seeds_are_distinct_and_look_independent_across_seeds_steps_and_chunks() {
    // Every (seed, step, chunk) gets its own dropout stream: no two seeds in a grid of 2,000
    // coincide, each of the 64 bits is set in about half of them, and the seeds of neighbouring
    // chunks differ in about half their bits (a mixer that leaves structure behind fails one of
    // the three).
    use aiayn::train::trainer::dropout_seed;
    let mut seeds = Vec::new();
    let mut flips = Vec::new();
    for seed in 0..5u64 {
        for step in 1..=50 {
            for chunk in 0..8 {
                let z = dropout_seed(seed, step, chunk);
                seeds.push(z);
                flips.push((z ^ dropout_seed(seed, step, chunk + 1)).count_ones());
            }
        }
    }
    let mut distinct = seeds.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), seeds.len(), "seeds coincide");
    for bit in 0..64 {
        let set = seeds.iter().filter(|z| *z >> bit & 1 == 1).count() as f64 / seeds.len() as f64;
        assert!(
            (0.43..0.57).contains(&set),
            "bit {bit} is set in {set:.3} of the seeds"
        );
    }
    let mean = flips.iter().sum::<u32>() as f64 / flips.len() as f64;
    assert!(
        (30.0..34.0).contains(&mean),
        "neighbouring chunks differ in {mean:.1} bits"
    );
}

#[test]
fn parallel_map_keeps_the_order_and_uses_the_threads_it_is_given() {
    // One thread (or one item) runs on the caller's thread; more run on that many spawned
    // threads (never more than the items), and the results come back in order either way.
    use aiayn::train::trainer::parallel_map;
    use std::thread::{current, ThreadId};
    let caller = current().id();
    let run = |n: usize, threads: usize| -> (Vec<usize>, Vec<ThreadId>) {
        let out = parallel_map(n, threads, |i| (i * i, current().id()));
        (
            out.iter().map(|o| o.0).collect(),
            out.iter().map(|o| o.1).collect(),
        )
    };
    for (n, threads) in [(50, 1), (50, 0), (1, 4), (0, 3)] {
        let (squares, ids) = run(n, threads);
        assert_eq!(squares, (0..n).map(|i| i * i).collect::<Vec<_>>());
        assert!(
            ids.iter().all(|&id| id == caller),
            "n {n}, {threads} threads"
        );
    }
    for (n, threads) in [(50, 2), (2, 3), (7, 7)] {
        let (squares, mut ids) = run(n, threads);
        assert_eq!(squares, (0..n).map(|i| i * i).collect::<Vec<_>>());
        assert!(
            ids.iter().all(|&id| id != caller),
            "n {n}, {threads} threads"
        );
        ids.sort_by_key(|id| format!("{id:?}"));
        ids.dedup();
        assert!(ids.len() <= threads.min(n), "n {n}: {} threads", ids.len());
    }
}

#[test]
fn a_batch_stream_goes_through_every_pair_once_per_epoch_in_a_new_order_each_time() {
    let task = Task::by_name("copy", 1).unwrap();
    let pairs = &task.train[..30];
    let mut stream = BatchStream::new(pairs, 60, 4);
    let mut epochs: Vec<Vec<Vec<usize>>> = vec![Vec::new()];
    let mut seen = 0;
    while epochs.len() < 4 {
        let indices = stream.next_batch().indices.clone();
        match stream.epoch() as usize {
            e if e == epochs.len() - 1 => {}
            e if e == epochs.len() => epochs.push(Vec::new()),
            e => panic!("epoch {e} after epoch {}", epochs.len() - 1),
        }
        epochs.last_mut().unwrap().push(indices);
        seen += 1;
        assert!(seen < 1000, "the epochs never end");
    }
    epochs.pop(); // the first batch of epoch 3
    for (e, batches) in epochs.iter().enumerate() {
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>(), "epoch {e}");
        assert!(batches.len() > 2, "epoch {e}: {} batches", batches.len());
    }
    assert!(epochs[0] != epochs[1] && epochs[1] != epochs[2] && epochs[0] != epochs[2]);
    // a stream that skips to any step gives that step's batch
    let flat: Vec<&Vec<usize>> = epochs.iter().flatten().collect();
    for k in [0, 5, epochs[0].len(), epochs[0].len() + 1] {
        let mut again = BatchStream::new(pairs, 60, 4);
        again.skip(k);
        assert_eq!(&again.next_batch().indices, flat[k], "after {k} batches");
    }
}

#[test]
fn a_batch_cut_into_chunks_has_the_loss_and_gradients_of_the_batch_in_one_piece() {
    // Without dropout the chunks only change the order of the sums: 40 pairs are chunks of
    // 16, 16 and 8, on one thread or two, and give what one stacked pass over all 40 gives.
    use aiayn::dropout::Dropout;
    use aiayn::train::trainer::{batch_gradients, chunk_gradients, CHUNK};
    let task = Task::by_name("reverse", 1).unwrap();
    let pairs: Vec<usize> = (0..40).collect();
    assert!(pairs.len() > 2 * CHUNK);
    let batch = aiayn::train::batch::Batch::from_pairs(&task.train, &pairs);
    let model = Transformer::<f64>::new(
        &tiny_config(),
        task.vocab.len(),
        &mut StdRng::seed_from_u64(9),
    )
    .expect("a valid config");
    let (whole, whole_loss) = chunk_gradients(
        &model,
        &batch,
        0..batch.len(),
        0.1,
        &mut Dropout::new(0.0, 0),
    );
    for threads in [1, 2] {
        let options = TrainOptions {
            p_drop: 0.0,
            ..options(threads)
        };
        let (chunked, loss) = batch_gradients(&model, &batch, &options, 1);
        assert!(
            (loss - whole_loss).abs() <= 1e-12 * whole_loss,
            "{loss} vs {whole_loss}"
        );
        for (a, b) in chunked.params().iter().zip(whole.params()) {
            for (x, y) in a.data.iter().zip(b.data) {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                    "{}: {x} vs {y}",
                    a.name
                );
            }
        }
    }
}

#[test]
fn a_step_moves_every_parameter_against_the_gradient_of_the_mean_loss_it_reports() {
    // Adam's first step moves a parameter by -lr g / (|g| + eps) (m_hat = g and v_hat = g^2
    // after one step); with eps = 1 that is invertible, g = u / (1 - |u|) with u = -delta / lr.
    // The gradient read back from the step must be the central difference of the loss the
    // step reports (label-smoothed, per real target token, no dropout), coordinate by
    // coordinate, in every kind of tensor. A gradient summed instead of averaged over the
    // tokens is off by a factor of the batch's token count (over 20 here).
    let task = Task::by_name("copy", 1).unwrap();
    let batch = aiayn::train::batch::Batch::from_pairs(&task.train, &[0, 1, 2, 3, 4]);
    let model = Transformer::<f64>::new(
        &tiny_config(),
        task.vocab.len(),
        &mut StdRng::seed_from_u64(5),
    )
    .expect("a valid config");
    let mut trainer = Trainer::new(
        model,
        TrainOptions {
            p_drop: 0.0,
            ..options(1)
        },
    );
    trainer.adam = aiayn::train::adam::Adam::new(0.9, 0.98, 1.0);
    assert!(
        batch.tgt_tokens() > 20,
        "{} target tokens",
        batch.tgt_tokens()
    );
    let before = trainer.clone();
    let loss_at = |shift: &dyn Fn(&mut Transformer<f64>)| {
        let mut t = before.clone();
        shift(&mut t.model);
        t.train_step(&batch).loss
    };
    let stats = trainer.train_step(&batch);
    assert_eq!(stats.loss, loss_at(&|_| {}));
    let (old, new) = (before.model.params(), trainer.model.params());
    let mut checked = 0;
    for (k, (p0, p1)) in old.iter().zip(&new).enumerate() {
        // a coordinate of every tensor: the first, the last, or one in between
        let i = (k * 7919) % p0.data.len();
        let u = -(p1.data[i] - p0.data[i]) / stats.lr;
        let g = u / (1.0 - u.abs());
        let h = 1e-5;
        let nudge = |d: f64| {
            move |m: &mut Transformer<f64>| {
                let mut ps = m.params_mut();
                ps[k].data[i] += d;
            }
        };
        let fd = (loss_at(&nudge(h)) - loss_at(&nudge(-h))) / (2.0 * h);
        assert!(
            (g - fd).abs() <= 1e-7 + 1e-5 * fd.abs(),
            "{}[{i}]: the step followed {g:e}, the loss's slope is {fd:e}",
            p0.name
        );
        checked += usize::from(fd.abs() > 1e-4);
    }
    // most coordinates have a slope worth checking (a few, like a padding row, have none)
    assert!(
        checked * 4 >= old.len() * 3,
        "{checked} of {} with a slope",
        old.len()
    );
}

#[test]
fn averaging_copies_of_one_checkpoint_returns_it_and_averaging_is_linear() {
    use aiayn::train::state::{average, save_model};
    let task = Task::by_name("copy", 1).unwrap();
    let dir = scratch("average");
    let a = tiny_trainer(&task, 1);
    let mut b = tiny_trainer(&task, 1);
    run(&mut b, &task, 3);
    let (pa, pb) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    save_trainer(&pa, &a, &info(&task)).unwrap();
    save_model(&pb, &b.model, &info(&task), 3).unwrap();
    let (same, same_info, step) = average(&[pa.clone(), pa.clone(), pa.clone()]).unwrap();
    assert_eq!(
        (bits(&same), same_info, step),
        (bits(&a.model), info(&task), 0)
    );
    let (mean, _, step) = average(&[pa.clone(), pb.clone()]).unwrap();
    assert_eq!(step, 3, "the last step of the averaged checkpoints");
    for ((pm, px), py) in mean
        .params()
        .iter()
        .zip(a.model.params())
        .zip(b.model.params())
    {
        for ((&m, &x), &y) in pm.data.iter().zip(px.data).zip(py.data) {
            let want = (f64::from(x) + f64::from(y)) / 2.0;
            assert!(
                (f64::from(m) - want).abs() <= want.abs() * 1e-7,
                "{}: {m} vs {want}",
                pm.name
            );
        }
    }
    // a model saved without its training state cannot resume a run
    let e = load_trainer(&pb, 1).unwrap_err().to_string();
    assert!(
        e.contains("b.safetensors") && e.contains("resumable"),
        "{e}"
    );
    // another model's checkpoint is refused by name
    let other = Task::by_name("translate", 1).unwrap();
    let pc = dir.join("c.safetensors");
    let mut other_info = info(&other);
    other_info.vocab = other.vocab.len();
    let model = Transformer::new(
        &tiny_config(),
        other.vocab.len(),
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    save_model(&pc, &model, &other_info, 1).unwrap();
    let e = average(&[pa, pc]).unwrap_err().to_string();
    assert!(
        e.contains("c.safetensors") && e.contains("task") && e.contains("translate"),
        "{e}"
    );
}

#[test]
fn decoding_metrics_are_perfect_against_the_models_own_translations_and_zero_against_others() {
    use aiayn::train::evaluate::evaluate_decoding;
    let task = Task::by_name("translate", 1).unwrap();
    let model = tiny_trainer(&task, 1).model;
    let words = |ids: &[usize]| task.vocab.decode(ids);
    let first = evaluate_decoding(&model, &task.held_out[..6], 2, 2, 0.6, words);
    // references replaced by the model's own beam-2 outputs: everything matches
    let own: Vec<aiayn::train::tasks::Pair> = task.held_out[..6]
        .iter()
        .zip(&first.hypotheses)
        .map(|(p, h)| aiayn::train::tasks::Pair {
            src: p.src.clone(),
            tgt: h.clone(),
        })
        .collect();
    let again = evaluate_decoding(&model, &own, 1, 2, 0.6, words);
    assert_eq!(
        again.hypotheses, first.hypotheses,
        "deterministic, whatever the threads"
    );
    assert_eq!(again.exact_match, 1.0);
    assert!((again.bleu.score - 100.0).abs() < 1e-9, "{}", again.bleu);
    // §6.1: at most the source length + 50 tokens, and an untrained model that never ends a
    // sentence uses them all
    for (p, h) in task.held_out[..6].iter().zip(&first.hypotheses) {
        assert_eq!(h.len(), p.src.len() + 50, "{} source tokens", p.src.len());
    }
    // an untrained model translates none of the real references
    assert_eq!(first.exact_match, 0.0);
    assert!(first.bleu.score < 5.0, "{}", first.bleu);
}

#[test]
fn evaluation_scores_a_models_own_greedy_translations_as_exact_with_the_training_loss_unsmoothed() {
    // A model trained on eight pairs until some of its greedy translations end: against those
    // translations as references, every greedy output matches (exact match 1 whatever the
    // extra length allowed, as long as it is not less than none), every reference token is
    // the model's first choice under teacher forcing (token accuracy 1), and the loss is the
    // mean negative log-likelihood per token that the training step reports with
    // eps_ls = 0 (its batched, padded path, not evaluate's pair-by-pair one).
    use aiayn::decode::greedy;
    use aiayn::train::evaluate::evaluate;
    use aiayn::train::tasks::{Pair, BOS, EOS};
    let task = Task::by_name("copy", 1).unwrap();
    let (trainer, _) = memorised(&task);
    let own: Vec<Pair> = task.train[..8]
        .iter()
        .map(|p| Pair {
            src: p.src.clone(),
            tgt: greedy(&trainer.model, &p.src, BOS, EOS, 40),
        })
        .filter(|p| p.tgt.len() < 40) // it ended with EOS
        .collect();
    assert!(own.len() >= 3, "only {} translations ended", own.len());
    let mut unsmoothed = trainer.clone();
    unsmoothed.options.eps_ls = 0.0;
    let own_batch =
        aiayn::train::batch::Batch::from_pairs(&own, &(0..own.len()).collect::<Vec<_>>());
    let nll = unsmoothed.train_step(&own_batch).loss;
    for (threads, extra) in [(1, 0), (2, 3)] {
        let m = evaluate(&trainer.model, &own, threads, extra);
        assert_eq!(m.pairs, own.len());
        assert_eq!(m.exact_match, 1.0, "extra {extra}: {m:?}");
        assert_eq!(m.token_accuracy, 1.0, "extra {extra}: {m:?}");
        assert!(
            (m.loss - nll).abs() <= 1e-5 * nll,
            "evaluate's loss {} vs the training step's {nll}",
            m.loss
        );
        assert!(m.loss > 0.0 && (m.perplexity - m.loss.exp()).abs() <= 1e-12 * m.perplexity);
    }
    // the real references of pairs it has not seen: no translation exact, fewer tokens right
    let unseen = evaluate(&trainer.model, &task.held_out[..8], 2, 0);
    assert!(
        unseen.exact_match < 1.0 && unseen.token_accuracy < 1.0,
        "{unseen:?}"
    );
}
