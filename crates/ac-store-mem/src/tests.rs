use std::sync::Barrier;
use std::thread;

use ac_core::ManualClock;
use ac_core::{Value, block_on};

use super::*;

const T0: f64 = 1_000_000.0;

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn entry<T: ac_core::SerdeValue>(value: T) -> Entry {
    Entry::new(Value::new(value), f64::INFINITY, T0)
}

fn get<T: ac_core::SerdeValue>(cache: &InMemCache, key: &str) -> Option<T> {
    let mut out = None;
    cache.get_local(key, &mut |e| out = e.value.downcast_ref::<T>().cloned());
    out
}

/// Checks the map, the slab and the totals against each other.
fn check(cache: &InMemCache) {
    let state = cache.lock();
    let map = cache.inner.map.pin();
    state.check(&map);
    assert_eq!(cache.len(), state.count);
    assert_eq!(cache.usage().unwrap().bytes, state.bytes);
}

fn manual() -> (InMemCache, ManualClock) {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    (cache, clock)
}

#[test]
fn entries_live_through_their_ttl_inclusive_and_vanish_after() {
    let (cache, clock) = manual();
    block_on(cache.set("k", entry(1u32), secs(10))).unwrap();
    clock.advance(10.0);
    assert_eq!(get::<u32>(&cache, "k"), Some(1), "alive exactly at ttl");
    clock.advance(0.001);
    assert_eq!(get::<u32>(&cache, "k"), None, "gone after ttl");
    let decoder = ac_core::TypedDecoder::<u32>::new();
    assert!(block_on(cache.get("k", &decoder)).unwrap().is_none());
}

#[test]
fn no_ttl_keeps_entries_until_deleted() {
    let (cache, clock) = manual();
    block_on(cache.set("k", entry("v".to_string()), None)).unwrap();
    clock.advance(1e9);
    assert_eq!(get::<String>(&cache, "k").as_deref(), Some("v"));
    block_on(cache.delete("k")).unwrap();
    assert_eq!(get::<String>(&cache, "k"), None);
}

#[test]
fn one_store_holds_values_of_different_types() {
    let cache = InMemCache::new();
    block_on(cache.set("a", entry(7u64), None)).unwrap();
    block_on(cache.set("b", entry(Some("x".to_string())), None)).unwrap();
    block_on(cache.set("c", entry(()), None)).unwrap();
    assert_eq!(get::<u64>(&cache, "a"), Some(7));
    assert_eq!(get::<Option<String>>(&cache, "b"), Some(Some("x".into())));
    assert_eq!(get::<()>(&cache, "c"), Some(()));
    assert_eq!(
        get::<String>(&cache, "a"),
        None,
        "wrong type is not a value"
    );
}

#[test]
fn set_if_absent_respects_live_entries_only() {
    let (cache, clock) = manual();
    assert!(block_on(cache.set_if_absent("lock", entry(1u8), secs(5))).unwrap());
    assert!(!block_on(cache.set_if_absent("lock", entry(2u8), secs(5))).unwrap());
    assert_eq!(get::<u8>(&cache, "lock"), Some(1));
    clock.advance(5.5);
    assert!(block_on(cache.set_if_absent("lock", entry(3u8), secs(5))).unwrap());
    assert_eq!(get::<u8>(&cache, "lock"), Some(3));
}

