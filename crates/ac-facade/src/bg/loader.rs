//! `bg` loaders: a value refreshed on a schedule.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ac_core::scheduler::{JobHandle, Task};
use ac_core::{CachePolicy, RefreshError, StoreFor};
use ac_store_mem::InMemCache;
use event_listener::Event;

use super::registry::Registration;
use super::{BgError, OnError, report};
use crate::outcome::{Outcome, Plain};

/// Whether the first scheduled load has run; callers wait for it once.
#[derive(Default)]
pub(super) struct FirstLoad {
    done: AtomicBool,
    event: Event,
}

impl FirstLoad {
    pub(super) fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    #[inline]
    pub(super) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    pub(super) async fn wait(&self) {
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

/// The parts both kinds of loaders are made of.
pub(super) struct Parts<T, E, S: StoreFor<T> + ?Sized> {
    pub(super) policy: Arc<CachePolicy<(), T, E, S::Mirror>>,
    /// The store the value is published to (the policy's may wrap it).
    pub(super) store: Arc<S>,
    pub(super) first: Arc<FirstLoad>,
    pub(super) job: Option<Arc<JobHandle>>,
    pub(super) registration: Option<Registration>,
}

/// The periodic reload, reporting failures and marking the first load.
pub(super) fn refresh_task<T, E, S>(
    policy: &Arc<CachePolicy<(), T, E, S>>,
    first: &Arc<FirstLoad>,
    key: String,
    on_error: Option<OnError>,
    is_async: bool,
) -> Task
where
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
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
///
/// `S` is the type of the store given to `.store(..)` ([`InMemCache`] by
/// default).
pub struct BgLoader<T, O: Outcome = Plain, S: StoreFor<T> + ?Sized = InMemCache> {
    policy: Arc<CachePolicy<(), T, O::Error, S::Mirror>>,
    store: Arc<S>,
    first: Arc<FirstLoad>,
    job: Option<Arc<JobHandle>>,
    _registration: Option<Registration>,
}

/// A `bg` loader of an async function. `get().await` returns the loaded
/// value. Dropping the loader stops its schedule.
///
/// `S` is the type of the store given to `.store(..)` ([`InMemCache`] by
/// default).
pub struct AsyncBgLoader<T, O: Outcome = Plain, S: StoreFor<T> + ?Sized = InMemCache> {
    policy: Arc<CachePolicy<(), T, O::Error, S::Mirror>>,
    store: Arc<S>,
    first: Arc<FirstLoad>,
    job: Option<Arc<JobHandle>>,
    _registration: Option<Registration>,
}

macro_rules! loader_common {
    ($ty:ident) => {
        impl<T, O: Outcome, S: StoreFor<T> + ?Sized> From<Parts<T, O::Error, S>> for $ty<T, O, S> {
            fn from(parts: Parts<T, O::Error, S>) -> Self {
                Self {
                    policy: parts.policy,
                    store: parts.store,
                    first: parts.first,
                    job: parts.job,
                    _registration: parts.registration,
                }
            }
        }

        impl<T, O: Outcome, S: StoreFor<T> + ?Sized> fmt::Debug for $ty<T, O, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("policy", &self.policy)
                    .field("job", &self.job)
                    .finish_non_exhaustive()
            }
        }

        impl<T, O: Outcome, S: StoreFor<T> + ?Sized> Drop for $ty<T, O, S> {
            fn drop(&mut self) {
                if let Some(job) = &self.job {
                    job.stop();
                }
            }
        }

        impl<T: Clone + Send + Sync + 'static, O: Outcome, S: StoreFor<T> + ?Sized> $ty<T, O, S> {
            /// The store the value is written to: the one given to
            /// `.store(..)`, or the loader's private [`InMemCache`].
            pub fn store(&self) -> &Arc<S> {
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

impl<T: Clone + Send + Sync + 'static, O: Outcome, S: StoreFor<T> + ?Sized> BgLoader<T, O, S> {
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

impl<T: Clone + Send + Sync + 'static, O: Outcome, S: StoreFor<T> + ?Sized> AsyncBgLoader<T, O, S> {
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
