//! Key -> object name: collision-free, valid on S3 and GCS, and the key
//! itself wherever the Python package's `prefix + key` is a sound name.

use sha2::{Digest, Sha256};

/// The longest object name, prefix included, in bytes (S3 and GCS: 1024).
pub(crate) const MAX_NAME: usize = 1024;

/// Bytes a hashed name takes: `~h` and 64 hex digits.
pub(crate) const HASHED_LEN: usize = 66;

/// Characters a key may hold and still be its own object name: ASCII
/// letters and digits, `!$&'()+,-.:;=@_`, `/` between non-empty segments
/// other than `.` and `..`, and any non-ASCII character that is not a
/// control character. None of these is percent-encoded by object_store or
/// needs avoiding on S3 or GCS; `~` and `%` are not among them.
fn is_safe(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!$&'()+,-.:;=@_".contains(c)
    } else {
        !c.is_control()
    }
}

fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && key.chars().all(|c| c == '/' || is_safe(c))
}

/// The object name of `key` under `prefix` (`prefix` as validated by the
/// builder):
/// - a key of [safe](is_safe) characters, with `/` only between non-empty
///   segments that are not `.` or `..`, is its own name: `prefix + key`,
///   as the Python package writes it;
/// - any other key is `~` followed by its bytes, those outside the safe
///   characters (and `/`) percent-encoded as `%XX`: injective, a single
///   name segment, and never equal to a name of the first kind, which
///   holds no `~` or `%`;
/// - a name that would exceed 1024 bytes is `~h` and the key's SHA-256
///   in hex (the escaped form of a key is never `~h` and 64 hex digits:
///   such a key is safe and is its own name).
///
/// No name holds a control character, an empty, `.` or `..` segment, or
/// more than 1024 bytes.
pub(crate) fn object_name(prefix: &str, key: &str) -> String {
    let budget = MAX_NAME - prefix.len();
    let mut name = String::with_capacity(prefix.len() + key.len() + 1);
    name.push_str(prefix);
    if is_safe_key(key) {
        if key.len() <= budget {
            name.push_str(key);
            return name;
        }
        return hashed(prefix, key);
    }
    name.push('~');
    let mut utf8 = [0u8; 4];
    for c in key.chars() {
        if c != '/' && is_safe(c) {
            name.push(c);
        } else {
            for byte in c.encode_utf8(&mut utf8).bytes() {
                name.push_str(&format!("%{byte:02X}"));
            }
        }
        if name.len() - prefix.len() > budget {
            return hashed(prefix, key);
        }
    }
    name
}

fn hashed(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(prefix.len() + HASHED_LEN);
    name.push_str(prefix);
    name.push_str("~h");
    for byte in digest {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Why `prefix` cannot start object names, if it cannot: every name is
/// `prefix + name`, so the prefix must keep that a valid, unambiguous
/// object name (no leading `/`, no empty, `.` or `..` segment, no control
/// character) and leave room for a hashed name.
pub(crate) fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.starts_with('/') {
        return Some("must not start with '/' (object names have no leading slash)".into());
    }
    if let Some(c) = prefix.chars().find(|c| c.is_control()) {
        return Some(format!("holds the control character {c:?}"));
    }
    // Every segment but the last (which the key continues) must be a real one.
    let mut segments: Vec<&str> = prefix.split('/').collect();
    let last = segments.pop().unwrap_or("");
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Some("has an empty, '.' or '..' segment".into());
    }
    if last == "." || last == ".." {
        return Some("ends in a '.' or '..' segment".into());
    }
    if prefix.len() + HASHED_LEN > MAX_NAME {
        return Some(format!(
            "is {} bytes; at most {} leave room for keys",
            prefix.len(),
            MAX_NAME - HASHED_LEN
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn python_style_keys_are_their_own_names() {
        for key in [
            "k",
            "user:42",
            "a_b",
            "a/b",
            "rates-v2.json",
            "ключ",
            "鍵🔑",
            ".hidden",
            "x=1&y=2",
        ] {
            assert_eq!(object_name("v1/", key), format!("v1/{key}"));
        }
    }

    #[test]
    fn other_keys_are_escaped_into_one_segment() {
        assert_eq!(object_name("", "../../x"), "~..%2F..%2Fx");
        assert_eq!(object_name("", "/abs"), "~%2Fabs");
        assert_eq!(object_name("", "a//b"), "~a%2F%2Fb");
        assert_eq!(object_name("", "a/"), "~a%2F");
        assert_eq!(object_name("p/", ""), "p/~");
        assert_eq!(object_name("", "."), "~.");
        assert_eq!(object_name("", ".."), "~..");
        assert_eq!(object_name("", "nul\0"), "~nul%00");
        assert_eq!(object_name("", "with space"), "~with%20space");
        assert_eq!(object_name("", "~"), "~%7E");
        assert_eq!(object_name("", "%"), "~%25");
        assert_eq!(object_name("", "a\u{85}"), "~a%C2%85");
        assert_ne!(object_name("", "a/b"), object_name("", "a%2Fb"));
    }

    #[test]
    fn long_keys_are_hashed_within_the_limit() {
        let prefix = "cache/v1/";
        let fits = "k".repeat(MAX_NAME - prefix.len());
        assert_eq!(object_name(prefix, &fits).len(), MAX_NAME);
        let long = object_name(prefix, &"k".repeat(MAX_NAME));
        assert!(long.starts_with("cache/v1/~h") && long.len() == prefix.len() + HASHED_LEN);
        let escaped = object_name(prefix, &" ".repeat(400));
        assert!(escaped.starts_with("cache/v1/~h"), "{escaped}");
    }

    #[test]
    fn bad_prefixes_are_named() {
        for ok in ["", "v1/", "app:", "a/b/c-", "cache/v1"] {
            assert_eq!(prefix_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "/v1/",
            "a//b/",
            "../x/",
            "a/./",
            "x\n",
            "a/..",
            &"p".repeat(1000),
        ] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn names_are_valid_object_paths_and_distinct(
            keys in prop::collection::hash_set("\\PC{0,12}|[a-z/._~%\\x00\\n]{0,8}|k{1010,1030}", 1..40),
            prefix in "|v1/|app:|a/b-",
        ) {
            let mut seen = HashMap::new();
            for key in &keys {
                let name = object_name(&prefix, key);
                prop_assert!(name.len() <= MAX_NAME, "{name:?}");
                prop_assert!(name.starts_with(&prefix));
                let path = Path::parse(&name);
                prop_assert!(path.is_ok(), "{name:?}: {path:?}");
                let path = path.unwrap();
                prop_assert_eq!(path.as_ref(), name.as_str());
                if let Some(other) = seen.insert(name.clone(), key.clone()) {
                    prop_assert!(false, "{:?} and {:?} both map to {:?}", key, other, name);
                }
            }
        }
    }
}
