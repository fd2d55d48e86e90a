//! Core of [advanced-caching](https://docs.rs/advanced-caching): the traits
//! every backend and runtime implements, the entry type, key templates, and
//! the caching policies written once over them.
//!
//! - [`Store`]: the trait a storage backend implements; [`ByteStore`] marks
//!   the ones that keep values serialized, [`StoreFor`] says which value
//!   types a store can hold.
//! - [`Serializer`]: how byte stores encode values.
//! - [`Clock`]: where timestamps come from: [`CoarseClock`] in production,
//!   [`ManualClock`] in tests.
//! - [`Scheduler`]: where background refreshes run.
//! - [`MetricsCollector`]: where hits, misses and errors go; [`NullMetrics`]
//!   is the default and costs nothing.
//! - [`CachePolicy`]: TTL, stale-while-revalidate and single flight.
//! - [`ChainCache`]: stores stacked fastest first ([`ChainCache::hybrid`]:
//!   the two-level in-memory + shared-store case).
//!
//! This crate does no I/O and needs no async runtime. Applications use the
//! `advanced-caching` facade; backend authors depend on this crate alone.
#![forbid(unsafe_code)]

mod chain;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod entry;
mod error;
pub mod health;
pub mod key;
pub mod log;
mod metrics;
pub mod policy;
pub mod scheduler;
mod serializer;
mod store;

pub use chain::{ChainCache, ChainCacheBuilder};
pub use clock::{Clock, ClockReader, CoarseClock, IntoSeconds, ManualClock, PreciseClock};
pub use entry::{Decoder, Entry, SerdeValue, TypedDecoder, Value};
pub use error::{BoxError, Error, Result, io_is_transient};
pub use key::{KeyArgs, KeySource, KeySpec, KeyTemplate};
pub use metrics::{MetricsCollector, NULL_METRICS, NullMetrics};
pub use policy::{CachePolicy, CallAsync, Loader, PolicyConfig, RefreshError};
pub use scheduler::{BlockingJob, Every, JobHandle, Scheduler, Task};
pub use serializer::{ErasedDeserializer, Serializer};
pub use store::{BoxFuture, ByteStore, IntoDynStore, IntoStore, Local, Store, StoreFor, Usage};

/// Locks `mutex`, ignoring poisoning: every critical section in this crate
/// is a single assignment or map operation, so a panic elsewhere cannot
/// leave the data half-updated.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a future to completion on the current thread, parking it while the
/// future waits. For sync code calling async store methods.
pub use pollster::block_on;
