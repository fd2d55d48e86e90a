//! [`S3Cache`] and [`GCSCache`]: the object-store backends of
//! [advanced-caching](https://docs.rs/advanced-caching), on
//! [object_store](https://docs.rs/object_store), for large values and
//! cheap durable storage, usually as the last level of a `ChainCache`.
//!
//! Features: `s3` ([`S3Cache::builder`], object_store's AWS client) and
//! `gcs` ([`GCSCache::builder`], its GCP client), both over reqwest with
//! rustls on ring (see [`ensure_crypto_provider`]); without either nothing
//! of the HTTP clients is compiled and [`ObjectCache::from_store`] takes any
//! [`ObjectStore`] you built yourself (Azure, a local directory, memory).
//!
//! ```no_run
//! # #[cfg(feature = "s3")]
//! # fn main() -> Result<(), ac_core::Error> {
//! use ac_store_object::S3Cache;
//!
//! // Region, credentials and endpoint from the environment (AWS_REGION,
//! // AWS_ACCESS_KEY_ID, ...), as object_store's AmazonS3Builder::from_env.
//! let store = S3Cache::builder("myapp-cache").prefix("v1/").build()?;
//! # let _ = store; Ok(()) }
//! # #[cfg(not(feature = "s3"))] fn main() {}
//! ```
//!
//! # Objects
//! An entry is the object `prefix + key`, holding the byte stores' entry
//! format ([`ac_serde::codec`]) gzip-framed by default: what the Python
//! package's `S3Cache` and `GCSCache` write, so both read each other's
//! entries. A key of letters, digits, `!$&'()+,-.:;=@_`, non-ASCII
//! characters and `/` between real segments is its own name, as in Python;
//! any other key (`..` segments, control characters, spaces, an empty key)
//! is escaped, and a name over the services' 1024 bytes is hashed: names
//! never collide and never hold `.`/`..` segments.
//!
//! # Expiry
//! Object stores do not expire objects. Each object carries its keep-until
//! time (the ttl it was written with, stale window included) in the
//! metadata field `ac-keep-until` (`x-amz-meta-…` / `x-goog-meta-…`); an
//! object without it (written by Python) lives while it is fresh. An
//! expired object reads as a miss and the read deletes it in the
//! background (a write landing between that read and the delete is lost:
//! one more miss). [`ObjectCache::sweep`] deletes the expired entries under
//! the prefix. Add a bucket lifecycle rule as well, so that entries never
//! read again are reclaimed: expire objects under the prefix some days
//! after creation (longer than your longest ttl), e.g. on S3
//! `{"Rules": [{"ID": "cache", "Status": "Enabled", "Filter": {"Prefix":
//! "v1/"}, "Expiration": {"Days": 7}}]}`, on GCS `{"rule": [{"action":
//! {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["v1/"]}}]}`.
//!
//! # Writes
//! `set` is one PUT (a multipart upload above
//! [`multipart_threshold`](ObjectCacheBuilder::multipart_threshold)).
//! `set_if_absent` is a conditional create (`If-None-Match: *` on S3,
//! `ifGenerationMatch=0` on GCS), atomic across processes: of concurrent
//! creators exactly one wins. An expired entry in the way is replaced with
//! a conditional update on its version, so two processes cannot both
//! replace it. (The Python package checks, then writes: a race.)
//!
//! # Failures
//! An unreachable or slow service fails a call within the
//! [`call_timeout`](ObjectCacheBuilder::call_timeout) (default 10 s, with
//! per-request timeouts and bounded retries below it); the caching
//! policy then runs the function and counts the error. A corrupt, foreign
//! or truncated object is [`Error::Corrupt`]: a miss plus an error metric.
//! `delete` of a missing key is `Ok` on every service. Errors keep
//! object_store's error as their source.
//!
//! # Clear
//! `clear` lists the prefix, reads the first bytes of each object, and
//! deletes those that are entries (bulk `DeleteObjects` on S3), nothing
//! else. It refuses an empty prefix unless the bucket is the cache's alone
//! ([`exclusive_bucket`](ObjectCacheBuilder::exclusive_bucket)).
//!
//! The store drives its own small Tokio runtime (one worker thread shared
//! by every object cache of the process), so it works from plain threads
//! and from any async runtime.
#![forbid(unsafe_code)]

