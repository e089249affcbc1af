//! Golden fixtures: files of inputs, parameters and expected outputs written by an independent
//! reference (PyTorch; see `fixtures/README.md` for the format), and the code that checks this
//! crate against them.
//!
//! [`load`] reads and validates a file; [`check`] runs the named op with this crate's modules
//! and compares every expected tensor, element by element, against
//! `|got - want| <= abs + rel * |want|`. Where the file carries gradients from autograd, each is
//! compared twice: with this crate's hand-written backward passes, to within rounding, and with
//! central finite differences of this crate's own forward pass, a check of the check that
//! shares no code with the backward passes. A tensor that feeds several inputs of an op
//! (self-attention's `x` as query, key and value) is stored once under `tied_inputs`, and its
//! gradient is the total derivative: the backward check sums the slots' gradients, and the
//! finite difference moves the tensor in every slot together. An op on text (BLEU) takes its
//! inputs as lists of strings, kept apart from the tensors in [`Fixture::text_inputs`].
//!
//! Every problem with a file is a [`FixtureError`] naming the file and the field: a missing
//! key, a wrong shape, a NaN, an unknown op. Nothing here panics on bad input.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, RowDVector};
use serde_json::Value;

use crate::attention::scaled_dot_product_attention;
use crate::decoder::{Decoder, DecoderLayer};
use crate::embedding::Embedding;
use crate::encoder::{Encoder, EncoderLayer};
use crate::feed_forward::FeedForward;
use crate::layer_norm::LayerNorm;
use crate::mask::Mask;
use crate::model::Transformer;
use crate::multi_head::MultiHeadAttention;
use crate::positional::{sinusoidal, PositionalEncoding};
use crate::softmax::{log_softmax_rows, softmax_rows};
use crate::sublayer::NormPlacement;
use crate::train::adam::Adam;
use crate::train::label_smoothing::{label_smoothed_loss, Spread};
use crate::train::schedule::lrate;

mod backward;

/// The format tag every fixture carries.
pub const FORMAT: &str = "aiayn-fixture/1";

/// The ops a fixture may name.
pub const OPS: [&str; 13] = [
    "softmax",
    "attention",
    "multi_head_attention",
    "feed_forward",
    "layer_norm",
    "encoder_layer",
    "decoder_layer",
    "transformer",
    "positional_encoding",
    "label_smoothing",
    "adam",
    "param_count",
    "bleu",
];

/// The inputs of an op: first those a tied tensor may feed (the vectors per position, or the
/// logits), then the rest (masks, token ids, optimiser data).
fn input_slots(op: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match op {
        "softmax" | "feed_forward" | "layer_norm" => (&["x"], &[]),
        "attention" => (&["q", "k", "v"], &["key_padding"]),
        "multi_head_attention" => (&["query", "key", "value"], &["key_padding"]),
        "encoder_layer" => (&["x"], &["key_padding"]),
        "decoder_layer" => (&["x", "memory"], &["memory_key_padding", "tgt_key_padding"]),
        "transformer" => (&[], &["src", "tgt", "src_key_padding"]),
        "label_smoothing" => (&["logits"], &["target"]),
        "adam" => (&[], &["p0", "grads"]),
        _ => (&[], &[]),
    }
}

/// An n-dimensional array of f64 in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Tensor {
    /// A tensor of the given shape; `data.len()` must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// A scalar (shape `[]`).
    pub fn scalar(x: f64) -> Tensor {
        Tensor {
            shape: vec![],
            data: vec![x],
        }
    }

    fn from_matrix(m: &DMatrix<f64>) -> Tensor {
        let data = m
            .row_iter()
            .flat_map(|r| r.iter().copied().collect::<Vec<_>>())
            .collect();
        Tensor {
            shape: vec![m.nrows(), m.ncols()],
            data,
        }
    }

    /// Stacks equally shaped tensors along a new leading axis.
    fn stack(parts: Vec<Tensor>) -> Tensor {
        let mut shape = vec![parts.len()];
        shape.extend(parts.first().map_or(vec![], |p| p.shape.clone()));
        Tensor {
            shape,
            data: parts.into_iter().flat_map(|p| p.data).collect(),
        }
    }
}

/// Absolute and relative tolerance: a value passes when `|got - want| <= abs + rel * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// The autograd gradients a fixture may carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// The loss is `sum over outputs of sum(output * loss_weights[output])`.
    pub loss_weights: BTreeMap<String, Tensor>,
    /// dLoss/d(name) for inputs and parameters.
    pub wrt: BTreeMap<String, Tensor>,
}

/// A parsed fixture file.
#[derive(Clone, Debug, PartialEq)]
pub struct Fixture {
    pub path: PathBuf,
    pub op: String,
    pub case: String,
    /// The ids of the book's equations the case checks (the `equation` field: one id, a list,
    /// or `""` for none).
    pub equations: Vec<String>,
    pub description: String,
    pub config: serde_json::Map<String, Value>,
    pub inputs: BTreeMap<String, Tensor>,
    /// Inputs that are lists of strings rather than tensors (the sentences of `bleu`): in the
    /// file, an entry of `inputs` whose value is a JSON array of strings.
    pub text_inputs: BTreeMap<String, Vec<String>>,
    /// Tied inputs: the tensor `inputs[name]` feeds every listed input slot of the op (self-
    /// attention's one `x` as `query`, `key` and `value`). Empty when the file has none.
    pub tied_inputs: BTreeMap<String, Vec<String>>,
    pub params: BTreeMap<String, Tensor>,
    pub expected: BTreeMap<String, Tensor>,
    pub gradients: Option<Gradients>,
    pub tolerance: Tolerance,
    /// For gradients against finite differences.
    pub gradient_tolerance: Tolerance,
    /// For gradients against the backward passes: the optional `backward_tolerance` field, or
    /// [`BACKWARD_TOLERANCE`].
    pub backward_tolerance: Tolerance,
}

/// The default tolerance of gradients from the backward passes against autograd's. Both are
/// exact derivatives evaluated in float64, so they differ only by rounding; see
/// `fixtures/README.md` for the measured errors.
pub const BACKWARD_TOLERANCE: Tolerance = Tolerance {
    abs: 1e-10,
    rel: 1e-8,
};

