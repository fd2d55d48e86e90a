//! The same read against peer caches, and two-thread throughput on random
//! keys. Ids are stable; see BENCH.md. Values are `Arc<String>` of ~100
//! bytes cloned on a hit, 10,000 entries present, keys `user:{i}`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use advanced_caching::{Entry, InMemCache, Store, Value};
use cached::Cached as _;
use criterion::{Bencher, Criterion, criterion_group, criterion_main};

mod common;
use common::inmem_get;

const ENTRIES: usize = 10_000;
const KEY: usize = 4_242;

type Floor = papaya::HashMap<String, Arc<String>, foldhash::fast::RandomState>;

fn value() -> Arc<String> {
    Arc::new("v".repeat(100))
}

fn keys() -> Vec<String> {
    (0..ENTRIES).map(|i| format!("user:{i}")).collect()
}

fn floor(keys: &[String]) -> Floor {
    let map: Floor = papaya::HashMap::builder()
        .hasher(foldhash::fast::RandomState::default())
        .build();
    for key in keys {
        map.pin().insert(key.clone(), value());
    }
    map
}

fn inmem(keys: &[String]) -> InMemCache {
    let store = InMemCache::new();
    for key in keys {
        let entry = Entry::new(Value::new(value()), f64::INFINITY, 0.0);
        advanced_caching::crates::core::block_on(store.set(key, entry, None)).unwrap();
    }
    store
}

fn moka(keys: &[String]) -> moka::sync::Cache<String, Arc<String>> {
    let cache = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    for key in keys {
        cache.insert(key.clone(), value());
    }
    cache
}

fn peers(c: &mut Criterion) {
    let keys = keys();
    let key = keys[KEY].as_str();
    let mut group = c.benchmark_group("peer");

    let moka = moka(&keys);
    group.bench_function("moka_get", |b| b.iter(|| moka.get(black_box(key))));

    let quick = quick_cache::sync::Cache::<String, Arc<String>>::new(ENTRIES * 2);
    for k in &keys {
        quick.insert(k.clone(), value());
    }
    group.bench_function("quick_cache_get", |b| b.iter(|| quick.get(black_box(key))));

    // `cached` stores need `&mut` for a get: shared, they sit behind a lock.
    let timed = Mutex::new(cached::TtlCache::<String, Arc<String>>::new(
        Duration::from_secs(3600),
    ));
    for k in &keys {
        timed.lock().unwrap().cache_set(k.clone(), value());
    }
    group.bench_function("cached_timed_get", |b| {
        b.iter(|| timed.lock().unwrap().cache_get(black_box(key)).cloned())
    });
    group.finish();
}

/// Two threads reading uniformly random present keys; the time per
/// iteration is total wall time over total reads (throughput).
fn two_threads<F: Fn(&str) + Sync>(b: &mut Bencher<'_>, keys: &[String], get: F) {
    let mut rng = fastrand::Rng::with_seed(42);
    let picks: Vec<usize> = (0..1 << 16).map(|_| rng.usize(..keys.len())).collect();
    b.iter_custom(|iters| {
        let per_thread = iters.div_ceil(2);
        let started = Instant::now();
        thread::scope(|s| {
            for t in 0..2u64 {
                let (picks, get) = (&picks, &get);
                s.spawn(move || {
                    let first = usize::try_from(t).unwrap_or(0) * 7_919;
                    let reads = usize::try_from(per_thread).unwrap_or(usize::MAX);
                    for i in first..first.saturating_add(reads) {
                        get(&keys[picks[i & 0xFFFF]]);
                    }
                });
            }
        });
        started.elapsed()
    });
}

fn mt2(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("mt2");
    let floor = floor(&keys);
    group.bench_function("floor_papaya_random_keys", |b| {
        two_threads(b, &keys, |k| {
            black_box(floor.pin().get(k).cloned());
        });
    });
    let store = inmem(&keys);
    group.bench_function("inmem_random_keys", |b| {
        two_threads(b, &keys, |k| {
            black_box(inmem_get(&store, k));
        });
    });
    let moka = moka(&keys);
    group.bench_function("moka_random_keys", |b| {
        two_threads(b, &keys, |k| {
            black_box(moka.get(k));
        });
    });
    group.finish();
}

criterion_group!(benches, peers, mt2);
criterion_main!(benches);
