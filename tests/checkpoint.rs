//! Checkpoints (`aiayn::checkpoint`): the safetensors layout byte for byte, round trips bit for
//! bit, and a named error, never a panic, for every kind of broken file.

mod properties_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use aiayn::checkpoint::{load, save, Checkpoint, CheckpointError, NamedTensor};
use nalgebra::{DMatrix, RowDVector};
use properties_support::config;
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

const REGRESSIONS: &str = "proptest-regressions/checkpoint.txt";

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aiayn-checkpoint-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tensor(name: &str, shape: &[usize], data: &[f32]) -> NamedTensor {
    NamedTensor {
        name: name.to_string(),
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

/// Two tensors, `a` (2, 3) and `b` [4], and one metadata entry.
fn small_checkpoint() -> Checkpoint {
    let mut c = Checkpoint::default();
    c.tensors
        .push(tensor("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    c.tensors.push(tensor("b", &[4], &[-1.0, -0.0, 0.5, 8.0]));
    c.metadata.insert("step".into(), "100".into());
    c
}

/// A safetensors file from its header text and data bytes, as the format defines it.
fn file_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn bits(c: &Checkpoint) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    c.tensors
        .iter()
        .map(|t| {
            let b = t.data.iter().map(|v| v.to_bits()).collect();
            (t.name.clone(), t.shape.clone(), b)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Layout

#[test]
fn from_matrix_stores_rows_one_after_another() {
    // [[1, 2, 3],
    //  [4, 5, 6]]
    let m = DMatrix::from_row_slice(2, 3, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let t = NamedTensor::from_matrix("w", &m);
    assert_eq!(t.name, "w");
    assert_eq!(t.shape, [2, 3]);
    assert_eq!(t.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let back = t.to_matrix();
    assert_eq!(back.shape(), (2, 3));
    assert_eq!(back[(0, 2)], 3.0);
    assert_eq!(back[(1, 0)], 4.0);
    assert_eq!(back, m);
}

#[test]
fn from_row_is_one_dimensional_and_comes_back_as_one_row() {
    let v = RowDVector::from_vec(vec![7.0f32, 8.0, 9.0]);
    let t = NamedTensor::from_row("b_1", &v);
    assert_eq!(t.shape, [3]);
    assert_eq!(t.data, [7.0, 8.0, 9.0]);
    let m = t.to_matrix();
    assert_eq!(m.shape(), (1, 3));
    assert_eq!(m, DMatrix::from_row_slice(1, 3, &[7.0, 8.0, 9.0]));
}

#[test]
fn a_scalar_comes_back_as_a_one_by_one_matrix() {
    let m = tensor("s", &[], &[2.5]).to_matrix();
    assert_eq!(m, DMatrix::from_element(1, 1, 2.5));
}

#[test]
fn save_writes_the_safetensors_layout_byte_for_byte() {
    // Written out by hand from the format's definition: the header is padded with spaces to a
    // multiple of 8 bytes, and 1.0f32 is 0x3f800000, -0.0 is 0x80000000, little-endian.
    let dir = TempDir::new();
    let path = dir.path("w.safetensors");
    let mut c = Checkpoint::default();
    c.tensors.push(tensor("w", &[2], &[1.0, -0.0]));
    save(&path, &c).unwrap();

    let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    assert_eq!(header.len(), 54);
    let padded = format!("{header}  ");
    let want = file_bytes(&padded, &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x80]);
    assert_eq!(fs::read(&path).unwrap(), want);
}

#[test]
fn metadata_goes_in_the_header_and_safetensors_reads_it() {
    let dir = TempDir::new();
    let path = dir.path("m.safetensors");
    let c = small_checkpoint();
    save(&path, &c).unwrap();
    let bytes = fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta.get("step").map(String::as_str), Some("100"));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let b = st.tensor("b").unwrap();
    assert_eq!(b.dtype(), Dtype::F32);
    assert_eq!(b.shape(), [4]);
    assert_eq!(&b.data()[4..8], (-0.0f32).to_le_bytes());
}

#[test]
fn a_file_from_another_writer_loads_sorted_by_name() {
    // `b` comes first in both the header and the data; `load` still returns `a` first.
    let header = r#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"seed":"7"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}}"#;
    let mut data = Vec::new();
    for v in [3.0f32, 1.0, 2.0] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    let dir = TempDir::new();
    let path = dir.path("other.safetensors");
    fs::write(&path, file_bytes(header, &data)).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(
        c.tensors,
        [tensor("a", &[1, 2], &[1.0, 2.0]), tensor("b", &[1], &[3.0])]
    );
    assert_eq!(c.meta_parse::<u64>(&path, "seed").unwrap(), 7);
}

#[test]
fn a_null_metadata_entry_is_no_metadata() {
    // Writers with an optional metadata field may serialise its absence as null.
    let header = r#"{"__metadata__":null,"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let dir = TempDir::new();
    let path = dir.path("null-metadata.safetensors");
    fs::write(&path, file_bytes(header, &1.5f32.to_le_bytes())).unwrap();
    let c = load(&path).unwrap();
    assert!(c.metadata.is_empty(), "{:?}", c.metadata);
    assert_eq!(c.tensors, [tensor("w", &[1], &[1.5])]);
}

#[test]
fn save_then_load_returns_the_tensors_sorted_by_name() {
    let dir = TempDir::new();
    let path = dir.path("order.safetensors");
    let mut c = Checkpoint::default();
    for name in [
        "norm1.gain",
        "embedding",
        "adam.m.embedding",
        "Z",
        "encoder.norm.bias",
    ] {
        c.tensors.push(tensor(name, &[1], &[1.0]));
    }
    save(&path, &c).unwrap();
    let names: Vec<String> = load(&path)
        .unwrap()
        .tensors
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        [
            "Z",
            "adam.m.embedding",
            "embedding",
            "encoder.norm.bias",
            "norm1.gain"
        ]
    );
}

#[test]
fn an_empty_checkpoint_round_trips() {
    let dir = TempDir::new();
    let path = dir.path("empty.safetensors");
    save(&path, &Checkpoint::default()).unwrap();
    assert_eq!(load(&path).unwrap(), Checkpoint::default());
}

#[test]
fn save_replaces_an_existing_file_and_leaves_no_temporary_file() {
    let dir = TempDir::new();
    let path = dir.path("ckpt.safetensors");
    save(&path, &small_checkpoint()).unwrap();
    let mut second = Checkpoint::default();
    second.tensors.push(tensor("only", &[1], &[42.0]));
    save(&path, &second).unwrap();
    assert_eq!(load(&path).unwrap(), second);
    assert_eq!(dir.listing(), ["ckpt.safetensors"]);
}

// ---------------------------------------------------------------------------------------------
// Round trips

/// Any f32 bit pattern, with the special values drawn often.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        prop::sample::select(vec![
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(1),            // smallest subnormal
            -f32::from_bits(0x007f_ffff), // largest subnormal, negated
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
        ]),
    ]
}

/// A tensor of rank 0..=3, each dimension 0..=4, with any values.
fn any_tensor_body() -> impl Strategy<Value = (Vec<usize>, Vec<f32>)> {
    prop::collection::vec(0..=4usize, 0..=3).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        (Just(shape), prop::collection::vec(any_f32(), n))
    })
}

