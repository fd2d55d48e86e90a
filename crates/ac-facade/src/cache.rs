//! `cache(ttl)`: TTL and stale-while-revalidate for sync and async functions.

use std::any::{Any, type_name};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ac_core::{
    CachePolicy, CacheValue, CallAsync, Error, IntoSeconds, KeySource, Loader, PolicyConfig, Store,
};

use ac_store_mem::InMemCache;

use crate::options::{Options, option_setters};

use crate::outcome::{Fallible, Outcome, Plain};

/// Starts a cached function whose entries stay fresh for `ttl` seconds
/// (an integer, a float or a [`Duration`](std::time::Duration)).
/// `ttl == 0` disables caching: the function runs on every call.
///
/// ```
/// use advanced_caching::cache;
///
/// let square = cache(60).key("square:{}").wrap(|n: u64| n * n)?;
/// assert_eq!(square.call(12), 144); // miss: runs the function
/// assert_eq!(square.call(12), 144); // hit
/// # Ok::<(), advanced_caching::Error>(())
/// ```
pub fn cache(ttl: impl IntoSeconds) -> CacheBuilder {
    CacheBuilder {
        ttl: ttl.into_seconds(),
        stale: 0.0,
        key: NoKey,
        options: Options::default(),
    }
}

/// The key of a [`CacheBuilder`] before `.key(..)` is called: wrapping is
/// not possible until a key is given.
#[derive(Debug, Clone, Copy)]
pub struct NoKey;

/// Configures a cached function; finish with `wrap`, `try_wrap`,
/// `wrap_async` or `try_wrap_async`, which validate everything and return
/// an [`Error`] naming the problem.
#[must_use = "a builder does nothing until wrapped around a function"]
pub struct CacheBuilder<K = NoKey> {
    ttl: f64,
    stale: f64,
    key: K,
    options: Options,
}

impl<K> fmt::Debug for CacheBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("ttl", &self.ttl)
            .field("stale", &self.stale)
            .field("key", &type_name::<K>())
            .field("options", &self.options)
            .finish()
    }
}

impl<K> CacheBuilder<K> {
    /// The cache key: a static string (`"flags"`), a template over the
    /// arguments (`"user:{}"`, `"order:{0}:{1}"` for a tuple), or a closure
    /// `|args: &A| -> String`. Templates are checked when wrapping.
    ///
    /// ```
    /// use advanced_caching::cache;
    ///
    /// let by_role = cache(60)
    ///     .key(|(uid, role): &(u64, String)| format!("user:{role}:{uid}"))
    ///     .wrap(|(uid, role): (u64, String)| format!("{role} #{uid}"))?;
    /// assert_eq!(by_role.key(&(7, "admin".into())), "user:admin:7");
    ///
    /// let err = cache(60).key("user:{user_id}").wrap(|id: u64| id).unwrap_err();
    /// assert!(err.to_string().contains("\"user:{user_id}\""));
    /// # Ok::<(), advanced_caching::Error>(())
    /// ```
    pub fn key<K2>(self, key: K2) -> CacheBuilder<K2> {
        CacheBuilder {
            ttl: self.ttl,
            stale: self.stale,
            key,
            options: self.options,
        }
    }

    /// Serves a stale entry for `secs` after `ttl` while one background
    /// refresh runs (stale-while-revalidate). `0` (the default) disables it.
    pub fn stale(mut self, secs: impl IntoSeconds) -> Self {
        self.stale = secs.into_seconds();
        self
    }

    option_setters!(store, metrics, clock, scheduler, name);

    /// Caches a sync function of one argument (use a tuple for several,
    /// `()` for none). A stale refresh runs on the thread scheduler, never
    /// on the caller's thread.
    ///
    /// # Errors
    /// A negative or NaN `ttl`/`stale`, or a key template that is malformed
    /// or has a placeholder beyond the arguments.
    pub fn wrap<A, T, F>(self, f: F) -> Result<Cached<A, T>, Error>
    where
        K: KeySource<A>,
        A: Send + 'static,
        T: CacheValue,
        F: Fn(A) -> T + Send + Sync + 'static,
    {
        let name = function_name::<F>();
        let policy = self.policy(name, Loader::Sync(Arc::new(move |args| Ok(f(args)))))?;
        Ok(Cached::new(policy))
    }

