//! `bg` when its store fails, on a manual clock: a writer whose writes are
//! refused reports them and keeps serving its own last value; a reader
//! whose syncs fail keeps its last good value past its ttl, up to
//! `max_stale`; a sync that finds the key gone applies the ttl. The same
//! over a real Redis outage is in `bg_redis_outage.rs`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use advanced_caching::{Clock, ManualClock, ThreadScheduler, bg};
use support::{Calls, Reports, Switch, T0, Tee};

/// The function runs on schedule, the store refuses the write: `on_error`
/// hears of it, metrics count it, and `get()` serves the value the
/// function produced from the writer's own copy, without running it again.
#[test]
fn a_writer_whose_store_refuses_the_write_reports_it_and_serves_its_own_copy() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    let (tee, reports, calls) = (Tee::default(), Reports::default(), Calls::default());
    let c = calls.clone();
    let writer = bg::write(60)
        .key("fail:writer")
        .store(store.clone())
        .clock(clock.clone())
        .metrics(tee.clone())
        .on_error(reports.handler())
        .wrap(move || c.bump())
        .unwrap();
    assert_eq!(writer.get(), 1);
    assert_eq!(store.held::<usize>("fail:writer"), Some(1));

    store.set_down(true);
    clock.advance(60.0);
    tee.1.until_blocking(2);
    assert_eq!(calls.get(), 2, "the scheduled refresh ran the function");
    let reported = reports.until(1);
    assert_eq!(
        reported.len(),
        1,
        "on_error heard of the lost write: {reported:?}"
    );
    assert!(
        reported[0].contains("\"fail:writer\"")
            && reported[0].contains("store did not take the value")
            && reported[0].contains("connection refused"),
        "{}",
        reported[0]
    );
    let stats = tee.0.get_stats();
    let counted = &stats.caches["fail:writer"];
    assert_eq!(counted.errors_by.get("set.store"), Some(&1), "{counted:?}");
    let refreshes = stats.background_refresh["fail:writer"];
    assert_eq!((refreshes.success, refreshes.failure), (1, 1));

    assert_eq!(
        writer.get(),
        2,
        "the writer serves what its function produced"
    );
    assert_eq!(calls.get(), 2, "get() did not run the function inline");

    // Back up: the next refresh lands in the store again.
    store.set_down(false);
    clock.advance(60.0);
    tee.1.until_blocking(3);
    assert_eq!(store.held::<usize>("fail:writer"), Some(3));
    assert_eq!(writer.get(), 3);
    writer.stop_and_wait(); // the refresh has finished, report included
    assert_eq!(reports.all().len(), 1, "no report for a write that landed");
}

/// A plain `bg` loader over a store that is down from the start: its value
/// is served from the loader's own copy for `ttl` after the function last
/// produced it; only when that has passed does a call run the function.
#[test]
fn a_loader_over_a_dead_store_serves_its_last_value_for_its_ttl() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    store.set_down(true);
    let (tee, reports, calls) = (Tee::default(), Reports::default(), Calls::default());
    let failing = Arc::new(AtomicBool::new(false));
    let (c, f) = (calls.clone(), failing.clone());
    let loader = bg(60)
        .key("fail:loader")
        .ttl(100)
        .store(store.clone())
        .clock(clock.clone())
        .metrics(tee.clone())
        .on_error(reports.handler())
        .try_wrap(move || {
            let n = c.bump();
            if f.load(Ordering::SeqCst) {
                Err(format!("source down at call {n}"))
            } else {
                Ok(n)
            }
        })
        .unwrap();
    assert_eq!(loader.get(), Ok(1));
    assert_eq!(loader.get(), Ok(1));
    assert_eq!(calls.get(), 1, "get() did not run the function inline");
    assert_eq!(
        reports.all().len(),
        1,
        "the first write was refused and reported"
    );

    // The source fails too: the last value (loaded at T0) is kept for its
    // ttl, 100 s.
    failing.store(true, Ordering::SeqCst);
    clock.advance(60.0);
    tee.1.until_blocking(2);
    assert_eq!(loader.get(), Ok(1));
    clock.set(T0 + 99.5);
    assert_eq!(loader.get(), Ok(1));
    assert_eq!(calls.get(), 2);
    let stats = tee.0.get_stats();
    assert_eq!(
        stats.caches["fail:loader"].errors_by.get("set.store"),
        Some(&1)
    );
    assert_eq!(
        stats.caches["fail:loader"].errors_by.get("refresh.loader"),
        Some(&1)
    );

    // Past the ttl there is no value anywhere: the call runs the function.
    clock.set(T0 + 100.0);
    assert_eq!(loader.get(), Err("source down at call 3".to_owned()));
    loader.stop_and_wait();
}

