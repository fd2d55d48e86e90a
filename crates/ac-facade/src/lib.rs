#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]

pub mod bg;
mod cache;
mod options;
mod outcome;

pub use ac_core::{
    BoxFuture, ByteStore, ChainCache, ChainCacheBuilder, Clock, CoarseClock, Decoder, Entry, Error,
    IntoDynStore, IntoSeconds, IntoStore, KeyArgs, KeySource, Local, ManualClock, MetricsCollector,
    NULL_METRICS, NullMetrics, Result, Scheduler, SerdeValue, Serializer, Store, StoreFor,
    TypedDecoder, Usage, Value,
};
pub use ac_metrics::{CacheStats, InMemoryMetrics, LatencyStats, RefreshStats, Stats};
/// Metrics exporters, each behind its feature.
pub mod exporters {
    #[cfg(feature = "opentelemetry")]
    pub use ac_metrics::OpenTelemetryMetrics;
    #[cfg(feature = "gcp-metrics")]
    pub use ac_metrics::{GcpCloudMonitoringMetrics, GcpMetricsBuilder, TokenProvider};
    #[cfg(feature = "prometheus")]
    pub use ac_metrics::{PrometheusMetrics, install_prometheus_http};
}
#[cfg(feature = "async-std")]
pub use ac_sched::AsyncStdScheduler;
#[cfg(feature = "smol")]
pub use ac_sched::SmolScheduler;
pub use ac_sched::ThreadScheduler;
#[cfg(feature = "tokio")]
pub use ac_sched::TokioScheduler;
#[cfg(feature = "file")]
pub use ac_store_file::{LocalFileCache, LocalFileCacheBuilder};
pub use ac_store_mem::{InMemCache, InMemCacheBuilder};
#[cfg(feature = "gcs")]
pub use ac_store_object::GCSCache;
#[cfg(feature = "s3")]
pub use ac_store_object::S3Cache;
#[cfg(any(feature = "s3", feature = "gcs"))]
pub use ac_store_object::{AnyStore, ObjectCache, ObjectCacheBuilder};
#[cfg(feature = "redis")]
pub use ac_store_redis::{RedisCache, RedisCacheBuilder};
pub use bg::{
    AsyncBgLoader, BgBuilder, BgError, BgLoader, BgReader, ReadBuilder, WritersStore, bg,
};
pub use cache::{AsyncCached, CacheBuilder, Cached, Call, NoKey, cache};
pub use options::{DefaultStore, StoreChoice};
pub use outcome::{Fallible, Outcome, Plain};

/// Formats for byte stores (files, Redis, S3, GCS), and the entry codec
/// they share. A custom format implements [`Serializer`].
pub mod serializers {
    #[cfg(feature = "json")]
    pub use ac_serde::Json;
    #[cfg(feature = "msgpack")]
    pub use ac_serde::MsgPack;
    #[cfg(feature = "postcard")]
    pub use ac_serde::Postcard;
    pub use ac_serde::codec;
    #[cfg(feature = "protobuf")]
    pub use ac_serde::{Protobuf, protobuf};

    /// JSON, the default format (the Python package's `serializers.json`).
    #[cfg(feature = "json")]
    pub const JSON: Json = Json;
    /// MessagePack (the Python package's `serializers.msgpack`).
    #[cfg(feature = "msgpack")]
    pub const MSGPACK: MsgPack = MsgPack;
}

/// The crates behind this facade, for backend and runtime authors.
pub mod crates {
    pub use ac_core as core;
    pub use ac_metrics as metrics;
    pub use ac_sched as sched;
    pub use ac_serde as serde;
    #[cfg(feature = "file")]
    pub use ac_store_file as store_file;
    pub use ac_store_mem as store_mem;
    #[cfg(any(feature = "s3", feature = "gcs"))]
    pub use ac_store_object as store_object;
    #[cfg(feature = "redis")]
    pub use ac_store_redis as store_redis;
}
