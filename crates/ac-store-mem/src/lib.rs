//! [`InMemCache`]: the in-process [`Store`] of
//! [advanced-caching](https://docs.rs/advanced-caching), on a lock-free
//! [papaya](https://docs.rs/papaya) map.
//!
//! A hit takes no lock, does not allocate and does not serialize: the value
//! is kept as it is and cloned out (wrap big values in an `Arc`).
//!
//! # Expiry
//! Each entry is kept for the `ttl` it was stored with (the caching policy
//! passes `ttl + stale`). Expired entries are invisible at once and their
//! memory is reclaimed by a sweep that runs, on the writing thread, once the
//! number of writes since the last sweep reaches the number of entries that
//! sweep kept (at least 1024): a stream of unique short-lived keys cannot grow the map
//! beyond about twice its live size. [`InMemCache::sweep`] runs one now.
//!
//! # Bounds and eviction
//! [`InMemCacheBuilder::max_entries`] and/or [`InMemCacheBuilder::max_weight`]
//! (with a [`InMemCacheBuilder::weigher`], default: approximate bytes) bound
//! the cache. When a write takes it over a bound, the writer evicts:
//! expired entries first, then the entries closest to expiry (oldest first
//! among equals), until the cache is at 15/16 of the bound. The policy is
//! "volatile-ttl", as in Redis: the hot path stays a pure read, with no
//! access bookkeeping. Concurrent writers may overshoot the bound briefly
//! by the writes in flight. An entry heavier than `max_weight` is not stored.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ac_core::{
    BoxFuture, Clock, ClockReader, CoarseClock, Decoder, Entry, Error, Local, LocalLookup, Store,
    Usage,
};
use papaya::{Compute, Operation};

/// Weighs an entry for [`InMemCacheBuilder::max_weight`].
pub type Weigher = Arc<dyn Fn(&str, &Entry) -> u64 + Send + Sync>;

/// Writes between sweeps of expired entries, at least.
const SWEEP_MIN_WRITES: usize = 1024;

#[derive(Clone)]
struct Record {
    entry: Entry,
    /// Unique per record, so maintenance removes exactly what it examined.
    version: u64,
    /// Unix seconds after which the entry is gone (inclusive bound).
    expires_at: f64,
    bytes: u64,
    weight: u64,
}

impl Record {
    #[inline]
    fn live(&self, now: f64) -> bool {
        now <= self.expires_at
    }
}

struct Inner {
    map: papaya::HashMap<Box<str>, Record, foldhash::fast::RandomState>,
    clock: ClockReader,
    max_entries: Option<usize>,
    max_weight: Option<u64>,
    weigher: Option<Weigher>,
    bytes: AtomicU64,
    weight: AtomicU64,
    writes_since_sweep: AtomicUsize,
    /// Writes after which the next sweep runs: the live size the last
    /// sweep left, at least [`SWEEP_MIN_WRITES`].
    sweep_after: AtomicUsize,
    maintenance: Mutex<()>,
}

/// An in-process store on a lock-free hash map. Clones share the same map.
///
/// ```
/// use ac_store_mem::InMemCache;
///
/// let unbounded = InMemCache::new();
/// let bounded = InMemCache::builder().max_entries(10_000).build().unwrap();
/// assert!(InMemCache::builder().max_entries(0).build().is_err());
/// # drop((unbounded, bounded));
/// ```
#[derive(Clone)]
pub struct InMemCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for InMemCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemCache")
            .field("entries", &self.len())
            .field("max_entries", &self.inner.max_entries)
            .field("max_weight", &self.inner.max_weight)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl Default for InMemCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a bounded or clock-injected [`InMemCache`].
#[must_use]
#[derive(Default)]
pub struct InMemCacheBuilder {
    max_entries: Option<usize>,
    max_weight: Option<u64>,
    weigher: Option<Weigher>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for InMemCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemCacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_weight", &self.max_weight)
            .field("weigher", &self.weigher.as_ref().map(|_| "Fn"))
            .field("clock", &self.clock)
            .finish()
    }
}

