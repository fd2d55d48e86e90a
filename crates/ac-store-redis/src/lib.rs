//! `RedisCache`: the Redis and Redis Cluster store of
//! [advanced-caching](https://docs.rs/advanced-caching), on
//! [fred](https://docs.rs/fred).
//!
//! Entries are stored under `prefix + key` as the Python package's
//! `pack_entry` bytes (see [`ac_serde::codec`]), so Rust and Python
//! processes sharing a Redis share entries; the default serializer is JSON.
//!
//! - Every write carries a real Redis expiry (`SET … PX`) covering the whole
//!   life of the entry, stale window included; only entries the caller
//!   keeps "forever" (`ttl: None`) have none.
//! - `set_if_absent` is `SET NX PX`, atomic across processes.
//! - `clear()` removes only keys under the prefix, with `SCAN` + `UNLINK` on
//!   every primary of a cluster, in same-slot batches; with an empty prefix
//!   it refuses rather than flush a shared database.
//! - An outage costs at most one command timeout, not one per call: once
//!   the store sees Redis fail (a lost connection, a command without an
//!   answer in time), commands in flight stop waiting and later ones fail
//!   at once without touching the network (the caching policy then runs
//!   the function and counts the error), while one probe at a time
//!   (`PING`, off the callers' path, with a backoff from 50 ms to 1 s)
//!   finds out when it is back. The client reconnects in the background,
//!   so a Redis outage never fails a cached call and the cache works again
//!   once Redis is back. The store logs each outage once (a warning when it
//!   starts, an info line when it ends, target `advanced_caching::redis`);
//!   individual failures are counted and logged by the caching policy. See
//!   [`ac_core::health`].
//! - `rediss://` (TLS) needs the feature `tls` (`redis-tls` of the
//!   `advanced-caching` facade); without it a TLS URL is refused at build
//!   rather than connected in plaintext. With it, the system's roots are
//!   trusted, or the CA you give
//!   (`RedisCacheBuilder::tls_root_certificates_pem`).
//!
//! The store drives its own small Tokio runtime (one worker thread shared by
//! every `RedisCache` of the process), so it works the same from plain
//! threads, from Tokio, async-std or smol tasks, and from sync functions
//! called inside a Tokio runtime.
//!
//! ```no_run
//! use ac_store_redis::RedisCache;
//! # fn main() -> Result<(), ac_core::Error> {
//! let store = RedisCache::builder("redis://127.0.0.1:6379/0")
//!     .prefix("myapp:")
//!     .pool_size(4)
//!     .build()?;
//! # let _ = store; Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod cluster;
mod commands;
mod health;
mod redact;

use std::fmt;
use std::sync::Arc;

use ac_core::Serializer;
use ac_core::health::Health;
use fred::prelude::{Options, Pool};

pub use builder::RedisCacheBuilder;
/// The rustls of [`RedisCacheBuilder::tls_client_config`], in the version
/// the store uses.
#[cfg(feature = "tls")]
pub use fred::rustls;
pub use health::{Cause, Unavailable};

/// Internals public for the fuzz targets (`fuzz/`), not part of the API:
/// they may change in any release.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::builder::config_from_url;
    pub use crate::redact::redact_url;
}

/// The store's name in logs, errors and metrics.
const NAME: &str = "redis";

/// Keys per `UNLINK` / `MGET` batch.
const BATCH: usize = 512;

/// A Redis (single node, cluster, sentinel or unix-socket) store.
///
/// Cloning is cheap and shares the connections. Build one with
/// [`RedisCache::builder`].
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    runtime: tokio::runtime::Handle,
    prefix: Arc<str>,
    serializer: Arc<dyn Serializer>,
    dedupe_writes: bool,
    options: Options,
    /// The server address with any password removed, for `Debug`.
    target: Arc<str>,
    /// Whether Redis answers: calls skip it while it does not.
    health: Health,
    /// What last showed Redis unavailable: the cause skipped calls report.
    last_outage: health::LastOutage,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("serializer", &self.serializer.name())
            .field("dedupe_writes", &self.dedupe_writes)
            .field("pool_size", &self.pool.size())
            .field("up", &self.health.is_up())
            .finish()
    }
}

impl RedisCache {
    /// The Redis key under which `key` is stored.
    pub fn redis_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.len());
        out.push_str(&self.prefix);
        out.push_str(key);
        out
    }
}
