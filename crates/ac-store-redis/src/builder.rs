//! [`RedisCacheBuilder`]: URL, key prefix, serializer, pool, timeouts and
//! TLS, and the store's runtime.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ac_core::health::Health;
use ac_core::{Error, Serializer};
use fred::prelude::{Builder, ClientLike, Config, Options, ReconnectPolicy};

use crate::redact::redact;
use crate::{NAME, RedisCache};

/// Builds a [`RedisCache`] from a URL: `redis://`, `rediss://` (feature
/// `tls`), `redis-cluster://h:p?node=h:p&node=…`, `redis-sentinel://…`
/// or `redis+unix:///path/to/socket`, as fred reads them.
///
/// ```no_run
/// use std::time::Duration;
/// use ac_store_redis::RedisCache;
///
/// let store = RedisCache::builder("redis://127.0.0.1:6379/0")
///     .prefix("myapp:")
///     .serializer(ac_serde::Json)
///     .pool_size(4)
///     .timeout(Duration::from_millis(250))
///     .build()?;
/// # drop(store);
/// # Ok::<(), ac_core::Error>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisCacheBuilder {
    url: String,
    prefix: String,
    serializer: Arc<dyn Serializer>,
    dedupe_writes: bool,
    pool_size: usize,
    timeout: Duration,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: TlsTrust,
    fred_escape_hatch: Option<FredHatch>,
}

/// What [`RedisCacheBuilder::fred_escape_hatch`] was given.
type FredHatch = Arc<dyn Fn(&mut Builder) + Send + Sync>;

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
            .field("prefix", &self.prefix)
            .field("serializer", &self.serializer.name())
            .field("dedupe_writes", &self.dedupe_writes)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls);
        debug
            .field("fred_escape_hatch", &self.fred_escape_hatch.is_some())
            .finish()
    }
}

impl RedisCacheBuilder {
    /// Prepends `prefix` to every key (as the Python package does). Give
    /// each application or cache its own prefix: `clear()` removes exactly
    /// the keys under it, and refuses to run without one.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The serializer of values (default JSON, which Python reads).
    pub fn serializer(mut self, serializer: impl Serializer) -> Self {
        self.serializer = Arc::new(serializer);
        self
    }

    /// When on, a write first reads the key and, if Redis already holds
    /// the same bytes, only extends its expiry (saves bandwidth and
    /// replication traffic for large, rarely changing values). Default off.
    pub fn dedupe_writes(mut self, dedupe: bool) -> Self {
        self.dedupe_writes = dedupe;
        self
    }

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
    /// roots. [`rustls`](crate::rustls) is re-exported, in the version the
    /// store uses.
    #[cfg(feature = "tls")]
    pub fn tls_client_config(mut self, config: crate::rustls::ClientConfig) -> Self {
        self.tls = TlsTrust::Config(Arc::new(config));
        self
    }