#[test]
fn concurrent_set_if_absent_has_exactly_one_winner() {
    let cache = InMemCache::new();
    for round in 0..20 {
        let key = format!("lock:{round}");
        let barrier = Barrier::new(8);
        let wins: usize = thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|i| {
                    let (cache, barrier, key) = (&cache, &barrier, &key);
                    s.spawn(move || {
                        barrier.wait();
                        block_on(cache.set_if_absent(key, entry(i), secs(60))).unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn clear_empties_and_resets_usage() {
    let cache = InMemCache::new();
    for i in 0..100 {
        block_on(cache.set(&format!("k{i}"), entry(i), None)).unwrap();
    }
    let usage = cache.usage().unwrap();
    assert_eq!(usage.entries, 100);
    assert!(usage.bytes >= 100 * size_of::<Record>() as u64, "{usage:?}");
    check(&cache);
    block_on(cache.clear()).unwrap();
    assert!(cache.is_empty());
    assert_eq!(
        cache.usage().unwrap(),
        Usage {
            bytes: 0,
            entries: 0
        }
    );
}

#[test]
fn weigher_bounds_total_weight_and_refuses_oversized_entries() {
    let cache = InMemCache::builder()
        .max_weight(1000)
        .weigher(|_, e| {
            e.value
                .downcast_ref::<String>()
                .map_or(1, |s| s.len() as u64)
        })
        .build()
        .unwrap();
    for i in 0..100 {
        block_on(cache.set(&format!("k{i}"), entry("x".repeat(100)), secs(100 + i))).unwrap();
    }
    let total: usize = (0..100)
        .filter_map(|i| get::<String>(&cache, &format!("k{i}")))
        .map(|s| s.len())
        .sum();
    assert!(total <= 1000, "weight over bound: {total}");
    assert!(total >= 800, "evicted too much: {total}");
    block_on(cache.set("huge", entry("x".repeat(5000)), None)).unwrap();
    assert_eq!(get::<String>(&cache, "huge"), None);
}

#[test]
fn a_stream_of_unique_short_lived_keys_does_not_grow_the_map() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    let mut peak = 0;
    for i in 0..50_000u64 {
        block_on(cache.set(&format!("req:{i}"), entry(i), secs(1))).unwrap();
        clock.advance(0.01); // ~100 keys live at any time
        peak = peak.max(cache.len());
    }
    // Reclaimed within about a second of expiring: ~100 more.
    assert!(peak <= 350, "map grew to {peak}");
    check(&cache);
}

#[test]
fn sweep_reclaims_expired_entries_now() {
    let (cache, clock) = manual();
    for i in 0..10 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1))).unwrap();
    }
    block_on(cache.set("keep", entry(1), secs(100))).unwrap();
    clock.advance(2.0);
    assert_eq!(cache.sweep(), 10);
    assert_eq!(cache.len(), 1);
}

#[test]
fn bad_bounds_are_refused_with_a_clear_message() {
    let e = InMemCache::builder().max_weight(0).build().unwrap_err();
    assert!(
        e.to_string().contains("max_weight must be at least 1"),
        "{e}"
    );
    let e = InMemCache::builder().weigher(|_, _| 1).build().unwrap_err();
    assert!(e.to_string().contains("without max_weight"), "{e}");
    let e = InMemCache::builder()
        .max_entries(usize::MAX)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("max_entries must be below"), "{e}");
}

#[test]
fn totals_stay_exact_under_concurrent_writes_deletes_and_eviction() {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder()
        .max_entries(300)
        .clock(clock.clone())
        .build()
        .unwrap();
    thread::scope(|s| {
        for t in 0..4u64 {
            let (cache, clock) = (&cache, &clock);
            s.spawn(move || {
                for i in 0..5_000u64 {
                    let key = format!("k{}", (i * 7 + t) % 700);
                    match i % 5 {
                        0 => block_on(cache.delete(&key)).unwrap(),
                        1 => {
                            block_on(cache.set_if_absent(&key, entry(i), secs(1 + i % 50)))
                                .unwrap();
                        }
                        2 => {
                            let _ = get::<u64>(cache, &key);
                        }
                        _ => block_on(cache.set(
                            &key,
                            entry("x".repeat((i % 40) as usize)),
                            secs(1 + i % 50),
                        ))
                        .unwrap(),
                    }
                    assert!(cache.len() <= 300, "bound held after every write");
                    if i % 1000 == 0 {
                        clock.advance(5.0);
                    }
                }
            });
        }
    });
    check(&cache);
}

#[test]
fn passes_the_store_conformance_suite() {
    let clock = ManualClock::new(1_700_000_000.0);
    let cache = InMemCache::builder().clock(clock.clone()).build().unwrap();
    let advance = |secs: f64| clock.advance(secs);
    ac_core::conformance::run_all(&ac_core::conformance::Harness {
        store: &cache,
        advance: Some(&advance),
        sibling: Some(&InMemCache::new()),
    });
}

fn bounded(max_entries: usize) -> (InMemCache, ManualClock) {
    let clock = ManualClock::new(T0);
    let cache = InMemCache::builder()
        .max_entries(max_entries)
        .clock(clock.clone())
        .build()
        .unwrap();
    (cache, clock)
}

