//! Checkpoints: a model's parameters and its training state, in the safetensors format.
//!
//! The paper trains the base model for 100,000 steps and the big model for 300,000 (§5.2), and
//! reports the average of the last 5 (base) or 20 (big) checkpoints, written at 10-minute
//! intervals (§6.1). This module is what writes and reads those checkpoints.
//!
//! # The format
//!
//! A checkpoint is a [safetensors](https://github.com/huggingface/safetensors) file, readable
//! by the `safetensors` Python package and by PyTorch:
//!
//! ```text
//! [ n: u64, little-endian ][ header: n bytes of UTF-8 JSON ][ data: raw little-endian bytes ]
//! ```
//!
//! The header maps each tensor's name to `{"dtype": "F32", "shape": [r, c], "data_offsets":
//! [start, end]}`, where `start..end` is the tensor's byte range within `data`, and the
//! optional key `__metadata__` maps strings to strings. The tensors tile `data` exactly, with
//! neither gaps nor overlaps nor trailing bytes. Values are stored in row-major (C) order:
//! element `(i, j)` of an `(r, c)` tensor is value `i * c + j`. Every tensor here is `F32`;
//! [`load`] rejects any other dtype with [`CheckpointError::Dtype`] rather than convert.
//!
//! # Tensor names
//!
//! The model's parameters are named exactly as in the golden fixtures' `params`
//! (`fixtures/README.md`): `embedding` (vocab, d_model), then for each layer
//! `encoder.layers.{i}.self_attn.w_q` (d_model, h d_k) and its siblings `w_k`, `w_v`, `w_o`,
//! `b_q`, ..., `encoder.layers.{i}.ffn.w_1` (d_model, d_ff), `ffn.b_1`, `ffn.w_2`, `ffn.b_2`,
//! `encoder.layers.{i}.norm1.gain` and `norm1.bias`, the decoder's layers likewise with
//! `cross_attn` and `norm3`, and the stacks' final norms `encoder.norm.gain`, ...
//!
//! Weights keep the paper's layout: a position is a row vector and a projection is `x W` with
//! `W` of shape `(d_in, d_out)`. This is the transpose of PyTorch's `nn.Linear.weight`, which
//! is `(d_out, d_in)`; a reader moving weights between the two must transpose.
//!
//! Training state may be stored beside the parameters: Adam's first and second moments for a
//! parameter `<name>` as `adam.m.<name>` and `adam.v.<name>` (same shape), and step counters,
//! seeds and the configuration as strings in the metadata (read back with
//! [`Checkpoint::meta_parse`]).
//!
//! # Order
//!
//! The `safetensors` writer lays tensors out in name order whatever order they are given in,
//! and [`load`] returns them sorted by name (byte-wise, as `str`'s `Ord`), whoever wrote the
//! file. So `load(save(c))` equals `c` once `c.tensors` is sorted by name.
//!
//! # Errors
//!
//! Every failure is a [`CheckpointError`] whose message names the file, and the tensor or
//! metadata key when there is one:
//!
//! ```text
//! checkpoint run/ckpt-100.safetensors: tensor encoder.layers.0.ffn.w_1 has shape [64, 128], expected [64, 256]
//! ```
//!
//! [`load`] never panics, whatever the bytes: it checks every length and offset in the header
//! against the file's actual size before it allocates or reads, so a header claiming huge
//! sizes costs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::{DMatrix, RowDVector};
use serde_json::Value;

/// The header key under which safetensors keeps the string-to-string metadata.
const METADATA_KEY: &str = "__metadata__";

