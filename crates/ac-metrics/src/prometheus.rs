//! [`PrometheusMetrics`]: cache metrics through the `metrics` facade.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ac_core::{Error, MetricsCollector};
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata};

/// Reports cache metrics through the [`metrics`] crate, so any recorder the
/// application installed receives them: Prometheus with
/// `metrics-exporter-prometheus` (see [`install_prometheus_http`]), or
/// StatsD, Datadog, … Names are `{namespace}_{subsystem}_…`:
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `hits_total`, `misses_total`, `sets_total`, `deletes_total` | counter | `cache` |
/// | `errors_total` | counter | `cache`, `operation`, `error_type` |
/// | `latency_seconds` | histogram | `cache`, `operation` |
/// | `memory_bytes`, `entries` | gauge | `cache` |
/// | `background_refresh_total` | counter | `cache`, `result` (`success`/`failure`) |
/// | `background_refresh_seconds` | histogram | `cache` |
///
/// Handles are registered with the recorder installed at the first record
/// of each series and kept: install the recorder before caching starts.
///
/// ```
/// use ac_core::MetricsCollector;
/// use ac_metrics::PrometheusMetrics;
///
/// let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
/// let handle = recorder.handle();
/// metrics::with_local_recorder(&recorder, || {
///     let m = PrometheusMetrics::new("myapp", "cache");
///     m.record_hit("get_user", "user:1");
/// });
/// assert!(handle.render().contains(r#"myapp_cache_hits_total{cache="get_user"} 1"#));
/// ```
#[derive(Clone)]
pub struct PrometheusMetrics {
    inner: Arc<Inner>,
}

type Handles<H> = papaya::HashMap<Box<str>, H, foldhash::fast::RandomState>;

struct Inner {
    prefix: String,
    hits: Handles<Counter>,
    misses: Handles<Counter>,
    sets: Handles<Counter>,
    deletes: Handles<Counter>,
    errors: Handles<Counter>,
    latency: Handles<Histogram>,
    memory: Handles<(Gauge, Gauge)>,
    refreshes: Handles<(Counter, Counter, Histogram)>,
}

impl fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusMetrics")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

static METADATA: Metadata<'static> = Metadata::new("advanced_caching", Level::INFO, None);

fn handles<H>() -> Handles<H> {
    papaya::HashMap::builder()
        .hasher(foldhash::fast::RandomState::default())
        .build()
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(name, value)| Label::new(*name, (*value).to_owned()))
        .collect()
}

