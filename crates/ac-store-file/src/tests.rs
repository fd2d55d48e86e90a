use std::sync::Arc;
use std::thread;

use ac_core::ManualClock;
use ac_core::{TypedDecoder, Value, block_on};

use super::*;

const T0: f64 = 1_700_000_000.0;

fn builder(dir: &Path, clock: &ManualClock) -> LocalFileCacheBuilder {
    LocalFileCache::builder(dir).clock(clock.clone())
}

fn store(dir: &Path, clock: &ManualClock) -> LocalFileCache {
    builder(dir, clock).build().unwrap()
}

fn entry<V: ac_core::SerdeValue>(value: V, fresh_until: f64) -> Entry {
    Entry::new(Value::new(value), fresh_until, T0)
}

fn get<V: ac_core::SerdeValue>(cache: &LocalFileCache, key: &str) -> Result<Option<V>, Error> {
    Ok(block_on(cache.get(key, &TypedDecoder::<V>::new()))?
        .and_then(|e| e.value.downcast_ref::<V>().cloned()))
}

#[test]
fn passes_the_store_conformance_suite_compressed_and_not() {
    for compress in [true, false] {
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = ManualClock::new(T0);
        let cache = builder(dir.path(), &clock)
            .compress(compress)
            .build()
            .unwrap();
        let sibling = store(other.path(), &clock);
        let advance = |secs: f64| clock.advance(secs);
        ac_core::conformance::run_all(&ac_core::conformance::Harness {
            store: &cache,
            advance: Some(&advance),
            sibling: Some(&sibling),
        });
    }
}

#[test]
fn stale_entries_are_kept_for_their_whole_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cache = store(dir.path(), &clock);
    // Fresh for 60 s, kept for 90 s (ttl + stale), as the policy writes it.
    block_on(cache.set("k", entry(1u8, T0 + 60.0), Some(Duration::from_secs(90)))).unwrap();
    clock.set(T0 + 75.0);
    assert_eq!(get::<u8>(&cache, "k").unwrap(), Some(1), "stale but kept");
    clock.set(T0 + 90.5);
    assert_eq!(get::<u8>(&cache, "k").unwrap(), None, "gone after its ttl");
    assert_eq!(cache.sweep().unwrap(), 1);
    assert!(!cache.path_of("k").exists());
}

#[test]
fn a_corrupt_file_is_an_error_naming_it_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    for garbage in [&b""[..], b"\x1f\x8b garbage", b"not gzip at all"] {
        fs::write(cache.path_of("bad"), garbage).unwrap();
        let error = get::<String>(&cache, "bad").unwrap_err().to_string();
        assert!(
            error.contains("corrupt entry") && error.contains("bad"),
            "{error}"
        );
    }
}

#[test]
fn clear_spares_files_that_only_look_like_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path())
        .compress(false)
        .build()
        .unwrap();
    // 16+ bytes decode as two floats, but not as plausible entry times.
    fs::write(
        dir.path().join("README.md"),
        "# a readme, not a cache entry\n",
    )
    .unwrap();
    block_on(cache.set("k", entry(1u8, f64::INFINITY), None)).unwrap();
    block_on(cache.clear()).unwrap();
    assert!(dir.path().join("README.md").exists());
    assert!(!cache.path_of("k").exists());
}

#[test]
fn a_huge_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    let huge = File::create(cache.path_of("huge")).unwrap();
    huge.set_len(ac_serde::codec::MAX_INFLATED + 1).unwrap(); // sparse
    let error = get::<String>(&cache, "huge").unwrap_err().to_string();
    assert!(error.contains("more than an entry may hold"), "{error}");
}

#[test]
fn a_deduplicated_write_still_extends_the_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cache = builder(dir.path(), &clock)
        .dedupe_writes(true)
        .build()
        .unwrap();
    let same = entry(String::from("v"), T0 + 5.0);
    block_on(cache.set("k", same.clone(), Some(Duration::from_secs(10)))).unwrap();
    clock.advance(8.0);
    block_on(cache.set("k", same, Some(Duration::from_secs(10)))).unwrap();
    clock.advance(8.0); // 16 s after the first write, 8 s after the second
    assert_eq!(get::<String>(&cache, "k").unwrap().as_deref(), Some("v"));
}

