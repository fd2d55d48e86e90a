//! Stale-while-revalidate, on a manual clock. Background refreshes run on a
//! test-owned `ThreadScheduler`; `shutdown()` joins them, so the tests wait
//! for exactly the work they started instead of sleeping.

mod support;

use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use advanced_caching::{Cached, KeyArgs, ManualClock, Store, ThreadScheduler, cache};
use support::{Calls, CountingMetrics, MapStore, T0};

fn pool() -> ThreadScheduler {
    ThreadScheduler::new("swr-test", 2).unwrap()
}

/// A manual clock, a pool to join refreshes on, and a call counter.
struct Fixture {
    clock: ManualClock,
    scheduler: ThreadScheduler,
    calls: Calls,
}

impl Fixture {
    fn new() -> Self {
        Self {
            clock: ManualClock::new(T0),
            scheduler: pool(),
            calls: Calls::default(),
        }
    }

    /// `cache(60).stale(30)` over a function returning its call number.
    fn counter<A: KeyArgs + Send + 'static>(&self, key: &str) -> Cached<A, usize> {
        let calls = self.calls.clone();
        cache(60)
            .stale(30)
            .key(key)
            .clock(self.clock.clone())
            .scheduler(self.scheduler.clone())
            .wrap(move |_: A| calls.bump())
            .unwrap()
    }
}

#[test]
fn swr_serves_stale_at_ttl_and_refreshes_once_off_the_callers_thread() {
    let clock = ManualClock::new(T0);
    let scheduler = pool();
    let calls = Calls::default();
    let threads: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
    let (c, t) = (calls.clone(), threads.clone());
    let price = cache(60)
        .stale(30)
        .key("price:{}")
        .clock(clock.clone())
        .scheduler(scheduler.clone())
        .wrap(move |_: &'static str| {
            t.lock().unwrap().push(thread::current().id());
            c.bump()
        })
        .unwrap();

    assert_eq!(price.call("BTC"), 1);
    clock.advance(60.0); // exactly ttl: stale
    assert_eq!(price.call("BTC"), 1, "stale value served at once");
    for _ in 0..50 {
        // The refresh runs on the pool meanwhile and may already have
        // landed; no call waits for it or starts another.
        let served = price.call("BTC");
        assert!(served == 1 || served == 2, "{served}");
    }
    scheduler.shutdown();
    assert_eq!(calls.get(), 2, "exactly one background refresh");
    assert_eq!(price.call("BTC"), 2, "refreshed value is fresh");
    let threads = threads.lock().unwrap();
    assert_eq!(
        threads[0],
        thread::current().id(),
        "the miss ran on the caller"
    );
    assert_ne!(threads[1], thread::current().id(), "the refresh did not");
}

#[test]
fn exactly_at_ttl_plus_stale_is_still_stale_and_after_it_the_caller_waits() {
    let fx = Fixture::new();
    let (clock, scheduler, calls) = (&fx.clock, &fx.scheduler, &fx.calls);
    let f = fx.counter::<u8>("k:{}");

    assert_eq!(f.call(1), 1);
    assert_eq!(f.call(2), 2);
    clock.set(T0 + 90.0);
    assert_eq!(f.call(1), 1, "end of the stale window is inclusive");
    scheduler.shutdown();
    assert_eq!(calls.get(), 3, "and it triggered a refresh");
    clock.set(T0 + 90.000_1);
    assert_eq!(f.call(2), 4, "dead: the caller ran the function");
    scheduler.shutdown();
    assert_eq!(calls.get(), 4, "no background work for a dead entry");
}

#[test]
fn just_before_ttl_is_fresh_and_starts_no_refresh() {
    let fx = Fixture::new();
    let (clock, scheduler, calls) = (&fx.clock, &fx.scheduler, &fx.calls);
    let f = fx.counter::<()>("k");
    f.call(());
    clock.advance(59.999);
    assert_eq!(f.call(()), 1);
    scheduler.shutdown();
    assert_eq!(calls.get(), 1);
}