#[test]
fn max_entries_holds_after_every_write() {
    let (cache, _) = bounded(100);
    for i in 0..1000u64 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1000))).unwrap();
        assert!(cache.len() <= 100, "over bound after {i}: {}", cache.len());
    }
    assert_eq!(cache.len(), 100, "evicts one per write, not a batch");
    assert_eq!(get::<u64>(&cache, "k999"), Some(999), "the newest is kept");
    check(&cache);
}

#[test]
fn frequently_read_keys_survive_a_scan_of_one_off_keys() {
    let (cache, _) = bounded(1_000);
    for i in 0..500u64 {
        block_on(cache.set(&format!("hot{i}"), entry(i), secs(1000))).unwrap();
        assert_eq!(get::<u64>(&cache, &format!("hot{i}")), Some(i));
    }
    // Ten times the capacity of keys written once and never read: LRU or
    // FIFO would keep none of the hot keys.
    for round in 0..10u64 {
        for i in 0..1_000u64 {
            let key = format!("scan{round}:{i}");
            block_on(cache.set(&key, entry(i), secs(1000))).unwrap();
        }
        for i in 0..500u64 {
            let _ = get::<u64>(&cache, &format!("hot{i}"));
        }
    }
    let kept = (0..500u64)
        .filter(|i| get::<u64>(&cache, &format!("hot{i}")).is_some())
        .count();
    assert_eq!(kept, 500, "hot keys kept through the scans");
    check(&cache);
}

#[test]
fn a_key_evicted_unread_comes_back_to_main_through_the_ghost() {
    // Small queue: 1 % of 1000 = 10 entries.
    let (cache, _) = bounded(1_000);
    let write = |key: &str| block_on(cache.set(key, entry(1u8), secs(1000))).unwrap();
    // Steady state: 1000 read keys, promoted to main by 1000 one-off ones.
    for i in 0..1_000 {
        write(&format!("read{i}"));
        assert_eq!(get::<u8>(&cache, &format!("read{i}")), Some(1));
    }
    for i in 0..1_000 {
        write(&format!("once{i}"));
    }
    write("returning");
    for i in 0..20 {
        write(&format!("push{i}"));
    }
    assert_eq!(
        get::<u8>(&cache, "returning"),
        None,
        "left the small queue unread"
    );
    write("returning"); // a miss on a ghost: straight into main
    write("newcomer");
    for i in 0..500 {
        write(&format!("scan{i}"));
    }
    assert_eq!(get::<u8>(&cache, "returning"), Some(1), "kept in main");
    assert_eq!(
        get::<u8>(&cache, "newcomer"),
        None,
        "a first-timer went through small"
    );
    check(&cache);
}

#[test]
fn expired_entries_are_evicted_before_live_ones() {
    let (cache, clock) = bounded(10);
    block_on(cache.set("forever", entry(0u8), None)).unwrap();
    for i in 0..9u8 {
        block_on(cache.set(&format!("short{i}"), entry(i), secs(1))).unwrap();
    }
    clock.advance(2.0);
    for i in 0..9u8 {
        block_on(cache.set(&format!("new{i}"), entry(i), secs(100))).unwrap();
    }
    assert_eq!(get::<u8>(&cache, "forever"), Some(0));
    for i in 0..9u8 {
        assert_eq!(get::<u8>(&cache, &format!("new{i}")), Some(i));
    }
    assert_eq!(cache.len(), 10, "only expired entries made room");
    check(&cache);
}

#[test]
fn a_stale_entry_stays_an_entry_until_its_keep_time_ends() {
    // The policy stores for ttl + stale; fresh_until is the policy's.
    let (cache, clock) = manual();
    let stale = Entry::new(Value::new(5u32), T0 + 10.0, T0);
    block_on(cache.set("k", stale, secs(40))).unwrap();
    clock.advance(30.0);
    let mut fresh = None;
    assert_eq!(
        cache.visit("k", |e| fresh = Some(e.is_fresh(T0 + 30.0))),
        Local::Found
    );
    assert_eq!(fresh, Some(false), "served stale");
    clock.advance(11.0);
    assert_eq!(get::<u32>(&cache, "k"), None, "gone after its keep-time");
}

