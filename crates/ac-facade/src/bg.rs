//! `bg(interval)`: values refreshed on a schedule, so callers never wait;
//! `bg::write` / `bg::read`: one writer process, many local readers.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use ac_core::clock::{ClockReader, check_seconds, ttl_duration};
use ac_core::scheduler::{Every, JobHandle, Task};
use ac_core::{
    CachePolicy, CacheValue, ChainCache, Clock, Entry, Error, IntoSeconds, IntoStore, KeySpec,
    KeyTemplate, Loader, MetricsCollector, PolicyConfig, RefreshError, Store, TypedDecoder,
};
use ac_store_mem::InMemCache;
use event_listener::Event;

use crate::options::{Options, option_setters};
use crate::outcome::{Fallible, Outcome, Plain};

/// A failed background refresh, as given to `on_error`.
#[derive(Debug, Clone)]
pub struct BgError {
    key: String,
    message: String,
}

impl BgError {
    /// The key of the loader or reader that failed.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for BgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "background refresh of {:?} failed: {}",
            self.key, self.message
        )
    }
}

impl std::error::Error for BgError {}

type OnError = Arc<dyn Fn(&BgError) + Send + Sync>;

/// Calls `on_error` (a panic in it is caught and logged), or logs. A `bg`
/// key is a static name given in code (placeholders are refused), not
/// data from a caller, so it names the loader in warnings.
fn report(on_error: Option<&OnError>, error: &BgError) {
    match on_error {
        Some(on_error) => {
            if catch_unwind(AssertUnwindSafe(|| on_error(error))).is_err() {
                tracing::error!(target: "advanced_caching::bg", bg = error.key(),
                    "bg on_error handler panicked");
            }
        }
        None => tracing::warn!(target: "advanced_caching::bg", bg = error.key(), %error,
            "bg refresh failed"),
    }
}

/// The store a loader's policy reads and writes: `store` itself if it is an
/// [`InMemCache`] (which cannot fail or lose a value), else `store` behind
/// a private in-memory copy. Calls then read that copy first, so a value
/// the function produced is served for its ttl even if `store` refused it
/// or lost it (an outage, a restart, an eviction), without waiting on
/// `store`; the copy expires with the entry, so nothing is served longer
/// than over the store alone.
fn with_own_copy(store: &Arc<dyn Store>, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Store>, Error> {
    if (&**store as &dyn Any).is::<InMemCache>() {
        return Ok(Arc::clone(store));
    }
    let own = InMemCache::builder()
        .shared_clock(Arc::clone(clock))
        .build()?;
    let chain = ChainCache::builder()
        .level(own)
        .level(Arc::clone(store))
        .clock(Arc::clone(clock))
        .build()?;
    Ok(chain.into_store())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every periodic job started by `bg`, for [`shutdown`].
fn jobs() -> &'static Mutex<Vec<Weak<JobHandle>>> {
    static JOBS: OnceLock<Mutex<Vec<Weak<JobHandle>>>> = OnceLock::new();
    JOBS.get_or_init(Mutex::default)
}

fn register_job(job: JobHandle) -> Arc<JobHandle> {
    register_job_in(&mut lock(jobs()), job)
}

/// Registers `job` in the locked job list (see [`shutdown`] for why a
/// writer's build holds that lock across its registrations).
fn register_job_in(jobs: &mut Vec<Weak<JobHandle>>, job: JobHandle) -> Arc<JobHandle> {
    let job = Arc::new(job);
    jobs.retain(|weak| weak.strong_count() > 0);
    jobs.push(Arc::downgrade(&job));
    job
}

struct Writer {
    id: u64,
    store: Arc<dyn Store>,
    interval: f64,
    ttl: f64,
}

/// The `bg::write` loaders of this process, by key.
fn writers() -> &'static Mutex<HashMap<String, Writer>> {
    static WRITERS: OnceLock<Mutex<HashMap<String, Writer>>> = OnceLock::new();
    WRITERS.get_or_init(Mutex::default)
}

