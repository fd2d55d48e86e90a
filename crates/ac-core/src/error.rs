//! The one error type of the crate family.

use std::fmt;

/// A boxed error from a backend, a serializer or a user callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in advanced-caching.
///
/// Configuration errors ([`Error::InvalidTemplate`], [`Error::InvalidConfig`])
/// are returned when a cached function or a store is built, never later.
/// The others come from stores and serializers at run time; the caching
/// policies never surface them from a cached call (the function runs, the
/// error is counted and logged), but store methods called directly do.
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
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A store failed (I/O, connection, server error).
    #[error("{store} store: {source}")]
    Store {
        /// Which store, e.g. `"inmem"` or `"redis"`.
        store: &'static str,
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
    #[error("corrupt entry: {0}")]
    Corrupt(String),
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
    #[error("scheduler: {0}")]
    Scheduler(String),
}

impl Error {
    /// A store error from any backend error.
    pub fn store(store: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store {
            store,
            source: source.into(),
        }
    }

    /// A serializer error from any error the format reported.
    pub fn serialization(format: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::Serialization {
            format: format.to_string(),
            source: source.into(),
        }
    }

    pub(crate) fn template(template: &str, reason: impl Into<String>) -> Self {
        Self::InvalidTemplate {
            template: template.to_owned(),
            reason: reason.into(),
        }
    }

    /// A short, stable label for metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidTemplate { .. } => "invalid_template",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Store { .. } => "store",
            Self::Serialization { .. } => "serialization",
            Self::Corrupt(_) => "corrupt",
            Self::TypeMismatch { .. } => "type_mismatch",
            Self::Unsupported(_) => "unsupported",
            Self::Scheduler(_) => "scheduler",
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
