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
//!     .pool_size(4)
//!     .build()?
//!     .prefix("myapp:");
//! # let _ = store; Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ac_core::health::{Admission, Health, Probe, Transition};
use ac_core::{BoxFuture, Decoder, Entry, Error, Serializer, Store};
use ac_serde::codec::{Compression, HEADER_LEN, decode_entry, encode_entry};
use fred::bytes::Bytes;
use fred::prelude::{
    Builder, ClientLike, Config, EventInterface, Expiration, KeysInterface, Options, Pool,
    ReconnectPolicy, SetOptions,
};
use fred::types::{Key, Value as RedisValue};
use futures_util::StreamExt as _;
use futures_util::future::Either;

/// The store's name in logs, errors and metrics.
const NAME: &str = "redis";

/// Keys per `UNLINK` / `MGET` batch.
const BATCH: usize = 512;

/// A Redis (single node, cluster, sentinel or unix-socket) store.
///
/// Cloning is cheap and shares the connections. Build one with
/// [`RedisCache::from_url`], [`RedisCache::builder`] or, from a fred pool
/// you configured yourself, [`RedisCache::from_pool`]; then set
/// [`prefix`](Self::prefix), [`serializer`](Self::serializer) and
/// [`dedupe_writes`](Self::dedupe_writes).
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

/// Builds a [`RedisCache`] from a URL: `redis://`, `rediss://` (feature
/// `tls`), `redis-cluster://h:p?node=h:p&node=…`, `redis-sentinel://…`
/// or `redis+unix:///path/to/socket`, as fred's
/// [`Config::from_url`](fred::types::config::Config::from_url) reads them.
#[derive(Clone)]
pub struct RedisCacheBuilder {
    url: String,
    pool_size: usize,
    timeout: Duration,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: TlsTrust,
}

/// Whom a `rediss://` connection trusts.
#[cfg(feature = "tls")]
#[derive(Clone)]
enum TlsTrust {
    /// The system's roots (fred's default for `rediss://`).
    System,
    /// Only the CA certificates of this PEM.
    RootsPem(Vec<u8>),
    /// A rustls configuration of the caller's.
    Config(Arc<fred::rustls::ClientConfig>),
}

#[cfg(feature = "tls")]
impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::System => "system roots",
            Self::RootsPem(_) => "CA certificates (PEM)",
            Self::Config(_) => "rustls ClientConfig",
        })
    }
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RedisCacheBuilder");
        debug
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls);
        debug.finish()
    }
}

