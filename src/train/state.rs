//! A training run's state in a checkpoint: the model's parameters under their names, Adam's
//! moments, the step, the configuration and the seeds, so that a run can stop and resume
//! exactly, and so that `aiayn translate` can rebuild the model and its vocabulary.
//!
//! Metadata keys (all strings): `format` (`aiayn-checkpoint/1`), `task`, `data_seed`, `seed`,
//! `step`, `adam_t`, `vocab`, the model's sizes (`n_layers`, `d_model`, `d_ff`, `h`, `d_k`,
//! `d_v`, `positional`, `max_len`, `attention_bias`, `layer_norm_eps`, `placement`) and the run's
//! options (`p_drop`, `eps_ls`, `warmup`, `lr_scale`, `batch_tokens`), and `resumable` (false for
//! a model saved without its training state, such as an average). Tensors: every parameter
//! under its name (see [`crate::params`]), and `adam.m.<name>`, `adam.v.<name>` once Adam has
//! taken a step.

use std::collections::BTreeMap;
use std::path::Path;

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::checkpoint::{load, save, Checkpoint, CheckpointError, NamedTensor};
use crate::config::{Config, Positional};
use crate::model::Transformer;
use crate::params::{Param, Parameters};
use crate::sublayer::NormPlacement;
use crate::train::trainer::{TrainOptions, Trainer};

/// The format tag in every checkpoint's metadata.
pub const FORMAT: &str = "aiayn-checkpoint/1";

/// What a checkpoint says about the run besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// The task's name (`copy`, `reverse`, `translate`).
    pub task: String,
    /// The seed the task's data was generated from.
    pub data_seed: u64,
    pub config: Config,
    pub vocab: usize,
}

/// A parameter as a row-major tensor, 1-D for vectors.
fn tensor(name: String, p: &Param<'_, f32>, data: &[f32]) -> NamedTensor {
    let m = DMatrix::from_column_slice(p.rows, p.cols, data);
    let mut t = NamedTensor::from_matrix(name, &m);
    t.shape = p.shape();
    t
}

/// Writes the trainer's model, Adam state and step, with `info`, to `path`.
///
/// # Errors
/// As [`save`].
pub fn save_trainer(
    path: &Path,
    trainer: &Trainer<f32>,
    info: &RunInfo,
) -> Result<(), CheckpointError> {
    save_trainer_with(path, trainer, info, true)
}

/// [`save_trainer`], marking whether the file holds a run's whole state (`resumable`) or a
/// model alone.
fn save_trainer_with(
    path: &Path,
    trainer: &Trainer<f32>,
    info: &RunInfo,
    resumable: bool,
) -> Result<(), CheckpointError> {
    let params = trainer.model.params();
    let (m, v) = trainer.adam.moments();
    let mut tensors = Vec::with_capacity(3 * params.len());
    for (i, p) in params.iter().enumerate() {
        tensors.push(tensor(p.name.clone(), p, p.data));
        if trainer.adam.t > 0 {
            tensors.push(tensor(format!("adam.m.{}", p.name), p, &m[i]));
            tensors.push(tensor(format!("adam.v.{}", p.name), p, &v[i]));
        }
    }
    let mut metadata = config_metadata(&info.config);
    let o = &trainer.options;
    for (k, val) in [
        ("format", FORMAT.to_string()),
        ("task", info.task.clone()),
        ("data_seed", info.data_seed.to_string()),
        ("vocab", info.vocab.to_string()),
        ("seed", o.seed.to_string()),
        ("step", trainer.step.to_string()),
        ("adam_t", trainer.adam.t.to_string()),
        ("p_drop", o.p_drop.to_string()),
        ("eps_ls", o.eps_ls.to_string()),
        ("warmup", o.warmup.to_string()),
        ("lr_scale", o.lr_scale.to_string()),
        ("batch_tokens", o.batch_tokens.to_string()),
        ("resumable", resumable.to_string()),
    ] {
        metadata.insert(k.to_string(), val);
    }
    save(path, &Checkpoint { tensors, metadata })
}

