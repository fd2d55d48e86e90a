use std::sync::{Arc, Mutex};

use advanced_caching::{RedisCache, cache};

/// Not serde: fine in memory, refused by a byte store.
#[derive(Clone)]
struct Pool(Arc<Mutex<Vec<u32>>>);

fn cache_pools_in(redis: RedisCache) {
    let _ = cache(60)
        .key("pool")
        .store(redis)
        .wrap(|()| Pool(Arc::new(Mutex::new(Vec::new()))));
}

fn main() {}
