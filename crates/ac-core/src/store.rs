//! The [`Store`] trait: the one trait a storage backend implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Decoder, Entry, Error, SerdeValue, TypedDecoder, Value};

/// A boxed, `Send` future, as returned by [`Store`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer of [`Store::get_local`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// The key is present and not expired; the visitor was called.
    Found,
    /// The key is absent or expired; the visitor was not called.
    Missing,
    /// This store cannot answer without I/O: use [`Store::get`].
    Unsupported,
}

/// Memory held by a store, for [`MetricsCollector::record_memory_usage`](crate::MetricsCollector::record_memory_usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Approximate bytes held (keys, entries and their inline values).
    pub bytes: u64,
    /// Number of entries held, expired ones not yet reclaimed included.
    pub entries: u64,
}

/// A place to keep [`Entry`]s by string key.
///
/// This is the trait a custom backend implements. A store may be shared by
/// many cached functions that return different types, so it deals in
/// type-erased [`Entry`]s; byte stores encode [`Entry::value`] with their
/// serializer and decode with the [`Decoder`] the caller passes, and declare
/// themselves with an empty `impl ByteStore for MyStore {}` (see
/// [`ByteStore`]), which lets cached functions of any serde type use them.
///
/// `ttl` arguments say how long the store must keep an entry (`None`:
/// until deleted). It covers the whole life of the entry, stale window
/// included, and is independent of [`Entry::fresh_until`]: the caching
/// policy, not the store, decides freshness.
///
/// Errors are returned, never panicked; the caching policies count and log
/// them and carry on without the cache.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs, errors and metrics, e.g. `"inmem"`.
    fn name(&self) -> &'static str;

    /// The entry under `key`, if present and not expired.
    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>>;

    /// Stores `entry` under `key` for `ttl`, replacing any previous entry.
    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Stores `entry` under `key` for `ttl` only if no live entry is there.
    /// Returns whether it stored. Atomic: of concurrent callers, across
    /// processes where the store is shared, exactly one wins.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Removes the entry under `key`, if any.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Removes every entry this store holds, and nothing else (a shared
    /// Redis database or directory keeps other users' keys).
    fn clear(&self) -> BoxFuture<'_, Result<(), Error>>;

    /// Reads many keys. The default reads them one by one.
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>, Error>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key, decoder).await?);
            }
            Ok(out)
        })
    }

    /// Writes many entries with one `ttl`. The default writes them one by one.
    fn set_many<'a>(
        &'a self,
        entries: Vec<(&'a str, Entry)>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for (key, entry) in entries {
                self.set(key, entry, ttl).await?;
            }
            Ok(())
        })
    }

    /// The synchronous fast path of in-process stores: if `key` holds a live
    /// entry, call `visit` with it while it is borrowed and return
    /// [`Local::Found`]. Must not block, allocate or serialize.
    ///
    /// The default returns [`Local::Unsupported`], which sends callers to
    /// [`Store::get`]; only stores that keep entries in this process
    /// override it.
    #[inline]
    fn get_local(&self, key: &str, visit: &mut dyn FnMut(&Entry)) -> Local {
        let _ = (key, visit);
        Local::Unsupported
    }

    /// Memory held, if the store can tell cheaply.
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// A store that keeps values encoded (Redis, files, object stores), or may
/// (a [`ChainCache`](crate::ChainCache), an `Arc<dyn Store>` chosen at run
/// time): the values cached in it must be [`SerdeValue`]s.
///
/// A byte backend declares itself with one empty impl, and every cached
/// function whose value serde can encode can then use it:
///
/// ```
/// # use ac_core::{BoxFuture, Decoder, Entry, Error, Store};
/// # use std::time::Duration;
/// #[derive(Debug)]
/// struct MyStore;
/// # impl Store for MyStore {
/// #     fn name(&self) -> &'static str { "mine" }
/// #     fn get<'a>(&'a self, _: &'a str, _: &'a dyn Decoder) -> BoxFuture<'a, Result<Option<Entry>, Error>> { Box::pin(async { Ok(None) }) }
/// #     fn set<'a>(&'a self, _: &'a str, _: Entry, _: Option<Duration>) -> BoxFuture<'a, Result<(), Error>> { Box::pin(async { Ok(()) }) }
/// #     fn set_if_absent<'a>(&'a self, _: &'a str, _: Entry, _: Option<Duration>) -> BoxFuture<'a, Result<bool, Error>> { Box::pin(async { Ok(true) }) }
/// #     fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), Error>> { Box::pin(async { Ok(()) }) }
/// #     fn clear(&self) -> BoxFuture<'_, Result<(), Error>> { Box::pin(async { Ok(()) }) }
/// # }
/// // impl Store for MyStore { .. }
/// impl ac_core::ByteStore for MyStore {}
/// ```
///
/// An in-process store that keeps values as they are implements
/// [`StoreFor`] itself instead, for every `Clone + Send + Sync` type.
pub trait ByteStore: Store {}

