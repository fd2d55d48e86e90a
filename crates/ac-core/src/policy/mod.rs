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

mod generation;
mod refresh;
mod single_flight;

pub use refresh::RefreshError;

use std::any::type_name;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::log::WarnLimiter;
use generation::Generations;
use single_flight::{Join, Outcome, SingleFlight};

use crate::clock::{check_seconds, ttl_duration};
use crate::{
    BoxFuture, CacheValue, Clock, ClockReader, Entry, Error, KeySpec, Local, LocalLookup,
    MetricsCollector, Scheduler, Store, TypedDecoder, Value, lock,
};

/// One in this many in-process lookups is timed when metrics are on: two
/// clock reads cost more than the lookup itself.
pub const LATENCY_SAMPLE: u32 = 16;

/// Whether this thread's next lookup is one of the timed ones.
#[inline]
fn sample_latency() -> bool {
    thread_local! {
        static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    CALLS.with(|calls| {
        let n = calls.get().wrapping_add(1);
        calls.set(n);
        // The first lookup of every thread is timed, so that a cache with
        // few calls still has a latency.
        n % LATENCY_SAMPLE == 1
    })
}

/// Added to the keep-time a policy asks of the store (see `write`).
const KEEP_MARGIN: Duration = Duration::from_millis(1);

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
pub struct PolicyConfig<A> {
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
    pub store: Arc<dyn Store>,
    /// The time source for entry timestamps.
    pub clock: Arc<dyn Clock>,
    /// Where hits, misses and errors are reported.
    pub metrics: Arc<dyn MetricsCollector>,
    /// Where stale refreshes run: `spawn_blocking` for sync loaders, `spawn`
    /// for async ones.
    pub scheduler: Arc<dyn Scheduler>,
}

/// A cached function: TTL, stale-while-revalidate and single flight over a
/// [`Store`]. Built by the facade's `cache(..)` builder; usable directly.
pub struct CachePolicy<A, T, E> {
    name: Box<str>,
    ttl: f64,
    stale: f64,
    /// How long a stale refresh claim (in-process, and the store lock)
    /// blocks another attempt: the stale window. A successful refresh
    /// releases the store lock; a failed one keeps serving stale until the
    /// window ends instead of retrying on every hit.
    refresh_hold: f64,
    key: KeySpec<A>,
    store: Arc<dyn Store>,
    clock: ClockReader,
    metrics: Arc<dyn MetricsCollector>,
    metrics_on: bool,
    scheduler: Arc<dyn Scheduler>,
    loader: Loader<A, T, E>,
    flights: SingleFlight<T, E>,
    /// Bumped by `invalidate`/`clear`; a load that started before does not
    /// write its (possibly outdated) value.
    generations: Generations,
    /// Bumped after each successful write: a remote-store leader re-reads
    /// the key only if a write happened since its caller's lookup.
    writes: Generations,
    /// Refresh claims for entries read from a remote store, which arrive as
    /// fresh copies and cannot carry the in-entry claim. Only keys seen
    /// stale are here; a write of the key removes it.
    remote_claims: Mutex<HashMap<String, RemoteClaim, foldhash::fast::RandomState>>,
    /// Keeps a failing store from logging a warning per call.
    warnings: WarnLimiter,
}

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
    fn of(entry: &Entry) -> Self {
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

/// A stale-refresh claim on an entry read from a remote store.
#[derive(Debug, Clone, Copy)]
struct RemoteClaim {
    version: Version,
    /// Earliest time another refresh of this version may be tried.
    retry_at: f64,
}

/// Remote claims kept before expired ones are pruned (keys seen stale whose
/// refresh failed and that were not read again).
const REMOTE_CLAIMS_PRUNE_AT: usize = 4096;

impl<A, T, E> fmt::Debug for CachePolicy<A, T, E> {
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

/// The future of [`CachePolicy::call_async`].
#[must_use = "futures do nothing unless polled"]
pub struct CallAsync<'a, A, T, E, S: ?Sized = dyn Store> {
    policy: &'a Arc<CachePolicy<A, T, E>>,
    /// The policy's store seen through its concrete type, if known.
    local: Option<&'a S>,
    /// The arguments until the first poll takes them.
    args: Option<A>,
    /// The slow path (a miss), once started.
    slow: Option<BoxFuture<'a, Result<T, E>>>,
}

// No field is structurally pinned: `A` is moved out by value and the slow
// future is already boxed and pinned.
impl<A, T, E, S: ?Sized> Unpin for CallAsync<'_, A, T, E, S> {}

impl<A, T, E, S: ?Sized> fmt::Debug for CallAsync<'_, A, T, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.args, &self.slow) {
            (Some(_), _) => "start",
            (None, Some(_)) => "loading",
            (None, None) => "done",
        };
        f.debug_struct("CallAsync")
            .field("cache", &self.policy.name)
            .field("state", &state)
            .finish()
    }
}

