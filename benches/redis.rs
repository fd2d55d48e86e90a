//! Redis benches against a local `redis-server` this bench starts on a free
//! loopback port (ac-testkit): a cached call served by Redis, and a
//! Hybrid ChainCache (InMemCache L1 + Redis L2) hit at L1 and at L2.
//!
//! `cargo bench -p ac-benches --bench redis`

use std::hint::black_box;
use std::sync::Arc;

use advanced_caching::crates::core::block_on;
use advanced_caching::{ChainCache, InMemCache, RedisCache, Store, TypedDecoder, cache};
use criterion::{Criterion, criterion_group, criterion_main};

fn value() -> Arc<String> {
    Arc::new("v".repeat(100))
}

fn redis(c: &mut Criterion) {
    let server = ac_testkit::RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("bench:")
        .build()
        .unwrap();
    let mut group = c.benchmark_group("redis");

    let decoder = TypedDecoder::<Arc<String>>::new();
    let hit = cache(3600)
        .key("feature_flags")
        .store(store.clone())
        .wrap(|()| value())
        .unwrap();
    hit.call(());
    group.bench_function("store_get", |b| {
        b.iter(|| block_on(store.get(black_box("feature_flags"), &decoder)).unwrap())
    });
    group.bench_function("hit", |b| b.iter(|| hit.call(())));

    let l1 = Arc::new(InMemCache::new());
    let hybrid = ChainCache::hybrid(l1.clone(), store.clone(), 60).unwrap();
    let chained = cache(3600)
        .key("chained")
        .store(hybrid)
        .wrap(|()| value())
        .unwrap();
    chained.call(());
    group.bench_function("chain_l1_hit", |b| b.iter(|| chained.call(())));
    // Each iteration drops the L1 copy, so the call reads Redis (L2) and
    // backfills L1: the cost of an L1 miss that L2 answers.
    group.bench_function("chain_l2_hit", |b| {
        b.iter(|| {
            block_on(l1.delete("chained")).unwrap();
            chained.call(())
        })
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, redis);
criterion_main!(benches);
