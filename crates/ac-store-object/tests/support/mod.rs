//! Checks shared by the S3 (moto) and GCS (fake-gcs-server) tests: each
//! test file starts its emulator and hands these a way to make caches.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ac_core::conformance::{Harness, run_all};
use ac_core::{Clock, Entry, Error, Store, TypedDecoder, Value, block_on};
use ac_sched::ManualClock;
use ac_serde::codec::{Compression, encode_entry};
use ac_store_object::object_store::path::Path;
use ac_store_object::object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use ac_store_object::{Backend, ObjectCache, ObjectCacheBuilder};

pub const T0: f64 = 1_700_000_000.0;
pub const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// A builder for a cache under a prefix, pointed at the emulator.
pub type MakeBuilder<K> = Box<dyn Fn(&str) -> ObjectCacheBuilder<K> + Sync>;

/// Makes caches on one emulator bucket.
pub struct Fixture<K: Backend> {
    pub builder: MakeBuilder<K>,
    /// The bucket through object_store directly.
    pub raw: Arc<dyn ObjectStore>,
    pub clock: ManualClock,
}

impl<K: Backend> Fixture<K> {
    pub fn cache(&self, prefix: &str) -> ObjectCache<K> {
        (self.builder)(prefix)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    pub fn put_raw(&self, name: &str, bytes: Vec<u8>) {
        let (raw, path) = (self.raw.clone(), Path::parse(name).unwrap());
        block_on(ac_store_object_runtime(async move {
            raw.put(&path, PutPayload::from(bytes)).await
        }))
        .unwrap();
    }

    pub fn exists(&self, name: &str) -> bool {
        let (raw, path) = (self.raw.clone(), Path::parse(name).unwrap());
        match block_on(ac_store_object_runtime(
            async move { raw.head(&path).await },
        )) {
            Ok(_) => true,
            Err(ac_store_object::object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("head {name}: {e}"),
        }
    }
}

/// Runs an object_store future on a runtime of the test's own (the raw
/// client needs Tokio).
pub async fn ac_store_object_runtime<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    runtime.spawn(future).await.unwrap()
}

pub fn entry<V: ac_core::SerdeValue>(value: V, fresh_until: f64) -> Entry {
    Entry::new(Value::new(value), fresh_until, T0)
}

pub fn get<V: ac_core::SerdeValue>(store: &dyn Store, key: &str) -> Result<Option<V>, Error> {
    let found = block_on(store.get(key, &TypedDecoder::<V>::new()))?;
    Ok(found.map(|e| {
        e.value
            .downcast_ref::<V>()
            .expect("the type written")
            .clone()
    }))
}

/// The conformance suite, with the injected clock moving expiry.
pub fn conformance<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("conf/");
    let sibling = f.cache("conf-sibling/");
    run_all(&Harness {
        store: &store,
        advance: Some(&|secs| f.clock.advance(secs)),
        sibling: Some(&sibling),
    });
}

/// 16 threads, each with its own client (as 16 processes would), race
/// `set_if_absent` on one key: exactly one wins, every round; then the
/// same once the entry has expired (the conditional replacement).
pub fn sixteen_racers_one_winner<K: Backend>(f: &Fixture<K>) {
    let racers: Vec<ObjectCache<K>> = (0..16).map(|_| f.cache("race/")).collect();
    let race = |key: &str| -> usize {
        let barrier = Barrier::new(racers.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = racers
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let won = block_on(store.set_if_absent(
                            key,
                            entry(i, T0 + 5.0),
                            Some(Duration::from_secs(10)),
                        ))
                        .unwrap_or_else(|e| panic!("racer {i}: {e}"));
                        usize::from(won)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        })
    };
    for round in 0..4 {
        let key = format!("lock:{round}");
        assert_eq!(race(&key), 1, "fresh key, round {round}");
        assert_eq!(race(&key), 0, "live entry, round {round}");
    }
    f.clock.advance(11.0);
    for round in 0..4 {
        let key = format!("lock:{round}");
        assert_eq!(
            race(&key),
            1,
            "expired entry, round {round}: one replaces it"
        );
    }
    block_on(racers[0].clear()).unwrap();
}