/// Removes a writer's registration when its loader is dropped.
struct Registration {
    key: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut writers = lock(writers());
        if writers.get(&self.key).is_some_and(|w| w.id == self.id) {
            writers.remove(&self.key);
        }
    }
}

/// Whether the first scheduled load has run; callers wait for it once.
#[derive(Default)]
struct FirstLoad {
    done: AtomicBool,
    event: Event,
}

impl FirstLoad {
    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    #[inline]
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        while !self.is_done() {
            let listener = self.event.listen();
            if self.is_done() {
                return;
            }
            listener.await;
        }
    }
}

/// Marks the first load done when dropped.
struct FinishFirstOnDrop(Arc<FirstLoad>);

impl Drop for FinishFirstOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Starts a loader refreshed every `interval` seconds: `bg(300).key("flags")`.
/// Calls return the cached value and wait only for the very first load.
/// `interval == 0` (or `ttl == 0`) schedules nothing: every call runs the
/// function.
///
/// Over a store other than an [`InMemCache`] (Redis, files, a chain), the
/// loader also keeps the value its function last produced in memory, and
/// calls read that copy first: when the store refuses a write (an outage)
/// the refresh is reported to `on_error` and counted in metrics (a `set`
/// error and a failed background refresh), and calls go on being served
/// the new value for its ttl without waiting on the store or running the
/// function themselves. Once the store answers again, the next refresh
/// writes to it. The copy is a clone of the value (wrap big values in an
/// `Arc`).
///
/// ```
/// use advanced_caching::bg;
///
/// let stats = bg(60).key("db_stats").wrap(|| 42u64)?;
/// assert_eq!(stats.get(), 42);
/// # Ok::<(), advanced_caching::Error>(())
/// ```
pub fn bg(interval: impl IntoSeconds) -> BgBuilder {
    BgBuilder {
        interval: interval.into_seconds(),
        key: None,
        ttl: None,
        options: Options::default(),
        on_error: None,
        run_immediately: true,
        writer: false,
    }
}

/// Configures a `bg` loader (or, from [`write`], a writer); finish with
/// `wrap`, `try_wrap`, `wrap_async` or `try_wrap_async`.
#[must_use = "a builder does nothing until wrapped around a function"]
pub struct BgBuilder {
    interval: f64,
    key: Option<String>,
    ttl: Option<f64>,
    options: Options,
    on_error: Option<OnError>,
    run_immediately: bool,
    writer: bool,
}

impl fmt::Debug for BgBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgBuilder")
            .field("interval", &self.interval)
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("run_immediately", &self.run_immediately)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

/// The parts both kinds of loaders are made of.
struct Parts<T, E> {
    policy: Arc<CachePolicy<(), T, E>>,
    /// The store the value is published to (the policy's may wrap it).
    store: Arc<dyn Store>,
    first: Arc<FirstLoad>,
    job: Option<Arc<JobHandle>>,
    registration: Option<Registration>,
}

impl BgBuilder {
    /// The key; a static string (a template is refused: `bg` functions take
    /// no arguments).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// How long a loaded value stays valid after the function produced it
    /// (default: `2 × interval`), so a few failed refreshes keep serving
    /// it. A value the store refused is served from the loader's own copy
    /// for the same time, never longer. Past it, a call with no value runs
    /// the function itself.
    pub fn ttl(mut self, secs: impl IntoSeconds) -> Self {
        self.ttl = Some(secs.into_seconds());
        self
    }

    option_setters!(store, metrics, clock, scheduler, name);

    /// Called when a refresh fails (the last good value stays): the
    /// function returned an error or panicked, or it returned a value the
    /// store did not take (the value is still served, see [`bg`]). A panic
    /// in it is caught. Without it, failures are logged with `tracing`.
    pub fn on_error(mut self, on_error: impl Fn(&BgError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(on_error));
        self
    }

    /// Whether the first load starts at once (default) or after one
    /// interval; in the latter case the first call loads inline.
    pub fn run_immediately(mut self, run_immediately: bool) -> Self {
        self.run_immediately = run_immediately;
        self
    }

