//! `LocalFileCache::path_of`, the key -> file name escaping of the file
//! store, for pairs of arbitrary keys:
//! - the path is the directory plus exactly one normal component: no `/`,
//!   no NUL, not `.`/`..`, not hidden (those names are for temporary and
//!   lock files), at most 200 bytes;
//! - the name decodes back to the key (a left inverse, written here
//!   independently of the crate), or is `~h` + the key's SHA-256: so the
//!   mapping is injective;
//! - different keys get different names.
#![no_main]

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use ac_store_file::LocalFileCache;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn store() -> &'static LocalFileCache {
    static STORE: OnceLock<LocalFileCache> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ac-fuzz-file-name-{}", std::process::id()));
        LocalFileCache::builder(dir).build().expect("a temporary directory")
    })
}

fuzz_target!(|keys: (&str, &str)| {
    let (a, b) = keys;
    let name_a = checked_name(a);
    let name_b = checked_name(b);
    if a != b {
        assert_ne!(name_a, name_b, "{a:?} and {b:?} share a file");
    }
});

fn checked_name(key: &str) -> String {
    let store = store();
    let path: PathBuf = store.path_of(key);
    assert_eq!(
        path.parent(),
        Some(store.dir()),
        "{key:?} -> {path:?} leaves the directory"
    );
    let rest: Vec<Component<'_>> = path
        .strip_prefix(store.dir())
        .expect("inside")
        .components()
        .collect();
    let [Component::Normal(name)] = rest[..] else {
        panic!("{key:?} -> {path:?} is not one plain name");
    };
    let name = name.to_str().expect("names are UTF-8").to_owned();
    assert!(!name.contains(['/', '\0']), "{key:?} -> {name:?}");
    assert!(
        name != "." && name != ".." && !name.starts_with('.'),
        "{key:?} -> {name:?}"
    );
    assert!(!name.is_empty() && name.len() <= 200, "{key:?} -> {name:?}");
    assert!(
        decodes_to(&name, key),
        "{key:?} -> {name:?} does not decode back"
    );
    name
}

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'_' | b'-' | b'.')
}

/// Whether `name` is the name of `key` only: the key itself, `~` and the
/// key percent-encoded (uppercase hex, plain bytes kept), or `~h` and the
/// key's SHA-256 in lowercase hex.
fn decodes_to(name: &str, key: &str) -> bool {
    let Some(escaped) = name.strip_prefix('~') else {
        return name == key && name.bytes().all(is_plain);
    };
    if let Some(hex) = escaped.strip_prefix('h')
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        // An escaped key cannot look like this: `h` + 64 hex digits is a
        // plain key, its own name.
        let digest: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return hex == digest;
    }
    let mut decoded = Vec::new();
    let mut bytes = escaped.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                let [Some(hi), Some(lo)] = hex else {
                    return false;
                };
                let digit = |d: u8| match d {
                    b'0'..=b'9' => Some(d - b'0'),
                    b'A'..=b'F' => Some(d - b'A' + 10),
                    _ => None,
                };
                let (Some(hi), Some(lo)) = (digit(hi), digit(lo)) else {
                    return false;
                };
                let byte = hi * 16 + lo;
                if is_plain(byte) {
                    return false; // plain bytes are never escaped
                }
                decoded.push(byte);
            }
            byte if is_plain(byte) => decoded.push(byte),
            _ => return false,
        }
    }
    decoded == key.as_bytes()
}
