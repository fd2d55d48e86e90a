//! The slow paths: fetching a key from a store that answers over I/O, and
//! loading a missing key under single flight.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::generation::Epoch;
use super::lookup::{Lookup, Purpose};
use super::single_flight::{Join, Outcome};
use super::{CachePolicy, Loader};
use crate::{Entry, Error, StoreFor};

/// What a flight's leader reads again before running the function: a
/// flight may have ended between its caller's lookup and joining.
#[derive(Clone, Copy)]
enum Recheck {
    /// The in-process view (no I/O).
    InProcess,
    /// The store over I/O, only if this process wrote the key since the
    /// caller's lookup (this write generation).
    StoreIfWrittenSince(u64),
}

impl<A, T, E, S> CachePolicy<A, T, E, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
{
    // Out of line so the hit path keeps a small stack frame.
    #[cold]
    #[inline(never)]
    pub(super) fn load_blocking(self: &Arc<Self>, key: String, args: A) -> Result<T, E> {
        pollster::block_on(self.load_missing(key, args))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn fetch_blocking(self: &Arc<Self>, key: String, args: A) -> Result<T, E> {
        pollster::block_on(self.fetch(key, args))
    }

    /// A key missing from the in-process view: count the miss and load it.
    pub(super) async fn load_missing(self: &Arc<Self>, key: String, args: A) -> Result<T, E> {
        self.miss(&key);
        self.load(key, args, Recheck::InProcess).await
    }

    /// Reads `key` from a store that answers only over I/O: a fresh or
    /// stale entry is a hit (a claimed stale one starts its refresh),
    /// anything else a miss that loads.
    pub(super) async fn fetch(self: &Arc<Self>, key: String, args: A) -> Result<T, E> {
        let writes_seen = self.writes.of(&key);
        match self.lookup_remote(&key, Purpose::Call).await {
            Lookup::Fresh(value) | Lookup::Stale(value, None) => {
                self.hit(&key);
                Ok(value)
            }
            Lookup::Stale(value, Some(version)) => {
                self.hit(&key);
                self.spawn_refresh(key, args, version);
                Ok(value)
            }
            Lookup::Miss | Lookup::NotLocal => {
                self.miss(&key);
                self.load(key, args, Recheck::StoreIfWrittenSince(writes_seen))
                    .await
            }
        }
    }

    /// Loads `key` under single flight: one caller runs the function, the
    /// others wait for its outcome.
    async fn load(self: &Arc<Self>, key: String, args: A, recheck: Recheck) -> Result<T, E> {
        let mut key = key;
        loop {
            match self.flights.join(key) {
                Join::Leader(leader) => {
                    let key = leader.key();
                    let found = match recheck {
                        Recheck::InProcess => {
                            self.lookup_local(key, self.clock.now(), Purpose::Recheck)
                        }
                        Recheck::StoreIfWrittenSince(seen) if self.writes.of(key) != seen => {
                            self.lookup_remote(key, Purpose::Recheck).await
                        }
                        Recheck::StoreIfWrittenSince(_) => Lookup::Miss,
                    };
                    if let Lookup::Fresh(value) = found {
                        leader.succeed(value.clone());
                        return Ok(value);
                    }
                    let epoch = self.generations.epoch(key);
                    return match self.run_loader(args).await {
                        Ok(value) => {
                            // A failed write is counted and logged; the
                            // caller still gets its value.
                            let _ = self.write(key, &value, epoch).await;
                            leader.succeed(value.clone());
                            Ok(value)
                        }
                        Err(error) => {
                            leader.fail(error.clone());
                            Err(error)
                        }
                    };
                }
                Join::Waiter(waiter) => {
                    let retry_key = waiter.key().to_owned();
                    match waiter.wait().await {
                        Outcome::Value(value) => return Ok(value),
                        // The flight's error, not a run of our own: a failing
                        // backend is asked once per flight, not once per caller.
                        Outcome::Failed(error) => return Err(error),
                        Outcome::Abandoned => key = retry_key,
                    }
                }
            }
        }
    }

    /// Runs the function, timing it when metrics are on.
    pub(super) async fn run_loader(&self, args: A) -> Result<T, E> {
        let started = self.metrics_on.then(Instant::now);
        let result = match &self.loader {
            Loader::Sync(load) => load(args),
            Loader::Async(load) => load(args).await,
        };
        if let Some(started) = started {
            self.metrics
                .record_latency(&self.name, "load", started.elapsed());
        }
        result
    }

    /// Stores a freshly loaded value, unless `key` was invalidated since the
    /// load began (`generation`): that is `Ok`, as the invalidation wins.
    /// Store errors are counted and logged, and returned for callers that
    /// report them (`bg` loaders); a caller's own call never fails on them.
    pub(super) async fn write(&self, key: &str, value: &T, epoch: Epoch<'_>) -> Result<(), Error> {
        if !epoch.is_current() {
            return Ok(());
        }
        let now = self.clock.now();
        let entry = Entry::new(S::wrap(value.clone()), now + self.ttl, now);
        if let Err(error) = self.store.set(key, entry, self.keep).await {
            self.store_error("set", key, &error);
            return Err(error);
        }
        if !epoch.is_current() {
            // An invalidation raced the write: it wins.
            if let Err(error) = self.store.delete(key).await {
                self.store_error("delete", key, &error);
            }
            return Ok(());
        }
        if !S::IN_PROCESS {
            self.writes.bump(key);
            self.forget_remote_claim(key);
        }
        if self.metrics_on {
            self.metrics.record_set(&self.name, key, None);
            if let Some(usage) = self.store.usage() {
                self.metrics
                    .record_memory_usage(&self.name, usage.bytes, usage.entries);
            }
        }
        Ok(())
    }
}
