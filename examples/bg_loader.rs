//! Background loaders: values refreshed on a schedule so callers never wait.
//! A sync loader on a thread, an async loader on tokio, a writer and a
//! reader, then `bg::shutdown()`.
//!
//! Run with `cargo run --example bg_loader`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use advanced_caching::{Error, InMemCache, bg};

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!("1. A sync loader refreshes every second on its own thread");
    let version = Arc::new(AtomicU32::new(0));
    let v = version.clone();
    let stats = bg(1).key("db_stats").wrap(move || {
        let n = v.fetch_add(1, Ordering::SeqCst) + 1;
        println!("    (counting users, refresh #{n})");
        n * 100
    })?;
    println!(
        "  stats.get() -> {}  (waited for the first load only)",
        stats.get()
    );
    println!("  stats.get() -> {}  (instant)", stats.get());

    println!("\n2. An async loader refreshes on the tokio runtime; errors keep the last value");
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let flags = bg(1)
        .key("feature_flags")
        .on_error(|error| println!("    on_error: {error}"))
        .try_wrap_async(move || {
            let n = a.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n == 2 {
                    Err("remote config unavailable")
                } else {
                    Ok(vec![format!("new_checkout_v{n}")])
                }
            }
        })?;
    println!("  flags -> {:?}", flags.get().await);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    println!(
        "  flags -> {:?}  (the second refresh failed: last value kept)",
        flags.get().await
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    println!(
        "  flags -> {:?}  (the third refresh succeeded)",
        flags.get().await
    );
    println!("  stats -> {}  (refreshed meanwhile)", stats.get());

    println!("\n3. bg::write feeds a store; bg::read mirrors it locally");
    let shared = InMemCache::new(); // a RedisCache across processes
    let rates = bg::write(1)
        .key("exchange_rates")
        .store(shared)
        .wrap(|| vec![("EURUSD".to_string(), 1.08f64)])?;
    rates.get(); // wait for the first write
    let reader = bg::read::<Vec<(String, f64)>>("exchange_rates").build()?;
    println!(
        "  reader.get() -> {:?}  (a local read, never the store)",
        reader.get()
    );
    match bg::write(1)
        .key("exchange_rates")
        .wrap(Vec::<(String, f64)>::new)
    {
        Ok(_) => unreachable!("one writer per key"),
        Err(error) => println!("  a second writer: {error}"),
    }

    println!("\n4. bg::shutdown_async() stops every job and waits for running refreshes");
    bg::shutdown_async().await;
    println!(
        "  stopped; loaders still answer from their last value: stats -> {}",
        stats.get()
    );
    Ok(())
}
