//! The HNSW engine: graph, distance kernels, insert, search, binary form.
//! It knows slots and vectors only; ids and metadata live in `Index`.

pub mod binary;
pub mod distance;
pub mod graph;
pub mod visited;

pub use distance::Metric;
pub use graph::{Graph, GraphParams};
