//! Cached functions over S3Cache (a real moto server) and GCSCache (a real
//! fake-gcs-server), both started by the test kit: values are cached in the
//! bucket, and an unreachable endpoint or a corrupt object never fails a
//! call (the function runs, the error is counted).
#![cfg(all(feature = "s3", feature = "gcs"))]

mod support;

use std::time::{Duration, Instant};

use ac_testkit::{GcsServer, S3Server};
use advanced_caching::crates::store_object::Backend;
use advanced_caching::crates::store_object::object_store::path::Path;
use advanced_caching::crates::store_object::object_store::{ObjectStoreExt as _, PutPayload};
use advanced_caching::{GCSCache, ObjectCache, S3Cache, Store, cache};
use support::{Calls, CountingMetrics};

const BUCKET: &str = "facade";

fn s3(endpoint: &str) -> S3Cache {
    S3Cache::builder(BUCKET)
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("test", "test")
        .allow_http(true)
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .retries(0)
        .call_timeout(Duration::from_secs(1))
        .prefix("f/")
        .build()
        .unwrap()
}

fn gcs(base_url: &str) -> GCSCache {
    GCSCache::builder(BUCKET)
        .base_url(base_url)
        .bearer_token("fake")
        .allow_http(true)
        .timeout(Duration::from_millis(300))
        .retries(0)
        .call_timeout(Duration::from_secs(1))
        .prefix("f/")
        .build()
        .unwrap()
}

/// A cached `x * x` over `store`: the first call runs, the second hits,
/// and the object is in the bucket; then a corrupt object under the key
/// is a miss plus an error, and the function runs.
fn caches_and_survives_a_corrupt_object<K: Backend>(store: ObjectCache<K>) {
    let metrics = CountingMetrics::default();
    let calls = Calls::default();
    let counted = calls.clone();
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
    assert_eq!(calls.get(), 1, "the second call is a hit from the bucket");
    assert_eq!(metrics.count("error"), 0);
    // Garbage written over the entry with object_store directly.
    let (raw, path) = (
        store.object_store().clone(),
        Path::parse(store.object_name("sq:3")).unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(raw.put(&path, PutPayload::from_static(b"garbage")))
        .unwrap();
    assert_eq!(square.call(3), 9, "a corrupt object is a miss");
    assert_eq!(calls.get(), 2);
    assert!(
        metrics.count("error/get/corrupt") >= 1,
        "counted as corrupt"
    );
    assert_eq!(square.call(3), 9);
    assert_eq!(
        calls.get(),
        2,
        "the fresh value replaced the corrupt object"
    );
}

#[test]
fn s3_cached_calls_and_a_corrupt_object() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    caches_and_survives_a_corrupt_object(s3(&server.endpoint()));
}

#[test]
fn gcs_cached_calls_and_a_corrupt_object() {
    let server = GcsServer::start();
    server.create_bucket(BUCKET);
    caches_and_survives_a_corrupt_object(gcs(&server.base_url()));
}

#[test]
fn an_unreachable_endpoint_never_fails_a_call_nor_hangs() {
    // Nothing listens here: connections are refused.
    let refused = format!("http://127.0.0.1:{}", ac_testkit::object::unused_port());
    // This one accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let stores: Vec<(&str, std::sync::Arc<dyn Store>)> = vec![
        ("s3 refused", std::sync::Arc::new(s3(&refused))),
        ("s3 silent", std::sync::Arc::new(s3(&silent))),
        ("gcs refused", std::sync::Arc::new(gcs(&refused))),
        ("gcs silent", std::sync::Arc::new(gcs(&silent))),
        // TLS set up (rustls on ring), and no answer to the handshake.
        (
            "s3 https silent",
            std::sync::Arc::new(s3(&silent.replace("http:", "https:"))),
        ),
        (
            "gcs https silent",
            std::sync::Arc::new(gcs(&silent.replace("http:", "https:"))),
        ),
    ];
    for (what, store) in stores {
        let metrics = CountingMetrics::default();
        let calls = Calls::default();
        let counted = calls.clone();
        let square = cache(60)
            .key("sq:{}")
            .store(store)
            .metrics(metrics.clone())
            .wrap(move |x: u64| {
                counted.bump();
                x * x
            })
            .unwrap();
        let started = Instant::now();
        assert_eq!(square.call(3), 9, "{what}");
        assert_eq!(square.call(3), 9, "{what}");
        let elapsed = started.elapsed();
        assert_eq!(calls.get(), 2, "{what}: the function ran each time");
        assert!(metrics.count("error") >= 2, "{what}: errors counted");
        // Two calls, each a read and a write bounded by the 1 s call timeout.
        assert!(elapsed < Duration::from_secs(6), "{what}: took {elapsed:?}");
    }
}
