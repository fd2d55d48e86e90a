//! RedisCache against a real `redis-server` and a real 3-node Redis Cluster,
//! both started by these tests on free loopback ports.

use std::sync::Arc;
use std::time::Duration;

use ac_core::conformance::{Harness, run_all};
use ac_core::{Entry, Error, Store, TypedDecoder, Value, block_on};
use ac_store_redis::RedisCache;
use ac_testkit::{RedisCluster, RedisServer};

const T: f64 = 1_700_000_000.0;

fn entry<V: ac_core::SerdeValue>(value: V) -> Entry {
    Entry::new(Value::new(value), T + 60.0, T)
}

fn get_u32(store: &dyn Store, key: &str) -> Result<Option<u32>, Error> {
    let found = block_on(store.get(key, &TypedDecoder::<u32>::new()))?;
    Ok(found.map(|e| *e.value.downcast_ref::<u32>().expect("a u32")))
}

#[test]
fn conformance_single_node() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("conf:")
        .build()
        .unwrap();
    let sibling = RedisCache::builder(server.url())
        .prefix("conf-sibling:")
        .build()
        .unwrap();
    run_all(&Harness {
        store: &store,
        advance: None,
        sibling: Some(&sibling),
    });
}

#[test]
fn cluster_conformance_spread_and_scoped_clear() {
    let cluster = RedisCluster::start();
    let store = RedisCache::builder(cluster.url())
        .prefix("conf:")
        .build()
        .unwrap();
    let sibling = RedisCache::builder(cluster.url())
        .prefix("other:")
        .build()
        .unwrap();
    run_all(&Harness {
        store: &store,
        advance: None,
        sibling: Some(&sibling),
    });

    // Keys land on every primary, batches cross slots, clear reaches all
    // primaries and spares the sibling prefix everywhere.
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    let entries = keys.iter().map(|k| (k.as_str(), entry(7u32))).collect();
    block_on(store.set_many(entries, Some(Duration::from_secs(60)))).unwrap();
    let others = keys.iter().map(|k| (k.as_str(), entry(8u32))).collect();
    block_on(sibling.set_many(others, Some(Duration::from_secs(60)))).unwrap();
    let counts = cluster.key_counts();
    assert!(
        counts.iter().all(|&n| n > 50),
        "keys spread over primaries: {counts:?}"
    );
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = block_on(store.get_many(&refs, &TypedDecoder::<u32>::new())).unwrap();
    assert_eq!(got.len(), 300);
    assert!(
        got.iter()
            .all(|e| e.as_ref().and_then(|e| e.value.downcast_ref::<u32>()) == Some(&7))
    );

    block_on(store.clear()).unwrap();
    assert_eq!(
        cluster.key_counts().iter().sum::<u64>(),
        300,
        "only the sibling's keys remain"
    );
    assert_eq!(get_u32(&sibling, "k299").unwrap(), Some(8));
    assert_eq!(get_u32(&store, "k299").unwrap(), None);
}

#[test]
fn every_write_has_a_real_expiry_covering_the_ttl() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("p:")
        .build()
        .unwrap();
    block_on(store.set("a", entry(1u32), Some(Duration::from_secs(90)))).unwrap();
    let ttl = server.pttl("p:a");
    assert!((89_000..=90_000).contains(&ttl), "PTTL {ttl}");

    assert!(
        block_on(store.set_if_absent("lock", entry(1u32), Some(Duration::from_millis(1500))))
            .unwrap()
    );
    let ttl = server.pttl("p:lock");
    assert!((1..=1500).contains(&ttl), "SET NX carries PX: {ttl}");
    assert!(
        !block_on(store.set_if_absent("lock", entry(2u32), Some(Duration::from_secs(5)))).unwrap()
    );

    // Sub-millisecond TTLs round up, never to "no expiry".
    block_on(store.set("tiny", entry(1u32), Some(Duration::from_micros(10)))).unwrap();
    assert_ne!(server.pttl("p:tiny"), -1);

    block_on(store.set("forever", entry(1u32), None)).unwrap();
    assert_eq!(server.pttl("p:forever"), -1, "only ttl None has no expiry");

    let many = vec![("m1", entry(1u32)), ("m2", entry(2u32))];
    block_on(store.set_many(many, Some(Duration::from_secs(30)))).unwrap();
    let ttl = server.pttl("p:m2");
    assert!(
        (29_000..=30_000).contains(&ttl),
        "batch writes expire too: {ttl}"
    );
}

