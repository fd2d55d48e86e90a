//! [`LocalFileCache`]: a per-host [`Store`] of one file per key, which the
//! Python `advanced-caching` package's `LocalFileCache` can share.
//!
//! # Files
//! A file holds the entry in the byte stores' format
//! ([`ac_serde::codec`]), gzip-framed by default, as the Python package
//! writes it. A key of ASCII letters, digits and `:_-.` (not starting with
//! a dot) is its own file name, as in Python, so both share entries; any
//! other key is escaped so that names never collide (`a/b` and `a_b` are
//! two files) and never leave the directory (`../../x`, absolute paths,
//! NUL, 1 KiB keys all work). Names are case-sensitive: on a
//! case-insensitive file system (macOS and Windows defaults) keys that
//! differ only in case share a file; use such a directory only with keys
//! that do not.
//!
//! # Writes
//! A write goes to a unique temporary file in the same directory (its name
//! starts with a dot), is fsynced, then renamed over the entry: readers see
//! the old file or the new one, never a torn one, with any number of
//! writers in any number of processes. `set_if_absent` holds an advisory
//! lock (`.ac-lock`) across its check and write, across processes too.
//!
//! # Expiry
//! The store keeps an entry for the ttl it was written with, stale window
//! included, so stale-while-revalidate can serve it (the Python package
//! deletes stale files). The file format has no room for that time, so it
//! is the file's modification time: the keep-until time rounded up to the
//! second, marked by a fixed sub-second part (271828182 ns). A file without
//! the mark (written by Python, or on a file system without nanosecond
//! times) lives as in Python: while `now < fresh_until`. Expired files are
//! invisible; [`LocalFileCache::sweep`] deletes them.
//!
//! # Clear
//! [`Store::clear`] deletes the files in the directory that decode as
//! cache entries and nothing else: other files, subdirectories and other
//! writers' temporary files stay.
//!
//! File I/O runs on the calling thread (also inside the `async` store
//! methods): entries are small and usually in the page cache.
#![forbid(unsafe_code)]

mod name;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ac_core::{
    BoxFuture, Clock, ClockReader, CoarseClock, Decoder, Entry, Error, Serializer, Store,
};
use ac_serde::Json;
use ac_serde::codec::{Compression, decode_entry, decode_header, encode_entry};

use name::{file_name, is_entry_name};

/// The name of the lock file `set_if_absent` holds.
const LOCK_FILE: &str = ".ac-lock";

/// Keep-until of entries stored without a ttl: 2200-01-01 (file systems
/// store modification times up to at least 2038, ext4 and XFS far beyond).
const NEVER: u64 = 7_258_118_400;

/// Bytes read to check a file's header: enough for gzip to inflate 16.
const HEADER_PREFIX: usize = 4096;

/// The sub-second part of a modification time that is a keep-until time.
const MARK_NANOS: u32 = 271_828_182;

/// A cache of one file per key in a directory, built with
/// [`LocalFileCache::builder`]. Clones share the directory and settings.
///
/// ```
/// use ac_store_file::LocalFileCache;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = LocalFileCache::builder(dir.path())
///     .compress(false)
///     .dedupe_writes(true)
///     .build()?;
/// # drop(store);
/// # Ok::<(), ac_core::Error>(())
/// ```
#[derive(Clone)]
pub struct LocalFileCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    serializer: Arc<dyn Serializer>,
    compression: Compression,
    dedupe_writes: bool,
    clock: ClockReader,
}

impl fmt::Debug for LocalFileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFileCache")
            .field("dir", &self.inner.dir)
            .field("serializer", &self.inner.serializer.name())
            .field("compression", &self.inner.compression)
            .field("dedupe_writes", &self.inner.dedupe_writes)
            .finish()
    }
}

/// A store error for `error`, which happened doing `what` on `path`: the
/// `io::Error` is its source, and decides whether it is transient (a full
/// disk, a missing or read-only directory are not). The path names the
/// key, so it goes in the context, which warnings leave out (keys only at
/// debug level).
fn io_error(what: &'static str, path: &Path, error: io::Error) -> Error {
    Error::io("file", format!("{what} {}", path.display()), error)
}