/// Distinct names (any Unicode, but not the header's `__metadata__`), in a shuffled order.
fn any_checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        prop::collection::btree_map("[a-z_.0-9]{1,12}|\\PC{0,6}", any_tensor_body(), 0..6),
        prop::collection::btree_map("\\PC{0,8}", "\\PC{0,12}", 0..4),
    )
        .prop_flat_map(|(tensors, metadata)| {
            let tensors: Vec<NamedTensor> = tensors
                .into_iter()
                .filter(|(name, _)| name != "__metadata__")
                .map(|(name, (shape, data))| NamedTensor { name, shape, data })
                .collect();
            (Just(tensors).prop_shuffle(), Just(metadata))
        })
        .prop_map(|(tensors, metadata)| Checkpoint { tensors, metadata })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    fn save_then_load_is_bit_for_bit(c in any_checkpoint()) {
        let dir = TempDir::new();
        let path = dir.path("rt.safetensors");
        save(&path, &c).unwrap();
        let back = load(&path).unwrap();
        let mut sorted = c.clone();
        sorted.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        prop_assert_eq!(bits(&back), bits(&sorted));
        prop_assert_eq!(&back.metadata, &c.metadata);
    }

    #[test]
    fn from_matrix_then_to_matrix_is_identity(r in 0..5usize, c in 0..5usize, seed in any::<u64>()) {
        let m = DMatrix::from_fn(r, c, |i, j| (seed.wrapping_mul(31).wrapping_add((i * 7 + j) as u64) % 1000) as f32);
        let t = NamedTensor::from_matrix("m", &m);
        prop_assert_eq!(t.shape.clone(), vec![r, c]);
        for i in 0..r {
            for j in 0..c {
                prop_assert_eq!(t.data[i * c + j], m[(i, j)]);
            }
        }
        prop_assert_eq!(t.to_matrix(), m);
    }
}

