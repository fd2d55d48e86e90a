//! S3Cache against a real moto server started by the test kit on a free
//! loopback port (`scripts/test` installs moto into its venv).
#![cfg(feature = "s3")]

mod support;

use std::sync::Arc;

use ac_sched::ManualClock;
use ac_store_object::S3Cache;
use ac_store_object::object_store::aws::AmazonS3Builder;
use ac_store_object::object_store::{ClientOptions, RetryConfig};
use ac_testkit::S3Server;
use support::{Fixture, T0};

const BUCKET: &str = "cache-tests";

fn fixture(server: &S3Server) -> Fixture<ac_store_object::S3> {
    let endpoint = server.endpoint();
    ac_store_object::ensure_crypto_provider();
    let raw = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap();
    Fixture {
        builder: Box::new(move |prefix| {
            S3Cache::builder(BUCKET)
                .endpoint(endpoint.clone())
                .region("us-east-1")
                .credentials("test", "test")
                .allow_http(true)
                .prefix(prefix)
        }),
        raw: Arc::new(raw),
        clock: ManualClock::new(T0),
    }
}

fn started() -> (S3Server, Fixture<ac_store_object::S3>) {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let fixture = fixture(&server);
    (server, fixture)
}

#[test]
fn conformance() {
    let (_server, f) = started();
    support::conformance(&f);
}

#[test]
fn sixteen_concurrent_set_if_absent_have_one_winner() {
    let (_server, f) = started();
    support::sixteen_racers_one_winner(&f);
}

#[test]
fn expiry_follows_the_keep_until_metadata() {
    let (_server, f) = started();
    support::expired_objects_read_as_misses_and_are_deleted(&f);
    support::objects_without_keep_until_live_while_fresh(&f);
}

#[test]
fn corrupt_objects_are_errors_and_clear_spares_foreign_ones() {
    let (_server, f) = started();
    support::corrupt_foreign_and_truncated_objects_are_errors(&f);
    support::clear_and_sweep_touch_only_this_caches_entries(&f);
}

#[test]
fn keys_map_to_safe_object_names() {
    let (_server, f) = started();
    support::keys_map_to_safe_object_names(&f);
}

#[test]
fn large_values_use_multipart_uploads() {
    let (_server, f) = started();
    let e_tag = support::large_values_go_up_in_parts(&f);
    // S3 names a multipart object's ETag after its part count.
    assert!(e_tag.ends_with("-3\""), "not a 3-part upload: {e_tag}");
}

#[test]
fn a_stopped_or_frozen_server_fails_calls_within_the_timeout() {
    let (server, f) = started();
    support::outages_fail_calls_within_the_timeout(&f, &mut || server.pause(), "frozen");
    server.resume();
    let mut server = server;
    support::outages_fail_calls_within_the_timeout(&f, &mut || server.stop(), "stopped");
}
