//! [`ObjectCacheBuilder`]: the settings of an [`ObjectCache`], and the
//! backend markers [`S3`], [`Gcs`] and [`AnyStore`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ac_core::{Clock, ClockReader, Error, PreciseClock, Serializer};
use ac_serde::codec::Compression;
use object_store::ObjectStore;

use crate::name::prefix_problem;
use crate::{Inner, ObjectCache, runtime};

/// The smallest multipart part S3 and GCS accept (the last part excepted).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

mod sealed {
    pub trait Sealed {}
}

/// Which service an [`ObjectCache`] talks to: [`S3`], [`Gcs`] or
/// [`AnyStore`]. It names the store in logs, errors and metrics, and picks
/// the client [`ObjectCacheBuilder`] can build.
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    /// The store's name: `"s3"`, `"gcs"` or `"object"`.
    const NAME: &'static str;
    /// object_store's client builder for this service.
    #[doc(hidden)]
    type Client: Send;
    /// Puts the builder's timeouts and retries on the client builder.
    #[doc(hidden)]
    fn with_network(client: Self::Client, network: &Network) -> Self::Client;
    /// Builds the client.
    #[doc(hidden)]
    fn build(client: Self::Client) -> object_store::Result<Arc<dyn ObjectStore>>;
}

/// Amazon S3 (and S3-compatible services), through object_store's
/// `AmazonS3` (feature `s3`).
#[cfg(feature = "s3")]
#[derive(Debug, Clone, Copy)]
pub struct S3;

/// Google Cloud Storage, through object_store's `GoogleCloudStorage`
/// (feature `gcs`).
#[cfg(feature = "gcs")]
#[derive(Debug, Clone, Copy)]
pub struct Gcs;

/// Any [`ObjectStore`] you built yourself (Azure, a local directory,
/// in-memory...), given to [`ObjectCache::from_store`].
#[derive(Debug, Clone, Copy)]
pub struct AnyStore;

/// No client to build: [`AnyStore`] caches are made from a store.
#[doc(hidden)]
#[derive(Debug)]
pub enum NoClient {}

/// The HTTP settings of a client the builder makes.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retries: usize,
    pub(crate) call_timeout: Duration,
    #[cfg_attr(not(any(feature = "s3", feature = "gcs")), allow(dead_code))]
    pub(crate) allow_http: bool,
}

impl Network {
    #[cfg(any(feature = "s3", feature = "gcs"))]
    fn client_options(&self) -> object_store::ClientOptions {
        object_store::ClientOptions::new()
            .with_timeout(self.timeout)
            .with_connect_timeout(self.connect_timeout)
            .with_allow_http(self.allow_http)
    }

    #[cfg(any(feature = "s3", feature = "gcs"))]
    fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.call_timeout,
        }
    }
}

impl sealed::Sealed for AnyStore {}
impl Backend for AnyStore {
    const NAME: &'static str = "object";
    type Client = NoClient;
    fn with_network(client: NoClient, _: &Network) -> NoClient {
        client
    }
    fn build(client: NoClient) -> object_store::Result<Arc<dyn ObjectStore>> {
        match client {}
    }
}

#[cfg(feature = "s3")]
impl sealed::Sealed for S3 {}
#[cfg(feature = "s3")]
impl Backend for S3 {
    const NAME: &'static str = "s3";
    type Client = object_store::aws::AmazonS3Builder;
    fn with_network(client: Self::Client, network: &Network) -> Self::Client {
        client
            .with_client_options(network.client_options())
            .with_retry(network.retry())
    }
    fn build(client: Self::Client) -> object_store::Result<Arc<dyn ObjectStore>> {
        Ok(Arc::new(client.build()?))
    }
}

#[cfg(feature = "gcs")]
impl sealed::Sealed for Gcs {}
#[cfg(feature = "gcs")]
impl Backend for Gcs {
    const NAME: &'static str = "gcs";
    type Client = object_store::gcp::GoogleCloudStorageBuilder;
    fn with_network(client: Self::Client, network: &Network) -> Self::Client {
        client
            .with_client_options(network.client_options())
            .with_retry(network.retry())
    }
    fn build(client: Self::Client) -> object_store::Result<Arc<dyn ObjectStore>> {
        Ok(Arc::new(client.build()?))
    }
}

/// A change to object_store's client builder, applied at build.
type Configure<C> = Box<dyn FnOnce(C) -> C + Send>;

#[cfg_attr(not(any(feature = "s3", feature = "gcs")), allow(dead_code))]
enum Source<K: Backend> {
    /// A client to build, and the caller's own changes to it.
    Build(K::Client, Vec<Configure<K::Client>>),
    /// A store the caller built.
    Store(Arc<dyn ObjectStore>),
}