/// One tensor: name, shape, data in row-major order (PyTorch / safetensors order).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, the last index varying fastest.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// An `(r, c)` matrix as a tensor of shape `[r, c]` in row-major order (nalgebra stores
    /// column-major; this converts).
    ///
    /// ```
    /// use aiayn::checkpoint::NamedTensor;
    /// use nalgebra::DMatrix;
    ///
    /// let m = DMatrix::from_row_slice(2, 3, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// let t = NamedTensor::from_matrix("w", &m);
    /// assert_eq!(t.shape, [2, 3]);
    /// assert_eq!(t.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// assert_eq!(t.to_matrix(), m);
    /// ```
    pub fn from_matrix(name: impl Into<String>, m: &DMatrix<f32>) -> Self {
        // m.transpose() is (c, r) column-major, whose storage is m's rows one after another.
        let data = m.transpose().as_slice().to_vec();
        Self {
            name: name.into(),
            shape: vec![m.nrows(), m.ncols()],
            data,
        }
    }

    /// A row vector of length n (a bias, a gain) as a tensor of shape `[n]`.
    pub fn from_row(name: impl Into<String>, v: &RowDVector<f32>) -> Self {
        Self {
            name: name.into(),
            shape: vec![v.len()],
            data: v.iter().copied().collect(),
        }
    }

    /// The tensor as a matrix: shape `[r, c]` gives `(r, c)`; shape `[n]` gives `(1, n)`, a
    /// row vector, the paper's convention; shape `[]` (a scalar) gives `(1, 1)`.
    ///
    /// # Panics
    ///
    /// If the tensor has more than two dimensions, or `data` does not hold
    /// `shape.iter().product()` values. (A tensor from [`load`] always holds the right count;
    /// check the shape first with [`Checkpoint::expect`].)
    pub fn to_matrix(&self) -> DMatrix<f32> {
        let (r, c) = match self.shape[..] {
            [] => (1, 1),
            [n] => (1, n),
            [r, c] => (r, c),
            _ => panic!(
                "tensor {} has shape {:?}; only 1-D and 2-D tensors are matrices",
                self.name, self.shape
            ),
        };
        assert_eq!(
            self.data.len(),
            r * c,
            "tensor {} has shape {:?} but holds {} values",
            self.name,
            self.shape,
            self.data.len()
        );
        DMatrix::from_row_slice(r, c, &self.data)
    }
}

/// Named tensors and string metadata: the contents of one checkpoint file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Checkpoint {
    /// From [`load`]: sorted by name.
    pub tensors: Vec<NamedTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The tensor called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor `name` with the expected shape, or the named error.
    ///
    /// `path` is the file the checkpoint came from; it only labels the error.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Missing`] if there is no tensor `name`, [`CheckpointError::Shape`]
    /// if its shape is not `shape`.
    pub fn expect(
        &self,
        path: &Path,
        name: &str,
        shape: &[usize],
    ) -> Result<&NamedTensor, CheckpointError> {
        let t = self.get(name).ok_or_else(|| CheckpointError::Missing {
            path: path.to_path_buf(),
            tensor: name.to_string(),
        })?;
        if t.shape != shape {
            return Err(CheckpointError::Shape {
                path: path.to_path_buf(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape.clone(),
            });
        }
        Ok(t)
    }

    /// The metadata value under `key`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Meta`] if there is no such key.
    pub fn meta(&self, path: &Path, key: &str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::Meta {
                path: path.to_path_buf(),
                key: key.to_string(),
                problem: "is missing".to_string(),
            })
    }

    /// The metadata value under `key`, parsed as a `V` (a step count, a seed, a rate).
    ///
    /// ```
    /// use aiayn::checkpoint::Checkpoint;
    /// use std::path::Path;
    ///
    /// let mut c = Checkpoint::default();
    /// c.metadata.insert("step".into(), "100".into());
    /// c.metadata.insert("seed".into(), "x1".into());
    /// let path = Path::new("ckpt.safetensors");
    /// assert_eq!(c.meta_parse::<u64>(path, "step").unwrap(), 100);
    /// let err = c.meta_parse::<u64>(path, "seed").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "checkpoint ckpt.safetensors: metadata seed is \"x1\", which is not a valid u64: \
    ///      invalid digit found in string"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Meta`] if the key is missing or its value does not parse; the
    /// message carries the value and the parser's complaint.
    pub fn meta_parse<V>(&self, path: &Path, key: &str) -> Result<V, CheckpointError>
    where
        V: FromStr,
        V::Err: fmt::Display,
    {
        let value = self.meta(path, key)?;
        value.parse().map_err(|e: V::Err| CheckpointError::Meta {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem: format!(
                "is {value:?}, which is not a valid {}: {e}",
                std::any::type_name::<V>()
            ),
        })
    }
}

