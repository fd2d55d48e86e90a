use std::sync::Barrier;
use std::thread;

use ac_core::ManualClock;
use ac_core::{Value, block_on};

use super::*;

const T0: f64 = 1_000_000.0;

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn entry<T: ac_core::CacheValue>(value: T) -> Entry {
    Entry::new(Value::new(value), f64::INFINITY, T0)
}

fn get<T: ac_core::CacheValue>(cache: &InMemCache, key: &str) -> Option<T> {
    let mut out = None;
    cache.get_local(key, &mut |e| out = e.value.downcast_ref::<T>().cloned());
    out
}

fn manual() -> (InMemCache, ManualClock) {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    (cache, clock)
}

#[test]
fn entries_live_through_their_ttl_inclusive_and_vanish_after() {
    let (cache, clock) = manual();
    block_on(cache.set("k", entry(1u32), secs(10))).unwrap();
    clock.advance(10.0);
    assert_eq!(get::<u32>(&cache, "k"), Some(1), "alive exactly at ttl");
    clock.advance(0.001);
    assert_eq!(get::<u32>(&cache, "k"), None, "gone after ttl");
    let decoder = ac_core::TypedDecoder::<u32>::new();
    assert!(block_on(cache.get("k", &decoder)).unwrap().is_none());
}

#[test]
fn no_ttl_keeps_entries_until_deleted() {
    let (cache, clock) = manual();
    block_on(cache.set("k", entry("v".to_string()), None)).unwrap();
    clock.advance(1e9);
    assert_eq!(get::<String>(&cache, "k").as_deref(), Some("v"));
    block_on(cache.delete("k")).unwrap();
    assert_eq!(get::<String>(&cache, "k"), None);
}

#[test]
fn one_store_holds_values_of_different_types() {
    let cache = InMemCache::new();
    block_on(cache.set("a", entry(7u64), None)).unwrap();
    block_on(cache.set("b", entry(Some("x".to_string())), None)).unwrap();
    block_on(cache.set("c", entry(()), None)).unwrap();
    assert_eq!(get::<u64>(&cache, "a"), Some(7));
    assert_eq!(get::<Option<String>>(&cache, "b"), Some(Some("x".into())));
    assert_eq!(get::<()>(&cache, "c"), Some(()));
    assert_eq!(
        get::<String>(&cache, "a"),
        None,
        "wrong type is not a value"
    );
}

#[test]
fn set_if_absent_respects_live_entries_only() {
    let (cache, clock) = manual();
    assert!(block_on(cache.set_if_absent("lock", entry(1u8), secs(5))).unwrap());
    assert!(!block_on(cache.set_if_absent("lock", entry(2u8), secs(5))).unwrap());
    assert_eq!(get::<u8>(&cache, "lock"), Some(1));
    clock.advance(5.5);
    assert!(block_on(cache.set_if_absent("lock", entry(3u8), secs(5))).unwrap());
    assert_eq!(get::<u8>(&cache, "lock"), Some(3));
}

#[test]
fn concurrent_set_if_absent_has_exactly_one_winner() {
    let cache = InMemCache::new();
    for round in 0..20 {
        let key = format!("lock:{round}");
        let barrier = Barrier::new(8);
        let wins: usize = thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|i| {
                    let (cache, barrier, key) = (&cache, &barrier, &key);
                    s.spawn(move || {
                        barrier.wait();
                        block_on(cache.set_if_absent(key, entry(i), secs(60))).unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn clear_empties_and_resets_usage() {
    let cache = InMemCache::new();
    for i in 0..100 {
        block_on(cache.set(&format!("k{i}"), entry(i), None)).unwrap();
    }
    let usage = cache.usage().unwrap();
    assert_eq!(usage.entries, 100);
    assert!(usage.bytes >= 100 * size_of::<Record>() as u64, "{usage:?}");
    block_on(cache.clear()).unwrap();
    assert!(cache.is_empty());
    assert_eq!(
        cache.usage().unwrap(),
        Usage {
            bytes: 0,
            entries: 0
        }
    );
}

#[test]
fn max_entries_evicts_the_entries_closest_to_expiry() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder()
        .max_entries(100)
        .clock(clock)
        .build()
        .unwrap();
    // Key i lives i + 1000 seconds: low keys expire first.
    for i in 0..1000u64 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1000 + i))).unwrap();
        assert!(cache.len() <= 100, "over bound after {i}: {}", cache.len());
    }
    assert!(cache.len() >= 100 - 100 / 16);
    assert_eq!(get::<u64>(&cache, "k999"), Some(999), "longest-lived kept");
    assert_eq!(get::<u64>(&cache, "k0"), None, "shortest-lived evicted");
    let survivors = (0..1000u64)
        .filter(|i| get::<u64>(&cache, &format!("k{i}")).is_some())
        .min()
        .unwrap();
    assert!(survivors >= 900, "evicted out of expiry order: {survivors}");
}