/// What went wrong with a fixture file.
#[derive(Clone, Debug, PartialEq)]
pub struct FixtureError {
    /// The file.
    pub path: PathBuf,
    /// The field, as a dotted path (`params.self_attn.w_q`), or empty for the whole file.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.path.display(), self.problem)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.path.display(),
                self.field,
                self.problem
            )
        }
    }
}

impl std::error::Error for FixtureError {}

/// What a tensor of the file is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `expected.NAME`: this crate's forward pass.
    Forward,
    /// `gradients.wrt.NAME`: this crate's hand-written backward pass.
    Backward,
    /// `gradients.wrt.NAME`: central finite differences of this crate's forward pass, the check
    /// of the check (it shares no code with the backward pass).
    FiniteDifference,
}

impl Source {
    /// A short label for reports: `forward`, `backward`, `finite diff`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Forward => "forward",
            Source::Backward => "backward",
            Source::FiniteDifference => "finite diff",
        }
    }
}

/// The comparison of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// `expected.NAME` or `gradients.wrt.NAME`.
    pub name: String,
    /// What computed the values compared with the file's.
    pub source: Source,
    pub max_abs_error: f64,
    /// Largest `|got - want| / |want|` over the elements with `want != 0`.
    pub max_rel_error: f64,
    pub tolerance: Tolerance,
    /// Elements outside the tolerance.
    pub mismatches: usize,
    pub len: usize,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.mismatches == 0
    }
}

/// The result of checking one fixture.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub path: PathBuf,
    pub op: String,
    pub case: String,
    pub comparisons: Vec<Comparison>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.comparisons.iter().all(Comparison::passed)
    }
}

/// Reads and validates a fixture file.
///
/// # Errors
/// The file cannot be read, is not JSON, or a field is missing, mistyped, misshapen or NaN.
pub fn load(path: &Path) -> Result<Fixture, FixtureError> {
    let err = |field: &str, problem: String| FixtureError {
        path: path.to_path_buf(),
        field: field.into(),
        problem,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err("", format!("cannot read the file: {e}")))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| err("", format!("not valid JSON: {e}")))?;
    parse(path, &json)
}

/// Validates an already parsed fixture (`path` is only used in messages).
///
/// # Errors
/// As [`load`].
pub fn parse(path: &Path, json: &Value) -> Result<Fixture, FixtureError> {
    let p = Parser { path };
    let top = json
        .as_object()
        .ok_or_else(|| p.err("", "the file must hold a JSON object".into()))?;
    let format = p.string(top, "format")?;
    if format != FORMAT {
        return Err(p.err("format", format!("expected \"{FORMAT}\", found {format:?}")));
    }
    let op = p.string(top, "op")?;
    if !OPS.contains(&op.as_str()) {
        return Err(p.err(
            "op",
            format!("unknown op {op:?}; known ops: {}", OPS.join(", ")),
        ));
    }
    let gradients = match top.get("gradients") {
        None => None,
        Some(g) => {
            let g = g
                .as_object()
                .ok_or_else(|| p.err("gradients", "must be an object".into()))?;
            Some(Gradients {
                loss_weights: p.tensors(g, "loss_weights", "gradients.")?,
                wrt: p.tensors(g, "wrt", "gradients.")?,
            })
        }
    };
    let (inputs, text_inputs) = p.inputs(top)?;
    let tied_inputs = p.tied_inputs(top, &op, &inputs)?;
    Ok(Fixture {
        path: path.to_path_buf(),
        case: p.string(top, "case")?,
        equations: p.equations(top)?,
        description: top
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        config: top
            .get("config")
            .map(|c| {
                c.as_object()
                    .cloned()
                    .ok_or_else(|| p.err("config", "must be an object".into()))
            })
            .transpose()?
            .unwrap_or_default(),
        inputs,
        text_inputs,
        tied_inputs,
        params: if top.contains_key("params") {
            p.tensors(top, "params", "")?
        } else {
            BTreeMap::new()
        },
        expected: p.tensors(top, "expected", "")?,
        gradients,
        tolerance: p.tolerance(top, "tolerance")?,
        gradient_tolerance: if top.contains_key("gradient_tolerance") {
            p.tolerance(top, "gradient_tolerance")?
        } else {
            Tolerance {
                abs: 1e-7,
                rel: 1e-6,
            }
        },
        backward_tolerance: if top.contains_key("backward_tolerance") {
            p.tolerance(top, "backward_tolerance")?
        } else {
            BACKWARD_TOLERANCE
        },
        op,
    })
}

struct Parser<'a> {
    path: &'a Path,
}

