//! Rust and the Python package `advanced-caching` 1.0.0 share one bucket on
//! the same emulator (moto for S3, fake-gcs-server for GCS): each reads the
//! other's entries, with json and with msgpack. Python talks to the
//! emulators with boto3 and google-cloud-storage. Needs a Python with the
//! package installed, named by `AC_PYTHON`; `scripts/test` creates that
//! venv and runs these tests.
#![cfg(any(feature = "s3", feature = "gcs"))]

use std::process::Command;
use std::time::Duration;

use ac_core::{Entry, Store, TypedDecoder, Value, block_on, clock::unix_now};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    langs: Vec<String>,
    visits: u64,
    score: f64,
    manager: Option<String>,
}

const BUCKET: &str = "interop";
const PREFIX: &str = "v1/";

/// Runs `body` after a preamble that binds `store` to the Python package's
/// cache for `service` ("s3" or "gcs") at `endpoint`, with `serializer`
/// ("json" or "msgpack").
fn python(service: &str, endpoint: &str, serializer: &str, body: &str) -> String {
    let python = std::env::var("AC_PYTHON").expect(
        "AC_PYTHON must name a Python with advanced-caching 1.0.0, boto3 and \
         google-cloud-storage installed; scripts/test sets it up",
    );
    let preamble = match service {
        "s3" => {
            "import boto3\n\
             from advanced_caching import S3Cache\n\
             client = boto3.client('s3', endpoint_url=ENDPOINT, region_name='us-east-1',\n\
                 aws_access_key_id='test', aws_secret_access_key='test')\n\
             store = S3Cache(bucket=BUCKET, prefix=PREFIX, s3_client=client, serializer=SER)\n"
        }
        _ => {
            "from google.auth.credentials import AnonymousCredentials\n\
             from google.cloud import storage\n\
             from advanced_caching import GCSCache\n\
             client = storage.Client(project='test', credentials=AnonymousCredentials(),\n\
                 client_options={'api_endpoint': ENDPOINT})\n\
             store = GCSCache(bucket=BUCKET, prefix=PREFIX, client=client, serializer=SER)\n"
        }
    };
    let script = format!(
        "import sys, json\n\
         from advanced_caching import serializers\n\
         ENDPOINT, BUCKET, PREFIX = sys.argv[1], sys.argv[2], sys.argv[3]\n\
         SER = getattr(serializers, sys.argv[4])\n\
         {preamble}{body}"
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(&script)
        .args([endpoint, BUCKET, PREFIX, serializer])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Python writes, Rust reads; Rust writes, Python reads; on `store`
/// (built with `serializer_name`) and the Python cache at `endpoint`.
fn both_ways(service: &str, endpoint: &str, serializer_name: &str, store: &dyn Store) {
    let key = format!("user:{serializer_name}");
    python(
        service,
        endpoint,
        serializer_name,
        &format!(
            "store.set('{key}', {{'name': 'ada', 'langs': ['rust', 'python'], \
             'visits': 3, 'score': 0.1, 'manager': None}}, 3600)"
        ),
    );
    let entry = block_on(store.get(&key, &TypedDecoder::<Profile>::new()))
        .unwrap()
        .unwrap_or_else(|| panic!("{service}/{serializer_name}: the Python entry is live"));
    assert_eq!(
        entry.value.downcast_ref::<Profile>().unwrap(),
        &Profile {
            name: "ada".into(),
            langs: vec!["rust".into(), "python".into()],
            visits: 3,
            score: 0.1,
            manager: None,
        }
    );
    assert!((entry.created_at - unix_now()).abs() < 60.0);
    assert!((entry.fresh_until - (entry.created_at + 3600.0)).abs() < 1e-3);

    let profile = Profile {
        name: "grace".into(),
        langs: vec!["cobol".into()],
        visits: 1_000_000,
        score: 2.5,
        manager: Some("navy".into()),
    };
    let now = unix_now();
    let entry = Entry::new(Value::new(profile), now + 600.0, now);
    let rust_key = format!("rust:{serializer_name}");
    block_on(store.set(&rust_key, entry, Some(Duration::from_secs(900)))).unwrap();
    let out = python(
        service,
        endpoint,
        serializer_name,
        &format!(
            "print(json.dumps(store.get('{rust_key}'), sort_keys=True))\n\
             e = store.get_entry('{rust_key}')\n\
             print(round(e.fresh_until - e.created_at))"
        ),
    );
    assert_eq!(
        out.trim(),
        "{\"langs\": [\"cobol\"], \"manager\": \"navy\", \"name\": \"grace\", \"score\": 2.5, \
         \"visits\": 1000000}\n600",
        "{service}/{serializer_name}"
    );
    // Python's set_if_not_exists sees Rust's entry, and Rust's sees Python's.
    let out = python(
        service,
        endpoint,
        serializer_name,
        &format!("print(store.set_if_not_exists('{rust_key}', 1, 60))"),
    );
    assert_eq!(out.trim(), "False", "{service}/{serializer_name}");
    let won =
        block_on(store.set_if_absent(&key, Entry::new(Value::new(1u8), now + 60.0, now), None))
            .unwrap();
    assert!(!won, "{service}/{serializer_name}: Python's entry is live");
}

#[cfg(feature = "s3")]
#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0); run by scripts/test"]
fn s3_python_and_rust_read_each_others_entries() {
    use ac_store_object::S3Cache;
    let server = ac_testkit::S3Server::start();
    server.create_bucket(BUCKET);
    for name in ["json", "msgpack"] {
        let store = S3Cache::builder(BUCKET)
            .endpoint(server.endpoint())
            .region("us-east-1")
            .credentials("test", "test")
            .allow_http(true)
            .prefix(PREFIX);
        let store = match name {
            "json" => store.serializer(ac_serde::Json),
            _ => store.serializer(ac_serde::MsgPack),
        };
        both_ways("s3", &server.endpoint(), name, &store.build().unwrap());
    }
}

#[cfg(feature = "gcs")]
#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0); run by scripts/test"]
fn gcs_python_and_rust_read_each_others_entries() {
    use ac_store_object::GCSCache;
    let server = ac_testkit::GcsServer::start();
    server.create_bucket(BUCKET);
    for name in ["json", "msgpack"] {
        let store = GCSCache::builder(BUCKET)
            .base_url(server.base_url())
            .bearer_token("fake")
            .allow_http(true)
            .prefix(PREFIX);
        let store = match name {
            "json" => store.serializer(ac_serde::Json),
            _ => store.serializer(ac_serde::MsgPack),
        };
        both_ways(
            "gcs",
            &server.json_api_endpoint(),
            name,
            &store.build().unwrap(),
        );
    }
}