impl RedisCacheBuilder {
    /// Connections in the pool (round-robin); default 2.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// How long one command may take before it counts as a store error;
    /// default 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`build`](Self::build) waits for the first connection, and
    /// the TCP/TLS connect timeout; default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// For a `rediss://` URL: trusts only the CA certificates in `pem`
    /// (one or more `-----BEGIN CERTIFICATE-----` blocks) instead of the
    /// system's roots, e.g. the private CA of a managed Redis. The server
    /// certificate must name the URL's host (DNS name or IP address).
    /// Read when [`build`](Self::build) runs.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls = TlsTrust::RootsPem(pem.into());
        self
    }

    /// For a `rediss://` URL: the whole rustls client configuration (client
    /// certificates, custom roots or verification), in place of the system's
    /// roots.
    #[cfg(feature = "tls")]
    pub fn tls_client_config(mut self, config: fred::rustls::ClientConfig) -> Self {
        self.tls = TlsTrust::Config(Arc::new(config));
        self
    }

    /// Parses the URL, creates the pool and connects it.
    ///
    /// If Redis cannot be reached within the connect timeout, the store is
    /// still returned (a warning is logged) and keeps reconnecting in the
    /// background; until then every command fails fast and cached calls run
    /// their functions.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a URL fred cannot read (the message
    /// never contains the password), a zero pool size or a zero timeout; a
    /// TLS URL (`rediss://`, `valkeys://`, their `-cluster` and `-sentinel`
    /// forms) without the feature `tls` (it would connect in plaintext and
    /// send the password in clear); with the feature, TLS settings for a
    /// URL without TLS, or CA certificates that cannot be read.
    pub fn build(self) -> Result<RedisCache, Error> {
        let target = redact(&self.url);
        if self.pool_size == 0 {
            return Err(Error::InvalidConfig(format!(
                "RedisCache for {target}: pool size must be at least 1"
            )));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::InvalidConfig(format!(
                "RedisCache for {target}: timeouts must be positive"
            )));
        }
        let tls = wants_tls(&self.url);
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(Error::InvalidConfig(format!(
                "RedisCache for {target}: the URL asks for TLS, but this build has no TLS \
                 support; enable the `redis-tls` feature of advanced-caching (feature `tls` \
                 of ac-store-redis). Refusing rather than connecting in plaintext"
            )));
        }
        let mut config = config_from_url(&self.url)?;
        #[cfg(feature = "tls")]
        self.tls_config(&mut config, tls, &target)?;
        // A store that is down when the service starts must not fail
        // construction: keep reconnecting instead.
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = self.connect_timeout;
                c.internal_command_timeout = self.connect_timeout;
                c.max_command_attempts = 2;
            })
            .with_performance_config(|p| p.default_command_timeout = self.timeout);
        let pool = builder.build_pool(self.pool_size).map_err(|e| {
            Error::InvalidConfig(format!("RedisCache for {target}: {}", e.details()))
        })?;
        let runtime = runtime()?;
        {
            let _enter = runtime.enter();
            let _connections = pool.connect();
        }
        let waiting = pool.clone();
        let wait = self.connect_timeout;
        let connected =
            ac_core::block_on(runtime.spawn(async move {
                tokio::time::timeout(wait, waiting.wait_for_connect()).await
            }));
        let store = RedisCache::from_pool_on(pool, runtime, target, self.timeout);
        if !matches!(connected, Ok(Ok(Ok(())))) && store.health.lost().is_some() {
            tracing::warn!(
                target: "advanced_caching::redis",
                redis = %store.target,
                "RedisCache: Redis not reachable yet; calls skip it (and run their \
                 functions) while it reconnects in the background",
            );
        }
        Ok(store)
    }

    /// Puts the TLS settings of this builder into `config`, checking that
    /// the URL asked for TLS (`tls`) if and only if TLS will be used.
    #[cfg(feature = "tls")]
    fn tls_config(&self, config: &mut Config, tls: bool, target: &str) -> Result<(), Error> {
        use fred::types::config::{TlsConfig, TlsConnector, TlsHostMapping};
        let custom = match &self.tls {
            TlsTrust::System => None,
            TlsTrust::RootsPem(pem) => Some(roots_config(pem, target)?),
            TlsTrust::Config(custom) => Some(custom.clone()),
        };
        if !tls {
            if custom.is_some() {
                return Err(Error::InvalidConfig(format!(
                    "RedisCache for {target}: TLS settings were given but the URL does not \
                     use TLS; use rediss:// (or drop the TLS settings)"
                )));
            }
            return Ok(());
        }
        if let Some(custom) = custom {
            let hostnames = config
                .tls
                .take()
                .map_or(TlsHostMapping::None, |tls| tls.hostnames);
            config.tls = Some(TlsConfig {
                connector: TlsConnector::from(Arc::unwrap_or_clone(custom)),
                hostnames,
            });
        }
        if !config.uses_tls() {
            // fred takes `rediss+unix://` for a plain unix socket.
            return Err(Error::InvalidConfig(format!(
                "RedisCache for {target}: the URL asks for TLS, which fred does not do over a \
                 unix socket; use redis+unix:// (local, no TLS needed) or a rediss:// host"
            )));
        }
        Ok(())
    }
}

/// Whether `url` asks for TLS, as fred reads it: a scheme starting with
/// `rediss` or `valkeys` (plain, `-cluster`, `-sentinel`). Parsed as fred
/// parses it, so spelling (case, stray whitespace) cannot hide it.
fn wants_tls(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        let scheme = url.scheme();
        scheme.starts_with("rediss") || scheme.starts_with("valkeys")
    })
}

