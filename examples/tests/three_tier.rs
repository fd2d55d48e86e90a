//! Runs `examples/three_tier.rs` against a throwaway `redis-server` and a
//! throwaway moto (S3) server, and checks every tier holds the entry.
#![cfg(feature = "object")]

use std::path::PathBuf;
use std::process::Command;

use advanced_caching::crates::core::block_on;
use advanced_caching::{S3Cache, Store, TypedDecoder};

/// `target/<profile>/examples/three_tier`, which `cargo test` builds with
/// the other examples; built here when a filtered run skipped it.
fn example() -> PathBuf {
    let mut profile_dir = std::env::current_exe().unwrap();
    profile_dir.pop();
    if profile_dir.ends_with("deps") {
        profile_dir.pop();
    }
    let path = profile_dir.join("examples").join("three_tier");
    if !path.exists() {
        let target_dir = profile_dir.parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "three_tier", "--features", "object"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cargo build --example three_tier");
        assert!(status.success(), "building the example failed");
    }
    path
}

#[test]
fn the_three_tiers_serve_and_hold_the_report() {
    let redis = ac_testkit::RedisServer::start();
    let s3 = ac_testkit::S3Server::start();
    s3.create_bucket("reports");
    let example = example();
    let out = Command::new(&example)
        .args([redis.url(), s3.endpoint(), "reports".into()])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("computing report 7").count(),
        1,
        "computed once for both processes: {stdout}"
    );
    assert!(stdout.contains("report 7: 1000 rows"), "{stdout}");
    // L2 holds it with an expiry of at most an hour; L3 holds the object.
    let pttl = redis.pttl("v1:report:7");
    assert!((1..=3_600_000).contains(&pttl), "PTTL {pttl}");
    let l3 = S3Cache::builder("reports")
        .endpoint(s3.endpoint())
        .region("us-east-1")
        .credentials("test", "test")
        .allow_http(true)
        .prefix("v1/")
        .build()
        .unwrap();
    let entry = block_on(l3.get("report:7", &TypedDecoder::<Report>::new()))
        .unwrap()
        .expect("the report is in S3");
    let report = entry.value.downcast_ref::<Report>().unwrap();
    assert_eq!((report.day, report.rows.len()), (7, 1000));
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Report {
    day: u32,
    rows: Vec<u64>,
}
