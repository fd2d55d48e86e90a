//! Rust and the Python package `advanced-caching` 1.0.0 share one
//! directory: each reads the other's entries. Needs a Python with the
//! package installed, named by `AC_PYTHON`; `scripts/test` creates that
//! venv and runs these tests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ac_core::{Entry, Store, TypedDecoder, Value, block_on, clock::unix_now};
use ac_store_file::LocalFileCache;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    langs: Vec<String>,
    visits: u64,
    score: f64,
    manager: Option<String>,
}

fn python(script: &str, dir: &Path) -> String {
    let python = std::env::var("AC_PYTHON").expect(
        "AC_PYTHON must name a Python with advanced-caching 1.0.0 installed; scripts/test sets it up",
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PREAMBLE: &str = "import sys, json\n\
    from advanced_caching import LocalFileCache, serializers\n\
    store = LocalFileCache(sys.argv[1], serializer=serializers.json)\n";

#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0); run by scripts/test"]
fn rust_reads_an_entry_python_wrote() {
    let dir = tempfile::tempdir().unwrap();
    python(
        &format!(
            "{PREAMBLE}store.set('k', {{'name': 'ada', 'langs': ['rust', 'python'], \
             'visits': 3, 'score': 0.1, 'manager': None}}, 3600)"
        ),
        dir.path(),
    );
    assert!(
        dir.path().join("k").exists(),
        "Python named the file after the key"
    );
    let store = LocalFileCache::builder(dir.path()).build().unwrap();
    let entry = block_on(store.get("k", &TypedDecoder::<Profile>::new()))
        .unwrap()
        .expect("the Python entry is live");
    let profile = entry.value.downcast_ref::<Profile>().unwrap();
    assert_eq!(
        profile,
        &Profile {
            name: "ada".into(),
            langs: vec!["rust".into(), "python".into()],
            visits: 3,
            score: 0.1,
            manager: None,
        }
    );
    let now = unix_now();
    assert!(
        (entry.created_at - now).abs() < 60.0,
        "created_at {}",
        entry.created_at
    );
    assert!((entry.fresh_until - (entry.created_at + 3600.0)).abs() < 1e-3);
}

#[test]
#[ignore = "needs AC_PYTHON (a venv with advanced-caching 1.0.0); run by scripts/test"]
fn python_reads_an_entry_rust_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileCache::builder(dir.path()).build().unwrap();
    let profile = Profile {
        name: "grace".into(),
        langs: vec!["cobol".into()],
        visits: 1_000_000,
        score: 2.5,
        manager: Some("navy".into()),
    };
    let now = unix_now();
    let entry = Entry::new(Value::new(profile), now + 600.0, now);
    block_on(store.set("k", entry, Some(Duration::from_secs(900)))).unwrap();
    // A key that needs escaping gets a name Python does not use, but the
    // plain key above is shared.
    let out = python(
        &format!("{PREAMBLE}print(json.dumps(store.get('k'), sort_keys=True))"),
        dir.path(),
    );
    assert_eq!(
        out.trim(),
        r#"{"langs": ["cobol"], "manager": "navy", "name": "grace", "score": 2.5, "visits": 1000000}"#
    );
}
