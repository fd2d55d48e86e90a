//! Test fixtures shared by the facade's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use advanced_caching::crates::core::block_on;
use advanced_caching::{
    BoxFuture, Decoder, Entry, Error, InMemCache, ManualClock, MetricsCollector, Store,
    TypedDecoder, Value,
};

pub const T0: f64 = 1_700_000_000.0;

/// Counts every metrics call by `operation/label`.
#[derive(Debug, Default, Clone)]
pub struct CountingMetrics(Arc<Mutex<HashMap<String, usize>>>);

impl CountingMetrics {
    pub fn count(&self, what: &str) -> usize {
        self.0.lock().unwrap().get(what).copied().unwrap_or(0)
    }
    fn bump(&self, what: String) {
        *self.0.lock().unwrap().entry(what).or_default() += 1;
    }
}

impl MetricsCollector for CountingMetrics {
    fn record_hit(&self, _: &str, _: &str) {
        self.bump("hit".into());
    }
    fn record_miss(&self, _: &str, _: &str) {
        self.bump("miss".into());
    }
    fn record_set(&self, _: &str, _: &str, _: Option<usize>) {
        self.bump("set".into());
    }
    fn record_delete(&self, _: &str, _: &str) {
        self.bump("delete".into());
    }
    fn record_error(&self, _: &str, operation: &str, error_type: &str) {
        self.bump(format!("error/{operation}/{error_type}"));
        self.bump("error".into());
    }
    fn record_background_refresh(&self, _: &str, success: bool, _: Duration) {
        self.bump(format!("refresh/{success}"));
    }
}

/// A user-written backend with no in-process fast path: a mutex-guarded map
/// reached only through the async methods, as a remote store would be.
#[derive(Debug, Default)]
pub struct MapStore {
    entries: Mutex<HashMap<String, Entry>>,
    pub gets: AtomicUsize,
}

impl advanced_caching::ByteStore for MapStore {}

impl Store for MapStore {
    fn name(&self) -> &'static str {
        "map"
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
        _: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let found = self.entries.lock().unwrap().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.entries.lock().unwrap().insert(key.to_owned(), entry);
        Box::pin(async { Ok(()) })
    }
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let mut entries = self.entries.lock().unwrap();
        let absent = !entries.contains_key(key);
        if absent {
            entries.insert(key.to_owned(), entry);
        }
        Box::pin(async move { Ok(absent) })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.entries.lock().unwrap().remove(key);
        Box::pin(async { Ok(()) })
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.entries.lock().unwrap().clear();
        Box::pin(async { Ok(()) })
    }
}

/// A store whose connection can be cut, as a remote store's can: an
/// `InMemCache` on the test's clock behind a switch. While it is down every
/// operation fails as an unreachable server does. Like a remote store it
/// has no in-process fast path, so every read goes through `get`.
#[derive(Debug, Clone)]
pub struct Switch {
    inner: InMemCache,
    down: Arc<AtomicBool>,
}

impl Switch {
    /// Up, over an `InMemCache` on `clock`.
    pub fn on(clock: &ManualClock) -> Self {
        Self {
            inner: InMemCache::builder().clock(clock.clone()).build().unwrap(),
            down: Arc::default(),
        }
    }

    /// Down from the start, as a server that never answers.
    pub fn down() -> Self {
        let store = Self {
            inner: InMemCache::new(),
            down: Arc::default(),
        };
        store.set_down(true);
        store
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// What the store holds under `key`, bypassing the switch.
    pub fn held<T: advanced_caching::SerdeValue>(&self, key: &str) -> Option<T> {
        let entry = block_on(self.inner.get(key, &TypedDecoder::<T>::new())).unwrap()?;
        entry.value.downcast_ref::<T>().cloned()
    }

    /// Deletes `key` (as another process would), bypassing the switch.
    pub fn remove(&self, key: &str) {
        block_on(self.inner.delete(key)).unwrap();
    }

    /// Writes `value` under `key` (as a writer in another process would),
    /// bypassing the switch.
    pub fn put<T: advanced_caching::SerdeValue>(&self, key: &str, value: T, now: f64) {
        let entry = Entry::new(Value::new(value), f64::INFINITY, now);
        block_on(self.inner.set(key, entry, None)).unwrap();
    }

    fn refused<T: Send + 'static>() -> BoxFuture<'static, Result<T, Error>> {
        Box::pin(async { Err(Error::store("switch", "connection refused")) })
    }
}

impl advanced_caching::ByteStore for Switch {}

impl Store for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        if self.is_down() {
            return Self::refused();
        }
        self.inner.get(key, decoder)
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.is_down() {
            return Self::refused();
        }
        self.inner.set(key, entry, ttl)
    }
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        if self.is_down() {
            return Self::refused();
        }
        self.inner.set_if_absent(key, entry, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        if self.is_down() {
            return Self::refused();
        }
        self.inner.delete(key)
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        if self.is_down() {
            return Self::refused();
        }
        self.inner.clear()
    }
}

