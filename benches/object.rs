//! S3Cache benches against a moto server this bench starts on a free
//! loopback port (ac-testkit; needs the venv `scripts/test` creates, or
//! `AC_PYTHON`): in the same run, a raw object_store GET of the entry's
//! object beside a hit and a miss through S3Cache, a cached call served by
//! S3, and a ChainCache (InMemCache L1 + S3) L1 hit.
//!
//! `cargo bench -p ac-benches --bench object`

use std::hint::black_box;
use std::sync::Arc;

use advanced_caching::crates::core::block_on;
use advanced_caching::crates::store_object::object_store::ObjectStoreExt as _;
use advanced_caching::crates::store_object::object_store::path::Path;
use advanced_caching::{ChainCache, InMemCache, S3Cache, Store, TypedDecoder, cache};
use criterion::{Criterion, criterion_group, criterion_main};

const BUCKET: &str = "bench";

fn value() -> Arc<String> {
    Arc::new("v".repeat(100))
}

fn object(c: &mut Criterion) {
    let server = ac_testkit::S3Server::start();
    server.create_bucket(BUCKET);
    let store = S3Cache::builder(BUCKET)
        .endpoint(server.endpoint())
        .region("us-east-1")
        .credentials("test", "test")
        .allow_http(true)
        .prefix("bench/")
        .build()
        .unwrap();
    let mut group = c.benchmark_group("s3");

    let decoder = TypedDecoder::<Arc<String>>::new();
    let hit = cache(3600)
        .key("feature_flags")
        .store(store.clone())
        .wrap(|()| value())
        .unwrap();
    hit.call(());

    // The same object, read with object_store alone on a runtime of ours.
    let raw = store.object_store().clone();
    let path = Path::parse(store.object_name("feature_flags")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("raw_object_store_get", |b| {
        b.iter(|| {
            runtime
                .block_on(async { raw.get(black_box(&path)).await?.bytes().await })
                .unwrap()
        })
    });
    group.bench_function("store_get_hit", |b| {
        b.iter(|| block_on(store.get(black_box("feature_flags"), &decoder)).unwrap())
    });
    group.bench_function("store_get_miss", |b| {
        b.iter(|| block_on(store.get(black_box("never-set"), &decoder)).unwrap())
    });
    group.bench_function("cached_call_hit", |b| b.iter(|| hit.call(())));

    let chain = ChainCache::builder()
        .level_with_ttl(InMemCache::new(), 60)
        .level(store.clone())
        .build()
        .unwrap();
    let chained = cache(3600)
        .key("chained")
        .store(chain)
        .wrap(|()| value())
        .unwrap();
    chained.call(());
    group.bench_function("chain_l1_hit", |b| b.iter(|| chained.call(())));
    group.finish();
    drop(server);
}

criterion_group!(benches, object);
criterion_main!(benches);
