//! `bg` with sync functions, `bg::write` and `bg::read`. This binary never
//! starts an async runtime: sync loaders must work without one.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use advanced_caching::{InMemCache, ManualClock, Store, ThreadScheduler, bg};
use support::{Calls, MapStore, RefreshWatch, T0};

#[test]
fn a_sync_loader_refreshes_on_a_thread_without_any_runtime() {
    let (calls, watch) = (Calls::default(), RefreshWatch::default());
    let clock = ManualClock::new(T0);
    let c = calls.clone();
    let stats = bg(60)
        .key("sync:db_stats")
        .clock(clock.clone())
        .metrics(watch.clone())
        .wrap(move || {
            assert!(
                std::thread::current()
                    .name()
                    .is_some_and(|n| n.ends_with("-every")),
                "runs on the loader's own thread"
            );
            c.bump()
        })
        .unwrap();
    assert_eq!(stats.get(), 1);
    clock.advance(60.0);
    watch.until_blocking(2);
    assert_eq!(stats.get(), 2);
    stats.stop_and_wait();
    clock.advance(600.0);
    assert_eq!(calls.get(), 2, "stopped: no more ticks");
}

#[test]
fn zero_interval_or_ttl_is_call_through() {
    let calls = Calls::default();
    let c = calls.clone();
    let direct = bg(0).key("sync:direct").wrap(move || c.bump()).unwrap();
    assert_eq!(direct.get(), 1);
    assert_eq!(direct.get(), 2);
    let c = calls.clone();
    let no_ttl = bg(10)
        .ttl(0)
        .key("sync:no_ttl")
        .wrap(move || c.bump())
        .unwrap();
    assert_eq!(no_ttl.get(), 3);
    assert_eq!(no_ttl.get(), 4);
}

#[test]
fn misconfiguration_is_refused_naming_the_key() {
    let msg = bg(60).key("user:{}").wrap(|| 1).unwrap_err().to_string();
    assert!(
        msg.contains("\"user:{}\"") && msg.contains("no arguments"),
        "{msg}"
    );
    let msg = bg(60).wrap(|| 1).unwrap_err().to_string();
    assert!(msg.contains("needs a key"), "{msg}");
    let msg = bg(-5).key("sync:neg").wrap(|| 1).unwrap_err().to_string();
    assert!(msg.contains("interval of bg \"sync:neg\""), "{msg}");
    let msg = bg(5)
        .ttl(f64::NAN)
        .key("sync:nan")
        .wrap(|| 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ttl of bg \"sync:nan\""), "{msg}");
}

#[test]
fn a_second_writer_for_a_key_is_refused_and_dropping_the_first_frees_it() {
    let first = bg::write(60).key("sync:rates").wrap(|| 1.0f64).unwrap();
    let msg = bg::write(30)
        .key("sync:rates")
        .wrap(|| 2.0f64)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"sync:rates\"") && msg.contains("already registered"),
        "{msg}"
    );
    drop(first);
    let second = bg::write(30).key("sync:rates").wrap(|| 2.0f64).unwrap();
    assert_eq!(second.get(), 2.0);
}

#[test]
fn a_reader_finds_the_writers_store_in_this_process() {
    let clock = ManualClock::new(T0);
    let watch = RefreshWatch::default();
    let calls = Calls::default();
    let c = calls.clone();
    let writer = bg::write(60)
        .key("sync:flags")
        .clock(clock.clone())
        .metrics(watch.clone())
        .wrap(move || format!("v{}", c.bump()))
        .unwrap();
    assert_eq!(writer.get(), "v1");
    let reader = bg::read::<String>("sync:flags")
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(reader.get().as_deref(), Some("v1"));
    assert!(Arc::ptr_eq(writer.store(), writer.store()));
}

#[test]
fn a_reader_without_store_or_writer_is_an_error_not_a_silent_none() {
    let msg = bg::read::<String>("sync:nobody")
        .interval(5)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"sync:nobody\"") && msg.contains("no store"),
        "{msg}"
    );
    let msg = bg::read::<String>("sync:no_interval")
        .store(InMemCache::new())
        .build()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("needs an interval"), "{msg}");
}

