//! The HNSW engine: graph, distance kernels, insert, search (its
//! binary form is in `crate::lhv1::graph`).
//! It knows slots and vectors only; ids and metadata live in `Index`.

pub mod arena;
pub mod distance;
pub mod graph;
pub(crate) mod hugepages;
pub mod quant;
pub mod visited;

pub use distance::Metric;
pub use graph::{Graph, GraphParams};
pub use quant::Quantization;
