//! The [`Store`] trait: the one trait a storage backend implements.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Decoder, Entry, Error};

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
/// This is the only trait a custom backend implements. A store is shared as
/// `Arc<dyn Store>` by many cached functions that return different types, so
/// it deals in type-erased [`Entry`]s; byte stores encode [`Entry::value`]
/// with their serializer and decode with the [`Decoder`] the caller passes.
///
/// `ttl` arguments say how long the store must keep an entry (`None`:
/// until deleted). It covers the whole life of the entry, stale window
/// included, and is independent of [`Entry::fresh_until`]: the caching
/// policy, not the store, decides freshness.
///
/// Errors are returned, never panicked; the caching policies count and log
/// them and carry on without the cache.
///
/// `Any` is a supertrait (every `'static` type has it, so implementors
/// write nothing for it) so that an `Arc<dyn Store>` can be downcast to its
/// concrete type: the facade does so once per cached function to read an
/// in-memory store through [`LocalLookup`], without virtual calls.
pub trait Store: Any + Send + Sync + fmt::Debug {
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

/// [`Store::get_local`] with a visitor the compiler can inline, for
/// callers that know the store's concrete type (the hot path of a cached
/// function over the default in-memory store). `dyn Store` implements it by
/// forwarding to [`Store::get_local`].
pub trait LocalLookup {
    /// As [`Store::get_local`]: if `key` holds a live entry, call `visit`
    /// with it while it is borrowed and return [`Local::Found`].
    fn visit_local(&self, key: &str, visit: impl FnMut(&Entry)) -> Local;
}

impl LocalLookup for dyn Store {
    #[inline]
    fn visit_local(&self, key: &str, mut visit: impl FnMut(&Entry)) -> Local {
        self.get_local(key, &mut visit)
    }
}

/// Anything that can become the `Arc<dyn Store>` a cached function uses:
/// a store by value, an `Arc` of one, or an `Arc<dyn Store>`.
pub trait IntoStore {
    /// Converts into a shared store.
    fn into_store(self) -> Arc<dyn Store>;
}

impl<S: Store> IntoStore for S {
    fn into_store(self) -> Arc<dyn Store> {
        Arc::new(self)
    }
}

impl<S: Store> IntoStore for Arc<S> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}

impl IntoStore for Arc<dyn Store> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}