// ---------------------------------------------------------------------------------------------
// Broken files

/// Which error a broken file should give.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Io,
    Format,
    Layout,
    Dtype,
}

fn kind(e: &CheckpointError) -> Option<Kind> {
    match e {
        CheckpointError::Io { .. } => Some(Kind::Io),
        CheckpointError::Format { .. } => Some(Kind::Format),
        CheckpointError::Layout { .. } => Some(Kind::Layout),
        CheckpointError::Dtype { .. } => Some(Kind::Dtype),
        _ => None,
    }
}

/// The bytes of `small_checkpoint()` as `save` writes them, and the header's length.
fn valid_file() -> (Vec<u8>, usize) {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        let dir = TempDir::new();
        let path = dir.path("valid.safetensors");
        save(&path, &small_checkpoint()).unwrap();
        fs::read(&path).unwrap()
    });
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (bytes.clone(), n)
}

/// A safetensors file written by the `safetensors` crate with one tensor `w` of `dtype`.
fn foreign_dtype_file(dtype: Dtype) -> Vec<u8> {
    let data = vec![0u8; 2 * dtype.bitsize() / 8];
    let view = TensorView::new(dtype, vec![2], &data).unwrap();
    safetensors::serialize([("w", view)], None).unwrap()
}

/// (case, file bytes, expected kind, the tensor the message must name if any).
fn broken_files() -> Vec<(String, Vec<u8>, Kind, Option<&'static str>)> {
    let (valid, n) = valid_file();
    let data_start = 8 + n;
    let mut cases: Vec<(String, Vec<u8>, Kind, Option<&'static str>)> = vec![
        ("empty file".into(), vec![], Kind::Format, None),
        ("five bytes".into(), vec![1, 2, 3, 4, 5], Kind::Format, None),
        (
            "garbage bytes".into(),
            b"this is not a checkpoint at all".to_vec(),
            Kind::Format,
            None,
        ),
        (
            "header length larger than the file".into(),
            {
                let mut b = valid.clone();
                b[..8].copy_from_slice(&(valid.len() as u64).to_le_bytes());
                b
            },
            Kind::Format,
            None,
        ),
        (
            "header length u64::MAX".into(),
            {
                let mut b = valid.clone();
                b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            Kind::Format,
            None,
        ),
        (
            "non-UTF-8 header".into(),
            {
                let mut b = valid.clone();
                b[9] = 0xff;
                b
            },
            Kind::Format,
            None,
        ),
        (
            "header not JSON".into(),
            file_bytes("{\"a\": ", &[]),
            Kind::Format,
            None,
        ),
        (
            "header a JSON list".into(),
            file_bytes("[1, 2]", &[]),
            Kind::Format,
            None,
        ),
        (
            "metadata not strings".into(),
            file_bytes(r#"{"__metadata__":{"step":100}}"#, &[]),
            Kind::Format,
            None,
        ),
        (
            "trailing bytes after the last tensor".into(),
            {
                let mut b = valid.clone();
                b.extend_from_slice(&[0, 0, 0, 0]);
                b
            },
            Kind::Format,
            None,
        ),
        (
            "byte range past the data".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "end before start".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "byte range disagrees with the shape".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "shape whose size overflows".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "overlapping tensors".into(),
            file_bytes(
                r#"{"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("v"),
        ),
        (
            "gap before a tensor".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "entry without dtype".into(),
            file_bytes(r#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]),
            Kind::Layout,
            Some("w"),
        ),
        (
            "negative size".into(),
            file_bytes(
                r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                &[0; 4],
            ),
            Kind::Layout,
            Some("w"),
        ),
        (
            "F64 tensor".into(),
            foreign_dtype_file(Dtype::F64),
            Kind::Dtype,
            Some("w"),
        ),
        (
            "I64 tensor".into(),
            foreign_dtype_file(Dtype::I64),
            Kind::Dtype,
            Some("w"),
        ),
        (
            "F16 tensor".into(),
            foreign_dtype_file(Dtype::F16),
            Kind::Dtype,
            Some("w"),
        ),
    ];
    // A header cut short: the length field promises more than the file holds.
    for cut in [9, 8 + n / 2, data_start - 1] {
        cases.push((
            format!("truncated header at byte {cut}"),
            valid[..cut].to_vec(),
            Kind::Format,
            None,
        ));
    }
    // Data cut short: `a` holds data bytes 0..24 and `b` 24..40; the first tensor (by name)
    // whose range runs past the cut is named.
    for (keep, named) in [(0, "a"), (10, "a"), (24, "b"), (39, "b")] {
        cases.push((
            format!("truncated data, {keep} of 40 bytes kept"),
            valid[..data_start + keep].to_vec(),
            Kind::Layout,
            Some(named),
        ));
    }
    cases
}

#[test]
fn every_broken_file_gives_its_named_error() {
    let dir = TempDir::new();
    for (i, (case, bytes, want, tensor)) in broken_files().into_iter().enumerate() {
        let path = dir.path(&format!("broken-{i}.safetensors"));
        fs::write(&path, &bytes).unwrap();
        let err = load(&path).expect_err(&case);
        assert_eq!(kind(&err), Some(want), "{case}: {err}");
        assert_eq!(err.path(), path, "{case}");
        let msg = err.to_string();
        let prefix = format!("checkpoint {}: ", path.display());
        assert!(msg.starts_with(&prefix), "{case}: {msg}");
        assert!(!msg.contains('\n'), "{case}: {msg}");
        if let Some(t) = tensor {
            assert!(msg.contains(&format!("tensor {t}")), "{case}: {msg}");
        }
    }
}

#[test]
fn a_layout_error_says_what_is_wrong_with_the_layout() {
    let dir = TempDir::new();
    for (header, says) in [
        (
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            "data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
            "of F32 needs more than fit in memory",
        ),
        (
            r#"{"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            "data_offsets [4, 8] overlaps the tensor before it, which ends at byte 8",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            "data_offsets [4, 8] leaves a gap after the tensor before it, which ends at byte 0",
        ),
    ] {
        let path = dir.path("layout.safetensors");
        fs::write(&path, file_bytes(header, &[0; 8])).unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert!(msg.contains(says), "{header}: {msg}");
    }
}

#[test]
fn an_f64_tensor_is_refused_by_its_dtype() {
    let dir = TempDir::new();
    let path = dir.path("f64.safetensors");
    fs::write(&path, foreign_dtype_file(Dtype::F64)).unwrap();
    let err = load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "checkpoint {}: tensor w has dtype F64, expected F32",
            path.display()
        )
    );
}

#[test]
fn a_missing_file_and_a_directory_are_io_errors_naming_the_path() {
    let dir = TempDir::new();
    for path in [dir.path("absent.safetensors"), dir.0.clone()] {
        let err = load(&path).unwrap_err();
        assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(err
            .to_string()
            .starts_with(&format!("checkpoint {}: ", path.display())));
    }
}

#[test]
fn expect_names_the_tensor_and_both_shapes() {
    let path = Path::new("run/ckpt-100.safetensors");
    let mut c = Checkpoint::default();
    let w_1 = "encoder.layers.0.ffn.w_1";
    c.tensors
        .push(tensor(w_1, &[64, 128], &vec![0.0; 64 * 128]));

    assert_eq!(c.expect(path, w_1, &[64, 128]).unwrap().name, w_1);

    let err = c.expect(path, w_1, &[64, 256]).unwrap_err();
    assert!(matches!(err, CheckpointError::Shape { .. }));
    assert_eq!(
        err.to_string(),
        "checkpoint run/ckpt-100.safetensors: tensor encoder.layers.0.ffn.w_1 has shape \
         [64, 128], expected [64, 256]"
    );

    let err = c.expect(path, "embedding", &[11, 64]).unwrap_err();
    assert!(matches!(err, CheckpointError::Missing { .. }));
    assert_eq!(
        err.to_string(),
        "checkpoint run/ckpt-100.safetensors: tensor embedding is missing"
    );
}

#[test]
fn metadata_errors_name_the_key_and_the_value() {
    let path = Path::new("ckpt.safetensors");
    let mut c = Checkpoint::default();
    c.metadata.insert("step".into(), "12x".into());
    c.metadata.insert("lr".into(), "0.5".into());

    assert_eq!(c.meta(path, "lr").unwrap(), "0.5");
    assert_eq!(c.meta_parse::<f64>(path, "lr").unwrap(), 0.5);

    let err = c.meta(path, "seed").unwrap_err();
    assert!(matches!(err, CheckpointError::Meta { .. }));
    assert_eq!(
        err.to_string(),
        "checkpoint ckpt.safetensors: metadata seed is missing"
    );
    let err = c.meta_parse::<u64>(path, "seed").unwrap_err();
    assert!(matches!(err, CheckpointError::Meta { .. }));

    let err = c.meta_parse::<usize>(path, "step").unwrap_err();
    assert!(matches!(err, CheckpointError::Meta { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with("checkpoint ckpt.safetensors: metadata step is \"12x\""),
        "{msg}"
    );
    assert!(msg.contains("usize"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Failed saves

#[test]
fn save_into_a_missing_directory_is_an_io_error_and_writes_nothing() {
    let dir = TempDir::new();
    let path = dir.path("no-such-dir").join("ckpt.safetensors");
    let err = save(&path, &small_checkpoint()).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with(&format!("checkpoint {}: ", path.display())));
    assert!(!path.exists());
    assert!(dir.listing().is_empty());
}

#[test]
fn a_refused_save_leaves_the_existing_file_untouched() {
    let dir = TempDir::new();
    let path = dir.path("ckpt.safetensors");
    save(&path, &small_checkpoint()).unwrap();
    let before = fs::read(&path).unwrap();

    let mut duplicate = small_checkpoint();
    duplicate.tensors.push(tensor("a", &[1], &[0.0]));
    let mut short = small_checkpoint();
    short.tensors.push(tensor("c", &[2, 2], &[1.0, 2.0, 3.0]));
    let mut reserved = small_checkpoint();
    reserved.tensors.push(tensor("__metadata__", &[1], &[0.0]));

    let cases = [
        (duplicate, "tensor a appears more than once"),
        (short, "tensor c has shape [2, 2] but holds 3 values"),
        (
            reserved,
            "tensor name __metadata__ is reserved for the header's metadata",
        ),
    ];
    for (bad, what) in cases {
        let err = save(&path, &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("checkpoint {}: {what}", path.display())
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(dir.listing(), ["ckpt.safetensors"]);
    }
}

#[test]
fn a_failed_rename_removes_the_temporary_file() {
    // The target is a non-empty directory: writing the temporary file succeeds, renaming it
    // over the directory fails.
    let dir = TempDir::new();
    let target = dir.path("ckpt.safetensors");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"kept").unwrap();
    let err = save(&target, &small_checkpoint()).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert_eq!(dir.listing(), ["ckpt.safetensors"]);
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"kept");
}

// ---------------------------------------------------------------------------------------------
// No input panics

/// Loads `bytes` from a file; checks that an accepted file is one the `safetensors` crate
/// accepts too, with the same tensors.
fn load_bytes(dir: &TempDir, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let path = dir.path("fuzz.safetensors");
    fs::write(&path, bytes).unwrap();
    let loaded = load(&path);
    if let Ok(c) = &loaded {
        let st = SafeTensors::deserialize(bytes).expect("load accepted what safetensors refuses");
        assert_eq!(st.len(), c.tensors.len());
        for t in &c.tensors {
            let view = st.tensor(&t.name).unwrap();
            assert_eq!(view.shape(), t.shape);
            let want: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(view.data(), want);
        }
    }
    loaded
}

/// A plausible start: a small header length, then anything.
fn plausible_bytes() -> impl Strategy<Value = Vec<u8>> {
    (0..200u64, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(n, rest)| {
        let mut b = n.to_le_bytes().to_vec();
        b.extend(rest);
        b
    })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    fn load_never_panics_on_arbitrary_bytes(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), plausible_bytes()]
    ) {
        let dir = TempDir::new();
        let _ = load_bytes(&dir, &bytes);
    }

    #[test]
    fn load_never_panics_on_a_damaged_checkpoint(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (mut bytes, _) = valid_file();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len()));
        }
        let dir = TempDir::new();
        let _ = load_bytes(&dir, &bytes);
    }

    #[test]
    fn an_f32_file_safetensors_accepts_loads(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..3),
    ) {
        // Damage only the data: every such file stays valid, with other values.
        let (mut bytes, n) = valid_file();
        let data_start = 8 + n;
        for (at, x) in flips {
            let i = data_start + at.index(bytes.len() - data_start);
            bytes[i] ^= x;
        }
        prop_assert!(SafeTensors::deserialize(&bytes).is_ok());
        let dir = TempDir::new();
        let c = load_bytes(&dir, &bytes).unwrap();
        prop_assert_eq!(c.tensors.len(), 2);
    }
}
