//! `cache(ttl)`: TTL and stale-while-revalidate for sync and async functions.

use std::any::type_name;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ac_core::{
    CachePolicy, CallAsync, Error, IntoSeconds, IntoStore, KeySource, Loader, PolicyConfig,
    StoreFor,
};

use ac_store_mem::InMemCache;

use crate::options::{DefaultStore, Options, StoreChoice, option_setters, store_doc};

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
        store: DefaultStore,
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
///
/// `K` is the key given to `.key(..)`; `St` the store given to
/// `.store(..)` ([`DefaultStore`] until then).
#[must_use = "a builder does nothing until wrapped around a function"]
pub struct CacheBuilder<K = NoKey, St = DefaultStore> {
    ttl: f64,
    stale: f64,
    key: K,
    store: St,
    options: Options,
}

impl<K, St> fmt::Debug for CacheBuilder<K, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("ttl", &self.ttl)
            .field("stale", &self.stale)
            .field("key", &type_name::<K>())
            .field("store", &type_name::<St>())
            .field("options", &self.options)
            .finish()
    }
}

impl<K, St> CacheBuilder<K, St> {
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
    pub fn key<K2>(self, key: K2) -> CacheBuilder<K2, St> {
        CacheBuilder {
            ttl: self.ttl,
            stale: self.stale,
            key,
            store: self.store,
            options: self.options,
        }
    }

    #[doc = store_doc!()]
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use advanced_caching::{InMemCache, cache};
    ///
    /// // Not serde: fine in memory.
    /// #[derive(Clone)]
    /// struct Pool(Arc<Mutex<Vec<u32>>>);
    ///
    /// let store = InMemCache::new();
    /// let pool = cache(60)
    ///     .key("pool")
    ///     .store(store.clone())
    ///     .wrap(|()| Pool(Arc::new(Mutex::new(vec![1, 2]))))?;
    /// assert_eq!(pool.call(()).0.lock().unwrap().len(), 2);
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), advanced_caching::Error>(())
    /// ```
    pub fn store<S: ?Sized>(self, store: impl IntoStore<S>) -> CacheBuilder<K, Arc<S>> {
        CacheBuilder {
            ttl: self.ttl,
            stale: self.stale,
            key: self.key,
            store: store.into_store(),
            options: self.options,
        }
    }

    /// Serves a stale entry for `secs` after `ttl` while one background
    /// refresh runs (stale-while-revalidate). `0` (the default) disables it.
    pub fn stale(mut self, secs: impl IntoSeconds) -> Self {
        self.stale = secs.into_seconds();
        self
    }

    option_setters!(metrics, clock, scheduler, name);

    /// Caches a sync function of one argument (use a tuple for several,
    /// `()` for none). A stale refresh runs on the thread scheduler, never
    /// on the caller's thread.
    ///
    /// # Errors
    /// A negative or NaN `ttl`/`stale`, or a key template that is malformed
    /// or has a placeholder beyond the arguments.
    pub fn wrap<A, T, F>(self, f: F) -> Result<Cached<A, T, Plain, St::Store>, Error>
    where
        K: KeySource<A>,
        St: StoreChoice,
        St::Store: StoreFor<T>,
        A: Send + 'static,
        T: Clone + Send + Sync + 'static,
        F: Fn(A) -> T + Send + Sync + 'static,
    {
        let name = function_name::<F>();
        let policy = self.policy(name, Loader::Sync(Arc::new(move |args| Ok(f(args)))))?;
        Ok(Cached::from(policy))
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
    pub fn try_wrap<A, T, E, F>(self, f: F) -> Result<Cached<A, T, Fallible<E>, St::Store>, Error>
    where
        K: KeySource<A>,
        St: StoreChoice,
        St::Store: StoreFor<T>,
        A: Send + 'static,
        T: Clone + Send + Sync + 'static,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn(A) -> Result<T, E> + Send + Sync + 'static,
    {
        let name = function_name::<F>();
        let policy = self.policy(name, Loader::Sync(Arc::new(f)))?;
        Ok(Cached::from(policy))
    }

    /// Caches an async function of one argument (a tuple for several).
    ///
    /// # Errors
    /// As [`CacheBuilder::wrap`].
    pub fn wrap_async<A, T, F, Fut>(
        self,
        f: F,
    ) -> Result<AsyncCached<A, T, Plain, St::Store>, Error>
    where
        K: KeySource<A>,
        St: StoreChoice,
        St::Store: StoreFor<T>,
        A: Send + 'static,
        T: Clone + Send + Sync + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let name = function_name::<F>();
        let load = move |args| {
            let fut = f(args);
            Box::pin(async move { Ok(fut.await) }) as ac_core::BoxFuture<'static, _>
        };
        let policy = self.policy(name, Loader::Async(Arc::new(load)))?;
        Ok(AsyncCached::from(policy))
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
    ) -> Result<AsyncCached<A, T, Fallible<E>, St::Store>, Error>
    where
        K: KeySource<A>,
        St: StoreChoice,
        St::Store: StoreFor<T>,
        A: Send + 'static,
        T: Clone + Send + Sync + 'static,
        E: fmt::Debug + Clone + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let name = function_name::<F>();
        let load = move |args| Box::pin(f(args)) as ac_core::BoxFuture<'static, _>;
        let policy = self.policy(name, Loader::Async(Arc::new(load)))?;
        Ok(AsyncCached::from(policy))
    }

    fn policy<A, T, E>(
        self,
        default_name: String,
        loader: Loader<A, T, E>,
    ) -> Result<SharedPolicy<A, T, E, St::Store>, Error>
    where
        K: KeySource<A>,
        St: StoreChoice,
        St::Store: StoreFor<T>,
        A: Send + 'static,
        T: Clone + Send + Sync + 'static,
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
            store: self.store.into_store(&clock)?,
            clock,
            metrics: options.take_metrics(),
            scheduler: options.take_scheduler(matches!(loader, Loader::Async(_))),
        };
        CachePolicy::new(config, loader).map(Arc::new)
    }
}

