//! Key -> file name: collision-free, traversal-safe, and the key itself
//! where the Python package would use the key itself.

use sha2::{Digest, Sha256};

/// Longest file name used before hashing (Linux allows 255 bytes).
const MAX_NAME: usize = 200;

fn is_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'_' | b'-' | b'.')
}

/// The file name of `key`:
/// - a key of ASCII letters, digits and `:_-.`, not starting with a dot
///   and at most 200 bytes, is its own name (as in the Python package);
/// - any other key is `~` followed by its bytes, those outside that set
///   (and `%`) percent-encoded: injective, and never equal to a name of
///   the first kind, which cannot contain `~` or `%`;
/// - a name that would exceed 200 bytes is `~h` and the key's SHA-256.
///
/// No name contains `/` or NUL or is `.`/`..`, so every name stays inside
/// the directory. Names starting with `.` are left to temporary files.
pub(crate) fn file_name(key: &str) -> String {
    let bytes = key.as_bytes();
    if !bytes.is_empty()
        && bytes[0] != b'.'
        && bytes.len() <= MAX_NAME
        && bytes.iter().all(|&b| is_safe(b))
    {
        return key.to_owned();
    }
    let mut name = String::with_capacity(bytes.len() + 1);
    name.push('~');
    for &byte in bytes {
        if is_safe(byte) {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
        if name.len() > MAX_NAME {
            return hashed(key);
        }
    }
    name
}

fn hashed(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::from("~h");
    for byte in digest {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Whether `name` can be an entry's file name (not a temporary or lock file).
pub(crate) fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn safe_keys_are_their_own_names() {
        for key in ["k", "user:42", "a_b", "rates-v2.json", "A1:b2_c3-d4.e5"] {
            assert_eq!(file_name(key), key);
        }
    }

    #[test]
    fn other_keys_are_escaped_and_stay_inside_the_directory() {
        assert_eq!(file_name("a/b"), "~a%2Fb");
        assert_ne!(file_name("a/b"), file_name("a_b"));
        assert_eq!(file_name("../../x"), "~..%2F..%2Fx");
        assert_eq!(file_name("/abs"), "~%2Fabs");
        assert_eq!(file_name(""), "~");
        assert_eq!(file_name("."), "~.");
        assert_eq!(file_name(".."), "~..");
        assert_eq!(file_name("nul\0"), "~nul%00");
        assert_eq!(file_name("~"), "~%7E");
        assert_eq!(file_name("%"), "~%25");
        let long = file_name(&"k".repeat(1024));
        assert!(long.starts_with("~h") && long.len() == 66, "{long}");
    }

    proptest! {
        #[test]
        fn names_are_valid_and_distinct(keys in prop::collection::hash_set("\\PC{0,12}|[a-z/._~%]{0,8}", 1..40)) {
            let mut seen = HashMap::new();
            for key in &keys {
                let name = file_name(key);
                prop_assert!(!name.contains('/') && !name.contains('\0'), "{name:?}");
                prop_assert!(name != "." && name != ".." && is_entry_name(&name), "{name:?}");
                prop_assert!(name.len() <= 255);
                if let Some(other) = seen.insert(name.clone(), key.clone()) {
                    prop_assert!(false, "{key:?} and {other:?} both map to {name:?}");
                }
            }
        }
    }
}
