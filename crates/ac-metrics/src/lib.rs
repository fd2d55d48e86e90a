//! Metrics collectors for [advanced-caching](https://docs.rs/advanced-caching).
//!
//! [`InMemoryMetrics`] keeps counters and latency histograms in the process
//! and reports them with [`InMemoryMetrics::get_stats`], in the shape of the
//! Python package's `get_stats()`. The null collector,
//! [`ac_core::NullMetrics`], stays the default everywhere.
//!
//! Exporters, each behind a feature: `PrometheusMetrics` (`prometheus`),
//! `OpenTelemetryMetrics` (`opentelemetry`), `GcpCloudMonitoringMetrics`
//! (`gcp`).
#![forbid(unsafe_code)]

/// Locks `mutex`, ignoring poisoning: the critical sections here are single
/// histogram records, map updates or assignments.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(feature = "gcp")]
mod gcp;
mod memory;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg(feature = "gcp")]
pub use gcp::{
    GcpCloudMonitoringMetrics, GcpMetricsBuilder, MAX_SERIES_PER_REQUEST, TokenProvider,
};
pub use memory::{CacheStats, InMemoryMetrics, LatencyStats, RefreshStats, Stats};
#[cfg(feature = "opentelemetry")]
pub use otel::OpenTelemetryMetrics;
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusMetrics, install_prometheus_http};
