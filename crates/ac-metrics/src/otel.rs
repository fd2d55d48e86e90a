//! [`OpenTelemetryMetrics`]: cache metrics on an OpenTelemetry meter.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ac_core::MetricsCollector;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// Reports cache metrics as OpenTelemetry instruments on a meter: the
/// global meter provider's ([`OpenTelemetryMetrics::new`]) or a given
/// meter's ([`OpenTelemetryMetrics::with_meter`]).
///
/// | instrument | kind | attributes |
/// |---|---|---|
/// | `cache.hits`, `cache.misses`, `cache.sets`, `cache.deletes` | counter | `cache` |
/// | `cache.errors` | counter | `cache`, `operation`, `error_type` |
/// | `cache.latency` (seconds) | histogram | `cache`, `operation` |
/// | `cache.memory.bytes`, `cache.entries` | gauge | `cache` |
/// | `cache.background_refresh` | counter | `cache`, `result` |
/// | `cache.background_refresh.duration` (seconds) | histogram | `cache` |
#[derive(Clone)]
pub struct OpenTelemetryMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    hits: Counter<u64>,
    misses: Counter<u64>,
    sets: Counter<u64>,
    deletes: Counter<u64>,
    errors: Counter<u64>,
    latency: Histogram<f64>,
    memory: Gauge<u64>,
    entries: Gauge<u64>,
    refreshes: Counter<u64>,
    refresh_duration: Histogram<f64>,
    /// `[cache=name]` attribute sets, built once per cache name.
    by_cache: papaya::HashMap<Box<str>, Arc<[KeyValue]>, foldhash::fast::RandomState>,
}

impl fmt::Debug for OpenTelemetryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenTelemetryMetrics")
            .finish_non_exhaustive()
    }
}

impl OpenTelemetryMetrics {
    /// Instruments on the global meter provider's meter `meter_name`, e.g.
    /// `"myapp.cache"`.
    pub fn new(meter_name: &'static str) -> Self {
        Self::with_meter(&opentelemetry::global::meter(meter_name))
    }

    /// Instruments on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        let seconds = |name: &'static str, help: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(help)
                .build()
        };
        Self {
            inner: Arc::new(Inner {
                hits: meter
                    .u64_counter("cache.hits")
                    .with_description("Calls answered from the cache")
                    .build(),
                misses: meter
                    .u64_counter("cache.misses")
                    .with_description("Calls that ran the function")
                    .build(),
                sets: meter
                    .u64_counter("cache.sets")
                    .with_description("Entries written")
                    .build(),
                deletes: meter
                    .u64_counter("cache.deletes")
                    .with_description("Entries deleted")
                    .build(),
                errors: meter
                    .u64_counter("cache.errors")
                    .with_description("Store and refresh errors")
                    .build(),
                latency: seconds("cache.latency", "Cache operation latency"),
                memory: meter
                    .u64_gauge("cache.memory.bytes")
                    .with_unit("By")
                    .build(),
                entries: meter.u64_gauge("cache.entries").build(),
                refreshes: meter.u64_counter("cache.background_refresh").build(),
                refresh_duration: seconds(
                    "cache.background_refresh.duration",
                    "Background refresh time",
                ),
                by_cache: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
            }),
        }
    }

    #[inline]
    fn with_cache(&self, cache: &str, use_it: impl FnOnce(&[KeyValue])) {
        let map = self.inner.by_cache.pin();
        match map.get(cache) {
            Some(attrs) => use_it(attrs),
            None => use_it(map.get_or_insert_with(cache.into(), || {
                Arc::from([KeyValue::new("cache", cache.to_owned())])
            })),
        }
    }
}

impl MetricsCollector for OpenTelemetryMetrics {
    #[inline]
    fn record_hit(&self, cache: &str, _key: &str) {
        self.with_cache(cache, |attrs| self.inner.hits.add(1, attrs));
    }

    #[inline]
    fn record_miss(&self, cache: &str, _key: &str) {
        self.with_cache(cache, |attrs| self.inner.misses.add(1, attrs));
    }

    fn record_set(&self, cache: &str, _key: &str, _value_size: Option<usize>) {
        self.with_cache(cache, |attrs| self.inner.sets.add(1, attrs));
    }