mod builder;
mod name;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ac_core::{BoxFuture, ClockReader, Decoder, Entry, Error, Serializer, Store};
use ac_serde::codec::{Compression, MAX_INFLATED, decode_entry, decode_header, encode_entry};
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, UpdateVersion,
};

#[cfg(feature = "gcs")]
pub use builder::Gcs;
#[cfg(feature = "s3")]
pub use builder::S3;
#[cfg(feature = "http")]
pub use builder::ensure_crypto_provider;
pub use builder::{AnyStore, Backend, MIN_PART_SIZE, ObjectCacheBuilder};
pub use object_store;

/// The metadata field that holds an object's keep-until time.
pub const KEEP_UNTIL: &str = "ac-keep-until";

/// Bytes read from each object by `clear` and `sweep` to recognize an
/// entry: enough for gzip to inflate the 16-byte header.
const HEADER_PREFIX: u64 = 4096;

/// Concurrent requests of batch operations.
const CONCURRENCY: usize = 16;

/// Attempts of `set_if_absent` against writers replacing the same object.
const ATTEMPTS: usize = 4;

/// A cache in an object store bucket. Clones share the client.
///
/// `K` says which service: [`S3Cache`] and [`GCSCache`] are the
/// aliases with a builder; `ObjectCache<AnyStore>` is one over any store
/// ([`ObjectCache::from_store`]):
///
/// ```
/// use std::sync::Arc;
/// use ac_core::{Entry, Store, TypedDecoder, Value, block_on};
/// use ac_store_object::{AnyStore, ObjectCache};
/// use object_store::memory::InMemory;
///
/// let store = ObjectCache::<AnyStore>::from_store(Arc::new(InMemory::new()))
///     .prefix("v1/")
///     .build()?;
/// block_on(store.set("k", Entry::new(Value::new(7u32), f64::INFINITY, 0.0), None))?;
/// let hit = block_on(store.get("k", &TypedDecoder::<u32>::new()))?.unwrap();
/// assert_eq!(hit.value.downcast_ref::<u32>(), Some(&7));
/// assert_eq!(store.object_name("k"), "v1/k");
/// # Ok::<(), ac_core::Error>(())
/// ```
///
/// object_store's `LocalFileSystem` stores no metadata and has no
/// conditional update: over it entries live while fresh (no stale window
/// is kept) and replacing an expired `set_if_absent` entry is a delete
/// and a create; prefer `LocalFileCache` for local directories.
pub struct ObjectCache<K: Backend = AnyStore> {
    inner: Arc<Inner>,
    backend: PhantomData<fn() -> K>,
}

/// An [`ObjectCache`] on Amazon S3 or an S3-compatible service.
///
/// ```no_run
/// # fn main() -> Result<(), ac_core::Error> {
/// use std::time::Duration;
/// use ac_store_object::S3Cache;
///
/// let store = S3Cache::builder("myapp-cache")
///     .region("eu-west-1")
///     .prefix("v1/")
///     .timeout(Duration::from_secs(2))
///     .build()?;
/// # let _ = store; Ok(()) }
/// ```
#[cfg(feature = "s3")]
pub type S3Cache = ObjectCache<S3>;

/// An [`ObjectCache`] on Google Cloud Storage.
///
/// ```no_run
/// # fn main() -> Result<(), ac_core::Error> {
/// use ac_store_object::GCSCache;
///
/// let store = GCSCache::builder("myapp-cache").prefix("v1/").build()?;
/// # let _ = store; Ok(()) }
/// ```
#[cfg(feature = "gcs")]
pub type GCSCache = ObjectCache<Gcs>;

