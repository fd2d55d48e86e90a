//! Runs `examples/writer_reader.rs` (one writer and two reader processes)
//! against a throwaway `redis-server`.
#![cfg(feature = "redis")]

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/writer_reader`, which `cargo test` builds
/// with the other examples; built here when a filtered run skipped it.
fn example() -> PathBuf {
    let mut profile_dir = std::env::current_exe().unwrap();
    profile_dir.pop(); // the test binary
    if profile_dir.ends_with("deps") {
        profile_dir.pop();
    }
    let path = profile_dir.join("examples").join("writer_reader");
    if !path.exists() {
        let target_dir = profile_dir.parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "writer_reader", "--features", "redis"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cargo build --example writer_reader");
        assert!(status.success(), "building the example failed");
    }
    path
}

#[test]
fn one_writer_and_two_readers_share_redis() {
    let server = ac_testkit::RedisServer::start();
    let example = example();
    let out = Command::new(&example)
        .arg(server.url())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("writer: published version 1"), "{stdout}");
    for reader in ["reader-1", "reader-2"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(reader))
            .unwrap_or_else(|| panic!("no report from {reader}: {stdout}"));
        assert!(line.contains("saw versions {"), "{line}");
    }
    assert!(
        stdout.contains("all readers followed the writer"),
        "{stdout}"
    );
    // The writer's key lives in Redis, with an expiry.
    let pttl = server.pttl("writer_reader:exchange_rates");
    assert!(pttl > 0, "PTTL {pttl}");
}
