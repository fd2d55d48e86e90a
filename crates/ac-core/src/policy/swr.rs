//! Background refreshes: the stale-while-revalidate refresh of a stale
//! entry, and the forced reload that `bg` loaders run on a schedule.
//!
//! A stale hit returns at once and starts at most one refresh per entry
//! version: in-process through the entry's refresh claim (or, for entries
//! read over I/O, the policy's claim map) and the single-flight map; across
//! processes sharing a store that is not in process, through a
//! `set_if_absent` lock entry under `"{key}:r"` (the Python package's lock
//! key, so Rust and Python processes sharing a store also refresh once
//! between them). An in-process store needs no lock entry.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::single_flight::Leader;
use super::{CachePolicy, Loader};
use crate::clock::ttl_duration;
use crate::{Entry, Error, Local, StoreFor, Value, lock};

/// Which stored entry a stale refresh was claimed for. A claim belongs to
/// one version of a key: a newer entry going stale is claimed afresh, so a
/// claim left behind by a refresh that found nothing to do cannot block the
/// next stale window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Version {
    created_at: f64,
    fresh_until: f64,
}

impl Version {
    pub(super) fn of(entry: &Entry) -> Self {
        Self {
            created_at: entry.created_at,
            fresh_until: entry.fresh_until,
        }
    }

    /// Whether `self` was written after `other`.
    fn is_newer_than(self, other: Self) -> bool {
        (self.created_at, self.fresh_until) > (other.created_at, other.fresh_until)
    }
}

/// A stale-refresh claim on an entry read over I/O.
#[derive(Debug, Clone, Copy)]
pub(super) struct RemoteClaim {
    version: Version,
    /// Earliest time another refresh of this version may be tried.
    retry_at: f64,
}

/// Remote claims kept before expired ones are pruned (keys seen stale whose
/// refresh failed and that were not read again).
const REMOTE_CLAIMS_PRUNE_AT: usize = 4096;

/// How a claimed stale refresh ended.
enum StaleRefresh {
    /// The entry was replaced: by this refresh, or before it by another.
    Replaced,
    /// Another load or another process's refresh was under way.
    Busy,
    /// The function failed or panicked, or the store did not take its value.
    Failed,
}

/// The value of a stale-refresh lock entry: a type of its own, so no cached
/// function can mistake a lock for its value. Encoded as the string `"1"`,
/// as the Python package writes its locks.
#[derive(Debug, Clone, Copy)]
struct RefreshLock;

impl Serialize for RefreshLock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("1")
    }
}

impl<'de> Deserialize<'de> for RefreshLock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self)
    }
}

/// Why a background refresh did not store a value.
#[derive(Debug)]
pub enum RefreshError<E> {
    /// The function returned an error.
    Failed(E),
    /// The function panicked.
    Panicked,
    /// The function returned a value but the store did not take it (the
    /// value was still handed to callers waiting on this load).
    Store(Error),
}

impl<E: fmt::Debug> fmt::Display for RefreshError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(error) => write!(f, "the function failed: {error:?}"),
            Self::Panicked => f.write_str("the function panicked"),
            Self::Store(error) => write!(f, "the store did not take the value: {error}"),
        }
    }
}

/// Polls `fut` to completion, turning a panic into `None`.
async fn catching<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Some),
            Err(_) => std::task::Poll::Ready(None),
        },
    )
    .await
}

impl<A, T, E, S> CachePolicy<A, T, E, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
{
    /// Claims the refresh of `version` of a stale entry read over I/O:
    /// refused while another caller's claim on that version holds, or if a
    /// newer version is already claimed (this caller read an older copy).
    pub(super) fn claim_remote(&self, key: &str, version: Version, now: f64) -> bool {
        let mut claims = lock(&self.remote_claims);
        let claim = RemoteClaim {
            version,
            retry_at: now + self.refresh_hold,
        };
        match claims.get_mut(key) {
            Some(held) if held.version == version && now < held.retry_at => false,
            Some(held) if held.version.is_newer_than(version) => false,
            Some(held) => {
                *held = claim;
                true
            }
            None => {
                if claims.len() >= REMOTE_CLAIMS_PRUNE_AT {
                    claims.retain(|_, held| now < held.retry_at);
                }
                claims.insert(key.to_owned(), claim);
                true
            }
        }
    }

    /// Ends this caller's claim on `version` of `key`: released (`None`),
    /// or held until `retry_at`. A claim on another version is left alone.
    fn end_claim(&self, key: &str, version: Version, retry_at: Option<f64>) {
        if !S::IN_PROCESS {
            let mut claims = lock(&self.remote_claims);
            if let Some(held) = claims.get_mut(key).filter(|held| held.version == version) {
                match retry_at {
                    Some(retry_at) => held.retry_at = retry_at,
                    None => {
                        claims.remove(key);
                    }
                }
            }
        }
        // An in-process entry carries its own claim.
        self.store.lookup(key, |entry| {
            if Version::of(entry) == version {
                entry.defer_refresh(retry_at.unwrap_or(0.0));
            }
        });
    }

    pub(super) fn forget_remote_claim(&self, key: &str) {
        let mut claims = lock(&self.remote_claims);
        if !claims.is_empty() {
            claims.remove(key);
        }
    }

