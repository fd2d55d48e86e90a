//! [`GcpCloudMonitoringMetrics`]: custom metrics in Google Cloud Monitoring.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ac_core::scheduler::{Every, JobHandle, Task};
use ac_core::{Clock, Error, MetricsCollector, Scheduler};
use ac_sched::{CoarseClock, ThreadScheduler};
use serde_json::{Value, json};

use crate::{InMemoryMetrics, lock};

/// The most time series one `timeSeries.create` request may carry.
pub const MAX_SERIES_PER_REQUEST: usize = 200;

/// Where the metadata server hands out the instance's access token.
const METADATA_TOKEN: &str =
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";

/// Supplies OAuth2 access tokens for the Monitoring API.
pub type TokenProvider = Arc<dyn Fn() -> Result<String, Error> + Send + Sync>;

/// Writes cache metrics to Google Cloud Monitoring as custom metrics
/// (`custom.googleapis.com/advanced_caching/…`, resource `global`),
/// aggregated in memory and sent in batches of at most 200 time series per
/// `projects.timeSeries.create` request by a background flush (every 60 s by
/// default; Cloud Monitoring accepts one point per series every 5 s).
///
/// Series: `hits`, `misses`, `sets`, `deletes`, `errors`
/// (`operation`, `error_type`), `background_refresh` (`result`) as
/// cumulative INT64; `memory_bytes`, `entries` as INT64 gauges;
/// `latency_p50_ms`, `latency_p95_ms`, `latency_p99_ms` (`operation`) as
/// DOUBLE gauges; all labelled with `cache`. A failed flush is logged and
/// the next one sends the cumulative values again: nothing is lost.
///
/// # Credentials
/// From [`GcpMetricsBuilder::token_provider`] if given (for example a
/// closure over the `gcp_auth` crate), else from the metadata server that
/// Compute Engine, GKE, Cloud Run and Cloud Functions provide (the attached
/// service account), cached until a minute before it expires. Service-
/// account key files (`GOOGLE_APPLICATION_CREDENTIALS`) are not read:
/// signing their JWTs needs RSA; use a token provider for them.
#[derive(Clone)]
pub struct GcpCloudMonitoringMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    project_id: String,
    endpoint: String,
    tokens: Tokens,
    started: SystemTime,
    data: InMemoryMetrics,
    agent: ureq::Agent,
    job: Mutex<Option<JobHandle>>,
}

impl fmt::Debug for GcpCloudMonitoringMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpCloudMonitoringMetrics")
            .field("project_id", &self.inner.project_id)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

/// Configures a [`GcpCloudMonitoringMetrics`].
#[must_use]
pub struct GcpMetricsBuilder {
    project_id: String,
    endpoint: String,
    flush_interval: f64,
    token_provider: Option<TokenProvider>,
    clock: Option<Arc<dyn Clock>>,
    scheduler: Option<Arc<dyn Scheduler>>,
}

impl fmt::Debug for GcpMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpMetricsBuilder")
            .field("project_id", &self.project_id)
            .field("endpoint", &self.endpoint)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

impl GcpMetricsBuilder {
    /// The API root (default `https://monitoring.googleapis.com`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_owned();
        self
    }

    /// Seconds between flushes (default 60, at least 5).
    pub fn flush_interval(mut self, secs: f64) -> Self {
        self.flush_interval = secs;
        self
    }

    /// Where access tokens come from (default: the metadata server).
    pub fn token_provider(
        mut self,
        provider: impl Fn() -> Result<String, Error> + Send + Sync + 'static,
    ) -> Self {
        self.token_provider = Some(Arc::new(provider));
        self
    }

    /// The clock flushes are scheduled by (tests pass a manual clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Where the flush job runs (default: a thread).
    pub fn scheduler(mut self, scheduler: impl Scheduler) -> Self {
        self.scheduler = Some(Arc::new(scheduler));
        self
    }

    /// Starts the exporter and its background flush.
    ///
    /// # Errors
    /// An empty project id, a flush interval under 5 s, or a scheduler
    /// that cannot start the job.
    pub fn build(self) -> Result<GcpCloudMonitoringMetrics, Error> {
        if self.project_id.is_empty() {
            return Err(Error::invalid_config("GCP metrics need a project id"));
        }
        if self.flush_interval.is_nan() || self.flush_interval < 5.0 {
            return Err(Error::invalid_config(format!(
                "GCP metrics flush interval must be at least 5 s (one point per series per 5 s), got {}",
                self.flush_interval
            )));
        }
        let tokens = Tokens {
            provider: self.token_provider,
            cached: Mutex::new(None),
        };
        let metrics = GcpCloudMonitoringMetrics {
            inner: Arc::new(Inner {
                project_id: self.project_id,
                endpoint: self.endpoint,
                tokens,
                started: SystemTime::now(),
                data: InMemoryMetrics::new(),
                agent: ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(30)))
                        .http_status_as_error(false)
                        .build(),
                ),
                job: Mutex::new(None),
            }),
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(CoarseClock::new()));
        let scheduler = self
            .scheduler
            .unwrap_or_else(|| Arc::new(ThreadScheduler::global().clone()));
        // The job holds a weak handle: dropping the last clone stops it.
        let weak = Arc::downgrade(&metrics.inner);
        let job = scheduler.every(Every {
            interval: self.flush_interval,
            start: clock.now() + self.flush_interval,
            clock,
            task: Task::Blocking(Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    let metrics = GcpCloudMonitoringMetrics { inner };
                    if let Err(error) = metrics.flush() {
                        tracing::warn!(target: "advanced_caching::metrics", %error, "GCP metrics flush failed; retrying next interval");
                    }
                }
            })),
        })?;
        *lock(&metrics.inner.job) = Some(job);
        Ok(metrics)
    }
}

