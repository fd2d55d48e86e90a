//! ChainCache (and its hybrid form) over real stores: InMemCache, LocalFileCache
//! and a real `redis-server` started by the test.

use std::sync::Arc;
use std::time::Duration;

use ac_core::ManualClock;
use ac_core::conformance::{Harness, run_all};
use ac_core::{ChainCache, Entry, Error, Local, Store, TypedDecoder, Value, block_on};
use ac_store_file::LocalFileCache;
use ac_store_mem::InMemCache;
use ac_store_redis::RedisCache;
use ac_testkit::RedisServer;

const T0: f64 = 1_700_000_000.0;
const SECS: fn(u64) -> Duration = Duration::from_secs;

fn mem(clock: &ManualClock) -> InMemCache {
    InMemCache::builder().clock(clock.clone()).build().unwrap()
}

fn redis(server: &RedisServer, prefix: &str) -> RedisCache {
    RedisCache::builder(server.url())
        .prefix(prefix)
        .build()
        .unwrap()
}

fn entry(value: u32, fresh_until: f64) -> Entry {
    Entry::new(Value::new(value), fresh_until, T0)
}

fn get(store: &dyn Store, key: &str) -> Option<u32> {
    block_on(store.get(key, &TypedDecoder::<u32>::new()))
        .unwrap()
        .map(|e| *e.value.downcast_ref::<u32>().unwrap())
}

fn local(store: &dyn Store, key: &str) -> Local {
    store.get_local(key, &mut |_| {})
}

/// The conformance suite on `store`, with `sibling` on other prefixes.
fn conform(store: impl Store, sibling: impl Store) {
    run_all(&Harness {
        store: &store,
        advance: None,
        sibling: Some(&sibling),
    });
}