impl Parser<'_> {
    fn err(&self, field: &str, problem: String) -> FixtureError {
        FixtureError {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            problem,
        }
    }

    fn string(
        &self,
        obj: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Result<String, FixtureError> {
        match obj.get(key) {
            None => Err(self.err(key, "missing".into())),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(key, format!("must be a string, found {other}"))),
        }
    }

    fn equations(&self, obj: &serde_json::Map<String, Value>) -> Result<Vec<String>, FixtureError> {
        let bad = || {
            self.err(
                "equation",
                "must be an id such as \"eq:attention\", a list of ids, or \"\"".into(),
            )
        };
        match obj.get("equation") {
            None => Err(self.err("equation", "missing".into())),
            Some(Value::String(s)) if s.is_empty() => Ok(vec![]),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| id.as_str().map(str::to_string).ok_or_else(bad))
                .collect(),
            Some(_) => Err(bad()),
        }
    }

    /// The optional `tied_inputs` object: tensor name -> the input slots it feeds.
    fn tied_inputs(
        &self,
        obj: &serde_json::Map<String, Value>,
        op: &str,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Vec<String>>, FixtureError> {
        let Some(ties) = obj.get("tied_inputs") else {
            return Ok(BTreeMap::new());
        };
        let ties = ties.as_object().ok_or_else(|| {
            self.err(
                "tied_inputs",
                "must be an object: tensor name -> list of input slots".into(),
            )
        })?;
        let (slots, others) = input_slots(op);
        let mut fed_by: BTreeMap<&str, &str> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (name, list) in ties {
            let field = format!("tied_inputs.{name}");
            if slots.contains(&name.as_str()) || others.contains(&name.as_str()) {
                return Err(self.err(
                    &field,
                    format!(
                        "{name:?} is itself an input of op {op}; give the tied tensor a name of its own"
                    ),
                ));
            }
            let list = list
                .as_array()
                .filter(|l| !l.is_empty())
                .and_then(|l| l.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or_else(|| {
                    self.err(
                        &field,
                        "must be a non-empty list of input slot names".into(),
                    )
                })?;
            for &slot in &list {
                if !slots.contains(&slot) {
                    let problem = if slots.is_empty() {
                        format!("{slot:?}: op {op} has no input a tied tensor can feed")
                    } else {
                        format!(
                            "{slot:?} is not an input of op {op} that a tensor can feed ({})",
                            slots.join(", ")
                        )
                    };
                    return Err(self.err(&field, problem));
                }
                if inputs.contains_key(slot) {
                    return Err(self.err(
                        &field,
                        format!("slot {slot:?} is fed by inputs.{name}, so inputs.{slot} must be absent"),
                    ));
                }
                if let Some(other) = fed_by.insert(slot, name) {
                    return Err(self.err(
                        &field,
                        format!("slot {slot:?} is already fed by tied_inputs.{other}"),
                    ));
                }
            }
            if !inputs.contains_key(name) {
                return Err(self.err(&field, format!("the tied tensor inputs.{name} is missing")));
            }
            out.insert(name.clone(), list.into_iter().map(str::to_string).collect());
        }
        Ok(out)
    }

    fn tolerance(
        &self,
        obj: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Result<Tolerance, FixtureError> {
        let t = obj
            .get(key)
            .ok_or_else(|| self.err(key, "missing".into()))?;
        let get = |k: &str| {
            t.get(k)
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    self.err(
                        &format!("{key}.{k}"),
                        "missing, or not a finite number >= 0".into(),
                    )
                })
        };
        Ok(Tolerance {
            abs: get("abs")?,
            rel: get("rel")?,
        })
    }

    /// The `inputs` object: tensors, and lists of strings (a JSON array whose every element is
    /// a string) apart.
    #[allow(clippy::type_complexity)]
    fn inputs(
        &self,
        obj: &serde_json::Map<String, Value>,
    ) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, Vec<String>>), FixtureError> {
        let map = obj
            .get("inputs")
            .ok_or_else(|| self.err("inputs", "missing".into()))?
            .as_object()
            .ok_or_else(|| {
                self.err(
                    "inputs",
                    "must be an object of tensors or lists of strings".into(),
                )
            })?;
        let (mut tensors, mut texts) = (BTreeMap::new(), BTreeMap::new());
        for (name, value) in map {
            let field = format!("inputs.{name}");
            match value.as_array() {
                Some(items) => {
                    let mut lines = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let line = item.as_str().ok_or_else(|| {
                            self.err(&field, format!("element {i} is {item}, not a string"))
                        })?;
                        lines.push(line.to_string());
                    }
                    texts.insert(name.clone(), lines);
                }
                None => {
                    tensors.insert(name.clone(), self.tensor(value, &field)?);
                }
            }
        }
        Ok((tensors, texts))
    }

    fn tensors(
        &self,
        obj: &serde_json::Map<String, Value>,
        key: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, Tensor>, FixtureError> {
        let field = format!("{prefix}{key}");
        let map = obj
            .get(key)
            .ok_or_else(|| self.err(&field, "missing".into()))?;
        let map = map
            .as_object()
            .ok_or_else(|| self.err(&field, "must be an object of tensors".into()))?;
        map.iter()
            .map(|(name, t)| Ok((name.clone(), self.tensor(t, &format!("{field}.{name}"))?)))
            .collect()
    }

    fn tensor(&self, t: &Value, field: &str) -> Result<Tensor, FixtureError> {
        let shape = t
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err(field, "needs \"shape\": an array of sizes".into()))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.err(field, "\"shape\" must hold non-negative integers".into()))?;
        let data = t
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err(field, "needs \"data\": an array of numbers".into()))?;
        let mut values = Vec::with_capacity(data.len());
        for (i, x) in data.iter().enumerate() {
            // A JSON number is always finite (JSON has no NaN, and serde_json refuses 1e400), so
            // what is left to catch is null (how serde_json writes NaN), strings and the like.
            match x.as_f64() {
                Some(x) => values.push(x),
                _ => {
                    return Err(self.err(
                        field,
                        format!("element {i} is {x}, not a finite number (NaN?)"),
                    ))
                }
            }
        }
        let want: usize = shape.iter().product();
        if want != values.len() {
            return Err(self.err(
                field,
                format!(
                    "shape {shape:?} needs {want} numbers, \"data\" has {}",
                    values.len()
                ),
            ));
        }
        Ok(Tensor {
            shape,
            data: values,
        })
    }
}

/// Runs the fixture's op with this crate and compares everything it expects.
///
/// # Errors
/// When the fixture does not fit its op: a missing input, parameter or config field, or a shape
/// that does not match the others. A numerical mismatch is not an error: it is in the report.
pub fn check(fixture: &Fixture) -> Result<Report, FixtureError> {
    let got = run(fixture, &fixture.inputs, &fixture.params)?;
    let mut comparisons = Vec::new();
    for (name, want) in &fixture.expected {
        let field = format!("expected.{name}");
        let got = got.get(name).ok_or_else(|| {
            fixture.err(&field, format!("op {} has no output {name:?}", fixture.op))
        })?;
        comparisons.push(
            compare(&field, got, want, fixture.tolerance).map_err(|p| fixture.err(&field, p))?,
        );
    }
    if let Some(gradients) = &fixture.gradients {
        let from_backward = backward::gradients(fixture, gradients)?;
        for (name, want) in &gradients.wrt {
            let field = format!("gradients.wrt.{name}");
            let got = from_backward.get(name).ok_or_else(|| {
                fixture.err(
                    &field,
                    format!(
                        "the backward pass of op {} gives no gradient for {name:?}",
                        fixture.op
                    ),
                )
            })?;
            let mut c = compare(&field, got, want, fixture.backward_tolerance)
                .map_err(|p| fixture.err(&field, p))?;
            c.source = Source::Backward;
            comparisons.push(c);
            let got = finite_difference(fixture, gradients, name)?;
            let mut c = compare(&field, &got, want, fixture.gradient_tolerance)
                .map_err(|p| fixture.err(&field, p))?;
            c.source = Source::FiniteDifference;
            comparisons.push(c);
        }
    }
    Ok(Report {
        path: fixture.path.clone(),
        op: fixture.op.clone(),
        case: fixture.case.clone(),
        comparisons,
    })
}

