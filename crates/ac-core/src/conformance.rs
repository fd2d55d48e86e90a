//! The conformance suite every [`Store`] passes (feature `conformance`),
//! like object_store's `integration.rs`: `pub` checks over `&dyn Store`
//! that each backend's tests call.
//!
//! ```ignore
//! let clock = ManualClock::new(1e9);
//! let store = MyStore::new(..).clock(clock.clone());
//! ac_core::conformance::run_all(&Harness {
//!     store: &store,
//!     advance: Some(&|secs| clock.advance(secs)),
//!     sibling: None,
//! });
//! ```
//!
//! Checks panic (with the store's name) on a violation, as test code does.
//! They run blocking: stores must work from plain threads.

use std::thread;
use std::time::Duration;

use crate::{Entry, Local, Store, TypedDecoder, Value, block_on};

/// What a backend's test gives the suite.
pub struct Harness<'a> {
    /// The store under test, empty.
    pub store: &'a dyn Store,
    /// Moves the store's clock forward by the given seconds, if the store's
    /// expiry follows an injectable clock; `None` skips the expiry checks
    /// that need time to pass (a server-side TTL).
    pub advance: Option<&'a (dyn Fn(f64) + Sync)>,
    /// Another store on the same backend (another prefix, directory or
    /// bucket path), holding entries of its own; `clear` must spare them.
    pub sibling: Option<&'a dyn Store>,
}

impl std::fmt::Debug for Harness<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("store", &self.store)
            .field("advance", &self.advance.is_some())
            .field("sibling", &self.sibling)
            .finish()
    }
}

/// One named check.
type Check = (&'static str, fn(&Harness<'_>));

/// Runs every check, clearing the store between them.
pub fn run_all(h: &Harness<'_>) {
    let checks: [Check; 12] = [
        ("get_set_round_trip", get_set_round_trip),
        ("missing_keys", missing_keys),
        ("overwrite", overwrite),
        ("expiry", expiry),
        ("set_if_absent", set_if_absent),
        ("delete", delete),
        ("clear_is_scoped", clear_is_scoped),
        ("batches", batches),
        ("large_values", large_values),
        ("odd_keys", odd_keys),
        (
            "concurrent_set_if_absent_has_one_winner",
            concurrent_set_if_absent_has_one_winner,
        ),
        ("get_local_agrees_with_get", get_local_agrees_with_get),
    ];
    for (name, check) in checks {
        block_on(h.store.clear())
            .unwrap_or_else(|e| panic!("{}: clear before {name}: {e}", h.store.name()));
        check(h);
    }
    block_on(h.store.clear()).expect("final clear");
}

const T: f64 = 1_700_000_000.0;
const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

fn entry<V: crate::SerdeValue>(value: V) -> Entry {
    Entry::new(Value::new(value), T + 60.0, T)
}

fn get<V: crate::SerdeValue>(h: &Harness<'_>, key: &str) -> Option<V> {
    let found = block_on(h.store.get(key, &TypedDecoder::<V>::new()))
        .unwrap_or_else(|e| panic!("{}: get {key:?}: {e}", h.store.name()));
    found.map(|entry| {
        entry
            .value
            .downcast_ref::<V>()
            .unwrap_or_else(|| panic!("{}: get {key:?} returned another type", h.store.name()))
            .clone()
    })
}

fn set<V: crate::SerdeValue>(h: &Harness<'_>, key: &str, value: V, ttl: Option<Duration>) {
    block_on(h.store.set(key, entry(value), ttl))
        .unwrap_or_else(|e| panic!("{}: set {key:?}: {e}", h.store.name()));
}