impl PrometheusMetrics {
    /// Metrics named `{namespace}_{subsystem}_…` (an empty part is left
    /// out, as in the Python package and prometheus_client).
    pub fn new(namespace: &str, subsystem: &str) -> Self {
        let prefix = [namespace, subsystem]
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| format!("{part}_"))
            .collect();
        Self {
            inner: Arc::new(Inner {
                prefix,
                hits: handles(),
                misses: handles(),
                sets: handles(),
                deletes: handles(),
                errors: handles(),
                latency: handles(),
                memory: handles(),
                refreshes: handles(),
            }),
        }
    }

    fn key(&self, name: &str, labels: Vec<Label>) -> Key {
        Key::from_parts(format!("{}{name}", self.inner.prefix), labels)
    }

    fn counter(&self, name: &str, pairs: &[(&'static str, &str)]) -> Counter {
        metrics::with_recorder(|r| r.register_counter(&self.key(name, labels(pairs)), &METADATA))
    }

    fn histogram(&self, name: &str, pairs: &[(&'static str, &str)]) -> Histogram {
        metrics::with_recorder(|r| r.register_histogram(&self.key(name, labels(pairs)), &METADATA))
    }

    fn gauge(&self, name: &str, pairs: &[(&'static str, &str)]) -> Gauge {
        metrics::with_recorder(|r| r.register_gauge(&self.key(name, labels(pairs)), &METADATA))
    }

    /// Runs `use_it` on the cached handle of `series`, registered by `make`
    /// on first use. In place: cloning a handle costs two atomics.
    #[inline]
    fn with<H>(map: &Handles<H>, series: &str, make: impl FnOnce() -> H, use_it: impl FnOnce(&H)) {
        let map = map.pin();
        match map.get(series) {
            Some(handle) => use_it(handle),
            None => use_it(map.get_or_insert_with(series.into(), make)),
        }
    }
}

impl MetricsCollector for PrometheusMetrics {
    #[inline]
    fn record_hit(&self, cache: &str, _key: &str) {
        let make = || self.counter("hits_total", &[("cache", cache)]);
        Self::with(&self.inner.hits, cache, make, |c| c.increment(1));
    }

    #[inline]
    fn record_miss(&self, cache: &str, _key: &str) {
        let make = || self.counter("misses_total", &[("cache", cache)]);
        Self::with(&self.inner.misses, cache, make, |c| c.increment(1));
    }

    fn record_set(&self, cache: &str, _key: &str, _value_size: Option<usize>) {
        let make = || self.counter("sets_total", &[("cache", cache)]);
        Self::with(&self.inner.sets, cache, make, |c| c.increment(1));
    }

    fn record_delete(&self, cache: &str, _key: &str) {
        let make = || self.counter("deletes_total", &[("cache", cache)]);
        Self::with(&self.inner.deletes, cache, make, |c| c.increment(1));
    }

    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        let series = format!("{cache}\0{operation}");
        let make = || {
            self.histogram(
                "latency_seconds",
                &[("cache", cache), ("operation", operation)],
            )
        };
        Self::with(&self.inner.latency, &series, make, |h| {
            h.record(duration.as_secs_f64())
        });
    }

    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        let series = format!("{cache}\0{operation}\0{error_type}");
        let make = || {
            self.counter(
                "errors_total",
                &[
                    ("cache", cache),
                    ("operation", operation),
                    ("error_type", error_type),
                ],
            )
        };
        Self::with(&self.inner.errors, &series, make, |c| c.increment(1));
    }

    #[allow(clippy::cast_precision_loss)]
    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        let make = || {
            (
                self.gauge("memory_bytes", &[("cache", cache)]),
                self.gauge("entries", &[("cache", cache)]),
            )
        };
        Self::with(&self.inner.memory, cache, make, |(b, e)| {
            b.set(bytes as f64);
            e.set(entries as f64);
        });
    }

    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        let make = || {
            (
                self.counter(
                    "background_refresh_total",
                    &[("cache", cache), ("result", "success")],
                ),
                self.counter(
                    "background_refresh_total",
                    &[("cache", cache), ("result", "failure")],
                ),
                self.histogram("background_refresh_seconds", &[("cache", cache)]),
            )
        };
        Self::with(
            &self.inner.refreshes,
            cache,
            make,
            |(ok, failed, seconds)| {
                if success { ok } else { failed }.increment(1);
                seconds.record(duration.as_secs_f64());
            },
        );
    }
}

/// Installs a Prometheus recorder as the process's `metrics` recorder,
/// serving the exposition text on `http://{addr}/metrics`. Inside a tokio
/// runtime the listener runs on it; otherwise on a thread of its own.
///
/// # Errors
/// If a recorder is already installed or the address cannot be bound.
pub fn install_prometheus_http(addr: SocketAddr) -> Result<(), Error> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| {
            Error::invalid_config_caused_by(format!("cannot serve Prometheus metrics on {addr}"), e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_exact_values() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let m = PrometheusMetrics::new("myapp", "cache");
            for _ in 0..3 {
                m.record_hit("users", "k");
            }
            m.record_miss("users", "k");
            m.record_set("users", "k", None);
            m.record_delete("users", "k");
            m.record_error("users", "get", "store");
            m.record_error("users", "get", "store");
            m.record_latency("users", "get", Duration::from_millis(2));
            m.record_memory_usage("users", 2048, 7);
            m.record_background_refresh("flags", true, Duration::from_millis(5));
            m.record_background_refresh("flags", false, Duration::from_millis(5));
        });
        let text = handle.render();
        for line in [
            r#"myapp_cache_hits_total{cache="users"} 3"#,
            r#"myapp_cache_misses_total{cache="users"} 1"#,
            r#"myapp_cache_sets_total{cache="users"} 1"#,
            r#"myapp_cache_deletes_total{cache="users"} 1"#,
            r#"myapp_cache_errors_total{cache="users",operation="get",error_type="store"} 2"#,
            r#"myapp_cache_memory_bytes{cache="users"} 2048"#,
            r#"myapp_cache_entries{cache="users"} 7"#,
            r#"myapp_cache_background_refresh_total{cache="flags",result="success"} 1"#,
            r#"myapp_cache_background_refresh_total{cache="flags",result="failure"} 1"#,
            r#"myapp_cache_latency_seconds_count{cache="users",operation="get"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn empty_name_parts_are_left_out() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            PrometheusMetrics::new("", "cache").record_hit("c", "k");
        });
        assert!(handle.render().contains(r#"cache_hits_total{cache="c"} 1"#));
    }
}