/// Element-wise comparison of `got` against `want`.
///
/// # Errors
/// If the shapes differ.
pub fn compare(
    name: &str,
    got: &Tensor,
    want: &Tensor,
    tolerance: Tolerance,
) -> Result<Comparison, String> {
    if got.shape != want.shape {
        return Err(format!(
            "expected shape {:?}, but the op computes shape {:?}",
            want.shape, got.shape
        ));
    }
    let (mut max_abs_error, mut max_rel_error, mut mismatches) = (0f64, 0f64, 0);
    for (&g, &w) in got.data.iter().zip(&want.data) {
        let e = (g - w).abs();
        max_abs_error = max_abs_error.max(e);
        if w != 0.0 {
            max_rel_error = max_rel_error.max(e / w.abs());
        }
        let within = e <= tolerance.abs + tolerance.rel * w.abs(); // false for NaN, as it must be
        if !within {
            mismatches += 1;
        }
    }
    Ok(Comparison {
        name: name.to_string(),
        source: Source::Forward,
        max_abs_error,
        max_rel_error,
        tolerance,
        mismatches,
        len: want.data.len(),
    })
}

/// The step of the central differences.
pub const FD_STEP: f64 = 1e-5;

/// dLoss/d(name) by central differences of this crate's forward pass, where
/// `Loss = sum_outputs sum(output * loss_weights)`.
fn finite_difference(
    fixture: &Fixture,
    gradients: &Gradients,
    name: &str,
) -> Result<Tensor, FixtureError> {
    let field = format!("gradients.wrt.{name}");
    let (in_inputs, base) = match (fixture.inputs.get(name), fixture.params.get(name)) {
        (Some(t), _) => (true, t),
        (None, Some(t)) => (false, t),
        (None, None) => {
            return Err(fixture.err(&field, "names no input or parameter of the fixture".into()))
        }
    };
    let loss = |inputs: &BTreeMap<String, Tensor>,
                params: &BTreeMap<String, Tensor>|
     -> Result<f64, FixtureError> {
        let out = run(fixture, inputs, params)?;
        let mut total = 0.0;
        for (output, weights) in &gradients.loss_weights {
            let wfield = format!("gradients.loss_weights.{output}");
            let got = out.get(output).ok_or_else(|| {
                fixture.err(
                    &wfield,
                    format!("op {} has no output {output:?}", fixture.op),
                )
            })?;
            if got.shape != weights.shape {
                return Err(fixture.err(
                    &wfield,
                    format!(
                        "shape {:?} does not match the output's {:?}",
                        weights.shape, got.shape
                    ),
                ));
            }
            total += got
                .data
                .iter()
                .zip(&weights.data)
                .map(|(a, b)| a * b)
                .sum::<f64>();
        }
        Ok(total)
    };
    let (mut inputs, mut params) = (fixture.inputs.clone(), fixture.params.clone());
    let mut grad = Vec::with_capacity(base.data.len());
    for i in 0..base.data.len() {
        let x = base.data[i];
        // A fixed step: truncation error O(h^2) and rounding O(eps |L| / h) are both near 1e-10
        // for the fixtures' scales. (A step relative to |x| would be too coarse for a LayerNorm
        // row of mean 1000 and spread 0.1.) The divisor is the step as actually represented.
        let (up, down) = (x + FD_STEP, x - FD_STEP);
        let mut at = |value: f64| -> Result<f64, FixtureError> {
            let target = if in_inputs {
                inputs.get_mut(name)
            } else {
                params.get_mut(name)
            };
            target.expect("present: looked up above").data[i] = value;
            loss(&inputs, &params)
        };
        let plus = at(up)?;
        let minus = at(down)?;
        at(x)?;
        grad.push((plus - minus) / (up - down));
    }
    Ok(Tensor::new(base.shape.clone(), grad))
}

impl Fixture {
    fn err(&self, field: &str, problem: String) -> FixtureError {
        FixtureError {
            path: self.path.clone(),
            field: field.to_string(),
            problem,
        }
    }

    fn config_usize(&self, key: &str) -> Result<usize, FixtureError> {
        self.config
            .get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| {
                self.err(
                    &format!("config.{key}"),
                    "missing, or not a non-negative integer".into(),
                )
            })
    }

    fn config_f64(&self, key: &str) -> Result<f64, FixtureError> {
        self.config
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| self.err(&format!("config.{key}"), "missing, or not a number".into()))
    }

    fn config_bool(&self, key: &str, default: bool) -> Result<bool, FixtureError> {
        match self.config.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(&format!("config.{key}"), "must be true or false".into())),
        }
    }
}

/// Named tensors with the lookups an op needs, every failure naming the field.
struct Args<'a> {
    fixture: &'a Fixture,
    section: &'static str,
    map: &'a BTreeMap<String, Tensor>,
}

impl<'a> Args<'a> {
    fn field(&self, name: &str) -> String {
        if self.section == "inputs" {
            if let Some((tied, _)) = self
                .fixture
                .tied_inputs
                .iter()
                .find(|(_, slots)| slots.iter().any(|s| s == name))
            {
                return format!("inputs.{tied} (as {name})");
            }
        }
        format!("{}.{name}", self.section)
    }