    /// Loads a sync, zero-argument function on a background thread; works
    /// in a program with no async runtime.
    ///
    /// # Errors
    /// No key, a key with placeholders, a negative or NaN interval or ttl,
    /// or (for `bg::write`) a second writer for the key in this process.
    pub fn wrap<T, F>(self, f: F) -> Result<BgLoader<T>, Error>
    where
        T: CacheValue,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.build(Loader::Sync(Arc::new(move |()| Ok(f()))))
            .map(BgLoader::from)
    }

    /// Loads a sync function returning `Result`; an `Err` keeps the last
    /// good value and goes to `on_error`.
    ///
    /// # Errors
    /// As [`BgBuilder::wrap`].
    pub fn try_wrap<T, E, F>(self, f: F) -> Result<BgLoader<T, Fallible<E>>, Error>
    where
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn() -> Result<T, E> + Send + Sync + 'static,
    {
        self.build(Loader::Sync(Arc::new(move |()| f())))
            .map(BgLoader::from)
    }

    /// Loads an async, zero-argument function on the async runtime.
    ///
    /// # Errors
    /// As [`BgBuilder::wrap`].
    pub fn wrap_async<T, F, Fut>(self, f: F) -> Result<AsyncBgLoader<T>, Error>
    where
        T: CacheValue,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let load = move |()| {
            let fut = f();
            Box::pin(async move { Ok(fut.await) }) as ac_core::BoxFuture<'static, _>
        };
        self.build(Loader::Async(Arc::new(load)))
            .map(AsyncBgLoader::from)
    }

    /// Loads an async function returning `Result`.
    ///
    /// # Errors
    /// As [`BgBuilder::wrap`].
    pub fn try_wrap_async<T, E, F, Fut>(self, f: F) -> Result<AsyncBgLoader<T, Fallible<E>>, Error>
    where
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let load = move |()| Box::pin(f()) as ac_core::BoxFuture<'static, _>;
        self.build(Loader::Async(Arc::new(load)))
            .map(AsyncBgLoader::from)
    }

    fn build<T, E>(self, loader: Loader<(), T, E>) -> Result<Parts<T, E>, Error>
    where
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
    {
        let what = if self.writer { "bg::write" } else { "bg" };
        let Some(key) = self.key else {
            return Err(Error::invalid_config(format!(
                "{what} needs a key: call .key(\"name\")"
            )));
        };
        let template = KeyTemplate::parse(&key)?;
        let Some(static_key) = template.as_static() else {
            return Err(Error::invalid_config(format!(
                "{what} key {key:?} has placeholders, but {what} functions take no arguments: \
                 use a plain key"
            )));
        };
        let interval = check_seconds(&format!("interval of {what} {key:?}"), self.interval)?;
        let ttl = match self.ttl {
            Some(ttl) => check_seconds(&format!("ttl of {what} {key:?}"), ttl)?,
            None => interval * 2.0,
        };
        let is_async = matches!(loader, Loader::Async(_));
        let mut options = self.options;
        let clock = options.take_clock();
        let store = options.take_store(&clock)?;
        let scheduler = options.take_scheduler(is_async);
        // A writer registers itself and its job under the job-list lock, so
        // a concurrent shutdown sees both or neither.
        let mut job_list = self.writer.then(|| lock(jobs()));
        let registration = if self.writer {
            Some(register_writer(&key, &store, interval, ttl)?)
        } else {
            None
        };
        let policy = Arc::new(CachePolicy::new(
            PolicyConfig {
                name: options.name.take().unwrap_or_else(|| key.clone()),
                ttl,
                stale: 0.0,
                key: KeySpec::Static(static_key.into()),
                store: with_own_copy(&store, &clock)?,
                clock: Arc::clone(&clock),
                metrics: options.take_metrics(),
                scheduler: Arc::clone(&scheduler),
            },
            loader,
        )?);
        let first = Arc::new(FirstLoad::default());
        if interval == 0.0 || ttl == 0.0 {
            first.finish();
            return Ok(Parts {
                policy,
                store,
                first,
                job: None,
                registration,
            });
        }
        if !self.run_immediately {
            first.finish();
        }
        let task = refresh_task(&policy, &first, key, self.on_error, is_async);
        let start = clock.now() + if self.run_immediately { 0.0 } else { interval };
        let every = Every {
            interval,
            start,
            clock,
            task,
        };
        let job = match scheduler.every(every) {
            Ok(job) => Some(match job_list.as_deref_mut() {
                Some(jobs) => register_job_in(jobs, job),
                None => register_job(job),
            }),
            Err(error) => {
                // Without a schedule, calls still work: they load inline.
                first.finish();
                return Err(error);
            }
        };
        Ok(Parts {
            policy,
            store,
            first,
            job,
            registration,
        })
    }
}

