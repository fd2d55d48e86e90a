//! Redis URL parsing without connecting (`ac_store_redis::fuzzing::config_from_url`,
//! the first step of `RedisCacheBuilder::build`: `redis://`, `rediss://`,
//! `redis-cluster://…?node=`, `redis-sentinel://…?sentinelServiceName=`,
//! `redis+unix://`) and the redaction of URLs in logs and errors.
//! - Neither ever panics;
//! - the redacted URL, and any error message, shows no password: neither
//!   the server password nor a `sentinelPassword` query parameter, raw or
//!   percent-decoded, as fred will send them.
//!
//! Use with `dict/redis_url.dict`.
#![no_main]

use ac_store_redis::fuzzing::{config_from_url, redact_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(url) = std::str::from_utf8(bytes) else {
        return;
    };
    let redacted = redact_url(url);
    // URL parsing of other schemes (`http://`) spends its time in IDNA host
    // processing, which is the `url` crate's and not reached by Redis URLs.
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    if !scheme.starts_with("redis") && !scheme.starts_with("valkey") {
        return;
    }
    let parsed = config_from_url(url);
    let mut secrets = Vec::new();
    // Parts shown on purpose: a password that is also found in them cannot
    // be told apart.
    let mut shown_parts = String::new();
    // Only URLs the parser keeps as written: otherwise the password it
    // reports is in another form than the text redaction sees.
    let parsed_url = url::Url::parse(url);
    let as_written = parsed_url
        .as_ref()
        .is_ok_and(|parsed| parsed.as_str() == url);
    if let Ok(parsed_url) = &parsed_url
        && as_written
    {
        for part in [
            parsed_url.username(),
            parsed_url.host_str().unwrap_or(""),
            parsed_url.path(),
        ] {
            shown_parts.push_str(part);
            shown_parts.push('\n');
        }
        secrets.extend(parsed_url.password().map(str::to_owned));
        // What fred reads as the sentinel password: a query pair whose
        // decoded name is `sentinelPassword`, raw and decoded.
        for raw in parsed_url.query().unwrap_or("").split('&') {
            let Some((name, value)) = url::form_urlencoded::parse(raw.as_bytes()).next() else {
                continue;
            };
            if name == "sentinelPassword" {
                secrets.push(value.into_owned());
                secrets.push(raw.split_once('=').map_or("", |(_, v)| v).to_owned());
            }
        }
    }
    let mut shown = vec![redacted];
    match &parsed {
        Ok(config) if as_written => {
            secrets.extend(config.password.clone());
            #[allow(irrefutable_let_patterns)]
            if let fred::types::config::ServerConfig::Sentinel { password, .. } = &config.server {
                secrets.extend(password.clone());
            }
        }
        Ok(_) => {}
        Err(e) => shown.push(e.to_string()),
    }
    // The mask itself is not the password: a password that holds `***`
    // must not match the mask plus the host after it.
    // (Replaced by a noncharacter; a password holding it is skipped.)
    // The URL parser drops tabs and line breaks anywhere: compare without.
    let strip = |text: &str| text.replace(['\t', '\r', '\n'], "");
    let shown: Vec<String> = shown
        .iter()
        .map(|text| strip(text).replace("***", "\u{ffff}"))
        .collect();
    let url = strip(url);
    for secret in &secrets {
        // A password of a character or two matches the URL's syntax; one
        // made of mask characters cannot be told from the mask.
        if secret.len() < 3
            || secret.chars().all(|c| matches!(c, '*' | ':' | '@'))
            || secret.contains('\u{ffff}')
            || shown_parts.contains(secret.as_str())
        {
            continue;
        }
        let in_url = url.matches(secret.as_str()).count();
        // The redacted URL hides at least the password's own occurrence.
        assert!(
            in_url == 0 || shown[0].matches(secret.as_str()).count() < in_url,
            "{:?} shows the password {secret:?} of {url:?}",
            shown[0]
        );
        // A password that appears once in the URL (so it is not also a
        // host, a node or a user) appears in no message at all.
        if in_url == 1 {
            for text in &shown {
                assert!(
                    !text.contains(secret.as_str()),
                    "{text:?} shows the password {secret:?} of {url:?}"
                );
            }
        }
    }
});