    /// Caches a sync function returning `Result`: `Ok` values are cached,
    /// an `Err` is returned and not cached.
    ///
    /// Concurrent callers missing the same key share one run of the
    /// function, and so its outcome: if it fails, every caller waiting on
    /// it gets a clone of its error, and the function is not run again for
    /// them (a failing backend is asked once, not once per caller). The next
    /// call after that run ends runs the function again. This is why `E`
    /// must be `Clone`; for an error type that is not (`std::io::Error`,
    /// `anyhow::Error`), return it in an `Arc`, as moka's `try_get_with`
    /// does:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use advanced_caching::cache;
    ///
    /// let read = cache(60)
    ///     .key("file:{}")
    ///     .try_wrap(|path: String| std::fs::read_to_string(&path).map_err(Arc::new))?;
    /// let error: Arc<std::io::Error> = read.call("/no/such/file".into()).unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), advanced_caching::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`CacheBuilder::wrap`].
    pub fn try_wrap<A, T, E, F>(self, f: F) -> Result<Cached<A, T, Fallible<E>>, Error>
    where
        K: KeySource<A>,
        A: Send + 'static,
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn(A) -> Result<T, E> + Send + Sync + 'static,
    {
        let name = function_name::<F>();
        let policy = self.policy(name, Loader::Sync(Arc::new(f)))?;
        Ok(Cached::new(policy))
    }

    /// Caches an async function of one argument (a tuple for several).
    ///
    /// # Errors
    /// As [`CacheBuilder::wrap`].
    pub fn wrap_async<A, T, F, Fut>(self, f: F) -> Result<AsyncCached<A, T>, Error>
    where
        K: KeySource<A>,
        A: Send + 'static,
        T: CacheValue,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let name = function_name::<F>();
        let load = move |args| {
            let fut = f(args);
            Box::pin(async move { Ok(fut.await) }) as ac_core::BoxFuture<'static, _>
        };
        let policy = self.policy(name, Loader::Async(Arc::new(load)))?;
        Ok(AsyncCached::new(policy))
    }

    /// Caches an async function returning `Result`: `Ok` values are cached,
    /// an `Err` is returned and not cached. Tasks waiting on one run of the
    /// function share its error, as with [`CacheBuilder::try_wrap`] (hence
    /// `E: Clone`; wrap other errors in an `Arc`).
    ///
    /// # Errors
    /// As [`CacheBuilder::wrap`].
    pub fn try_wrap_async<A, T, E, F, Fut>(
        self,
        f: F,
    ) -> Result<AsyncCached<A, T, Fallible<E>>, Error>
    where
        K: KeySource<A>,
        A: Send + 'static,
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let name = function_name::<F>();
        let load = move |args| Box::pin(f(args)) as ac_core::BoxFuture<'static, _>;
        let policy = self.policy(name, Loader::Async(Arc::new(load)))?;
        Ok(AsyncCached::new(policy))
    }

    fn policy<A, T, E>(
        self,
        default_name: String,
        loader: Loader<A, T, E>,
    ) -> Result<Arc<CachePolicy<A, T, E>>, Error>
    where
        K: KeySource<A>,
        A: Send + 'static,
        T: CacheValue,
        E: fmt::Debug + Clone + Send + 'static,
    {
        let key = self.key.into_key_spec()?;
        let mut options = self.options;
        let clock = options.take_clock();
        let config = PolicyConfig {
            name: options.name.take().unwrap_or(default_name),
            ttl: self.ttl,
            stale: self.stale,
            key,
            store: options.take_store(&clock)?,
            clock,
            metrics: options.take_metrics(),
            scheduler: options.take_scheduler(matches!(loader, Loader::Async(_))),
        };
        CachePolicy::new(config, loader).map(Arc::new)
    }
}

/// `my_crate::module::get_user` → `get_user`; closures are named after the
/// function they are defined in.
fn function_name<F>() -> String {
    let full = type_name::<F>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::")
        .find(|segment| !segment.is_empty() && !segment.starts_with('{'))
        .unwrap_or(path)
        .to_owned()
}

/// A cached sync function. `call` returns `T` for [`Plain`] functions
/// (from `wrap`) and `Result<T, E>` for [`Fallible`] ones (from `try_wrap`).
/// Cloning is cheap and shares the cache.
pub struct Cached<A, T, O: Outcome = Plain> {
    policy: Arc<CachePolicy<A, T, O::Error>>,
    /// The policy's store, if it is an [`InMemCache`]: hits then take a
    /// path without virtual calls.
    in_memory: Option<Arc<InMemCache>>,
}

/// A cached async function. `call(..).await` returns `T` for [`Plain`]
/// functions (from `wrap_async`) and `Result<T, E>` for [`Fallible`] ones.
/// Cloning is cheap and shares the cache.
pub struct AsyncCached<A, T, O: Outcome = Plain> {
    policy: Arc<CachePolicy<A, T, O::Error>>,
    /// As in [`Cached`].
    in_memory: Option<Arc<InMemCache>>,
}

/// The future of [`AsyncCached::call`].
#[must_use = "futures do nothing unless polled"]
pub struct Call<'a, A, T, O: Outcome> {
    inner: CallInner<'a, A, T, O::Error>,
    outcome: PhantomData<O>,
}

