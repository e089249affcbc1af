//! Model configurations: the base and big models, and every row of Table 3 (§6.2).
//!
//! `Config::base()` is the paper's base model; `Config::table3("C4")` is row C with
//! d_model = 256, and so on. Rows are named by their letter and their position within the
//! letter group (A1..A4, B1, B2, C1..C7, D1..D4, E), plus `base` and `big`. Each row also records
//! what the paper measured for it (perplexity and BLEU on newstest2013, parameter count).

use std::fmt;

use crate::sublayer::NormPlacement;

/// How positions are encoded (§3.5, Table 3 row E).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positional {
    Sinusoidal,
    Learned,
}

/// The hyper-parameters of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// N: layers in each stack.
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    /// Number of heads.
    pub h: usize,
    pub d_k: usize,
    pub d_v: usize,
    /// Residual dropout (§5.4).
    pub p_drop: f64,
    /// Label smoothing (§5.4).
    pub eps_ls: f64,
    /// Training steps (§5.2).
    pub train_steps: usize,
    /// Warm-up steps of the learning-rate schedule, Eq. 3 (§5.3).
    pub warmup_steps: usize,
    pub positional: Positional,
    /// Positions a learned positional table covers (row E). Not given in the paper.
    pub max_len: usize,
    /// Biases on the attention projections: not in the paper, present in PyTorch.
    pub attention_bias: bool,
    /// LayerNorm's eps. Not given in the paper; tensor2tensor uses 1e-6.
    pub layer_norm_eps: f64,
    pub placement: NormPlacement,
}

/// What the paper reports for a Table 3 row (newstest2013 dev set).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reported {
    pub ppl: f64,
    pub bleu: f64,
    /// Parameters x 10^6, where the table gives them.
    pub params_millions: Option<f64>,
}

/// Names of every Table 3 row, in the table's order.
pub const TABLE3_ROWS: [&str; 20] = [
    "base", "A1", "A2", "A3", "A4", "B1", "B2", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "D1",
    "D2", "D3", "D4", "E", "big", // keep "big" last, as in the table
];

