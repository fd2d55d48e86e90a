//! The one error type of the crate family.
//!
//! Each backend maps its own errors (`io::Error`, fred's, serde's, ...)
//! into [`Error`] where they happen, keeping the original as
//! [`source`](std::error::Error::source) (downcast it for details) and
//! deciding there whether the failure is transient
//! ([`Error::is_transient`]): only the backend knows what its error kinds
//! mean.

use std::fmt;
use std::io;

/// A boxed error from a backend, a serializer or a user callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in advanced-caching.
///
/// Configuration errors ([`Error::InvalidTemplate`], [`Error::InvalidConfig`])
/// are returned when a cached function or a store is built, never later.
/// The others come from stores and serializers at run time; the caching
/// policies never surface them from a cached call (the function runs, the
/// error is counted and logged), but store methods called directly do.
///
/// Errors caused by another error keep it as their
/// [`source`](std::error::Error::source):
///
/// ```
/// use std::error::Error as _;
/// use std::io;
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// let error = ac_core::Error::io("file", "cannot open /cache/k", refused);
/// assert!(error.is_transient());
/// let source = error.source().and_then(|s| s.downcast_ref::<io::Error>());
/// assert_eq!(source.map(io::Error::kind), Some(io::ErrorKind::ConnectionRefused));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key template could not be parsed or does not fit the arguments.
    #[error("invalid key template {template:?}: {reason}")]
    InvalidTemplate {
        /// The template as the user wrote it.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A builder was given a value it cannot work with.
    #[error("invalid configuration: {message}{}", Cause(source))]
    #[non_exhaustive]
    InvalidConfig {
        /// What is wrong, naming the setting.
        message: String,
        /// The error that revealed it (a URL parser's, a TLS library's...).
        #[source]
        source: Option<BoxError>,
    },
    /// A store failed: it could not be reached, did not answer, or
    /// answered with an error.
    #[error("{store} store: {}{source}", Context(context))]
    #[non_exhaustive]
    Store {
        /// Which store, e.g. `"inmem"` or `"redis"`.
        store: &'static str,
        /// What the store was doing, e.g. `"cannot write /cache/k"`. May
        /// name a key or a path: logs show it only at debug level.
        context: Option<String>,
        /// Whether the store was unavailable (an outage, a timeout, a
        /// refused or lost connection), so that the same call may succeed
        /// later, as opposed to an answer that retrying will not change
        /// (no permission, a server error reply). Set by the backend; see
        /// [`Error::is_transient`].
        transient: bool,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
    /// A value could not be turned into bytes or back.
    #[error("{format} serializer: {source}")]
    Serialization {
        /// The serializer's name, e.g. `"json"`.
        format: String,
        /// What the serializer reported.
        #[source]
        source: BoxError,
    },
    /// Bytes read from a store are not a valid entry.
    #[error("corrupt entry: {reason}{}", Cause(source))]
    #[non_exhaustive]
    Corrupt {
        /// What is wrong with the bytes.
        reason: String,
        /// The error of the decoder that found it (gzip's, say).
        #[source]
        source: Option<BoxError>,
    },
    /// An entry holds a value of another type than the caller expects.
    #[error("entry for key {key:?} holds a {found}, expected a {expected}")]
    TypeMismatch {
        /// The key read.
        key: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// The type the entry holds.
        found: &'static str,
    },
    /// The operation is not supported by this store or serializer.
    #[error("{0} is not supported")]
    Unsupported(String),
    /// A scheduler refused work, e.g. after it was shut down.
    #[error("scheduler: {message}{}", Cause(source))]
    #[non_exhaustive]
    Scheduler {
        /// What was refused and why.
        message: String,
        /// The error behind it (a thread that could not start, say).
        #[source]
        source: Option<BoxError>,
    },
}

/// `": {source}"` after a message, for variants whose source is optional.
struct Cause<'a>(&'a Option<BoxError>);

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

/// `"{context}: "` before a source, when there is a context.
struct Context<'a>(&'a Option<String>);