fn register_writer(
    key: &str,
    store: &Arc<dyn Store>,
    interval: f64,
    ttl: f64,
) -> Result<Registration, Error> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut writers = lock(writers());
    if writers.contains_key(key) {
        return Err(Error::invalid_config(format!(
            "a bg::write writer for key {key:?} is already registered in this process \
             (one writer per key; drop the first to replace it)"
        )));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    writers.insert(
        key.to_owned(),
        Writer {
            id,
            store: Arc::clone(store),
            interval,
            ttl,
        },
    );
    Ok(Registration {
        key: key.to_owned(),
        id,
    })
}

/// The periodic reload, reporting failures and marking the first load.
fn refresh_task<T, E>(
    policy: &Arc<CachePolicy<(), T, E>>,
    first: &Arc<FirstLoad>,
    key: String,
    on_error: Option<OnError>,
    is_async: bool,
) -> Task
where
    T: CacheValue,
    E: fmt::Debug + Clone + Send + 'static,
{
    let (policy, first) = (Arc::clone(policy), Arc::clone(first));
    // Dropped with the task, i.e. whenever the job ends (stopped, shut
    // down, or dropped before it ever ran): callers waiting for the first
    // load then stop waiting and load inline.
    let ended = Arc::new(FinishFirstOnDrop(Arc::clone(&first)));
    let finish = move |result: Result<(), RefreshError<E>>, first: &FirstLoad| {
        let _ = &ended;
        if let Err(error) = result {
            let error = BgError {
                key: key.clone(),
                message: error.to_string(),
            };
            report(on_error.as_ref(), &error);
        }
        first.finish();
    };
    if is_async {
        let finish = Arc::new(finish);
        Task::Async(Arc::new(move || {
            let (policy, first, finish) = (policy.clone(), first.clone(), finish.clone());
            Box::pin(async move {
                let result = policy.reload(()).await;
                finish(result, &first);
            })
        }))
    } else {
        Task::Blocking(Arc::new(move || {
            finish(ac_core::block_on(policy.reload(())), &first);
        }))
    }
}

/// A `bg` loader of a sync function. `get()` returns the loaded value
/// (`T`, or `Result<T, E>` from `try_wrap`). Dropping the loader stops its
/// schedule.
pub struct BgLoader<T, O: Outcome = Plain> {
    policy: Arc<CachePolicy<(), T, O::Error>>,
    store: Arc<dyn Store>,
    first: Arc<FirstLoad>,
    job: Option<Arc<JobHandle>>,
    _registration: Option<Registration>,
}

/// A `bg` loader of an async function. `get().await` returns the loaded
/// value. Dropping the loader stops its schedule.
pub struct AsyncBgLoader<T, O: Outcome = Plain> {
    policy: Arc<CachePolicy<(), T, O::Error>>,
    store: Arc<dyn Store>,
    first: Arc<FirstLoad>,
    job: Option<Arc<JobHandle>>,
    _registration: Option<Registration>,
}