fn config_metadata(c: &Config) -> BTreeMap<String, String> {
    let positional = match c.positional {
        Positional::Sinusoidal => "sinusoidal",
        Positional::Learned => "learned",
    };
    let placement = match c.placement {
        NormPlacement::Post => "post",
        NormPlacement::Pre => "pre",
    };
    [
        ("n_layers", c.n_layers.to_string()),
        ("d_model", c.d_model.to_string()),
        ("d_ff", c.d_ff.to_string()),
        ("h", c.h.to_string()),
        ("d_k", c.d_k.to_string()),
        ("d_v", c.d_v.to_string()),
        ("positional", positional.to_string()),
        ("max_len", c.max_len.to_string()),
        ("attention_bias", c.attention_bias.to_string()),
        ("layer_norm_eps", c.layer_norm_eps.to_string()),
        ("placement", placement.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn read_config(ckpt: &Checkpoint, path: &Path) -> Result<Config, CheckpointError> {
    let meta_err = |key: &str, problem: String| CheckpointError::Meta {
        path: path.to_path_buf(),
        key: key.to_string(),
        problem,
    };
    let positional = match ckpt.meta(path, "positional")? {
        "sinusoidal" => Positional::Sinusoidal,
        "learned" => Positional::Learned,
        other => {
            return Err(meta_err(
                "positional",
                format!("is {other:?}, not sinusoidal or learned"),
            ))
        }
    };
    let placement = match ckpt.meta(path, "placement")? {
        "post" => NormPlacement::Post,
        "pre" => NormPlacement::Pre,
        other => {
            return Err(meta_err(
                "placement",
                format!("is {other:?}, not post or pre"),
            ))
        }
    };
    let config = Config {
        n_layers: ckpt.meta_parse(path, "n_layers")?,
        d_model: ckpt.meta_parse(path, "d_model")?,
        d_ff: ckpt.meta_parse(path, "d_ff")?,
        h: ckpt.meta_parse(path, "h")?,
        d_k: ckpt.meta_parse(path, "d_k")?,
        d_v: ckpt.meta_parse(path, "d_v")?,
        positional,
        max_len: ckpt.meta_parse(path, "max_len")?,
        attention_bias: ckpt.meta_parse(path, "attention_bias")?,
        layer_norm_eps: ckpt.meta_parse(path, "layer_norm_eps")?,
        placement,
        ..Config::base()
    };
    config
        .validate()
        .map_err(|e| meta_err("d_model", format!("the sizes do not make a model: {e}")))?;
    Ok(config)
}

/// The model stored in `path`, and what the checkpoint says about its run.
///
/// # Errors
/// An unreadable or malformed file, missing or unparsable metadata, sizes that do not make a
/// model, or a missing or misshapen tensor: each named.
pub fn load_model(path: &Path) -> Result<(Transformer<f32>, RunInfo, Checkpoint), CheckpointError> {
    let ckpt = load(path)?;
    let format = ckpt.meta(path, "format")?;
    if format != FORMAT {
        return Err(CheckpointError::Meta {
            path: path.to_path_buf(),
            key: "format".to_string(),
            problem: format!("is {format:?}, expected {FORMAT:?}"),
        });
    }
    let config = read_config(&ckpt, path)?;
    let vocab: usize = ckpt.meta_parse(path, "vocab")?;
    check_sizes_fit(&config, vocab, &ckpt, path)?;
    let mut model = Transformer::new(&config, vocab.max(1), &mut StdRng::seed_from_u64(0))
        .map_err(|e| CheckpointError::Meta {
            path: path.to_path_buf(),
            key: "vocab".to_string(),
            problem: e.to_string(),
        })?;
    fill(&mut model, &ckpt, path, "")?;
    let info = RunInfo {
        task: ckpt.meta(path, "task")?.to_string(),
        data_seed: ckpt.meta_parse(path, "data_seed")?,
        config,
        vocab,
    };
    Ok((model, info, ckpt))
}

/// Models up to this many parameters (64 MiB of f32) are built whatever the file holds, so that
/// [`fill`] can name a missing or misshapen tensor; larger ones must be backed by the file.
const BUILT_UNCHECKED: usize = 1 << 24;

/// Refuses sizes in the metadata that make a model with more parameters than the file holds
/// values (beyond [`BUILT_UNCHECKED`]), before any of it is allocated: a header claiming a
/// vocabulary of 10^12 is a message, not an allocation failure. Each product is checked on its
/// own first, so that the count cannot overflow.
fn check_sizes_fit(
    config: &Config,
    vocab: usize,
    ckpt: &Checkpoint,
    path: &Path,
) -> Result<(), CheckpointError> {
    let values: usize = ckpt.tensors.iter().map(|t| t.data.len()).sum();
    let limit = values.max(BUILT_UNCHECKED);
    let too_big = |key: &str, what: String| CheckpointError::Meta {
        path: path.to_path_buf(),
        key: key.to_string(),
        problem: format!(
            "does not fit the file: {what}, but the file holds {values} values in {} tensors",
            ckpt.tensors.len()
        ),
    };
    let d = config.d_model;
    let mut products = vec![
        ("vocab", "vocab x d_model", vec![vocab, d]),
        ("d_ff", "d_ff x d_model", vec![config.d_ff, d]),
        ("d_k", "h x d_k x d_model", vec![config.h, config.d_k, d]),
        ("d_v", "h x d_v x d_model", vec![config.h, config.d_v, d]),
    ];
    if config.positional == Positional::Learned {
        products.push(("max_len", "max_len x d_model", vec![config.max_len, d]));
    }
    for (key, label, factors) in products {
        let product = factors.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if product.is_none_or(|p| p > limit) {
            let factors: Vec<String> = factors.iter().map(usize::to_string).collect();
            return Err(too_big(
                key,
                format!("{label} = {} values", factors.join(" x ")),
            ));
        }
    }
    if config.n_layers > ckpt.tensors.len().max(1024) {
        return Err(too_big(
            "n_layers",
            format!("{} layers need at least as many tensors", config.n_layers),
        ));
    }
    let total = config.param_counts(vocab).total;
    if total > limit {
        return Err(too_big(
            "sizes",
            format!(
                "n_layers {}, d_model {d}, d_ff {}, h {}, vocab {vocab} make {total} parameters",
                config.n_layers, config.d_ff, config.h
            ),
        ));
    }
    Ok(())
}

/// Overwrites every parameter of `model` with the tensor named `prefix` + its name.
fn fill(
    model: &mut Transformer<f32>,
    ckpt: &Checkpoint,
    path: &Path,
    prefix: &str,
) -> Result<(), CheckpointError> {
    let shapes: Vec<(String, Vec<usize>, usize, usize)> = model
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.shape(), p.rows, p.cols))
        .collect();
    for ((name, shape, rows, cols), dst) in shapes.iter().zip(model.params_mut()) {
        let t = ckpt.expect(path, &format!("{prefix}{name}"), shape)?;
        // row-major in the file, column-major in memory
        let m = DMatrix::from_row_slice(*rows, *cols, &t.data);
        dst.data.copy_from_slice(m.as_slice());
    }
    Ok(())
}

/// A trainer restored from `path` to continue exactly where it stopped; `threads` is not part
/// of the state (the result does not depend on it).
///
/// # Errors
/// As [`load_model`], and for missing Adam moments or options.
pub fn load_trainer(
    path: &Path,
    threads: usize,
) -> Result<(Trainer<f32>, RunInfo), CheckpointError> {
    let (model, info, ckpt) = load_model(path)?;
    if !ckpt.meta_parse::<bool>(path, "resumable")? {
        return Err(CheckpointError::Meta {
            path: path.to_path_buf(),
            key: "resumable".to_string(),
            problem: "is false: the file holds a model without its training state (an average, \
                      or an export), so no run can resume from it"
                .to_string(),
        });
    }
    let options = TrainOptions {
        p_drop: ckpt.meta_parse(path, "p_drop")?,
        eps_ls: ckpt.meta_parse(path, "eps_ls")?,
        warmup: ckpt.meta_parse(path, "warmup")?,
        lr_scale: ckpt.meta_parse(path, "lr_scale")?,
        batch_tokens: ckpt.meta_parse(path, "batch_tokens")?,
        seed: ckpt.meta_parse(path, "seed")?,
        threads,
    };
    let mut trainer = Trainer::new(model, options);
    trainer.step = ckpt.meta_parse(path, "step")?;
    let t: u64 = ckpt.meta_parse(path, "adam_t")?;
    if t > 0 {
        let mut m_model = trainer.model.clone();
        let mut v_model = trainer.model.clone();
        fill(&mut m_model, &ckpt, path, "adam.m.")?;
        fill(&mut v_model, &ckpt, path, "adam.v.")?;
        let m = m_model.params().iter().map(|p| p.data.to_vec()).collect();
        let v = v_model.params().iter().map(|p| p.data.to_vec()).collect();
        trainer.adam.restore(t, m, v);
    }
    Ok((trainer, info))
}

/// Writes `model` alone (no optimiser state) with `info`, as a checkpoint that `aiayn translate`
/// and [`load_model`] read; `step` is recorded in the metadata.
///
/// # Errors
/// As [`save`].
pub fn save_model(
    path: &Path,
    model: &Transformer<f32>,
    info: &RunInfo,
    step: usize,
) -> Result<(), CheckpointError> {
    let options = TrainOptions {
        p_drop: info.config.p_drop,
        eps_ls: info.config.eps_ls,
        warmup: info.config.warmup_steps,
        lr_scale: 1.0,
        batch_tokens: 0,
        seed: 0,
        threads: 1,
    };
    let mut trainer = Trainer::new(model.clone(), options);
    trainer.step = step;
    save_trainer_with(path, &trainer, info, false)
}

// ANCHOR: average
/// Checkpoint averaging (§6.1): the mean of each parameter over the checkpoints in `paths`.
/// The paper averages the last 5 checkpoints of the base models and the last 20 of the big ones.
/// Sums are taken in f64, so averaging N copies of one checkpoint returns it bit for bit.
///
/// # Errors
/// An unreadable checkpoint, or one whose task, data seed, vocabulary or sizes differ from the first's
/// (named, with both values), so that no tensor is averaged with one of another shape.
pub fn average(
    paths: &[std::path::PathBuf],
) -> Result<(Transformer<f32>, RunInfo, usize), CheckpointError> {
    let Some((first, rest)) = paths.split_first() else {
        return Err(CheckpointError::Format {
            path: std::path::PathBuf::from("-"),
            reason: "no checkpoints to average".to_string(),
        });
    };
    let (mut model, info, ckpt) = load_model(first)?;
    let mut step: usize = ckpt.meta_parse(first, "step")?;
    let mut sums: Vec<Vec<f64>> = model
        .params()
        .iter()
        .map(|p| p.data.iter().map(|&x| f64::from(x)).collect())
        .collect();
    for path in rest {
        let (other, other_info, other_ckpt) = load_model(path)?;
        for (key, a, b) in [
            ("task", info.task.clone(), other_info.task.clone()),
            (
                "data_seed", // another seed, another split: held-out pairs trained on
                info.data_seed.to_string(),
                other_info.data_seed.to_string(),
            ),
            (
                "vocab",
                info.vocab.to_string(),
                other_info.vocab.to_string(),
            ),
            (
                "sizes",
                format!("{:?}", info.config),
                format!("{:?}", other_info.config),
            ),
        ] {
            if a != b {
                return Err(CheckpointError::Meta {
                    path: path.clone(),
                    key: key.to_string(),
                    problem: format!(
                        "is {b}, but {} has {a}; only checkpoints of one model can be averaged",
                        first.display()
                    ),
                });
            }
        }
        step = step.max(other_ckpt.meta_parse(path, "step")?);
        for (sum, p) in sums.iter_mut().zip(other.params()) {
            for (s, &x) in sum.iter_mut().zip(p.data) {
                *s += f64::from(x);
            }
        }
    }
    let n = paths.len() as f64;
    for (sum, p) in sums.iter().zip(model.params_mut()) {
        for (x, s) in p.data.iter_mut().zip(sum) {
            *x = (s / n) as f32;
        }
    }
    Ok((model, info, step))
}
// ANCHOR_END: average
