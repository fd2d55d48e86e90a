//! `bg::write` and `bg::read` through a real Redis outage: the test kit
//! kills `redis-server` and starts it again on the same port. Real time,
//! real threads; the rules of time themselves are tested on a manual clock
//! in `bg_store_failures.rs`.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ac_testkit::RedisServer;
use advanced_caching::{InMemoryMetrics, RedisCache, bg};
use support::{Calls, Reports};

/// Seconds between refreshes and syncs.
const INTERVAL: f64 = 0.2;
/// How long the server stays down: many intervals, several default ttls.
const OUTAGE: Duration = Duration::from_secs(3);

/// A client of `server` whose commands give up after 200 ms, so an outage
/// shows within one interval or two.
fn redis(server: &RedisServer) -> RedisCache {
    RedisCache::builder(server.url())
        .timeout(Duration::from_millis(200))
        .prefix("outage:")
        .build()
        .unwrap()
}

/// Polls `done` every 20 ms for up to 10 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn errors(metrics: &InMemoryMetrics, cache: &str, label: &str) -> u64 {
    metrics
        .get_stats()
        .caches
        .get(cache)
        .and_then(|c| c.errors_by.get(label).copied())
        .unwrap_or(0)
}

#[test]
fn a_writer_reports_lost_writes_and_serves_its_own_copy_while_redis_is_down() {
    let mut server = RedisServer::start();
    let (metrics, reports, calls) = (InMemoryMetrics::new(), Reports::default(), Calls::default());
    let inline = Arc::new(AtomicUsize::new(0));
    let (c, i) = (calls.clone(), inline.clone());
    let writer = bg::write(INTERVAL)
        .key("writer")
        .store(redis(&server))
        .metrics(metrics.clone())
        .on_error(reports.handler())
        .wrap(move || {
            // The schedule runs on a thread named "…-every"; anything else
            // is a caller's get() loading inline.
            let scheduled = std::thread::current()
                .name()
                .is_some_and(|n| n.ends_with("-every"));
            if !scheduled {
                i.fetch_add(1, Ordering::SeqCst);
            }
            c.bump()
        })
        .unwrap();
    assert!(writer.get() >= 1);
    wait_for("the first write", || {
        !server.cli(&["get", "outage:writer"]).trim().is_empty()
    });

    server.stop();
    wait_for("on_error to hear of a lost write", || {
        reports.any("store did not take the value")
    });
    assert!(
        errors(&metrics, "writer", "set.store") >= 1,
        "the lost write is counted: {:?}",
        metrics.get_stats().caches.get("writer")
    );
    let failures = metrics.get_stats().background_refresh["writer"].failure;
    assert!(failures >= 1, "the refresh is counted as failed");

    // Through the outage, get() answers at once with what the schedule
    // produced, and never runs the function itself.
    let (started, mut worst, mut last) = (Instant::now(), Duration::ZERO, 0);
    while started.elapsed() < OUTAGE {
        let call = Instant::now();
        let value = writer.get();
        worst = worst.max(call.elapsed());
        assert!(value >= last, "values only move forward");
        last = value;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(inline.load(Ordering::SeqCst), 0, "no get() loaded inline");
    assert!(
        worst < Duration::from_millis(150),
        "a get() waited {worst:?} during the outage"
    );
    assert!(
        last > 1,
        "the schedule kept refreshing the writer's own copy"
    );
    let reported = reports.count();
    assert!(reported >= 5, "every lost write is reported: {reported}");

    server.restart();
    wait_for("the writer to write to Redis again", || {
        !server.cli(&["get", "outage:writer"]).trim().is_empty()
    });
    println!(
        "writer: worst get() {worst:?} in a {OUTAGE:?} outage, {reported} lost writes reported"
    );
}

#[test]
fn a_reader_keeps_its_last_value_through_an_outage_and_picks_up_after() {
    let mut server = RedisServer::start();
    let (metrics, reports) = (InMemoryMetrics::new(), Reports::default());
    let calls = Calls::default();
    let c = calls.clone();
    let writer = bg::write(INTERVAL)
        .key("reader")
        .store(redis(&server))
        .wrap(move || c.bump() as u64)
        .unwrap();
    writer.get();
    // The reader's own client, as in another process (default ttl: 2 × 0.2 s).
    let reader = bg::read::<u64>("reader")
        .interval(INTERVAL)
        .store(redis(&server))
        .metrics(metrics.clone())
        .on_error(reports.handler())
        .build()
        .unwrap();
    wait_for("the reader's first value", || reader.get().is_some());

    server.stop();
    wait_for("a failed sync", || reports.count() >= 1);
    let held = reader.get().expect("a value when the outage began");
    let started = Instant::now();
    while started.elapsed() < OUTAGE {
        assert_eq!(
            reader.get(),
            Some(held),
            "{:?} into the outage",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let failed = reports.count();
    assert!(failed >= 5, "every failed sync is reported: {failed}");
    assert!(reports.any("\"reader\""), "on_error names the key");
    assert!(errors(&metrics, "reader", "sync.store") >= 5);

    server.restart();
    let back = Instant::now();
    wait_for("a value written after the restart", || {
        reader.get().is_some_and(|v| v > held)
    });
    println!(
        "reader: held {held} through {failed} failed syncs, new value {:?} after the restart",
        back.elapsed()
    );
}