#[test]
fn clear_removes_only_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    block_on(cache.set("a", entry(1u8, f64::INFINITY), None)).unwrap();
    block_on(cache.set("b/c", entry(2u8, f64::INFINITY), None)).unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub").join("a"), "nested").unwrap();
    block_on(cache.clear()).unwrap();
    assert!(!cache.path_of("a").exists() && !cache.path_of("b/c").exists());
    assert_eq!(
        fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(dir.path().join("sub").join("a").exists());
}

#[test]
fn dedupe_writes_skips_identical_bytes() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path())
        .dedupe_writes(true)
        .build()
        .unwrap();
    let same = entry(String::from("v"), f64::INFINITY);
    block_on(cache.set("k", same.clone(), None)).unwrap();
    let inode = fs::metadata(cache.path_of("k")).unwrap().ino();
    block_on(cache.set("k", same, None)).unwrap();
    assert_eq!(
        fs::metadata(cache.path_of("k")).unwrap().ino(),
        inode,
        "not rewritten"
    );
    block_on(cache.set("k", entry(String::from("w"), f64::INFINITY), None)).unwrap();
    assert_ne!(
        fs::metadata(cache.path_of("k")).unwrap().ino(),
        inode,
        "rewritten"
    );
}

#[test]
fn a_bad_gzip_level_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = LocalFileCache::builder(dir.path())
        .compress_level(11)
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("gzip level must be 0 to 9, got 11")
    );
}

/// Values whose every byte says which writer wrote it, so a torn file
/// (bytes of two writers) is detectable.
fn value_of(writer: u8) -> String {
    char::from(b'a' + writer).to_string().repeat(64 * 1024)
}

fn assert_whole(value: &str) {
    let first = value.as_bytes()[0];
    assert!(
        value.len() == 64 * 1024 && value.bytes().all(|b| b == first),
        "torn value"
    );
}

#[test]
fn concurrent_writers_never_leave_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(LocalFileCache::builder(dir.path()).build().unwrap());
    block_on(cache.set("hot", entry(value_of(0), f64::INFINITY), None)).unwrap();
    thread::scope(|s| {
        for writer in 0..6u8 {
            let cache = &cache;
            s.spawn(move || {
                for _ in 0..30 {
                    block_on(cache.set("hot", entry(value_of(writer), f64::INFINITY), None))
                        .unwrap();
                }
            });
        }
        for _ in 0..2 {
            let cache = &cache;
            s.spawn(move || {
                for _ in 0..100 {
                    assert_whole(&get::<String>(cache, "hot").unwrap().unwrap());
                }
            });
        }
    });
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Run by `two_processes_never_tear_a_file` in a child process.
#[test]
#[ignore = "a helper process of two_processes_never_tear_a_file"]
fn child_writer() {
    let Ok(dir) = std::env::var("AC_FILE_TEST_DIR") else {
        return;
    };
    let cache = LocalFileCache::builder(dir).build().unwrap();
    for _ in 0..60 {
        block_on(cache.set("shared", entry(value_of(7), f64::INFINITY), None)).unwrap();
        assert_whole(&get::<String>(&cache, "shared").unwrap().unwrap());
    }
}

#[test]
fn two_processes_never_tear_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    block_on(cache.set("shared", entry(value_of(1), f64::INFINITY), None)).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::child_writer", "--ignored", "--quiet"])
        .env("AC_FILE_TEST_DIR", dir.path())
        .spawn()
        .unwrap();
    for _ in 0..60 {
        block_on(cache.set("shared", entry(value_of(1), f64::INFINITY), None)).unwrap();
        assert_whole(&get::<String>(&cache, "shared").unwrap().unwrap());
    }
    assert!(
        child.wait().unwrap().success(),
        "the child process saw a torn file"
    );
}
