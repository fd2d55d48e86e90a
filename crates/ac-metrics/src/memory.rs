//! [`InMemoryMetrics`]: counters and latency percentiles in the process.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock;
use std::time::{Duration, Instant};

use ac_core::MetricsCollector;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Histogram shards per operation: recording threads spread over them, so
/// a hot cache's latency recording is not one contended lock.
const SHARDS: usize = 8;

/// Latencies from 1 ns to 1 hour, 3 significant digits (0.1 % error).
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

struct Latency {
    shards: Box<[Mutex<Histogram<u64>>]>,
}

impl Latency {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    fn record(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let shard = &self.shards[shard_index()];
        let mut histogram = lock(shard);
        histogram.saturating_record(nanos);
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &*self.shards {
            let shard = lock(shard);
            // Same bounds and precision: adding cannot fail.
            let _ = all.add(&*shard);
        }
        all
    }
}

/// This thread's shard, fixed for the thread's life.
fn shard_index() -> usize {
    use std::hash::BuildHasher as _;
    thread_local! {
        static INDEX: usize = {
            let hash = foldhash::fast::FixedState::default().hash_one(std::thread::current().id());
            #[allow(clippy::cast_possible_truncation)]
            let index = hash as usize % SHARDS;
            index
        };
    }
    INDEX.with(|index| *index)
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    errors: AtomicU64,
    memory_bytes: AtomicU64,
    entries: AtomicU64,
}

struct PerCache {
    counters: Counters,
    /// Latency by operation (`"get"`, `"load"`, `"set"`, …).
    latency: papaya::HashMap<Box<str>, Arc<Latency>, foldhash::fast::RandomState>,
    errors_by: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct PerRefresh {
    success: AtomicU64,
    failure: AtomicU64,
}

struct Inner {
    started: Instant,
    caches: papaya::HashMap<Box<str>, Arc<PerCache>, foldhash::fast::RandomState>,
    refreshes: papaya::HashMap<Box<str>, Arc<PerRefresh>, foldhash::fast::RandomState>,
}

/// Counts and latency percentiles per cache, in the process. Thread-safe
/// and shared by cloning (clones record into the same stats): pass one to
/// many cached functions and read everything with
/// [`InMemoryMetrics::get_stats`].
///
/// Recording takes no global lock: counters are atomics in a lock-free map
/// keyed by cache name; latencies go to one of 8 histogram shards chosen by
/// thread.
///
/// ```
/// use ac_core::MetricsCollector;
/// use ac_metrics::InMemoryMetrics;
///
/// let metrics = InMemoryMetrics::new();
/// metrics.record_hit("get_user", "user:1");
/// metrics.record_miss("get_user", "user:2");
/// let stats = metrics.get_stats();
/// assert_eq!(stats.caches["get_user"].hit_rate_percent, 50.0);
/// ```
#[derive(Clone)]
pub struct InMemoryMetrics {
    inner: Arc<Inner>,
}

impl Default for InMemoryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InMemoryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryMetrics")
            .field("caches", &self.inner.caches.len())
            .field("refreshes", &self.inner.refreshes.len())
            .finish()
    }
}

/// Everything [`InMemoryMetrics`] saw, serializable to the Python
/// package's `get_stats()` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Seconds since the collector was created.
    pub uptime_seconds: f64,
    /// Per cache name.
    pub caches: BTreeMap<String, CacheStats>,
    /// Per `bg` key (and stale-while-revalidate refreshes per cache).
    pub background_refresh: BTreeMap<String, RefreshStats>,
}

/// One cache's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that ran the function.
    pub misses: u64,
    /// `hits / (hits + misses)`, in percent, 2 decimals.
    pub hit_rate_percent: f64,
    /// Median latency of cache lookups (`"get"`), milliseconds. In-process
    /// lookups are sampled (one in 16 per thread, and each thread's first).
    pub latency_p50_ms: f64,
    /// 95th percentile of lookup latency, milliseconds.
    pub latency_p95_ms: f64,
    /// 99th percentile of lookup latency, milliseconds.
    pub latency_p99_ms: f64,
    /// Errors of every kind.
    pub errors: u64,
    /// Entries written.
    pub sets: u64,
    /// Entries deleted.
    pub deletes: u64,
    /// Bytes the store reported last.
    pub memory_bytes: u64,
    /// Entries the store reported last.
    pub entries: u64,
    /// Errors by `operation.error_type`.
    pub errors_by: BTreeMap<String, u64>,
    /// Latency per operation (`get`, `load`, `set`, …).
    pub latency: BTreeMap<String, LatencyStats>,
}

/// Latency percentiles of one operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Samples recorded.
    pub count: u64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Mean, milliseconds.
    pub avg_ms: f64,
}

/// Background refreshes of one key or cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshStats {
    /// Refreshes that stored a value.
    pub success: u64,
    /// Refreshes that failed.
    pub failure: u64,
}

/// Nanoseconds as milliseconds, unrounded: in-memory hits take tens of
/// nanoseconds, which rounding to the microsecond would report as 0.
fn ms(nanos: f64) -> f64 {
    nanos / 1e6
}