#[test]
fn conformance_chain_hybrid_and_three_levels() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    let chain = |prefix: &str| {
        ChainCache::builder()
            .level_with_ttl(mem(&clock), SECS(60))
            .level(redis(&server, prefix))
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    conform(chain("c:"), chain("c-sibling:"));

    let hybrid = |prefix: &str| {
        // ChainCache::hybrid's levels, on the test clock.
        ChainCache::builder()
            .level_with_ttl(mem(&clock), SECS(30))
            .level_with_ttl(redis(&server, prefix), SECS(60))
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    conform(hybrid("h:"), hybrid("h-sibling:"));

    let three = |sub: &str, prefix: &str| {
        let files = LocalFileCache::builder(dir.path().join(sub))
            .clock(clock.clone())
            .build()
            .unwrap();
        ChainCache::builder()
            .level(mem(&clock))
            .level(files)
            .level(redis(&server, prefix))
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    conform(three("a", "3:"), three("b", "3-sibling:"));
}

#[test]
fn l1_hits_never_touch_l2_and_l2_hits_backfill_for_the_smaller_ttl() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let l1 = Arc::new(mem(&clock));
    let l2 = Arc::new(redis(&server, "b:"));
    let chain = ChainCache::builder()
        .level_with_ttl(l1.clone(), SECS(10))
        .level(l2.clone())
        .clock(clock.clone())
        .build()
        .unwrap();

    // Fresh for 100 s in L2 only: the read backfills L1 for 10 s (level TTL).
    block_on(l2.set("long", entry(1, T0 + 100.0), Some(SECS(100)))).unwrap();
    assert_eq!(get(&chain, "long"), Some(1));
    let gets = server.command_calls("get");
    for _ in 0..100 {
        assert_eq!(get(&chain, "long"), Some(1));
        assert_eq!(local(&chain, "long"), Local::Found);
    }
    assert_eq!(
        server.command_calls("get"),
        gets,
        "L1 hits never reach Redis"
    );
    clock.advance(9.0);
    assert_eq!(local(&*l1, "long"), Local::Found);
    clock.advance(2.0);
    assert_eq!(
        local(&*l1, "long"),
        Local::Missing,
        "gone from L1 after its level TTL"
    );
    assert_eq!(
        local(&chain, "long"),
        Local::Unsupported,
        "an L1 miss asks the slower levels"
    );

    // Fresh for 5 more seconds: backfilled for 5 s, not 10.
    let now = T0 + 11.0;
    block_on(l2.set("short", entry(2, now + 5.0), Some(SECS(100)))).unwrap();
    assert_eq!(get(&chain, "short"), Some(2));
    clock.advance(4.0);
    assert_eq!(local(&*l1, "short"), Local::Found);
    clock.advance(2.0);
    assert_eq!(
        local(&*l1, "short"),
        Local::Missing,
        "backfill bounded by freshness"
    );

    // A stale L2 entry is returned (for stale-while-revalidate) but not
    // backfilled.
    let now = T0 + 17.0;
    block_on(l2.set("stale", entry(3, now - 1.0), Some(SECS(100)))).unwrap();
    assert_eq!(get(&chain, "stale"), Some(3));
    assert_eq!(local(&*l1, "stale"), Local::Missing);

    // Stale in L1, fresh in L2 (another process refreshed it): L2 wins.
    block_on(l1.set("moved", entry(4, now - 1.0), Some(SECS(100)))).unwrap();
    block_on(l2.set("moved", entry(5, now + 50.0), Some(SECS(100)))).unwrap();
    assert_eq!(
        local(&chain, "moved"),
        Local::Unsupported,
        "a stale L1 entry is not served by the fast path"
    );
    assert_eq!(get(&chain, "moved"), Some(5));
}

#[test]
fn writes_deletes_and_clears_reach_every_level_with_level_ttls() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let l1 = Arc::new(mem(&clock));
    let l2 = Arc::new(redis(&server, "w:"));
    let chain = ChainCache::builder()
        .level_with_ttl(l1.clone(), 10)
        .level_with_ttl(l2.clone(), 40.0)
        .clock(clock.clone())
        .build()
        .unwrap();

    block_on(chain.set("k", entry(1, T0 + 300.0), Some(SECS(300)))).unwrap();
    assert_eq!(get(&*l1, "k"), Some(1));
    assert_eq!(get(&*l2, "k"), Some(1));
    let pttl = server.pttl("w:k");
    assert!(
        (39_000..=40_000).contains(&pttl),
        "L2 kept its level TTL: {pttl}"
    );
    clock.advance(11.0);
    assert_eq!(local(&*l1, "k"), Local::Missing, "L1 kept its level TTL");

    block_on(chain.set("short", entry(2, T0 + 5.0), Some(SECS(5)))).unwrap();
    let pttl = server.pttl("w:short");
    assert!(
        (1..=5_000).contains(&pttl),
        "the caller's shorter TTL wins: {pttl}"
    );

    block_on(chain.set("gone", entry(3, f64::INFINITY), None)).unwrap();
    block_on(chain.delete("gone")).unwrap();
    assert_eq!((get(&*l1, "gone"), get(&*l2, "gone")), (None, None));

    block_on(chain.set("c", entry(4, f64::INFINITY), None)).unwrap();
    block_on(chain.clear()).unwrap();
    assert_eq!((get(&*l1, "c"), get(&*l2, "c")), (None, None));

    // set_if_absent: the shared level decides, even if L1 is empty.
    block_on(l2.set("lock", entry(5, f64::INFINITY), Some(SECS(60)))).unwrap();
    assert!(
        !block_on(chain.set_if_absent("lock", entry(6, f64::INFINITY), Some(SECS(60)))).unwrap()
    );
    assert_eq!(local(&*l1, "lock"), Local::Missing);
    assert!(
        block_on(chain.set_if_absent("free", entry(7, f64::INFINITY), Some(SECS(60)))).unwrap()
    );
    assert_eq!(get(&*l1, "free"), Some(7), "the winner's value reaches L1");
}

#[test]
fn a_down_level_is_skipped_and_reported() {
    let mut server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let l1 = Arc::new(mem(&clock));
    let chain = ChainCache::builder()
        .level_with_ttl(l1.clone(), 30)
        .level_with_ttl(redis(&server, "x:"), 60)
        .clock(clock.clone())
        .build()
        .unwrap();
    block_on(chain.set("k", entry(1, T0 + 60.0), Some(SECS(60)))).unwrap();
    server.stop();
    assert_eq!(get(&chain, "k"), Some(1), "L1 answers without L2");
    let err = block_on(chain.set("k2", entry(2, T0 + 60.0), Some(SECS(60)))).unwrap_err();
    assert!(matches!(err, Error::Store { store: "redis", .. }), "{err}");
    assert_eq!(
        get(&*l1, "k2"),
        Some(2),
        "the other levels are still written"
    );
    let err = block_on(chain.get("absent", &TypedDecoder::<u32>::new())).unwrap_err();
    assert!(
        matches!(err, Error::Store { .. }),
        "a miss everywhere reports the failure: {err}"
    );
}

