//! GCSCache against a real fake-gcs-server started by the test kit on a
//! free loopback port, behind the test kit's translating proxy (the
//! emulator has no XML upload API, which object_store's GCS client uses).
#![cfg(feature = "gcs")]

mod support;

use std::sync::Arc;

use ac_sched::ManualClock;
use ac_store_object::GCSCache;
use ac_store_object::object_store::gcp::GoogleCloudStorageBuilder;
use ac_store_object::object_store::{ClientOptions, RetryConfig};
use ac_testkit::GcsServer;
use support::{Fixture, T0};

const BUCKET: &str = "cache-tests";

fn fixture(server: &GcsServer) -> Fixture<ac_store_object::Gcs> {
    let base_url = server.base_url();
    ac_store_object::ensure_crypto_provider();
    let raw = GoogleCloudStorageBuilder::new()
        .with_base_url(&base_url)
        .with_bucket_name(BUCKET)
        .with_bearer_token("fake")
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap();
    Fixture {
        builder: Box::new(move |prefix| {
            GCSCache::builder(BUCKET)
                .base_url(base_url.clone())
                .bearer_token("fake")
                .allow_http(true)
                .prefix(prefix)
        }),
        raw: Arc::new(raw),
        clock: ManualClock::new(T0),
    }
}

fn started() -> (GcsServer, Fixture<ac_store_object::Gcs>) {
    let server = GcsServer::start();
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
    support::large_values_go_up_in_parts(&f);
}

#[test]
fn deleting_a_missing_key_is_ok_though_gcs_answers_not_found() {
    let (_server, f) = started();
    let store = f.cache("del/");
    let raw = f.raw.clone();
    let direct = ac_core::block_on(support::ac_store_object_runtime(async move {
        use ac_store_object::object_store::ObjectStoreExt as _;
        raw.delete(&"del/never-set".into()).await
    }));
    assert!(
        matches!(
            direct,
            Err(ac_store_object::object_store::Error::NotFound { .. })
        ),
        "the service itself answers NotFound: {direct:?}"
    );
    ac_core::block_on(ac_core::Store::delete(&store, "never-set")).unwrap();
}

#[test]
fn a_stopped_or_frozen_server_fails_calls_within_the_timeout() {
    let (server, f) = started();
    support::outages_fail_calls_within_the_timeout(&f, &mut || server.pause(), "frozen");
    server.resume();
    let mut server = server;
    support::outages_fail_calls_within_the_timeout(&f, &mut || server.stop(), "stopped");
}