/// What went wrong with a checkpoint file. Every variant carries the file's path; the message
/// ([`Display`](fmt::Display)) is one line naming it, and the tensor or key when there is one.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be opened, read, written or renamed.
    Io { path: PathBuf, source: io::Error },
    /// Not a safetensors file: empty, truncated, a header that is not UTF-8 JSON of the right
    /// form, or data bytes the tensors do not account for. From [`save`]: a checkpoint whose
    /// header would exceed the format's limit (100 MB).
    Format { path: PathBuf, reason: String },
    /// One tensor's header entry is malformed or disagrees with the data: a missing field, a
    /// byte range that runs past the data, overlaps another tensor's or does not match the
    /// shape.
    Layout {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
    /// A tensor is stored in a dtype other than F32 (`found` as the header spells it).
    Dtype {
        path: PathBuf,
        tensor: String,
        found: String,
    },
    /// [`Checkpoint::expect`] asked for a tensor the checkpoint lacks.
    Missing { path: PathBuf, tensor: String },
    /// [`Checkpoint::expect`] found the tensor with another shape.
    Shape {
        path: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A metadata key is missing or its value does not parse.
    Meta {
        path: PathBuf,
        key: String,
        problem: String,
    },
    /// [`save`] was given two tensors of the same name.
    Duplicate { path: PathBuf, tensor: String },
    /// [`save`] was given a tensor named `__metadata__`, the header's metadata key.
    Reserved { path: PathBuf, tensor: String },
    /// [`save`] was given a tensor whose `data` does not hold `shape.iter().product()` values.
    Length {
        path: PathBuf,
        tensor: String,
        shape: Vec<usize>,
        len: usize,
    },
}

impl CheckpointError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Format { path, .. }
            | Self::Layout { path, .. }
            | Self::Dtype { path, .. }
            | Self::Missing { path, .. }
            | Self::Shape { path, .. }
            | Self::Meta { path, .. }
            | Self::Duplicate { path, .. }
            | Self::Reserved { path, .. }
            | Self::Length { path, .. } => path,
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint {}: ", self.path().display())?;
        match self {
            Self::Io { source, .. } => write!(f, "{source}"),
            Self::Format { reason, .. } => write!(f, "not a safetensors file: {reason}"),
            Self::Layout { tensor, reason, .. } => write!(f, "tensor {tensor}: {reason}"),
            Self::Dtype { tensor, found, .. } => {
                write!(f, "tensor {tensor} has dtype {found}, expected F32")
            }
            Self::Missing { tensor, .. } => write!(f, "tensor {tensor} is missing"),
            Self::Shape {
                tensor,
                expected,
                found,
                ..
            } => write!(
                f,
                "tensor {tensor} has shape {found:?}, expected {expected:?}"
            ),
            Self::Meta { key, problem, .. } => write!(f, "metadata {key} {problem}"),
            Self::Duplicate { tensor, .. } => write!(f, "tensor {tensor} appears more than once"),
            Self::Reserved { tensor, .. } => write!(
                f,
                "tensor name {tensor} is reserved for the header's metadata"
            ),
            Self::Length {
                tensor, shape, len, ..
            } => write!(
                f,
                "tensor {tensor} has shape {shape:?} but holds {len} values"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A tensor as the `safetensors` writer sees it: F32, little-endian bytes made on demand.
struct F32View<'a>(&'a NamedTensor);

impl safetensors::View for F32View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let bytes: Vec<u8> = self.0.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.into()
    }

    fn data_len(&self) -> usize {
        self.0.data.len() * 4
    }
}

