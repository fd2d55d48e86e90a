//! The seed's multi-process pattern, for real: one writer process refreshes
//! a value into Redis on a schedule (`bg::write`); two reader processes
//! serve it from a local in-memory mirror (`bg::read`) that follows Redis on
//! their own schedule. Readers never wait for the writer or for Redis.
//!
//! Run with a Redis on localhost:
//!
//! ```text
//! cargo run --example writer_reader --features redis -- redis://127.0.0.1:6379
//! ```
//!
//! The first process starts the writer and the two readers as child
//! processes (this same binary, with a role argument), waits for each
//! reader to have seen three versions published by the writer, then stops
//! the writer. `tests/writer_reader.rs` runs it against a throwaway server.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use advanced_caching::{Error, RedisCache, bg};
use serde::{Deserialize, Serialize};

/// What the writer publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rates {
    version: u64,
    usd_eur: f64,
}

const KEY: &str = "exchange_rates";
const VERSIONS_WANTED: usize = 3;

fn store(url: &str) -> Result<RedisCache, Error> {
    RedisCache::builder(url).prefix("writer_reader:").build()
}

/// Publishes a new version every 200 ms until its stdin closes.
fn writer(url: &str) -> Result<(), Error> {
    let version = Arc::new(AtomicU64::new(0));
    let rates = bg::write(0.2).key(KEY).store(store(url)?).wrap(move || {
        let version = version.fetch_add(1, Ordering::SeqCst) + 1;
        Rates {
            version,
            usd_eur: 0.9 + version as f64 / 1000.0,
        }
    })?;
    println!("writer: published version {}", rates.get().version);
    // Serve until the parent closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    rates.stop_and_wait();
    println!("writer: stopped");
    Ok(())
}

/// Reads the local mirror in a tight loop until it has seen
/// `VERSIONS_WANTED` versions (or 30 s passed).
fn reader(url: &str, name: &str) -> Result<bool, Error> {
    let rates = bg::read::<Rates>(KEY)
        .store(store(url)?)
        .interval(0.1)
        .build()?;
    let mut versions = BTreeSet::new();
    let mut reads = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while versions.len() < VERSIONS_WANTED && Instant::now() < deadline {
        for _ in 0..10_000 {
            if let Some(rates) = rates.get() {
                reads += 1;
                versions.insert(rates.version);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{name}: {reads} local reads, saw versions {versions:?}");
    Ok(versions.len() >= VERSIONS_WANTED)
}

fn orchestrate(url: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let me = std::env::current_exe()?;
    let mut writer = Command::new(&me)
        .args(["writer", url])
        .stdin(Stdio::piped())
        .spawn()?;
    let readers: Vec<_> = ["reader-1", "reader-2"]
        .into_iter()
        .map(|name| Command::new(&me).args(["reader", url, name]).spawn())
        .collect::<Result<_, _>>()?;
    let mut ok = true;
    for mut reader in readers {
        ok &= reader.wait()?.success();
    }
    drop(writer.stdin.take()); // tells the writer to stop
    ok &= writer.wait()?.success();
    println!(
        "{}",
        if ok {
            "all readers followed the writer"
        } else {
            "FAILED"
        }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result: Result<bool, Box<dyn std::error::Error>> = match args.as_slice() {
        ["writer", url] => writer(url).map(|()| true).map_err(Into::into),
        ["reader", url, name] => reader(url, name).map_err(Into::into),
        [url] => orchestrate(url),
        [] => orchestrate("redis://127.0.0.1:6379"),
        _ => Err("usage: writer_reader [redis-url]".into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("writer_reader: {error}");
            ExitCode::FAILURE
        }
    }
}
