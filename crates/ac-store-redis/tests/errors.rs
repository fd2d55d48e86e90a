//! RedisCache errors keep what caused them as their source and say whether
//! they are transient, against a real `redis-server` that refuses
//! connections, is killed, answers with an error, or holds corrupt bytes.

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use ac_core::{Entry, Error, Store, TypedDecoder, Value, block_on};
use ac_store_redis::{RedisCache, Unavailable};
use ac_testkit::RedisServer;

const T: f64 = 1_700_000_000.0;
const MS: fn(u64) -> Duration = Duration::from_millis;

fn entry(value: u32) -> Entry {
    Entry::new(Value::new(value), T + 60.0, T)
}

fn get_u32(store: &dyn Store, key: &str) -> Result<Option<u32>, Error> {
    let found = block_on(store.get(key, &TypedDecoder::<u32>::new()))?;
    Ok(found.map(|e| *e.value.downcast_ref::<u32>().expect("a u32")))
}

/// The first error of type `T` in the source chain of `error`.
fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = error.source();
    while let Some(source) = next {
        if let Some(found) = source.downcast_ref::<T>() {
            return Some(found);
        }
        next = source.source();
    }
    None
}

/// A store over a port where nothing listens (a server started, then
/// killed), with short timeouts.
fn refused() -> RedisCache {
    let mut server = RedisServer::start();
    let url = server.url();
    server.stop();
    RedisCache::builder(&url)
        .connect_timeout(MS(300))
        .timeout(MS(300))
        .prefix("e:")
        .build()
        .expect("an unreachable Redis is not a construction error")
}

#[test]
fn a_refused_connection_is_transient_with_fred_s_io_error_as_the_cause() {
    let store = refused();
    let error = get_u32(&store, "k").unwrap_err();
    assert!(
        matches!(error, Error::Store { store: "redis", .. }),
        "{error}"
    );
    assert!(error.is_transient(), "{error}");
    // The command was not sent: Redis is known to be down, and why.
    let skipped = error.source().and_then(|s| s.downcast_ref::<Unavailable>());
    assert!(
        matches!(skipped, Some(Unavailable::Down { cause: Some(_) })),
        "{error:?}"
    );
    let refused = find_source::<fred::error::Error>(&error)
        .unwrap_or_else(|| panic!("no fred error behind {error:?}"));
    assert_eq!(*refused.kind(), fred::error::ErrorKind::IO, "{refused:?}");
    // Writes fail the same way.
    let error = block_on(store.set("k", entry(1), None)).unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[test]
fn a_killed_server_is_transient_and_the_cause_is_kept() {
    let mut server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .timeout(MS(300))
        .prefix("e:")
        .build()
        .unwrap();
    block_on(store.set("k", entry(1), None)).unwrap();
    server.stop();
    // Whatever the command meets (the lost connection, the reconnecting
    // client, or the outage already seen), the error is transient and its
    // source is fred's error or the store's `Unavailable`.
    for _ in 0..5 {
        let error = get_u32(&store, "k").unwrap_err();
        assert!(error.is_transient(), "{error}");
        let source = error.source().expect("a source");
        assert!(
            source.is::<fred::error::Error>() || source.is::<Unavailable>(),
            "{error:?}"
        );
    }
    // Once the outage is seen, calls are skipped with the cause.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let error = get_u32(&store, "k").unwrap_err();
        let source = error.source().and_then(|s| s.downcast_ref::<Unavailable>());
        if let Some(Unavailable::Down { cause }) = source {
            assert!(cause.is_some(), "{error:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never skipped: {error:?}");
        std::thread::sleep(MS(20));
    }
}

#[test]
fn a_hung_server_is_transient_and_the_source_is_the_timeout() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .timeout(MS(200))
        .prefix("e:")
        .build()
        .unwrap();
    block_on(store.set("k", entry(1), None)).unwrap();
    server.pause();
    let error = get_u32(&store, "k").unwrap_err();
    server.resume();
    assert!(error.is_transient(), "{error}");
    // fred's command timeout, or the store's own deadline, whichever ends
    // first: the source itself, so that it downcasts.
    let timed_out = |source: &(dyn StdError + 'static)| {
        source
            .downcast_ref::<fred::error::Error>()
            .is_some_and(|e| *e.kind() == fred::error::ErrorKind::Timeout)
            || matches!(
                source.downcast_ref::<Unavailable>(),
                Some(Unavailable::NoAnswer(_))
            )
    };
    assert!(error.source().is_some_and(timed_out), "{error:?}");
    // The next call is skipped, with that timeout as the cause.
    let error = get_u32(&store, "k").unwrap_err();
    let skipped = error.source().and_then(|s| s.downcast_ref::<Unavailable>());
    let Some(Unavailable::Down { cause: Some(cause) }) = skipped else {
        panic!("not skipped: {error:?}");
    };
    assert!(timed_out(&**cause), "{error:?}");
}

#[test]
fn an_error_reply_is_not_transient_and_its_source_is_fred_s_error() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("e:")
        .build()
        .unwrap();
    server.cli(&["rpush", "e:list", "a"]);
    let error = get_u32(&store, "list").unwrap_err();
    assert!(!error.is_transient(), "WRONGTYPE will not pass: {error}");
    let reply = error
        .source()
        .and_then(|s| s.downcast_ref::<fred::error::Error>())
        .unwrap_or_else(|| panic!("not fred's error: {error:?}"));
    assert!(reply.details().contains("WRONGTYPE"), "{reply:?}");
    // The store is still up: the next call reaches Redis.
    block_on(store.set("k", entry(3), None)).unwrap();
    assert_eq!(get_u32(&store, "k").unwrap(), Some(3));
}

#[test]
fn corrupt_entries_are_not_transient_and_keep_the_decoder_s_error() {
    let server = RedisServer::start();
    let store = RedisCache::builder(server.url())
        .prefix("e:")
        .build()
        .unwrap();
    server.cli(&["set", "e:short", "xyz"]);
    let error = get_u32(&store, "short").unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert!(!error.is_transient(), "{error}");
    // A valid header and a payload of another type: serde_json's error.
    let text = RedisCache::builder(server.url())
        .prefix("e:")
        .build()
        .unwrap();
    let entry = Entry::new(Value::new(String::from("text")), T + 60.0, T);
    block_on(text.set("text", entry, None)).unwrap();
    let error = get_u32(&store, "text").unwrap_err();
    assert!(matches!(error, Error::Serialization { .. }), "{error}");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error.source().is_some_and(|s| s.is::<serde_json::Error>()),
        "{error:?}"
    );
}

#[test]
fn a_bad_url_keeps_fred_s_error_without_the_password() {
    let error = RedisCache::builder("redis://user:hunter2@[bad")
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidConfig { .. }), "{error}");
    assert!(!error.is_transient());
    assert!(
        error.source().is_some_and(|s| s.is::<fred::error::Error>()),
        "{error:?}"
    );
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
}