/// Writes `ckpt` to `path` as a safetensors file: F32 tensors (laid out in name order), and
/// the metadata in the header's `__metadata__`.
///
/// The file is written to a temporary file in the same directory, flushed to disk, then
/// renamed over `path`; so `path` holds either its old contents or the whole new checkpoint,
/// never part of one, and a failed save removes its temporary file. The whole file is built in
/// memory first: saving needs about twice the checkpoint's size.
///
/// # Errors
///
/// [`CheckpointError::Duplicate`], [`CheckpointError::Reserved`] or
/// [`CheckpointError::Length`] for a checkpoint that cannot be written (checked before
/// anything touches the disk); [`CheckpointError::Io`] if the file cannot be written (a
/// missing directory, no permission, a full disk).
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let mut names = BTreeSet::new();
    for t in &ckpt.tensors {
        let named = |path: &Path| (path.to_path_buf(), t.name.clone());
        if t.name == METADATA_KEY {
            let (path, tensor) = named(path);
            return Err(CheckpointError::Reserved { path, tensor });
        }
        if !names.insert(t.name.as_str()) {
            let (path, tensor) = named(path);
            return Err(CheckpointError::Duplicate { path, tensor });
        }
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.data.len()) {
            let (path, tensor) = named(path);
            return Err(CheckpointError::Length {
                path,
                tensor,
                shape: t.shape.clone(),
                len: t.data.len(),
            });
        }
    }
    let metadata = (!ckpt.metadata.is_empty()).then(|| {
        ckpt.metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let views = ckpt.tensors.iter().map(|t| (t.name.as_str(), F32View(t)));
    let bytes = safetensors::serialize(views, metadata).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        reason: format!("cannot serialize: {e}"),
    })?;
    write_atomically(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to a fresh temporary file beside `path`, syncs it, and renames it to `path`.
/// On failure the temporary file is removed and `path` is untouched.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = temp_path(path, COUNTER.fetch_add(1, Ordering::Relaxed))?;
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = (|| {
        let mut w = BufWriter::new(file);
        w.write_all(bytes)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Make the rename itself durable where the platform allows opening a directory (the
    // temporary file's directory is the target's).
    if let Ok(d) = File::open(temp.parent().unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One tensor's entry in the header, once checked.
struct Entry {
    name: String,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// Reads the checkpoint at `path`. Tensors come back sorted by name.
///
/// # Errors
///
/// [`CheckpointError::Io`] if the file cannot be read (missing, a directory, no permission);
/// [`CheckpointError::Format`] if it is not a safetensors file (empty, truncated, a header that
/// is not JSON, a header length larger than the file, trailing bytes);
/// [`CheckpointError::Layout`] for a tensor whose header entry is malformed or whose byte range
/// does not fit the data; [`CheckpointError::Dtype`] for a tensor that is not F32. Never
/// panics.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let io_err = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let format = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut r = BufReader::new(file);

    // [ n: u64 LE ]
    let mut n_bytes = [0u8; 8];
    let got = read_up_to(&mut r, &mut n_bytes).map_err(io_err)?;
    if got == 0 {
        return Err(format("the file is empty".to_string()));
    }
    if got < 8 {
        return Err(format(format!(
            "the file is {got} bytes, too short for the 8-byte header length"
        )));
    }
    let n = u64::from_le_bytes(n_bytes);
    let after_n = file_len.saturating_sub(8);
    if n > after_n {
        return Err(format(format!(
            "the header length is {n} bytes but only {after_n} bytes follow it"
        )));
    }

    // [ header: n bytes of JSON ]; n <= the file's size, so this allocation is bounded.
    let mut header = Vec::new();
    (&mut r).take(n).read_to_end(&mut header).map_err(io_err)?;
    if header.len() as u64 != n {
        return Err(format(format!(
            "the file ends {} bytes into the {n}-byte header",
            header.len()
        )));
    }
    let header = std::str::from_utf8(&header).map_err(|e| {
        format(format!(
            "the header is not UTF-8 (invalid byte at {})",
            e.valid_up_to()
        ))
    })?;
    let header: Value =
        serde_json::from_str(header).map_err(|e| format(format!("the header is not JSON: {e}")))?;
    let Value::Object(header) = header else {
        return Err(format("the header is not a JSON object".to_string()));
    };

    let data_len = usize::try_from(after_n - n)
        .map_err(|_| format("the data is larger than this platform can address".to_string()))?;
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(header.len());
    // Checked in name order, so that the error a broken file gives does not depend on the
    // order of its header.
    let mut names: Vec<&String> = header.keys().collect();
    names.sort();
    for name in names {
        let value = &header[name];
        if name == METADATA_KEY {
            metadata = parse_metadata(value).map_err(format)?;
        } else {
            entries.push(parse_entry(path, name, value, data_len)?);
        }
    }

    // The tensors must tile the data: sorted by offset, each starts where the last ended.
    entries.sort_by(|a, b| (a.start, a.end, &a.name).cmp(&(b.start, b.end, &b.name)));
    let mut cursor = 0;
    for e in &entries {
        if e.start != cursor {
            let what = if e.start < cursor {
                "overlaps the tensor before it"
            } else {
                "leaves a gap after the tensor before it"
            };
            return Err(CheckpointError::Layout {
                path: path.to_path_buf(),
                tensor: e.name.clone(),
                reason: format!(
                    "data_offsets [{}, {}] {what}, which ends at byte {cursor}",
                    e.start, e.end
                ),
            });
        }
        cursor = e.end;
    }
    if cursor != data_len {
        return Err(format(format!(
            "the tensors cover {cursor} of the {data_len} data bytes"
        )));
    }

    // [ data ]: read in offset order, which is file order.
    let mut tensors = Vec::with_capacity(entries.len());
    for e in entries {
        let mut bytes = vec![0u8; e.end - e.start];
        r.read_exact(&mut bytes).map_err(io_err)?;
        let data = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.push(NamedTensor {
            name: e.name,
            shape: e.shape,
            data,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Checkpoint { tensors, metadata })
}

/// The temporary file `write_atomically` writes before renaming it to `path`: a hidden name
/// unique to this process and `unique`, in the directory of `path` itself, so that the rename
/// stays within one file system (a rename across file systems fails) and replaces the file in
/// one step.
fn temp_path(path: &Path, unique: u64) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}-{unique}", std::process::id()));
    Ok(dir.join(temp_name))
}

/// Fills `buf` as far as the reader allows; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The `__metadata__` entry: an object of strings, or null for none.
fn parse_metadata(value: &Value) -> Result<BTreeMap<String, String>, String> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("{METADATA_KEY}.{k} is {v}, not a string")),
            })
            .collect(),
        _ => Err(format!("{METADATA_KEY} is not an object of strings")),
    }
}

