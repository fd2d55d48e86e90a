//! Stale-while-revalidate: the background refresh of a stale entry.
//!
//! A stale hit returns at once and starts at most one refresh per key:
//! in-process through the entry's refresh claim and the single-flight map,
//! across processes sharing the store through a `set_if_absent` lock entry
//! under `"{key}:r"` (the Python package's lock key, so Rust and Python
//! processes sharing a store also refresh once between them).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{CachePolicy, Loader, run_catching};
use crate::clock::ttl_duration;
use crate::{CacheValue, Entry, Value};

impl<A, T, E> CachePolicy<A, T, E>
where
    A: Send + 'static,
    T: CacheValue,
    E: fmt::Debug + Send + 'static,
{
    /// Starts the refresh of `key` on the scheduler: a blocking job for a
    /// sync function (never on the caller's thread), a task for an async one.
    pub(super) fn spawn_refresh(self: &Arc<Self>, key: String, args: A) {
        let this = Arc::clone(self);
        let spawned = match &self.loader {
            Loader::Sync(_) => self.scheduler.spawn_blocking(Box::new(move || {
                pollster::block_on(this.refresh(key, args))
            })),
            Loader::Async(_) => self
                .scheduler
                .spawn(Box::pin(async move { this.refresh(key, args).await })),
        };
        if let Err(error) = spawned {
            tracing::warn!(cache = %self.name, %error, "could not schedule a stale refresh");
            self.metrics
                .record_error(&self.name, "refresh", error.kind());
        }
    }

    async fn refresh(self: Arc<Self>, key: String, args: A) {
        // A load of this key is already running: it will write a fresh entry.
        let Some(leader) = self.flights.try_lead(&key) else {
            return;
        };
        let now = self.clock.now();
        let lock = Entry::new(Value::new(String::from("1")), now + self.refresh_hold, now);
        let lock_key = format!("{key}:r");
        match self
            .store
            .set_if_absent(&lock_key, lock, ttl_duration(self.refresh_hold))
            .await
        {
            Ok(true) => {}
            // Another process holds the lock and refreshes.
            Ok(false) => return,
            // The store is failing; refresh anyway, the caller's value is stale.
            Err(error) => self.store_error("refresh_lock", &lock_key, &error),
        }
        let started = Instant::now();
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let result = match &self.loader {
            Loader::Sync(load) => run_catching(|| load(args)),
            Loader::Async(load) => Some(load(args).await),
        };
        let success = match result {
            Some(Ok(value)) => {
                self.write(&key, &value, epoch).await;
                leader.succeed(value);
                true
            }
            Some(Err(error)) => {
                leader.fail();
                tracing::warn!(cache = %self.name, key, ?error,
                    "stale refresh failed; serving the stale value until its window ends");
                self.metrics.record_error(&self.name, "refresh", "loader");
                false
            }
            None => {
                drop(leader);
                tracing::error!(cache = %self.name, key, "stale refresh panicked");
                self.metrics.record_error(&self.name, "refresh", "panic");
                false
            }
        };
        self.metrics
            .record_background_refresh(&self.name, success, started.elapsed());
    }
}