/// The async flavour reads the same way: a dead store costs no inline load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_loader_over_a_dead_store_serves_its_own_copy() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    store.set_down(true);
    let (tee, reports, calls) = (Tee::default(), Reports::default(), Calls::default());
    let c = calls.clone();
    let loader = bg(60)
        .key("fail:async")
        .store(store.clone())
        .clock(clock.clone())
        .metrics(tee.clone())
        .on_error(reports.handler())
        .wrap_async(move || std::future::ready(c.bump()))
        .unwrap();
    assert_eq!(loader.get().await, 1);
    clock.advance(60.0);
    tee.1.until(2).await;
    assert_eq!(loader.get().await, 2);
    assert_eq!(loader.get().await, 2);
    assert_eq!(calls.get(), 2, "get() did not run the function inline");
    assert_eq!(
        reports.until(2).len(),
        2,
        "both refused writes were reported"
    );
    loader.stop_and_wait().await;
}

/// A reader over `store` syncing every 10 s (ttl 20 s by default).
fn reader(
    key: &str,
    store: &Switch,
    clock: &ManualClock,
    tee: &Tee,
    reports: &Reports,
) -> advanced_caching::ReadBuilder<u32, Arc<Switch>> {
    bg::read::<u32>(key)
        .interval(10)
        .store(store.clone())
        .clock(clock.clone())
        .scheduler(ThreadScheduler::new("reader-test", 1).unwrap())
        .metrics(tee.clone())
        .on_error(reports.handler())
}

/// Advances the clock by one interval and waits for the reader's sync
/// number `n` (the first is the one `build` runs).
fn tick(clock: &ManualClock, tee: &Tee, n: usize) {
    clock.advance(10.0);
    tee.1.until_blocking(n);
}

/// Sets the clock to the tick at `T0 + at` and waits for sync number `n`.
fn sync_at(clock: &ManualClock, tee: &Tee, at: f64, n: usize) {
    clock.set(T0 + at);
    tee.1.until_blocking(n);
}

#[test]
fn a_reader_whose_syncs_fail_keeps_its_last_value_until_a_sync_succeeds() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    store.put("fail:read", 1u32, T0);
    let (tee, reports) = (Tee::default(), Reports::default());
    let reader = reader("fail:read", &store, &clock, &tee, &reports)
        .build()
        .unwrap();
    assert_eq!(reader.get(), Some(1));

    store.set_down(true);
    // Ten failed syncs: 100 s, five times the ttl.
    for n in 2..=11 {
        tick(&clock, &tee, n);
        assert_eq!(reader.get(), Some(1), "after failed sync {n}");
    }
    assert_eq!(
        reports.all().len(),
        10,
        "on_error heard of every failed sync"
    );
    assert!(
        reports.all()[0].contains("connection refused"),
        "{:?}",
        reports.all()
    );
    let stats = tee.0.get_stats();
    assert_eq!(
        stats.caches["fail:read"].errors_by.get("sync.store"),
        Some(&10)
    );
    let syncs = stats.background_refresh["fail:read"];
    assert_eq!((syncs.success, syncs.failure), (1, 10));

    // Back, with a new value: the next sync serves it.
    store.put("fail:read", 2u32, clock.now());
    store.set_down(false);
    tick(&clock, &tee, 12);
    assert_eq!(reader.get(), Some(2));
}