    fn get(&self, name: &str) -> Result<&'a Tensor, FixtureError> {
        self.map
            .get(name)
            .ok_or_else(|| self.fixture.err(&self.field(name), "missing".into()))
    }

    /// A matrix of exactly (rows, cols).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<DMatrix<f64>, FixtureError> {
        let t = self.get(name)?;
        if t.shape != [rows, cols] {
            return Err(self.fixture.err(
                &self.field(name),
                format!("expected shape [{rows}, {cols}], found {:?}", t.shape),
            ));
        }
        Ok(DMatrix::from_row_slice(rows, cols, &t.data))
    }

    /// A vector of exactly n, or None when absent.
    fn optional_row(&self, name: &str, n: usize) -> Result<Option<RowDVector<f64>>, FixtureError> {
        if !self.map.contains_key(name) {
            return Ok(None);
        }
        self.row(name, n).map(Some)
    }

    fn row(&self, name: &str, n: usize) -> Result<RowDVector<f64>, FixtureError> {
        let t = self.get(name)?;
        if t.shape != [n] {
            return Err(self.fixture.err(
                &self.field(name),
                format!("expected shape [{n}], found {:?}", t.shape),
            ));
        }
        Ok(RowDVector::from_row_slice(&t.data))
    }

    /// A batch of matrices `[B, n, cols]`, or one `[n, cols]` (returned as a batch of one, with
    /// `false`). `rows` = Some(n) also pins n.
    fn batch(
        &self,
        name: &str,
        rows: Option<usize>,
        cols: usize,
    ) -> Result<(Vec<DMatrix<f64>>, bool), FixtureError> {
        let t = self.get(name)?;
        let bad = |what: String| self.fixture.err(&self.field(name), what);
        let (b, n, c, batched) = match t.shape[..] {
            [n, c] => (1, n, c, false),
            [b, n, c] if b > 0 => (b, n, c, true),
            _ => {
                return Err(bad(format!(
                    "expected shape [n, {cols}] or [batch >= 1, n, {cols}], found {:?}",
                    t.shape
                )))
            }
        };
        if c != cols || rows.is_some_and(|r| r != n) {
            let n_text = rows.map_or("n".to_string(), |r| r.to_string());
            return Err(bad(format!(
                "expected [.., {n_text}, {cols}] (width {cols}), found {:?}",
                t.shape
            )));
        }
        let items = (0..b)
            .map(|i| DMatrix::from_row_slice(n, c, &t.data[i * n * c..(i + 1) * n * c]))
            .collect();
        Ok((items, batched))
    }

    /// Per-sequence flags or ids `[B, n]` or `[n]`.
    fn sequences(&self, name: &str) -> Result<(Vec<Vec<f64>>, bool), FixtureError> {
        let t = self.get(name)?;
        match t.shape[..] {
            [n] => Ok((vec![t.data[..n].to_vec()], false)),
            [b, n] if b > 0 => Ok((
                (0..b)
                    .map(|i| t.data[i * n..(i + 1) * n].to_vec())
                    .collect(),
                true,
            )),
            _ => Err(self.fixture.err(
                &self.field(name),
                format!("expected shape [n] or [batch >= 1, n], found {:?}", t.shape),
            )),
        }
    }

    /// Token ids: non-negative integers below `vocab`.
    fn tokens(&self, name: &str, vocab: usize) -> Result<(Vec<Vec<usize>>, bool), FixtureError> {
        let (seqs, batched) = self.sequences(name)?;
        let mut out = Vec::new();
        for seq in seqs {
            let mut ids = Vec::new();
            for &x in &seq {
                if x < 0.0 || x.fract() != 0.0 || x >= vocab as f64 {
                    return Err(self.fixture.err(
                        &self.field(name),
                        format!("{x} is not a token id in 0..{vocab}"),
                    ));
                }
                ids.push(x as usize);
            }
            out.push(ids);
        }
        Ok((out, batched))
    }

    /// Optional padding flags (1 = padding) for a batch of `b` sequences of `n` keys.
    fn padding(
        &self,
        name: &str,
        b: usize,
        n: usize,
    ) -> Result<Vec<Option<Vec<bool>>>, FixtureError> {
        if !self.map.contains_key(name) {
            return Ok(vec![None; b]);
        }
        let (seqs, _) = self.sequences(name)?;
        if seqs.len() != b || seqs.iter().any(|s| s.len() != n) {
            return Err(self.fixture.err(
                &self.field(name),
                format!(
                    "expected {b} sequence(s) of {n} flags, found shape {:?}",
                    self.get(name)?.shape
                ),
            ));
        }
        Ok(seqs
            .into_iter()
            .map(|s| Some(s.into_iter().map(|x| x != 0.0).collect()))
            .collect())
    }
}

/// The batch size shared by several batched inputs.
fn batch_size(fixture: &Fixture, parts: &[(&str, usize, bool)]) -> Result<usize, FixtureError> {
    let mut b = 1;
    for &(_, len, batched) in parts {
        if batched {
            b = b.max(len);
        }
    }
    for &(name, len, batched) in parts {
        if batched && len != b {
            return Err(fixture.err(
                &format!("inputs.{name}"),
                format!("batch of {len}, but another input has {b}"),
            ));
        }
    }
    Ok(b)
}

/// Picks item `i` of a batch, or the only item of an unbatched input.
fn item<T>(items: &[T], i: usize) -> &T {
    if items.len() == 1 {
        &items[0]
    } else {
        &items[i]
    }
}

/// Stacks per-item outputs with a leading batch axis when the inputs had one.
fn gather(parts: Vec<Tensor>, batched: bool) -> Tensor {
    if batched {
        Tensor::stack(parts)
    } else {
        parts.into_iter().next().expect("at least one item")
    }
}

fn multi_head(
    p: &Args,
    prefix: &str,
    d_model: usize,
    h: usize,
    d_k: usize,
    d_v: usize,
) -> Result<MultiHeadAttention<f64>, FixtureError> {
    let n = |s: &str| format!("{prefix}{s}");
    Ok(MultiHeadAttention {
        h,
        d_k,
        d_v,
        w_q: p.matrix(&n("w_q"), d_model, h * d_k)?,
        w_k: p.matrix(&n("w_k"), d_model, h * d_k)?,
        w_v: p.matrix(&n("w_v"), d_model, h * d_v)?,
        w_o: p.matrix(&n("w_o"), h * d_v, d_model)?,
        b_q: p.optional_row(&n("b_q"), h * d_k)?,
        b_k: p.optional_row(&n("b_k"), h * d_k)?,
        b_v: p.optional_row(&n("b_v"), h * d_v)?,
        b_o: p.optional_row(&n("b_o"), d_model)?,
    })
}

fn feed_forward(
    p: &Args,
    prefix: &str,
    d_model: usize,
    d_ff: usize,
) -> Result<FeedForward<f64>, FixtureError> {
    let n = |s: &str| format!("{prefix}{s}");
    Ok(FeedForward {
        w_1: p.matrix(&n("w_1"), d_model, d_ff)?,
        b_1: p.row(&n("b_1"), d_ff)?,
        w_2: p.matrix(&n("w_2"), d_ff, d_model)?,
        b_2: p.row(&n("b_2"), d_model)?,
    })
}

fn layer_norm(
    p: &Args,
    prefix: &str,
    d_model: usize,
    eps: f64,
) -> Result<LayerNorm<f64>, FixtureError> {
    Ok(LayerNorm {
        gain: p.row(&format!("{prefix}gain"), d_model)?,
        bias: p.row(&format!("{prefix}bias"), d_model)?,
        eps,
    })
}

/// Sizes shared by the layer ops.
struct Sizes {
    d_model: usize,
    h: usize,
    d_k: usize,
    d_v: usize,
    d_ff: usize,
    eps: f64,
}