#[test]
fn expired_entries_are_evicted_before_live_ones() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder()
        .max_entries(10)
        .clock(clock.clone())
        .build()
        .unwrap();
    block_on(cache.set("forever", entry(0u8), None)).unwrap();
    for i in 0..9u8 {
        block_on(cache.set(&format!("short{i}"), entry(i), secs(1))).unwrap();
    }
    clock.advance(2.0);
    block_on(cache.set("new", entry(1u8), secs(100))).unwrap();
    assert_eq!(get::<u8>(&cache, "forever"), Some(0));
    assert_eq!(get::<u8>(&cache, "new"), Some(1));
    assert_eq!(cache.len(), 2, "expired entries reclaimed");
}

#[test]
fn weigher_bounds_total_weight_and_refuses_oversized_entries() {
    let cache = InMemCache::builder()
        .max_weight(1000)
        .weigher(|_, e| {
            e.value
                .downcast_ref::<String>()
                .map_or(1, |s| s.len() as u64)
        })
        .build()
        .unwrap();
    for i in 0..100 {
        block_on(cache.set(&format!("k{i}"), entry("x".repeat(100)), secs(100 + i))).unwrap();
    }
    let total: usize = (0..100)
        .filter_map(|i| get::<String>(&cache, &format!("k{i}")))
        .map(|s| s.len())
        .sum();
    assert!(total <= 1000, "weight over bound: {total}");
    assert!(total >= 800, "evicted too much: {total}");
    block_on(cache.set("huge", entry("x".repeat(5000)), None)).unwrap();
    assert_eq!(get::<String>(&cache, "huge"), None);
}

#[test]
fn a_stream_of_unique_short_lived_keys_does_not_grow_the_map() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    let mut peak = 0;
    for i in 0..50_000u64 {
        block_on(cache.set(&format!("req:{i}"), entry(i), secs(1))).unwrap();
        clock.advance(0.01); // ~100 keys live at any time
        peak = peak.max(cache.len());
    }
    assert!(peak <= 2 * SWEEP_MIN_WRITES + 200, "map grew to {peak}");
}

#[test]
fn sweep_reclaims_expired_entries_now() {
    let (cache, clock) = manual();
    for i in 0..10 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1))).unwrap();
    }
    block_on(cache.set("keep", entry(1), secs(100))).unwrap();
    clock.advance(2.0);
    assert_eq!(cache.sweep(), 10);
    assert_eq!(cache.len(), 1);
}

#[test]
fn bad_bounds_are_refused_with_a_clear_message() {
    let e = InMemCache::builder().max_weight(0).build().unwrap_err();
    assert!(
        e.to_string().contains("max_weight must be at least 1"),
        "{e}"
    );
    let e = InMemCache::builder().weigher(|_, _| 1).build().unwrap_err();
    assert!(e.to_string().contains("without max_weight"), "{e}");
}

