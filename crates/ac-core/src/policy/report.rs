//! What a policy reports: hits and misses to metrics, failures to metrics
//! and, quietly, to the log.

use std::any::type_name;
use std::fmt;
use std::time::Instant;

use super::CachePolicy;
use crate::Error;

/// One in this many in-process lookups is timed when metrics are on: two
/// clock reads cost more than the lookup itself.
pub const LATENCY_SAMPLE: u32 = 16;

/// Whether this thread's next lookup is one of the timed ones.
#[inline]
pub(super) fn sample_latency() -> bool {
    thread_local! {
        static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    CALLS.with(|calls| {
        let n = calls.get().wrapping_add(1);
        calls.set(n);
        // The first lookup of every thread is timed, so that a cache with
        // few calls still has a latency.
        n % LATENCY_SAMPLE == 1
    })
}

impl<A, T, E, S: crate::Store + ?Sized> CachePolicy<A, T, E, S> {
    #[inline]
    pub(super) fn hit(&self, key: &str) {
        if self.metrics_on {
            self.metrics.record_hit(&self.name, key);
        }
    }

    #[inline]
    pub(super) fn miss(&self, key: &str) {
        if self.metrics_on {
            self.metrics.record_miss(&self.name, key);
        }
    }

    /// Counts and logs a store failure; the call goes on without the store.
    #[cold]
    pub(super) fn store_error(&self, operation: &'static str, key: &str, error: &Error) {
        self.metrics
            .record_error(&self.name, operation, error.kind());
        self.log_failure(
            operation,
            key,
            error,
            &crate::log::summary(error),
            "cache store failed; calling through without it",
        );
    }

    /// Logs a failure quietly: in full, key included, at debug level; as a
    /// warning without the key at most once per
    /// [`WARN_INTERVAL`](crate::log) for each `operation`, with the number
    /// suppressed since the last.
    #[cold]
    pub(super) fn log_failure(
        &self,
        operation: &'static str,
        key: &str,
        error: &dyn fmt::Display,
        summary: &dyn fmt::Display,
        what: &str,
    ) {
        tracing::debug!(target: "advanced_caching::policy", cache = %self.name,
            store = self.store.name(), operation, key, %error, "{what}");
        if let Some(suppressed) = self.warnings.admit(operation, Instant::now()) {
            tracing::warn!(target: "advanced_caching::policy", cache = %self.name,
                store = self.store.name(), operation, error = %summary, suppressed, "{what}");
        }
    }

    /// Counts and logs an entry holding another type than `T`: unusable,
    /// so the call treats it as a miss.
    #[cold]
    #[inline(never)]
    pub(super) fn type_mismatch(&self, key: &str, found: &'static str) {
        let error = Error::TypeMismatch {
            key: key.to_owned(),
            expected: type_name::<T>(),
            found,
        };
        self.metrics.record_error(&self.name, "get", error.kind());
        self.log_failure(
            "type_mismatch",
            key,
            &error,
            &crate::log::summary(&error),
            "ignoring cache entries of another type (another function shares this key space?)",
        );
    }
}
