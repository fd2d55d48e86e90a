//! `bg::read`: a private in-memory mirror of a writer's value.

use std::fmt;
use std::sync::{Arc, Mutex};

use ac_core::clock::{ClockReader, check_seconds, ttl_duration};
use ac_core::scheduler::{Every, JobHandle, Task};
use ac_core::{
    Decoder, Entry, Error, IntoDynStore, IntoSeconds, IntoStore, MetricsCollector, Store, StoreFor,
};
use ac_store_mem::InMemCache;

use super::registry::{lock, register_job, writers};
use super::{BgError, OnError, report};
use crate::options::{Options, option_setters, store_doc};

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
///
/// Without `.store(..)`, the reader reads the store of this process's
/// `bg::write` writer of `key`, type-erased, so `T` must be serde; with a
/// store of its own type, `T` needs what that store needs (an `InMemCache`
/// holds any `Clone` type).
pub fn read<T: Clone + Send + Sync + 'static>(key: impl Into<String>) -> ReadBuilder<T> {
    ReadBuilder {
        store: WritersStore,
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

/// The store of a [`ReadBuilder`] before `.store(..)` is called: the one
/// this process's `bg::write` writer of the key registered.
#[derive(Debug, Clone, Copy, Default)]
pub struct WritersStore;

/// Configures a [`BgReader`]; finish with `build`.
///
/// `St` is the store given to `.store(..)` ([`WritersStore`] until then).
#[must_use = "a builder does nothing until built"]
pub struct ReadBuilder<T, St = WritersStore> {
    key: String,
    store: St,
    interval: Option<f64>,
    ttl: Option<f64>,
    max_stale: Option<f64>,
    options: Options,
    on_error: Option<OnError>,
    run_immediately: bool,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T, St> fmt::Debug for ReadBuilder<T, St> {
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

impl<T: Clone + Send + Sync + 'static, St> ReadBuilder<T, St> {
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

    #[doc = store_doc!()]
    pub fn store<S>(self, store: impl IntoStore<S>) -> ReadBuilder<T, Arc<S>>
    where
        S: StoreFor<T> + ?Sized,
    {
        ReadBuilder {
            key: self.key,
            store: store.into_store(),
            interval: self.interval,
            ttl: self.ttl,
            max_stale: self.max_stale,
            options: self.options,
            on_error: self.on_error,
            run_immediately: self.run_immediately,
            value: std::marker::PhantomData,
        }
    }

    option_setters!(metrics, clock, scheduler);

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

    /// The writer's entry for this key, if one is registered.
    fn writer(&self) -> Option<(Arc<dyn Store>, f64, f64)> {
        let writers = lock(writers());
        writers
            .get(&self.key)
            .map(|w| (Arc::clone(&w.store), w.interval, w.ttl))
    }
}

impl<T: crate::SerdeValue> ReadBuilder<T, WritersStore> {
    /// Builds the reader of this process's writer's store. With
    /// `run_immediately`, syncs once first (for a remote store, this waits
    /// for one read).
    ///
    /// # Errors
    /// No writer for the key in this process; a negative or NaN interval,
    /// ttl or max_stale.
    pub fn build(self) -> Result<BgReader<T>, Error> {
        let writer = self.writer();
        let Some((store, _, _)) = &writer else {
            return Err(Error::invalid_config(format!(
                "bg::read({:?}) has no store: pass .store(..), or register a \
                 bg::write for this key in this process first",
                self.key
            )));
        };
        let store = Arc::clone(store);
        self.build_over(store, <dyn Store as StoreFor<T>>::decoder(), writer)
    }
}

impl<T, S> ReadBuilder<T, Arc<S>>
where
    T: Clone + Send + Sync + 'static,
    S: StoreFor<T> + ?Sized,
    Arc<S>: IntoDynStore,
{
    /// Builds the reader. With `run_immediately`, syncs once first (for a
    /// remote store, this waits for one read).
    ///
    /// # Errors
    /// No interval given and none to inherit from a writer of the key in
    /// this process; a negative or NaN interval, ttl or max_stale.
    pub fn build(self) -> Result<BgReader<T>, Error> {
        let writer = self.writer();
        let store = Arc::clone(&self.store).into_dyn_store();
        self.build_over(store, S::decoder(), writer)
    }
}

impl<T: Clone + Send + Sync + 'static, St> ReadBuilder<T, St> {
    fn build_over(
        self,
        store: Arc<dyn Store>,
        decoder: &'static dyn Decoder,
        writer: Option<(Arc<dyn Store>, f64, f64)>,
    ) -> Result<BgReader<T>, Error> {
        let key = self.key;
        let mut options = self.options;
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
        let sync = Arc::new(MirrorSync::<T> {
            key: key.clone(),
            ttl,
            max_stale,
            source: store,
            mirror: mirror.clone(),
            clock: ClockReader::new(Arc::clone(&clock)),
            last: Mutex::new(None),
            metrics: options.metrics.clone(),
            on_error: self.on_error,
            decoder,
            value: std::marker::PhantomData,
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
    decoder: &'static dyn Decoder,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T: Clone + Send + Sync + 'static> MirrorSync<T> {
    async fn run(&self) {
        let started = std::time::Instant::now();
        let result = self.source.get(&self.key, self.decoder).await;
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
struct SettleOnDrop<T: Clone + Send + Sync + 'static>(Arc<MirrorSync<T>>);

impl<T: Clone + Send + Sync + 'static> Drop for SettleOnDrop<T> {
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

impl<T: Clone + Send + Sync + 'static> BgReader<T> {
    /// The mirrored value, if one has been synced and is still served (see
    /// [`read`]: its ttl while syncs succeed, until a sync succeeds while
    /// they fail, up to `max_stale`); `None` before the first value and
    /// after that.
    #[inline]
    pub fn get(&self) -> Option<T> {
        let mut value = None;
        StoreFor::<T>::lookup(&self.mirror, &self.key, |entry| {
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