impl<A, T, E, S> Future for CallAsync<'_, A, T, E, S>
where
    A: Send + 'static,
    T: CacheValue,
    E: fmt::Debug + Clone + Send + 'static,
    S: LocalLookup + ?Sized,
{
    type Output = Result<T, E>;

    // The hit path reads the state in place rather than moving it: moving
    // the whole future costs more than the cache lookup it wraps.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(slow) = &mut this.slow {
            return slow.as_mut().poll(cx);
        }
        let policy = this.policy;
        let Some(args) = this.args.take() else {
            panic!("CallAsync polled after completion");
        };
        if policy.ttl == 0.0 {
            return this
                .slow
                .insert(Box::pin(policy.run_loader(args)))
                .as_mut()
                .poll(cx);
        }
        let step = match this.local {
            Some(local) => policy.step(local, &args),
            None => policy.step(&*policy.store, &args),
        };
        match step {
            Step::Done(value) => Poll::Ready(Ok(value)),
            Step::Refresh(value, key, version) => {
                policy.spawn_refresh(key, args, version);
                Poll::Ready(Ok(value))
            }
            Step::Load(key, remote) => this
                .slow
                .insert(Box::pin(policy.resolve(key, args, remote)))
                .as_mut()
                .poll(cx),
        }
    }
}