#[test]
fn a_failed_refresh_keeps_serving_stale_until_the_window_ends_and_is_counted() {
    let clock = ManualClock::new(T0);
    let scheduler = pool();
    let metrics = CountingMetrics::default();
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .stale(30)
        .key("rate")
        .clock(clock.clone())
        .scheduler(scheduler.clone())
        .metrics(metrics.clone())
        .try_wrap(move |()| match c.bump() {
            1 => Ok(1.5f64),
            n => Err(format!("upstream down ({n})")),
        })
        .unwrap();

    assert_eq!(f.call(()), Ok(1.5));
    clock.advance(61.0);
    assert_eq!(f.call(()), Ok(1.5), "stale");
    scheduler.shutdown();
    assert_eq!(calls.get(), 2, "refresh attempted");
    assert_eq!(metrics.count("error/refresh/loader"), 1);
    assert_eq!(metrics.count("refresh/false"), 1);

    clock.advance(20.0);
    assert_eq!(f.call(()), Ok(1.5), "still stale, still served");
    scheduler.shutdown();
    assert_eq!(calls.get(), 2, "no refresh storm after a failure");

    clock.set(T0 + 90.5);
    assert_eq!(
        f.call(()),
        Err("upstream down (3)".into()),
        "dead: the caller sees the error"
    );
}

#[test]
fn two_caches_sharing_a_remote_store_refresh_once_between_them() {
    // MapStore has no in-process fast path: each reader gets its own copy of
    // the entry, as two processes reading Redis would. Only the store's
    // set_if_absent lock can keep them to one refresh.
    let store: Arc<dyn Store> = Arc::new(MapStore::default());
    let clock = ManualClock::new(T0);
    let scheduler = pool();
    let calls = Calls::default();
    let make = |calls: Calls| {
        cache(60)
            .stale(30)
            .key("shared:{}")
            .store(store.clone())
            .clock(clock.clone())
            .scheduler(scheduler.clone())
            .wrap(move |_: u8| calls.bump())
            .unwrap()
    };
    let (a, b) = (make(calls.clone()), make(calls.clone()));
    assert_eq!(a.call(1), 1);
    assert_eq!(b.call(1), 1, "b hits a's entry");
    clock.advance(70.0);
    assert_eq!(a.call(1), 1);
    // a's refresh runs on the pool meanwhile: b sees the stale value, or
    // the refreshed one if it already landed.
    let seen_by_b = b.call(1);
    assert!(seen_by_b == 1 || seen_by_b == 2, "{seen_by_b}");
    scheduler.shutdown();
    assert_eq!(calls.get(), 2, "one refresh for both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_swr_refreshes_on_the_runtime() {
    let clock = ManualClock::new(T0);
    let calls = Calls::default();
    let refreshed = Arc::new(tokio::sync::Notify::new());
    let (c, r) = (calls.clone(), refreshed.clone());
    let f = cache(60)
        .stale(30)
        .key("a")
        .clock(clock.clone())
        .wrap_async(move |()| {
            let (c, r) = (c.clone(), r.clone());
            async move {
                let n = c.bump();
                r.notify_one();
                n
            }
        })
        .unwrap();
    assert_eq!(f.call(()).await, 1);
    refreshed.notified().await; // consume the miss's notification
    clock.advance(75.0);
    assert_eq!(f.call(()).await, 1, "stale served at once");
    tokio::time::timeout(Duration::from_secs(10), refreshed.notified())
        .await
        .expect("refresh ran");
    // The refresh writes right after the function returns.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while f.call(()).await != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refreshed value never stored"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.get(), 2);
}

#[test]
fn a_refresh_lock_is_never_served_as_a_value() {
    // The lock of key "42" lives under "42:r", a key callers can also ask
    // for: they must get their function's value, not the lock.
    let fx = Fixture::new();
    let f = cache(60)
        .stale(30)
        .key("{}")
        .clock(fx.clock.clone())
        .scheduler(fx.scheduler.clone())
        .wrap(|id: String| format!("value of {id}"))
        .unwrap();
    f.call("42".into());
    fx.clock.advance(70.0);
    f.call("42".into()); // stale: takes the lock "42:r"
    fx.scheduler.shutdown();
    assert_eq!(f.call("42:r".into()), "value of 42:r");
}

#[test]
fn a_successful_refresh_releases_the_lock_for_the_next_window() {
    let store: Arc<dyn Store> = Arc::new(MapStore::default());
    let fx = Fixture::new();
    let calls = fx.calls.clone();
    let f = cache(60)
        .stale(30)
        .key("k")
        .store(store.clone())
        .clock(fx.clock.clone())
        .scheduler(fx.scheduler.clone())
        .wrap(move |()| calls.bump())
        .unwrap();
    assert_eq!(f.call(()), 1);
    fx.clock.advance(70.0);
    assert_eq!(f.call(()), 1);
    fx.scheduler.shutdown();
    fx.clock.advance(70.0); // the refreshed entry is stale in turn
    assert_eq!(f.call(()), 2);
    fx.scheduler.shutdown();
    assert_eq!(fx.calls.get(), 3, "second window refreshed too");
}

/// A real [`LocalFileCache`] whose next `get` can be held after it has
/// read the entry: a caller that read the old entry then loses the race to
/// another caller's refresh, deterministically.
#[cfg(feature = "file")]
#[derive(Debug)]
struct HeldReads {
    inner: advanced_caching::LocalFileCache,
    /// For the next `get`: say it has read, then wait to be let go.
    hold_next: Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
}

#[cfg(feature = "file")]
impl advanced_caching::ByteStore for HeldReads {}

impl Store for HeldReads {
    fn name(&self) -> &'static str {
        "held-reads"
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn advanced_caching::Decoder,
    ) -> advanced_caching::BoxFuture<'a, advanced_caching::Result<Option<advanced_caching::Entry>>>
    {
        Box::pin(async move {
            let entry = self.inner.get(key, decoder).await;
            let hold = self.hold_next.lock().unwrap().take();
            if let Some((read, go)) = hold {
                read.send(()).unwrap();
                go.recv().unwrap();
            }
            entry
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: advanced_caching::Entry,
        ttl: Option<Duration>,
    ) -> advanced_caching::BoxFuture<'a, advanced_caching::Result<()>> {
        self.inner.set(key, entry, ttl)
    }
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: advanced_caching::Entry,
        ttl: Option<Duration>,
    ) -> advanced_caching::BoxFuture<'a, advanced_caching::Result<bool>> {
        self.inner.set_if_absent(key, entry, ttl)
    }
    fn delete<'a>(
        &'a self,
        key: &'a str,
    ) -> advanced_caching::BoxFuture<'a, advanced_caching::Result<()>> {
        self.inner.delete(key)
    }
    fn clear(&self) -> advanced_caching::BoxFuture<'_, advanced_caching::Result<()>> {
        self.inner.clear()
    }
}

