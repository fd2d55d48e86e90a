//! The seed's three-tier setup: an in-process `InMemCache` (L1, 60 s), a
//! shared `RedisCache` (L2, 1 h) and a durable `S3Cache` (L3, 1 day) as one
//! `ChainCache`, behind one cached function.
//!
//! ```text
//! cargo run --example three_tier --features object -- \
//!     redis://127.0.0.1:6379 http://127.0.0.1:9000 my-bucket
//! ```
//!
//! The S3 endpoint may be AWS's (`https://s3.eu-west-1.amazonaws.com`) or
//! any S3-compatible service; credentials come from the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), as object_store reads
//! them. `tests/three_tier.rs` runs it against a throwaway redis-server
//! and moto.

use std::process::ExitCode;

use advanced_caching::{ChainCache, Error, InMemCache, RedisCache, S3Cache, cache};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    day: u32,
    rows: Vec<u64>,
}

fn tiers(redis_url: &str, s3_endpoint: &str, bucket: &str) -> Result<ChainCache, Error> {
    let l1 = InMemCache::new();
    let l2 = RedisCache::builder(redis_url).prefix("v1:").build()?;
    let l3 = S3Cache::builder(bucket)
        .endpoint(s3_endpoint)
        .allow_http(s3_endpoint.starts_with("http://"))
        .prefix("v1/")
        .build()?;
    // ttls=[60, 3600, 86400], as in the seed's `ChainCache.build(l1, l2, l3, ...)`.
    ChainCache::builder()
        .level_with_ttl(l1, 60)
        .level_with_ttl(l2, 3600)
        .level_with_ttl(l3, 86_400)
        .build()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [redis_url, s3_endpoint, bucket] = args.as_slice() else {
        eprintln!("usage: three_tier REDIS_URL S3_ENDPOINT BUCKET");
        return ExitCode::FAILURE;
    };
    let run = || -> Result<(), Error> {
        let store = tiers(redis_url, s3_endpoint, bucket)?;
        let report = cache(86_400)
            .key("report:{}")
            .store(store.clone())
            .wrap(|day: u32| {
                println!("computing report {day}");
                Report {
                    day,
                    rows: (0..1000).map(|i| i * u64::from(day)).collect(),
                }
            })?;
        let first = report.call(7); // a miss: computed, written to all three tiers
        let again = report.call(7); // an L1 hit
        assert_eq!(first, again);
        // Another process (its own L1) finds it in Redis, or S3 if Redis
        // lost it: here, a fresh chain over the same Redis and bucket.
        let other = tiers(redis_url, s3_endpoint, bucket)?;
        let elsewhere = cache(86_400)
            .key("report:{}")
            .store(other)
            .wrap(|_: u32| Report {
                day: 0,
                rows: Vec::new(),
            })?;
        assert_eq!(elsewhere.call(7), first, "served by a shared tier");
        println!("report 7: {} rows, served from the tiers", first.rows.len());
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("three_tier: {error}");
            ExitCode::FAILURE
        }
    }
}
