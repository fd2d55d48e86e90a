//! Exact counts in `InMemoryMetrics` across the sync, async, SWR and bg
//! paths.

mod support;

use advanced_caching::{InMemoryMetrics, ManualClock, ThreadScheduler, bg, cache};
use support::{T0, Tee};

#[test]
fn sync_hits_misses_sets_and_deletes_are_exact() {
    let m = InMemoryMetrics::new();
    let f = cache(60)
        .key("u:{}")
        .name("users")
        .metrics(m.clone())
        .wrap(|id: u32| id * 2)
        .unwrap();
    f.call(1);
    for _ in 0..3 {
        f.call(1);
    }
    f.call(2);
    f.invalidate(2).unwrap();
    let users = &m.get_stats().caches["users"];
    assert_eq!(
        (
            users.hits,
            users.misses,
            users.sets,
            users.deletes,
            users.errors
        ),
        (3, 2, 2, 1, 0)
    );
    assert_eq!(users.hit_rate_percent, 60.0);
    assert_eq!(
        users.entries, 2,
        "the store's size was reported after the last set"
    );
    assert_eq!(users.latency["load"].count, 2, "every load is timed");
}

#[test]
fn the_default_name_is_the_functions() {
    fn get_user(id: u32) -> u32 {
        id
    }
    let m = InMemoryMetrics::new();
    let f = cache(60)
        .key("u:{}")
        .metrics(m.clone())
        .wrap(get_user)
        .unwrap();
    f.call(1);
    assert_eq!(m.get_stats().caches["get_user"].misses, 1);
}

#[tokio::test]
async fn async_counts_are_exact() {
    let m = InMemoryMetrics::new();
    let f = cache(60)
        .key("a:{}")
        .name("async")
        .metrics(m.clone())
        .wrap_async(|x: u8| async move { x })
        .unwrap();
    for x in [1, 1, 2, 1, 2] {
        f.call(x).await;
    }
    let s = &m.get_stats().caches["async"];
    assert_eq!((s.hits, s.misses, s.sets), (3, 2, 2));
}

#[test]
fn swr_counts_the_stale_hit_the_refresh_and_its_failure() {
    let m = InMemoryMetrics::new();
    let clock = ManualClock::new(T0);
    let pool = ThreadScheduler::new("metrics-test", 1).unwrap();
    let fails = std::sync::atomic::AtomicBool::new(false);
    let fails = std::sync::Arc::new(fails);
    let f_fails = fails.clone();
    let f = cache(60)
        .stale(30)
        .key("p")
        .name("prices")
        .clock(clock.clone())
        .scheduler(pool.clone())
        .metrics(m.clone())
        .try_wrap(move |()| {
            if f_fails.load(std::sync::atomic::Ordering::SeqCst) {
                Err("down")
            } else {
                Ok(1.0f64)
            }
        })
        .unwrap();
    f.call(()).unwrap(); // miss
    clock.advance(61.0);
    f.call(()).unwrap(); // stale hit, refresh succeeds
    pool.shutdown();
    f.call(()).unwrap(); // fresh hit
    fails.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(61.0);
    f.call(()).unwrap(); // stale hit, refresh fails
    pool.shutdown();
    let stats = m.get_stats();
    let p = &stats.caches["prices"];
    assert_eq!((p.hits, p.misses, p.sets, p.errors), (3, 1, 2, 1));
    assert_eq!(p.errors_by["refresh.loader"], 1);
    assert_eq!(stats.background_refresh["prices"].success, 1);
    assert_eq!(stats.background_refresh["prices"].failure, 1);
}

#[test]
fn bg_counts_refreshes_and_hits() {
    let tee = Tee::default();
    let clock = ManualClock::new(T0);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    let flags = bg(60)
        .key("metrics:flags")
        .clock(clock.clone())
        .metrics(tee.clone())
        .try_wrap(
            move || match c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                1 => Err("remote config down"),
                n => Ok(n),
            },
        )
        .unwrap();
    assert_eq!(flags.get(), Ok(0));
    assert_eq!(flags.get(), Ok(0));
    clock.advance(60.0);
    tee.1.until_blocking(2);
    clock.advance(60.0);
    tee.1.until_blocking(3);
    let stats = tee.0.get_stats();
    let refresh = stats.background_refresh["metrics:flags"];
    assert_eq!((refresh.success, refresh.failure), (2, 1));
    let c = &stats.caches["metrics:flags"];
    assert_eq!((c.hits, c.misses, c.sets, c.errors), (2, 0, 2, 1));
}