/// An expired entry is a miss and its object is deleted by the read.
pub fn expired_objects_read_as_misses_and_are_deleted<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("exp/");
    let now = f.clock.now();
    block_on(store.set(
        "short",
        entry(1u8, now + 5.0),
        Some(Duration::from_secs(10)),
    ))
    .unwrap();
    // The stale window: past fresh_until, within the ttl, still there.
    f.clock.advance(7.0);
    assert_eq!(
        get::<u8>(&store, "short").unwrap(),
        Some(1),
        "kept for its ttl"
    );
    f.clock.advance(4.0);
    assert_eq!(get::<u8>(&store, "short").unwrap(), None);
    let name = store.object_name("short");
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.exists(&name) {
        assert!(
            Instant::now() < deadline,
            "the expired object was never deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Objects written in the Python package's way (no keep-until metadata)
/// live while fresh.
pub fn objects_without_keep_until_live_while_fresh<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("py/");
    let now = f.clock.now();
    let serializer = ac_serde::Json;
    let fresh = encode_entry(
        &entry(String::from("a"), now + 60.0),
        &serializer,
        Compression::GZIP,
    )
    .unwrap();
    let stale = encode_entry(
        &entry(String::from("b"), now - 1.0),
        &serializer,
        Compression::GZIP,
    )
    .unwrap();
    f.put_raw(&store.object_name("fresh"), fresh);
    f.put_raw(&store.object_name("stale"), stale);
    assert_eq!(
        get::<String>(&store, "fresh").unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(get::<String>(&store, "stale").unwrap(), None);
    // set_if_absent replaces the stale one, not the fresh one.
    assert!(
        block_on(store.set_if_absent("stale", entry(String::from("c"), now + 60.0), HOUR)).unwrap()
    );
    assert!(
        !block_on(store.set_if_absent("fresh", entry(String::from("d"), now + 60.0), HOUR))
            .unwrap()
    );
    assert_eq!(
        get::<String>(&store, "stale").unwrap().as_deref(),
        Some("c")
    );
    block_on(store.clear()).unwrap();
}

/// Garbage, another format, a truncated entry: errors (a miss plus an
/// error metric for the caching policy), never a panic or a wrong value.
pub fn corrupt_foreign_and_truncated_objects_are_errors<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("bad/");
    let good = encode_entry(
        &entry(7u32, f.clock.now() + 60.0),
        &ac_serde::Json,
        Compression::GZIP,
    )
    .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"not an entry at all".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "raw",
            encode_entry(
                &entry(7u32, f.clock.now() + 60.0),
                &ac_serde::Json,
                Compression::None,
            )
            .unwrap(),
        ),
        (
            "msgpack",
            encode_entry(
                &entry(String::from("x"), f.clock.now() + 60.0),
                &ac_serde::MsgPack,
                Compression::GZIP,
            )
            .unwrap(),
        ),
    ];
    for (key, bytes) in cases {
        f.put_raw(&store.object_name(key), bytes);
        let err = get::<u32>(&store, key).expect_err(key);
        assert!(
            matches!(err, Error::Corrupt { .. } | Error::Serialization { .. }),
            "{key}: {err}"
        );
    }
    f.put_raw(&store.object_name("good"), good);
    assert_eq!(get::<u32>(&store, "good").unwrap(), Some(7));
    // clear removes the entries and leaves what is not one.
    block_on(store.clear()).unwrap();
    assert!(!f.exists(&store.object_name("good")));
    assert!(
        !f.exists(&store.object_name("raw")),
        "an unframed entry is an entry"
    );
    assert!(
        f.exists(&store.object_name("garbage")),
        "clear deletes only entries"
    );
}

