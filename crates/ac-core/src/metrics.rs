//! The [`MetricsCollector`] trait and the null collector.

use std::fmt;
use std::time::Duration;

/// Receives what caches do. The eight `record_*` methods of the Python
/// package; every one defaults to doing nothing, so a collector implements
/// only what it exports.
///
/// `cache` is the cached function's name, `key` the resolved key.
pub trait MetricsCollector: Send + Sync + fmt::Debug + 'static {
    /// Whether this collector records anything. Callers skip all metrics
    /// work, clock reads included, when it returns `false`.
    fn enabled(&self) -> bool {
        true
    }
    /// A call was answered from the cache.
    fn record_hit(&self, cache: &str, key: &str) {
        let _ = (cache, key);
    }
    /// A call found no usable entry.
    fn record_miss(&self, cache: &str, key: &str) {
        let _ = (cache, key);
    }
    /// An entry was written; `value_size` in bytes when known.
    fn record_set(&self, cache: &str, key: &str, value_size: Option<usize>) {
        let _ = (cache, key, value_size);
    }
    /// An entry was deleted.
    fn record_delete(&self, cache: &str, key: &str) {
        let _ = (cache, key);
    }
    /// An operation (`"get"`, `"set"`, `"load"`, …) took `duration`.
    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        let _ = (cache, operation, duration);
    }
    /// An operation failed; `error_type` is a short label such as `"store"`.
    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        let _ = (cache, operation, error_type);
    }
    /// The store holds `bytes` in `entries`.
    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        let _ = (cache, bytes, entries);
    }
    /// A background refresh (stale-while-revalidate or `bg`) finished.
    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        let _ = (cache, success, duration);
    }
}

/// The default collector: records nothing and costs one predictable branch.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullMetrics;

/// A shared [`NullMetrics`].
pub static NULL_METRICS: NullMetrics = NullMetrics;

impl MetricsCollector for NullMetrics {
    fn enabled(&self) -> bool {
        false
    }
}

impl<M: MetricsCollector + ?Sized> MetricsCollector for std::sync::Arc<M> {
    fn enabled(&self) -> bool {
        (**self).enabled()
    }
    fn record_hit(&self, cache: &str, key: &str) {
        (**self).record_hit(cache, key);
    }
    fn record_miss(&self, cache: &str, key: &str) {
        (**self).record_miss(cache, key);
    }
    fn record_set(&self, cache: &str, key: &str, value_size: Option<usize>) {
        (**self).record_set(cache, key, value_size);
    }
    fn record_delete(&self, cache: &str, key: &str) {
        (**self).record_delete(cache, key);
    }
    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        (**self).record_latency(cache, operation, duration);
    }
    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        (**self).record_error(cache, operation, error_type);
    }
    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        (**self).record_memory_usage(cache, bytes, entries);
    }
    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        (**self).record_background_refresh(cache, success, duration);
    }
}
