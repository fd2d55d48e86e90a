//! [`InMemCache`]: the in-process [`Store`] of
//! [advanced-caching](https://docs.rs/advanced-caching), on a lock-free
//! [papaya](https://docs.rs/papaya) map.
//!
//! A hit takes no lock, does not allocate and does not serialize: the value
//! is kept as it is and cloned out (wrap big values in an `Arc`). Writes
//! take one mutex for O(1) amortized bookkeeping; hits never wait for it.
//!
//! # Expiry
//! Each entry is kept for the `ttl` it was stored with (the caching policy
//! passes `ttl + stale`, so a stale entry stays an entry until its stale
//! window ends). Expired entries are invisible at once. Their memory is
//! reclaimed through a timer wheel, a few per write, at most about a
//! second after they expire (or by [`InMemCache::sweep`]); no write scans
//! the map.
//!
//! # Bounds and eviction
//! [`InMemCacheBuilder::max_entries`] and/or [`InMemCacheBuilder::max_weight`]
//! (with a [`InMemCacheBuilder::weigher`], default: approximate bytes) bound
//! the cache. A write that takes it over a bound evicts, in O(1) amortized:
//! expired entries first, then by S3-FIFO, which keeps frequently read keys
//! and lets one-off keys (a scan) pass through a small queue without
//! flushing them. A hit records that it happened in a saturating counter in
//! the entry (a relaxed atomic store, skipped once saturated). The bound
//! holds after every write. An entry heavier than `max_weight` is not
//! stored.
//!
//! S3-FIFO was chosen by measurement (BENCH.md, "Hit ratio"): on Zipf
//! 0.8-1.2 and hot-set-plus-scan streams it matched or beat both moka
//! (TinyLFU) and quick_cache, while W-TinyLFU (window + SLRU + a
//! count-min sketch, simulated with and without Caffeine's hill climber)
//! trailed quick_cache by 0.5-1 point at 10 k entries and needs access
//! order or a sketch update on every hit; S3-FIFO needs only the counter.
//!
//! # Memory
//! Besides the map's node (key, entry, deadline, counter), each entry has
//! a 34-byte node in the policy's slab (its key shared by reference count,
//! queue and wheel links, a tag; 4 more bytes of weight when bounded by
//! weight), and the ghost a byte.
//!
//! # Eviction listener
//! [`InMemCacheBuilder::on_evict`] hears of every entry that leaves and why
//! ([`EvictionCause`]), on the writing thread after the write (never on a
//! hit).
#![forbid(unsafe_code)]

mod ghost;
mod policy;
mod slab;
mod wheel;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ac_core::{
    BoxFuture, Clock, ClockReader, CoarseClock, Decoder, Entry, Error, Local, Store, StoreFor,
    Usage, Value,
};

use policy::{Bounds, Events, State};

/// Weighs an entry for [`InMemCacheBuilder::max_weight`].
pub type Weigher = Arc<dyn Fn(&str, &Entry) -> u64 + Send + Sync>;

/// Hears of entries leaving an [`InMemCache`]: see
/// [`InMemCacheBuilder::on_evict`].
pub type EvictionListener = Arc<dyn Fn(&str, EvictionCause) + Send + Sync>;

/// Why an entry left an [`InMemCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Its time to live ended (reclaimed, or deleted or rewritten after it
    /// had expired).
    Expired,
    /// Evicted to keep the cache within its bounds, or refused because it
    /// alone weighs more than `max_weight`.
    Size,
    /// A write replaced it with a new entry under the same key.
    Replaced,
    /// Deleted, or cleared.
    Removed,
}

type Map = papaya::HashMap<Arc<str>, Record, foldhash::fast::RandomState>;
type MapRef<'a> =
    papaya::HashMapRef<'a, Arc<str>, Record, foldhash::fast::RandomState, papaya::LocalGuard<'a>>;

/// An entry as the map holds it.
struct Record {
    entry: Entry,
    /// Unix seconds after which the entry is gone (inclusive bound).
    expires_at: f64,
    /// Its node in the policy's slab.
    slot: u32,
    /// Reads since the policy last looked, saturating at
    /// [`policy::MAX_FREQ`].
    freq: AtomicU8,
}

impl Record {
    fn new(entry: Entry, expires_at: f64, slot: u32, freq: u8) -> Self {
        Self {
            entry,
            expires_at,
            slot,
            freq: AtomicU8::new(freq),
        }
    }

