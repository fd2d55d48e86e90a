//! Shared by the bench binaries.

use std::sync::Arc;

use advanced_caching::InMemCache;
use advanced_caching::crates::core::LocalLookup as _;

/// A raw `InMemCache` read of an `Arc<String>`, through the typed path
/// cached functions' hits take.
#[inline]
pub(crate) fn inmem_get(store: &InMemCache, key: &str) -> Option<Arc<String>> {
    let mut out = None;
    store.visit_local(key, |entry| {
        out = entry.value.downcast_ref::<Arc<String>>().cloned();
    });
    out
}
