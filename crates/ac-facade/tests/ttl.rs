//! TTL semantics of `cache()`, on a manual clock.

mod support;

use std::sync::Arc;

use advanced_caching::{InMemCache, ManualClock, Store, cache};
use support::{Calls, CountingMetrics, MapStore, Switch, T0};

#[test]
fn hits_until_ttl_and_misses_exactly_at_ttl() {
    let clock = ManualClock::new(T0);
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("v:{}")
        .clock(clock.clone())
        .wrap(move |x: u32| (x, c.bump()))
        .unwrap();
    assert_eq!(f.call(1), (1, 1));
    clock.advance(59.999);
    assert_eq!(f.call(1), (1, 1), "fresh just before ttl");
    clock.advance(0.001);
    assert_eq!(f.call(1), (1, 2), "without stale, dead exactly at ttl");
    assert_eq!(f.call(2), (2, 3), "other key, other entry");
}

#[test]
fn ttl_zero_disables_caching() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(0).key("k").wrap(move |()| c.bump()).unwrap();
    assert_eq!(f.call(()), 1);
    assert_eq!(f.call(()), 2);
    assert_eq!(f.call(()), 3);
}

#[test]
fn negative_or_nan_ttl_and_stale_are_refused() {
    let msg = cache(-1).key("k").wrap(|()| 1).unwrap_err().to_string();
    assert!(
        msg.contains(
            "ttl of cache \"negative_or_nan_ttl_and_stale_are_refused\" (key \"k\") \
             must be a non-negative number of seconds, got -1"
        ),
        "{msg}"
    );
    let msg = cache(f64::NAN)
        .key("k")
        .wrap(|()| 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ttl") && msg.contains("NaN"), "{msg}");
    let msg = cache(5)
        .stale(-0.5)
        .key("k")
        .wrap(|()| 1)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("stale of cache") && msg.contains("must be a non-negative"),
        "{msg}"
    );
}

#[test]
fn bad_templates_are_refused_naming_the_template() {
    let msg = cache(5)
        .key("order:{0}:{1}")
        .wrap(|id: u64| id)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"order:{0}:{1}\""), "{msg}");
    assert!(msg.contains("beyond the function's 1 argument"), "{msg}");
    let msg = cache(5)
        .key("user:{")
        .wrap(|id: u64| id)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"user:{\"") && msg.contains("unclosed"),
        "{msg}"
    );
    let msg = cache(5)
        .key("flags:{}")
        .wrap(|()| 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("beyond the function's 0 arguments"), "{msg}");
}

#[test]
fn key_forms_resolve_as_documented() {
    let positional = cache(5).key("user:{}").wrap(|id: u64| id).unwrap();
    assert_eq!(positional.key(&42), "user:42");
    let indexed = cache(5)
        .key("order:{1}:{0}")
        .wrap(|(u, o): (u64, u64)| u + o)
        .unwrap();
    assert_eq!(indexed.key(&(1, 2)), "order:2:1");
    let fixed = cache(5).key("feature_flags").wrap(|()| 1).unwrap();
    assert_eq!(fixed.key(&()), "feature_flags");
    let closure = cache(5)
        .key(|(t, uid): &(String, u64)| format!("{t}:{uid}"))
        .wrap(|(_, uid): (String, u64)| uid)
        .unwrap();
    assert_eq!(closure.key(&("team".into(), 9)), "team:9");
    assert_eq!(closure.call(("team".into(), 9)), 9);
}

#[test]
fn result_functions_cache_only_ok() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("r:{}")
        .try_wrap(move |fail: bool| {
            let n = c.bump();
            if fail {
                Err(format!("failure {n}"))
            } else {
                Ok(n)
            }
        })
        .unwrap();
    assert_eq!(f.call(true), Err("failure 1".to_string()));
    assert_eq!(
        f.call(true),
        Err("failure 2".to_string()),
        "errors are not cached"
    );
    assert_eq!(f.call(false), Ok(3));
    assert_eq!(f.call(false), Ok(3), "Ok is cached");
}

#[test]
fn none_and_unit_are_cacheable_values() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("maybe:{}")
        .wrap(move |_: u8| -> Option<String> {
            c.bump();
            None
        })
        .unwrap();
    assert_eq!(f.call(1), None);
    assert_eq!(f.call(1), None);
    assert_eq!(calls.get(), 1, "None was cached");

    let units = Calls::default();
    let u = units.clone();
    let g = cache(60).key("unit").wrap(move |()| {
        u.bump();
    });
    let g = g.unwrap();
    g.call(());
    g.call(());
    assert_eq!(units.get(), 1, "() was cached");
}