/// One tensor's header entry, checked against itself and against the data's length.
fn parse_entry(
    path: &Path,
    name: &str,
    value: &Value,
    data_len: usize,
) -> Result<Entry, CheckpointError> {
    let layout = |reason: String| CheckpointError::Layout {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        reason,
    };
    let field = |key: &str| {
        value
            .get(key)
            .ok_or_else(|| layout(format!("the header entry has no {key}")))
    };
    let dtype = field("dtype")?
        .as_str()
        .ok_or_else(|| layout("dtype is not a string".to_string()))?;
    let shape = field("shape")?
        .as_array()
        .and_then(|dims| dims.iter().map(as_usize).collect::<Option<Vec<_>>>())
        .ok_or_else(|| layout("shape is not a list of sizes".to_string()))?;
    let offsets = field("data_offsets")?
        .as_array()
        .and_then(|o| match &o[..] {
            [s, e] => Some((as_usize(s)?, as_usize(e)?)),
            _ => None,
        })
        .ok_or_else(|| layout("data_offsets is not a pair of byte offsets".to_string()))?;
    if dtype != "F32" {
        return Err(CheckpointError::Dtype {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            found: dtype.to_string(),
        });
    }
    let (start, end) = offsets;
    if end > data_len || start > end {
        return Err(layout(format!(
            "data_offsets [{start}, {end}] are not a byte range within the {data_len} bytes of data"
        )));
    }
    let needed = shape
        .iter()
        .try_fold(4usize, |a, &d| a.checked_mul(d))
        .filter(|&b| b == end - start);
    if needed.is_none() {
        return Err(layout(format!(
            "data_offsets [{start}, {end}] span {} bytes, but shape {shape:?} of F32 needs {}",
            end - start,
            describe_bytes(&shape)
        )));
    }
    Ok(Entry {
        name: name.to_string(),
        shape,
        start,
        end,
    })
}

/// The byte count of an F32 tensor of this shape, in words when it overflows.
fn describe_bytes(shape: &[usize]) -> String {
    match shape.iter().try_fold(4usize, |a, &d| a.checked_mul(d)) {
        Some(b) => b.to_string(),
        None => "more than fit in memory".to_string(),
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|u| usize::try_from(u).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_is_a_hidden_unique_name_in_the_directory_of_the_target() {
        let pid = std::process::id();
        for (path, dir, name) in [
            (
                "runs/copy/ckpt.safetensors",
                "runs/copy",
                "ckpt.safetensors",
            ),
            ("/tmp/model.safetensors", "/tmp", "model.safetensors"),
            ("ckpt.safetensors", ".", "ckpt.safetensors"),
        ] {
            let temp = temp_path(Path::new(path), 7).unwrap();
            assert_eq!(temp.parent(), Some(Path::new(dir)), "{path}");
            assert_eq!(
                temp.file_name().and_then(|n| n.to_str()),
                Some(format!(".{name}.tmp-{pid}-7").as_str()),
                "{path}"
            );
        }
        let p = Path::new("a.safetensors");
        assert_ne!(temp_path(p, 1).unwrap(), temp_path(p, 2).unwrap());
        for no_file in ["/", "runs/.."] {
            let err = temp_path(Path::new(no_file), 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{no_file}");
        }
    }

    /// A reader that hands out its bytes `chunk` at a time, with an `Interrupted` error before
    /// every read that succeeds.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
        interrupt: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let k = self.chunk.min(buf.len()).min(self.data.len() - self.at);
            buf[..k].copy_from_slice(&self.data[self.at..self.at + k]);
            self.at += k;
            Ok(k)
        }
    }

    #[test]
    fn read_up_to_gathers_short_reads_retries_interrupted_ones_and_stops_at_the_end() {
        let mut r = Trickle {
            data: (1..=10).collect(),
            at: 0,
            chunk: 3,
            interrupt: false,
        };
        let mut buf = [0u8; 8];
        assert_eq!(read_up_to(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = [0u8; 8];
        assert_eq!(
            read_up_to(&mut r, &mut buf).unwrap(),
            2,
            "only two bytes were left"
        );
        assert_eq!(buf[..2], [9, 10]);

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("the disk is gone"))
            }
        }
        let err = read_up_to(&mut Failing, &mut [0; 4]).unwrap_err();
        assert_eq!(err.to_string(), "the disk is gone");
    }
}