/// A policy shared by a cached function's clones.
type SharedPolicy<A, T, E, S> = Arc<CachePolicy<A, T, E, S>>;

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
/// `S` is the store's type ([`InMemCache`] by default). Cloning is cheap and
/// shares the cache.
pub struct Cached<A, T, O: Outcome = Plain, S: ?Sized = InMemCache> {
    policy: Arc<CachePolicy<A, T, O::Error, S>>,
}

/// A cached async function. `call(..).await` returns `T` for [`Plain`]
/// functions (from `wrap_async`) and `Result<T, E>` for [`Fallible`] ones.
/// `S` is the store's type ([`InMemCache`] by default). Cloning is cheap and
/// shares the cache.
pub struct AsyncCached<A, T, O: Outcome = Plain, S: ?Sized = InMemCache> {
    policy: Arc<CachePolicy<A, T, O::Error, S>>,
}

/// The future of [`AsyncCached::call`].
#[must_use = "futures do nothing unless polled"]
pub struct Call<'a, A, T, O: Outcome, S: ?Sized> {
    call: CallAsync<'a, A, T, O::Error, S>,
    outcome: PhantomData<O>,
}

// Nothing is structurally pinned (see `CallAsync`).
impl<A, T, O: Outcome, S: ?Sized> Unpin for Call<'_, A, T, O, S> {}

impl<A, T, O: Outcome, S: ?Sized> fmt::Debug for Call<'_, A, T, O, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.call.fmt(f)
    }
}

impl<A, T, O, S> Future for Call<'_, A, T, O, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    O: Outcome,
    S: StoreFor<T> + ?Sized,
{
    type Output = O::Output<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.call).poll(cx).map(O::output)
    }
}

macro_rules! common_methods {
    ($ty:ident) => {
        impl<A, T, O: Outcome, S: ?Sized> Clone for $ty<A, T, O, S> {
            fn clone(&self) -> Self {
                Self {
                    policy: Arc::clone(&self.policy),
                }
            }
        }

        impl<A, T, O: Outcome, S: ?Sized> From<Arc<CachePolicy<A, T, O::Error, S>>>
            for $ty<A, T, O, S>
        {
            fn from(policy: Arc<CachePolicy<A, T, O::Error, S>>) -> Self {
                Self { policy }
            }
        }

        impl<A, T, O: Outcome, S: fmt::Debug + ?Sized> fmt::Debug for $ty<A, T, O, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty)).field(&self.policy).finish()
            }
        }

        impl<A, T, O, S> $ty<A, T, O, S>
        where
            A: Send + 'static,
            T: Clone + Send + Sync + 'static,
            O: Outcome,
            S: StoreFor<T> + ?Sized,
        {
            /// The store this function's entries live in.
            pub fn store(&self) -> &Arc<S> {
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

impl<A, T, O, S> Cached<A, T, O, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    O: Outcome,
    S: StoreFor<T> + ?Sized,
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
        O::output(self.policy.call_blocking(args))
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

impl<A, T, O, S> AsyncCached<A, T, O, S>
where
    A: Send + 'static,
    T: Clone + Send + Sync + 'static,
    O: Outcome,
    S: StoreFor<T> + ?Sized,
{
    /// Calls the function through the cache: a fresh hit returns at once; a
    /// stale hit returns at once and refreshes in the background; a miss
    /// runs the function once however many tasks ask concurrently.
    ///
    /// Store errors never fail the call: they are logged and counted, and
    /// the function's value is returned.
    #[inline]
    pub fn call(&self, args: A) -> Call<'_, A, T, O, S> {
        Call {
            call: self.policy.call_async(args),
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