/// A call counter for cached functions.
#[derive(Debug, Default, Clone)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts background refreshes and lets tests wait for the n-th one.
#[derive(Debug, Default, Clone)]
pub struct RefreshWatch(Arc<Watch>);

#[derive(Debug, Default)]
pub struct Watch {
    ok: AtomicUsize,
    failed: AtomicUsize,
    event: event_listener::Event,
}

impl RefreshWatch {
    pub fn ok(&self) -> usize {
        self.0.ok.load(Ordering::SeqCst)
    }
    pub fn failed(&self) -> usize {
        self.0.failed.load(Ordering::SeqCst)
    }
    fn total(&self) -> usize {
        self.ok() + self.failed()
    }
    /// Waits until `n` refreshes (either outcome) have been recorded.
    pub async fn until(&self, n: usize) {
        let wait = async {
            loop {
                let listener = self.0.event.listen();
                if self.total() >= n {
                    return;
                }
                listener.await;
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut wait = std::pin::pin!(wait);
        std::future::poll_fn(|cx| {
            assert!(
                std::time::Instant::now() < deadline,
                "waited 20 s for refresh #{n}, saw {}",
                self.total()
            );
            let poll = wait.as_mut().poll(cx);
            if poll.is_pending() {
                // Re-check the deadline even if no event comes.
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(500));
                    waker.wake();
                });
            }
            poll
        })
        .await;
    }
    pub fn until_blocking(&self, n: usize) {
        advanced_caching::crates::core::block_on(self.until(n));
    }
}

impl MetricsCollector for RefreshWatch {
    fn record_background_refresh(&self, _: &str, success: bool, _: Duration) {
        if success {
            self.0.ok.fetch_add(1, Ordering::SeqCst);
        } else {
            self.0.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.0.event.notify(usize::MAX);
    }
}

/// Records into an `InMemoryMetrics` and a `RefreshWatch` at once, so tests
/// can wait for refreshes and then read exact stats.
#[derive(Debug, Clone, Default)]
pub struct Tee(pub advanced_caching::InMemoryMetrics, pub RefreshWatch);

impl MetricsCollector for Tee {
    fn record_hit(&self, c: &str, k: &str) {
        self.0.record_hit(c, k);
    }
    fn record_miss(&self, c: &str, k: &str) {
        self.0.record_miss(c, k);
    }
    fn record_set(&self, c: &str, k: &str, size: Option<usize>) {
        self.0.record_set(c, k, size);
    }
    fn record_delete(&self, c: &str, k: &str) {
        self.0.record_delete(c, k);
    }
    fn record_latency(&self, c: &str, op: &str, d: Duration) {
        self.0.record_latency(c, op, d);
    }
    fn record_error(&self, c: &str, op: &str, kind: &str) {
        self.0.record_error(c, op, kind);
    }
    fn record_memory_usage(&self, c: &str, bytes: u64, entries: u64) {
        self.0.record_memory_usage(c, bytes, entries);
    }
    fn record_background_refresh(&self, c: &str, ok: bool, d: Duration) {
        self.0.record_background_refresh(c, ok, d);
        self.1.record_background_refresh(c, ok, d);
    }
}

/// Collects what `on_error` was given.
#[derive(Debug, Clone, Default)]
pub struct Reports(Arc<Mutex<Vec<String>>>);

impl Reports {
    pub fn handler(&self) -> impl Fn(&advanced_caching::BgError) + Send + Sync + 'static {
        let reports = self.clone();
        move |error| reports.0.lock().unwrap().push(error.to_string())
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    /// Waits for the `n`-th report: a loader reports after its refresh
    /// is recorded in metrics, which is what the tests wait for first.
    pub fn until(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 20 s for report #{n}: {all:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn any(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|r| r.contains(needle))
    }
}
