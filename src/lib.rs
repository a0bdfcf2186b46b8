//! vectord: named HNSW vector indexes with a C ABI, persisted as LHV1 blobs.

pub mod error;

pub use error::{Error, Result};
