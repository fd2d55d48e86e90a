//! Looking a key up: what the store holds for a call, in its in-process
//! view (no I/O) or over I/O, classified once into a [`Lookup`].

use std::fmt;
use std::time::Instant;

use super::CachePolicy;
use super::swr::Version;
use crate::{Entry, Local, StoreFor};

/// What the store holds under a key, for a call at one instant.
pub(super) enum Lookup<T> {
    /// A fresh value.
    Fresh(T),
    /// A stale value, still servable; its version if this caller claimed
    /// its refresh.
    Stale(T, Option<Version>),
    /// Nothing usable: absent, dead, or a value of another type.
    Miss,
    /// The store has no in-process view: ask it over I/O.
    NotLocal,
}

/// Why a key is looked up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// For a call: a stale entry's refresh may be claimed, and an entry of
    /// another type is reported.
    Call,
    /// A flight leader's second look before it runs the function: only a
    /// fresh value counts; nothing is claimed or reported (the call's own
    /// lookup did that).
    Recheck,
}

/// Where the refresh claim of a stale entry is kept.
#[derive(Clone, Copy)]
enum Claim {
    /// In the entry itself, shared by every caller of this process.
    InEntry,
    /// In the policy's claim map: the entry is this caller's own copy.
    InPolicy,
}

impl<A, T, E, S> CachePolicy<A, T, E, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
{
    /// `key` in the store's in-process view.
    #[inline]
    pub(super) fn lookup_local(&self, key: &str, now: f64, purpose: Purpose) -> Lookup<T> {
        let mut found = Lookup::Miss;
        let local = self.store.lookup(key, |entry| {
            found = self.classify(key, entry, now, Claim::InEntry, purpose);
        });
        match local {
            Local::Found => found,
            Local::Missing => Lookup::Miss,
            Local::Unsupported => Lookup::NotLocal,
        }
    }

    /// `key` read from the store over I/O. A store failure is counted and
    /// logged, and is a miss.
    pub(super) async fn lookup_remote(&self, key: &str, purpose: Purpose) -> Lookup<T> {
        let started = self.metrics_on.then(Instant::now);
        let result = self.store.get(key, S::decoder()).await;
        if let Some(started) = started {
            self.metrics
                .record_latency(&self.name, "get", started.elapsed());
        }
        match result {
            Ok(Some(entry)) => {
                self.classify(key, &entry, self.clock.now(), Claim::InPolicy, purpose)
            }
            Ok(None) => Lookup::Miss,
            Err(error) => {
                self.store_error("get", key, &error);
                Lookup::Miss
            }
        }
    }

    #[inline]
    fn classify(
        &self,
        key: &str,
        entry: &Entry,
        now: f64,
        claim: Claim,
        purpose: Purpose,
    ) -> Lookup<T> {
        let Some(value) = entry.value.downcast_ref::<T>() else {
            if purpose == Purpose::Call {
                self.type_mismatch(key, entry.value.type_name());
            }
            return Lookup::Miss;
        };
        if now < entry.fresh_until {
            Lookup::Fresh(value.clone())
        } else if purpose == Purpose::Recheck {
            Lookup::Miss
        } else if self.stale > 0.0 && now <= entry.fresh_until + self.stale {
            let version = Version::of(entry);
            let claimed = match claim {
                Claim::InEntry => entry.claim_refresh(now, self.refresh_hold),
                Claim::InPolicy => self.claim_remote(key, version, now),
            };
            Lookup::Stale(value.clone(), claimed.then_some(version))
        } else {
            Lookup::Miss
        }
    }
}