#[test]
fn max_stale_bounds_how_long_past_its_ttl_a_failing_reader_serves() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    store.put("fail:bounded", 1u32, T0);
    let (tee, reports) = (Tee::default(), Reports::default());
    let reader = reader("fail:bounded", &store, &clock, &tee, &reports)
        .max_stale(15)
        .build()
        .unwrap();
    store.set_down(true);
    tick(&clock, &tee, 2);
    tick(&clock, &tee, 3);
    tick(&clock, &tee, 4);
    assert_eq!(
        reader.get(),
        Some(1),
        "T0+30: 10 s past the ttl, within max_stale"
    );
    // Synced at T0, ttl 20, max_stale 15: served up to T0+35 inclusive.
    clock.set(T0 + 35.0);
    assert_eq!(reader.get(), Some(1));
    clock.set(T0 + 35.5);
    assert_eq!(reader.get(), None, "past ttl + max_stale");
    sync_at(&clock, &tee, 40.0, 5);
    assert_eq!(
        reader.get(),
        None,
        "a later failed sync does not bring it back"
    );

    store.put("fail:bounded", 2u32, clock.now());
    store.set_down(false);
    tick(&clock, &tee, 6);
    assert_eq!(reader.get(), Some(2), "a successful sync serves again");
}

/// A sync that succeeds and finds no entry (the writer stopped, the key
/// expired or was deleted) is not a failure: nothing is reported, and the
/// value is served until `ttl` after the sync that last found it.
#[test]
fn a_sync_that_finds_the_key_gone_serves_the_value_for_its_ttl_then_none() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    store.put("fail:gone", 1u32, T0);
    let (tee, reports) = (Tee::default(), Reports::default());
    let reader = reader("fail:gone", &store, &clock, &tee, &reports)
        .build()
        .unwrap();
    store.remove("fail:gone");
    tick(&clock, &tee, 2);
    assert_eq!(
        reader.get(),
        Some(1),
        "T0+10: within the ttl of the last sync that found it"
    );
    tick(&clock, &tee, 3);
    assert_eq!(reader.get(), Some(1), "T0+20: the ttl's end is included");
    clock.set(T0 + 20.5);
    assert_eq!(reader.get(), None);
    assert!(reports.all().is_empty(), "an absent key is not an error");
    let syncs = tee.0.get_stats().background_refresh["fail:gone"];
    assert_eq!((syncs.success, syncs.failure), (3, 0));

    // During an outage the value outlives its ttl; when the store answers
    // again without the key, the ttl rule applies at once.
    store.put("fail:gone", 2u32, clock.now());
    sync_at(&clock, &tee, 30.0, 4); // synced 2
    store.set_down(true);
    tick(&clock, &tee, 5);
    tick(&clock, &tee, 6);
    tick(&clock, &tee, 7); // T0+60: 10 s past the ttl
    assert_eq!(reader.get(), Some(2), "held through the outage");
    store.remove("fail:gone");
    store.set_down(false);
    tick(&clock, &tee, 8);
    assert_eq!(reader.get(), None, "the store is back and the key is gone");
    assert_eq!(
        reports.all().len(),
        3,
        "only the failed syncs were reported"
    );
}

#[test]
fn max_stale_must_be_a_number_of_seconds() {
    let clock = ManualClock::new(T0);
    let store = Switch::on(&clock);
    let (tee, reports) = (Tee::default(), Reports::default());
    for bad in [-1.0, f64::NAN] {
        let msg = reader("fail:bad", &store, &clock, &tee, &reports)
            .max_stale(bad)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("max_stale of bg::read(\"fail:bad\")"), "{msg}");
    }
}
