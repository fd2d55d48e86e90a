//! Cached functions over a real `redis-server` started by the test: sync
//! functions from threads and from inside Tokio, stale-while-revalidate
//! across two independent clients, a hybrid ChainCache between two "processes",
//! and a Redis outage in the middle of a test.
#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

use ac_testkit::RedisServer;
use advanced_caching::{
    ChainCache, InMemCache, ManualClock, RedisCache, Store, ThreadScheduler, cache,
};
use support::{Calls, CountingMetrics, T0};

fn redis(server: &RedisServer, prefix: &str) -> RedisCache {
    RedisCache::builder(server.url())
        .prefix(prefix)
        .build()
        .unwrap()
}

#[test]
fn sync_functions_from_threads_run_once_per_key() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let counted = calls.clone();
    let user = cache(60)
        .key("user:{}")
        .store(redis(&server, "t:"))
        .wrap(move |id: u64| {
            counted.bump();
            std::thread::sleep(Duration::from_millis(50));
            format!("user-{id}")
        })
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(user.call(7), "user-7");
                }
            });
        }
    });
    assert_eq!(
        calls.get(),
        1,
        "concurrent misses on one key run the function once"
    );
    assert!(
        server.cli(&["get", "t:user:7"]).contains("user-7"),
        "stored in Redis"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sync_functions_called_inside_a_tokio_runtime_do_not_panic() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let counted = calls.clone();
    let double = cache(60)
        .key("d:{}")
        .store(redis(&server, "rt:"))
        .wrap(move |x: u32| {
            counted.bump();
            x * 2
        })
        .unwrap();
    assert_eq!(double.call(21), 42);
    assert_eq!(double.call(21), 42);
    assert_eq!(calls.get(), 1);
}

#[test]
fn swr_across_two_independent_clients_refreshes_once_per_window() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let calls = Calls::default();
    // Two stores with their own connection pools, two cached functions, as
    // two processes would have: only Redis is shared. Each window gets a
    // fresh pair on a fresh pool, so `shutdown` joins every refresh the
    // window started before counting.
    let make = |scheduler: &ThreadScheduler| {
        let calls = calls.clone();
        cache(60)
            .stale(30)
            .key("shared:{}")
            .store(redis(&server, "swr:"))
            .clock(clock.clone())
            .scheduler(scheduler.clone())
            .wrap(move |_: u8| calls.bump())
            .unwrap()
    };
    let scheduler = ThreadScheduler::new("swr-redis", 2).unwrap();
    let (a, b) = (make(&scheduler), make(&scheduler));
    assert_eq!(a.call(1), 1);
    assert_eq!(b.call(1), 1, "b hits a's entry");
    for window in 1..=3 {
        let scheduler = ThreadScheduler::new("swr-redis", 2).unwrap();
        let (a, b) = (make(&scheduler), make(&scheduler));
        clock.advance(70.0);
        assert_eq!(a.call(1), window, "a serves the stale value");
        let seen = b.call(1);
        assert!(
            seen == window || seen == window + 1,
            "b serves the stale value or the refreshed one: {seen}"
        );
        for _ in 0..5 {
            // More stale hits on both sides start no second refresh.
            let _ = (a.call(1), b.call(1));
        }
        scheduler.shutdown();
        assert_eq!(
            calls.get(),
            window + 1,
            "exactly one refresh in window {window}"
        );
        assert_eq!(b.call(1), window + 1, "both see the refreshed value");
    }
}

#[test]
fn hybrid_cache_shares_through_l2_and_serves_from_l1() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let process = |calls: Calls| {
        let store = ChainCache::hybrid(InMemCache::new(), redis(&server, "hy:"), 30).unwrap();
        cache(60)
            .key("p:{}")
            .store(store)
            .wrap(move |x: u32| {
                calls.bump();
                x + 1
            })
            .unwrap()
    };
    let (a, b) = (process(calls.clone()), process(calls.clone()));
    assert_eq!(a.call(1), 2);
    assert_eq!(b.call(1), 2, "b finds a's value in Redis");
    assert_eq!(calls.get(), 1);
    let gets_before = server.command_calls("get");
    for _ in 0..50 {
        assert_eq!(b.call(1), 2);
    }
    assert_eq!(server.command_calls("get"), gets_before, "L1 hits only");
}

#[test]
fn a_redis_outage_never_fails_a_call_and_the_cache_recovers() {
    let mut server = RedisServer::start();
    let metrics = CountingMetrics::default();
    let calls = Calls::default();
    let counted = calls.clone();
    let store = redis(&server, "o:");
    let square = cache(60)
        .key("sq:{}")
        .store(store.clone())
        .metrics(metrics.clone())
        .wrap(move |x: u64| {
            counted.bump();
            x * x
        })
        .unwrap();
    assert_eq!(square.call(3), 9);
    assert_eq!(square.call(3), 9);
    assert_eq!(calls.get(), 1);

    server.stop();
    assert_eq!(square.call(3), 9, "the function runs when Redis is down");
    assert_eq!(square.call(4), 16);
    assert_eq!(calls.get(), 3);
    assert!(
        metrics.count("error") >= 2,
        "errors counted: {}",
        metrics.count("error")
    );

    server.restart();
    // Reconnection happens in the background; wait for it on the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while advanced_caching::crates::core::block_on(store.delete("probe")).is_err() {
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let errors = metrics.count("error");
    let before = calls.get();
    assert_eq!(square.call(5), 25);
    assert_eq!(square.call(5), 25);
    assert_eq!(calls.get(), before + 1, "cached again, without a restart");
    assert_eq!(metrics.count("error"), errors, "no more errors");
    assert!(server.cli(&["get", "o:sq:5"]).contains("25"));
}