impl Sizes {
    fn read(f: &Fixture, with_ffn: bool) -> Result<Sizes, FixtureError> {
        Ok(Sizes {
            d_model: f.config_usize("d_model")?,
            h: f.config_usize("h")?,
            d_k: f.config_usize("d_k")?,
            d_v: f.config_usize("d_v")?,
            d_ff: if with_ffn { f.config_usize("d_ff")? } else { 0 },
            eps: if with_ffn { f.config_f64("eps")? } else { 0.0 },
        })
    }

    fn attention(&self, p: &Args, prefix: &str) -> Result<MultiHeadAttention<f64>, FixtureError> {
        multi_head(p, prefix, self.d_model, self.h, self.d_k, self.d_v)
    }
}

fn encoder_layer(p: &Args, prefix: &str, s: &Sizes) -> Result<EncoderLayer<f64>, FixtureError> {
    Ok(EncoderLayer {
        self_attn: s.attention(p, &format!("{prefix}self_attn."))?,
        ffn: feed_forward(p, &format!("{prefix}ffn."), s.d_model, s.d_ff)?,
        norm_1: layer_norm(p, &format!("{prefix}norm1."), s.d_model, s.eps)?,
        norm_2: layer_norm(p, &format!("{prefix}norm2."), s.d_model, s.eps)?,
        placement: NormPlacement::Post,
    })
}

fn decoder_layer(p: &Args, prefix: &str, s: &Sizes) -> Result<DecoderLayer<f64>, FixtureError> {
    Ok(DecoderLayer {
        self_attn: s.attention(p, &format!("{prefix}self_attn."))?,
        cross_attn: s.attention(p, &format!("{prefix}cross_attn."))?,
        ffn: feed_forward(p, &format!("{prefix}ffn."), s.d_model, s.d_ff)?,
        norm_1: layer_norm(p, &format!("{prefix}norm1."), s.d_model, s.eps)?,
        norm_2: layer_norm(p, &format!("{prefix}norm2."), s.d_model, s.eps)?,
        norm_3: layer_norm(p, &format!("{prefix}norm3."), s.d_model, s.eps)?,
        placement: NormPlacement::Post,
    })
}

/// The whole model of a `transformer` fixture, and its vocabulary size.
fn transformer(f: &Fixture, p: &Args) -> Result<(Transformer<f64>, usize), FixtureError> {
    let s = Sizes::read(f, true)?;
    let vocab = f.config_usize("vocab")?;
    let final_norm = f.config_bool("final_stack_norm", false)?;
    let stack_norm = |prefix: &str| -> Result<Option<LayerNorm<f64>>, FixtureError> {
        final_norm
            .then(|| layer_norm(p, prefix, s.d_model, s.eps))
            .transpose()
    };
    let model = Transformer {
        embedding: Embedding {
            weight: p.matrix("embedding", vocab, s.d_model)?,
        },
        positional: PositionalEncoding::Sinusoidal { d_model: s.d_model },
        encoder: Encoder {
            layers: (0..f.config_usize("n_encoder_layers")?)
                .map(|i| encoder_layer(p, &format!("encoder.layers.{i}."), &s))
                .collect::<Result<_, _>>()?,
            // PyTorch's nn.Transformer normalises each stack's output once more.
            final_norm: stack_norm("encoder.norm.")?,
        },
        decoder: Decoder {
            layers: (0..f.config_usize("n_decoder_layers")?)
                .map(|i| decoder_layer(p, &format!("decoder.layers.{i}."), &s))
                .collect::<Result<_, _>>()?,
            final_norm: stack_norm("decoder.norm.")?,
        },
    };
    Ok((model, vocab))
}

/// The mask for n queries over the keys of one sequence: padding and/or causal.
///
/// # Errors
/// A causal mask needs at least as many keys as queries (the queries are the last positions).
fn mask_for(
    f: &Fixture,
    n: usize,
    padding: &Option<Vec<bool>>,
    causal: bool,
    n_keys: usize,
) -> Result<Option<Mask>, FixtureError> {
    if causal && n > n_keys {
        return Err(f.err(
            "config.causal",
            format!("{n} queries but only {n_keys} keys"),
        ));
    }
    let pad = padding.as_ref().map(|p| Mask::padding(n, p));
    let causal = causal.then(|| Mask::causal_suffix(n, n_keys));
    Ok(match (pad, causal) {
        (Some(a), Some(b)) => Some(a.and(&b)),
        (a, b) => a.or(b),
    })
}

/// The width (last dimension) the op needs in a slot a tied tensor feeds, with the config
/// entry that sets it (`d_k = 4`); `None` where the width is free (softmax, layer norm, logits).
fn slot_width(f: &Fixture, slot: &str) -> Result<Option<(usize, String)>, FixtureError> {
    let key = match (f.op.as_str(), slot) {
        ("attention", "q" | "k") => "d_k",
        ("attention", "v") => "d_v",
        ("multi_head_attention" | "feed_forward" | "encoder_layer" | "decoder_layer", _) => {
            "d_model"
        }
        _ => return Ok(None),
    };
    let width = f.config_usize(key)?;
    Ok(Some((width, format!("{key} = {width}"))))
}