    #[inline]
    fn live(&self, now: f64) -> bool {
        now <= self.expires_at
    }
}

struct Inner {
    map: Map,
    clock: ClockReader,
    state: Mutex<State>,
    bounds: Bounds,
    weigher: Option<Weigher>,
    listener: Option<EvictionListener>,
    /// Copies of the state's totals, for lock-free [`Store::usage`].
    bytes: AtomicU64,
    entries: AtomicUsize,
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
            .field("max_entries", &self.inner.bounds.max_entries)
            .field("max_weight", &self.inner.bounds.max_weight)
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
    listener: Option<EvictionListener>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for InMemCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemCacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_weight", &self.max_weight)
            .field("weigher", &self.weigher.as_ref().map(|_| "Fn"))
            .field("on_evict", &self.listener.as_ref().map(|_| "Fn"))
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
    /// It runs on the writing thread, outside the cache's lock; weights
    /// above `u32::MAX` count as `u32::MAX` towards the bound.
    pub fn weigher(
        mut self,
        weigher: impl Fn(&str, &Entry) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Calls `listener` with the key and the [`EvictionCause`] of every
    /// entry that leaves the cache: expired and reclaimed, evicted for
    /// size, replaced by a write, deleted or cleared.
    ///
    /// It runs on the thread whose write (or delete, clear, sweep) made the
    /// entry leave, after the cache's lock is released, so it may use the
    /// cache; never on a hit. A panic in it is caught and logged with
    /// `tracing` (target `advanced_caching::inmem`, the key at debug level
    /// only); the write it followed has already succeeded.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use ac_core::{Entry, Store, Value, block_on};
    /// use ac_store_mem::{EvictionCause, InMemCache};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let cache = InMemCache::builder()
    ///     .on_evict(move |key, cause| log.lock().unwrap().push((key.to_owned(), cause)))
    ///     .build()
    ///     .unwrap();
    /// let entry = || Entry::new(Value::new(1u32), f64::INFINITY, 0.0);
    /// block_on(cache.set("a", entry(), None)).unwrap();
    /// block_on(cache.set("a", entry(), None)).unwrap();
    /// block_on(cache.delete("a")).unwrap();
    /// assert_eq!(
    ///     *seen.lock().unwrap(),
    ///     [("a".into(), EvictionCause::Replaced), ("a".into(), EvictionCause::Removed)]
    /// );
    /// ```
    pub fn on_evict(
        mut self,
        listener: impl Fn(&str, EvictionCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
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
    /// A zero bound, a `max_entries` of 2^32 or more (the most entries a
    /// cache holds is 2^32 - 1), or a weigher without `max_weight`.
    pub fn build(self) -> Result<InMemCache, Error> {
        if self.max_entries == Some(0) {
            return Err(Error::invalid_config(
                "InMemCache max_entries must be at least 1",
            ));
        }
        if self
            .max_entries
            .is_some_and(|max| max as u64 >= u64::from(u32::MAX))
        {
            return Err(Error::invalid_config(format!(
                "InMemCache max_entries must be below 2^32 - 1 (got {})",
                self.max_entries.unwrap_or_default()
            )));
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
        let bounds = Bounds {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
        };
        Ok(InMemCache {
            inner: Arc::new(Inner {
                map: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
                clock: ClockReader::new(self.clock.unwrap_or_else(|| Arc::new(CoarseClock::new()))),
                state: Mutex::new(State::new(bounds)),
                bounds,
                weigher: self.weigher,
                listener: self.listener,
                bytes: AtomicU64::new(0),
                entries: AtomicUsize::new(0),
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

    /// Entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.inner.entries.load(Ordering::Relaxed)
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reclaims the expired entries now (those that expired before the
    /// current whole second: reclamation runs a second late at most);
    /// returns how many. Writes do this a few entries at a time anyway;
    /// this call does it all at once, holding the write lock meanwhile.
    pub fn sweep(&self) -> usize {
        self.locked(|state, map, now, events| state.sweep(map, now, events))
    }

    /// If `key` holds a live entry, calls `visit` with it while it is
    /// borrowed and returns [`Local::Found`]; the typed, inlinable form of
    /// [`Store::get_local`]. Lock-free; no allocation.
    #[inline(always)]
    pub fn visit(&self, key: &str, mut visit: impl FnMut(&Entry)) -> Local {
        let map = self.inner.map.pin();
        match map.get(key) {
            Some(record) if record.live(self.inner.clock.now()) => {
                // Record the use for eviction; once saturated, only a load.
                let freq = record.freq.load(Ordering::Relaxed);
                if freq < policy::MAX_FREQ {
                    record.freq.store(freq + 1, Ordering::Relaxed);
                }
                visit(&record.entry);
                Local::Found
            }
            _ => Local::Missing,
        }
    }

    /// When an entry stored now for `ttl` expires (`None`: never).
    fn expires_at(now: f64, ttl: Option<Duration>) -> f64 {
        ttl.map_or(f64::INFINITY, |ttl| now + ttl.as_secs_f64())
    }

    fn weigh(&self, key: &str, entry: &Entry) -> u64 {
        match (&self.inner.weigher, self.inner.bounds.max_weight) {
            (Some(weigher), _) => weigher(key, entry),
            (None, Some(_)) => policy::bytes_of(key, entry),
            (None, None) => 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock (a broken invariant) leaves no half-done
        // user-visible change worth refusing every later write for.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` under the write lock, publishes the totals, then reports
    /// what left the cache to the listener.
    fn locked<R>(&self, f: impl FnOnce(&mut State, &MapRef<'_>, f64, &mut Events) -> R) -> R {
        let mut events = Events::new(self.inner.listener.is_some());
        let out = {
            let mut state = self.lock();
            let map = self.inner.map.pin();
            let out = f(&mut state, &map, self.inner.clock.now(), &mut events);
            self.inner.bytes.store(state.bytes, Ordering::Relaxed);
            self.inner.entries.store(state.count, Ordering::Relaxed);
            out
        };
        if let Some(listener) = &self.inner.listener {
            for (key, cause) in events.list {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| listener(&key, cause))) {
                    let message = panic
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("(no message)");
                    // Keys carry user data: only at debug level.
                    tracing::error!(
                        target: "advanced_caching::inmem",
                        ?cause,
                        panic = message,
                        "InMemCache on_evict listener panicked; ignored"
                    );
                    tracing::debug!(
                        target: "advanced_caching::inmem",
                        key = &*key,
                        ?cause,
                        "the on_evict listener panicked on this key"
                    );
                }
            }
        }
        out
    }

    fn write(&self, key: &str, entry: Entry, ttl: Option<Duration>, if_absent: bool) -> bool {
        let weight = self.weigh(key, &entry);
        self.locked(|state, map, now, events| {
            let expires_at = Self::expires_at(now, ttl);
            state.write(map, key, entry, expires_at, weight, now, if_absent, events)
        })
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
        self.write(key, entry, ttl, false);
        Box::pin(std::future::ready(Ok(())))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let stored = self.write(key, entry, ttl, true);
        Box::pin(std::future::ready(Ok(stored)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.locked(|state, map, now, events| state.delete(map, key, now, events));
        Box::pin(std::future::ready(Ok(())))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.locked(|state, map, now, events| state.clear(map, now, events));
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

/// Values stay as they are in this process: any `Clone + Send + Sync`
/// type, no serde needed, and a hit is one inlined lookup.
impl<T: Clone + Send + Sync + 'static> StoreFor<T> for InMemCache {
    const IN_PROCESS: bool = true;

    /// An `InMemCache` cannot fail or lose a value: a `bg` loader uses it
    /// as it is.
    type Mirror = Self;

    #[inline]
    fn wrap(value: T) -> Value {
        Value::in_process(value)
    }

    fn decoder() -> &'static dyn Decoder {
        &NoDecoder
    }

    #[inline]
    fn lookup(&self, key: &str, visit: impl FnMut(&Entry)) -> Local {
        self.visit(key, visit)
    }

    fn mirror(
        store: Arc<Self>,
        _make_copy: impl FnOnce() -> Result<Arc<dyn Store>, Error>,
        _clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, Error> {
        Ok(store)
    }
}

/// The decoder an `InMemCache` hands out: never asked, as this store keeps
/// values, not bytes.
struct NoDecoder;

impl Decoder for NoDecoder {
    fn decode(&self, _: &[u8], serializer: &dyn ac_core::Serializer) -> Result<Value, Error> {
        Err(Error::Unsupported(format!(
            "decoding {} bytes for an in-memory store",
            serializer.name()
        )))
    }

    fn type_name(&self) -> &'static str {
        "(in-process value)"
    }
}

#[cfg(test)]
mod tests;
