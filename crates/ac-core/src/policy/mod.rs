//! The caching policies — TTL, stale-while-revalidate and single flight —
//! written once over the traits, with thin sync and async entry points.
//!
//! Windows of an entry written at `t` with `ttl` and `stale`, as in the
//! Python package:
//!
//! ```text
//! t ──────── t+ttl ─────────── t+ttl+stale ──── dead
//! [ fresh: hit ) [ stale: served + one refresh ] ( miss: caller waits )
//! ```
//!
//! Fresh while `now < fresh_until`; stale while `now <= fresh_until + stale`
//! (both ends of the stale window included); dead after. With `stale == 0`
//! an entry is dead from `fresh_until` on.
//!
//! # One call, step by step
//! 1. [`call`](CachePolicy::call_blocking) (`call.rs`): with `ttl == 0`
//!    the function runs. Otherwise the key is rendered once and looked up
//!    in the store's in-process view (`lookup.rs`), which decides what the
//!    call does [`Next`](call::Next): return a fresh value; return a stale
//!    one and, if this caller claimed it, start its one refresh (`swr.rs`);
//!    load a missing key; or fetch it from a store that answers only over
//!    I/O.
//! 2. Fetch (`load.rs`): read the store; a fresh or stale entry is a hit as
//!    above, nothing usable is a miss.
//! 3. Load (`load.rs`): one caller per key runs the function (single
//!    flight, `single_flight.rs`), writes its value and hands it to the
//!    others waiting; a failure is shared the same way and not cached.
//!
//! Metrics and quiet logging of failures are in `report.rs`.

mod call;
mod generation;
mod load;
mod lookup;
mod report;
mod single_flight;
mod swr;

pub use call::CallAsync;
pub use report::LATENCY_SAMPLE;
pub use swr::RefreshError;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::log::WarnLimiter;
use generation::Generations;
use single_flight::SingleFlight;
use swr::RemoteClaim;

use crate::clock::{check_seconds, ttl_duration};
use crate::{BoxFuture, Clock, ClockReader, Error, KeySpec, MetricsCollector, Scheduler, StoreFor};

/// The function a policy caches: sync (run on the caller's thread) or async.
pub enum Loader<A, T, E> {
    /// A blocking function.
    Sync(Arc<dyn Fn(A) -> Result<T, E> + Send + Sync>),
    /// An async function.
    Async(Arc<dyn Fn(A) -> BoxFuture<'static, Result<T, E>> + Send + Sync>),
}

impl<A, T, E> fmt::Debug for Loader<A, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sync(_) => "Loader::Sync",
            Self::Async(_) => "Loader::Async",
        })
    }
}

/// Everything a [`CachePolicy`] needs besides its function.
#[derive(Debug)]
pub struct PolicyConfig<A, S: ?Sized> {
    /// The cache's name in metrics and logs.
    pub name: String,
    /// Seconds an entry stays fresh; `0` disables caching.
    pub ttl: f64,
    /// Seconds after `ttl` during which the stale value is served while one
    /// background refresh runs; `0` disables stale-while-revalidate.
    pub stale: f64,
    /// How arguments become a key.
    pub key: KeySpec<A>,
    /// Where entries live.
    pub store: Arc<S>,
    /// The time source for entry timestamps.
    pub clock: Arc<dyn Clock>,
    /// Where hits, misses and errors are reported.
    pub metrics: Arc<dyn MetricsCollector>,
    /// Where stale refreshes run: `spawn_blocking` for sync loaders, `spawn`
    /// for async ones.
    pub scheduler: Arc<dyn Scheduler>,
}