    fn record_delete(&self, cache: &str, _key: &str) {
        self.with_cache(cache, |attrs| self.inner.deletes.add(1, attrs));
    }

    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        let attrs = [
            KeyValue::new("cache", cache.to_owned()),
            KeyValue::new("operation", operation.to_owned()),
        ];
        self.inner.latency.record(duration.as_secs_f64(), &attrs);
    }

    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        let attrs = [
            KeyValue::new("cache", cache.to_owned()),
            KeyValue::new("operation", operation.to_owned()),
            KeyValue::new("error_type", error_type.to_owned()),
        ];
        self.inner.errors.add(1, &attrs);
    }

    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        self.with_cache(cache, |attrs| {
            self.inner.memory.record(bytes, attrs);
            self.inner.entries.record(entries, attrs);
        });
    }

    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        let result = if success { "success" } else { "failure" };
        let attrs = [
            KeyValue::new("cache", cache.to_owned()),
            KeyValue::new("result", result),
        ];
        self.inner.refreshes.add(1, &attrs);
        self.with_cache(cache, |attrs| {
            self.inner
                .refresh_duration
                .record(duration.as_secs_f64(), attrs);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    use super::*;

    /// `name{attr=value,…}` -> value, for sums and gauges; histogram counts
    /// as `name_count{…}`.
    fn collect(exporter: &InMemoryMetricExporter) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let label = |attrs: &mut dyn Iterator<Item = &KeyValue>| {
            let mut pairs: Vec<String> =
                attrs.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
            pairs.sort();
            pairs.join(",")
        };
        for resource in exporter.get_finished_metrics().unwrap() {
            for scope in resource.scope_metrics() {
                for metric in scope.metrics() {
                    let name = metric.name();
                    #[allow(clippy::cast_precision_loss)]
                    match metric.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                            for p in sum.data_points() {
                                out.insert(
                                    format!("{name}{{{}}}", label(&mut p.attributes())),
                                    p.value() as f64,
                                );
                            }
                        }
                        AggregatedMetrics::U64(MetricData::Gauge(gauge)) => {
                            for p in gauge.data_points() {
                                out.insert(
                                    format!("{name}{{{}}}", label(&mut p.attributes())),
                                    p.value() as f64,
                                );
                            }
                        }
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                            for p in h.data_points() {
                                out.insert(
                                    format!("{name}_count{{{}}}", label(&mut p.attributes())),
                                    p.count() as f64,
                                );
                                out.insert(
                                    format!("{name}_sum{{{}}}", label(&mut p.attributes())),
                                    p.sum(),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        out
    }

    #[test]
    fn instruments_carry_exact_values_to_the_sdk() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let m = OpenTelemetryMetrics::with_meter(&provider.meter("myapp.cache"));
        for _ in 0..4 {
            m.record_hit("users", "k");
        }
        m.record_miss("users", "k");
        m.record_set("users", "k", None);
        m.record_delete("users", "k");
        m.record_error("users", "get", "store");
        m.record_latency("users", "get", Duration::from_millis(3));
        m.record_latency("users", "get", Duration::from_millis(5));
        m.record_memory_usage("users", 1024, 3);
        m.record_background_refresh("flags", false, Duration::from_millis(7));
        provider.force_flush().unwrap();

        let seen = collect(&exporter);
        let expect = [
            ("cache.hits{cache=users}", 4.0),
            ("cache.misses{cache=users}", 1.0),
            ("cache.sets{cache=users}", 1.0),
            ("cache.deletes{cache=users}", 1.0),
            (
                "cache.errors{cache=users,error_type=store,operation=get}",
                1.0,
            ),
            ("cache.latency_count{cache=users,operation=get}", 2.0),
            ("cache.memory.bytes{cache=users}", 1024.0),
            ("cache.entries{cache=users}", 3.0),
            ("cache.background_refresh{cache=flags,result=failure}", 1.0),
            ("cache.background_refresh.duration_count{cache=flags}", 1.0),
        ];
        for (series, value) in expect {
            assert_eq!(seen.get(series), Some(&value), "{series} in {seen:#?}");
        }
        let sum = seen["cache.latency_sum{cache=users,operation=get}"];
        assert!((sum - 0.008).abs() < 1e-9, "latency sum {sum}");
    }
}
