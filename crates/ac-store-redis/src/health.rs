//! How the store uses [`ac_core::health`]: commands skip Redis while it is
//! down, one probe at a time finds out when it is back.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ac_core::Error;
use ac_core::health::{Admission, Probe, Transition};
use fred::prelude::{ClientLike, EventInterface};
use futures_util::future::Either;

use crate::{NAME, RedisCache};

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
}
