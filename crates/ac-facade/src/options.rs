//! What every builder of this crate configures the same way, and its
//! defaults: the store, metrics, clock, scheduler and name.

use std::fmt;
use std::sync::Arc;

use ac_core::{Clock, Error, IntoStore, MetricsCollector, NullMetrics, Scheduler, Store};
use ac_sched::{CoarseClock, ThreadScheduler};
use ac_store_mem::InMemCache;

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) metrics: Option<Arc<dyn MetricsCollector>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) scheduler: Option<Arc<dyn Scheduler>>,
    pub(crate) name: Option<String>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("store", &self.store)
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

    /// The store, by default a new [`InMemCache`] on `clock`.
    pub(crate) fn take_store(&mut self, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Store>, Error> {
        match self.store.take() {
            Some(store) => Ok(store),
            None => Ok(InMemCache::builder()
                .shared_clock(Arc::clone(clock))
                .build()?
                .into_store()),
        }
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
    (@one store) => {
        /// The store (default: a new [`InMemCache`](crate::InMemCache)). One
        /// store may serve many functions, whatever their value types.
        pub fn store(mut self, store: impl ac_core::IntoStore) -> Self {
            self.options.store = Some(store.into_store());
            self
        }
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
