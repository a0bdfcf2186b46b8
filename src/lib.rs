//! vectord: named HNSW vector indexes with a C ABI, persisted as LHV1 blobs.

pub mod error;
pub mod storeclient;

pub use error::{Error, Result};