/// A store chosen at run time may be a byte store.
impl ByteStore for dyn Store {}

/// A store that can hold the values of a cached function returning `T`, and
/// how the function's values enter and leave it.
///
/// Implemented for every [`ByteStore`] and every [`SerdeValue`] `T`, and by
/// in-process stores (`InMemCache`) for every `Clone + Send + Sync + 'static`
/// `T`. Cached functions and `bg` loaders are generic over their store type
/// `S: StoreFor<T>`, so a hit on an in-process store is one inlined lookup,
/// and a value type the store cannot hold is a compile error naming the
/// missing bound.
#[diagnostic::on_unimplemented(
    message = "the store `{Self}` cannot hold values of type `{T}`",
    note = "byte stores (Redis, files, object stores, ChainCache, `Arc<dyn Store>`) need `{T}: serde::Serialize + serde::de::DeserializeOwned`; an `InMemCache` needs only `Clone + Send + Sync + 'static`"
)]
pub trait StoreFor<T>: Store {
    /// Whether entries live in this process and are shared by reference:
    /// then a stale refresh needs no lock entry in the store, and a miss
    /// never re-reads the store over I/O.
    const IN_PROCESS: bool = false;

    /// The store a `bg` loader over this store reads and writes: this store,
    /// or, for stores that can fail or lose a value, this store behind the
    /// loader's private in-process `copy`.
    type Mirror: StoreFor<T> + ?Sized;

    /// Wraps a value of the function for this store.
    fn wrap(value: T) -> Value;

    /// Decodes `T`s read from this store.
    fn decoder() -> &'static dyn Decoder;

    /// [`Store::get_local`] with a visitor the compiler can inline: if
    /// `key` holds a live entry, call `visit` with it while it is borrowed
    /// and return [`Local::Found`]. The default forwards to
    /// [`Store::get_local`].
    #[inline]
    fn lookup(&self, key: &str, mut visit: impl FnMut(&Entry)) -> Local {
        self.get_local(key, &mut visit)
    }

    /// Builds [`StoreFor::Mirror`] from this store and a `bg` loader's
    /// private in-process copy (made by `make_copy`, only if this store
    /// needs one), both on `clock`.
    ///
    /// # Errors
    /// If the two cannot be stacked.
    fn mirror(
        store: Arc<Self>,
        make_copy: impl FnOnce() -> Result<Arc<dyn Store>, Error>,
        clock: Arc<dyn crate::Clock>,
    ) -> Result<Arc<Self::Mirror>, Error>;
}

impl<T, S> StoreFor<T> for S
where
    T: SerdeValue,
    S: ByteStore + ?Sized,
    Arc<S>: IntoDynStore,
{
    type Mirror = crate::ChainCache;

    #[inline]
    fn wrap(value: T) -> Value {
        Value::new(value)
    }

    fn decoder() -> &'static dyn Decoder {
        const { &TypedDecoder::<T>::new() }
    }

    fn mirror(
        store: Arc<Self>,
        make_copy: impl FnOnce() -> Result<Arc<dyn Store>, Error>,
        clock: Arc<dyn crate::Clock>,
    ) -> Result<Arc<crate::ChainCache>, Error> {
        let chain = crate::ChainCache::builder()
            .level(make_copy()?)
            .level(store.into_dyn_store())
            .clock(clock)
            .build()?;
        Ok(Arc::new(chain))
    }
}

/// What a builder's `.store(..)` takes: a store by value or in an `Arc`,
/// including an `Arc<dyn Store>` chosen at run time.
pub trait IntoStore<S: ?Sized> {
    /// Converts into a shared store.
    fn into_store(self) -> Arc<S>;
}

impl<S: Store> IntoStore<S> for S {
    fn into_store(self) -> Arc<S> {
        Arc::new(self)
    }
}

impl<S: Store + ?Sized> IntoStore<S> for Arc<S> {
    fn into_store(self) -> Arc<S> {
        self
    }
}

/// Anything that can become an `Arc<dyn Store>` (a level of a
/// [`ChainCache`](crate::ChainCache)): a store by value, an `Arc` of one,
/// or an `Arc<dyn Store>`.
pub trait IntoDynStore {
    /// Converts into a shared, type-erased store.
    fn into_dyn_store(self) -> Arc<dyn Store>;
}

impl<S: Store> IntoDynStore for S {
    fn into_dyn_store(self) -> Arc<dyn Store> {
        Arc::new(self)
    }
}

impl<S: Store> IntoDynStore for Arc<S> {
    fn into_dyn_store(self) -> Arc<dyn Store> {
        self
    }
}

impl IntoDynStore for Arc<dyn Store> {
    fn into_dyn_store(self) -> Arc<dyn Store> {
        self
    }
}
