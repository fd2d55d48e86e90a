//! Metrics collectors for [advanced-caching](https://docs.rs/advanced-caching).
//!
//! [`InMemoryMetrics`] keeps counters and latency histograms in the process
//! and reports them with [`InMemoryMetrics::get_stats`], in the shape of the
//! Python package's `get_stats()`. The null collector,
//! [`ac_core::NullMetrics`], stays the default everywhere.
#![forbid(unsafe_code)]

mod memory;

pub use memory::{CacheStats, InMemoryMetrics, LatencyStats, RefreshStats, Stats};