#[test]
fn clear_without_prefix_refuses_and_prefix_globs_are_literal() {
    let server = RedisServer::start();
    let bare = RedisCache::builder(server.url()).build().unwrap();
    block_on(bare.set("keep", entry(1u32), None)).unwrap();
    let err = block_on(bare.clear()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("prefix"), "{err}");
    assert_eq!(get_u32(&bare, "keep").unwrap(), Some(1), "nothing deleted");

    // A prefix with glob characters matches itself only.
    let star = RedisCache::builder(server.url())
        .prefix("a*")
        .build()
        .unwrap();
    let plain = RedisCache::builder(server.url())
        .prefix("ab")
        .build()
        .unwrap();
    block_on(star.set("x", entry(1u32), None)).unwrap();
    block_on(plain.set("x", entry(2u32), None)).unwrap();
    block_on(star.clear()).unwrap();
    assert_eq!(get_u32(&star, "x").unwrap(), None);
    assert_eq!(get_u32(&plain, "x").unwrap(), Some(2));
}

#[test]
fn corrupt_and_foreign_bytes_are_errors_not_panics() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("p:")
        .build()
        .unwrap();
    server.cli(&["set", "p:garbage", "xyz"]);
    let err = get_u32(&store, "garbage").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");

    // Another serializer's bytes: a serializer error naming the format.
    let msgpack = RedisCache::builder(server.url())
        .prefix("p:")
        .serializer(ac_serde::MsgPack)
        .build()
        .unwrap();
    block_on(msgpack.set("mp", entry(vec![1u8, 2, 3]), None)).unwrap();
    let err = block_on(store.get("mp", &TypedDecoder::<String>::new())).unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err}");
}

#[test]
fn dedupe_writes_only_extends_expiry_for_same_bytes() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("d:")
        .dedupe_writes(true)
        .build()
        .unwrap();
    let calls = |command: &str| server.command_calls(command);
    block_on(store.set("k", entry(1u32), Some(Duration::from_secs(10)))).unwrap();
    // Same value, new timestamps (as every policy write has): only the
    // 16-byte header is rewritten and the expiry renewed.
    let refreshed = Entry::new(Value::new(1u32), T + 500.0, T + 100.0);
    block_on(store.set("k", refreshed, Some(Duration::from_secs(50)))).unwrap();
    assert_eq!(calls("set"), 1, "an unchanged value is not written again");
    assert_eq!((calls("setrange"), calls("pexpire")), (1, 1));
    assert!(server.pttl("d:k") > 40_000, "expiry extended");
    let read = block_on(store.get("k", &TypedDecoder::<u32>::new()))
        .unwrap()
        .unwrap();
    assert_eq!((read.fresh_until, read.created_at), (T + 500.0, T + 100.0));
    block_on(store.set("k", entry(2u32), Some(Duration::from_secs(50)))).unwrap();
    assert_eq!(calls("set"), 2, "different bytes are written");
    assert_eq!(get_u32(&store, "k").unwrap(), Some(2));
}

#[test]
fn passwords_never_show_in_debug_or_errors() {
    let server = RedisServer::start_with(&["--requirepass", "s3cr3t-pw"]);
    let url = format!("redis://:s3cr3t-pw@127.0.0.1:{}", server.port());
    let store = RedisCache::builder(&url).prefix("p:").build().unwrap();
    block_on(store.set("k", entry(5u32), None)).unwrap();
    assert_eq!(get_u32(&store, "k").unwrap(), Some(5));
    let debug = format!("{store:?} {:?}", RedisCache::builder(url.as_str()));
    assert!(!debug.contains("s3cr3t-pw"), "{debug}");

    // Wrong password: construction still succeeds (an outage is not a
    // misconfiguration we can tell at build time), commands are errors
    // that do not echo the password.
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}", server.port());
    let store = RedisCache::builder(wrong)
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = get_u32(&store, "k").unwrap_err();
    assert!(!err.to_string().contains("wrong-pw"), "{err}");
}

#[test]
fn works_from_plain_threads_and_inside_tokio_runtimes() {
    let server = RedisServer::start();
    let store = Arc::new(
        RedisCache::builder(server.url())
            .prefix("rt:")
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                block_on(store.set(&format!("t{i}"), entry(i), None)).unwrap();
                get_u32(&*store, &format!("t{i}")).unwrap()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), Some(i as u32));
    }
    // Blocking on the store from inside a current-thread runtime must not
    // panic ("cannot start a runtime from within a runtime") nor deadlock.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = rt.block_on(async {
        let store = RedisCache::builder(server.url())
            .prefix("rt:")
            .build()
            .unwrap();
        block_on(store.set("in", entry(9u32), None)).unwrap();
        let sync = get_u32(&store, "in").unwrap();
        let awaited = store.get("in", &TypedDecoder::<u32>::new()).await.unwrap();
        (
            sync,
            awaited.map(|e| *e.value.downcast_ref::<u32>().unwrap()),
        )
    });
    assert_eq!(inside, (Some(9), Some(9)));
}