#[test]
fn a_million_deadlines_are_reclaimed_a_few_per_write_not_in_one() {
    let (cache, clock) = manual();
    for i in 0..20_000u64 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1))).unwrap();
    }
    clock.advance(2.0);
    // One write after they all expired reclaims only a handful.
    block_on(cache.set("next", entry(0u64), None)).unwrap();
    let left = cache.len();
    assert!(left > 19_900, "one write did {} reclaims", 20_001 - left);
    for i in 0..3_000u64 {
        block_on(cache.set(&format!("n{i}"), entry(i), None)).unwrap();
    }
    assert_eq!(cache.len(), 3_001, "reclaimed as writes went on");
    check(&cache);
}

/// Every eviction the listener heard, in order.
type Heard = Arc<Mutex<Vec<(String, EvictionCause)>>>;

fn listened(builder: InMemCacheBuilder) -> (InMemCache, ManualClock, Heard) {
    let clock = ManualClock::new(T0);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache = builder
        .clock(clock.clone())
        .on_evict(move |key, cause| log.lock().unwrap().push((key.to_owned(), cause)))
        .build()
        .unwrap();
    (cache, clock, heard)
}

fn take(heard: &Mutex<Vec<(String, EvictionCause)>>) -> Vec<(String, EvictionCause)> {
    std::mem::take(&mut *heard.lock().unwrap())
}

fn heard(key: &str, cause: EvictionCause) -> (String, EvictionCause) {
    (key.to_owned(), cause)
}

#[test]
fn on_evict_hears_expired_entries_reclaimed_not_read() {
    let (cache, clock, log) = listened(InMemCache::builder());
    block_on(cache.set("a", entry(1u8), secs(1))).unwrap();
    block_on(cache.set("b", entry(1u8), secs(1))).unwrap();
    clock.advance(3.0);
    assert_eq!(get::<u8>(&cache, "a"), None);
    assert_eq!(
        take(&log),
        [],
        "a read that misses an expired entry reports nothing"
    );
    // Rewriting an expired entry replaces nothing live: expired.
    block_on(cache.set("a", entry(2u8), None)).unwrap();
    let mut events = take(&log);
    events.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        events,
        [
            heard("a", EvictionCause::Expired),
            heard("b", EvictionCause::Expired)
        ]
    );
    block_on(cache.set("c", entry(1u8), secs(1))).unwrap();
    clock.advance(3.0);
    assert_eq!(cache.sweep(), 1);
    assert_eq!(take(&log), [heard("c", EvictionCause::Expired)]);
}

#[test]
fn on_evict_hears_evictions_for_size() {
    let (cache, _, log) = listened(InMemCache::builder().max_entries(2));
    for key in ["a", "b", "c"] {
        block_on(cache.set(key, entry(1u8), None)).unwrap();
    }
    assert_eq!(take(&log), [heard("a", EvictionCause::Size)]);
    let (cache, _, log) = listened(
        InMemCache::builder()
            .max_weight(10)
            .weigher(|_, e| u64::from(*e.value.downcast_ref::<u8>().unwrap())),
    );
    block_on(cache.set("light", entry(5u8), None)).unwrap();
    block_on(cache.set("light", entry(11u8), None)).unwrap();
    assert_eq!(
        take(&log),
        [
            heard("light", EvictionCause::Replaced),
            heard("light", EvictionCause::Size)
        ],
        "the old entry was replaced, the too heavy one refused"
    );
    assert!(cache.is_empty());
}

#[test]
fn on_evict_hears_replacements_and_removals() {
    let (cache, _, log) = listened(InMemCache::builder());
    block_on(cache.set("a", entry(1u8), None)).unwrap();
    assert!(!block_on(cache.set_if_absent("a", entry(2u8), None)).unwrap());
    assert_eq!(take(&log), [], "a refused set_if_absent changes nothing");
    block_on(cache.set("a", entry(3u8), None)).unwrap();
    assert_eq!(take(&log), [heard("a", EvictionCause::Replaced)]);
    block_on(cache.delete("a")).unwrap();
    block_on(cache.delete("a")).unwrap();
    assert_eq!(take(&log), [heard("a", EvictionCause::Removed)], "once");
    block_on(cache.set("x", entry(1u8), None)).unwrap();
    block_on(cache.set("y", entry(1u8), None)).unwrap();
    block_on(cache.clear()).unwrap();
    let mut events = take(&log);
    events.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        events,
        [
            heard("x", EvictionCause::Removed),
            heard("y", EvictionCause::Removed)
        ]
    );
}

