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