enum CallInner<'a, A, T, E> {
    InMemory(CallAsync<'a, A, T, E, InMemCache>),
    Any(CallAsync<'a, A, T, E>),
}

// Nothing is structurally pinned (see `CallAsync`).
impl<A, T, O: Outcome> Unpin for Call<'_, A, T, O> {}

impl<A, T, O: Outcome> fmt::Debug for Call<'_, A, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            CallInner::InMemory(call) => call.fmt(f),
            CallInner::Any(call) => call.fmt(f),
        }
    }
}

impl<A, T, O> Future for Call<'_, A, T, O>
where
    A: Send + 'static,
    T: CacheValue,
    O: Outcome,
{
    type Output = O::Output<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            CallInner::InMemory(call) => Pin::new(call).poll(cx).map(O::output),
            CallInner::Any(call) => Pin::new(call).poll(cx).map(O::output),
        }
    }
}

macro_rules! common_methods {
    ($ty:ident) => {
        impl<A, T, O: Outcome> Clone for $ty<A, T, O> {
            fn clone(&self) -> Self {
                Self {
                    policy: Arc::clone(&self.policy),
                    in_memory: self.in_memory.clone(),
                }
            }
        }

        impl<A, T, O> $ty<A, T, O>
        where
            A: Send + 'static,
            T: CacheValue,
            O: Outcome,
        {
            fn new(policy: Arc<CachePolicy<A, T, O::Error>>) -> Self {
                let store: Arc<dyn Any + Send + Sync> = Arc::clone(policy.store()) as _;
                Self {
                    in_memory: store.downcast::<InMemCache>().ok(),
                    policy,
                }
            }
        }

        impl<A, T, O: Outcome> fmt::Debug for $ty<A, T, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty)).field(&self.policy).finish()
            }
        }

        impl<A, T, O> $ty<A, T, O>
        where
            A: Send + 'static,
            T: CacheValue,
            O: Outcome,
        {
            /// The store this function's entries live in.
            pub fn store(&self) -> &Arc<dyn Store> {
                self.policy.store()
            }

            /// The name used in metrics and logs.
            pub fn name(&self) -> &str {
                self.policy.name()
            }

            /// The cache key for `args`.
            pub fn key(&self, args: &A) -> String {
                self.policy.key(args)
            }
        }
    };
}
common_methods!(Cached);
common_methods!(AsyncCached);

impl<A, T, O> Cached<A, T, O>
where
    A: Send + 'static,
    T: CacheValue,
    O: Outcome,
{
    /// Calls the function through the cache: a fresh hit returns at once; a
    /// stale hit returns at once and refreshes in the background; a miss
    /// runs the function once however many threads ask concurrently.
    ///
    /// Store errors never fail the call: they are logged and counted, and
    /// the function's value is returned.
    ///
    /// A miss blocks the calling thread (it runs a blocking function). With
    /// a store whose I/O needs the caller's async runtime, do not call it
    /// from a current-thread runtime; use an async function and
    /// [`AsyncCached`] there.
    #[inline]
    pub fn call(&self, args: A) -> O::Output<T> {
        O::output(match &self.in_memory {
            Some(store) => self.policy.call_blocking_in(&**store, args),
            None => self.policy.call_blocking(args),
        })
    }

    /// Deletes the entry for `args` (same arguments as `call`).
    ///
    /// # Errors
    /// If the store fails.
    pub fn invalidate(&self, args: A) -> Result<(), Error> {
        ac_core::block_on(self.policy.invalidate(&args))
    }

    /// Clears the whole store (every function sharing it).
    ///
    /// # Errors
    /// If the store fails.
    pub fn clear(&self) -> Result<(), Error> {
        ac_core::block_on(self.policy.clear())
    }
}

impl<A, T, O> AsyncCached<A, T, O>
where
    A: Send + 'static,
    T: CacheValue,
    O: Outcome,
{
    /// Calls the function through the cache: a fresh hit returns at once; a
    /// stale hit returns at once and refreshes in the background; a miss
    /// runs the function once however many tasks ask concurrently.
    ///
    /// Store errors never fail the call: they are logged and counted, and
    /// the function's value is returned.
    #[inline]
    pub fn call(&self, args: A) -> Call<'_, A, T, O> {
        let inner = match &self.in_memory {
            Some(store) => CallInner::InMemory(self.policy.call_async_in(&**store, args)),
            None => CallInner::Any(self.policy.call_async(args)),
        };
        Call {
            inner,
            outcome: PhantomData,
        }
    }

    /// Deletes the entry for `args` (same arguments as `call`).
    ///
    /// # Errors
    /// If the store fails.
    pub async fn invalidate(&self, args: A) -> Result<(), Error> {
        self.policy.invalidate(&args).await
    }

    /// Clears the whole store (every function sharing it).
    ///
    /// # Errors
    /// If the store fails.
    pub async fn clear(&self) -> Result<(), Error> {
        self.policy.clear().await
    }
}
