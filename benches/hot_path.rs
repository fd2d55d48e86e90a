//! Hot-path benches. Ids are stable (`group/name`) so runs can be compared;
//! see BENCH.md. Hits use an `Arc<String>` of ~100 bytes cloned out of a
//! store holding 10,000 entries.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use advanced_caching::{
    ChainCache, InMemCache, InMemoryMetrics, ManualClock, NullMetrics, bg, cache,
};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::inmem_get;

const ENTRIES: u64 = 10_000;
const KEY: u64 = 4_242;

fn value() -> Arc<String> {
    Arc::new("v".repeat(100))
}

/// Polls a future that completes without waiting (a cache hit) once.
#[inline(always)]
fn poll_ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a hit must complete on the first poll"),
    }
}

fn floor(c: &mut Criterion) {
    let map: papaya::HashMap<String, Arc<String>, foldhash::fast::RandomState> =
        papaya::HashMap::builder()
            .hasher(foldhash::fast::RandomState::default())
            .build();
    for i in 0..ENTRIES {
        map.pin().insert(format!("user:{i}"), value());
    }
    let key = format!("user:{KEY}");
    c.bench_function("floor/papaya_get", |b| {
        b.iter(|| map.pin().get(black_box(key.as_str())).cloned())
    });
}

/// A store with 10,000 `user:{i}` entries, as the cached functions write them.
fn populated_store() -> Arc<InMemCache> {
    let store = Arc::new(InMemCache::new());
    let fill = cache(3600)
        .key("user:{}")
        .store(store.clone())
        .wrap(|_: u64| value())
        .unwrap();
    for i in 0..ENTRIES {
        fill.call(i);
    }
    store
}

fn store(c: &mut Criterion) {
    let store = populated_store();
    let key = format!("user:{KEY}");
    c.bench_function("store/inmem_get", |b| {
        b.iter(|| inmem_get(&store, black_box(&key)))
    });
}

fn hits(c: &mut Criterion) {
    let store = populated_store();
    let mut group = c.benchmark_group("hit");

    let sync_static = cache(3600)
        .key("feature_flags")
        .store(store.clone())
        .wrap(|()| value())
        .unwrap();
    sync_static.call(());
    group.bench_function("sync_static", |b| b.iter(|| sync_static.call(())));

    let null_metrics = cache(3600)
        .key("feature_flagn")
        .store(store.clone())
        .metrics(NullMetrics)
        .wrap(|()| value())
        .unwrap();
    null_metrics.call(());
    group.bench_function("sync_static_null_metrics", |b| {
        b.iter(|| null_metrics.call(()))
    });

    let metrics = InMemoryMetrics::new();
    let with_metrics = cache(3600)
        .key("feature_flagm")
        .name("flags")
        .store(store.clone())
        .metrics(metrics.clone())
        .wrap(|()| value())
        .unwrap();
    with_metrics.call(());
    with_metrics.call(()); // a hit, whether or not this bench is filtered out
    group.bench_function("sync_static_inmemory_metrics", |b| {
        b.iter(|| with_metrics.call(()))
    });
    assert!(metrics.get_stats().caches["flags"].hits > 0);

    // Prometheus through the metrics facade, recorder installed globally.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).expect("first recorder");
    let with_prometheus = cache(3600)
        .key("feature_flagp")
        .name("flags")
        .store(store.clone())
        .metrics(advanced_caching::exporters::PrometheusMetrics::new(
            "bench", "cache",
        ))
        .wrap(|()| value())
        .unwrap();
    with_prometheus.call(());
    with_prometheus.call(());
    group.bench_function("sync_static_prometheus", |b| {
        b.iter(|| with_prometheus.call(()))
    });
    assert!(prometheus.render().contains("bench_cache_hits_total"));

    let async_static = cache(3600)
        .key("feature_flaga")
        .store(store.clone())
        .wrap_async(|()| async { value() })
        .unwrap();
    poll_ready(async_static.call(()));
    group.bench_function("async_static", |b| {
        b.iter(|| poll_ready(async_static.call(())))
    });

    let positional = cache(3600)
        .key("user:{}")
        .store(store.clone())
        .wrap(|_: u64| value())
        .unwrap();
    group.bench_function("sync_positional", |b| {
        b.iter(|| positional.call(black_box(KEY)))
    });

    let callable = cache(3600)
        .key(|id: &u64| format!("user:{id}"))
        .store(store.clone())
        .wrap(|_: u64| value())
        .unwrap();
    group.bench_function("sync_callable", |b| {
        b.iter(|| callable.call(black_box(KEY)))
    });

    // A stale entry whose refresh keeps failing: every call is a stale serve.
    let clock = ManualClock::new(1_700_000_000.0);
    let first = std::sync::atomic::AtomicBool::new(true);
    let stale = cache(60)
        .stale(1e9)
        .key("stale")
        .clock(clock.clone())
        .store(store.clone())
        .try_wrap(move |()| {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                Ok(value())
            } else {
                Err("refresh fails")
            }
        })
        .unwrap();
    stale.call(()).unwrap();
    clock.advance(120.0);
    stale.call(()).unwrap();
    group.bench_function("swr_stale", |b| b.iter(|| stale.call(())));

    // A two-level chain whose L1 is the populated store: an L1 hit never
    // reaches L2, so L2's kind does not matter here (see benches/redis.rs).
    let chain = ChainCache::builder()
        .level_with_ttl(store.clone(), 3600)
        .level(InMemCache::new())
        .build()
        .unwrap();
    let chain_l1 = cache(3600)
        .key("feature_flagc")
        .store(chain)
        .wrap(|()| value())
        .unwrap();
    chain_l1.call(());
    group.bench_function("chain_l1", |b| b.iter(|| chain_l1.call(())));
    group.finish();

    let v = value();
    let ttl0 = cache(0)
        .key("uncached")
        .store(store.clone())
        .wrap(move |()| v.clone())
        .unwrap();
    c.bench_function("miss/sync_ttl0", |b| b.iter(|| ttl0.call(())));
}