impl fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(context) => write!(f, "{context}: "),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A store error that retrying will not fix (the store answered with
    /// an error): [`is_transient`](Self::is_transient) is `false`.
    pub fn store(store: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store {
            store,
            context: None,
            transient: false,
            source: source.into(),
        }
    }

    /// The store is unavailable (down, unreachable, not answering in
    /// time): [`is_transient`](Self::is_transient) is `true`.
    pub fn unavailable(store: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store {
            store,
            context: None,
            transient: true,
            source: source.into(),
        }
    }

    /// A store error from an I/O error while doing `context` (which may
    /// name a path or key), transient as [`io_is_transient`] says of its
    /// kind. The I/O error stays the [`source`](std::error::Error::source).
    pub fn io(store: &'static str, context: impl Into<String>, source: io::Error) -> Self {
        Self::Store {
            store,
            context: Some(context.into()),
            transient: io_is_transient(source.kind()),
            source: Box::new(source),
        }
    }

    /// A serializer error from any error the format reported.
    pub fn serialization(format: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::Serialization {
            format: format.to_string(),
            source: source.into(),
        }
    }

    /// A configuration error: `message` says what is wrong, naming the
    /// setting.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            message: message.into(),
            source: None,
        }
    }

    /// A configuration error revealed by `source` (a parser's error, say).
    pub fn invalid_config_caused_by(
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::InvalidConfig {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Bytes that are not an entry: `reason` says what is wrong.
    pub fn corrupt(reason: impl Into<String>) -> Self {
        Self::Corrupt {
            reason: reason.into(),
            source: None,
        }
    }

    /// Bytes that are not an entry, as `source` (a decoder) found.
    pub fn corrupt_caused_by(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A scheduler refused work.
    pub fn scheduler(message: impl Into<String>) -> Self {
        Self::Scheduler {
            message: message.into(),
            source: None,
        }
    }

    /// A scheduler could not do its work because of `source`.
    pub fn scheduler_caused_by(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Scheduler {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn template(template: &str, reason: impl Into<String>) -> Self {
        Self::InvalidTemplate {
            template: template.to_owned(),
            reason: reason.into(),
        }
    }

    /// Whether the failure is an outage that may be over later (a store
    /// unreachable, a timeout, a refused or lost connection), as opposed to
    /// a bug or bad data that retrying will not change (a corrupt entry, a
    /// type mismatch, bad configuration, a serializer error, a store's
    /// error reply). The backend that built the error decided it.
    ///
    /// ```
    /// let outage = ac_core::Error::unavailable("redis", "connection refused");
    /// assert!(outage.is_transient());
    /// assert!(!ac_core::Error::corrupt("truncated header").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Store {
                transient: true,
                ..
            }
        )
    }

    /// A short, stable label for metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidTemplate { .. } => "invalid_template",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::Store { .. } => "store",
            Self::Serialization { .. } => "serialization",
            Self::Corrupt { .. } => "corrupt",
            Self::TypeMismatch { .. } => "type_mismatch",
            Self::Unsupported(_) => "unsupported",
            Self::Scheduler { .. } => "scheduler",
        }
    }
}

/// Whether an I/O error of `kind` is an outage that may be over later: a
/// timeout, an interrupted or would-block call, a refused, reset, aborted
/// or missing connection, an unreachable network or host, a busy resource
/// or a stale network file handle. Everything else (not found, permission
/// denied, a full disk, a read-only file system, invalid data...) needs a
/// fix, not a retry. For backends mapping their I/O errors.
pub fn io_is_transient(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::TimedOut
            | K::Interrupted
            | K::WouldBlock
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::AddrNotAvailable
            | K::NetworkDown
            | K::NetworkUnreachable
            | K::HostUnreachable
            | K::ResourceBusy
            | K::StaleNetworkFileHandle
    )
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn sources_are_kept_and_shown_once() {
        let error = Error::io(
            "file",
            "cannot write /d/k",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(!error.is_transient(), "permission denied needs a fix");
        let source = error.source().unwrap().downcast_ref::<io::Error>();
        assert_eq!(
            source.map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied)
        );
        assert_eq!(
            error.to_string(),
            format!(
                "file store: cannot write /d/k: {}",
                io::Error::from(io::ErrorKind::PermissionDenied)
            )
        );
        let config = Error::invalid_config_caused_by("bad URL", "no host");
        assert_eq!(
            config.to_string(),
            "invalid configuration: bad URL: no host"
        );
        assert_eq!(config.source().unwrap().to_string(), "no host");
        let plain = Error::invalid_config("pool size must be at least 1");
        assert!(plain.source().is_none());
        assert_eq!(
            plain.to_string(),
            "invalid configuration: pool size must be at least 1"
        );
    }

    #[test]
    fn only_unavailable_stores_are_transient() {
        let transient = [
            Error::unavailable("redis", "refused"),
            Error::io("file", "x", io::ErrorKind::TimedOut.into()),
            Error::io("file", "x", io::ErrorKind::ConnectionRefused.into()),
        ];
        for error in &transient {
            assert!(error.is_transient(), "{error}");
        }
        let lasting = [
            Error::store("redis", "WRONGTYPE"),
            Error::io("file", "x", io::ErrorKind::NotFound.into()),
            Error::io("file", "x", io::ErrorKind::ReadOnlyFilesystem.into()),
            Error::corrupt("truncated"),
            Error::serialization("json", "expected value"),
            Error::invalid_config("zero"),
            Error::scheduler("shut down"),
            Error::TypeMismatch {
                key: "k".into(),
                expected: "u8",
                found: "String",
            },
        ];
        for error in &lasting {
            assert!(!error.is_transient(), "{error}");
        }
    }
}