/// `clear` spares objects that are not entries and other prefixes,
/// including one that merely starts like this prefix; `sweep` deletes the
/// expired entries only.
pub fn clear_and_sweep_touch_only_this_caches_entries<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("app/v1:");
    let other = f.cache("app/v10:");
    let now = f.clock.now();
    for i in 0..30u32 {
        let ttl = Duration::from_secs(if i % 3 == 0 { 5 } else { 3600 });
        block_on(store.set(&format!("k{i}"), entry(i, now + 5.0), Some(ttl))).unwrap();
    }
    block_on(other.set("k1", entry(1u32, now + 5.0), HOUR)).unwrap();
    f.put_raw("app/v1:README", b"not an entry".to_vec());
    f.clock.advance(6.0);
    assert_eq!(block_on(store.sweep()).unwrap(), 10);
    assert_eq!(get::<u32>(&store, "k0").unwrap(), None);
    assert!(!f.exists(&store.object_name("k0")));
    assert_eq!(
        get::<u32>(&store, "k1").unwrap(),
        Some(1),
        "stale but within its ttl"
    );
    block_on(store.clear()).unwrap();
    assert_eq!(get::<u32>(&store, "k1").unwrap(), None);
    assert!(f.exists("app/v1:README"), "not an entry");
    assert_eq!(get::<u32>(&other, "k1").unwrap(), Some(1), "another prefix");
    block_on(other.clear()).unwrap();
}

/// Keys map to the names the Python package uses where they can, and to
/// escaped names otherwise; the objects are really there.
pub fn keys_map_to_safe_object_names<K: Backend>(f: &Fixture<K>) {
    let store = f.cache("names/");
    for (key, name) in [
        ("user:42", "names/user:42"),
        ("a/b", "names/a/b"),
        ("../../etc/passwd", "names/~..%2F..%2Fetc%2Fpasswd"),
        ("with space", "names/~with%20space"),
    ] {
        block_on(store.set(key, entry(1u8, T0 + 60.0), HOUR)).unwrap();
        assert_eq!(store.object_name(key), name);
        assert!(f.exists(name), "{name}");
    }
    let long = store.object_name(&"k".repeat(2000));
    assert!(long.len() <= 1024 && long.starts_with("names/~h"), "{long}");
    block_on(store.clear()).unwrap();
}

/// A value above the multipart threshold goes up in parts and reads back.
pub fn large_values_go_up_in_parts<K: Backend>(f: &Fixture<K>) -> String {
    let store = (f.builder)("big/")
        .compress(false)
        .multipart_threshold(6 * 1024 * 1024)
        .multipart_part_size(5 * 1024 * 1024)
        .clock(f.clock.clone())
        .build()
        .unwrap();
    let big: String = (0..12 * 1024 * 1024 / 16)
        .map(|i| format!("{i:015x}-"))
        .collect();
    block_on(store.set("big", entry(big.clone(), T0 + 60.0), HOUR)).unwrap();
    assert!(get::<String>(&store, "big").unwrap() == Some(big));
    let name = store.object_name("big");
    let meta = block_on(ac_store_object_runtime({
        let raw = f.raw.clone();
        async move { raw.head(&Path::parse(name).unwrap()).await }
    }))
    .unwrap();
    block_on(store.clear()).unwrap();
    meta.e_tag.unwrap_or_default()
}

/// With the service gone (killed, or frozen so nothing answers), calls
/// fail with store errors within the call timeout, never hang.
pub fn outages_fail_calls_within_the_timeout<K: Backend>(
    f: &Fixture<K>,
    outage: &mut dyn FnMut(),
    what: &str,
) {
    let store = (f.builder)("out/")
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .retries(1)
        .call_timeout(Duration::from_secs(1))
        .clock(f.clock.clone())
        .build()
        .unwrap();
    block_on(store.set("k", entry(1u8, T0 + 60.0), HOUR)).unwrap();
    outage();
    let started = Instant::now();
    let read = get::<u8>(&store, "k");
    let write = block_on(store.set("k", entry(2u8, T0 + 60.0), HOUR));
    let lock = block_on(store.set_if_absent("l", entry(2u8, T0 + 60.0), HOUR));
    let elapsed = started.elapsed();
    for (op, err) in [
        ("get", read.map(drop).err()),
        ("set", write.err()),
        ("set_if_absent", lock.map(drop).err()),
    ] {
        let err = err.unwrap_or_else(|| panic!("{what}: {op} succeeded during the outage"));
        assert!(matches!(err, Error::Store { .. }), "{what}: {op}: {err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "{what}: {op}: the cause is kept: {err}"
        );
    }
    assert!(
        elapsed < Duration::from_secs(5),
        "{what}: three calls took {elapsed:?}"
    );
}