#[test]
fn totals_stay_exact_under_concurrent_writes_deletes_and_eviction() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder()
        .max_entries(300)
        .clock(clock.clone())
        .build()
        .unwrap();
    thread::scope(|s| {
        for t in 0..4u64 {
            let (cache, clock) = (&cache, &clock);
            s.spawn(move || {
                for i in 0..5_000u64 {
                    let key = format!("k{}", (i * 7 + t) % 700);
                    match i % 5 {
                        0 => block_on(cache.delete(&key)).unwrap(),
                        1 => {
                            block_on(cache.set_if_absent(&key, entry(i), secs(1 + i % 50)))
                                .unwrap();
                        }
                        _ => block_on(cache.set(
                            &key,
                            entry("x".repeat((i % 40) as usize)),
                            secs(1 + i % 50),
                        ))
                        .unwrap(),
                    }
                    if i % 1000 == 0 {
                        clock.advance(5.0);
                    }
                }
            });
        }
    });
    // Writers that found maintenance busy skipped it; the next write evicts.
    block_on(cache.set("last", entry(0u8), secs(100))).unwrap();
    cache.sweep();
    let map = cache.inner.map.pin();
    let bytes: u64 = map.iter().map(|(_, r)| r.bytes).sum();
    assert_eq!(cache.usage().unwrap().bytes, bytes, "running total drifted");
    assert_eq!(cache.inner.weight.load(Ordering::Relaxed), bytes);
    assert!(
        map.len() <= 300 + 4,
        "bound held within the writes in flight: {}",
        map.len()
    );
}

#[test]
fn passes_the_store_conformance_suite() {
    let clock = ManualClock::new(1_700_000_000.0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    let advance = |secs: f64| clock.advance(secs);
    ac_core::conformance::run_all(&ac_core::conformance::Harness {
        store: &cache,
        advance: Some(&advance),
        sibling: Some(&InMemCache::new()),
    });
}

/// A policy over `store` whose function counts its calls and returns them.
fn counting_policy(
    store: &InMemCache,
    calls: &Arc<AtomicUsize>,
) -> Arc<ac_core::CachePolicy<u64, usize, std::convert::Infallible>> {
    let calls = Arc::clone(calls);
    let config = ac_core::PolicyConfig {
        name: "typed".into(),
        ttl: 60.0,
        stale: 0.0,
        key: ac_core::KeySource::<u64>::into_key_spec("k:{}").unwrap(),
        store: Arc::new(store.clone()),
        clock: Arc::new(ManualClock::new(T0)),
        metrics: Arc::new(ac_core::NullMetrics),
        scheduler: Arc::new(ac_sched::ThreadScheduler::new("typed", 1).unwrap()),
    };
    let load = move |_: u64| Ok(calls.fetch_add(1, Ordering::SeqCst) + 1);
    Arc::new(ac_core::CachePolicy::new(config, ac_core::Loader::Sync(Arc::new(load))).unwrap())
}

#[test]
fn the_typed_fast_path_serves_only_the_policys_own_store() {
    let own = InMemCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = counting_policy(&own, &calls);
    // The facade holds the policy's store by its concrete type: the same
    // object, so the typed path reads it.
    let own_typed: Arc<InMemCache> = {
        let any: Arc<dyn std::any::Any + Send + Sync> = Arc::clone(policy.store()) as _;
        any.downcast().unwrap()
    };
    assert_eq!(policy.call_blocking_in(&*own_typed, 1), Ok(1), "miss runs");
    assert_eq!(policy.call_blocking_in(&*own_typed, 1), Ok(1), "hit");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Another InMemCache holding a different value under the same key (even
    // a clone sharing the map is another object) is ignored: the call goes
    // to the policy's own store.
    let other = InMemCache::new();
    block_on(other.set("k:2", entry(99usize), secs(60))).unwrap();
    assert_eq!(
        policy.call_blocking_in(&other, 2),
        Ok(2),
        "miss on own store"
    );
    assert_eq!(
        policy.call_blocking_in(&other, 2),
        Ok(2),
        "hit on own store"
    );
    assert_eq!(pollster::block_on(policy.call_async_in(&other, 2)), Ok(2));
    assert_eq!(
        pollster::block_on(policy.call_async_in(&*own_typed, 2)),
        Ok(2)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(get::<usize>(&own, "k:2"), Some(2));
}
