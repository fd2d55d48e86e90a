//! A failing store logs quietly: warnings rate-limited per cache and
//! operation, keys only at debug level, every event under the
//! `advanced_caching` target.
#![cfg(feature = "file")]

use std::sync::{Arc, Mutex};

use advanced_caching::{LocalFileCache, cache};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event as seen by [`Recorder`]: level, target and every field.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: String,
}

/// A subscriber that keeps every event (no spans): what the tests read.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = String::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn an_outage_logs_one_warning_per_operation_and_keys_only_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = LocalFileCache::builder(&root).build().unwrap();
    // A real fault: the cache directory becomes a plain file, so every read
    // and write of the store fails (ENOTDIR).
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();

    let user = cache(60)
        .key("user:{}")
        .store(store)
        .wrap(|id: u64| format!("secret-{id}"))
        .unwrap();
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        for id in 0..500 {
            assert_eq!(
                user.call(id),
                format!("secret-{id}"),
                "the call goes through"
            );
        }
    });
    let seen = recorder.0.lock().unwrap().clone();
    let warnings: Vec<&Seen> = seen.iter().filter(|e| e.level == Level::WARN).collect();
    assert!(!warnings.is_empty(), "the outage is reported");
    // 500 calls, each a failed get and a failed set: one warning for each
    // operation, not 1000.
    assert!(
        warnings.len() <= 2,
        "{} warnings: {warnings:#?}",
        warnings.len()
    );
    for warning in &warnings {
        assert!(
            !warning.fields.contains("user:"),
            "no key in a warning: {warning:?}"
        );
        assert!(!warning.fields.contains("secret"), "{warning:?}");
    }
    let debug_with_key = seen
        .iter()
        .filter(|e| e.level == Level::DEBUG && e.fields.contains("user:42"))
        .count();
    assert!(debug_with_key >= 1, "keys are at debug level");
    for event in &seen {
        assert!(
            event.target.starts_with("advanced_caching"),
            "every event under the advanced_caching target: {event:?}"
        );
    }
}