/// The cause of stale windows going without a refresh (the old code): a
/// caller read the stale entry, another caller's refresh replaced it, and
/// the first then claimed a refresh, found it done, and kept its claim for
/// the whole stale window, so the next windows of that key (ttl shorter
/// than the stale window) were never refreshed. Refreshes run on a
/// one-thread pool, joined by `shutdown`.
#[cfg(feature = "file")]
#[test]
fn a_refresh_that_finds_the_work_done_hands_its_claim_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let scheduler = ThreadScheduler::new("swr-in-order", 1).unwrap();
    let calls = Calls::default();
    let store = Arc::new(HeldReads {
        inner: advanced_caching::LocalFileCache::builder(dir.path())
            .clock(clock.clone())
            .build()
            .unwrap(),
        hold_next: Mutex::new(None),
    });
    let counted = calls.clone();
    let f = cache(1)
        .stale(30)
        .key("rates")
        .store(store.clone())
        .clock(clock.clone())
        .scheduler(scheduler.clone())
        .wrap(move |()| counted.bump())
        .unwrap();
    assert_eq!(f.call(()), 1);
    clock.advance(1.5); // stale

    // A late reader reads entry 1 and is held before it claims.
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    *store.hold_next.lock().unwrap() = Some((read_tx, go_rx));
    let late = thread::scope(|s| {
        let late = s.spawn(|| f.call(()));
        read_rx.recv().unwrap();
        // Meanwhile another caller claims and refreshes: entry 2.
        assert_eq!(f.call(()), 1);
        scheduler.shutdown();
        assert_eq!(calls.get(), 2);
        go_tx.send(()).unwrap();
        late.join().unwrap()
    });
    assert_eq!(late, 1, "the late reader serves what it read");
    scheduler.shutdown(); // its refresh finds entry 1 replaced

    for window in 3..=12 {
        clock.advance(1.5); // the newest entry is stale
        assert_eq!(f.call(()), window - 1, "stale value served");
        scheduler.shutdown();
        assert_eq!(calls.get(), window, "this stale window was refreshed");
    }
}
