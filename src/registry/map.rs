//! The registry's in-memory part: a thread-safe map from index name to
//! `Arc<Index>`.
//!
//! Its lock is held only for lifecycle events (create, get, delete, names);
//! work on an index never holds it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::index::{Index, IndexParams};

#[derive(Debug, Default)]
pub(super) struct Map {
    indexes: RwLock<BTreeMap<String, Arc<Index>>>,
}

impl Map {
    /// Creates an empty index; fails with `AlreadyExists` if the name is taken.
    pub(super) fn create(&self, params: IndexParams) -> Result<Arc<Index>> {
        params.validate()?;
        let mut map = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(&params.name) {
            return Err(Error::AlreadyExists(format!("index {:?}", params.name)));
        }
        let index = Arc::new(Index::new(params)?);
        map.insert(index.name().to_string(), index.clone());
        Ok(index)
    }

    /// Registers an index built elsewhere (decoded from LHV1, say); fails
    /// with `AlreadyExists` if the name is taken.
    pub(super) fn register(&self, index: Arc<Index>) -> Result<Arc<Index>> {
        let mut map = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(index.name()) {
            return Err(Error::AlreadyExists(format!("index {:?}", index.name())));
        }
        map.insert(index.name().to_string(), index.clone());
        Ok(index)
    }

    pub(super) fn get(&self, name: &str) -> Result<Arc<Index>> {
        self.indexes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("index {name:?}")))
    }

    /// Removes an index from the registry and returns it; handles others hold
    /// stay usable.
    pub(super) fn delete(&self, name: &str) -> Result<Arc<Index>> {
        self.indexes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| Error::NotFound(format!("index {name:?}")))
    }

    /// Index names, sorted.
    pub(super) fn names(&self) -> Vec<String> {
        self.indexes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