fn background(c: &mut Criterion) {
    let mut group = c.benchmark_group("hit");
    let loader = bg(3600).key("bench:bg").wrap(value).unwrap();
    loader.get();
    group.bench_function("bg_call", |b| b.iter(|| loader.get()));

    let writer = bg::write(3600)
        .key("bench:rates")
        .store(InMemCache::new())
        .wrap(value)
        .unwrap();
    writer.get();
    let reader = bg::read::<Arc<String>>("bench:rates").build().unwrap();
    assert!(reader.get().is_some());
    group.bench_function("bg_read_local", |b| b.iter(|| reader.get()));
    group.finish();
}

/// Where a template hit's extra time goes: rendering the key alone, and
/// rendering then looking it up (compare `store/inmem_get`). The lookup
/// after a full fence is no slower than without one: the lookup's loads of
/// the key's just-written bytes wait for those stores to commit (failed
/// store-to-load forwarding), which is most of what rendering adds.
fn keys(c: &mut Criterion) {
    use advanced_caching::crates::core::KeySource;
    let spec = KeySource::<u64>::into_key_spec("user:{}").unwrap();
    c.bench_function("key/template_u64", |b| {
        b.iter(|| spec.with_key(black_box(&KEY), |k| k.len()))
    });
    let store = populated_store();
    c.bench_function("key/template_fence_get", |b| {
        b.iter(|| {
            spec.with_key(black_box(&KEY), |k| {
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                inmem_get(&store, k)
            })
        })
    });
    c.bench_function("key/template_then_get", |b| {
        b.iter(|| spec.with_key(black_box(&KEY), |k| inmem_get(&store, k)))
    });
}

/// Fresh against stale serves over 10,000 template keys, called in turn:
/// a stale serve renders the key once and looks it up once, as a fresh hit.
fn template_windows(c: &mut Criterion) {
    let clock = ManualClock::new(1_700_000_000.0);
    let store = Arc::new(InMemCache::builder().clock(clock.clone()).build().unwrap());
    let mut group = c.benchmark_group("hit");
    let loaded = std::sync::atomic::AtomicU64::new(0);
    let stale = cache(60)
        .stale(1e9)
        .key("stale:{}")
        .clock(clock.clone())
        .store(store.clone())
        .try_wrap(move |_: u64| {
            // Loads every key once; every refresh after that fails, so each
            // entry stays stale and its claim stays held.
            if loaded.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < ENTRIES {
                Ok(value())
            } else {
                Err("refresh fails")
            }
        })
        .unwrap();
    let fresh = cache(1e9)
        .key("fresh:{}")
        .clock(clock.clone())
        .store(store.clone())
        .wrap(|_: u64| value())
        .unwrap();
    for i in 0..ENTRIES {
        stale.call(i).unwrap();
        fresh.call(i);
    }
    clock.advance(120.0);
    for i in 0..ENTRIES {
        // Claims each entry's refresh once; the refreshes fail.
        stale.call(i).unwrap();
    }
    let mut i = 0;
    group.bench_function("fresh_template_10k", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            fresh.call(black_box(i))
        })
    });
    let mut i = 0;
    group.bench_function("stale_template_10k", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            stale.call(black_box(i)).unwrap()
        })
    });
    group.finish();
}

/// A miss into an unbounded `InMemCache` (new key every call: render, run
/// the function, store) against a bare `Store::set` of the same entry. Each
/// batch starts from an empty store, built outside the timing.
fn misses(c: &mut Criterion) {
    use advanced_caching::{Entry, Store, StoreFor};
    use std::fmt::Write as _;
    use std::time::{Duration, Instant};
    const BATCH: u64 = 100_000;
    let v = value();
    c.bench_function("store/inmem_set", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut key = String::new();
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                left -= n;
                let store = InMemCache::new();
                let started = Instant::now();
                for i in 0..n {
                    key.clear();
                    let _ = write!(key, "m:{i}");
                    let entry = Entry::new(
                        <InMemCache as StoreFor<Arc<String>>>::wrap(v.clone()),
                        2e9,
                        1.7e9,
                    );
                    let set = store.set(&key, entry, Some(Duration::from_secs(3600)));
                    black_box(advanced_caching::crates::core::block_on(set)).unwrap();
                }
                total += started.elapsed();
            }
            total
        })
    });
    let v = value();
    c.bench_function("miss/inmem_unbounded", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                left -= n;
                let v = v.clone();
                let f = cache(3600)
                    .key("m:{}")
                    .store(InMemCache::new())
                    .wrap(move |_: u64| v.clone())
                    .unwrap();
                let started = Instant::now();
                for i in 0..n {
                    black_box(f.call(i));
                }
                total += started.elapsed();
            }
            total
        })
    });
}

criterion_group!(
    benches,
    floor,
    store,
    hits,
    background,
    keys,
    template_windows,
    misses
);
criterion_main!(benches);
