//! Metrics collectors for [advanced-caching](https://docs.rs/advanced-caching).
//!
//! [`InMemoryMetrics`] keeps counters and latency histograms in the process
//! and reports them with [`InMemoryMetrics::get_stats`], in the shape of the
//! Python package's `get_stats()`. The null collector,
//! [`ac_core::NullMetrics`], stays the default everywhere.
//!
//! Exporters, each behind a feature: `PrometheusMetrics` (`prometheus`),
//! `OpenTelemetryMetrics` (`opentelemetry`).
#![forbid(unsafe_code)]

mod memory;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;

pub use memory::{CacheStats, InMemoryMetrics, LatencyStats, RefreshStats, Stats};
#[cfg(feature = "opentelemetry")]
pub use otel::OpenTelemetryMetrics;
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusMetrics, install_prometheus_http};