#[test]
fn invalidate_removes_one_entry_and_clear_all() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("x:{}")
        .wrap(move |x: u32| (x, c.bump()))
        .unwrap();
    f.call(1);
    f.call(2);
    f.invalidate(1).unwrap();
    assert_eq!(f.call(1), (1, 3), "invalidated entry reloads");
    assert_eq!(f.call(2), (2, 2), "other entry kept");
    f.clear().unwrap();
    assert_eq!(f.call(2), (2, 4));
}

#[test]
fn one_store_serves_functions_of_different_types() {
    let store: Arc<dyn Store> = Arc::new(InMemCache::new());
    let numbers = cache(60)
        .key("n:{}")
        .store(store.clone())
        .wrap(|x: u64| x * 2)
        .unwrap();
    let names = cache(60)
        .key("s:{}")
        .store(store.clone())
        .wrap(|x: u64| format!("#{x}"))
        .unwrap();
    assert_eq!(numbers.call(4), 8);
    assert_eq!(names.call(4), "#4");
    assert!(Arc::ptr_eq(numbers.store(), names.store()));
    assert_eq!(store.usage().unwrap().entries, 2);
}

#[test]
fn an_entry_of_another_type_is_a_miss_and_an_error_not_a_panic() {
    let store: Arc<dyn Store> = Arc::new(InMemCache::new());
    let metrics = CountingMetrics::default();
    let text = cache(60)
        .key("shared")
        .store(store.clone())
        .wrap(|()| "text".to_string())
        .unwrap();
    let number = cache(60)
        .key("shared")
        .store(store.clone())
        .metrics(metrics.clone())
        .wrap(|()| 7u64)
        .unwrap();
    assert_eq!(text.call(()), "text");
    assert_eq!(number.call(()), 7);
    assert_eq!(metrics.count("error/get/type_mismatch"), 1);
    assert_eq!(number.call(()), 7, "now overwritten with its own type");
    assert_eq!(metrics.count("hit"), 1);
}

#[test]
fn a_custom_backend_without_a_fast_path_works_through_the_async_methods() {
    let store = Arc::new(MapStore::default());
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("m:{}")
        .store(store.clone())
        .wrap(move |x: u32| (x, c.bump()))
        .unwrap();
    assert_eq!(f.call(5), (5, 1));
    assert_eq!(f.call(5), (5, 1));
    assert_eq!(calls.get(), 1);
    assert!(store.gets.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn a_store_outage_never_fails_the_call_and_is_counted() {
    let metrics = CountingMetrics::default();
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("k:{}")
        .store(Switch::down())
        .metrics(metrics.clone())
        .wrap(move |x: u32| (x, c.bump()))
        .unwrap();
    assert_eq!(f.call(1), (1, 1));
    assert_eq!(f.call(1), (1, 2), "no cache, but the call works");
    assert_eq!(metrics.count("error/get/store"), 2);
    assert_eq!(metrics.count("error/set/store"), 2);
    assert!(
        f.invalidate(1).is_err(),
        "direct store operations report the error"
    );
}

#[test]
fn metrics_count_hits_misses_and_sets() {
    let metrics = CountingMetrics::default();
    let f = cache(60)
        .key("k:{}")
        .metrics(metrics.clone())
        .wrap(|x: u32| x)
        .unwrap();
    for _ in 0..3 {
        f.call(1);
    }
    f.call(2);
    f.invalidate(2).unwrap();
    assert_eq!(metrics.count("miss"), 2);
    assert_eq!(metrics.count("hit"), 2);
    assert_eq!(metrics.count("set"), 2);
    assert_eq!(metrics.count("delete"), 1);
}

#[test]
fn the_default_name_is_the_functions_name() {
    fn load_config(env: String) -> String {
        env
    }
    let f = cache(5).key("cfg:{}").wrap(load_config).unwrap();
    assert_eq!(f.name(), "load_config");
    let g = cache(5).key("x").name("custom").wrap(|()| 1).unwrap();
    assert_eq!(g.name(), "custom");
}

#[tokio::test]
async fn async_functions_cache_the_same_way() {
    let clock = ManualClock::new(T0);
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(10)
        .key("a:{}")
        .clock(clock.clone())
        .wrap_async(move |x: u32| {
            let c = c.clone();
            async move { (x, c.bump()) }
        })
        .unwrap();
    assert_eq!(f.call(1).await, (1, 1));
    assert_eq!(f.call(1).await, (1, 1));
    clock.advance(10.0);
    assert_eq!(f.call(1).await, (1, 2));
    f.invalidate(1).await.unwrap();
    assert_eq!(f.call(1).await, (1, 3));
    f.clear().await.unwrap();
    assert_eq!(f.call(1).await, (1, 4));

    let g = cache(10)
        .key("r:{}")
        .try_wrap_async(|fail: bool| async move { if fail { Err("no") } else { Ok(1u8) } })
        .unwrap();
    assert_eq!(g.call(true).await, Err("no"));
    assert_eq!(g.call(false).await, Ok(1));
}