impl LatencyStats {
    fn of(histogram: &Histogram<u64>) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let at = |q: f64| ms(histogram.value_at_quantile(q) as f64);
        Self {
            count: histogram.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            avg_ms: ms(histogram.mean()),
        }
    }
}

impl InMemoryMetrics {
    /// An empty collector.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                caches: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
                refreshes: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
            }),
        }
    }

    #[inline]
    fn cache(&self, name: &str) -> Arc<PerCache> {
        let caches = self.inner.caches.pin();
        if let Some(stats) = caches.get(name) {
            return Arc::clone(stats);
        }
        Arc::clone(caches.get_or_insert_with(name.into(), || {
            Arc::new(PerCache {
                counters: Counters::default(),
                latency: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
                errors_by: Mutex::default(),
            })
        }))
    }

    #[inline]
    fn count(&self, name: &str, counter: impl FnOnce(&Counters) -> &AtomicU64) {
        let caches = self.inner.caches.pin();
        match caches.get(name) {
            Some(stats) => counter(&stats.counters).fetch_add(1, Ordering::Relaxed),
            None => counter(&self.cache(name).counters).fetch_add(1, Ordering::Relaxed),
        };
    }

    /// A snapshot of everything recorded so far.
    pub fn get_stats(&self) -> Stats {
        let caches = self
            .inner
            .caches
            .pin()
            .iter()
            .map(|(name, stats)| (name.to_string(), snapshot(stats)))
            .collect();
        let background_refresh = self
            .inner
            .refreshes
            .pin()
            .iter()
            .map(|(key, r)| {
                let stats = RefreshStats {
                    success: r.success.load(Ordering::Relaxed),
                    failure: r.failure.load(Ordering::Relaxed),
                };
                (key.to_string(), stats)
            })
            .collect();
        Stats {
            uptime_seconds: (self.inner.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            caches,
            background_refresh,
        }
    }

    /// Forgets everything recorded.
    pub fn reset(&self) {
        self.inner.caches.pin().clear();
        self.inner.refreshes.pin().clear();
    }
}

fn snapshot(stats: &PerCache) -> CacheStats {
    let c = &stats.counters;
    let (hits, misses) = (
        c.hits.load(Ordering::Relaxed),
        c.misses.load(Ordering::Relaxed),
    );
    #[allow(clippy::cast_precision_loss)]
    let hit_rate = if hits + misses == 0 {
        0.0
    } else {
        (hits as f64 * 10_000.0 / (hits + misses) as f64).round() / 100.0
    };
    let latency: BTreeMap<String, LatencyStats> = stats
        .latency
        .pin()
        .iter()
        .map(|(op, l)| (op.to_string(), LatencyStats::of(&l.merged())))
        .collect();
    let get = latency.get("get");
    CacheStats {
        hits,
        misses,
        hit_rate_percent: hit_rate,
        latency_p50_ms: get.map_or(0.0, |l| l.p50_ms),
        latency_p95_ms: get.map_or(0.0, |l| l.p95_ms),
        latency_p99_ms: get.map_or(0.0, |l| l.p99_ms),
        errors: c.errors.load(Ordering::Relaxed),
        sets: c.sets.load(Ordering::Relaxed),
        deletes: c.deletes.load(Ordering::Relaxed),
        memory_bytes: c.memory_bytes.load(Ordering::Relaxed),
        entries: c.entries.load(Ordering::Relaxed),
        errors_by: lock(&stats.errors_by).clone(),
        latency,
    }
}

impl MetricsCollector for InMemoryMetrics {
    #[inline]
    fn record_hit(&self, cache: &str, _key: &str) {
        self.count(cache, |c| &c.hits);
    }

    #[inline]
    fn record_miss(&self, cache: &str, _key: &str) {
        self.count(cache, |c| &c.misses);
    }

    fn record_set(&self, cache: &str, _key: &str, _value_size: Option<usize>) {
        self.count(cache, |c| &c.sets);
    }

    fn record_delete(&self, cache: &str, _key: &str) {
        self.count(cache, |c| &c.deletes);
    }

    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        let stats = self.cache(cache);
        let latency = stats.latency.pin();
        let histogram = match latency.get(operation) {
            Some(h) => Arc::clone(h),
            None => Arc::clone(
                latency.get_or_insert_with(operation.into(), || Arc::new(Latency::new())),
            ),
        };
        histogram.record(duration);
    }

    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        let stats = self.cache(cache);
        stats.counters.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&stats.errors_by)
            .entry(format!("{operation}.{error_type}"))
            .or_default() += 1;
    }

    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        let stats = self.cache(cache);
        stats.counters.memory_bytes.store(bytes, Ordering::Relaxed);
        stats.counters.entries.store(entries, Ordering::Relaxed);
    }

    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        self.record_latency(cache, "refresh", duration);
        let refreshes = self.inner.refreshes.pin();
        let stats = match refreshes.get(cache) {
            Some(s) => Arc::clone(s),
            None => Arc::clone(refreshes.get_or_insert_with(cache.into(), Arc::default)),
        };
        let counter = if success {
            &stats.success
        } else {
            &stats.failure
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
