//! # aiayn: "Attention Is All You Need", verified
//!
//! A reference implementation of the Transformer of Vaswani et al. (2017), arXiv:1706.03762,
//! one small module per idea of the paper, named after the paper's symbols. Matrices are
//! nalgebra `DMatrix` with one row per position (the paper's row-vector convention `x W`),
//! generic over the float type (`f64` for verification, `f32` for speed).
//!
//! | paper | module |
//! |---|---|
//! | §3.1 encoder and decoder stacks | [`encoder`], [`decoder`], [`sublayer`], [`layer_norm`], [`model`] |
//! | §3.2.1 scaled dot-product attention, Eq. 1 | [`attention`], [`softmax`] |
//! | Eq. 1 in O(n) memory, block by block (beside the paper) | [`blockwise`] |
//! | §3.2.2 multi-head attention | [`multi_head`] |
//! | §3.2.3 masks | [`mask`] |
//! | §3.3 position-wise feed-forward, Eq. 2 | [`feed_forward`] |
//! | §3.4 embeddings and softmax | [`embedding`] |
//! | §3.5 positional encoding | [`positional`] |
//! | §4 Table 1: the layers it compares, measured | [`why_self_attention`] |
//! | §5 training: Eq. 3, Adam, label smoothing | [`train`] |
//! | §6.1 BLEU, as sacreBLEU computes it | [`bleu`] |
//! | §6.2 Table 3 | [`config`] |
//!
//! With the `io` feature (on by default), [`checkpoint`] saves and loads parameters and
//! training state as safetensors files.

pub mod attention;
pub mod bleu;
pub mod blockwise;
pub mod config;
pub mod decode;
pub mod decoder;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod fast;
pub mod feed_forward;
pub mod init;
pub mod layer_norm;
pub mod mask;
pub mod matmul;
pub mod model;
pub mod multi_head;
pub mod params;
pub mod positional;
pub mod softmax;
pub mod sublayer;
pub mod train;
pub mod why_self_attention;

pub use config::Config;
pub use model::Transformer;

#[cfg(feature = "io")]
pub mod checkpoint;

#[cfg(feature = "book")]
pub mod book;
#[cfg(feature = "book")]
pub mod fixture;