#[test]
fn on_evict_may_use_the_cache() {
    let cache_slot: Arc<Mutex<Option<InMemCache>>> = Arc::default();
    let inner = Arc::clone(&cache_slot);
    let cache = InMemCache::builder()
        .max_entries(1)
        .on_evict(move |key, _| {
            // Runs after the lock is released: no deadlock.
            let cache = inner.lock().unwrap().clone().unwrap();
            let _ = cache.len();
            block_on(cache.delete("unrelated")).unwrap();
            assert_ne!(key, "unrelated");
        })
        .build()
        .unwrap();
    *cache_slot.lock().unwrap() = Some(cache.clone());
    block_on(cache.set("a", entry(1u8), None)).unwrap();
    block_on(cache.set("b", entry(1u8), None)).unwrap();
    assert_eq!(get::<u8>(&cache, "b"), Some(1));
}

/// A tracing subscriber that keeps every event's level, target and fields.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(tracing::Level, String, String)>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = String::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*meta.level(), meta.target().to_owned(), fields));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_panicking_listener_is_caught_and_logged() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let cache = InMemCache::builder()
        .on_evict(move |key, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            assert!(key != "secret-key", "listener bug");
        })
        .build()
        .unwrap();
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        block_on(cache.set("secret-key", entry(1u8), None)).unwrap();
        block_on(cache.set("other", entry(1u8), None)).unwrap();
        block_on(cache.clear()).unwrap(); // two events: one panics
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the next event is still delivered"
    );
    assert!(cache.is_empty(), "the clear happened");
    block_on(cache.set("after", entry(2u8), None)).unwrap();
    assert_eq!(get::<u8>(&cache, "after"), Some(2), "the cache works on");
    let events = recorder.0.lock().unwrap().clone();
    let errors: Vec<_> = events
        .iter()
        .filter(|(level, ..)| *level == tracing::Level::ERROR)
        .collect();
    assert_eq!(errors.len(), 1, "{events:#?}");
    let (_, target, fields) = errors[0];
    assert_eq!(target, "advanced_caching::inmem");
    assert!(fields.contains("listener bug"), "{fields}");
    assert!(
        !fields.contains("secret-key"),
        "no key above debug: {fields}"
    );
    assert!(
        events
            .iter()
            .any(|(level, _, fields)| *level == tracing::Level::DEBUG
                && fields.contains("secret-key"))
    );
}

