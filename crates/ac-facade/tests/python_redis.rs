//! Rust and the Python package `advanced-caching` 1.0.0 sharing one real
//! Redis: `bg.write` feeds `bg::read` and the other way round, and a
//! `cache()` entry written by either side is a hit on the other; in JSON
//! and in msgpack. Needs `AC_PYTHON` (a Python with the package and
//! `redis`); `scripts/test` creates that venv and runs these tests.
#![cfg(all(feature = "redis", feature = "msgpack"))]

mod support;

use std::process::Command;

use ac_testkit::RedisServer;
use advanced_caching::{RedisCache, bg, cache, serializers};
use serde::{Deserialize, Serialize};
use support::Calls;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rates {
    base: String,
    eur: f64,
    sources: Vec<String>,
    updated: u64,
}

fn rates(updated: u64) -> Rates {
    Rates {
        base: "USD".into(),
        eur: 0.91,
        sources: vec!["ecb".into(), "fed".into()],
        updated,
    }
}

/// Runs `body` in Python with `store` bound to a `RedisCache` on `url`
/// with `prefix` and `serializer` (`json` or `msgpack`); returns stdout.
fn python(url: &str, prefix: &str, serializer: &str, body: &str) -> String {
    let python = std::env::var("AC_PYTHON").expect(
        "AC_PYTHON must name a Python with advanced-caching 1.0.0 and redis; scripts/test sets it up",
    );
    let script = format!(
        "import json, redis\n\
         from advanced_caching import RedisCache, bg, cache, serializers\n\
         store = RedisCache(redis.Redis.from_url({url:?}), prefix={prefix:?}, \
         serializer=serializers.{serializer})\n\
         {body}\n"
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "python failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn store(server: &RedisServer, prefix: &str, format: &str) -> RedisCache {
    let builder = RedisCache::builder(server.url()).prefix(prefix);
    match format {
        "json" => builder.serializer(serializers::Json),
        _ => builder.serializer(serializers::MsgPack),
    }
    .build()
    .unwrap()
}

fn interop(format: &str) {
    let server = RedisServer::start();
    let url = server.url();

    // Python bg.write feeds a Rust bg::read.
    python(
        &url,
        "bg:",
        format,
        "@bg.write(60, key='rates', store=store)\n\
         def rates():\n    return {'base': 'USD', 'eur': 0.91, 'sources': ['ecb', 'fed'], 'updated': 1}\n\
         bg.shutdown()",
    );
    let reader = bg::read::<Rates>("rates")
        .store(store(&server, "bg:", format))
        .interval(60)
        .build()
        .unwrap();
    assert_eq!(reader.get(), Some(rates(1)), "Rust reads Python's bg.write");
    drop(reader);

    // A Rust bg::write feeds a Python bg.read.
    let writer = bg::write(60)
        .key(format!("rust-rates-{format}"))
        .store(store(&server, "bg:", format))
        .wrap(|| rates(2))
        .unwrap();
    assert_eq!(writer.get(), rates(2));
    let seen = python(
        &url,
        "bg:",
        format,
        &format!(
            "reader = bg.read('rust-rates-{format}', interval=60, store=store)\n\
             print(json.dumps(reader()))\n\
             bg.shutdown()"
        ),
    );
    let seen: Rates = serde_json::from_str(seen.trim()).unwrap();
    assert_eq!(seen, rates(2), "Python reads Rust's bg::write");
    drop(writer);

    // cache(): Python writes, Rust hits (the Rust function never runs).
    python(
        &url,
        "c:",
        format,
        "@cache(300, key='rates:{}', store=store)\n\
         def get(day):\n    return {'base': 'USD', 'eur': 0.91, 'sources': ['ecb', 'fed'], 'updated': day}\n\
         get(7)",
    );
    let calls = Calls::default();
    let counted = calls.clone();
    let get = cache(300)
        .key("rates:{}")
        .store(store(&server, "c:", format))
        .wrap(move |day: u64| {
            counted.bump();
            rates(day + 1000)
        })
        .unwrap();
    assert_eq!(get.call(7), rates(7), "a hit on Python's entry");
    assert_eq!(calls.get(), 0);

    // Rust writes, Python hits (its function would answer 'python').
    assert_eq!(get.call(8), rates(1008));
    let seen = python(
        &url,
        "c:",
        format,
        "@cache(300, key='rates:{}', store=store)\n\
         def get(day):\n    return 'python'\n\
         print(json.dumps(get(8)))",
    );
    let seen: Rates = serde_json::from_str(seen.trim()).unwrap();
    assert_eq!(seen, rates(1008), "a hit on Rust's entry");
}

#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0 and redis); run by scripts/test"]
fn python_and_rust_share_redis_in_json() {
    interop("json");
}

#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0 and redis); run by scripts/test"]
fn python_and_rust_share_redis_in_msgpack() {
    interop("msgpack");
}