struct Inner {
    store: Arc<dyn ObjectStore>,
    name: &'static str,
    /// The bucket (or the store's description), for `Debug`.
    bucket: String,
    prefix: String,
    serializer: Arc<dyn Serializer>,
    compression: Compression,
    multipart_threshold: usize,
    part_size: usize,
    call_timeout: Duration,
    exclusive_bucket: bool,
    clock: ClockReader,
    /// Whether the store takes metadata (object_store's LocalFileSystem
    /// does not): cleared at the first refusal.
    metadata: AtomicBool,
    runtime: tokio::runtime::Handle,
}

impl<K: Backend> Clone for ObjectCache<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            backend: PhantomData,
        }
    }
}

impl<K: Backend> fmt::Debug for ObjectCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("ObjectCache")
            .field("backend", &inner.name)
            .field("bucket", &inner.bucket)
            .field("prefix", &inner.prefix)
            .field("serializer", &inner.serializer.name())
            .field("compression", &inner.compression)
            .field("call_timeout", &inner.call_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "s3")]
impl ObjectCache<S3> {
    /// A builder for `bucket`, with region, credentials and endpoint read
    /// from the environment as object_store's `AmazonS3Builder::from_env`
    /// does (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, ...).
    pub fn builder(bucket: impl Into<String>) -> ObjectCacheBuilder<S3> {
        let bucket = bucket.into();
        let client = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
        ObjectCacheBuilder::from_client(client, bucket)
    }
}

#[cfg(feature = "gcs")]
impl ObjectCache<Gcs> {
    /// A builder for `bucket`, with credentials read from the environment
    /// as object_store's `GoogleCloudStorageBuilder::from_env` does
    /// (`GOOGLE_SERVICE_ACCOUNT`, application default credentials, ...).
    pub fn builder(bucket: impl Into<String>) -> ObjectCacheBuilder<Gcs> {
        let bucket = bucket.into();
        let client =
            object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
        ObjectCacheBuilder::from_client(client, bucket)
    }
}

impl<K: Backend> ObjectCache<K> {
    /// A builder over a store you built (its own timeouts and retries
    /// apply; [`call_timeout`](ObjectCacheBuilder::call_timeout) still
    /// bounds every call).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> ObjectCacheBuilder<K> {
        ObjectCacheBuilder::from_store(store)
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
            backend: PhantomData,
        }
    }

    /// The object store, for requests of your own.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The prefix of object names.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The object name `key` is stored under.
    pub fn object_name(&self, key: &str) -> String {
        name::object_name(&self.inner.prefix, key)
    }

    /// Deletes the expired entries under the prefix; returns how many.
    /// Objects that are not entries stay.
    ///
    /// # Errors
    /// A store error if listing or deleting fails;
    /// [`Error::InvalidConfig`] for an empty prefix on a bucket not marked
    /// [`exclusive_bucket`](ObjectCacheBuilder::exclusive_bucket).
    pub async fn sweep(&self) -> Result<usize, Error> {
        let inner = self.inner.clone();
        self.inner.checked_scope("sweep")?;
        let task = self.inner.runtime.spawn(async move {
            let now = inner.clock.now();
            let expired: Vec<Path> = inner
                .entries()
                .await?
                .into_iter()
                .filter(|found| !found.is_live(now))
                .map(|found| found.path)
                .collect();
            inner.delete_all(expired).await
        });
        join(self.inner.name, task).await
    }
}

/// An entry object found by `clear` or `sweep`.
struct Found {
    path: Path,
    keep_until: Option<f64>,
    fresh_until: f64,
}

impl Found {
    fn is_live(&self, now: f64) -> bool {
        is_live(self.keep_until, self.fresh_until, now)
    }
}