macro_rules! loader_common {
    ($ty:ident) => {
        impl<T, O: Outcome> From<Parts<T, O::Error>> for $ty<T, O> {
            fn from(parts: Parts<T, O::Error>) -> Self {
                Self {
                    policy: parts.policy,
                    store: parts.store,
                    first: parts.first,
                    job: parts.job,
                    _registration: parts.registration,
                }
            }
        }

        impl<T, O: Outcome> fmt::Debug for $ty<T, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("policy", &self.policy)
                    .field("job", &self.job)
                    .finish_non_exhaustive()
            }
        }

        impl<T, O: Outcome> Drop for $ty<T, O> {
            fn drop(&mut self) {
                if let Some(job) = &self.job {
                    job.stop();
                }
            }
        }

        impl<T: CacheValue, O: Outcome> $ty<T, O> {
            /// The store the value is written to: the one given to
            /// `.store(..)`, or the loader's private [`InMemCache`].
            pub fn store(&self) -> &Arc<dyn Store> {
                &self.store
            }

            /// Stops the schedule (a refresh in progress completes); calls
            /// keep working and load inline once the value expires.
            pub fn stop(&self) {
                if let Some(job) = &self.job {
                    job.stop();
                }
            }
        }
    };
}
loader_common!(BgLoader);
loader_common!(AsyncBgLoader);

impl<T: CacheValue, O: Outcome> BgLoader<T, O> {
    /// Stops the schedule and blocks until a refresh in progress has
    /// finished and the job's thread, if it has one, has exited.
    pub fn stop_and_wait(&self) {
        if let Some(job) = &self.job {
            job.join();
        }
    }

    /// The current value: the loader's own copy, else the store's entry.
    /// Waits only for the very first load; if there is no value (the first
    /// load failed, or every refresh for a whole ttl did), runs the
    /// function on the caller's thread. A failing store does not make it
    /// wait or run the function while the last value is within its ttl.
    #[inline]
    pub fn get(&self) -> O::Output<T> {
        if !self.first.is_done() {
            ac_core::block_on(self.first.wait());
        }
        O::output(self.policy.call_blocking(()))
    }
}

impl<T: CacheValue, O: Outcome> AsyncBgLoader<T, O> {
    /// Stops the schedule and waits until a refresh in progress has finished.
    pub async fn stop_and_wait(&self) {
        if let Some(job) = &self.job {
            job.join_async().await;
        }
    }

    /// The current value, as [`BgLoader::get`]. Waits only for the very
    /// first load; if there is no value (the first load failed, or every
    /// refresh for a whole ttl did), runs the function.
    pub async fn get(&self) -> O::Output<T> {
        if !self.first.is_done() {
            self.first.wait().await;
        }
        O::output(self.policy.call_async(()).await)
    }
}

/// Starts the writer half of the multi-process pattern: like [`bg`], and
/// registered so that [`read`] in this process finds its store. One writer
/// per key per process: a second is an error naming the key.
///
/// A write the store refuses (Redis down) calls `on_error` and is counted
/// (a `set` error and a failed background refresh, as the Python package
/// counts it); the writer's own `get()` keeps serving the value from its
/// in-memory copy, and the next refresh after the store is back writes to
/// it again. Readers meanwhile keep their last good value (see [`read`]).
///
/// ```
/// use advanced_caching::{InMemCache, bg};
///
/// let rates = bg::write(60).key("rates").store(InMemCache::new()).wrap(|| 1.08f64)?;
/// assert!(bg::write(60).key("rates").wrap(|| 0.0f64).is_err());
/// assert_eq!(rates.get(), 1.08); // waits for the first load
/// let reader = bg::read::<f64>("rates").build()?; // finds the writer's store
/// assert_eq!(reader.get(), Some(1.08));
/// # drop(rates);
/// # Ok::<(), advanced_caching::Error>(())
/// ```
pub fn write(interval: impl IntoSeconds) -> BgBuilder {
    BgBuilder {
        writer: true,
        ..bg(interval)
    }
}

/// Starts a reader of `key`: a private in-memory mirror, synced from the
/// store on its own schedule; [`BgReader::get`] never touches the store.
///
/// What `get()` returns, sync by sync:
/// - a sync that finds the value: that value, for [`ReadBuilder::ttl`];
/// - a sync that **fails** (the store is unreachable, or holds something
///   that is not a `T`): the last good value, however old, until a sync
///   succeeds; the failure is counted (`sync.<kind>` errors and a failed
///   background refresh in metrics) and goes to
///   [`ReadBuilder::on_error`]. [`ReadBuilder::max_stale`] bounds how long
///   past its ttl a value is served this way;
/// - a sync that succeeds and finds **no entry** (the writer stopped, the
///   key expired or was deleted): not a failure. The value is served until
///   `ttl` after the last sync that found it, then `get()` returns `None`,
///   as the Python package's reader does.
pub fn read<T: CacheValue>(key: impl Into<String>) -> ReadBuilder<T> {
    ReadBuilder {
        key: key.into(),
        interval: None,
        ttl: None,
        max_stale: None,
        options: Options::default(),
        on_error: None,
        run_immediately: true,
        value: std::marker::PhantomData,
    }
}