/// A rustls configuration trusting only the CA certificates of `pem`.
#[cfg(feature = "tls")]
fn roots_config(pem: &[u8], target: &str) -> Result<Arc<fred::rustls::ClientConfig>, Error> {
    use fred::rustls::pki_types::CertificateDer;
    use fred::rustls::pki_types::pem::PemObject as _;
    use fred::rustls::{ClientConfig, RootCertStore, crypto::CryptoProvider};
    let invalid = |what: String| Error::InvalidConfig(format!("RedisCache for {target}: {what}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| invalid(format!("cannot read the CA certificates: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(
            "no certificate in the CA PEM (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        ));
    }
    // The process-wide provider if the application installed one, else
    // ring (what the `tls` feature compiles in).
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(fred::rustls::crypto::ring::default_provider()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The process-wide runtime that drives every `RedisCache`'s connections.
fn runtime() -> Result<tokio::runtime::Handle, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ac-redis")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
        .map_err(|e| Error::store(NAME, format!("cannot start the Redis runtime: {e}")))
}

/// Reads a Redis URL into fred's [`Config`] without connecting: the first
/// step of [`RedisCacheBuilder::build`], public for the fuzz targets.
///
/// # Errors
/// [`Error::InvalidConfig`] for a URL fred cannot read; the message shows
/// the URL as [`redact_url`] does, never the password.
#[doc(hidden)]
pub fn config_from_url(url: &str) -> Result<Config, Error> {
    Config::from_url(url).map_err(|e| {
        Error::InvalidConfig(format!(
            "RedisCache: cannot read Redis URL {}: {}",
            redact(url),
            e.details()
        ))
    })
}

/// `url` as logs and errors show it, secrets masked (see `redact`); public
/// for the fuzz targets.
#[doc(hidden)]
pub fn redact_url(url: &str) -> String {
    redact(url)
}

/// `url` with every secret replaced by `***`: the password before the last
/// `@` (passwords may hold `/`, `?` or `@`), and the value of every
/// `name=value` parameter whose name, percent-decoded as fred reads it,
/// contains "password" (e.g. `sentinelPassword`), wherever it is (an `@`
/// may come after it, as in `sentinelUsername=ops@corp`).
fn redact(url: &str) -> String {
    // Only a scheme may come before the first `://` (else it is the `://`
    // of a value, and what comes before it is not known to be harmless).
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    let Some(scheme_end) = url
        .find("://")
        .filter(|&i| is_scheme(&url[..i]))
        .map(|i| i + 3)
    else {
        return "***".to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let mut out = head.to_owned();
    let mut shown_from = 0;
    if let Some(at) = rest.rfind('@') {
        let user = rest[..at].split(':').next().unwrap_or("");
        // A user part with '/' or '?' is not a user: hide it all.
        let user = if user.contains(['/', '?', '#']) {
            ""
        } else {
            user
        };
        out.push_str(user);
        out.push_str(":***");
        shown_from = at;
    }
    // Password parameters, found in the whole URL (their value may hold the
    // last `@`), masked where they reach past the hidden part.
    for (start, end) in password_values(rest) {
        if end > shown_from {
            let start = start.max(shown_from);
            out.push_str(&rest[shown_from..start]);
            out.push_str("***");
            shown_from = end;
        }
    }
    out.push_str(&rest[shown_from..]);
    out
}

/// The byte ranges of the values of `name=value` pieces after a `?` or `&`
/// in `text` whose percent-decoded name contains "password" (any case). A
/// value runs to the next `&`: it may hold `?`, as fred reads it.
fn password_values(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for (separator, _) in text.match_indices(['?', '&']) {
        let piece = &text[separator + 1..];
        let Some(eq) = piece
            .find(['=', '?', '&'])
            .filter(|&i| piece[i..].starts_with('='))
        else {
            continue;
        };
        if decode_query_name(&piece[..eq])
            .to_ascii_lowercase()
            .contains("password")
        {
            let start = separator + 1 + eq + 1;
            let end = text[start..].find('&').map_or(text.len(), |i| start + i);
            ranges.push((start, end));
        }
    }
    ranges
}

/// A query parameter name as fred reads it: the URL parser drops tabs and
/// line breaks, then `application/x-www-form-urlencoded` makes `+` a space
/// and `%XX` a byte.
fn decode_query_name(name: &str) -> String {
    let kept: Vec<u8> = name
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'))
        .collect();
    // `name` holds no `&` or `=`: the one pair's name, decoded as fred's
    // `query_pairs` decodes it (`+` is a space, `%XX` a byte, lossy UTF-8).
    url::form_urlencoded::parse(&kept)
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

/// Escapes glob metacharacters so `prefix` matches itself in `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

fn redis_error(error: fred::error::Error) -> Error {
    Error::store(NAME, error.to_string())
}

/// Whether `error` says Redis could not be reached or did not answer, as
/// opposed to an answer that is an error (a wrong type, a full memory).
fn is_unavailable(error: &fred::error::Error) -> bool {
    use fred::error::ErrorKind;
    match error.kind() {
        ErrorKind::IO
        | ErrorKind::Timeout
        | ErrorKind::Canceled
        | ErrorKind::Routing
        | ErrorKind::Cluster
        | ErrorKind::Sentinel
        | ErrorKind::Backpressure => true,
        #[cfg(feature = "tls")]
        ErrorKind::Tls => true,
        _ => false,
    }
}

/// Logs a turn of the store's health, once per outage each way.
fn log_transition(target: &str, transition: Transition, cause: &dyn fmt::Display) {
    match transition {
        Transition::WentDown => tracing::warn!(
            target: "advanced_caching::redis",
            redis = %target,
            error = %cause,
            "RedisCache: Redis unreachable; calls skip it (and run their functions) until a \
             probe answers",
        ),
        Transition::CameBack { down_for, skipped } => tracing::info!(
            target: "advanced_caching::redis",
            redis = %target,
            ?down_for,
            skipped,
            "RedisCache: Redis reachable again",
        ),
        _ => {}
    }
}

/// TTLs beyond this are kept without expiry: Redis refuses a `PX` whose
/// deadline overflows, and 100 years is "forever" for a cache.
const MAX_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Milliseconds for `SET PX`, rounded up (Redis rejects 0).
fn millis(ttl: Duration) -> i64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The `SET` expiry for a store TTL: `None` keeps the key without one.
fn expiration(ttl: Option<Duration>) -> Option<Expiration> {
    ttl.filter(|ttl| *ttl <= MAX_EXPIRY)
        .map(|ttl| Expiration::PX(millis(ttl)))
}

impl RedisCache {
    /// A store for `url`, with the default pool size and timeouts.
    ///
    /// # Errors
    /// As [`RedisCacheBuilder::build`].
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// A builder for `url`, to set the pool size and timeouts.
    pub fn builder(url: impl Into<String>) -> RedisCacheBuilder {
        RedisCacheBuilder {
            url: url.into(),
            pool_size: 2,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: TlsTrust::System,
        }
    }

    /// A store over a fred pool you built and connected yourself (any
    /// topology, TLS, credentials provider...). A single
    /// [`Client`](fred::clients::Client) becomes a pool with
    /// `Pool::from_clients(vec![client])`.
    ///
    /// The pool's TLS is yours to check: fred's own `Config::from_url`
    /// reads a `rediss://` URL as plaintext (with only a log line) when fred
    /// was built without a TLS feature, and the resulting configuration
    /// cannot tell. [`RedisCache::builder`] refuses such URLs.
    ///
    /// # Errors
    /// If the store's runtime cannot start.
    pub fn from_pool(pool: Pool) -> Result<Self, Error> {
        let target = pool
            .next()
            .active_connections()
            .into_iter()
            .next()
            .map(|server| server.to_string())
            .unwrap_or_else(|| "redis".to_owned());
        Ok(Self::from_pool_on(
            pool,
            runtime()?,
            target,
            Duration::from_secs(1),
        ))
    }

    /// The store over `pool`, named `target` in `Debug`, with `timeout`
    /// per command.
    fn from_pool_on(
        pool: Pool,
        runtime: tokio::runtime::Handle,
        target: String,
        timeout: Duration,
    ) -> Self {
        let store = Self {
            pool,
            runtime,
            prefix: Arc::from(""),
            serializer: Arc::new(ac_serde::Json),
            dedupe_writes: false,
            options: Options {
                fail_fast: true,
                timeout: Some(timeout),
                ..Options::default()
            },
            target: target.into(),
            health: Health::default(),
        };
        store.watch_connections();
        store
    }

    /// Follows the clients' connection events: a lost connection turns the
    /// health down at once (commands waiting on it stop waiting), and a
    /// reconnection lets the next call probe without waiting the backoff.
    /// The listeners hold no client, so they end with the clients.
    fn watch_connections(&self) {
        for client in self.pool.clients() {
            let mut errors = client.error_rx();
            let (health, target) = (self.health.clone(), self.target.clone());
            self.runtime.spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match errors.recv().await {
                        Ok((error, _server)) => {
                            if let Some(transition) = health.lost() {
                                log_transition(&target, transition, &error);
                            }
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    }
                }
            });
            let mut reconnects = client.reconnect_rx();
            let health = self.health.clone();
            self.runtime.spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                while let Ok(_) | Err(RecvError::Lagged(_)) = reconnects.recv().await {
                    health.retry_now();
                }
            });
        }
    }

    /// Runs `probe`: a `PING` on a connected client, off the caller's
    /// path, within one command timeout.
    fn spawn_probe(&self, probe: Probe) {
        let client = self.pool.next_connected();
        let connected = client.is_connected();
        let client = client.with_options(&self.options);
        let timeout = self.options.timeout.unwrap_or(Duration::from_secs(1));
        let target = self.target.clone();
        self.runtime.spawn(async move {
            if !connected {
                probe.failed();
                return;
            }
            match tokio::time::timeout(timeout, client.ping::<()>(None)).await {
                Ok(Ok(())) => {
                    if let Some(transition) = probe.succeeded() {
                        log_transition(&target, transition, &"PING answered");
                    }
                }
                Ok(Err(error)) => {
                    tracing::debug!(target: "advanced_caching::redis", redis = %target, %error, "RedisCache: probe failed");
                    probe.failed();
                }
                Err(_) => probe.failed(),
            }
        });
    }

    /// Prepends `prefix` to every key (as the Python package does). Give
    /// each application or cache its own prefix: `clear()` removes exactly
    /// the keys under it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// The serializer of values (default JSON).
    pub fn serializer(mut self, serializer: impl Serializer) -> Self {
        self.serializer = Arc::new(serializer);
        self
    }

    /// When on, a write first reads the key and, if Redis already holds
    /// the same bytes, only extends its expiry (saves bandwidth and
    /// replication traffic for large, rarely changing values).
    pub fn dedupe_writes(mut self, dedupe: bool) -> Self {
        self.dedupe_writes = dedupe;
        self
    }

    /// The fred pool, for commands of your own.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The Redis key under which `key` is stored.
    pub fn redis_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.len());
        out.push_str(&self.prefix);
        out.push_str(key);
        out
    }

    /// Runs `command` with a client of the pool (fail-fast, with the
    /// command timeout) on the store's runtime, so callers on any executor,
    /// or none, can await it. `commands` is how many round trips the
    /// closure may make: the whole closure gets that many command timeouts,
    /// then fails, so nothing waits forever on a server that is gone.
    ///
    /// While the store is down the command is not sent: the future fails at
    /// once (and a probe may start). A command in flight when the store is
    /// seen down fails then, without waiting for its timeout.
    fn run<T, F, Fut>(
        &self,
        commands: u32,
        command: F,
    ) -> impl Future<Output = Result<T, Error>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(fred::clients::WithOptions<fred::clients::Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, fred::error::Error>> + Send + 'static,
    {
        let ticket = match self.health.admit() {
            Admission::Proceed(ticket) => Some(ticket),
            Admission::Skip(probe) => {
                if let Some(probe) = probe {
                    self.spawn_probe(probe);
                }
                None
            }
        };
        let task = ticket.map(|ticket| {
            // Skips clients still reconnecting after an outage.
            let client = self.pool.next_connected();
            let connected = client.is_connected();
            let client = client.with_options(&self.options);
            let deadline = self
                .options
                .timeout
                .unwrap_or(Duration::from_secs(1))
                .saturating_mul(commands.max(1));
            let (health, target) = (self.health.clone(), self.target.clone());
            self.runtime.spawn(async move {
                let unavailable = |why: String| {
                    if let Some(transition) = health.failed(ticket) {
                        log_transition(&target, transition, &why);
                    }
                    Error::store(NAME, why)
                };
                if !connected {
                    return Err(unavailable("not connected to Redis (reconnecting)".into()));
                }
                let answer = std::pin::pin!(tokio::time::timeout(deadline, command(client)));
                let down = std::pin::pin!(health.went_down(ticket));
                match futures_util::future::select(answer, down).await {
                    Either::Left((Ok(Ok(value)), _)) => Ok(value),
                    Either::Left((Ok(Err(error)), _)) if is_unavailable(&error) => {
                        Err(unavailable(error.to_string()))
                    }
                    Either::Left((Ok(Err(error)), _)) => Err(redis_error(error)),
                    Either::Left((Err(_), _)) => Err(unavailable(format!(
                        "no answer from Redis within {deadline:?}"
                    ))),
                    Either::Right(((), _)) => Err(Error::store(
                        NAME,
                        "Redis went down while the command was in flight",
                    )),
                }
            })
        });
        async move {
            match task {
                None => Err(Error::store(
                    NAME,
                    "Redis is down: skipped until a probe answers",
                )),
                Some(task) => match task.await {
                    Ok(result) => result,
                    Err(join) => Err(Error::store(NAME, format!("Redis task failed: {join}"))),
                },
            }
        }
    }

    fn encode(&self, entry: &Entry) -> Result<Bytes, Error> {
        encode_entry(entry, &*self.serializer, Compression::None).map(Bytes::from)
    }

    fn decode(&self, bytes: &[u8], decoder: &dyn Decoder) -> Result<Entry, Error> {
        decode_entry(bytes, &*self.serializer, decoder, Compression::None)
    }

    /// `SET key bytes [PX ttl]`. With dedupe, when Redis already holds the
    /// same value (the payload after the 16-byte timestamp header), only
    /// the header is rewritten (`SETRANGE`) and the expiry renewed; if the
    /// key vanished meanwhile, the full value is written after all.
    fn write(
        &self,
        key: String,
        bytes: Bytes,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let expire = expiration(ttl);
        let dedupe = self.dedupe_writes;
        // GET, SETRANGE, STRLEN, PEXPIRE and maybe SET with dedupe.
        let commands = if dedupe { 5 } else { 1 };
        self.run(commands, move |client| async move {
            if dedupe {
                let existing: Option<Bytes> = client.get(key.as_str()).await?;
                let same = existing.as_ref().is_some_and(|old| {
                    old.len() == bytes.len() && old.get(HEADER_LEN..) == bytes.get(HEADER_LEN..)
                });
                if same {
                    let header = bytes.slice(..HEADER_LEN.min(bytes.len()));
                    client.setrange::<(), _, _>(key.as_str(), 0, header).await?;
                    // SETRANGE creates a key that vanished since the GET;
                    // such a 16-byte stub is caught here and overwritten.
                    let len: usize = client.strlen(key.as_str()).await?;
                    if len == bytes.len() {
                        let renewed: bool = match &expire {
                            Some(Expiration::PX(ms)) => {
                                client.pexpire(key.as_str(), *ms, None).await?
                            }
                            _ => {
                                client.persist::<(), _>(key.as_str()).await?;
                                true
                            }
                        };
                        if renewed {
                            return Ok(());
                        }
                    }
                }
            }
            client
                .set::<(), _, _>(key, bytes, expire, None, false)
                .await
        })
    }

    /// Whether the connected server is a cluster.
    fn clustered(&self) -> bool {
        self.pool.next().is_clustered()
    }
}

