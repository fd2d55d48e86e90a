//! LocalFileCache errors keep the `io::Error` (or the decoder's error) as
//! their source and are not transient, on the real file system: a missing
//! directory, a read-only one, a path that is a file, corrupt entries.

use std::error::Error as StdError;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use ac_core::{Entry, Error, Store, TypedDecoder, Value, block_on};
use ac_store_file::LocalFileCache;

const T: f64 = 1_700_000_000.0;

fn entry(value: u32) -> Entry {
    Entry::new(Value::new(value), T + 60.0, T)
}

fn get(cache: &LocalFileCache, key: &str) -> Result<Option<u32>, Error> {
    Ok(block_on(cache.get(key, &TypedDecoder::<u32>::new()))?
        .and_then(|e| e.value.downcast_ref::<u32>().copied()))
}

/// The kind of the `io::Error` that is `error`'s source.
fn io_kind(error: &Error) -> Option<io::ErrorKind> {
    error
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind)
}

#[test]
fn a_removed_directory_fails_writes_with_not_found_and_reads_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let cache = LocalFileCache::builder(&path).build().unwrap();
    block_on(cache.set("k", entry(1), None)).unwrap();
    fs::remove_dir_all(&path).unwrap();
    let error = block_on(cache.set("k", entry(2), None)).unwrap_err();
    assert!(
        matches!(error, Error::Store { store: "file", .. }),
        "{error}"
    );
    assert_eq!(io_kind(&error), Some(io::ErrorKind::NotFound), "{error:?}");
    assert!(!error.is_transient(), "a missing directory needs a fix");
    assert!(
        error.to_string().contains("cache"),
        "names the path: {error}"
    );
    assert_eq!(get(&cache, "k").unwrap(), None, "a missing file is a miss");
}

#[test]
fn a_directory_that_is_a_file_is_refused_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    let error = LocalFileCache::builder(file.join("cache"))
        .build()
        .unwrap_err();
    assert!(io_kind(&error).is_some(), "{error:?}");
    assert!(!error.is_transient(), "{error}");
}

/// Makes `dir` read-only for this process: permissions for a normal
/// user; root ignores those, so the immutable attribute (`chattr +i`)
/// then. Returns whether it is read-only now.
fn make_read_only(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let writable = || {
        let probe = dir.join(".probe");
        let created = fs::write(&probe, b"").is_ok();
        let _ = fs::remove_file(&probe);
        created
    };
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
    if !writable() {
        return true;
    }
    let immutable = Command::new("chattr").arg("+i").arg(dir).status();
    immutable.is_ok_and(|s| s.success()) && !writable()
}

/// Undoes [`make_read_only`] when dropped (also when a check panics), so
/// the temporary directory can go.
struct Writable<'a>(&'a Path);

impl Drop for Writable<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        let _ = fs::set_permissions(self.0, fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_read_only_directory_fails_writes_with_its_io_error_not_transient() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    block_on(cache.set("kept", entry(1), None)).unwrap();
    let _writable_again = Writable(dir.path());
    assert!(
        make_read_only(dir.path()),
        "cannot make a read-only directory here (neither permissions nor chattr)"
    );
    let error = block_on(cache.set("k", entry(2), None)).unwrap_err();
    let kind = io_kind(&error);
    assert!(
        matches!(
            kind,
            Some(io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem)
        ),
        "{error:?}"
    );
    assert!(!error.is_transient(), "{error}");
    let error = block_on(cache.set_if_absent("lock", entry(3), None)).unwrap_err();
    assert!(io_kind(&error).is_some(), "{error:?}");
    assert!(!error.is_transient(), "{error}");
    // Reading still works.
    assert_eq!(get(&cache, "kept").unwrap(), Some(1));
}

#[test]
fn corrupt_entries_are_not_transient_and_keep_the_decoder_s_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LocalFileCache::builder(dir.path()).build().unwrap();
    fs::write(cache.path_of("plain"), b"not gzip at all").unwrap();
    let error = get(&cache, "plain").unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert!(!error.is_transient(), "{error}");
    // A gzip stream cut short: gzip's own I/O error is the source.
    block_on(cache.set("cut", entry(1), None)).unwrap();
    let bytes = fs::read(cache.path_of("cut")).unwrap();
    fs::write(cache.path_of("cut"), &bytes[..bytes.len() / 2]).unwrap();
    let error = get(&cache, "cut").unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert!(io_kind(&error).is_some(), "{error:?}");
    assert!(!error.is_transient(), "{error}");
    assert!(error.to_string().contains("cut"), "names the file: {error}");
    // Valid framing, a payload of another type: serde_json's error.
    let text = Entry::new(Value::new(String::from("text")), T + 60.0, T);
    block_on(cache.set("text", text, None)).unwrap();
    let error = get(&cache, "text").unwrap_err();
    assert!(matches!(error, Error::Serialization { .. }), "{error}");
    assert!(
        error.source().is_some_and(|s| s.is::<serde_json::Error>()),
        "{error:?}"
    );
}