/// Configures a [`BgReader`]; finish with [`ReadBuilder::build`].
#[must_use = "a builder does nothing until built"]
pub struct ReadBuilder<T> {
    key: String,
    interval: Option<f64>,
    ttl: Option<f64>,
    max_stale: Option<f64>,
    options: Options,
    on_error: Option<OnError>,
    run_immediately: bool,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ReadBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadBuilder")
            .field("key", &self.key)
            .field("interval", &self.interval)
            .field("ttl", &self.ttl)
            .field("max_stale", &self.max_stale)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<T: CacheValue> ReadBuilder<T> {
    /// Seconds between syncs from the store (default: the writer's interval
    /// when one is registered in this process).
    pub fn interval(mut self, secs: impl IntoSeconds) -> Self {
        self.interval = Some(secs.into_seconds());
        self
    }

    /// How long a synced value is served after the sync that found it
    /// while the store answers (default: the writer's ttl, else
    /// `2 × interval`). A sync that finds the key gone does not end it
    /// early; syncs that fail do not count against it (see
    /// [`ReadBuilder::max_stale`]).
    pub fn ttl(mut self, secs: impl IntoSeconds) -> Self {
        self.ttl = Some(secs.into_seconds());
        self
    }

    /// How long past its ttl the last good value may be served while syncs
    /// fail (default: no bound, until a sync succeeds). Once that has
    /// passed, `get()` returns `None` until a sync succeeds; `0` ends the
    /// value at its ttl, outage or not.
    pub fn max_stale(mut self, secs: impl IntoSeconds) -> Self {
        self.max_stale = Some(secs.into_seconds());
        self
    }

    option_setters!(store, metrics, clock, scheduler);

    /// Called when a sync fails: the store could not be read, or holds a
    /// value of another type (the mirror keeps its last good value, see
    /// [`read`]); a panic in it is caught. Without it, failures are logged
    /// with `tracing`. A sync that finds no entry is not a failure.
    pub fn on_error(mut self, on_error: impl Fn(&BgError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(on_error));
        self
    }

    /// Whether `build` syncs once before returning (default) or the first
    /// sync waits one interval.
    pub fn run_immediately(mut self, run_immediately: bool) -> Self {
        self.run_immediately = run_immediately;
        self
    }

    /// Builds the reader. With `run_immediately`, syncs once first (for a
    /// remote store, this waits for one read).
    ///
    /// # Errors
    /// No store given and no writer for the key in this process; no interval
    /// given and none to inherit; a negative or NaN interval, ttl or
    /// max_stale.
    pub fn build(self) -> Result<BgReader<T>, Error> {
        let key = self.key;
        let writer = {
            let writers = lock(writers());
            writers
                .get(&key)
                .map(|w| (Arc::clone(&w.store), w.interval, w.ttl))
        };
        let mut options = self.options;
        let store = match (options.store.take(), &writer) {
            (Some(store), _) => store,
            (None, Some((store, _, _))) => Arc::clone(store),
            (None, None) => {
                return Err(Error::invalid_config(format!(
                    "bg::read({key:?}) has no store: pass .store(..), or register a \
                     bg::write for this key in this process first"
                )));
            }
        };
        let interval = match (self.interval, &writer) {
            (Some(interval), _) => interval,
            (None, Some((_, interval, _))) => *interval,
            (None, None) => {
                return Err(Error::invalid_config(format!(
                    "bg::read({key:?}) needs an interval: call .interval(secs)"
                )));
            }
        };
        let interval = check_seconds(&format!("interval of bg::read({key:?})"), interval)?;
        if interval == 0.0 {
            return Err(Error::invalid_config(format!(
                "bg::read({key:?}) interval must be positive: a reader with no schedule \
                 would never see new values"
            )));
        }
        let ttl = match (self.ttl, &writer) {
            (Some(ttl), _) => ttl,
            (None, Some((_, _, ttl))) => *ttl,
            (None, None) => interval * 2.0,
        };
        let ttl = check_seconds(&format!("ttl of bg::read({key:?})"), ttl)?;
        let max_stale = match self.max_stale {
            Some(secs) => check_seconds(&format!("max_stale of bg::read({key:?})"), secs)?,
            None => f64::INFINITY,
        };
        let clock = options.take_clock();
        let mirror = InMemCache::builder()
            .shared_clock(Arc::clone(&clock))
            .build()?;
        let sync = Arc::new(MirrorSync {
            key: key.clone(),
            ttl,
            max_stale,
            source: store,
            mirror: mirror.clone(),
            clock: ClockReader::new(Arc::clone(&clock)),
            last: Mutex::new(None),
            metrics: options.metrics.clone(),
            on_error: self.on_error,
            decoder: TypedDecoder::<T>::new(),
        });
        if self.run_immediately {
            ac_core::block_on(sync.run());
        }
        let scheduler = options.take_scheduler(true);
        // Dropped with the task, i.e. when the job ends (the reader is
        // dropped or `shutdown` runs): no sync will end an outage's hold
        // any more, so the ttl rule applies again from then on.
        let settle = Arc::new(SettleOnDrop(Arc::clone(&sync)));
        let every = Every {
            interval,
            start: clock.now() + interval,
            clock,
            task: Task::Async(Arc::new(move || {
                let sync = Arc::clone(&settle.0);
                Box::pin(async move { sync.run().await })
            })),
        };
        let job = register_job(scheduler.every(every)?);
        Ok(BgReader {
            key,
            mirror,
            metrics: options.metrics.filter(|m| m.enabled()),
            job,
            value: std::marker::PhantomData,
        })
    }
}

/// The value of the last sync that found one, and when that sync ran.
struct LastGood {
    entry: Entry,
    synced_at: f64,
}

/// One reader's sync from the store into its mirror. Syncs of one reader
/// never overlap (the build's first one runs before the job starts, and a
/// job runs its task once at a time), so `last` is never contended.
struct MirrorSync<T> {
    key: String,
    ttl: f64,
    /// Seconds past the ttl a failing reader serves; infinite by default.
    max_stale: f64,
    source: Arc<dyn Store>,
    mirror: InMemCache,
    clock: ClockReader,
    /// `None` before the first value, and once a sync found the key gone.
    last: Mutex<Option<LastGood>>,
    metrics: Option<Arc<dyn MetricsCollector>>,
    on_error: Option<OnError>,
    decoder: TypedDecoder<T>,
}

impl<T: CacheValue> MirrorSync<T> {
    async fn run(&self) {
        let started = std::time::Instant::now();
        let result = self.source.get(&self.key, &self.decoder).await;
        let now = self.clock.now();
        let success = match result {
            Ok(Some(entry)) if entry.value.downcast_ref::<T>().is_some() => {
                let entry = Entry::new(entry.value, entry.fresh_until, entry.created_at);
                self.keep(entry.clone(), self.ttl);
                *lock(&self.last) = Some(LastGood {
                    entry,
                    synced_at: now,
                });
                true
            }
            // Nothing written yet, or no more: the ttl rule decides.
            Ok(None) => {
                if let Some(last) = lock(&self.last).take() {
                    self.keep(last.entry, last.synced_at + self.ttl - now);
                }
                true
            }
            Ok(Some(entry)) => {
                self.fail(
                    "type_mismatch",
                    format!(
                        "the store holds a {}, not a {}",
                        entry.value.type_name(),
                        std::any::type_name::<T>()
                    ),
                );
                self.hold(now);
                false
            }
            Err(error) => {
                self.fail(error.kind(), error.to_string());
                self.hold(now);
                false
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.record_background_refresh(&self.key, success, started.elapsed());
        }
    }

    /// After a failed sync: keeps the last good value up to `max_stale`
    /// past its ttl.
    fn hold(&self, now: f64) {
        let last = lock(&self.last);
        if let Some(last) = &*last {
            let until = last.synced_at + self.ttl + self.max_stale;
            self.keep(last.entry.clone(), until - now);
        }
    }

    /// When the job ends: the ttl rule again, as no sync will come.
    fn settle(&self) {
        let now = self.clock.now();
        let last = lock(&self.last);
        if let Some(last) = &*last {
            self.keep(last.entry.clone(), last.synced_at + self.ttl - now);
        }
    }

    /// Serves `entry` for `secs` more (inclusive; forever if infinite), or
    /// drops it if that has passed. The in-memory mirror cannot fail, and
    /// its futures are ready at once.
    fn keep(&self, entry: Entry, secs: f64) {
        if secs >= 0.0 {
            let _ = ac_core::block_on(self.mirror.set(&self.key, entry, ttl_duration(secs)));
        } else {
            let _ = ac_core::block_on(self.mirror.delete(&self.key));
        }
    }

    fn fail(&self, kind: &str, message: String) {
        if let Some(metrics) = &self.metrics {
            metrics.record_error(&self.key, "sync", kind);
        }
        report(
            self.on_error.as_ref(),
            &BgError {
                key: self.key.clone(),
                message,
            },
        );
    }
}

/// Settles a reader's mirror when its job's task is dropped.
struct SettleOnDrop<T: CacheValue>(Arc<MirrorSync<T>>);

impl<T: CacheValue> Drop for SettleOnDrop<T> {
    fn drop(&mut self) {
        self.0.settle();
    }
}

/// A `bg::read` reader: [`BgReader::get`] reads the private in-memory
/// mirror and never touches the store. Dropping it stops its schedule.
pub struct BgReader<T> {
    key: String,
    mirror: InMemCache,
    metrics: Option<Arc<dyn MetricsCollector>>,
    job: Arc<JobHandle>,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for BgReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgReader")
            .field("key", &self.key)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for BgReader<T> {
    fn drop(&mut self) {
        self.job.stop();
    }
}

impl<T: CacheValue> BgReader<T> {
    /// The mirrored value, if one has been synced and is still served (see
    /// [`read`]: its ttl while syncs succeed, until a sync succeeds while
    /// they fail, up to `max_stale`); `None` before the first value and
    /// after that.
    #[inline]
    pub fn get(&self) -> Option<T> {
        let mut value = None;
        self.mirror.get_local(&self.key, &mut |entry| {
            value = entry.value.downcast_ref::<T>().cloned();
        });
        if let Some(metrics) = &self.metrics {
            if value.is_some() {
                metrics.record_hit(&self.key, &self.key);
            } else {
                metrics.record_miss(&self.key, &self.key);
            }
        }
        value
    }
}

/// Stops every job `bg`, `bg::write` and `bg::read` started, waits for
/// running refreshes to finish and their threads to exit, and forgets the
/// writers. New loaders can be registered afterwards; existing ones keep
/// answering calls (from their last value, then inline). A reader serves
/// its last value until the ttl after its last good sync, also if it was
/// holding the value through failed syncs: with no more syncs to come,
/// nothing would end that hold.
///
/// Blocks the calling thread: from async code use [`shutdown_async`].
pub fn shutdown() {
    for job in take_jobs() {
        job.join();
    }
}

/// [`shutdown`] without blocking a thread.
pub async fn shutdown_async() {
    for job in take_jobs() {
        job.join_async().await;
    }
}

/// Takes every job and forgets every writer in one step under the job-list
/// lock: a writer being built concurrently either is in both (and is
/// stopped) or registers after (and lives on), never half of each.
fn take_jobs() -> Vec<Arc<JobHandle>> {
    let mut jobs = lock(jobs());
    lock(writers()).clear();
    std::mem::take(&mut *jobs)
        .into_iter()
        .filter_map(|weak| weak.upgrade())
        .collect()
}