/// Values of several types come back with their timestamps.
pub fn get_set_round_trip(h: &Harness<'_>) {
    let name = h.store.name();
    set(h, "s", String::from("text"), HOUR);
    set(h, "n", 42u64, HOUR);
    set(h, "none", Option::<String>::None, HOUR);
    set(h, "unit", (), HOUR);
    set(h, "list", vec![(1u8, String::from("a"))], HOUR);
    assert_eq!(get::<String>(h, "s").as_deref(), Some("text"), "{name}");
    assert_eq!(get::<u64>(h, "n"), Some(42), "{name}");
    assert_eq!(
        get::<Option<String>>(h, "none"),
        Some(None),
        "{name}: None is a value"
    );
    assert_eq!(get::<()>(h, "unit"), Some(()), "{name}: () is a value");
    assert_eq!(
        get::<Vec<(u8, String)>>(h, "list"),
        Some(vec![(1, "a".into())]),
        "{name}"
    );
    let found = block_on(h.store.get("n", &TypedDecoder::<u64>::new()))
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.fresh_until, found.created_at),
        (T + 60.0, T),
        "{name}: timestamps"
    );
}

/// An absent key is `None`, not an error.
pub fn missing_keys(h: &Harness<'_>) {
    assert_eq!(get::<String>(h, "never-set"), None, "{}", h.store.name());
}

/// A second `set` replaces the first.
pub fn overwrite(h: &Harness<'_>) {
    set(h, "k", 1u32, HOUR);
    set(h, "k", 2u32, HOUR);
    assert_eq!(get::<u32>(h, "k"), Some(2), "{}", h.store.name());
}

/// An entry lives through its ttl and is gone after it; `None` lives on.
pub fn expiry(h: &Harness<'_>) {
    let Some(advance) = h.advance else { return };
    let name = h.store.name();
    set(h, "short", 1u8, Some(Duration::from_secs(10)));
    set(h, "forever", 2u8, None);
    advance(9.0);
    assert_eq!(
        get::<u8>(h, "short"),
        Some(1),
        "{name}: alive before its ttl"
    );
    advance(2.0);
    assert_eq!(get::<u8>(h, "short"), None, "{name}: gone after its ttl");
    advance(1e7);
    assert_eq!(
        get::<u8>(h, "forever"),
        Some(2),
        "{name}: no ttl, no expiry"
    );
}

/// `set_if_absent` writes only where no live entry is.
pub fn set_if_absent(h: &Harness<'_>) {
    let name = h.store.name();
    let ttl = Some(Duration::from_secs(10));
    assert!(
        block_on(h.store.set_if_absent("lock", entry(1u8), ttl)).unwrap(),
        "{name}: absent"
    );
    assert!(
        !block_on(h.store.set_if_absent("lock", entry(2u8), ttl)).unwrap(),
        "{name}: present"
    );
    assert_eq!(
        get::<u8>(h, "lock"),
        Some(1),
        "{name}: the first value stays"
    );
    if let Some(advance) = h.advance {
        advance(11.0);
        assert!(
            block_on(h.store.set_if_absent("lock", entry(3u8), ttl)).unwrap(),
            "{name}: expired counts as absent"
        );
        assert_eq!(get::<u8>(h, "lock"), Some(3), "{name}");
    }
}

/// `delete` removes one key; deleting an absent key is fine.
pub fn delete(h: &Harness<'_>) {
    let name = h.store.name();
    set(h, "a", 1u8, HOUR);
    set(h, "b", 2u8, HOUR);
    block_on(h.store.delete("a")).unwrap();
    block_on(h.store.delete("never-set")).unwrap();
    assert_eq!(get::<u8>(h, "a"), None, "{name}");
    assert_eq!(get::<u8>(h, "b"), Some(2), "{name}");
}

/// `clear` empties this store and spares a sibling's entries.
pub fn clear_is_scoped(h: &Harness<'_>) {
    let name = h.store.name();
    set(h, "x", 1u8, HOUR);
    set(h, "y/z", 2u8, HOUR);
    if let Some(sibling) = h.sibling {
        block_on(sibling.set("x", entry(9u8), HOUR)).unwrap();
    }
    block_on(h.store.clear()).unwrap();
    assert_eq!(get::<u8>(h, "x"), None, "{name}");
    assert_eq!(get::<u8>(h, "y/z"), None, "{name}");
    if let Some(sibling) = h.sibling {
        let kept = block_on(sibling.get("x", &TypedDecoder::<u8>::new())).unwrap();
        assert_eq!(
            kept.and_then(|e| e.value.downcast_ref::<u8>().copied()),
            Some(9),
            "{name}: clear reached a sibling"
        );
        block_on(sibling.clear()).unwrap();
    }
}

