use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use advanced_caching::{Entry, InMemCache, Store, StoreFor, cache};
fn main() {
    let mode = std::env::args().nth(1).unwrap();
    let v = Arc::new("v".repeat(100));
    let mut total = Duration::ZERO;
    for _ in 0..std::env::args().nth(2).map_or(20, |n| n.parse().unwrap()) {
        if mode == "set" {
            let store = InMemCache::new();
            let mut key = String::new();
            let started = Instant::now();
            for i in 0..100_000u64 {
                key.clear();
                let _ = write!(key, "m:{i}");
                let entry = Entry::new(<InMemCache as StoreFor<Arc<String>>>::wrap(v.clone()), 2e9, 1.7e9);
                black_box(advanced_caching::crates::core::block_on(store.set(&key, entry, Some(Duration::from_secs(3600))))).unwrap();
            }
            total += started.elapsed();
        } else {
            let v = v.clone();
            let f = cache(3600).key("m:{}").store(InMemCache::new()).wrap(move |_: u64| v.clone()).unwrap();
            let started = Instant::now();
            for i in 0..100_000u64 { black_box(f.call(i)); }
            total += started.elapsed();
        }
    }
    println!("{mode}: {:.1} ns/op", total.as_nanos() as f64 / 2e6);
}