/// `bytes` (an encoded entry) changed so that it differs from any other
/// write with high probability, and still decodes to the same entry: a
/// random gzip header MTIME (which readers, Python's included, ignore),
/// or, unframed, `created_at` moved by 1 to 1024 ULPs (under a
/// millisecond).
fn distinct(bytes: &Bytes, compression: Compression) -> Bytes {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nonce = hasher.finish();
    let mut out = bytes.to_vec();
    match compression {
        // RFC 1952: ID1 ID2 CM FLG, then MTIME in bytes 4..8.
        Compression::Gzip { .. } if out.len() >= 10 => {
            out[4..8].copy_from_slice(&nonce.to_le_bytes()[..4]);
        }
        _ => {
            if let Some(created) = out.get_mut(8..16) {
                let at = f64::from_be_bytes(created.try_into().unwrap_or([0; 8]));
                if at.is_finite() && at > 0.0 {
                    let moved = f64::from_bits(at.to_bits() + 1 + nonce % 1024);
                    created.copy_from_slice(&moved.to_be_bytes());
                }
            }
        }
    }
    Bytes::from(out)
}

/// Whether an entry is live at `now`: until its keep-until time if the
/// object has one, else (written by Python) while fresh.
fn is_live(keep_until: Option<f64>, fresh_until: f64, now: f64) -> bool {
    match keep_until {
        Some(keep_until) => now < keep_until,
        None => now < fresh_until,
    }
}

/// A call that took longer than the store's call timeout.
#[derive(Debug)]
struct TimedOut {
    operation: &'static str,
    after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} took longer than {:?}", self.operation, self.after)
    }
}

impl std::error::Error for TimedOut {}

/// What a read brought back.
struct Fetched {
    bytes: Bytes,
    keep_until: Option<f64>,
}

fn keep_until_of(attributes: &Attributes) -> Option<f64> {
    let value = attributes.get(&Attribute::Metadata(KEEP_UNTIL.into()))?;
    value.parse::<f64>().ok().filter(|t| !t.is_nan())
}

fn is_not_found(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. })
}

/// The process-wide runtime that drives every object cache's requests.
fn runtime() -> Result<tokio::runtime::Handle, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ac-object")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
        .map_err(|e| {
            Error::store(
                "object",
                format!("cannot start the object store runtime: {e}"),
            )
        })
}

/// Awaits a task of the store's runtime.
async fn join<T>(
    name: &'static str,
    task: tokio::task::JoinHandle<Result<T, Error>>,
) -> Result<T, Error> {
    task.await
        .unwrap_or_else(|join| Err(Error::store(name, join)))
}

impl Inner {
    fn error(&self, error: object_store::Error) -> Error {
        Error::store(self.name, error)
    }

    fn path(&self, key: &str) -> Path {
        // Names are valid paths by construction (see `name`); `from` would
        // re-encode them, `parse` keeps them as they are.
        let name = name::object_name(&self.prefix, key);
        Path::parse(&name).unwrap_or_else(|_| Path::from(name))
    }

    /// The keep-until time of an entry written now for `ttl`, as the
    /// metadata value: the one place a store ttl is read.
    fn keep_until(&self, ttl: Option<Duration>) -> String {
        match ttl {
            Some(ttl) => format!("{:.3}", self.clock.now() + ttl.as_secs_f64()),
            None => "inf".to_owned(),
        }
    }

    fn encode(&self, entry: &Entry) -> Result<Vec<u8>, Error> {
        encode_entry(entry, &*self.serializer, self.compression)
    }

