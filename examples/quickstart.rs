//! Quick start: TTL, stale-while-revalidate, key forms, invalidate and
//! clear, for sync and async functions, on the default in-memory store.
//!
//! Run with `cargo run --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use advanced_caching::{Error, cache};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

async fn fetch_user(id: u64) -> User {
    println!("    (database query for user {id})");
    tokio::time::sleep(Duration::from_millis(50)).await;
    User {
        id,
        name: format!("user-{id}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!("1. TTL on an async function: `cache(60).key(\"user:{{}}\")`");
    let get_user = cache(60).key("user:{}").wrap_async(fetch_user)?;
    println!(
        "  get_user(42) -> {:?}  (miss: ran the query)",
        get_user.call(42).await
    );
    println!(
        "  get_user(42) -> {:?}  (hit: no query)",
        get_user.call(42).await
    );

    println!("\n2. TTL on a sync function: `cache(300).key(\"config:{{}}\")`");
    let load_config = cache(300).key("config:{}").wrap(|env: String| {
        println!("    (reading config/{env}.yaml)");
        format!("settings for {env}")
    })?;
    println!(
        "  load_config(prod) -> {:?}",
        load_config.call("prod".into())
    );
    println!(
        "  load_config(prod) -> {:?}  (hit)",
        load_config.call("prod".into())
    );

    println!("\n3. Several arguments take a tuple; keys index it or use a closure");
    let get_order = cache(60)
        .key("order:{0}:{1}")
        .wrap(|(user, order): (u64, u64)| format!("order {order} of user {user}"))?;
    println!(
        "  key {:?} -> {:?}",
        get_order.key(&(7, 1001)),
        get_order.call((7, 1001))
    );
    let by_role = cache(60)
        .key(|(uid, role): &(u64, String)| format!("user:{role}:{uid}"))
        .wrap(|(uid, role): (u64, String)| format!("{role} #{uid}"))?;
    println!("  key {:?}", by_role.key(&(3, "admin".into())));

    println!("\n4. Stale-while-revalidate: ttl 1 s, then 2 s of stale serving");
    let version = Arc::new(AtomicU32::new(0));
    let v = version.clone();
    let get_price = cache(1)
        .stale(2)
        .key("price:{}")
        .wrap_async(move |symbol: &'static str| {
            let v = v.clone();
            async move {
                let n = v.fetch_add(1, Ordering::SeqCst) + 1;
                println!("    (exchange API call #{n} for {symbol})");
                tokio::time::sleep(Duration::from_millis(100)).await;
                100.0 + f64::from(n)
            }
        })?;
    println!(
        "  t=0.0 s  price -> {}  (miss: caller waited)",
        get_price.call("BTC").await
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    println!(
        "  t=1.2 s  price -> {}  (stale: returned at once, refreshing in background)",
        get_price.call("BTC").await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "  t=1.5 s  price -> {}  (refreshed value, fresh again)",
        get_price.call("BTC").await
    );

    println!("\n5. Functions returning Result cache only Ok");
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let flaky = cache(60).key("flaky").try_wrap(move |()| {
        if a.fetch_add(1, Ordering::SeqCst) == 0 {
            Err("upstream timeout")
        } else {
            Ok("payload".to_string())
        }
    })?;
    println!("  flaky() -> {:?}  (error: not cached)", flaky.call(()));
    println!("  flaky() -> {:?}  (ran again, cached now)", flaky.call(()));
    println!("  flaky() -> {:?}  (hit)", flaky.call(()));

    println!("\n6. Invalidate one entry, or clear the store");
    get_user.invalidate(42).await?;
    println!(
        "  after invalidate(42): {:?}  (miss again)",
        get_user.call(42).await
    );
    load_config.clear()?;
    println!(
        "  after clear(): {:?}  (miss again)",
        load_config.call("prod".into())
    );

    println!("\n7. Misconfiguration is an error at construction, naming the key");
    match cache(60).key("user:{user_id}").wrap(|id: u64| id) {
        Ok(_) => unreachable!("named placeholders are refused"),
        Err(error) => println!("  {error}"),
    }
    Ok(())
}
