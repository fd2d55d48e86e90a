//! What a value type needs depends on the store: an `InMemCache` holds any
//! `Clone + Send + Sync` value; byte stores need serde, refused at compile
//! time (tests/compile_fail).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use advanced_caching::{InMemCache, bg, cache};

/// A connection-pool-like value with no serde at all.
#[derive(Clone)]
struct Pool {
    conns: Arc<Mutex<Vec<u32>>>,
}

#[test]
fn a_value_without_serde_is_cached_in_memory() {
    let store = InMemCache::new();
    let made = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&made);
    let pool = cache(60)
        .key("pool:{}")
        .store(store.clone())
        .wrap(move |n: u32| {
            m.fetch_add(1, Ordering::SeqCst);
            Pool {
                conns: Arc::new(Mutex::new((0..n).collect())),
            }
        })
        .unwrap();
    let first = pool.call(3);
    let second = pool.call(3);
    assert_eq!(made.load(Ordering::SeqCst), 1, "the second call is a hit");
    assert!(Arc::ptr_eq(&first.conns, &second.conns), "the same value");
    second.conns.lock().unwrap().push(9);
    assert_eq!(pool.call(3).conns.lock().unwrap().len(), 4);
    assert_eq!(store.len(), 1);
}

#[test]
fn a_bg_loader_holds_a_value_without_serde() {
    let loader = bg(3600)
        .key("types:pool")
        .wrap(|| Pool {
            conns: Arc::new(Mutex::new(vec![1, 2])),
        })
        .unwrap();
    assert_eq!(loader.get().conns.lock().unwrap().len(), 2);
    let reader = bg::read::<Pool>("types:pool")
        .interval(60)
        .store(Arc::clone(loader.store()))
        .build()
        .unwrap();
    assert_eq!(reader.get().unwrap().conns.lock().unwrap().len(), 2);
}

#[cfg(feature = "redis")]
#[test]
fn byte_stores_refuse_a_value_without_serde_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