/// Splits `keys` into groups that may share one multi-key command: one
/// group per hash slot on a cluster, one group otherwise, at most [`BATCH`]
/// keys each. Keeps the index of each key in `keys`.
fn slot_groups<K: Clone>(
    keys: &[K],
    bytes: impl Fn(&K) -> &[u8],
    clustered: bool,
) -> Vec<Vec<(usize, K)>> {
    let mut groups: Vec<(u16, Vec<(usize, K)>)> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let slot = if clustered {
            fred::util::redis_keyslot(bytes(key))
        } else {
            0
        };
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push((index, key.clone())),
            None => groups.push((slot, vec![(index, key.clone())])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(_, group)| {
            group
                .chunks(BATCH)
                .map(<[(usize, K)]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Redis keeps values serialized: cached values must be serde.
impl ac_core::ByteStore for RedisCache {}

impl Store for RedisCache {
    fn name(&self) -> &'static str {
        NAME
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        let redis_key = self.redis_key(key);
        let read = self.run(1, move |client| async move {
            client.get::<Option<Bytes>, _>(redis_key).await
        });
        Box::pin(async move {
            match read.await? {
                Some(bytes) => self.decode(&bytes, decoder).map(Some),
                None => Ok(None),
            }
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let written = self
            .encode(&entry)
            .map(|bytes| self.write(self.redis_key(key), bytes, ttl));
        Box::pin(async move { written?.await })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let bytes = self.encode(&entry);
        let redis_key = self.redis_key(key);
        Box::pin(async move {
            let bytes = bytes?;
            let expire = expiration(ttl);
            let reply: RedisValue = self
                .run(1, move |client| async move {
                    client
                        .set(redis_key, bytes, expire, Some(SetOptions::NX), false)
                        .await
                })
                .await?;
            Ok(!reply.is_null())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let redis_key = self.redis_key(key);
        Box::pin(self.run(1, move |client| async move {
            client.unlink::<(), _>(redis_key).await
        }))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        if self.prefix.is_empty() {
            return Box::pin(std::future::ready(Err(Error::InvalidConfig(
                "RedisCache::clear refuses to run without a prefix: it would delete every key \
                 in the database; set .prefix(..)"
                    .to_owned(),
            ))));
        }
        let pattern = glob_escape(&self.prefix);
        let clustered = self.clustered();
        // A clear may take many round trips; bound it generously.
        Box::pin(self.run(60, move |client| async move {
            let keys = if clustered {
                client
                    .scan_cluster_buffered(pattern, Some(1000), None)
                    .boxed()
            } else {
                client.scan_buffered(pattern, Some(1000), None).boxed()
            };
            let mut pages = keys.chunks(BATCH);
            while let Some(page) = pages.next().await {
                // Keys as bytes: a key that is not UTF-8 is still ours.
                let page = page.into_iter().collect::<Result<Vec<Key>, _>>()?;
                let groups = slot_groups(&page, Key::as_bytes, clustered);
                let unlinks = groups.into_iter().map(|group| {
                    let keys: Vec<Key> = group.into_iter().map(|(_, k)| k).collect();
                    client.unlink::<(), _>(keys)
                });
                futures_util::future::try_join_all(unlinks).await?;
            }
            Ok(())
        }))
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>, Error>> {
        let redis_keys: Vec<String> = keys.iter().map(|key| self.redis_key(key)).collect();
        let groups = slot_groups(&redis_keys, |k| k.as_bytes(), self.clustered());
        let count = keys.len();
        let read = self.run(2, move |client| async move {
            let reads = groups.into_iter().map(|group| {
                let client = &client;
                async move {
                    let (indexes, keys): (Vec<usize>, Vec<String>) = group.into_iter().unzip();
                    let values: Vec<Option<Bytes>> = client.mget(keys).await?;
                    Ok::<_, fred::error::Error>(indexes.into_iter().zip(values))
                }
            });
            let mut out: Vec<Option<Bytes>> = vec![None; count];
            for group in futures_util::future::try_join_all(reads).await? {
                for (index, value) in group {
                    out[index] = value;
                }
            }
            Ok(out)
        });
        Box::pin(async move {
            read.await?
                .into_iter()
                .map(|bytes| bytes.map(|b| self.decode(&b, decoder)).transpose())
                .collect()
        })
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(&'a str, Entry)>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.dedupe_writes {
            // Dedupe compares per key; keep the one-by-one default.
            return Box::pin(async move {
                for (key, entry) in entries {
                    self.set(key, entry, ttl).await?;
                }
                Ok(())
            });
        }
        let encoded = entries
            .iter()
            .map(|(key, entry)| Ok((self.redis_key(key), self.encode(entry)?)))
            .collect::<Result<Vec<_>, Error>>();
        Box::pin(async move {
            let encoded = encoded?;
            let expire = expiration(ttl);
            // Concurrent single SETs (fred pipelines them on the
            // connection), each with the store's fail-fast options.
            self.run(2, move |client| async move {
                let writes = encoded.into_iter().map(|(key, bytes)| {
                    client.set::<(), _, _>(key, bytes, expire.clone(), None, false)
                });
                futures_util::future::try_join_all(writes).await.map(drop)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h:1"), "redis://:***@h:1");
        // Ambiguous (an `@` after the host): masked rather than risk a leak.
        assert_eq!(redact("redis://h:1/0?x=a@b"), "redis://h:***@b");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock"),
            "redis+unix:///tmp/r.sock"
        );
    }

    /// Found by the `redis_url` fuzz target: an `@` in the query (a
    /// sentinel user `ops@corp`) ended the masked part inside the query,
    /// and the `sentinelPassword` after it was shown; nor was a name
    /// written with percent-escapes, which fred decodes, masked; nor a URL
    /// whose only `://` is in a password.
    #[test]
    fn redact_hides_sentinel_passwords_after_an_at_sign_and_escaped_names() {
        let url = "redis-sentinel://s1:26379?sentinelServiceName=m\
                   &sentinelUsername=ops@corp&sentinelPassword=hunter2&node=s2:26380";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        let url = "redis-sentinel://s1:26379?sentinelServiceName=m&sentinel%50assword=hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        let url = "redis-sentinel://u:pw@s1?sentinelServiceName=m&sentinelPassword=a@hunter2";
        let shown = redact(url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw"),
            "{shown}"
        );
        // A password value that holds `?`.
        let url = "redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=?hunter2&node=s2:1";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        // A name broken by a line break, which the URL parser drops.
        let url = "redis-sentinel://s1?sentinelServiceName=m&sentinelPass\r\nword=hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        // No `://` after the scheme, but one in the password.
        let url = "redis-sentinel:h?sentinelServiceName=m&sentinelPassword=redis://hunter2";
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            redact("redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=x"),
            "redis-sentinel://s1?sentinelServiceName=m&sentinelPassword=***"
        );
    }

    #[test]
    fn glob_escape_matches_prefix_literally() {
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn millis_round_up_and_never_zero() {
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_secs(3)), 3000);
        assert_eq!(millis(Duration::ZERO), 1);
    }

    #[test]
    fn slot_groups_split_by_slot_and_keep_order() {
        let keys: Vec<String> = ["{a}1", "{b}1", "{a}2"].map(String::from).to_vec();
        let groups = slot_groups(&keys, |k| k.as_bytes(), true);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0],
            vec![(0, "{a}1".to_owned()), (2, "{a}2".to_owned())]
        );
        assert_eq!(slot_groups(&keys, |k| k.as_bytes(), false).len(), 1);
    }

    #[test]
    fn tls_is_seen_in_every_spelling_fred_accepts() {
        for url in [
            "rediss://h:1",
            "REDISS://h:1",
            " rediss://h:1",
            "red\tiss://h:1",
            "rediss-cluster://h:1?node=h:2",
            "rediss-sentinel://h:1?sentinelServiceName=m",
            "valkeys://h:1",
            "valkeys-cluster://h:1",
        ] {
            assert!(wants_tls(url), "{url:?}");
        }
        for url in [
            "redis://h:1",
            "redis-cluster://h:1",
            "redis+unix:///tmp/s",
            "valkey://h",
        ] {
            assert!(!wants_tls(url), "{url:?}");
        }
    }

    #[test]
    fn bad_url_is_a_config_error_without_the_password() {
        let err = RedisCache::from_url("redis://user:hunter2@[bad").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidConfig(_)), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            RedisCache::builder("redis://h")
                .pool_size(0)
                .build()
                .is_err()
        );
    }
}
