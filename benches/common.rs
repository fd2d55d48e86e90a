//! Shared by the bench binaries.

use std::sync::Arc;

use advanced_caching::{InMemCache, StoreFor};

/// A raw `InMemCache` read of an `Arc<String>`, through the typed path
/// cached functions' hits take.
#[inline]
pub(crate) fn inmem_get(store: &InMemCache, key: &str) -> Option<Arc<String>> {
    let mut out = None;
    StoreFor::<Arc<String>>::lookup(store, key, |entry| {
        out = entry.value.downcast_ref::<Arc<String>>().cloned();
    });
    out
}