    /// Starts the refresh of `version` of `key` (which this caller claimed)
    /// on the scheduler: a blocking job for a sync function (never on the
    /// caller's thread), a task for an async one.
    pub(super) fn spawn_refresh(self: &Arc<Self>, key: String, args: A, version: Version) {
        let this = Arc::clone(self);
        let spawned = match &self.loader {
            Loader::Sync(_) => self.scheduler.spawn_blocking(Box::new(move || {
                pollster::block_on(this.refresh_stale(key, args, version));
            })),
            Loader::Async(_) => self.scheduler.spawn(Box::pin(async move {
                this.refresh_stale(key, args, version).await;
            })),
        };
        if let Err(error) = spawned {
            self.metrics
                .record_error(&self.name, "refresh", error.kind());
            self.log_failure(
                "refresh",
                "",
                &error,
                &error,
                "could not schedule a stale refresh",
            );
        }
    }

    /// The stale refresh of `version` of `key`, and the end of this
    /// caller's claim on it. Every way out but a failed function hands the
    /// claim back, so the next stale window is refreshed again.
    async fn refresh_stale(self: Arc<Self>, key: String, args: A, version: Version) {
        let retry_at = match self.refresh_claimed(&key, args, version).await {
            // The entry was replaced (by us or by someone else): a newer
            // version is claimed on its own when it goes stale.
            StaleRefresh::Replaced => None,
            // Someone else is refreshing: look again soon, in case their
            // value never lands.
            StaleRefresh::Busy => Some(self.clock.now() + self.ttl.min(self.refresh_hold)),
            // Serve the stale value until the claim's hold ends rather than
            // retrying on every hit.
            StaleRefresh::Failed => return,
        };
        self.end_claim(&key, version, retry_at);
    }

    async fn refresh_claimed(&self, key: &str, args: A, version: Version) -> StaleRefresh {
        // A load of this key is already running: it will write a fresh entry.
        let Some(leader) = self.flights.try_lead(key.to_owned()) else {
            return StaleRefresh::Busy;
        };
        // Across processes, one refresh per stale window: a lock entry in the
        // shared store. An in-process store is shared by this process only,
        // where the claim and the flight already make the refresh one.
        let lock_key = (!S::IN_PROCESS).then(|| format!("{key}:r"));
        if let Some(lock_key) = &lock_key {
            let now = self.clock.now();
            let lock = Entry::new(Value::new(RefreshLock), now + self.refresh_hold, now);
            match self
                .store
                .set_if_absent(lock_key, lock, ttl_duration(self.refresh_hold))
                .await
            {
                Ok(true) => {}
                // Another process holds the lock and refreshes.
                Ok(false) => return StaleRefresh::Busy,
                // The store is failing; refresh anyway, the caller's value is stale.
                Err(error) => self.store_error("refresh_lock", lock_key, &error),
            }
        }
        // Refresh only the entry this caller saw stale: if another caller
        // (here or in another process) replaced it between our read and the
        // lock, or it was invalidated, there is nothing to do.
        let outcome = if self.is_current(key, version).await {
            match self.reload_as(args, leader).await {
                Ok(()) => StaleRefresh::Replaced,
                Err(error) => {
                    // A store failure was logged where it happened.
                    if !matches!(error, RefreshError::Store(_)) {
                        self.log_failure(
                            "refresh",
                            key,
                            &error,
                            &error,
                            "stale refresh failed; serving the stale value until its window ends",
                        );
                    }
                    // A failure keeps the lock (and the stale value) until
                    // the window ends.
                    return StaleRefresh::Failed;
                }
            }
        } else {
            StaleRefresh::Replaced
        };
        if let Some(lock_key) = &lock_key {
            if let Err(error) = self.store.delete(lock_key).await {
                self.store_error("refresh_unlock", lock_key, &error);
            }
        }
        outcome
    }

    /// Whether the entry under `key` is still `version`, read without
    /// claiming it.
    async fn is_current(&self, key: &str, version: Version) -> bool {
        let mut found = None;
        match self.store.lookup(key, |entry| {
            found = Some(Version::of(entry));
        }) {
            Local::Found => return found == Some(version),
            Local::Missing => return false,
            Local::Unsupported => {}
        }
        match self.store.get(key, S::decoder()).await {
            Ok(entry) => entry.as_ref().map(Version::of) == Some(version),
            Err(error) => {
                // Refreshing is the safe side: the caller's value is stale.
                self.store_error("get", key, &error);
                true
            }
        }
    }

    /// Runs the function now and stores its value, whatever the state of the
    /// entry: the periodic reload of `bg` loaders. Skipped (`Ok`) if a load of
    /// the key is already running. Panics are caught and reported as errors.
    pub async fn reload(&self, args: A) -> Result<(), RefreshError<E>> {
        match self.flights.try_lead(self.key.key(&args)) {
            Some(leader) => self.reload_as(args, leader).await,
            None => Ok(()),
        }
    }

    /// Runs the function as the leader of `key`'s flight, stores the value,
    /// and records the background refresh in metrics.
    async fn reload_as(&self, args: A, leader: Leader<'_, T, E>) -> Result<(), RefreshError<E>> {
        let key = leader.key();
        let started = Instant::now();
        let epoch = self.generations.epoch(key);
        let result = match &self.loader {
            Loader::Sync(load) => catch_unwind(AssertUnwindSafe(|| load(args))).ok(),
            Loader::Async(load) => catching(load(args)).await,
        };
        let outcome = match result {
            Some(Ok(value)) => {
                let written = self.write(key, &value, epoch).await;
                leader.succeed(value);
                written.map_err(RefreshError::Store)
            }
            Some(Err(error)) => {
                leader.fail(error.clone());
                self.metrics.record_error(&self.name, "refresh", "loader");
                Err(RefreshError::Failed(error))
            }
            None => {
                drop(leader);
                self.metrics.record_error(&self.name, "refresh", "panic");
                Err(RefreshError::Panicked)
            }
        };
        self.metrics
            .record_background_refresh(&self.name, outcome.is_ok(), started.elapsed());
        outcome
    }
}