/// `get_many` and `set_many` agree with single operations, in order.
pub fn batches(h: &Harness<'_>) {
    let name = h.store.name();
    block_on(
        h.store
            .set_many(vec![("b1", entry(1u32)), ("b2", entry(2u32))], HOUR),
    )
    .unwrap();
    let keys = ["b2", "missing", "b1"];
    let found = block_on(h.store.get_many(&keys, &TypedDecoder::<u32>::new())).unwrap();
    let values: Vec<Option<u32>> = found
        .into_iter()
        .map(|e| e.and_then(|e| e.value.downcast_ref::<u32>().copied()))
        .collect();
    assert_eq!(values, vec![Some(2), None, Some(1)], "{name}");
}

/// A 4 MiB value round-trips.
pub fn large_values(h: &Harness<'_>) {
    let big: String = "0123456789abcdef".repeat(256 * 1024);
    set(h, "big", big.clone(), HOUR);
    assert_eq!(
        get::<String>(h, "big").map(|v| v.len()),
        Some(big.len()),
        "{}",
        h.store.name()
    );
    assert!(get::<String>(h, "big") == Some(big));
}

/// Keys with unicode, spaces, slashes, dots, NUL, and 1 KiB are distinct
/// and work; `a/b` and `a_b` are different keys.
pub fn odd_keys(h: &Harness<'_>) {
    let long = "k".repeat(1024);
    let long2 = format!("{}x", "k".repeat(1023));
    let keys: Vec<&str> = vec![
        "ключ",
        "鍵🔑",
        "with space",
        "a/b",
        "a_b",
        "a%2Fb",
        "../../escape",
        "/abs/path",
        ".hidden",
        "..",
        ".",
        "nul\0byte",
        "C:\\win",
        "",
        "~tilde",
        &long,
        &long2,
    ];
    for (i, key) in keys.iter().enumerate() {
        set(h, key, i, HOUR);
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            get::<usize>(h, key),
            Some(i),
            "{}: key {key:?}",
            h.store.name()
        );
    }
}