    /// **Escape hatch** to [fred](https://docs.rs/fred), the Redis client
    /// underneath: `configure` gets fred's `Builder` after this builder has
    /// applied its settings and before the pool is created, to set what
    /// this builder does not offer (a credentials provider, a custom TLS
    /// connector, fred's performance or reconnection settings...).
    ///
    /// This is the only place fred's types show in this crate's API, and
    /// it follows fred's versions, not this crate's: a fred upgrade may
    /// break code that uses it. The store's guarantees (fail-fast commands,
    /// the outage handling, refusing plaintext for a TLS URL) assume the
    /// settings it made; overriding those is at your own risk.
    ///
    /// ```no_run
    /// use ac_store_redis::RedisCache;
    ///
    /// let store = RedisCache::builder("redis://127.0.0.1:6379/0")
    ///     .fred_escape_hatch(|fred| {
    ///         fred.with_config(|config| config.database = Some(2));
    ///     })
    ///     .build()?;
    /// # drop(store);
    /// # Ok::<(), ac_core::Error>(())
    /// ```
    pub fn fred_escape_hatch(
        mut self,
        configure: impl Fn(&mut fred::types::Builder) + Send + Sync + 'static,
    ) -> Self {
        self.fred_escape_hatch = Some(Arc::new(configure));
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
            return Err(Error::invalid_config(format!(
                "RedisCache for {target}: pool size must be at least 1"
            )));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::invalid_config(format!(
                "RedisCache for {target}: timeouts must be positive"
            )));
        }
        let tls = wants_tls(&self.url);
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(Error::invalid_config(format!(
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
        if let Some(configure) = &self.fred_escape_hatch {
            configure(&mut builder);
        }
        let pool = builder
            .build_pool(self.pool_size)
            .map_err(|e| Error::invalid_config_caused_by(format!("RedisCache for {target}"), e))?;
        let runtime = runtime()?;
        // The store follows the connection events from the first attempt
        // on, so that a refused first connection is the recorded cause of
        // the outage.
        let store = RedisCache {
            pool: pool.clone(),
            runtime: runtime.clone(),
            prefix: self.prefix.into(),
            serializer: self.serializer,
            dedupe_writes: self.dedupe_writes,
            options: Options {
                fail_fast: true,
                timeout: Some(self.timeout),
                ..Options::default()
            },
            target: target.into(),
            health: Health::default(),
            last_outage: crate::health::LastOutage::default(),
        };
        store.watch_connections();
        {
            let _enter = runtime.enter();
            let _connections = pool.connect();
        }
        let wait = self.connect_timeout;
        let connected = ac_core::block_on(
            runtime.spawn(async move { tokio::time::timeout(wait, pool.wait_for_connect()).await }),
        );
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
                return Err(Error::invalid_config(format!(
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
            return Err(Error::invalid_config(format!(
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
    let invalid = |what: &str, source: ac_core::BoxError| {
        Error::invalid_config_caused_by(format!("RedisCache for {target}: {what}"), source)
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| invalid("cannot read the CA certificates", e.into()))?;
        roots
            .add(cert)
            .map_err(|e| invalid("unusable CA certificate", e.into()))?;
    }
    if roots.is_empty() {
        return Err(Error::invalid_config(format!(
            "RedisCache for {target}: no certificate in the CA PEM (expected -----BEGIN \
             CERTIFICATE----- blocks)"
        )));
    }
    // The process-wide provider if the application installed one, else
    // ring (what the `tls` feature compiles in).
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(fred::rustls::crypto::ring::default_provider()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS setup", e.into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The process-wide runtime that drives every `RedisCache`'s connections.
fn runtime() -> Result<tokio::runtime::Handle, Error> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ac-redis")
                .enable_all()
                .build()
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
        .map_err(|e| Error::store(NAME, NoRuntime(e)))
}

/// The store's runtime could not start; the source is why (kept once for
/// the process, so borrowed).
#[derive(Debug)]
struct NoRuntime(&'static std::io::Error);

impl fmt::Display for NoRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start the Redis runtime: {}", self.0)
    }
}

impl std::error::Error for NoRuntime {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0)
    }
}

/// Reads a Redis URL into fred's [`Config`] without connecting: the first
/// step of [`RedisCacheBuilder::build`], public (hidden, in
/// [`fuzzing`](crate::fuzzing)) for the fuzz targets.
///
/// # Errors
/// [`Error::InvalidConfig`] for a URL fred cannot read; the message shows
/// the URL as `redact_url` does, never the password.
pub fn config_from_url(url: &str) -> Result<Config, Error> {
    Config::from_url(url).map_err(|e| {
        Error::invalid_config_caused_by(
            format!("RedisCache: cannot read Redis URL {}", redact(url)),
            e,
        )
    })
}

impl RedisCache {
    /// A builder for a store at `url`; see [`RedisCacheBuilder`].
    pub fn builder(url: impl Into<String>) -> RedisCacheBuilder {
        RedisCacheBuilder {
            url: url.into(),
            prefix: String::new(),
            serializer: Arc::new(ac_serde::Json),
            dedupe_writes: false,
            pool_size: 2,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: TlsTrust::System,
            fred_escape_hatch: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = RedisCache::builder("redis://user:hunter2@[bad")
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            RedisCache::builder("redis://h")
                .pool_size(0)
                .build()
                .is_err()
        );
    }
}