/// Builds an [`ObjectCache`] ([`S3Cache`](crate::S3Cache),
/// [`GCSCache`](crate::GCSCache) or one over any store). Every setting has
/// a default; [`build`](Self::build) checks them all.
#[must_use = "a builder does nothing until .build()"]
pub struct ObjectCacheBuilder<K: Backend> {
    source: Source<K>,
    bucket: String,
    prefix: String,
    serializer: Arc<dyn Serializer>,
    compress: bool,
    gzip_level: u32,
    multipart_threshold: usize,
    part_size: usize,
    network: Network,
    exclusive_bucket: bool,
    clock: ClockReader,
}

/// Shows the settings, never the credentials of the client builder.
impl<K: Backend> fmt::Debug for ObjectCacheBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCacheBuilder")
            .field("backend", &K::NAME)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("serializer", &self.serializer.name())
            .field("compress", &self.compress)
            .field("gzip_level", &self.gzip_level)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("network", &self.network)
            .field("exclusive_bucket", &self.exclusive_bucket)
            .finish_non_exhaustive()
    }
}

impl<K: Backend> ObjectCacheBuilder<K> {
    fn with_source(source: Source<K>, bucket: String) -> Self {
        Self {
            source,
            bucket,
            prefix: String::new(),
            serializer: Arc::new(ac_serde::Json),
            compress: true,
            gzip_level: 6,
            multipart_threshold: 32 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            network: Network {
                timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(2),
                retries: 2,
                call_timeout: Duration::from_secs(10),
                allow_http: false,
            },
            exclusive_bucket: false,
            clock: ClockReader::new(Arc::new(PreciseClock)),
        }
    }

    #[cfg_attr(not(any(feature = "s3", feature = "gcs")), allow(dead_code))]
    pub(crate) fn from_client(client: K::Client, bucket: String) -> Self {
        Self::with_source(Source::Build(client, Vec::new()), bucket)
    }

    pub(crate) fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        let bucket = store.to_string();
        Self::with_source(Source::Store(store), bucket)
    }

    /// Prepended to every key to make its object name (default none), as
    /// in the Python package: `"v1/"` puts entries under `v1/`. Give each
    /// cache its own prefix: [`clear`](ac_core::Store::clear) and
    /// [`sweep`](ObjectCache::sweep) work on the objects under it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The format of values (default json, which Python reads).
    pub fn serializer(mut self, serializer: impl Serializer) -> Self {
        self.serializer = Arc::new(serializer);
        self
    }

    /// Whether objects are gzip-framed (default yes, as in Python).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The gzip level, 0 to 9 (default 6); checked by `build`.
    pub fn compress_level(mut self, level: u32) -> Self {
        self.gzip_level = level;
        self
    }

    /// Entries larger than this many bytes (after gzip) are written with a
    /// multipart upload (default 32 MiB). `set_if_absent` always writes
    /// with one conditional request.
    pub fn multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// The part size of multipart uploads (default 8 MiB, at least 5 MiB).
    pub fn multipart_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// How long one HTTP request may take (default 5 s). Applies to
    /// clients the builder makes, not to a store given to `from_store`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.network.timeout = timeout;
        self
    }

    /// How long connecting may take (default 2 s). As
    /// [`timeout`](Self::timeout), for clients the builder makes.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.network.connect_timeout = timeout;
        self
    }

    /// Retries of a failed request (default 2, with backoff from 50 ms to
    /// 1 s), for clients the builder makes.
    pub fn retries(mut self, retries: usize) -> Self {
        self.network.retries = retries;
        self
    }

    /// The longest one store call may take, retries included (default
    /// 10 s), for every store: the call then fails with a store error, and
    /// a cached function runs without the cache. `clear` and `sweep` get
    /// this much per listed page and per batch.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.network.call_timeout = timeout;
        self
    }

    /// Says the bucket holds this cache and nothing else, which lets
    /// `clear` and `sweep` work with an empty prefix (default no: they
    /// refuse, rather than walk a bucket shared with other data).
    pub fn exclusive_bucket(mut self, exclusive: bool) -> Self {
        self.exclusive_bucket = exclusive;
        self
    }

    /// The clock expiry is measured with (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = ClockReader::new(Arc::new(clock));
        self
    }

    /// Changes object_store's client builder (any setting it has:
    /// credentials, proxies, TLS roots...), after the builder's own
    /// settings. Ignored for a store given to `from_store`.
    pub fn configure(
        mut self,
        change: impl FnOnce(K::Client) -> K::Client + Send + 'static,
    ) -> Self {
        if let Source::Build(_, changes) = &mut self.source {
            changes.push(Box::new(change));
        }
        self
    }

    /// Checks the settings and makes the client (no request is sent: an
    /// unreachable service does not fail `build`; calls then fail and
    /// cached functions run without the cache).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], naming the problem, for a prefix that
    /// cannot start object names (a leading `/`, an empty, `.` or `..`
    /// segment, a control character, over 958 bytes), a gzip level above
    /// 9, a part size under 5 MiB, a zero threshold or timeout, or a
    /// client object_store cannot build (a missing region or bucket...).
    pub fn build(self) -> Result<ObjectCache<K>, Error> {
        let name = K::NAME;
        let invalid = |what: String| {
            Error::invalid_config(format!("{name} cache for bucket {:?}: {what}", self.bucket))
        };
        if let Some(problem) = prefix_problem(&self.prefix) {
            return Err(invalid(format!("prefix {:?} {problem}", self.prefix)));
        }
        let compression = if self.compress {
            Compression::gzip(self.gzip_level).map_err(|e| invalid(e.to_string()))?
        } else {
            Compression::None
        };
        if self.part_size < MIN_PART_SIZE {
            return Err(invalid(format!(
                "multipart part size {} is under the services' minimum of {MIN_PART_SIZE} bytes",
                self.part_size
            )));
        }
        if self.multipart_threshold == 0 {
            return Err(invalid("multipart threshold must be positive".into()));
        }
        let network = &self.network;
        if network.timeout.is_zero()
            || network.connect_timeout.is_zero()
            || network.call_timeout.is_zero()
        {
            return Err(invalid("timeouts must be positive".into()));
        }
        let store = match self.source {
            Source::Store(store) => store,
            Source::Build(client, changes) => {
                #[cfg(feature = "http")]
                ensure_crypto_provider();
                let client = K::with_network(client, network);
                let client = changes
                    .into_iter()
                    .fold(client, |client, change| change(client));
                K::build(client).map_err(|e| invalid(format!("cannot build the client: {e}")))?
            }
        };
        Ok(ObjectCache::from_inner(Inner {
            store,
            name,
            bucket: self.bucket,
            prefix: self.prefix,
            serializer: self.serializer,
            compression,
            multipart_threshold: self.multipart_threshold,
            part_size: self.part_size,
            call_timeout: self.network.call_timeout,
            exclusive_bucket: self.exclusive_bucket,
            clock: self.clock,
            metadata: AtomicBool::new(true),
            runtime: runtime()?,
        }))
    }
}

