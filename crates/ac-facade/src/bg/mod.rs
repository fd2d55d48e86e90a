//! `bg(interval)`: values refreshed on a schedule, so callers never wait;
//! `bg::write` / `bg::read`: one writer process, many local readers.
//!
//! - this module: the builder of loaders and writers, and failure reports;
//! - `loader.rs`: [`BgLoader`] / [`AsyncBgLoader`] and their schedule;
//! - `reader.rs`: [`read`] and [`BgReader`], the mirror of a writer's value;
//! - `registry.rs`: this process's jobs and writers, and [`shutdown`].

mod loader;
mod reader;
mod registry;

pub use loader::{AsyncBgLoader, BgLoader};
pub use reader::{BgReader, ReadBuilder, WritersStore, read};
pub use registry::{shutdown, shutdown_async};

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use ac_core::clock::check_seconds;
use ac_core::scheduler::Every;
use ac_core::{
    CachePolicy, Error, IntoSeconds, IntoStore, KeySpec, KeyTemplate, Loader, PolicyConfig,
    StoreFor,
};
use ac_store_mem::InMemCache;

use crate::options::{DefaultStore, Options, StoreChoice, option_setters, store_doc};
use crate::outcome::{Fallible, Plain};
use loader::{FirstLoad, Parts, refresh_task};
use registry::{jobs, lock, register_job, register_job_in, register_writer};

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

/// The store a loader's policy reads and writes: `store` itself if it is in
/// process (an [`InMemCache`] cannot fail or lose a value), else `store`
/// behind a private in-memory copy. Calls then read that copy first, so a
/// value the function produced is served for its ttl even if `store`
/// refused it or lost it (an outage, a restart, an eviction), without
/// waiting on `store`; the copy expires with the entry, so nothing is
/// served longer than over the store alone.
fn with_own_copy<T, S: StoreFor<T> + ?Sized>(
    store: &Arc<S>,
    clock: &Arc<dyn ac_core::Clock>,
) -> Result<Arc<S::Mirror>, Error> {
    let make_copy = || {
        let copy = InMemCache::builder()
            .shared_clock(Arc::clone(clock))
            .build()?;
        Ok(Arc::new(copy) as Arc<dyn ac_core::Store>)
    };
    S::mirror(Arc::clone(store), make_copy, Arc::clone(clock))
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
        store: DefaultStore,
        options: Options::default(),
        on_error: None,
        run_immediately: true,
        writer: false,
    }
}

/// Configures a `bg` loader (or, from [`write`], a writer); finish with
/// `wrap`, `try_wrap`, `wrap_async` or `try_wrap_async`.
///
/// `St` is the store given to `.store(..)` ([`DefaultStore`] until then).
#[must_use = "a builder does nothing until wrapped around a function"]
pub struct BgBuilder<St = DefaultStore> {
    interval: f64,
    key: Option<String>,
    ttl: Option<f64>,
    store: St,
    options: Options,
    on_error: Option<OnError>,
    run_immediately: bool,
    writer: bool,
}

impl<St> fmt::Debug for BgBuilder<St> {
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

impl<St> BgBuilder<St> {
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

    #[doc = store_doc!()]
    pub fn store<S: ?Sized>(self, store: impl IntoStore<S>) -> BgBuilder<Arc<S>> {
        BgBuilder {
            interval: self.interval,
            key: self.key,
            ttl: self.ttl,
            store: store.into_store(),
            options: self.options,
            on_error: self.on_error,
            run_immediately: self.run_immediately,
            writer: self.writer,
        }
    }

    option_setters!(metrics, clock, scheduler, name);

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
    pub fn wrap<T, F>(self, f: F) -> Result<BgLoader<T, Plain, St::Store>, Error>
    where
        St: StoreChoice,
        St::Store: StoreFor<T>,
        T: Clone + Send + Sync + 'static,
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
    pub fn try_wrap<T, E, F>(self, f: F) -> Result<BgLoader<T, Fallible<E>, St::Store>, Error>
    where
        St: StoreChoice,
        St::Store: StoreFor<T>,
        T: Clone + Send + Sync + 'static,
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
    pub fn wrap_async<T, F, Fut>(self, f: F) -> Result<AsyncBgLoader<T, Plain, St::Store>, Error>
    where
        St: StoreChoice,
        St::Store: StoreFor<T>,
        T: Clone + Send + Sync + 'static,
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
    pub fn try_wrap_async<T, E, F, Fut>(
        self,
        f: F,
    ) -> Result<AsyncBgLoader<T, Fallible<E>, St::Store>, Error>
    where
        St: StoreChoice,
        St::Store: StoreFor<T>,
        T: Clone + Send + Sync + 'static,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let load = move |()| Box::pin(f()) as ac_core::BoxFuture<'static, _>;
        self.build(Loader::Async(Arc::new(load)))
            .map(AsyncBgLoader::from)
    }

    fn build<T, E>(self, loader: Loader<(), T, E>) -> Result<Parts<T, E, St::Store>, Error>
    where
        St: StoreChoice,
        St::Store: StoreFor<T>,
        T: Clone + Send + Sync + 'static,
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
        let store = self.store.into_store(&clock)?;
        let scheduler = options.take_scheduler(is_async);
        // A writer registers itself and its job under the job-list lock, so
        // a concurrent shutdown sees both or neither.
        let mut job_list = self.writer.then(|| lock(jobs()));
        let registration = if self.writer {
            Some(register_writer(&key, St::dyn_store(&store), interval, ttl)?)
        } else {
            None
        };
        let policy = Arc::new(CachePolicy::new(
            PolicyConfig {
                name: options.name.take().unwrap_or_else(|| key.clone()),
                ttl,
                stale: 0.0,
                key: KeySpec::Static(static_key.into()),
                store: with_own_copy::<T, St::Store>(&store, &clock)?,
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