/// Of many threads racing `set_if_absent` on one key, exactly one wins.
pub fn concurrent_set_if_absent_has_one_winner(h: &Harness<'_>) {
    for round in 0..5 {
        let key = format!("race:{round}");
        let barrier = std::sync::Barrier::new(8);
        let wins: usize = thread::scope(|s| {
            let racers: Vec<_> = (0..8u32)
                .map(|i| {
                    let (key, barrier) = (&key, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let won = block_on(h.store.set_if_absent(key, entry(i), HOUR)).unwrap();
                        usize::from(won)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "{}: round {round}", h.store.name());
    }
}

/// Checks that [`Store::get_local`] on `key` agrees with [`Store::get`]:
/// `Found` only for an entry `get` returns too (same value and times,
/// the visitor called once), `Missing` only where `get` finds nothing, the
/// visitor never called otherwise. `Unsupported` (no local answer) is
/// always allowed.
fn assert_local_agrees(h: &Harness<'_>, key: &str, when: &str) {
    let name = h.store.name();
    let mut visited: Vec<(Option<u32>, f64, f64)> = Vec::new();
    let local = h.store.get_local(key, &mut |entry| {
        visited.push((
            entry.value.downcast_ref::<u32>().copied(),
            entry.fresh_until,
            entry.created_at,
        ));
    });
    let got = block_on(h.store.get(key, &TypedDecoder::<u32>::new()))
        .unwrap_or_else(|e| panic!("{name}: get {key:?} {when}: {e}"))
        .map(|e| {
            (
                e.value.downcast_ref::<u32>().copied(),
                e.fresh_until,
                e.created_at,
            )
        });
    match local {
        Local::Found => assert_eq!(
            (visited.len(), visited.first().copied()),
            (1, got),
            "{name}: get_local found {key:?} {when}, get disagrees"
        ),
        Local::Missing => {
            assert!(visited.is_empty(), "{name}: Missing but visited {key:?}");
            assert_eq!(
                got, None,
                "{name}: get_local missed {key:?} {when}, get found it"
            );
        }
        Local::Unsupported => {
            assert!(
                visited.is_empty(),
                "{name}: Unsupported but visited {key:?}"
            );
        }
    }
}

/// For stores that answer in-process ([`Store::get_local`]), the local
/// answer is `get`'s: after a set, an overwrite, a delete, a clear, for an
/// absent key and after expiry. Stores that never answer locally pass.
pub fn get_local_agrees_with_get(h: &Harness<'_>) {
    let hour = HOUR;
    for key in ["l1", "l2", "never-set", ""] {
        assert_local_agrees(h, key, "before any write");
    }
    set(h, "l1", 1u32, hour);
    set(h, "l2", 2u32, Some(Duration::from_secs(10)));
    assert_local_agrees(h, "l1", "after a set");
    assert_local_agrees(h, "l2", "after a set");
    set(h, "l1", 3u32, hour);
    assert_local_agrees(h, "l1", "after an overwrite");
    block_on(h.store.delete("l1")).unwrap();
    assert_local_agrees(h, "l1", "after a delete");
    if let Some(advance) = h.advance {
        advance(11.0);
        assert_local_agrees(h, "l2", "after its ttl");
    }
    set(h, "l3", 4u32, hour);
    block_on(h.store.clear()).unwrap();
    assert_local_agrees(h, "l3", "after a clear");
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::{BoxFuture, Decoder, Error};

    /// A small in-process store; with `forgetful_local`, `get_local` reads
    /// a copy that deletes and clears do not reach (a cache of the map).
    #[derive(Debug, Default)]
    struct MapStore {
        map: Mutex<HashMap<String, Entry>>,
        local_copy: Mutex<HashMap<String, Entry>>,
        forgetful_local: bool,
    }

    impl Store for MapStore {
        fn name(&self) -> &'static str {
            "map"
        }

        fn get<'a>(
            &'a self,
            key: &'a str,
            _: &'a dyn Decoder,
        ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
            let found = crate::lock(&self.map).get(key).cloned();
            Box::pin(async move { Ok(found) })
        }

        fn set<'a>(
            &'a self,
            key: &'a str,
            entry: Entry,
            _: Option<Duration>,
        ) -> BoxFuture<'a, Result<(), Error>> {
            crate::lock(&self.local_copy).insert(key.to_owned(), entry.clone());
            crate::lock(&self.map).insert(key.to_owned(), entry);
            Box::pin(async { Ok(()) })
        }

        fn set_if_absent<'a>(
            &'a self,
            key: &'a str,
            entry: Entry,
            _: Option<Duration>,
        ) -> BoxFuture<'a, Result<bool, Error>> {
            let mut map = crate::lock(&self.map);
            let won = !map.contains_key(key);
            if won {
                crate::lock(&self.local_copy).insert(key.to_owned(), entry.clone());
                map.insert(key.to_owned(), entry);
            }
            Box::pin(async move { Ok(won) })
        }

        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
            crate::lock(&self.map).remove(key);
            if !self.forgetful_local {
                crate::lock(&self.local_copy).remove(key);
            }
            Box::pin(async { Ok(()) })
        }

        fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
            crate::lock(&self.map).clear();
            if !self.forgetful_local {
                crate::lock(&self.local_copy).clear();
            }
            Box::pin(async { Ok(()) })
        }

        fn get_local(&self, key: &str, visit: &mut dyn FnMut(&Entry)) -> Local {
            match crate::lock(&self.local_copy).get(key) {
                Some(entry) => {
                    visit(entry);
                    Local::Found
                }
                None => Local::Missing,
            }
        }
    }

    fn harness(store: &MapStore) -> Harness<'_> {
        Harness {
            store,
            advance: None,
            sibling: None,
        }
    }

    #[test]
    fn a_store_whose_local_answer_is_get_s_passes() {
        let store = MapStore::default();
        block_on(store.clear()).unwrap();
        get_local_agrees_with_get(&harness(&store));
    }

    #[test]
    #[should_panic(expected = "get_local found \"l1\" after a delete, get disagrees")]
    fn a_local_answer_that_outlives_a_delete_is_caught() {
        let store = MapStore {
            forgetful_local: true,
            ..MapStore::default()
        };
        get_local_agrees_with_get(&harness(&store));
    }
}