    /// Runs `operation` on the store's runtime within the call timeout.
    fn run<T: Send + 'static>(
        self: &Arc<Self>,
        what: &'static str,
        operation: impl FnOnce(Arc<Self>) -> BoxFuture<'static, Result<T, Error>> + Send + 'static,
    ) -> impl Future<Output = Result<T, Error>> + Send + 'static {
        let this = self.clone();
        let (name, after) = (self.name, self.call_timeout);
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(after, operation(this)).await {
                Ok(result) => result,
                Err(_) => Err(Error::store(
                    name,
                    TimedOut {
                        operation: what,
                        after,
                    },
                )),
            }
        });
        join(name, task)
    }

    /// `future` within the call timeout, for the steps of long operations.
    async fn within<T>(
        &self,
        what: &'static str,
        future: impl Future<Output = T>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.call_timeout, future)
            .await
            .map_err(|_| {
                Error::store(
                    self.name,
                    TimedOut {
                        operation: what,
                        after: self.call_timeout,
                    },
                )
            })
    }

    /// GET `path`: the bytes and keep-until time, `None` if absent.
    async fn fetch(&self, path: &Path) -> Result<Option<Fetched>, Error> {
        let result = match self.store.get_opts(path, GetOptions::default()).await {
            Ok(result) => result,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        if result.meta.size > MAX_INFLATED {
            return Err(Error::corrupt(format!(
                "{}: {} bytes, more than an entry may hold",
                result.meta.location, result.meta.size
            )));
        }
        let keep_until = keep_until_of(&result.attributes);
        let bytes = match result.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        Ok(Some(Fetched { bytes, keep_until }))
    }

    /// Deletes `path` in the background: an expired entry a read found.
    fn delete_later(self: &Arc<Self>, path: Path) {
        let this = self.clone();
        self.runtime.spawn(async move {
            // A let chain would need Rust 1.88; this crate declares 1.86.
            match this.within("delete", this.store.delete(&path)).await {
                Ok(Err(error)) if !is_not_found(&error) => {
                    tracing::debug!(target: "advanced_caching::object", %error, "could not delete an expired entry");
                }
                _ => {}
            }
        });
    }

    fn attributes(&self, keep_until: &str) -> Attributes {
        let mut attributes = Attributes::new();
        if self.metadata.load(Ordering::Relaxed) {
            attributes.insert(
                Attribute::Metadata(KEEP_UNTIL.into()),
                keep_until.to_owned().into(),
            );
        }
        attributes
    }

    /// PUT `bytes` at `path` in `mode`, with the keep-until metadata (or
    /// without, on a store that refuses metadata). Large overwrites go up
    /// in parts.
    async fn put(
        &self,
        path: &Path,
        bytes: Bytes,
        keep_until: &str,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        loop {
            let attributes = self.attributes(keep_until);
            let with_metadata = !attributes.is_empty();
            let result = if bytes.len() > self.multipart_threshold && mode == PutMode::Overwrite {
                self.put_parts(path, bytes.clone(), attributes).await
            } else {
                let options = PutOptions {
                    mode: mode.clone(),
                    attributes,
                    ..PutOptions::default()
                };
                self.store
                    .put_opts(path, PutPayload::from(bytes.clone()), options)
                    .await
                    .map(drop)
            };
            match result {
                Err(object_store::Error::NotImplemented { operation, .. })
                    if with_metadata && operation.contains("attributes") =>
                {
                    self.metadata.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        target: "advanced_caching::object",
                        store = %self.store,
                        "object store takes no metadata: entries live while fresh, without a stale window",
                    );
                }
                other => return other,
            }
        }
    }

    /// A multipart upload of `bytes`, aborted if any part fails.
    async fn put_parts(
        &self,
        path: &Path,
        bytes: Bytes,
        attributes: Attributes,
    ) -> Result<(), object_store::Error> {
        let options = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let mut upload = self.store.put_multipart_opts(path, options).await?;
        let parts: Vec<_> = (0..bytes.len())
            .step_by(self.part_size)
            .map(|start| {
                let end = (start + self.part_size).min(bytes.len());
                upload.put_part(PutPayload::from(bytes.slice(start..end)))
            })
            .collect();
        let sent = futures_util::stream::iter(parts)
            .buffer_unordered(4)
            .try_collect::<Vec<()>>()
            .await;
        match sent {
            Ok(_) => upload.complete().await.map(drop),
            Err(error) => {
                let _ = upload.abort().await;
                Err(error)
            }
        }
    }

    /// The conditional create of `set_if_absent`, replacing an expired
    /// entry (or a foreign object) with a conditional update.
    async fn create(&self, path: &Path, bytes: Bytes, keep_until: &str) -> Result<bool, Error> {
        for _ in 0..ATTEMPTS {
            match self
                .put(path, bytes.clone(), keep_until, PutMode::Create)
                .await
            {
                Ok(()) => return Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(self.error(e)),
            }
            let head = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            let existing = match self.store.get_opts(path, head).await {
                Ok(existing) => existing,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(self.error(e)),
            };
            let now = self.clock.now();
            let live = match keep_until_of(&existing.attributes) {
                Some(keep_until) => now < keep_until,
                // Written by Python: live while fresh, per its header.
                None => match self.fetch(path).await? {
                    None => continue,
                    Some(found) => self
                        .header(&found.bytes)
                        .is_some_and(|(fresh_until, _)| now < fresh_until),
                },
            };
            if live {
                return Ok(false);
            }
            let version = UpdateVersion {
                e_tag: existing.meta.e_tag.clone(),
                version: existing.meta.version.clone(),
            };
            // S3 matches on the ETag, the MD5 of the body: if our bytes
            // equalled the expired object's, a second racer's update on that
            // ETag would also succeed after ours. Make ours differ.
            let replacement = distinct(&bytes, self.compression);
            match self
                .put(path, replacement, keep_until, PutMode::Update(version))
                .await
            {
                Ok(()) => return Ok(true),
                // Replaced or deleted meanwhile: look again.
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::NotFound { .. },
                ) => {}
                // No conditional update here (LocalFileSystem): delete the
                // expired entry and create again.
                Err(object_store::Error::NotImplemented { .. }) => {
                    match self.store.delete(path).await {
                        Err(e) if !is_not_found(&e) => return Err(self.error(e)),
                        _ => {}
                    }
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        // Others keep replacing the entry: one of them holds it.
        Ok(false)
    }

    /// The `(fresh_until, created_at)` of bytes that plausibly are an
    /// entry, framed as this store writes or the other way: a header that
    /// decodes, created since 1973 and before 5138, fresh no earlier than
    /// created. Only such objects are deleted by `clear` and `sweep`.
    fn header(&self, bytes: &[u8]) -> Option<(f64, f64)> {
        let other = match self.compression {
            Compression::None => Compression::GZIP,
            Compression::Gzip { .. } => Compression::None,
        };
        [self.compression, other]
            .into_iter()
            .find_map(|compression| {
                let (fresh_until, created_at) = decode_header(bytes, compression).ok()?;
                let plausible = (1e8..1e11).contains(&created_at) && fresh_until >= created_at;
                plausible.then_some((fresh_until, created_at))
            })
    }

    /// Refuses `clear` and `sweep` on a whole shared bucket.
    fn checked_scope(&self, operation: &str) -> Result<(), Error> {
        if self.prefix.is_empty() && !self.exclusive_bucket {
            return Err(Error::invalid_config(format!(
                "{} cache for {}: {operation} refuses to run without a prefix, as it would walk \
                 the whole bucket; set .prefix(..), or .exclusive_bucket(true) if the bucket \
                 holds this cache alone",
                self.name, self.bucket
            )));
        }
        Ok(())
    }

    /// The entry objects under the prefix.
    async fn entries(&self) -> Result<Vec<Found>, Error> {
        // Listing goes by whole segments: list the prefix's directory and
        // keep the names that start with the prefix.
        let dir = self.prefix.rfind('/').map_or("", |i| &self.prefix[..i]);
        let dir = Path::parse(dir).map_err(|e| self.error(e.into()))?;
        let mut listing = self.store.list(Some(&dir));
        let mut candidates: Vec<ObjectMeta> = Vec::new();
        while let Some(meta) = self.within("list", listing.next()).await? {
            let meta = meta.map_err(|e| self.error(e))?;
            if meta.location.as_ref().starts_with(&self.prefix) && meta.size > 0 {
                candidates.push(meta);
            }
        }
        let found = futures_util::stream::iter(candidates)
            .map(|meta| async move {
                let options = GetOptions {
                    range: Some(GetRange::Bounded(0..HEADER_PREFIX.min(meta.size))),
                    ..GetOptions::default()
                };
                let read = async {
                    let result = self.store.get_opts(&meta.location, options).await?;
                    let keep_until = keep_until_of(&result.attributes);
                    Ok::<_, object_store::Error>((result.bytes().await?, keep_until))
                };
                match self.within("read", read).await? {
                    Ok((bytes, keep_until)) => {
                        Ok(self.header(&bytes).map(|(fresh_until, _)| Found {
                            path: meta.location,
                            keep_until,
                            fresh_until,
                        }))
                    }
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(self.error(e)),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<Option<Found>>>()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Deletes `paths` (in bulk where the service can); returns how many
    /// were deleted. Missing objects are fine.
    async fn delete_all(&self, paths: Vec<Path>) -> Result<usize, Error> {
        let count = paths.len();
        let locations = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(locations);
        let mut missing = 0;
        while let Some(result) = self.within("delete", results.next()).await? {
            match result {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => missing += 1,
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(count - missing)
    }
}

/// Objects hold values serialized: cached values must be serde.
impl<K: Backend> ac_core::ByteStore for ObjectCache<K> {}

impl<K: Backend> Store for ObjectCache<K> {
    fn name(&self) -> &'static str {
        self.inner.name
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        let path = self.inner.path(key);
        let read = {
            let path = path.clone();
            self.inner.run("get", move |inner| {
                Box::pin(async move { inner.fetch(&path).await })
            })
        };
        Box::pin(async move {
            let Some(found) = read.await? else {
                return Ok(None);
            };
            let inner = &self.inner;
            let corrupt = |e: Error| match e {
                Error::Corrupt {
                    reason,
                    source: Some(source),
                    ..
                } => Error::corrupt_caused_by(format!("{path}: {reason}"), source),
                Error::Corrupt { reason, .. } => Error::corrupt(format!("{path}: {reason}")),
                other => other,
            };
            let now = inner.clock.now();
            let live = match found.keep_until {
                Some(keep_until) => now < keep_until,
                None => {
                    let (fresh_until, _) =
                        decode_header(&found.bytes, inner.compression).map_err(corrupt)?;
                    now < fresh_until
                }
            };
            if !live {
                inner.delete_later(path);
                return Ok(None);
            }
            decode_entry(&found.bytes, &*inner.serializer, decoder, inner.compression)
                .map(Some)
                .map_err(corrupt)
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let encoded = self.inner.encode(&entry);
        let (path, keep_until) = (self.inner.path(key), self.inner.keep_until(ttl));
        let inner = &self.inner;
        Box::pin(async move {
            let bytes = Bytes::from(encoded?);
            inner
                .run("set", move |inner| {
                    Box::pin(async move {
                        inner
                            .put(&path, bytes, &keep_until, PutMode::Overwrite)
                            .await
                            .map_err(|e| inner.error(e))
                    })
                })
                .await
        })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let encoded = self.inner.encode(&entry);
        let (path, keep_until) = (self.inner.path(key), self.inner.keep_until(ttl));
        let inner = &self.inner;
        Box::pin(async move {
            let bytes = Bytes::from(encoded?);
            inner
                .run("set_if_absent", move |inner| {
                    Box::pin(async move { inner.create(&path, bytes, &keep_until).await })
                })
                .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let path = self.inner.path(key);
        Box::pin(self.inner.run("delete", move |inner| {
            Box::pin(async move {
                match inner.store.delete(&path).await {
                    // GCS answers NotFound, S3 Ok: the same to callers.
                    Err(e) if !is_not_found(&e) => Err(inner.error(e)),
                    _ => Ok(()),
                }
            })
        }))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.inner.checked_scope("clear")?;
            let inner = self.inner.clone();
            let task = self.inner.runtime.spawn(async move {
                let entries = inner.entries().await?;
                inner
                    .delete_all(entries.into_iter().map(|found| found.path).collect())
                    .await
                    .map(drop)
            });
            join(self.inner.name, task).await
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>, Error>> {
        let reads: Vec<BoxFuture<'a, _>> = keys.iter().map(|key| self.get(key, decoder)).collect();
        Box::pin(async move {
            futures_util::stream::iter(reads)
                .buffered(CONCURRENCY)
                .try_collect()
                .await
        })
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(&'a str, Entry)>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let writes: Vec<BoxFuture<'a, _>> = entries
            .into_iter()
            .map(|(key, entry)| self.set(key, entry, ttl))
            .collect();
        Box::pin(async move {
            futures_util::stream::iter(writes)
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ac_core::conformance::{Harness, run_all};
    use ac_core::{Clock, TypedDecoder, Value, block_on};
    use ac_sched::ManualClock;
    use object_store::memory::InMemory;

    fn memory_cache(store: Arc<dyn ObjectStore>, prefix: &str, clock: &ManualClock) -> ObjectCache {
        ObjectCache::<AnyStore>::from_store(store)
            .prefix(prefix)
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    #[test]
    fn conformance_over_object_stores_in_memory_store() {
        let clock = ManualClock::new(1_700_000_000.0);
        let shared: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = memory_cache(shared.clone(), "c/", &clock);
        let sibling = memory_cache(shared, "c-sibling/", &clock);
        run_all(&Harness {
            store: &store,
            advance: Some(&|secs| clock.advance(secs)),
            sibling: Some(&sibling),
        });
    }

    #[test]
    fn distinct_bytes_decode_to_the_same_entry() {
        let entry = Entry::new(Value::new(String::from("v")), 1.7e9 + 60.0, 1.7e9);
        for compression in [Compression::GZIP, Compression::None] {
            let bytes = Bytes::from(encode_entry(&entry, &ac_serde::Json, compression).unwrap());
            let (a, b) = (distinct(&bytes, compression), distinct(&bytes, compression));
            assert!(a != bytes && b != bytes && a != b, "{compression:?}");
            let decoded = decode_entry(
                &a,
                &ac_serde::Json,
                &TypedDecoder::<String>::new(),
                compression,
            )
            .unwrap();
            assert_eq!(
                decoded.value.downcast_ref::<String>().map(String::as_str),
                Some("v")
            );
            assert_eq!(decoded.fresh_until, entry.fresh_until);
            assert!((decoded.created_at - entry.created_at).abs() < 1e-3);
        }
    }

    #[test]
    fn bad_settings_are_refused_at_build_naming_the_problem() {
        let store = || ObjectCache::<AnyStore>::from_store(Arc::new(InMemory::new()));
        let err = store().prefix("/v1/").build().unwrap_err().to_string();
        assert!(err.contains("leading slash"), "{err}");
        let err = store().compress_level(12).build().unwrap_err().to_string();
        assert!(err.contains("0 to 9"), "{err}");
        let err = store()
            .multipart_part_size(1024)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("part size"), "{err}");
        let err = store()
            .call_timeout(Duration::ZERO)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive"), "{err}");
    }

    #[test]
    fn clear_and_sweep_refuse_an_empty_prefix_unless_the_bucket_is_exclusive() {
        let clock = ManualClock::new(1_700_000_000.0);
        let shared: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = memory_cache(shared.clone(), "", &clock);
        let err = block_on(store.clear()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(block_on(store.sweep()).is_err());
        let exclusive = ObjectCache::<AnyStore>::from_store(shared)
            .exclusive_bucket(true)
            .clock(clock.clone())
            .build()
            .unwrap();
        let entry = Entry::new(Value::new(1u8), clock.now() + 5.0, clock.now());
        block_on(exclusive.set("k", entry, Some(Duration::from_secs(5)))).unwrap();
        block_on(exclusive.clear()).unwrap();
        assert!(
            block_on(exclusive.get("k", &TypedDecoder::<u8>::new()))
                .unwrap()
                .is_none()
        );
    }
}