struct Tokens {
    provider: Option<TokenProvider>,
    /// (token, expires at) from the metadata server.
    cached: Mutex<Option<(String, SystemTime)>>,
}

impl GcpCloudMonitoringMetrics {
    /// Metrics for `project_id` with the defaults (see the type's docs).
    ///
    /// # Errors
    /// As [`GcpMetricsBuilder::build`].
    pub fn new(project_id: impl Into<String>) -> Result<Self, Error> {
        Self::builder(project_id).build()
    }

    /// A builder for `project_id`.
    pub fn builder(project_id: impl Into<String>) -> GcpMetricsBuilder {
        GcpMetricsBuilder {
            project_id: project_id.into(),
            endpoint: "https://monitoring.googleapis.com".into(),
            flush_interval: 60.0,
            token_provider: None,
            clock: None,
            scheduler: None,
        }
    }

    /// The `timeSeries.create` bodies a flush now would send.
    pub fn requests(&self) -> Vec<Value> {
        let series = self.series(SystemTime::now());
        series
            .chunks(MAX_SERIES_PER_REQUEST)
            .map(|chunk| json!({ "timeSeries": chunk }))
            .collect()
    }

    /// Sends everything now, in batches.
    ///
    /// # Errors
    /// No token, or a request the API refused or that did not arrive.
    pub fn flush(&self) -> Result<(), Error> {
        let requests = self.requests();
        if requests.is_empty() {
            return Ok(());
        }
        let token = self.inner.tokens.token(&self.inner.agent)?;
        let url = format!(
            "{}/v3/projects/{}/timeSeries",
            self.inner.endpoint, self.inner.project_id
        );
        // Every chunk is sent even if one is refused (one bad series must
        // not hold back the others); the first failure is returned.
        let mut first_error = None;
        for body in requests {
            let sent = self
                .inner
                .agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes());
            let error = match sent {
                Ok(response) if response.status().is_success() => continue,
                Ok(response) => ureq::Error::StatusCode(response.status().as_u16()),
                Err(e) => e,
            };
            first_error.get_or_insert(http_error(error));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn series(&self, now: SystemTime) -> Vec<Value> {
        let stats = self.inner.data.get_stats();
        let (start, end) = (rfc3339(self.inner.started), rfc3339(now));
        let resource =
            json!({ "type": "global", "labels": { "project_id": self.inner.project_id } });
        let point = |kind: &str, value: Value| {
            let interval = if kind == "CUMULATIVE" {
                json!({ "startTime": start, "endTime": end })
            } else {
                json!({ "endTime": end })
            };
            json!([{ "interval": interval, "value": value }])
        };
        let mut out = Vec::new();
        let mut push = |name: &str, labels: BTreeMap<&str, &str>, kind: &str, value: Value| {
            let value_type = if value.get("doubleValue").is_some() {
                "DOUBLE"
            } else {
                "INT64"
            };
            out.push(json!({
                "metric": { "type": format!("custom.googleapis.com/advanced_caching/{name}"), "labels": labels },
                "resource": resource,
                "metricKind": kind,
                "valueType": value_type,
                "points": point(kind, value),
            }));
        };
        let int = |n: u64| json!({ "int64Value": n.to_string() });
        for (cache, c) in &stats.caches {
            let labels = || BTreeMap::from([("cache", cache.as_str())]);
            for (name, n) in [
                ("hits", c.hits),
                ("misses", c.misses),
                ("sets", c.sets),
                ("deletes", c.deletes),
            ] {
                if n > 0 {
                    push(name, labels(), "CUMULATIVE", int(n));
                }
            }
            for (what, n) in &c.errors_by {
                let (operation, error_type) = what.split_once('.').unwrap_or((what, ""));
                let mut l = labels();
                l.extend([("operation", operation), ("error_type", error_type)]);
                push("errors", l, "CUMULATIVE", int(*n));
            }
            if c.entries > 0 || c.memory_bytes > 0 {
                push("memory_bytes", labels(), "GAUGE", int(c.memory_bytes));
                push("entries", labels(), "GAUGE", int(c.entries));
            }
            for (operation, l) in &c.latency {
                for (name, ms) in [
                    ("latency_p50_ms", l.p50_ms),
                    ("latency_p95_ms", l.p95_ms),
                    ("latency_p99_ms", l.p99_ms),
                ] {
                    let mut labels = labels();
                    labels.insert("operation", operation);
                    push(name, labels, "GAUGE", json!({ "doubleValue": ms }));
                }
            }
        }
        for (cache, r) in &stats.background_refresh {
            for (result, n) in [("success", r.success), ("failure", r.failure)] {
                if n > 0 {
                    let labels = BTreeMap::from([("cache", cache.as_str()), ("result", result)]);
                    push("background_refresh", labels, "CUMULATIVE", int(n));
                }
            }
        }
        out
    }
}

impl Tokens {
    fn token(&self, agent: &ureq::Agent) -> Result<String, Error> {
        if let Some(provider) = &self.provider {
            return provider();
        }
        let mut cached = lock(&self.cached);
        if let Some((token, expires)) = &*cached
            && SystemTime::now() + Duration::from_secs(60) < *expires
        {
            return Ok(token.clone());
        }
        let mut response = agent
            .get(METADATA_TOKEN)
            .header("Metadata-Flavor", "Google")
            .call()
            .map_err(http_error)?;
        let body: Value = serde_json::from_reader(response.body_mut().as_reader())
            .map_err(|e| Error::store(NAME, e))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| Error::store(NAME, "no access_token in the metadata server's answer"))?
            .to_owned();
        let expires =
            SystemTime::now() + Duration::from_secs(body["expires_in"].as_u64().unwrap_or(0));
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}

/// The exporter's name in errors.
const NAME: &str = "gcp-metrics";

/// A failed HTTP request (or an HTTP error status, as
/// [`ureq::Error::StatusCode`]) as a store error with `error` as its source:
/// transient for connection failures, timeouts, 408, 429 and 5xx.
fn http_error(error: ureq::Error) -> Error {
    let transient = match &error {
        ureq::Error::StatusCode(status) => matches!(status, 408 | 429 | 500..=599),
        ureq::Error::Io(io) => ac_core::io_is_transient(io.kind()),
        ureq::Error::Timeout(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        _ => false,
    };
    if transient {
        Error::unavailable(NAME, error)
    } else {
        Error::store(NAME, error)
    }
}

/// `2024-01-02T03:04:05.123456Z`, from the system time.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    #[allow(clippy::cast_possible_wrap)]
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

impl MetricsCollector for GcpCloudMonitoringMetrics {
    fn record_hit(&self, cache: &str, key: &str) {
        self.inner.data.record_hit(cache, key);
    }
    fn record_miss(&self, cache: &str, key: &str) {
        self.inner.data.record_miss(cache, key);
    }
    fn record_set(&self, cache: &str, key: &str, value_size: Option<usize>) {
        self.inner.data.record_set(cache, key, value_size);
    }
    fn record_delete(&self, cache: &str, key: &str) {
        self.inner.data.record_delete(cache, key);
    }
    fn record_latency(&self, cache: &str, operation: &str, duration: Duration) {
        self.inner.data.record_latency(cache, operation, duration);
    }
    fn record_error(&self, cache: &str, operation: &str, error_type: &str) {
        self.inner.data.record_error(cache, operation, error_type);
    }
    fn record_memory_usage(&self, cache: &str, bytes: u64, entries: u64) {
        self.inner.data.record_memory_usage(cache, bytes, entries);
    }
    fn record_background_refresh(&self, cache: &str, success: bool, duration: Duration) {
        self.inner
            .data
            .record_background_refresh(cache, success, duration);
    }
}

#[cfg(test)]
mod tests;
