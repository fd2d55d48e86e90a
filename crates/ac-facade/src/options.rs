//! What every builder of this crate configures the same way, and its
//! defaults: the store, metrics, clock, scheduler and name.

use std::fmt;
use std::sync::Arc;

use ac_core::{Clock, Error, IntoDynStore, MetricsCollector, NullMetrics, Scheduler, Store};
use ac_sched::{CoarseClock, ThreadScheduler};
use ac_store_mem::InMemCache;

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) metrics: Option<Arc<dyn MetricsCollector>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) scheduler: Option<Arc<dyn Scheduler>>,
    pub(crate) name: Option<String>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("metrics", &self.metrics)
            .field("clock", &self.clock)
            .field("scheduler", &self.scheduler)
            .field("name", &self.name)
            .finish()
    }
}

impl Options {
    /// The clock, by default the coarse system clock.
    pub(crate) fn take_clock(&mut self) -> Arc<dyn Clock> {
        self.clock
            .take()
            .unwrap_or_else(|| Arc::new(CoarseClock::new()))
    }

    /// The metrics collector, by default [`NullMetrics`].
    pub(crate) fn take_metrics(&mut self) -> Arc<dyn MetricsCollector> {
        self.metrics.take().unwrap_or_else(|| Arc::new(NullMetrics))
    }

    /// The scheduler, by default [`default_scheduler`].
    pub(crate) fn take_scheduler(&mut self, is_async: bool) -> Arc<dyn Scheduler> {
        self.scheduler
            .take()
            .unwrap_or_else(|| default_scheduler(is_async))
    }
}

/// Sync work on the thread pool; async work on the first enabled runtime
/// of tokio, async-std and smol, else on the thread pool.
pub(crate) fn default_scheduler(is_async: bool) -> Arc<dyn Scheduler> {
    #[cfg(feature = "tokio")]
    if is_async {
        return Arc::new(ac_sched::TokioScheduler::new());
    }
    #[cfg(all(feature = "async-std", not(feature = "tokio")))]
    if is_async {
        return Arc::new(ac_sched::AsyncStdScheduler::new());
    }
    #[cfg(all(feature = "smol", not(any(feature = "tokio", feature = "async-std"))))]
    if is_async {
        return Arc::new(ac_sched::SmolScheduler::new());
    }
    let _ = is_async;
    Arc::new(ThreadScheduler::global().clone())
}

/// The setters of [`Options`], for a builder with an `options` field.
macro_rules! option_setters {
    ($($setter:ident),* $(,)?) => {
        $(option_setters!(@one $setter);)*
    };
    (@one metrics) => {
        /// Where hits, misses, refreshes and errors are reported (default:
        /// [`NullMetrics`](crate::NullMetrics), which costs nothing).
        pub fn metrics(mut self, metrics: impl ac_core::MetricsCollector) -> Self {
            self.options.metrics = Some(std::sync::Arc::new(metrics));
            self
        }
    };
    (@one clock) => {
        /// The clock for timestamps and schedules (default:
        /// [`CoarseClock`](crate::CoarseClock)); also the default store's.
        /// Tests pass a [`ManualClock`](crate::ManualClock) and move it.
        pub fn clock(mut self, clock: impl ac_core::Clock) -> Self {
            self.options.clock = Some(std::sync::Arc::new(clock));
            self
        }
    };
    (@one scheduler) => {
        /// Where background work runs (default: std threads for sync
        /// functions, the enabled async runtime for async ones).
        pub fn scheduler(mut self, scheduler: impl ac_core::Scheduler) -> Self {
            self.options.scheduler = Some(std::sync::Arc::new(scheduler));
            self
        }
    };
    (@one name) => {
        /// The name in metrics and logs.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.options.name = Some(name.into());
            self
        }
    };
}
pub(crate) use option_setters;

/// The store of a builder before `.store(..)` is called: a new
/// [`InMemCache`] on the builder's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultStore;

/// What a builder's store is: [`DefaultStore`], or the store given to
/// `.store(..)` (as an `Arc` of its own type, or an `Arc<dyn Store>`). Its
/// type becomes the cached function's store type, which decides what the
/// function's values need (see [`StoreFor`](crate::StoreFor)).
pub trait StoreChoice {
    /// The store's type.
    type Store: Store + ?Sized;

    /// The store, built on `clock` if the builder makes it.
    ///
    /// # Errors
    /// If the default store cannot be built.
    fn into_store(self, clock: &Arc<dyn Clock>) -> Result<Arc<Self::Store>, Error>;

    /// The store, type-erased (for the registry of `bg::write` writers).
    fn dyn_store(store: &Arc<Self::Store>) -> Arc<dyn Store>;
}

impl StoreChoice for DefaultStore {
    type Store = InMemCache;

    fn into_store(self, clock: &Arc<dyn Clock>) -> Result<Arc<InMemCache>, Error> {
        InMemCache::builder()
            .shared_clock(Arc::clone(clock))
            .build()
            .map(Arc::new)
    }

    fn dyn_store(store: &Arc<InMemCache>) -> Arc<dyn Store> {
        Arc::clone(store) as _
    }
}

impl<S: Store + ?Sized> StoreChoice for Arc<S>
where
    Arc<S>: IntoDynStore,
{
    type Store = S;

    fn into_store(self, _clock: &Arc<dyn Clock>) -> Result<Arc<S>, Error> {
        Ok(self)
    }

    fn dyn_store(store: &Arc<S>) -> Arc<dyn Store> {
        Arc::clone(store).into_dyn_store()
    }
}

/// The doc of every builder's `.store(..)`.
macro_rules! store_doc {
    () => {
        "The store (default: a new [`InMemCache`](crate::InMemCache)), by value, \
         in an `Arc`, or as an `Arc<dyn Store>` chosen at run time. One store may \
         serve many functions, whatever their value types.\n\n\
         Its type decides what the values need: an `InMemCache` keeps them as they \
         are (`Clone + Send + Sync + 'static`); a byte store (Redis, files, a \
         `ChainCache`, an `Arc<dyn Store>`) needs them serde, and refuses \
         others at compile time."
    };
}
pub(crate) use store_doc;
