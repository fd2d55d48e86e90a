//! The entry points: [`CachePolicy::call_blocking`] and
//! [`CachePolicy::call_async`], and the synchronous first step both take.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::lookup::{Lookup, Purpose};
use super::report::sample_latency;
use super::single_flight::owned_key;
use super::swr::Version;
use super::{CachePolicy, Loader};
use crate::{BoxFuture, KeySpec, StoreFor};

/// What a call does after its lookup. The key is rendered once; it is
/// owned only by the calls that go on with it.
pub(super) enum Next<T> {
    /// A hit: return the value.
    Return(T),
    /// A stale hit whose refresh this caller claimed: return the value and
    /// refresh the key in the background.
    ReturnAndRefresh(T, String, Version),
    /// Nothing usable in the store's in-process view: run the function.
    Load(String),
    /// The store answers only over I/O: read it, then hit or load.
    Fetch(String),
}

impl<A, T, E, S> CachePolicy<A, T, E, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
{
    /// Calls a sync loader through the cache. Blocks only on a miss.
    ///
    /// # Panics
    /// If the loader is async (the facade never builds that), or if the
    /// cached function panics.
    #[inline]
    pub fn call_blocking(self: &Arc<Self>, args: A) -> Result<T, E> {
        let Loader::Sync(load) = &self.loader else {
            panic!("call_blocking on an async loader; use call_async");
        };
        if self.ttl == 0.0 {
            return load(args);
        }
        // Mirrors CallAsync::poll on purpose: a shared helper that carried
        // the arguments through one more enum measured slower a hit.
        match self.begin(&args) {
            Next::Return(value) => Ok(value),
            Next::ReturnAndRefresh(value, key, version) => {
                self.spawn_refresh(key, args, version);
                Ok(value)
            }
            Next::Load(key) => self.load_blocking(key, args),
            Next::Fetch(key) => self.fetch_blocking(key, args),
        }
    }

    /// Calls the loader (sync or async) through the cache. The returned
    /// future does nothing until polled; a hit completes on the first poll
    /// without allocating.
    #[inline]
    pub fn call_async(self: &Arc<Self>, args: A) -> CallAsync<'_, A, T, E, S> {
        CallAsync {
            policy: self,
            args: Some(args),
            slow: None,
        }
    }

    /// The synchronous first step of every call: render the key and look it
    /// up in the store's in-process view. With metrics on, one lookup in
    /// [`LATENCY_SAMPLE`](super::LATENCY_SAMPLE) per thread is timed
    /// (counts stay exact).
    #[inline]
    fn begin(&self, args: &A) -> Next<T> {
        if self.metrics_on && sample_latency() {
            let started = Instant::now();
            let next = self.render_and_look_up(args);
            self.metrics
                .record_latency(&self.name, "get", started.elapsed());
            return next;
        }
        self.render_and_look_up(args)
    }

    #[inline]
    fn render_and_look_up(&self, args: &A) -> Next<T> {
        match &self.key {
            // The static key first, inline: `with_key`'s other arms are large
            // enough that the compiler would otherwise call out for every hit.
            KeySpec::Static(key) => self.next_for(key),
            _ => self.key.with_key(args, |key| self.next_for(key)),
        }
    }

    #[inline]
    fn next_for(&self, key: &str) -> Next<T> {
        match self.lookup_local(key, self.clock.now(), Purpose::Call) {
            Lookup::Fresh(value) | Lookup::Stale(value, None) => {
                self.hit(key);
                Next::Return(value)
            }
            Lookup::Stale(value, Some(version)) => {
                self.hit(key);
                Next::ReturnAndRefresh(value, key.to_owned(), version)
            }
            Lookup::Miss => Next::Load(owned_key(key)),
            Lookup::NotLocal => Next::Fetch(owned_key(key)),
        }
    }
}

/// The future of [`CachePolicy::call_async`].
#[must_use = "futures do nothing unless polled"]
pub struct CallAsync<'a, A, T, E, S: ?Sized> {
    policy: &'a Arc<CachePolicy<A, T, E, S>>,
    /// The arguments until the first poll takes them.
    args: Option<A>,
    /// The slow path (a fetch or a load), once started.
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
    T: Clone + Send + Sync + 'static,
    E: fmt::Debug + Clone + Send + 'static,
    S: StoreFor<T> + ?Sized,
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
        let slow: BoxFuture<'_, _> = if policy.ttl == 0.0 {
            Box::pin(policy.run_loader(args))
        } else {
            match policy.begin(&args) {
                Next::Return(value) => return Poll::Ready(Ok(value)),
                Next::ReturnAndRefresh(value, key, version) => {
                    policy.spawn_refresh(key, args, version);
                    return Poll::Ready(Ok(value));
                }
                Next::Load(key) => Box::pin(policy.load_missing(key, args)),
                Next::Fetch(key) => Box::pin(policy.fetch(key, args)),
            }
        };
        this.slow.insert(slow).as_mut().poll(cx)
    }
}