/// What a lookup found.
enum Found<T> {
    Fresh(T),
    /// Stale and servable; the entry's version if this caller claimed its
    /// refresh.
    Stale(T, Option<Version>),
    /// Nothing usable: absent or dead.
    Nothing,
    /// An entry holding another type (named): unusable, and worth reporting.
    Foreign(&'static str),
    /// The store has no local fast path; ask it with I/O.
    Remote,
}

/// What the synchronous part of a call decided.
enum Step<T> {
    Done(T),
    Refresh(T, String, Version),
    Load(String, bool),
}

impl<A, T, E> CachePolicy<A, T, E>
where
    A: Send + 'static,
    T: CacheValue,
    E: fmt::Debug + Clone + Send + 'static,
{
    /// Builds a policy, refusing a negative or NaN `ttl` or `stale`.
    pub fn new(config: PolicyConfig<A>, loader: Loader<A, T, E>) -> Result<Self, Error> {
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
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key a call with `args` uses.
    pub fn key(&self, args: &A) -> String {
        self.key.key(args)
    }

    /// Calls a sync loader through the cache. Blocks only on a miss.
    ///
    /// # Panics
    /// If the loader is async (the facade never builds that), or if the
    /// cached function panics.
    pub fn call_blocking(self: &Arc<Self>, args: A) -> Result<T, E> {
        self.call_blocking_via(&*self.store, args)
    }

    /// [`CachePolicy::call_blocking`] through `store`'s
    /// [`LocalLookup`], which the compiler can inline: the fast path of
    /// callers that know the concrete type of this policy's store. A
    /// `store` that is not this policy's own store is ignored.
    ///
    /// # Panics
    /// As [`CachePolicy::call_blocking`].
    #[inline]
    pub fn call_blocking_in<S: Store + LocalLookup>(
        self: &Arc<Self>,
        store: &S,
        args: A,
    ) -> Result<T, E> {
        if self.is_own(store) {
            self.call_blocking_via(store, args)
        } else {
            self.call_blocking(args)
        }
    }

    /// Whether `store` is this policy's store (the same object).
    #[inline]
    fn is_own<S: Store>(&self, store: &S) -> bool {
        std::ptr::addr_eq(store as *const S, Arc::as_ptr(&self.store))
    }

    #[inline]
    fn call_blocking_via<L: LocalLookup + ?Sized>(
        self: &Arc<Self>,
        local: &L,
        args: A,
    ) -> Result<T, E> {
        let Loader::Sync(load) = &self.loader else {
            panic!("call_blocking on an async loader; use call_async");
        };
        if self.ttl == 0.0 {
            return load(args);
        }
        // Mirrors CallAsync::poll on purpose: a shared helper that carried
        // the arguments through one more enum measured ~4 ns slower a hit.
        match self.step(local, &args) {
            Step::Done(value) => Ok(value),
            Step::Refresh(value, key, version) => {
                self.spawn_refresh(key, args, version);
                Ok(value)
            }
            Step::Load(key, remote) => self.resolve_blocking(key, args, remote),
        }
    }

    // Out of line so the hit path keeps a small stack frame.
    #[cold]
    #[inline(never)]
    fn resolve_blocking(self: &Arc<Self>, key: String, args: A, remote: bool) -> Result<T, E> {
        pollster::block_on(self.resolve(key, args, remote))
    }

    /// Calls the loader (sync or async) through the cache. The returned
    /// future does nothing until polled; a hit completes on the first poll
    /// without allocating.
    pub fn call_async(self: &Arc<Self>, args: A) -> CallAsync<'_, A, T, E> {
        CallAsync {
            policy: self,
            local: None,
            args: Some(args),
            slow: None,
        }
    }

    /// [`CachePolicy::call_async`] through `store`'s [`LocalLookup`], as
    /// [`CachePolicy::call_blocking_in`]. A `store` that is not this
    /// policy's own store is ignored.
    #[inline]
    pub fn call_async_in<'a, S: Store + LocalLookup>(
        self: &'a Arc<Self>,
        store: &'a S,
        args: A,
    ) -> CallAsync<'a, A, T, E, S> {
        CallAsync {
            policy: self,
            local: self.is_own(store).then_some(store),
            args: Some(args),
            slow: None,
        }
    }

    /// The synchronous part of every call: resolve the key and try the
    /// store's in-process fast path. With metrics on, one lookup in
    /// [`LATENCY_SAMPLE`] per thread is timed (counts stay exact).
    #[inline]
    fn step<L: LocalLookup + ?Sized>(&self, local: &L, args: &A) -> Step<T> {
        if self.metrics_on && sample_latency() {
            let started = Instant::now();
            let step = self.lookup_step(local, args);
            self.metrics
                .record_latency(&self.name, "get", started.elapsed());
            return step;
        }
        self.lookup_step(local, args)
    }

    #[inline]
    fn lookup_step<L: LocalLookup + ?Sized>(&self, local: &L, args: &A) -> Step<T> {
        // The static key first, inline: `with_key`'s other arms are large
        // enough that the compiler would otherwise call out for every hit.
        match &self.key {
            KeySpec::Static(key) => self.step_for(local, key),
            KeySpec::Template(..) => {
                // A template key lives in a thread-local buffer only while
                // the closure runs. Handing a fresh hit's value (a few
                // bytes) out of it, rather than a whole `Step`, saves about
                // 10 ns a hit; anything else renders the key again.
                match self.key.with_key(args, |key| self.fresh_hit(local, key)) {
                    Some(value) => Step::Done(value),
                    None => self.key.with_key(args, |key| self.step_for(local, key)),
                }
            }
            KeySpec::Closure(_) => self.key.with_key(args, |key| self.step_for(local, key)),
        }
    }

    /// The value of a fresh entry under `key` in the local fast path.
    #[inline]
    fn fresh_hit<L: LocalLookup + ?Sized>(&self, local: &L, key: &str) -> Option<T> {
        let now = self.clock.now();
        let mut fresh = None;
        local.visit_local(key, |entry| {
            if now < entry.fresh_until {
                fresh = entry.value.downcast_ref::<T>().cloned();
            }
        });
        if fresh.is_some() {
            self.hit(key);
        }
        fresh
    }

    #[inline]
    fn step_for<L: LocalLookup + ?Sized>(&self, local: &L, key: &str) -> Step<T> {
        let now = self.clock.now();
        match self.lookup_in(local, key, now) {
            Found::Fresh(value) => {
                self.hit(key);
                Step::Done(value)
            }
            Found::Stale(value, claimed) => {
                self.hit(key);
                match claimed {
                    Some(version) => Step::Refresh(value, key.to_owned(), version),
                    None => Step::Done(value),
                }
            }
            Found::Nothing => Step::Load(key.to_owned(), false),
            Found::Foreign(found) => {
                self.type_mismatch(key, found);
                Step::Load(key.to_owned(), false)
            }
            Found::Remote => Step::Load(key.to_owned(), true),
        }
    }

    fn lookup_local(&self, key: &str, now: f64) -> Found<T> {
        self.lookup_in(&*self.store, key, now)
    }

    #[inline]
    fn lookup_in<L: LocalLookup + ?Sized>(&self, local: &L, key: &str, now: f64) -> Found<T> {
        let mut found = Found::Nothing;
        let local = local.visit_local(key, |entry| found = self.classify(key, entry, now, true));
        match local {
            Local::Found => found,
            Local::Missing => Found::Nothing,
            Local::Unsupported => Found::Remote,
        }
    }

    #[inline]
    fn classify(&self, key: &str, entry: &Entry, now: f64, local: bool) -> Found<T> {
        let Some(value) = entry.value.downcast_ref::<T>() else {
            return Found::Foreign(entry.value.type_name());
        };
        if now < entry.fresh_until {
            Found::Fresh(value.clone())
        } else if self.stale > 0.0 && now <= entry.fresh_until + self.stale {
            let version = Version::of(entry);
            let claimed = if local {
                entry.claim_refresh(now, self.refresh_hold)
            } else {
                self.claim_remote(key, version, now)
            };
            Found::Stale(value.clone(), claimed.then_some(version))
        } else {
            Found::Nothing
        }
    }

    /// The slow path: ask a remote store, then load under single flight.
    async fn resolve(self: &Arc<Self>, key: String, args: A, remote: bool) -> Result<T, E> {
        let writes_seen = self.writes.of(&key);
        if remote {
            match self.lookup_remote(&key).await {
                Found::Fresh(value) => {
                    self.hit(&key);
                    return Ok(value);
                }
                Found::Stale(value, claimed) => {
                    self.hit(&key);
                    if let Some(version) = claimed {
                        self.spawn_refresh(key, args, version);
                    }
                    return Ok(value);
                }
                Found::Foreign(found) => self.type_mismatch(&key, found),
                Found::Nothing | Found::Remote => {}
            }
        }
        if self.metrics_on {
            self.metrics.record_miss(&self.name, &key);
        }
        self.load(key, args, remote.then_some(writes_seen)).await
    }

    async fn lookup_remote(&self, key: &str) -> Found<T> {
        let decoder = TypedDecoder::<T>::new();
        let started = self.metrics_on.then(Instant::now);
        let result = self.store.get(key, &decoder).await;
        if let Some(started) = started {
            self.metrics
                .record_latency(&self.name, "get", started.elapsed());
        }
        match result {
            Ok(Some(entry)) => self.classify(key, &entry, self.clock.now(), false),
            Ok(None) => Found::Nothing,
            Err(error) => {
                self.store_error("get", key, &error);
                Found::Nothing
            }
        }
    }

    /// Loads `key` under single flight: one caller runs the function, the
    /// others wait for its value. `remote_writes_seen` is, for a remote
    /// store, the write generation of `key` before the caller's lookup.
    async fn load(
        self: &Arc<Self>,
        key: String,
        args: A,
        remote_writes_seen: Option<u64>,
    ) -> Result<T, E> {
        loop {
            match self.flights.join(&key) {
                Join::Leader(leader) => {
                    // A flight may have ended between our lookup and joining:
                    // re-read (for a remote store, only if it wrote).
                    let recheck = match remote_writes_seen {
                        None => self.lookup_local(&key, self.clock.now()),
                        Some(seen) if self.writes.of(&key) != seen => {
                            self.lookup_remote(&key).await
                        }
                        Some(_) => Found::Nothing,
                    };
                    if let Found::Fresh(value) = recheck {
                        leader.succeed(value.clone());
                        return Ok(value);
                    }
                    let epoch = self.generations.of(&key);
                    return match self.run_loader(args).await {
                        Ok(value) => {
                            // A failed write is counted and logged; the
                            // caller still gets its value.
                            let _ = self.write(&key, &value, epoch).await;
                            leader.succeed(value.clone());
                            Ok(value)
                        }
                        Err(error) => {
                            leader.fail(error.clone());
                            Err(error)
                        }
                    };
                }
                Join::Waiter(waiter) => match waiter.wait().await {
                    Outcome::Value(value) => return Ok(value),
                    // The flight's error, not a run of our own: a failing
                    // backend is asked once per flight, not once per caller.
                    Outcome::Failed(error) => return Err(error),
                    Outcome::Abandoned => continue,
                },
            }
        }
    }

    /// Runs the function, timing it when metrics are on.
    async fn run_loader(&self, args: A) -> Result<T, E> {
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
    async fn write(&self, key: &str, value: &T, generation: u64) -> Result<(), Error> {
        if self.generations.of(key) != generation {
            return Ok(());
        }
        let now = self.clock.now();
        let entry = Entry::new(Value::new(value.clone()), now + self.ttl, now);
        // The store measures from its own reading of the clock in its own
        // float arithmetic; a millisecond more keeps it from dropping the
        // entry an ulp before the inclusive end of the stale window.
        let keep = ttl_duration(self.ttl + self.stale).map(|keep| keep + KEEP_MARGIN);
        if let Err(error) = self.store.set(key, entry, keep).await {
            self.store_error("set", key, &error);
            return Err(error);
        }
        if self.generations.of(key) != generation {
            // An invalidation raced the write: it wins.
            if let Err(error) = self.store.delete(key).await {
                self.store_error("delete", key, &error);
            }
            return Ok(());
        }
        self.writes.bump(key);
        self.forget_remote_claim(key);
        if self.metrics_on {
            self.metrics.record_set(&self.name, key, None);
            if let Some(usage) = self.store.usage() {
                self.metrics
                    .record_memory_usage(&self.name, usage.bytes, usage.entries);
            }
        }
        Ok(())
    }

    /// Claims the refresh of `version` of a stale entry read from a remote
    /// store: refused while another caller's claim on that version holds,
    /// or if a newer version is already claimed (this caller read an older
    /// copy).
    fn claim_remote(&self, key: &str, version: Version, now: f64) -> bool {
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
        {
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
        self.store.get_local(key, &mut |entry| {
            if Version::of(entry) == version {
                entry.defer_refresh(retry_at.unwrap_or(0.0));
            }
        });
    }

    fn forget_remote_claim(&self, key: &str) {
        let mut claims = lock(&self.remote_claims);
        if !claims.is_empty() {
            claims.remove(key);
        }
    }

    /// Deletes the entry for `args`. A load of it already under way keeps
    /// its value to itself: later calls load afresh.
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
    pub async fn clear(&self) -> Result<(), Error> {
        self.generations.bump_all();
        self.flights.detach_all();
        let result = self.store.clear().await;
        if let Err(error) = &result {
            self.store_error("clear", "*", error);
        }
        result
    }

    #[inline]
    fn hit(&self, key: &str) {
        if self.metrics_on {
            self.metrics.record_hit(&self.name, key);
        }
    }

    /// Counts and logs a store failure; the call goes on without the store.
    #[cold]
    pub(super) fn store_error(&self, operation: &'static str, key: &str, error: &Error) {
        self.metrics
            .record_error(&self.name, operation, error.kind());
        self.log_failure(
            operation,
            key,
            error,
            &crate::log::summary(error),
            "cache store failed; calling through without it",
        );
    }

    /// Logs a failure quietly: in full, key included, at debug level; as a
    /// warning without the key at most once per
    /// [`WARN_INTERVAL`](crate::log) for each `operation`, with the number
    /// suppressed since the last.
    #[cold]
    pub(super) fn log_failure(
        &self,
        operation: &'static str,
        key: &str,
        error: &dyn fmt::Display,
        summary: &dyn fmt::Display,
        what: &str,
    ) {
        tracing::debug!(target: "advanced_caching::policy", cache = %self.name,
            store = self.store.name(), operation, key, %error, "{what}");
        if let Some(suppressed) = self.warnings.admit(operation, Instant::now()) {
            tracing::warn!(target: "advanced_caching::policy", cache = %self.name,
                store = self.store.name(), operation, error = %summary, suppressed, "{what}");
        }
    }

    #[cold]
    fn type_mismatch(&self, key: &str, found: &'static str) {
        let error = Error::TypeMismatch {
            key: key.to_owned(),
            expected: type_name::<T>(),
            found,
        };
        self.metrics.record_error(&self.name, "get", error.kind());
        self.log_failure(
            "type_mismatch",
            key,
            &error,
            &crate::log::summary(&error),
            "ignoring cache entries of another type (another function shares this key space?)",
        );
    }
}
