//! Chaos: cached functions over `RedisCache` and a hybrid `ChainCache` (memory in
//! front of Redis) called without pause from OS threads (sync `wrap`) and
//! from tokio tasks (`wrap_async`) while the test SIGKILLs the Redis
//! server and restarts it on the same port, a few times.
//!
//! Every call must return exactly what the function computes, no call may
//! wait much longer than one command timeout (once a store is seen down,
//! calls skip it and one probe at a time finds out when it is back), and
//! the caches must write to Redis again within a few seconds of each
//! restart. The measured figures are printed (`--nocapture` shows them).
#![cfg(feature = "redis")]

mod support;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ac_testkit::RedisServer;
use advanced_caching::{
    AsyncCached, Cached, ChainCache, InMemCache, Plain, RedisCache, Store, cache,
};
use support::CountingMetrics;

/// The cached functions under test, over stores chosen at run time.
type SyncFn = Cached<u64, u64, Plain, dyn Store>;
type AsyncFn = AsyncCached<u64, u64, Plain, dyn Store>;

/// The command timeout of the stores under test.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Sync callers (OS threads) per cache.
const THREADS: usize = 3;
/// Async callers (tokio tasks) per cache.
const TASKS: usize = 6;
/// Kill / restart cycles.
const CYCLES: usize = 3;
/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_millis(1500);
/// Distinct arguments: small enough that entries are hit, large enough
/// that misses (and so writes) keep coming as entries expire.
const ARGS: u64 = 97;

/// What the cached functions compute; every call must return exactly this.
fn expected(x: u64) -> u64 {
    x * 1_000_003 + 17
}

/// What every caller saw.
#[derive(Debug, Default)]
struct Tally {
    calls: AtomicU64,
    /// Calls that panicked or returned another value than `expected`.
    bad: AtomicU64,
    /// The slowest call, in microseconds.
    worst_us: AtomicU64,
    /// The slowest call made while Redis was down or just restarted.
    worst_outage_us: AtomicU64,
    /// Calls that took half the command timeout or more: calls that
    /// waited on a store that was gone.
    slow: AtomicU64,
}

impl Tally {
    fn record(&self, ok: bool, took: Duration, outage: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.bad.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.worst_us.fetch_max(us, Ordering::Relaxed);
        if took >= TIMEOUT / 2 {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        if outage {
            self.worst_outage_us.fetch_max(us, Ordering::Relaxed);
        }
    }
}

fn redis_store(server: &RedisServer, prefix: &str) -> RedisCache {
    RedisCache::builder(server.url())
        .timeout(TIMEOUT)
        .prefix(prefix)
        .build()
        .unwrap()
}

/// Keys under `prefix` in the server (empty right after a restart: the
/// test servers keep nothing on disk).
fn keys_under(server: &RedisServer, prefix: &str) -> usize {
    server
        .cli(&["--scan", "--pattern", &format!("{prefix}*")])
        .lines()
        .filter(|line| !line.is_empty())
        .count()
}

#[test]
fn redis_outages_never_fail_or_stall_a_call_and_writes_resume() {
    let mut server = RedisServer::start();
    let metrics = CountingMetrics::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Set while Redis is down and until writes are seen again.
    let outage = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());

    // Entries live 1 s so misses, and writes, keep coming; the hybrid's
    // memory level keeps them 200 ms, so its calls reach Redis often too.
    let direct_prefix = "chaos:direct:";
    let hybrid_prefix = "chaos:hybrid:";
    let direct = redis_store(&server, direct_prefix);
    let hybrid = ChainCache::hybrid(
        InMemCache::new(),
        redis_store(&server, hybrid_prefix),
        Duration::from_millis(200),
    )
    .unwrap();

    let caches: Vec<(&str, Arc<dyn Store>)> =
        vec![("redis", Arc::new(direct)), ("hybrid", Arc::new(hybrid))];
    let sync_callers: Vec<Arc<SyncFn>> = caches
        .iter()
        .map(|(name, store)| {
            Arc::new(
                cache(1)
                    .key("sync:{}")
                    .name(format!("{name}-sync"))
                    .store(store.clone())
                    .metrics(metrics.clone())
                    .wrap(expected)
                    .unwrap(),
            )
        })
        .collect();
    let async_callers: Vec<Arc<AsyncFn>> = caches
        .iter()
        .map(|(name, store)| {
            Arc::new(
                cache(1)
                    .key("async:{}")
                    .name(format!("{name}-async"))
                    .store(store.clone())
                    .metrics(metrics.clone())
                    .wrap_async(|x: u64| async move { expected(x) })
                    .unwrap(),
            )
        })
        .collect();