/// Builds a [`LocalFileCache`]: json values, gzip level 6, no dedupe,
/// the coarse system clock unless told otherwise.
#[must_use]
pub struct LocalFileCacheBuilder {
    dir: PathBuf,
    serializer: Arc<dyn Serializer>,
    compress: bool,
    gzip_level: u32,
    dedupe_writes: bool,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for LocalFileCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFileCacheBuilder")
            .field("dir", &self.dir)
            .field("serializer", &self.serializer.name())
            .field("compress", &self.compress)
            .field("gzip_level", &self.gzip_level)
            .field("dedupe_writes", &self.dedupe_writes)
            .finish_non_exhaustive()
    }
}

impl LocalFileCacheBuilder {
    /// The format of values (default json, which Python reads).
    pub fn serializer(mut self, serializer: impl Serializer) -> Self {
        self.serializer = Arc::new(serializer);
        self
    }

    /// Whether files are gzip-framed (default: yes, as in Python).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The gzip level, 0 to 9 (default 6), checked by
    /// [`build`](Self::build).
    pub fn compress_level(mut self, level: u32) -> Self {
        self.gzip_level = level;
        self
    }

    /// Skip a write whose bytes equal the file's (default: no).
    pub fn dedupe_writes(mut self, dedupe: bool) -> Self {
        self.dedupe_writes = dedupe;
        self
    }

    /// The clock expiry is measured with (default: the coarse system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Creates the directory if missing, and the store.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a gzip level above 9; a store error
    /// (with the `io::Error` as its source) if the directory cannot be
    /// created.
    pub fn build(self) -> Result<LocalFileCache, Error> {
        let gzip = Compression::gzip(self.gzip_level)?;
        fs::create_dir_all(&self.dir)
            .map_err(|e| io_error("cannot create cache directory", &self.dir, e))?;
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(CoarseClock::new()) as Arc<dyn Clock>);
        Ok(LocalFileCache {
            inner: Arc::new(Inner {
                dir: self.dir,
                serializer: self.serializer,
                compression: if self.compress {
                    gzip
                } else {
                    Compression::None
                },
                dedupe_writes: self.dedupe_writes,
                clock: ClockReader::new(clock),
            }),
        })
    }
}