/// The inputs with every tied tensor copied into each slot it feeds, after checking that the
/// op wants one shape in all of them.
///
/// # Errors
/// Two slots of one tied tensor need different widths (attention's `q` and `v` with d_k != d_v).
fn untie(
    f: &Fixture,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, FixtureError> {
    let mut out = inputs.clone();
    for (name, slots) in &f.tied_inputs {
        let field = format!("tied_inputs.{name}");
        let mut first: Option<(&str, usize, String)> = None;
        for slot in slots {
            let Some((width, why)) = slot_width(f, slot)? else {
                continue;
            };
            match &first {
                Some((other, w, other_why)) if *w != width => {
                    return Err(f.err(
                        &field,
                        format!(
                            "one tensor cannot feed both {other:?} (width {other_why}) and \
                             {slot:?} (width {why})"
                        ),
                    ))
                }
                Some(_) => {}
                None => first = Some((slot, width, why)),
            }
        }
        let tensor = inputs
            .get(name)
            .ok_or_else(|| f.err(&field, format!("the tied tensor inputs.{name} is missing")))?;
        for slot in slots {
            out.insert(slot.clone(), tensor.clone());
        }
    }
    Ok(out)
}

/// Computes every output of the fixture's op from the given inputs and parameters.
fn run(
    f: &Fixture,
    inputs: &BTreeMap<String, Tensor>,
    params: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, FixtureError> {
    let untied = untie(f, inputs)?;
    let x = Args {
        fixture: f,
        section: "inputs",
        map: &untied,
    };
    let p = Args {
        fixture: f,
        section: "params",
        map: params,
    };
    let mut out = BTreeMap::new();
    match f.op.as_str() {
        "softmax" => {
            let t = x.get("x")?;
            let (items, batched) = x.batch("x", None, *t.shape.last().unwrap_or(&0))?;
            out.insert(
                "y".into(),
                gather(
                    items
                        .iter()
                        .map(|m| Tensor::from_matrix(&softmax_rows(m)))
                        .collect(),
                    batched,
                ),
            );
            out.insert(
                "log_y".into(),
                gather(
                    items
                        .iter()
                        .map(|m| Tensor::from_matrix(&log_softmax_rows(m)))
                        .collect(),
                    batched,
                ),
            );
        }
        "attention" => {
            let (d_k, d_v) = (f.config_usize("d_k")?, f.config_usize("d_v")?);
            let causal = f.config_bool("causal", false)?;
            let (q, qb) = x.batch("q", None, d_k)?;
            let (k, kb) = x.batch("k", None, d_k)?;
            let m = k[0].nrows();
            let (v, vb) = x.batch("v", Some(m), d_v)?;
            let b = batch_size(
                f,
                &[("q", q.len(), qb), ("k", k.len(), kb), ("v", v.len(), vb)],
            )?;
            let pads = x.padding("key_padding", b, m)?;
            let (mut outputs, mut weights) = (Vec::new(), Vec::new());
            for i in 0..b {
                let q = item(&q, i);
                let mask = mask_for(f, q.nrows(), item(&pads, i), causal, m)?;
                let a = scaled_dot_product_attention(q, item(&k, i), item(&v, i), mask.as_ref());
                outputs.push(Tensor::from_matrix(&a.output));
                weights.push(Tensor::from_matrix(&a.weights));
            }
            let batched = qb || kb || vb;
            out.insert("output".into(), gather(outputs, batched));
            out.insert("weights".into(), gather(weights, batched));
        }
        "multi_head_attention" => {
            let s = Sizes::read(f, false)?;
            let causal = f.config_bool("causal", false)?;
            let mha = multi_head(&p, "", s.d_model, s.h, s.d_k, s.d_v)?;
            let (query, qb) = x.batch("query", None, s.d_model)?;
            let (key, kb) = x.batch("key", None, s.d_model)?;
            let m = key[0].nrows();
            let (value, vb) = x.batch("value", Some(m), s.d_model)?;
            let b = batch_size(
                f,
                &[
                    ("query", query.len(), qb),
                    ("key", key.len(), kb),
                    ("value", value.len(), vb),
                ],
            )?;
            let pads = x.padding("key_padding", b, m)?;
            let (mut outputs, mut weights) = (Vec::new(), Vec::new());
            for i in 0..b {
                let q = item(&query, i);
                let mask = mask_for(f, q.nrows(), item(&pads, i), causal, m)?;
                let r = mha.forward(q, item(&key, i), item(&value, i), mask.as_ref());
                outputs.push(Tensor::from_matrix(&r.output));
                weights.push(Tensor::stack(
                    r.weights.iter().map(Tensor::from_matrix).collect(),
                ));
            }
            let batched = qb || kb || vb;
            out.insert("output".into(), gather(outputs, batched));
            out.insert("weights".into(), gather(weights, batched));
        }
        "feed_forward" => {
            let (d_model, d_ff) = (f.config_usize("d_model")?, f.config_usize("d_ff")?);
            let ffn = feed_forward(&p, "", d_model, d_ff)?;
            let (items, batched) = x.batch("x", None, d_model)?;
            out.insert(
                "output".into(),
                gather(
                    items
                        .iter()
                        .map(|m| Tensor::from_matrix(&ffn.forward(m)))
                        .collect(),
                    batched,
                ),
            );
        }
        "layer_norm" => {
            let t = x.get("x")?;
            let d = *t.shape.last().unwrap_or(&0);
            let norm = layer_norm(&p, "", d, f.config_f64("eps")?)?;
            let (items, batched) = x.batch("x", None, d)?;
            out.insert(
                "output".into(),
                gather(
                    items
                        .iter()
                        .map(|m| Tensor::from_matrix(&norm.forward(m)))
                        .collect(),
                    batched,
                ),
            );
        }
        "encoder_layer" => {
            let s = Sizes::read(f, true)?;
            let layer = encoder_layer(&p, "", &s)?;
            let causal = f.config_bool("causal", false)?;
            let (items, batched) = x.batch("x", None, s.d_model)?;
            let n = items[0].nrows();
            let pads = x.padding("key_padding", items.len(), n)?;
            let outputs = items
                .iter()
                .zip(&pads)
                .map(|(m, pad)| {
                    let mask = mask_for(f, n, pad, causal, n)?;
                    Ok(Tensor::from_matrix(&layer.forward(m, mask.as_ref())))
                })
                .collect::<Result<_, FixtureError>>()?;
            out.insert("output".into(), gather(outputs, batched));
        }
        "decoder_layer" => {
            let s = Sizes::read(f, true)?;
            let layer = decoder_layer(&p, "", &s)?;
            let causal = f.config_bool("causal", true)?;
            let (ys, yb) = x.batch("x", None, s.d_model)?;
            let (memory, mb) = x.batch("memory", None, s.d_model)?;
            let b = batch_size(f, &[("x", ys.len(), yb), ("memory", memory.len(), mb)])?;
            let (n_t, n_s) = (ys[0].nrows(), memory[0].nrows());
            let pads = x.padding("memory_key_padding", b, n_s)?;
            let tgt_pads = x.padding("tgt_key_padding", b, n_t)?;
            let mut outputs = Vec::new();
            for i in 0..b {
                let self_mask = mask_for(f, n_t, item(&tgt_pads, i), causal, n_t)?;
                let memory_mask = mask_for(f, n_t, item(&pads, i), false, n_s)?;
                let y = layer.forward(
                    item(&ys, i),
                    item(&memory, i),
                    self_mask.as_ref(),
                    memory_mask.as_ref(),
                );
                outputs.push(Tensor::from_matrix(&y));
            }
            out.insert("output".into(), gather(outputs, yb || mb));
        }
        "transformer" => {
            let (model, vocab) = transformer(f, &p)?;
            let (src, sb) = x.tokens("src", vocab)?;
            let (tgt, tb) = x.tokens("tgt", vocab)?;
            let b = batch_size(f, &[("src", src.len(), sb), ("tgt", tgt.len(), tb)])?;
            let pads = x.padding("src_key_padding", b, src[0].len())?;
            let (mut log_probs, mut memories) = (Vec::new(), Vec::new());
            for i in 0..b {
                let pad = item(&pads, i).as_deref();
                let memory = model.encode(item::<Vec<usize>>(&src, i), pad);
                let y = model.decode(item::<Vec<usize>>(&tgt, i), &memory, pad);
                log_probs.push(Tensor::from_matrix(&model.generator(&y)));
                memories.push(Tensor::from_matrix(&memory));
            }
            out.insert("log_probs".into(), gather(log_probs, sb || tb));
            out.insert("memory".into(), gather(memories, sb || tb));
        }
        "positional_encoding" => {
            let (n, d_model) = (f.config_usize("n")?, f.config_usize("d_model")?);
            out.insert(
                "pe".into(),
                Tensor::from_matrix(&sinusoidal::<f64>(n, d_model)),
            );
        }
        "label_smoothing" => {
            let (eps, vocab) = (f.config_f64("eps")?, f.config_usize("vocab")?);
            if vocab < 2 {
                return Err(f.err(
                    "config.vocab",
                    format!("label smoothing needs at least 2 classes, got {vocab}"),
                ));
            }
            let logits = x.get("logits")?;
            let n = logits.shape.first().copied().unwrap_or(0);
            let logits = x.matrix("logits", n, vocab)?;
            let (targets, _) = x.tokens("target", vocab)?;
            let targets = &targets[0];
            if targets.len() != n {
                return Err(f.err(
                    "inputs.target",
                    format!("{} targets for {n} rows of logits", targets.len()),
                ));
            }
            let log_probs = log_softmax_rows(&logits);
            out.insert(
                "loss_uniform".into(),
                Tensor::scalar(label_smoothed_loss(
                    &log_probs,
                    targets,
                    eps,
                    Spread::AllClasses,
                )),
            );
            out.insert(
                "loss_others".into(),
                Tensor::scalar(label_smoothed_loss(
                    &log_probs,
                    targets,
                    eps,
                    Spread::OtherClasses,
                )),
            );
        }
        "adam" => {
            let steps = f.config_usize("steps")?;
            let (d_model, warmup) = (f.config_usize("d_model")?, f.config_usize("warmup")?);
            let mut adam = Adam::new(
                f.config_f64("beta1")?,
                f.config_f64("beta2")?,
                f.config_f64("eps")?,
            );
            let p0 = x.get("p0")?;
            let (rows, cols) = match p0.shape[..] {
                [r, c] => (r, c),
                _ => {
                    return Err(f.err(
                        "inputs.p0",
                        format!("expected a matrix, found shape {:?}", p0.shape),
                    ))
                }
            };
            let mut param = x.matrix("p0", rows, cols)?;
            let grads = x.get("grads")?;
            if grads.shape != [steps, rows, cols] {
                return Err(f.err(
                    "inputs.grads",
                    format!(
                        "expected shape [{steps}, {rows}, {cols}], found {:?}",
                        grads.shape
                    ),
                ));
            }
            let (mut params_after, mut lrs) = (Vec::new(), Vec::new());
            for t in 0..steps {
                let g = DMatrix::from_row_slice(
                    rows,
                    cols,
                    &grads.data[t * rows * cols..(t + 1) * rows * cols],
                );
                let lr = lrate(d_model, warmup, t + 1); // steps count from 1
                adam.step(&mut [&mut param], &[&g], lr);
                params_after.push(Tensor::from_matrix(&param));
                lrs.push(lr);
            }
            out.insert("params".into(), Tensor::stack(params_after));
            out.insert("lr".into(), Tensor::new(vec![steps], lrs));
        }
        "bleu" => {
            let text = |name: &str| {
                f.text_inputs.get(name).ok_or_else(|| {
                    f.err(
                        &format!("inputs.{name}"),
                        "missing: a list of strings, one sentence each".into(),
                    )
                })
            };
            let hypotheses: Vec<&str> = text("hypotheses")?.iter().map(String::as_str).collect();
            let references: Vec<&str> = text("references")?.iter().map(String::as_str).collect();
            let s = crate::bleu::corpus_bleu(&hypotheses, &references)
                .map_err(|e| f.err("inputs.references", e.to_string()))?;
            let as_f64 = |xs: [usize; 4]| xs.iter().map(|&x| x as f64).collect();
            out.insert("score".into(), Tensor::scalar(s.score));
            out.insert(
                "precisions".into(),
                Tensor::new(vec![4], s.precisions.to_vec()),
            );
            out.insert("bp".into(), Tensor::scalar(s.bp));
            out.insert("sys_len".into(), Tensor::scalar(s.sys_len as f64));
            out.insert("ref_len".into(), Tensor::scalar(s.ref_len as f64));
            out.insert("counts".into(), Tensor::new(vec![4], as_f64(s.counts)));
            out.insert("totals".into(), Tensor::new(vec![4], as_f64(s.totals)));
        }
        "param_count" => {
            let config = crate::config::Config {
                n_layers: f.config_usize("n_layers")?,
                d_model: f.config_usize("d_model")?,
                d_ff: f.config_usize("d_ff")?,
                h: f.config_usize("h")?,
                d_k: f.config_usize("d_k")?,
                d_v: f.config_usize("d_v")?,
                attention_bias: f.config_bool("attention_bias", false)?,
                ..crate::config::Config::base()
            };
            let counts = config.param_counts(f.config_usize("vocab")?);
            for (name, value) in [
                ("total", counts.total),
                ("embedding", counts.embedding),
                ("encoder", counts.encoder),
                ("decoder", counts.decoder),
            ] {
                out.insert(name.into(), Tensor::scalar(value as f64));
            }
        }
        other => return Err(f.err("op", format!("unknown op {other:?}"))),
    }
    Ok(out)
}

/// All `*.json` files directly in `dir`, sorted.
///
/// # Errors
/// If the directory cannot be read.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}
