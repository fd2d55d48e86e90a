//! Cached functions over `rediss://` (feature `redis-tls`): with the
//! server's CA they cache in Redis over TLS; with another CA the store is
//! refused by the handshake and the calls still return the function's
//! values.
#![cfg(feature = "redis-tls")]

mod support;

use std::time::Duration;

use ac_testkit::{RedisServer, TestCa};
use advanced_caching::{RedisCache, cache};
use support::{Calls, CountingMetrics};

#[test]
fn cached_calls_over_tls_and_a_refused_certificate_never_fail_a_call() {
    let ca = TestCa::new("ac-testkit CA");
    let server = RedisServer::start_tls(&ca, &[]);

    let calls = Calls::default();
    let counted = calls.clone();
    let trusted = RedisCache::builder(server.url())
        .tls_root_certificates_pem(ca.cert_pem())
        .prefix("tls:")
        .build()
        .unwrap();
    let square = cache(60)
        .key("sq:{}")
        .store(trusted)
        .wrap(move |x: u64| {
            counted.bump();
            x * x
        })
        .unwrap();
    assert_eq!(square.call(9), 81);
    assert_eq!(square.call(9), 81);
    assert_eq!(calls.get(), 1, "cached");
    assert!(server.cli(&["get", "tls:sq:9"]).contains("81"), "in Redis");

    let other = TestCa::new("ac-testkit other CA");
    let metrics = CountingMetrics::default();
    let calls = Calls::default();
    let counted = calls.clone();
    let untrusted = RedisCache::builder(server.url())
        .tls_root_certificates_pem(other.cert_pem())
        .connect_timeout(Duration::from_millis(500))
        .prefix("wrong:")
        .build()
        .unwrap();
    let cube = cache(60)
        .key("cube:{}")
        .store(untrusted)
        .metrics(metrics.clone())
        .wrap(move |x: u64| {
            counted.bump();
            x * x * x
        })
        .unwrap();
    assert_eq!(cube.call(3), 27);
    assert_eq!(cube.call(3), 27);
    assert_eq!(
        calls.get(),
        2,
        "nothing cached without a trusted connection"
    );
    assert!(metrics.count("error") >= 2, "the store errors are counted");
    assert_eq!(
        server.cli(&["keys", "wrong:*"]).trim(),
        "",
        "nothing reached Redis"
    );
}
