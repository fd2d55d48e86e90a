//! Quiet logging for failure storms: during an outage every call fails the
//! same way, and a warning per call would bury everything else.
//!
//! Every event of the library uses a target under [`TARGET`], so
//! `RUST_LOG=advanced_caching=debug` (or `=off`) controls them all. Keys
//! appear only at debug level: they can carry user data.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Error, lock};

/// The prefix of every tracing target of the library.
pub const TARGET: &str = "advanced_caching";

/// `error` for a warning: what failed and its root cause, leaving out the
/// context that may name a key or path (the full error goes to debug).
pub(crate) fn summary(error: &Error) -> Summary<'_> {
    Summary(error)
}

/// See [`summary`].
pub(crate) struct Summary<'a>(&'a Error);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = |error: &(dyn std::error::Error + 'static)| {
            let mut root = error;
            while let Some(source) = root.source() {
                root = source;
            }
            root.to_string()
        };
        match self.0 {
            Error::Store { store, source, .. } => write!(f, "{store} store: {}", root(&**source)),
            Error::Serialization { format, source } => {
                write!(f, "{format} serializer: {}", root(&**source))
            }
            Error::TypeMismatch {
                expected, found, ..
            } => write!(f, "entry holds a {found}, expected a {expected}"),
            Error::Corrupt { .. } => f.write_str("corrupt entry"),
            other => other.fmt(f),
        }
    }
}

/// At most one warning per cache and operation in this interval.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Rate-limits warnings by kind (a cache's operation, say): the first of a
/// kind passes, then one per [`WARN_INTERVAL`], each telling how many of
/// its kind were suppressed since the last.
#[derive(Debug, Default)]
pub(crate) struct WarnLimiter {
    /// One slot per kind seen; a cache has a handful of operations, so a
    /// list beats a map.
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    kind: &'static str,
    last_logged: Instant,
    suppressed: u64,
}

impl WarnLimiter {
    /// Whether a warning of `kind` at `now` should be logged: `Some(n)`
    /// with the `n` warnings of that kind suppressed since the last one
    /// logged, or `None` to suppress this one.
    pub(crate) fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.iter_mut().find(|slot| slot.kind == kind) else {
            slots.push(Slot {
                kind,
                last_logged: now,
                suppressed: 0,
            });
            return Some(0);
        };
        if now.saturating_duration_since(slot.last_logged) < WARN_INTERVAL {
            slot.suppressed += 1;
            return None;
        }
        slot.last_logged = now;
        Some(std::mem::take(&mut slot.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_kind_per_interval_with_the_count_of_the_rest() {
        let limiter = WarnLimiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.admit("get", t0), Some(0), "the first passes");
        for i in 1..=99 {
            let now = t0 + Duration::from_millis(i * 10);
            assert_eq!(
                limiter.admit("get", now),
                None,
                "suppressed within the interval"
            );
        }
        assert_eq!(limiter.admit("set", t0), Some(0), "kinds are limited apart");
        assert_eq!(
            limiter.admit("get", t0 + WARN_INTERVAL),
            Some(99),
            "the next interval's first tells how many were suppressed"
        );
        assert_eq!(limiter.admit("get", t0 + WARN_INTERVAL), None);
        assert_eq!(limiter.admit("get", t0 + WARN_INTERVAL * 3), Some(1));
    }
}