#[test]
fn outage_fails_fast_and_the_store_recovers() {
    const POOL: usize = 3;
    let mut server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("o:")
        .pool_size(POOL)
        .build()
        .unwrap();
    block_on(store.set("k", entry(1u32), None)).unwrap();
    server.stop();
    let started = std::time::Instant::now();
    let err = get_u32(&store, "k").unwrap_err();
    assert!(matches!(err, Error::Store { store: "redis", .. }), "{err}");
    assert!(block_on(store.set("k", entry(2u32), None)).is_err());
    assert!(block_on(store.clear()).is_err(), "clear fails fast too");
    let many = vec![("a", entry(1u32)), ("b", entry(2u32))];
    assert!(block_on(store.set_many(many, None)).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "outage errors come within the command timeout, took {:?}",
        started.elapsed()
    );
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match block_on(store.set("k", entry(3u32), None)) {
            Ok(()) => break,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "never reconnected: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every connection of the pool is used in turn: all must work.
    for _ in 0..2 * POOL {
        assert_eq!(get_u32(&store, "k").unwrap(), Some(3));
    }
}

#[test]
fn unix_socket_urls_work() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let socket = socket.to_str().unwrap();
    let _server = RedisServer::start_with(&["--unixsocket", socket, "--unixsocketperm", "700"]);
    let store = RedisCache::builder(format!("redis+unix://{socket}"))
        .prefix("u:")
        .build()
        .unwrap();
    block_on(store.set("k", entry(11u32), None)).unwrap();
    assert_eq!(get_u32(&store, "k").unwrap(), Some(11));
}

#[test]
fn a_hung_server_costs_one_timeout_then_calls_skip_it_until_it_answers() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    const THREADS: usize = 8;
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .timeout(TIMEOUT)
        .prefix("hung:")
        .build()
        .unwrap();
    block_on(store.set("k", entry(1u32), None)).unwrap();
    // SIGSTOP: connections stay open and nothing answers, so only the
    // command timeout can tell; every caller used to wait it on every call.
    server.pause();
    let started = std::time::Instant::now();
    let latencies: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let callers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut took = Vec::new();
                    while started.elapsed() < Duration::from_millis(1200) {
                        let call = std::time::Instant::now();
                        assert!(
                            get_u32(&store, "k").is_err(),
                            "no answer from a hung server"
                        );
                        took.push(call.elapsed());
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    took
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let all: Vec<Duration> = latencies.into_iter().flatten().collect();
    let slow = all.iter().filter(|took| **took >= TIMEOUT / 2).count();
    let worst = all.iter().max().copied().unwrap_or_default();
    assert!(
        slow <= THREADS,
        "{slow} of {} calls waited >= {:?}: only the calls in flight when the server \
         was first seen hung may wait for the timeout",
        all.len(),
        TIMEOUT / 2
    );
    assert!(
        worst < TIMEOUT * 3 / 2,
        "worst call {worst:?} with a {TIMEOUT:?} timeout"
    );

    server.resume();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match get_u32(&store, "k") {
            Ok(found) => {
                assert_eq!(found, Some(1));
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "a probe never found the server back: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_fred_escape_hatch_reaches_fred_s_builder() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("hatch:")
        .fred_escape_hatch(|fred| {
            fred.with_config(|config| config.database = Some(3));
        })
        .build()
        .unwrap();
    block_on(store.set("k", entry(5u32), None)).unwrap();
    assert_eq!(get_u32(&store, "k").unwrap(), Some(5));
    assert_eq!(
        server.cli(&["-n", "3", "exists", "hatch:k"]).trim(),
        "1",
        "written in database 3, as the hatch set"
    );
    assert_eq!(server.cli(&["-n", "0", "exists", "hatch:k"]).trim(), "0");
    let debug = format!(
        "{:?}",
        RedisCache::builder("redis://h").fred_escape_hatch(|_| {})
    );
    assert!(debug.contains("fred_escape_hatch: true"), "{debug}");
}
