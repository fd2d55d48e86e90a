//! `rediss://`: refused without the `tls` feature (never a silent
//! plaintext connection), and with it, real TLS against a `redis-server
//! --tls-port` whose certificate comes from a throwaway CA.

use ac_core::Error;
use ac_store_redis::RedisCache;

/// TLS URLs in every form fred reads, each with a password that must
/// never travel in clear nor show in the error.
const TLS_URLS: &[&str] = &[
    "rediss://:hunter2@127.0.0.1:6390",
    "REDISS://:hunter2@127.0.0.1:6390/0",
    "rediss-cluster://:hunter2@127.0.0.1:7000?node=127.0.0.1:7001",
    "rediss-sentinel://:hunter2@127.0.0.1:26379/0?sentinelServiceName=mymaster",
    "valkeys://:hunter2@127.0.0.1:6390",
];

fn config_error(result: Result<RedisCache, Error>) -> String {
    match result {
        Err(Error::InvalidConfig { message, .. }) => {
            assert!(!message.contains("hunter2"), "{message}");
            message
        }
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(store) => panic!("expected the URL to be refused, built {store:?}"),
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn without_the_tls_feature_tls_urls_are_refused_not_sent_in_plaintext() {
    // A plaintext server on the port the URL names: the old code connected
    // to it and sent AUTH in clear. Nothing may reach it now.
    let server = ac_testkit::RedisServer::start();
    let port = server.port().to_string();
    let before = server.command_calls("auth");
    for url in TLS_URLS {
        let url = url.replace("6390", &port);
        let message = config_error(RedisCache::builder(url.as_str()).build());
        assert!(message.contains("`redis-tls`"), "{url}: {message}");
        assert!(message.contains("TLS"), "{url}: {message}");
    }
    assert_eq!(server.command_calls("auth"), before, "no AUTH was sent");
    assert!(
        server.cli(&["client", "list"]).lines().count() <= 1,
        "no connection but redis-cli's own: {}",
        server.cli(&["client", "list"])
    );
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::time::Duration;

    use ac_core::{Entry, Store, TypedDecoder, Value, block_on};
    use ac_testkit::{RedisServer, TestCa};

    use super::*;

    fn entry(value: u32) -> Entry {
        Entry::new(Value::new(value), 1_700_000_060.0, 1_700_000_000.0)
    }

    fn get(store: &RedisCache, key: &str) -> Result<Option<u32>, Error> {
        let found = block_on(store.get(key, &TypedDecoder::<u32>::new()))?;
        Ok(found.map(|e| *e.value.downcast_ref::<u32>().expect("a u32")))
    }

    #[test]
    fn a_tls_server_signed_by_the_given_ca_round_trips_with_a_password() {
        let ca = TestCa::new("ac-testkit CA");
        let server = RedisServer::start_tls(&ca, &["--requirepass", "s3cr3t"]);
        let url = format!("rediss://:s3cr3t@127.0.0.1:{}", server.port());
        let store = RedisCache::builder(url.as_str())
            .tls_root_certificates_pem(ca.cert_pem())
            .connect_timeout(Duration::from_secs(5))
            .prefix("tls:")
            .build()
            .unwrap();
        block_on(store.set("k", entry(42), Some(Duration::from_secs(60)))).unwrap();
        assert_eq!(get(&store, "k").unwrap(), Some(42));
        let stored = server.cli(&["-a", "s3cr3t", "--no-auth-warning", "strlen", "tls:k"]);
        assert!(stored.trim().parse::<u64>().unwrap() > 0, "{stored}");

        // "localhost" is in the certificate too.
        let by_name = format!("rediss://:s3cr3t@localhost:{}", server.port());
        let store = RedisCache::builder(by_name)
            .tls_root_certificates_pem(ca.cert_pem())
            .prefix("tls:")
            .build()
            .unwrap();
        assert_eq!(get(&store, "k").unwrap(), Some(42));
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let ca = TestCa::new("ac-testkit CA");
        let other = TestCa::new("ac-testkit other CA");
        let server = RedisServer::start_tls(&ca, &[]);
        let result = RedisCache::builder(server.url())
            .prefix("tls:")
            .tls_root_certificates_pem(other.cert_pem())
            .connect_timeout(Duration::from_millis(500))
            .build();
        // Either the build refuses, or the store never gets a connection:
        // every command is an error, nothing is written.
        if let Ok(store) = result {
            assert!(block_on(store.set("k", entry(1), None)).is_err());
            assert!(get(&store, "k").is_err());
        }
        assert_eq!(server.cli(&["dbsize"]).trim(), "0");
        // The system's roots do not know the throwaway CA either.
        let store = RedisCache::builder(server.url())
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        assert!(get(&store, "k").is_err());
    }

    #[test]
    fn tls_settings_are_checked_at_build() {
        let ca = TestCa::new("ac-testkit CA");
        // TLS settings on a plaintext URL.
        let message = config_error(
            RedisCache::builder("redis://:hunter2@127.0.0.1:6390")
                .tls_root_certificates_pem(ca.cert_pem())
                .build(),
        );
        assert!(message.contains("rediss://"), "{message}");
        // Not a certificate.
        let message = config_error(
            RedisCache::builder(TLS_URLS[0])
                .tls_root_certificates_pem(b"not a pem".to_vec())
                .build(),
        );
        assert!(message.contains("no certificate"), "{message}");
        // TLS over a unix socket, which fred would do in plaintext.
        let message = config_error(RedisCache::builder("rediss+unix:///tmp/none.sock").build());
        assert!(message.contains("unix socket"), "{message}");
    }
}