impl LocalFileCache {
    /// A builder for a cache in `dir` (created by
    /// [`build`](LocalFileCacheBuilder::build) if missing).
    pub fn builder(dir: impl Into<PathBuf>) -> LocalFileCacheBuilder {
        LocalFileCacheBuilder {
            dir: dir.into(),
            serializer: Arc::new(Json),
            compress: true,
            gzip_level: 6,
            dedupe_writes: false,
            clock: None,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file an entry for `key` lives in.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.dir.join(file_name(key))
    }

    /// Deletes the expired entry files; returns how many.
    ///
    /// # Errors
    /// If the directory cannot be read.
    pub fn sweep(&self) -> Result<usize, Error> {
        let now = self.inner.clock.now();
        let _lock = self.lock()?;
        let mut removed = 0;
        for path in self.entry_files()? {
            if self.liveness(&path, now) == Some(false) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn entry_files(&self) -> Result<Vec<PathBuf>, Error> {
        let dir = &self.inner.dir;
        let read = fs::read_dir(dir).map_err(|e| io_error("cannot list", dir, e))?;
        Ok(read
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.file_name().to_str().is_some_and(is_entry_name))
            .map(|e| e.path())
            .collect())
    }

    /// Whether an entry file is live at `now`, or `None` if it is missing
    /// or not an entry.
    fn liveness(&self, path: &Path, now: f64) -> Option<bool> {
        let (fresh_until, _) = self.header(path)?;
        Some(is_live(&fs::metadata(path).ok()?, fresh_until, now))
    }

    /// The header of an entry file, reading only its first bytes, if the
    /// file plausibly is an entry: a header that decodes, created since
    /// 1973 and before 5138, fresh no earlier than created. `clear` and
    /// `sweep` delete only such files, not any file whose first 16 bytes
    /// happen to decode as two floats.
    fn header(&self, path: &Path) -> Option<(f64, f64)> {
        let mut prefix = Vec::with_capacity(HEADER_PREFIX);
        File::open(path)
            .ok()?
            .take(HEADER_PREFIX as u64)
            .read_to_end(&mut prefix)
            .ok()?;
        let (fresh_until, created_at) = decode_header(&prefix, self.inner.compression).ok()?;
        let plausible = (1e8..1e11).contains(&created_at) && fresh_until >= created_at;
        plausible.then_some((fresh_until, created_at))
    }

    fn read(&self, key: &str, decoder: &dyn Decoder) -> Result<Option<Entry>, Error> {
        let path = self.path_of(key);
        let (bytes, metadata) = match File::open(&path) {
            Ok(mut file) => {
                let metadata = file
                    .metadata()
                    .map_err(|e| io_error("cannot stat", &path, e))?;
                if metadata.len() > ac_serde::codec::MAX_INFLATED {
                    return Err(Error::corrupt(format!(
                        "{}: {} bytes, more than an entry may hold",
                        path.display(),
                        metadata.len()
                    )));
                }
                let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
                file.read_to_end(&mut bytes)
                    .map_err(|e| io_error("cannot read", &path, e))?;
                (bytes, metadata)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot open", &path, e)),
        };
        let entry = decode_entry(
            &bytes,
            &*self.inner.serializer,
            decoder,
            self.inner.compression,
        )
        .map_err(|e| match e {
            Error::Corrupt {
                reason,
                source: Some(source),
                ..
            } => Error::corrupt_caused_by(format!("{}: {reason}", path.display()), source),
            Error::Corrupt { reason, .. } => {
                Error::corrupt(format!("{}: {reason}", path.display()))
            }
            other => other,
        })?;
        let live = is_live(&metadata, entry.fresh_until, self.inner.clock.now());
        Ok(live.then_some(entry))
    }

    fn write(&self, key: &str, entry: &Entry, ttl: Option<Duration>) -> Result<(), Error> {
        let bytes = encode_entry(entry, &*self.inner.serializer, self.inner.compression)?;
        let path = self.path_of(key);
        let keep_until = ttl.map_or(NEVER, |ttl| {
            // Whole seconds, rounded up: the sub-second part is the mark.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let secs = (self.inner.clock.now() + ttl.as_secs_f64())
                .ceil()
                .clamp(0.0, NEVER as f64) as u64;
            secs
        });
        let modified = UNIX_EPOCH + Duration::new(keep_until, MARK_NANOS);
        if self.inner.dedupe_writes && fs::read(&path).is_ok_and(|old| old == bytes) {
            // Same bytes: keep the file, but give it the new lifetime.
            let touched = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_modified(modified));
            if touched.is_ok() {
                return Ok(());
            }
        }
        let temp = self.temp_path();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error("cannot create", &temp, e))?;
        // From here on the temporary file is ours to remove on failure.
        let written = (|| {
            file.write_all(&bytes)?;
            file.set_modified(modified)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            io_error("cannot write", &path, e)
        })
    }

    fn temp_path(&self) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.inner
            .dir
            .join(format!(".tmp.{}.{n}.{nanos}", std::process::id()))
    }

    /// The directory's advisory lock, held until the file is dropped.
    fn lock(&self) -> Result<File, Error> {
        let path = self.inner.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("cannot open lock", &path, e))?;
        file.lock().map_err(|e| io_error("cannot lock", &path, e))?;
        Ok(file)
    }
}

/// Whether an entry whose file has `metadata` is live at `now`: until its
/// keep-until time if the modification time carries one, else (a Python
/// file) while fresh.
fn is_live(metadata: &fs::Metadata, fresh_until: f64, now: f64) -> bool {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    match modified {
        #[allow(clippy::cast_precision_loss)]
        Some(mtime) if mtime.subsec_nanos() == MARK_NANOS => now <= mtime.as_secs() as f64,
        _ => now < fresh_until,
    }
}

/// Files hold values serialized: cached values must be serde.
impl ac_core::ByteStore for LocalFileCache {}

impl Store for LocalFileCache {
    fn name(&self) -> &'static str {
        "file"
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        Box::pin(async move { self.read(key, decoder) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.write(key, &entry, ttl) })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let _lock = self.lock()?;
            let now = self.inner.clock.now();
            if self.liveness(&self.path_of(key), now) == Some(true) {
                return Ok(false);
            }
            self.write(key, &entry, ttl).map(|()| true)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let path = self.path_of(key);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(io_error("cannot delete", &path, e))
                }
                _ => Ok(()),
            }
        })
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            for path in self.entry_files()? {
                if self.header(&path).is_some() {
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(io_error("cannot delete", &path, e));
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