/// Installs rustls's ring provider as the process's default crypto
/// provider, unless one is installed already. This crate builds
/// object_store's HTTP client on ring (the provider the rest of
/// advanced-caching uses) without choosing it at compile time, so that an
/// application whose other crates enable rustls's aws-lc-rs does not end
/// with two providers and none chosen (rustls, reqwest and fred then
/// panic). [`ObjectCacheBuilder::build`] calls it; call it yourself before
/// building object_store clients of your own (`AmazonS3Builder`,
/// `GoogleCloudStorageBuilder`) ahead of any cache.
#[cfg(feature = "http")]
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(feature = "s3")]
impl ObjectCacheBuilder<S3> {
    /// The AWS region (default: from the environment, `AWS_REGION`, else
    /// `us-east-1`).
    pub fn region(self, region: impl Into<String>) -> Self {
        let region = region.into();
        self.configure(move |c| c.with_region(region))
    }

    /// The endpoint of an S3-compatible service, e.g.
    /// `http://127.0.0.1:9000` (default: AWS's, or `AWS_ENDPOINT`).
    pub fn endpoint(self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        self.configure(move |c| c.with_endpoint(endpoint))
    }

    /// Static credentials (default: object_store's chain: environment,
    /// web identity, ECS, instance metadata).
    pub fn credentials(
        self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        let (id, secret) = (access_key_id.into(), secret_access_key.into());
        self.configure(move |c| c.with_access_key_id(id).with_secret_access_key(secret))
    }
}

#[cfg(feature = "gcs")]
impl ObjectCacheBuilder<Gcs> {
    /// The service's base URL (default GCS's own), e.g. an emulator's.
    pub fn base_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.configure(move |c| c.with_base_url(&url))
    }

    /// A service account key file (default: from the environment,
    /// `GOOGLE_SERVICE_ACCOUNT` / application default credentials).
    pub fn service_account_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.configure(move |c| c.with_service_account_path(path))
    }

    /// A fixed OAuth bearer token instead of service account credentials.
    pub fn bearer_token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.configure(move |c| c.with_bearer_token(token))
    }
}

#[cfg(any(feature = "s3", feature = "gcs"))]
impl<K: Backend> ObjectCacheBuilder<K> {
    /// Allows plain `http://` endpoints (default no), e.g. a local
    /// emulator.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.network.allow_http = allow;
        self
    }
}