    // Sync callers on OS threads.
    let mut threads = Vec::new();
    for (index, cached) in sync_callers
        .iter()
        .flat_map(|c| std::iter::repeat_n(c, THREADS))
        .enumerate()
    {
        let (cached, stop, outage, tally) =
            (cached.clone(), stop.clone(), outage.clone(), tally.clone());
        threads.push(std::thread::spawn(move || {
            let mut x = index as u64;
            while !stop.load(Ordering::Relaxed) {
                x = (x + 7) % ARGS;
                let during = outage.load(Ordering::Relaxed);
                let started = Instant::now();
                let got = std::panic::catch_unwind(AssertUnwindSafe(|| cached.call(x)));
                let took = started.elapsed();
                tally.record(matches!(got, Ok(v) if v == expected(x)), took, during);
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
    }

    // Async callers on a tokio runtime of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for (index, cached) in async_callers
        .iter()
        .flat_map(|c| std::iter::repeat_n(c, TASKS))
        .enumerate()
    {
        let (cached, stop, outage, tally) =
            (cached.clone(), stop.clone(), outage.clone(), tally.clone());
        tasks.push(runtime.spawn(async move {
            let mut x = index as u64;
            while !stop.load(Ordering::Relaxed) {
                x = (x + 5) % ARGS;
                let during = outage.load(Ordering::Relaxed);
                let started = Instant::now();
                let got = cached.call(x).await;
                tally.record(got == expected(x), started.elapsed(), during);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }

    let settle = Duration::from_millis(700);
    std::thread::sleep(settle);
    assert!(
        keys_under(&server, direct_prefix) > 0 && keys_under(&server, hybrid_prefix) > 0,
        "both caches write to Redis before the first outage"
    );
    let mut recoveries = Vec::new();
    for cycle in 0..CYCLES {
        let errors_before = metrics.count("error");
        let slow_before = tally.slow.load(Ordering::Relaxed);
        outage.store(true, Ordering::Relaxed);
        server.stop(); // SIGKILL
        std::thread::sleep(OUTAGE);
        let errors_in_outage = metrics.count("error") - errors_before;
        server.restart();
        let restarted = Instant::now();
        let deadline = restarted + Duration::from_secs(10);
        let (mut direct_back, mut hybrid_back) = (None, None);
        while direct_back.is_none() || hybrid_back.is_none() {
            if direct_back.is_none() && keys_under(&server, direct_prefix) > 0 {
                direct_back = Some(restarted.elapsed());
            }
            if hybrid_back.is_none() && keys_under(&server, hybrid_prefix) > 0 {
                hybrid_back = Some(restarted.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: no writes to Redis 10 s after the restart \
                 (redis: {direct_back:?}, hybrid: {hybrid_back:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        outage.store(false, Ordering::Relaxed);
        let (direct_back, hybrid_back) = (direct_back.unwrap(), hybrid_back.unwrap());
        let slow = tally.slow.load(Ordering::Relaxed) - slow_before;
        eprintln!(
            "chaos cycle {cycle}: {errors_in_outage} store errors counted during the outage, \
             {slow} calls took >= {:?}; first write after restart: redis {direct_back:?}, \
             hybrid {hybrid_back:?}",
            TIMEOUT / 2
        );
        assert!(
            errors_in_outage > 0,
            "cycle {cycle}: the outage was not seen by the caches"
        );
        recoveries.push(direct_back.max(hybrid_back));
        std::thread::sleep(settle);
    }

    stop.store(true, Ordering::Relaxed);
    let mut panicked = 0;
    for thread in threads {
        panicked += usize::from(thread.join().is_err());
    }
    runtime.block_on(async {
        for task in tasks {
            panicked += usize::from(task.await.is_err());
        }
    });

    let calls = tally.calls.load(Ordering::Relaxed);
    let bad = tally.bad.load(Ordering::Relaxed);
    let worst = Duration::from_micros(tally.worst_us.load(Ordering::Relaxed));
    let worst_outage = Duration::from_micros(tally.worst_outage_us.load(Ordering::Relaxed));
    let slowest_recovery = recoveries.iter().max().copied().unwrap_or_default();
    let slow = tally.slow.load(Ordering::Relaxed);
    eprintln!(
        "chaos: {calls} calls from {} threads and {} tasks over {CYCLES} SIGKILL/restart \
         cycles of {OUTAGE:?}; {bad} failed or wrong, {panicked} callers died; worst call \
         {worst:?} (during outages {worst_outage:?}) with a {TIMEOUT:?} command timeout, \
         {slow} calls took >= {:?}; slowest recovery (restart to first write) \
         {slowest_recovery:?}",
        2 * THREADS,
        2 * TASKS,
        TIMEOUT / 2,
    );
    assert_eq!(bad, 0, "every call returns what the function computes");
    assert_eq!(panicked, 0, "no caller died");
    assert!(calls > 1000, "the callers kept calling: {calls}");
    assert!(
        worst < TIMEOUT * 3 / 2,
        "worst call took {worst:?}, over 1.5 x the {TIMEOUT:?} command timeout"
    );
    // At most one timeout per store and outage: the callers in flight
    // when Redis dies do not each wait for it.
    assert!(
        slow <= (2 * CYCLES) as u64,
        "{slow} calls waited >= {:?} over {CYCLES} outages of 2 stores",
        TIMEOUT / 2
    );
    assert!(
        slowest_recovery < Duration::from_secs(4),
        "writes resumed only {slowest_recovery:?} after a restart"
    );
}
