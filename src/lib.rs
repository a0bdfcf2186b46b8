//! vectord: named HNSW vector indexes with a C ABI, persisted as LHV1 blobs.
//!
//! - [`index::Index`]: one index (ids, vectors, metadata, search).
//! - [`registry::Registry`]: named indexes, persistent when opened with a store.
//! - [`hnsw`]: the engine underneath.
//! - [`storeclient`]: where LHV1 blobs are kept (storaged over HTTP, or a directory).

pub mod error;
pub mod ffi;
pub mod filter;
pub mod hnsw;
mod idmap;
pub mod index;
pub mod lhv1;
pub mod log;
pub mod parallel;
pub mod registry;
pub mod storeclient;

pub use error::{Error, Result};
pub use filter::Filter;
pub use hnsw::{Metric, Quantization};
pub use index::{Hit, Index, IndexParams};
pub use registry::Registry;