impl InMemCacheBuilder {
    /// Bounds the number of entries.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = Some(max);
        self
    }

    /// Bounds the total weight of entries (by default their approximate
    /// size in bytes, see [`InMemCacheBuilder::weigher`]).
    pub fn max_weight(mut self, max: u64) -> Self {
        self.max_weight = Some(max);
        self
    }

    /// Weighs entries for [`InMemCacheBuilder::max_weight`], e.g. by the
    /// heap size of a value downcast with [`ac_core::Value::downcast_ref`].
    pub fn weigher(
        mut self,
        weigher: impl Fn(&str, &Entry) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The clock expiry is measured with (default: [`CoarseClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The clock expiry is measured with, shared.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// A zero bound, or a weigher without `max_weight`.
    pub fn build(self) -> Result<InMemCache, Error> {
        if self.max_entries == Some(0) {
            return Err(Error::invalid_config(
                "InMemCache max_entries must be at least 1",
            ));
        }
        if self.max_weight == Some(0) {
            return Err(Error::invalid_config(
                "InMemCache max_weight must be at least 1",
            ));
        }
        if self.weigher.is_some() && self.max_weight.is_none() {
            return Err(Error::invalid_config(
                "InMemCache weigher given without max_weight: set max_weight to bound by weight",
            ));
        }
        Ok(InMemCache {
            inner: Arc::new(Inner {
                map: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
                clock: ClockReader::new(self.clock.unwrap_or_else(|| Arc::new(CoarseClock::new()))),
                max_entries: self.max_entries,
                max_weight: self.max_weight,
                weigher: self.weigher,
                bytes: AtomicU64::new(0),
                weight: AtomicU64::new(0),
                writes_since_sweep: AtomicUsize::new(0),
                sweep_after: AtomicUsize::new(SWEEP_MIN_WRITES),
                maintenance: Mutex::new(()),
            }),
        })
    }
}

impl InMemCache {
    /// An unbounded cache on the coarse system clock.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default InMemCache configuration is valid")
    }

    /// A builder for a bounded cache or one on another clock.
    pub fn builder() -> InMemCacheBuilder {
        InMemCacheBuilder::default()
    }

    /// Entries held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes expired entries now; returns how many.
    pub fn sweep(&self) -> usize {
        let _maintenance = self
            .inner
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sweep_locked()
    }

    fn record(&self, key: &str, entry: Entry, ttl: Option<Duration>) -> Record {
        let now = self.inner.clock.now();
        let expires_at = ttl.map_or(f64::INFINITY, |ttl| now + ttl.as_secs_f64());
        let bytes = (key.len() + size_of::<Record>() + entry.value.shallow_size()) as u64;
        let weight = match &self.inner.weigher {
            Some(weigher) => weigher(key, &entry),
            None => bytes,
        };
        static VERSIONS: AtomicU64 = AtomicU64::new(0);
        Record {
            entry,
            version: VERSIONS.fetch_add(1, Ordering::Relaxed),
            expires_at,
            bytes,
            weight,
        }
    }

    fn added(&self, record: &Record) {
        self.inner.bytes.fetch_add(record.bytes, Ordering::Relaxed);
        self.inner
            .weight
            .fetch_add(record.weight, Ordering::Relaxed);
    }

    fn removed(&self, record: &Record) {
        // Saturating: a concurrent clear resets the totals under our feet.
        let _ = self
            .inner
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(record.bytes))
            });
        let _ = self
            .inner
            .weight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some(w.saturating_sub(record.weight))
            });
    }

    fn too_heavy(&self, record: &Record) -> bool {
        self.inner.max_weight.is_some_and(|max| record.weight > max)
    }

    fn over_bound(&self) -> bool {
        self.inner
            .max_entries
            .is_some_and(|max| self.inner.map.len() > max)
            || self
                .inner
                .max_weight
                .is_some_and(|max| self.inner.weight.load(Ordering::Relaxed) > max)
    }

    /// Sweeps and evicts as the module docs describe; runs on the writer.
    fn after_write(&self) {
        let writes = self
            .inner
            .writes_since_sweep
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let over = self.over_bound();
        if !over && writes < self.inner.sweep_after.load(Ordering::Relaxed) {
            return;
        }
        // One maintainer at a time; others carry on writing.
        let Ok(_maintenance) = self.inner.maintenance.try_lock() else {
            return;
        };
        self.sweep_locked();
        if self.over_bound() {
            self.evict_locked();
        }
    }

    /// Removes expired entries.
    fn sweep_locked(&self) -> usize {
        self.inner.writes_since_sweep.store(0, Ordering::Relaxed);
        let now = self.inner.clock.now();
        let map = self.inner.map.pin();
        let expired: Vec<(Box<str>, u64)> = map
            .iter()
            .filter(|(_, record)| !record.live(now))
            .map(|(key, record)| (key.clone(), record.version))
            .collect();
        let removed = expired
            .iter()
            .filter(|(key, version)| self.remove_version(&map, key, *version))
            .count();
        self.inner
            .sweep_after
            .store(map.len().max(SWEEP_MIN_WRITES), Ordering::Relaxed);
        removed
    }

    /// Removes `key` if it still holds the record `version` (a concurrent
    /// rewrite survives), keeping the totals exact.
    fn remove_version<G: papaya::Guard>(
        &self,
        map: &papaya::HashMapRef<'_, Box<str>, Record, foldhash::fast::RandomState, G>,
        key: &str,
        version: u64,
    ) -> bool {
        match map.remove_if(key, |_, record| record.version == version) {
            Ok(Some((_, old))) => {
                self.removed(old);
                true
            }
            _ => false,
        }
    }

    /// Evicts the entries closest to expiry until at 15/16 of the bounds.
    fn evict_locked(&self) {
        let map = self.inner.map.pin();
        let mut candidates: Vec<(f64, f64, Box<str>, u64, u64)> = map
            .iter()
            .map(|(key, r)| {
                let rank = (r.expires_at, r.entry.created_at);
                (rank.0, rank.1, key.clone(), r.version, r.weight)
            })
            .collect();
        candidates.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let entry_target = self.inner.max_entries.map(|max| max - max / 16);
        let weight_target = self.inner.max_weight.map(|max| max - max / 16);
        let mut count = candidates.len();
        let mut weight = candidates
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.4));
        for (_, _, key, version, record_weight) in candidates {
            let entries_ok = entry_target.is_none_or(|t| count <= t);
            let weight_ok = weight_target.is_none_or(|t| weight <= t);
            if entries_ok && weight_ok {
                break;
            }
            if self.remove_version(&map, &key, version) {
                count -= 1;
                weight = weight.saturating_sub(record_weight);
            }
        }
    }

    #[inline(always)]
    fn visit(&self, key: &str, mut visit: impl FnMut(&Entry)) -> Local {
        let map = self.inner.map.pin();
        match map.get(key) {
            Some(record) if record.live(self.inner.clock.now()) => {
                visit(&record.entry);
                Local::Found
            }
            _ => Local::Missing,
        }
    }
}

impl Store for InMemCache {
    fn name(&self) -> &'static str {
        "inmem"
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        _decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        let mut found = None;
        self.visit(key, |entry| found = Some(entry.clone()));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let record = self.record(key, entry, ttl);
        if self.too_heavy(&record) {
            if let Some(old) = self.inner.map.pin().remove(key) {
                self.removed(old);
            }
            return Box::pin(std::future::ready(Ok(())));
        }
        self.added(&record);
        if let Some(old) = self.inner.map.pin().insert(key.into(), record) {
            self.removed(old);
        }
        self.after_write();
        Box::pin(std::future::ready(Ok(())))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let record = self.record(key, entry, ttl);
        let now = self.inner.clock.now();
        let map = self.inner.map.pin();
        let stored = match map.compute(key.into(), |current| match current {
            Some((_, live)) if live.live(now) => Operation::Abort(()),
            _ => Operation::Insert(record.clone()),
        }) {
            Compute::Inserted(_, new) => {
                self.added(new);
                true
            }
            Compute::Updated {
                old: (_, old),
                new: (_, new),
            } => {
                self.removed(old);
                self.added(new);
                true
            }
            Compute::Removed(..) | Compute::Aborted(()) => false,
        };
        drop(map);
        if stored {
            self.after_write();
        }
        Box::pin(std::future::ready(Ok(stored)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        if let Some(old) = self.inner.map.pin().remove(key) {
            self.removed(old);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.inner.map.pin().clear();
        self.inner.bytes.store(0, Ordering::Relaxed);
        self.inner.weight.store(0, Ordering::Relaxed);
        Box::pin(std::future::ready(Ok(())))
    }

    #[inline]
    fn get_local(&self, key: &str, visit: &mut dyn FnMut(&Entry)) -> Local {
        self.visit(key, visit)
    }

    fn usage(&self) -> Option<Usage> {
        Some(Usage {
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            entries: self.len() as u64,
        })
    }
}

impl LocalLookup for InMemCache {
    #[inline]
    fn visit_local(&self, key: &str, visit: impl FnMut(&Entry)) -> Local {
        self.visit(key, visit)
    }
}

#[cfg(test)]
mod tests;