mod model {
    //! The cache against a plain map, under random operations: whatever
    //! the cache returns is what the model holds, the bound holds after
    //! every operation, and the totals stay exact.

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, u8, Option<u8>),
        SetIfAbsent(u8, u8, Option<u8>),
        Get(u8),
        Delete(u8),
        Advance(u8),
        Sweep,
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        let ttl = proptest::option::of(1u8..20);
        prop_oneof![
            6 => (0u8..40, any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
            2 => (0u8..40, any::<u8>(), ttl).prop_map(|(k, v, t)| Op::SetIfAbsent(k, v, t)),
            6 => (0u8..40).prop_map(Op::Get),
            2 => (0u8..40).prop_map(Op::Delete),
            2 => (0u8..30).prop_map(Op::Advance),
            1 => Just(Op::Sweep),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn the_cache_agrees_with_a_map(
            ops in proptest::collection::vec(op(), 1..300),
            max_entries in proptest::option::of(1usize..16),
            max_weight in proptest::option::of(1u64..2_000),
        ) {
            let clock = ManualClock::new(T0);
            let mut builder = InMemCache::builder().clock(clock.clone());
            if let Some(max) = max_entries {
                builder = builder.max_entries(max);
            }
            if let Some(max) = max_weight {
                builder = builder.max_weight(max);
            }
            let cache = builder.build().unwrap();
            // key -> (value, expires_at)
            let mut model: HashMap<u8, (u8, f64)> = HashMap::new();
            for op in ops {
                let now = clock.now();
                match op {
                    Op::Set(k, v, ttl) | Op::SetIfAbsent(k, v, ttl) => {
                        let if_absent = matches!(op, Op::SetIfAbsent(..));
                        let live = model.get(&k).is_some_and(|(_, exp)| now <= *exp)
                            && get::<u8>(&cache, &k.to_string()).is_some();
                        let ttl = ttl.map(|t| Duration::from_secs(t.into()));
                        let key = k.to_string();
                        let stored = if if_absent {
                            block_on(cache.set_if_absent(&key, entry(v), ttl)).unwrap()
                        } else {
                            block_on(cache.set(&key, entry(v), ttl)).unwrap();
                            true
                        };
                        let too_heavy = max_weight
                            .is_some_and(|max| policy::bytes_of(&key, &entry(v)) > max);
                        if if_absent && live {
                            prop_assert!(!stored, "set_if_absent over a live entry");
                        } else if too_heavy {
                            prop_assert!(get::<u8>(&cache, &key).is_none(), "refused");
                            model.remove(&k);
                        } else {
                            prop_assert!(stored);
                            prop_assert_eq!(get::<u8>(&cache, &key), Some(v), "just written");
                            let exp = ttl.map_or(f64::INFINITY, |t| now + t.as_secs_f64());
                            model.insert(k, (v, exp));
                        }
                    }
                    Op::Get(k) => {
                        if let Some(v) = get::<u8>(&cache, &k.to_string()) {
                            let held = model.get(&k).copied();
                            prop_assert!(
                                held.is_some_and(|(mv, exp)| mv == v && now <= exp),
                                "cache returned {v} for {k}, model holds {held:?}"
                            );
                        }
                    }
                    Op::Delete(k) => {
                        block_on(cache.delete(&k.to_string())).unwrap();
                        model.remove(&k);
                        prop_assert_eq!(get::<u8>(&cache, &k.to_string()), None);
                    }
                    Op::Advance(s) => clock.advance(f64::from(s) / 2.0),
                    Op::Sweep => {
                        cache.sweep();
                    }
                    Op::Clear => {
                        block_on(cache.clear()).unwrap();
                        model.clear();
                        prop_assert!(cache.is_empty());
                    }
                }
                if let Some(max) = max_entries {
                    prop_assert!(cache.len() <= max);
                }
                if let Some(max) = max_weight {
                    prop_assert!(cache.lock().weight <= max);
                }
                check(&cache);
            }
        }
    }
}

#[test]
fn an_all_hot_cache_stays_bounded_when_second_chances_run_out() {
    // Every entry is read before each write: each eviction would give
    // second chances forever; banked credit runs out and it evicts anyway.
    let (cache, _) = bounded(200);
    for i in 0..200u64 {
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1000))).unwrap();
    }
    for i in 200..5_000u64 {
        for j in (i - 200)..i {
            let _ = get::<u64>(&cache, &format!("k{j}"));
        }
        block_on(cache.set(&format!("k{i}"), entry(i), secs(1000))).unwrap();
        assert_eq!(cache.len(), 200);
    }
    assert_eq!(
        get::<u64>(&cache, "k4999"),
        Some(4999),
        "the newest is kept"
    );
    check(&cache);
}

#[test]
fn the_listener_hears_every_eviction_once_under_concurrent_writes_and_reads() {
    let evicted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&evicted);
    let cache = InMemCache::builder()
        .max_entries(1_000)
        .on_evict(move |_, cause| {
            assert_eq!(cause, EvictionCause::Size);
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    const WRITES: u64 = 20_000;
    thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..WRITES {
                    let key = format!("w{t}:{i}");
                    block_on(cache.set(&key, entry(i), secs(1000))).unwrap();
                }
            });
            s.spawn(move || {
                let mut rng = 0x1234_5678_u64 + t;
                for _ in 0..4 * WRITES {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let _ = get::<u64>(cache, &format!("w{}:{}", rng % 2, rng % WRITES));
                }
            });
        }
    });
    assert_eq!(cache.len(), 1_000);
    assert_eq!(
        evicted.load(Ordering::Relaxed) + cache.len(),
        2 * WRITES as usize,
        "every key written is held or was heard leaving"
    );
    check(&cache);
}
