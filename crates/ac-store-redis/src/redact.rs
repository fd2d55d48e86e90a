//! Secrets out of URLs before they reach logs, errors or `Debug`.

/// `url` as logs and errors show it, secrets masked (see `redact`); public
/// for the fuzz targets.
#[doc(hidden)]
pub fn redact_url(url: &str) -> String {
    redact(url)
}

/// `url` with every secret replaced by `***`: the password before the last
/// `@` (passwords may hold `/`, `?` or `@`), and the value of every
/// `name=value` parameter whose name, percent-decoded as fred reads it,
/// contains "password" (e.g. `sentinelPassword`), wherever it is (an `@`
/// may come after it, as in `sentinelUsername=ops@corp`).
pub(crate) fn redact(url: &str) -> String {
    // Only a scheme may come before the first `://` (else it is the `://`
    // of a value, and what comes before it is not known to be harmless).
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    let Some(scheme_end) = url
        .find("://")
        .filter(|&i| is_scheme(&url[..i]))
        .map(|i| i + 3)
    else {
        return "***".to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let mut out = head.to_owned();
    let mut shown_from = 0;
    if let Some(at) = rest.rfind('@') {
        let user = rest[..at].split(':').next().unwrap_or("");
        // A user part with '/' or '?' is not a user: hide it all.
        let user = if user.contains(['/', '?', '#']) {
            ""
        } else {
            user
        };
        out.push_str(user);
        out.push_str(":***");
        shown_from = at;
    }
    // Password parameters, found in the whole URL (their value may hold the
    // last `@`), masked where they reach past the hidden part.
    for (start, end) in password_values(rest) {
        if end > shown_from {
            let start = start.max(shown_from);
            out.push_str(&rest[shown_from..start]);
            out.push_str("***");
            shown_from = end;
        }
    }
    out.push_str(&rest[shown_from..]);
    out
}

/// The byte ranges of the values of `name=value` pieces after a `?` or `&`
/// in `text` whose percent-decoded name contains "password" (any case). A
/// value runs to the next `&`: it may hold `?`, as fred reads it.
fn password_values(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for (separator, _) in text.match_indices(['?', '&']) {
        let piece = &text[separator + 1..];
        let Some(eq) = piece
            .find(['=', '?', '&'])
            .filter(|&i| piece[i..].starts_with('='))
        else {
            continue;
        };
        if decode_query_name(&piece[..eq])
            .to_ascii_lowercase()
            .contains("password")
        {
            let start = separator + 1 + eq + 1;
            let end = text[start..].find('&').map_or(text.len(), |i| start + i);
            ranges.push((start, end));
        }
    }
    ranges
}

/// A query parameter name as fred reads it: the URL parser drops tabs and
/// line breaks, then `application/x-www-form-urlencoded` makes `+` a space
/// and `%XX` a byte.
fn decode_query_name(name: &str) -> String {
    let kept: Vec<u8> = name
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'))
        .collect();
    // `name` holds no `&` or `=`: the one pair's name, decoded as fred's
    // `query_pairs` decodes it (`+` is a space, `%XX` a byte, lossy UTF-8).
    url::form_urlencoded::parse(&kept)
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h:1"), "redis://:***@h:1");
        // Ambiguous (an `@` after the host): masked rather than risk a leak.
        assert_eq!(redact("redis://h:1/0?x=a@b"), "redis://h:***@b");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock"),
            "redis+unix:///tmp/r.sock"
        );
    }

    /// Found by the `redis_url` fuzz target: an `@` in the query (a
    /// sentinel user `ops@corp`) ended the masked part inside the query,
    /// and the `sentinelPassword` after it was shown; nor was a name
    /// written with percent-escapes, which fred decodes, masked; nor a URL
    /// whose only `://` is in a password.
    #[test]
    fn redact_hides_sentinel_passwords_after_an_at_sign_and_escaped_names() {
        let url = "redis-sentinel://s1:26379?sentinelServiceName=m\
                   &sentinelUsername=ops@corp&sentinelPassword=hunter2&node=s2:26380";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        let url = "redis-sentinel://s1:26379?sentinelServiceName=m&sentinel%50assword=hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        let url = "redis-sentinel://u:pw@s1?sentinelServiceName=m&sentinelPassword=a@hunter2";
        let shown = redact(url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw"),
            "{shown}"
        );
        // A password value that holds `?`.
        let url = "redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=?hunter2&node=s2:1";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        // A name broken by a line break, which the URL parser drops.
        let url = "redis-sentinel://s1?sentinelServiceName=m&sentinelPass\r\nword=hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        // No `://` after the scheme, but one in the password.
        let url = "redis-sentinel:h?sentinelServiceName=m&sentinelPassword=redis://hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            redact("redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=x"),
            "redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=***"
        );
    }
}
