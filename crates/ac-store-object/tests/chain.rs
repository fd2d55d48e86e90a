//! The seed's three tiers: ChainCache(InMemCache -> RedisCache -> S3Cache)
//! over a real `redis-server` and a real moto server, both started here.
#![cfg(feature = "s3")]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use ac_core::conformance::{Harness, run_all};
use ac_core::{ChainCache, Entry, Local, Store, TypedDecoder, Value, block_on};
use ac_sched::ManualClock;
use ac_store_mem::InMemCache;
use ac_store_object::S3Cache;
use ac_store_redis::RedisCache;
use ac_testkit::{RedisServer, S3Server};

const T0: f64 = 1_700_000_000.0;
const BUCKET: &str = "tiers";

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

struct Tiers {
    redis: RedisServer,
    s3: S3Server,
    clock: ManualClock,
}

impl Tiers {
    fn start() -> Self {
        let s3 = S3Server::start();
        s3.create_bucket(BUCKET);
        Self {
            redis: RedisServer::start(),
            s3,
            clock: ManualClock::new(T0),
        }
    }

    fn l1(&self) -> InMemCache {
        InMemCache::builder()
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    fn l2(&self, prefix: &str) -> RedisCache {
        RedisCache::builder(self.redis.url())
            .prefix(prefix)
            .build()
            .unwrap()
    }

    fn l3(&self, prefix: &str) -> S3Cache {
        S3Cache::builder(BUCKET)
            .endpoint(self.s3.endpoint())
            .region("us-east-1")
            .credentials("test", "test")
            .allow_http(true)
            .timeout(Duration::from_millis(500))
            .call_timeout(Duration::from_secs(1))
            .prefix(prefix)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    /// L1 60 s, L2 1 h, L3 1 day, as in the seed's example.
    fn chain(&self, l1: InMemCache, prefix: &str) -> ChainCache {
        ChainCache::builder()
            .level_with_ttl(l1, 60)
            .level_with_ttl(self.l2(&format!("{prefix}:")), 3600)
            .level_with_ttl(self.l3(&format!("{prefix}/")), 86_400)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }
}

fn entry(value: u32, fresh_until: f64) -> Entry {
    Entry::new(Value::new(value), fresh_until, T0)
}

fn get(store: &dyn Store, key: &str) -> Option<u32> {
    block_on(store.get(key, &TypedDecoder::<u32>::new()))
        .unwrap()
        .map(|e| *e.value.downcast_ref::<u32>().unwrap())
}

#[test]
fn three_tier_chain_passes_the_conformance_suite() {
    let tiers = Tiers::start();
    let store = tiers.chain(tiers.l1(), "conf");
    let sibling = tiers.chain(tiers.l1(), "conf-sibling");
    run_all(&Harness {
        store: &store,
        // Redis expires by its own clock.
        advance: None,
        sibling: Some(&sibling),
    });
}

#[test]
fn an_s3_hit_backfills_the_faster_tiers_and_l1_hits_need_no_s3() {
    let tiers = Tiers::start();
    let l3 = tiers.l3("b/");
    let chain = tiers.chain(tiers.l1(), "b");
    block_on(l3.set("k", entry(1, T0 + 600.0), secs(86_400))).unwrap();
    assert_eq!(get(&chain, "k"), Some(1), "found in S3");
    assert_eq!(get(&tiers.l2("b:"), "k"), Some(1), "backfilled into Redis");
    assert_eq!(chain.get_local("k", &mut |_| {}), Local::Found, "and L1");
    // With S3 frozen, L1 still answers at once.
    tiers.s3.pause();
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(get(&chain, "k"), Some(1));
    }
    let elapsed = started.elapsed();
    tiers.s3.resume();
    assert!(
        elapsed < Duration::from_millis(500),
        "L1 hits waited on S3: {elapsed:?}"
    );
}

#[test]
fn sixteen_processes_racing_set_if_absent_through_chains_have_one_winner() {
    let tiers = Tiers::start();
    // Each racer is a process of its own: its own L1 and clients.
    let chains: Vec<ChainCache> = (0..16).map(|_| tiers.chain(tiers.l1(), "race")).collect();
    for round in 0..3 {
        let key = format!("lock:{round}");
        let barrier = Barrier::new(chains.len());
        let wins: usize = std::thread::scope(|s| {
            let racers: Vec<_> = chains
                .iter()
                .enumerate()
                .map(|(i, chain)| {
                    let (barrier, key) = (&barrier, &key);
                    s.spawn(move || {
                        barrier.wait();
                        let won = block_on(chain.set_if_absent(
                            key,
                            entry(i as u32, T0 + 60.0),
                            secs(60),
                        ))
                        .unwrap();
                        usize::from(won)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}