#[test]
fn readers_with_different_intervals_sync_independently() {
    let clock = ManualClock::new(T0);
    let shared: Arc<dyn Store> =
        Arc::new(InMemCache::builder().clock(clock.clone()).build().unwrap());
    let writes = RefreshWatch::default();
    let calls = Calls::default();
    let c = calls.clone();
    let _writer = bg::write(10)
        .key("sync:prices")
        .ttl(3600)
        .store(shared.clone())
        .clock(clock.clone())
        .metrics(writes.clone())
        .wrap(move || c.bump())
        .unwrap();
    writes.until_blocking(1);
    let (fast_syncs, slow_syncs) = (RefreshWatch::default(), RefreshWatch::default());
    let pool = ThreadScheduler::new("reader-test", 2).unwrap();
    let fast = bg::read::<usize>("sync:prices")
        .interval(10)
        .store(shared.clone())
        .clock(clock.clone())
        .scheduler(pool.clone())
        .metrics(fast_syncs.clone())
        .build()
        .unwrap();
    let slow = bg::read::<usize>("sync:prices")
        .interval(30)
        .store(shared.clone())
        .clock(clock.clone())
        .scheduler(pool.clone())
        .metrics(slow_syncs.clone())
        .build()
        .unwrap();
    assert_eq!((fast.get(), slow.get()), (Some(1), Some(1)));

    clock.advance(10.0);
    writes.until_blocking(2);
    // The writer ticks first only if scheduled first; wait for each reader's
    // own tick, then check what it saw.
    fast_syncs.until_blocking(2);
    let fast_seen = fast.get();
    assert!(fast_seen >= Some(1));
    assert_eq!(slow_syncs.ok(), 1, "slow reader has not ticked");
    assert_eq!(slow.get(), Some(1));

    clock.advance(10.0);
    writes.until_blocking(3);
    fast_syncs.until_blocking(3);
    clock.advance(10.0);
    writes.until_blocking(4);
    fast_syncs.until_blocking(4);
    slow_syncs.until_blocking(2);
    assert!(
        slow.get() >= Some(3),
        "slow reader synced at t=30: {:?}",
        slow.get()
    );
    assert!(fast.get() >= Some(3));
}

#[test]
fn reader_gets_never_touch_the_store() {
    let store = Arc::new(MapStore::default());
    let writer = bg::write(60)
        .key("sync:remote")
        .store(store.clone())
        .wrap(|| 7u32)
        .unwrap();
    assert_eq!(writer.get(), 7);
    let reader = bg::read::<u32>("sync:remote")
        .interval(60)
        .store(store.clone())
        .build()
        .unwrap();
    let before = store.gets.load(Ordering::SeqCst);
    for _ in 0..1000 {
        assert_eq!(reader.get(), Some(7));
    }
    assert_eq!(store.gets.load(Ordering::SeqCst), before);
}

#[test]
fn a_loader_stopped_before_its_first_load_still_answers() {
    // The clock never reaches the first tick, so the job never runs.
    let clock = ManualClock::new(T0);
    let calls = Calls::default();
    let c = calls.clone();
    let flags = bg(60)
        .key("sync:stopped_early")
        .run_immediately(false)
        .clock(clock.clone())
        .wrap(move || c.bump())
        .unwrap();
    flags.stop_and_wait();
    assert_eq!(flags.get(), 1, "loads inline");

    let immediate = bg(60)
        .key("sync:stopped_before_start")
        .clock(clock)
        .scheduler(StoppedScheduler)
        .wrap(|| 7u8)
        .unwrap();
    assert_eq!(
        immediate.get(),
        7,
        "a job dropped before it ran does not wedge get()"
    );
}

/// A scheduler whose periodic jobs are dropped before they ever run, as a
/// runtime that is shutting down does.
#[derive(Debug)]
struct StoppedScheduler;

impl advanced_caching::Scheduler for StoppedScheduler {
    fn spawn(
        &self,
        _: advanced_caching::BoxFuture<'static, ()>,
    ) -> Result<(), advanced_caching::Error> {
        Ok(())
    }
    fn spawn_blocking(
        &self,
        _: advanced_caching::crates::core::BlockingJob,
    ) -> Result<(), advanced_caching::Error> {
        Ok(())
    }
    fn every(
        &self,
        every: advanced_caching::crates::core::Every,
    ) -> Result<advanced_caching::crates::core::JobHandle, advanced_caching::Error> {
        let (handle, control) = advanced_caching::crates::core::JobHandle::new();
        drop((every, control));
        Ok(handle)
    }
}