/// An invalid configuration; the message carries the offending numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    /// A size that must be positive is zero.
    Zero { field: &'static str },
    /// The heads' concatenated values are not d_model wide.
    HeadsDoNotTile {
        h: usize,
        d_v: usize,
        d_model: usize,
    },
    /// A probability outside [0, 1).
    Probability { field: &'static str, value: f64 },
    /// Sinusoidal encodings pair sin and cos columns, so d_model must be even.
    OddSinusoidal { d_model: usize },
    /// LayerNorm's eps must be positive and finite.
    Eps { value: f64 },
    /// No Table 3 row has this name.
    UnknownRow { name: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Zero { field } => write!(f, "{field} must be at least 1, got 0"),
            ConfigError::HeadsDoNotTile { h, d_v, d_model } => write!(
                f,
                "h * d_v must equal d_model (the paper's design keeps the concatenated heads d_model wide): \
                 h = {h}, d_v = {d_v}, h * d_v = {}, d_model = {d_model}",
                h * d_v
            ),
            ConfigError::Probability { field, value } => write!(f, "{field} must be in [0, 1), got {value}"),
            ConfigError::OddSinusoidal { d_model } => write!(
                f,
                "sinusoidal positional encoding needs an even d_model (sin and cos come in pairs), got {d_model}"
            ),
            ConfigError::Eps { value } => write!(f, "layer_norm_eps must be positive and finite, got {value}"),
            ConfigError::UnknownRow { name } => {
                write!(f, "no Table 3 row is called {name:?}; the rows are {}", TABLE3_ROWS.join(", "))
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The base model (Table 3, first row).
    pub fn base() -> Config {
        Config {
            n_layers: 6,
            d_model: 512,
            d_ff: 2048,
            h: 8,
            d_k: 64,
            d_v: 64,
            p_drop: 0.1,
            eps_ls: 0.1,
            train_steps: 100_000,
            warmup_steps: 4000,
            positional: Positional::Sinusoidal,
            max_len: 512,
            attention_bias: false,
            layer_norm_eps: 1e-6,
            placement: NormPlacement::Post,
        }
    }

    /// The big model (Table 3, last row).
    pub fn big() -> Config {
        Config {
            d_model: 1024,
            d_ff: 4096,
            h: 16,
            p_drop: 0.3,
            train_steps: 300_000,
            ..Config::base()
        }
    }

    // ANCHOR: table3
    /// A row of Table 3 by name (see [`TABLE3_ROWS`]); blank cells are as in base.
    ///
    /// # Errors
    /// [`ConfigError::UnknownRow`] for any other name.
    pub fn table3(name: &str) -> Result<Config, ConfigError> {
        let base = Config::base();
        let heads = |h, d| Config {
            h,
            d_k: d,
            d_v: d,
            ..Config::base()
        };
        Ok(match name {
            "base" => base,
            "A1" => heads(1, 512),
            "A2" => heads(4, 128),
            "A3" => heads(16, 32),
            "A4" => heads(32, 16),
            "B1" => Config { d_k: 16, ..base },
            "B2" => Config { d_k: 32, ..base },
            "C1" => Config {
                n_layers: 2,
                ..base
            },
            "C2" => Config {
                n_layers: 4,
                ..base
            },
            "C3" => Config {
                n_layers: 8,
                ..base
            },
            "C4" => Config {
                d_model: 256,
                d_k: 32,
                d_v: 32,
                ..base
            },
            "C5" => Config {
                d_model: 1024,
                d_k: 128,
                d_v: 128,
                ..base
            },
            "C6" => Config { d_ff: 1024, ..base },
            "C7" => Config { d_ff: 4096, ..base },
            "D1" => Config {
                p_drop: 0.0,
                ..base
            },
            "D2" => Config {
                p_drop: 0.2,
                ..base
            },
            "D3" => Config {
                eps_ls: 0.0,
                ..base
            },
            "D4" => Config {
                eps_ls: 0.2,
                ..base
            },
            "E" => Config {
                positional: Positional::Learned,
                ..base
            },
            "big" => Config::big(),
            _ => {
                return Err(ConfigError::UnknownRow {
                    name: name.to_string(),
                })
            }
        })
    }
    // ANCHOR_END: table3

    /// What the paper reports for the named row.
    pub fn reported(name: &str) -> Option<Reported> {
        let r = |ppl, bleu, params: Option<f64>| {
            Some(Reported {
                ppl,
                bleu,
                params_millions: params,
            })
        };
        match name {
            "base" => r(4.92, 25.8, Some(65.0)),
            "A1" => r(5.29, 24.9, None),
            "A2" => r(5.00, 25.5, None),
            "A3" => r(4.91, 25.8, None),
            "A4" => r(5.01, 25.4, None),
            "B1" => r(5.16, 25.1, Some(58.0)),
            "B2" => r(5.01, 25.4, Some(60.0)),
            "C1" => r(6.11, 23.7, Some(36.0)),
            "C2" => r(5.19, 25.3, Some(50.0)),
            "C3" => r(4.88, 25.5, Some(80.0)),
            "C4" => r(5.75, 24.5, Some(28.0)),
            "C5" => r(4.66, 26.0, Some(168.0)),
            "C6" => r(5.12, 25.4, Some(53.0)),
            "C7" => r(4.75, 26.2, Some(90.0)),
            "D1" => r(5.77, 24.6, None),
            "D2" => r(4.95, 25.5, None),
            "D3" => r(4.67, 25.3, None),
            "D4" => r(5.47, 25.7, None),
            "E" => r(4.92, 25.7, None),
            "big" => r(4.33, 26.4, Some(213.0)),
            _ => None,
        }
    }

    /// Checks that the sizes make a model.
    ///
    /// # Errors
    /// The first problem found, with its numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("d_ff", self.d_ff),
            ("h", self.h),
            ("d_k", self.d_k),
            ("d_v", self.d_v),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.positional == Positional::Learned && self.max_len == 0 {
            return Err(ConfigError::Zero { field: "max_len" });
        }
        if self.h * self.d_v != self.d_model {
            return Err(ConfigError::HeadsDoNotTile {
                h: self.h,
                d_v: self.d_v,
                d_model: self.d_model,
            });
        }
        for (field, value) in [("p_drop", self.p_drop), ("eps_ls", self.eps_ls)] {
            if !(0.0..1.0).contains(&value) {
                return Err(ConfigError::Probability { field, value });
            }
        }
        if self.positional == Positional::Sinusoidal && self.d_model % 2 == 1 {
            return Err(ConfigError::OddSinusoidal {
                d_model: self.d_model,
            });
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(ConfigError::Eps {
                value: self.layer_norm_eps,
            });
        }
        Ok(())
    }

    // ANCHOR: param_counts
    /// Parameter counts by part, from the sizes alone (no model is built).
    ///
    /// Convention: one (vocab, d_model) embedding matrix shared by source, target and the
    /// pre-softmax linear, counted once; attention projections without biases unless
    /// `attention_bias`; every LayerNorm has a gain and a bias; no final stack norm in post-norm.
    pub fn param_counts(&self, vocab: usize) -> ParamCounts {
        let (d, h) = (self.d_model, self.h);
        let bias = |n: usize| if self.attention_bias { n } else { 0 };
        let attention = d * h * self.d_k * 2 + d * h * self.d_v + h * self.d_v * d // W^Q, W^K, W^V, W^O
            + bias(2 * h * self.d_k + h * self.d_v + d);
        let ffn = d * self.d_ff + self.d_ff + self.d_ff * d + d;
        let norm = 2 * d;
        let final_norm = if self.placement == NormPlacement::Pre {
            norm
        } else {
            0
        };
        let positional = match self.positional {
            Positional::Sinusoidal => 0,
            Positional::Learned => self.max_len * d,
        };
        let embedding = vocab * d;
        let encoder = self.n_layers * (attention + ffn + 2 * norm) + final_norm;
        let decoder = self.n_layers * (2 * attention + ffn + 3 * norm) + final_norm;
        ParamCounts {
            embedding,
            positional,
            encoder,
            decoder,
            total: embedding + positional + encoder + decoder,
        }
    }
    // ANCHOR_END: param_counts

    /// The vocabulary sizes V for which [`Config::param_counts`] gives a total that rounds to
    /// `millions` million (as Table 3 prints its counts, to whole millions, halves rounded up):
    /// the total is linear in V with slope d_model, so the answer is one interval, or `None`
    /// when no V >= 1 fits.
    ///
    /// # Example
    /// The base model without its embedding has 44,101,632 parameters; 65M needs
    /// 64.5M <= 44,101,632 + 512 V < 65.5M, that is V from 39,841 to 41,793.
    /// ```
    /// let base = aiayn::Config::base();
    /// assert_eq!(base.vocabularies_for(65.0), Some((39_841, 41_793)));
    /// ```
    pub fn vocabularies_for(&self, millions: f64) -> Option<(usize, usize)> {
        let fixed = self.param_counts(0).total as f64; // everything but the embedding
        let per_token = self.d_model as f64;
        let low = ((millions - 0.5) * 1e6 - fixed) / per_token; // total >= (m - 0.5) 10^6
        let high = ((millions + 0.5) * 1e6 - fixed) / per_token; // total < (m + 0.5) 10^6
        let first = low.ceil().max(1.0);
        let last = if high.fract() == 0.0 {
            high - 1.0
        } else {
            high.floor()
        };
        (first <= last).then_some((first as usize, last as usize))
    }
}

/// Parameter counts of a model, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamCounts {
    /// The shared embedding / pre-softmax matrix, counted once.
    pub embedding: usize,
    /// Learned positional embeddings (row E); 0 for sinusoids.
    pub positional: usize,
    pub encoder: usize,
    pub decoder: usize,
    pub total: usize,
}
