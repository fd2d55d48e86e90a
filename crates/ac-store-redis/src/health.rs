//! How the store uses [`ac_core::health`]: commands skip Redis while it is
//! down, one probe at a time finds out when it is back.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ac_core::Error;
use ac_core::health::{Admission, Probe, Transition};
use fred::prelude::{ClientLike, EventInterface};
use futures_util::future::Either;

use crate::{NAME, RedisCache};

/// Why a command of a [`RedisCache`] got no answer from Redis, where fred
/// reported no error of its own: the [`source`](std::error::Error::source)
/// of a transient [`Error::Store`]. (Where fred did report one, that
/// `fred::error::Error` is the source instead.)
///
/// ```
/// # fn check(error: &ac_core::Error) {
/// use std::error::Error as _;
/// use ac_store_redis::Unavailable;
///
/// if let Some(Unavailable::Down { .. }) = error.source().and_then(|s| s.downcast_ref()) {
///     // Redis was already known to be down: the command was not sent.
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Unavailable {
    /// The connection is being re-established.
    NotConnected,
    /// No answer within this deadline (the command timeout times the
    /// round trips the operation needs).
    NoAnswer(Duration),
    /// Another command saw Redis fail while this one waited for its answer.
    WentDown,
    /// Redis was known to be down, so the command was not sent: it will be
    /// once a probe (`PING`) answers.
    Down {
        /// The failure that took Redis down (a `fred::error::Error`, or
        /// another `Unavailable`), if known; its
        /// [`source`](std::error::Error::source).
        cause: Option<Cause>,
    },
}

/// The failure behind [`Unavailable::Down`].
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected to Redis (reconnecting)"),
            Self::NoAnswer(deadline) => write!(f, "no answer from Redis within {deadline:?}"),
            Self::WentDown => f.write_str("Redis went down while the command was in flight"),
            Self::Down { cause: None } => {
                f.write_str("Redis is down: skipped until a probe answers")
            }
            Self::Down { cause: Some(cause) } => {
                write!(f, "Redis is down ({cause}): skipped until a probe answers")
            }
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The cause itself, not its `Arc`, so it downcasts to its type.
            Self::Down { cause: Some(cause) } => Some(&**cause),
            _ => None,
        }
    }
}

/// The last failure that showed Redis unavailable, for [`Unavailable::Down`].
#[derive(Clone, Default)]
pub(crate) struct LastOutage(Arc<Mutex<Option<Cause>>>);

impl LastOutage {
    fn record(&self, cause: Cause) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(cause);
    }

    fn get(&self) -> Option<Cause> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An outage's cause, kept for later skipped calls, and the transient
/// store error for the call that met it, whose source is `error` itself
/// (not an `Arc` of it), so that it downcasts to its type.
fn outage_of<E>(error: E) -> (Cause, Error)
where
    E: std::error::Error + Clone + Send + Sync + 'static,
{
    (Arc::new(error.clone()), Error::unavailable(NAME, error))
}

/// A fred error as the store error it is: transient when Redis was not
/// reached or did not answer ([`is_unavailable`]), otherwise not (Redis
/// answered with an error). The fred error is the source.
fn redis_error(error: fred::error::Error) -> Error {
    if is_unavailable(&error) {
        Error::unavailable(NAME, error)
    } else {
        Error::store(NAME, error)
    }
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

impl RedisCache {
    /// Follows the clients' connection events: a lost connection turns the
    /// health down at once (commands waiting on it stop waiting), and a
    /// reconnection lets the next call probe without waiting the backoff.
    /// Follows the clients' connection events: a lost connection turns the
    /// health down at once (commands waiting on it stop waiting), and a
    /// reconnection lets the next call probe without waiting the backoff.
    /// The listeners hold no client, so they end with the clients.
    pub(crate) fn watch_connections(&self) {
        for client in self.pool.clients() {
            let mut errors = client.error_rx();
            let (health, target) = (self.health.clone(), self.target.clone());
            let outage = self.last_outage.clone();
            self.runtime.spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match errors.recv().await {
                        Ok((error, _server)) => {
                            outage.record(Arc::new(error.clone()));
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

    /// Runs `command` with a client of the pool (fail-fast, with the
    /// command timeout) on the store's runtime, so callers on any executor,
    /// or none, can await it. `commands` is how many round trips the
    /// closure may make: the whole closure gets that many command timeouts,
    /// then fails, so nothing waits forever on a server that is gone.
    ///
    /// While the store is down the command is not sent: the future fails at
    /// once (and a probe may start). A command in flight when the store is
    /// seen down fails then, without waiting for its timeout.
    pub(crate) fn run<T, F, Fut>(
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
            let outage = self.last_outage.clone();
            self.runtime.spawn(async move {
                // A failure for want of Redis: turns the health down, and
                // is what later skipped calls report as the cause.
                let unavailable = |(cause, error): (Cause, Error)| {
                    if let Some(transition) = health.failed(ticket) {
                        log_transition(&target, transition, &cause);
                    }
                    outage.record(cause);
                    error
                };
                if !connected {
                    return Err(unavailable(outage_of(Unavailable::NotConnected)));
                }
                let answer = std::pin::pin!(tokio::time::timeout(deadline, command(client)));
                let down = std::pin::pin!(health.went_down(ticket));
                match futures_util::future::select(answer, down).await {
                    Either::Left((Ok(Ok(value)), _)) => Ok(value),
                    Either::Left((Ok(Err(error)), _)) if is_unavailable(&error) => {
                        Err(unavailable(outage_of(error)))
                    }
                    Either::Left((Ok(Err(error)), _)) => Err(redis_error(error)),
                    Either::Left((Err(_), _)) => {
                        Err(unavailable(outage_of(Unavailable::NoAnswer(deadline))))
                    }
                    Either::Right(((), _)) => Err(Error::unavailable(NAME, Unavailable::WentDown)),
                }
            })
        });
        let skipped = task.is_none().then(|| self.last_outage.get());
        async move {
            match (task, skipped) {
                (Some(task), _) => match task.await {
                    Ok(result) => result,
                    // The runtime is shutting down, or the command panicked.
                    Err(join) => Err(Error::store(NAME, join)),
                },
                (None, cause) => Err(Error::unavailable(
                    NAME,
                    Unavailable::Down {
                        cause: cause.flatten(),
                    },
                )),
            }
        }
    }
}