#[test]
fn misconfigured_chains_are_refused() {
    let clock = ManualClock::new(T0);
    let err = ChainCache::builder().build().unwrap_err();
    assert!(err.to_string().contains("at least one level"), "{err}");
    let err = ChainCache::hybrid(mem(&clock), mem(&clock), Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("level 1 is zero"), "{err}");
    for bad in [-1.0, f64::NAN] {
        let err = ChainCache::builder()
            .level(mem(&clock))
            .level_with_ttl(mem(&clock), bad)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("level 2"), "{err}");
    }
    // Infinity is the caller's TTL, and the hybrid L2 keeps twice L1's.
    let chain = ChainCache::builder()
        .level_with_ttl(mem(&clock), f64::INFINITY)
        .build()
        .unwrap();
    assert_eq!(
        chain.levels().map(|(_, ttl)| ttl).collect::<Vec<_>>(),
        [None]
    );
    let hybrid = ChainCache::hybrid(mem(&clock), mem(&clock), 30).unwrap();
    assert_eq!(
        hybrid.levels().map(|(_, ttl)| ttl).collect::<Vec<_>>(),
        [Some(SECS(30)), Some(SECS(60))]
    );
}

/// The values `get_many` on `store` finds for `keys`.
fn get_many(store: &dyn Store, keys: &[&str]) -> Vec<Option<u32>> {
    block_on(store.get_many(keys, &TypedDecoder::<u32>::new()))
        .unwrap()
        .into_iter()
        .map(|e| e.map(|e| *e.value.downcast_ref::<u32>().unwrap()))
        .collect()
}

#[test]
fn a_chain_s_batches_reach_the_redis_level_as_batches() {
    let server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let l1 = Arc::new(mem(&clock));
    let l2 = Arc::new(redis(&server, "b:"));
    let chain = ChainCache::builder()
        .level(l1.clone())
        .level(l2.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();
    // Half the keys only in Redis, a quarter in both, the rest nowhere.
    let in_redis: Vec<(&str, Entry)> = keys[..30]
        .iter()
        .zip(0u32..)
        .map(|(key, i)| (*key, entry(i, T0 + 60.0)))
        .collect();
    block_on(l2.set_many(in_redis, Some(SECS(60)))).unwrap();
    for (i, key) in keys[20..30].iter().enumerate() {
        block_on(l1.set(key, entry(20 + i as u32, T0 + 60.0), Some(SECS(60)))).unwrap();
    }
    let (mgets, gets) = (server.command_calls("mget"), server.command_calls("get"));
    let found = get_many(&chain, &keys);
    let expected: Vec<Option<u32>> = (0..40).map(|i| (i < 30).then_some(i)).collect();
    assert_eq!(found, expected);
    assert_eq!(
        (
            server.command_calls("mget") - mgets,
            server.command_calls("get") - gets
        ),
        (1, 0),
        "one MGET for the keys L1 did not have, no single GETs"
    );
    // The Redis hits were backfilled: now L1 answers, except the misses.
    for key in &keys[..20] {
        assert_eq!(local(&*l1, key), Local::Found, "{key} backfilled");
    }
    let found = get_many(&chain, &keys[..30]);
    assert_eq!(found, expected[..30]);
    assert_eq!(
        server.command_calls("mget") - mgets,
        1,
        "all in L1: Redis not asked"
    );

    // Writes: one batch into each level, each with its TTL.
    let sets = server.command_calls("set");
    let batch: Vec<(&str, Entry)> = ["w1", "w2", "w3"]
        .into_iter()
        .zip(0u32..)
        .map(|(key, i)| (key, entry(100 + i, T0 + 60.0)))
        .collect();
    block_on(chain.set_many(batch, Some(SECS(60)))).unwrap();
    assert_eq!(server.command_calls("set") - sets, 3);
    assert!((1..=60_000).contains(&server.pttl("b:w2")));
    assert_eq!(local(&*l1, "w3"), Local::Found);
    assert_eq!(get(&*l2, "w1"), Some(100));
}

#[test]
fn a_chain_s_get_many_skips_a_down_level_and_fails_only_for_unanswered_keys() {
    let mut server = RedisServer::start();
    let clock = ManualClock::new(T0);
    let l1 = Arc::new(mem(&clock));
    let chain = ChainCache::builder()
        .level(l1.clone())
        .level(redis(&server, "d:"))
        .clock(clock.clone())
        .build()
        .unwrap();
    block_on(chain.set("a", entry(1, T0 + 60.0), Some(SECS(60)))).unwrap();
    block_on(chain.set("b", entry(2, T0 + 60.0), Some(SECS(60)))).unwrap();
    server.stop();
    assert_eq!(
        get_many(&chain, &["a", "b"]),
        vec![Some(1), Some(2)],
        "L1 answers without L2"
    );
    let error = block_on(chain.get_many(&["a", "missing"], &TypedDecoder::<u32>::new()))
        .expect_err("L2 might have held `missing`: its failure is the answer");
    assert!(error.is_transient(), "{error}");
}