/// A cached function: TTL, stale-while-revalidate and single flight over a
/// store of type `S`. Built by the facade's `cache(..)` builder; usable
/// directly.
///
/// `S` is the store's own type (`InMemCache`, `RedisCache`, ...), so a
/// lookup in an in-process store is inlined, or `dyn Store` for a store
/// chosen at run time; `S:` [`StoreFor<T>`] says whether `T` must be serde.
pub struct CachePolicy<A, T, E, S: ?Sized> {
    name: Box<str>,
    ttl: f64,
    stale: f64,
    /// How long a stale refresh claim (in-process, and the store lock)
    /// blocks another attempt: the stale window. A successful refresh
    /// releases the store lock; a failed one keeps serving stale until the
    /// window ends instead of retrying on every hit.
    refresh_hold: f64,
    /// How long the store keeps an entry: `ttl + stale`, and a millisecond
    /// more, as the store measures from its own reading of the clock in its
    /// own float arithmetic (it must not drop the entry an ulp before the
    /// inclusive end of the stale window).
    keep: Option<Duration>,
    key: KeySpec<A>,
    store: Arc<S>,
    clock: ClockReader,
    metrics: Arc<dyn MetricsCollector>,
    metrics_on: bool,
    scheduler: Arc<dyn Scheduler>,
    loader: Loader<A, T, E>,
    flights: SingleFlight<T, E>,
    /// Bumped by `invalidate`/`clear`; a load that started before does not
    /// write its (possibly outdated) value.
    generations: Generations,
    /// Bumped after each successful write to a store that is not in
    /// process: a leader re-reads the key only if a write happened since
    /// its caller's lookup.
    writes: Generations,
    /// Refresh claims for entries read from a store that is not in process,
    /// which arrive as fresh copies and cannot carry the in-entry claim.
    /// Only keys seen stale are here; a write of the key removes it.
    remote_claims: Mutex<HashMap<String, RemoteClaim, foldhash::fast::RandomState>>,
    /// Keeps a failing store from logging a warning per call.
    warnings: WarnLimiter,
}

impl<A, T, E, S: fmt::Debug + ?Sized> fmt::Debug for CachePolicy<A, T, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachePolicy")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("stale", &self.stale)
            .field("key", &self.key)
            .field("store", &self.store)
            .field("loader", &self.loader)
            .finish_non_exhaustive()
    }
}

impl<A, T, E, S> CachePolicy<A, T, E, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
{
    /// Builds a policy, refusing a negative or NaN `ttl` or `stale`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field, the cache and its key.
    pub fn new(config: PolicyConfig<A, S>, loader: Loader<A, T, E>) -> Result<Self, Error> {
        let what = |field: &str| {
            format!(
                "{field} of cache {:?} (key {:?})",
                config.name,
                config.key.describe()
            )
        };
        let ttl = check_seconds(&what("ttl"), config.ttl)?;
        let stale = check_seconds(&what("stale"), config.stale)?;
        let metrics_on = config.metrics.enabled();
        Ok(Self {
            name: config.name.into(),
            ttl,
            stale,
            refresh_hold: stale,
            keep: ttl_duration(ttl + stale).map(|keep| keep + Duration::from_millis(1)),
            key: config.key,
            store: config.store,
            clock: ClockReader::new(config.clock),
            metrics: config.metrics,
            metrics_on,
            scheduler: config.scheduler,
            loader,
            flights: SingleFlight::new(),
            generations: Generations::new(),
            writes: Generations::new(),
            remote_claims: Mutex::default(),
            warnings: WarnLimiter::default(),
        })
    }

    /// The cache's name in metrics and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store entries live in.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The key a call with `args` uses.
    pub fn key(&self, args: &A) -> String {
        self.key.key(args)
    }

    /// Deletes the entry for `args`. A load of it already under way keeps
    /// its value to itself: later calls load afresh.
    ///
    /// # Errors
    /// If the store fails (also counted and logged).
    pub async fn invalidate(&self, args: &A) -> Result<(), Error> {
        let key = self.key.key(args);
        self.generations.bump(&key);
        self.flights.detach(&key);
        let result = self.store.delete(&key).await;
        match &result {
            Ok(()) if self.metrics_on => self.metrics.record_delete(&self.name, &key),
            Ok(()) => {}
            Err(error) => self.store_error("delete", &key, error),
        }
        result
    }

    /// Clears the whole store.
    ///
    /// # Errors
    /// If the store fails (also counted and logged).
    pub async fn clear(&self) -> Result<(), Error> {
        self.generations.bump_all();
        self.flights.detach_all();
        let result = self.store.clear().await;
        if let Err(error) = &result {
            self.store_error("clear", "*", error);
        }
        result
    }
}
