//! [`Health`]: whether a remote store answers, so that an outage costs one
//! timeout rather than one per call.
//!
//! A store over the network (Redis, say) asks [`Health::admit`] before each
//! command:
//!
//! - **Up**: [`Admission::Proceed`] with a [`Ticket`]; the store runs the
//!   command. When it fails for want of the server (connection lost,
//!   timeout), the store reports [`Health::failed`] and the health turns
//!   **down**. Commands still in flight from before can stop waiting:
//!   [`Health::went_down`] completes for their tickets.
//! - **Down**: [`Admission::Skip`]: the store returns an error at once (the
//!   caching policy counts it and calls the function). At most one
//!   [`Probe`] at a time is handed out, the first at once and then after a
//!   backoff that doubles up to a bound; the store runs a cheap check with
//!   it (a `PING`) off the caller's path. A probe that
//!   [succeeds](Probe::succeeded) turns the health **up** again.
//!
//! Each turn is reported once, as a [`Transition`] returned by the call
//! that caused it, for the store to log under its own tracing target:
//! individual failures are the policy's to log.
//!
//! ```
//! use ac_core::health::{Admission, Health, Transition};
//!
//! let health = Health::default();
//! let Admission::Proceed(ticket) = health.admit() else { unreachable!() };
//! // ... the command timed out:
//! assert_eq!(health.failed(ticket), Some(Transition::WentDown));
//! // Later calls skip the store; the first one gets the probe.
//! let Admission::Skip(Some(probe)) = health.admit() else { unreachable!() };
//! assert!(matches!(health.admit(), Admission::Skip(None)), "one probe at a time");
//! // ... the probe's PING answered:
//! assert!(matches!(probe.succeeded(), Some(Transition::CameBack { .. })));
//! assert!(health.is_up());
//! ```

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_listener::Event;

use crate::{Clock, ClockReader, PreciseClock, lock};

/// The first probe backoff of [`Health::default`].
pub const DEFAULT_FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest probe backoff of [`Health::default`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether a remote store answers; cheap to clone (clones share the
/// state). See the [module docs](self).
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    /// Even: up, odd: down. Every transition adds one, so a ticket (the
    /// epoch it was issued in) tells whether the store went down since.
    epoch: AtomicU64,
    /// Calls skipped during the current outage.
    skipped: AtomicU64,
    /// Probe bookkeeping; only touched while down and at transitions.
    probe: Mutex<ProbeState>,
    /// Notified at every transition, for [`Health::went_down`].
    changed: Event,
    clock: ClockReader,
    first_backoff: Duration,
    max_backoff: Duration,
}

#[derive(Debug)]
struct ProbeState {
    in_flight: bool,
    /// When the next probe may start (clock seconds).
    next_at: f64,
    /// The wait after the next failed probe.
    backoff: Duration,
    /// When the current outage began (clock seconds).
    down_since: f64,
}

/// What a store does with a call: see [`Health::admit`].
#[derive(Debug)]
#[must_use = "a skipped call must not reach the store, and a probe must be run"]
pub enum Admission {
    /// The store is up: run the command, and report a failure for want of
    /// the server with this ticket ([`Health::failed`]).
    Proceed(Ticket),
    /// The store is down: fail the call at once. With a probe, also run a
    /// check of the server (off the caller's path) and report its outcome.
    Skip(Option<Probe>),
}

/// Issued with [`Admission::Proceed`]: which up period a command belongs
/// to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
}

/// A change of [`Health`], reported once by the call that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Transition {
    /// The store was up and has just been seen failing: calls skip it
    /// until a probe answers.
    WentDown,
    /// A probe answered: calls use the store again.
    CameBack {
        /// How long the store was down.
        down_for: Duration,
        /// Calls skipped meanwhile.
        skipped: u64,
    },
}

/// The right to check, while the store is down, whether it is back. Only
/// one exists at a time. Report with [`Probe::succeeded`] or
/// [`Probe::failed`]; dropping it unreported counts as a failure, so a
/// probe that panics or is cancelled does not stop later ones.
#[must_use = "report the probe's outcome, or the next probe waits for the backoff"]
pub struct Probe {
    inner: Arc<Inner>,
    /// The down epoch the probe was issued in.
    epoch: u64,
    reported: bool,
}

impl Default for Health {
    /// Up, on [`PreciseClock`], with probes backed off from
    /// [`DEFAULT_FIRST_BACKOFF`] to [`DEFAULT_MAX_BACKOFF`].
    fn default() -> Self {
        Self::new(
            Arc::new(PreciseClock),
            DEFAULT_FIRST_BACKOFF,
            DEFAULT_MAX_BACKOFF,
        )
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("up", &self.is_up())
            .field("skipped", &self.inner.skipped.load(Ordering::Relaxed))
            .field("first_backoff", &self.inner.first_backoff)
            .field("max_backoff", &self.inner.max_backoff)
            .finish()
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").field("epoch", &self.epoch).finish()
    }
}

impl Health {
    /// Up, timing probe backoffs on `clock`: the first probe of an outage
    /// may start at once, the next `first_backoff` after a failed one, each
    /// wait doubling up to `max_backoff` (raised to `first_backoff` if
    /// smaller).
    pub fn new(clock: Arc<dyn Clock>, first_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                epoch: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                probe: Mutex::new(ProbeState {
                    in_flight: false,
                    next_at: 0.0,
                    backoff: first_backoff,
                    down_since: 0.0,
                }),
                changed: Event::new(),
                clock: ClockReader::new(clock),
                first_backoff,
                max_backoff: max_backoff.max(first_backoff),
            }),
        }
    }

    /// Whether the store is up (calls are admitted).
    pub fn is_up(&self) -> bool {
        self.inner.epoch.load(Ordering::Acquire) % 2 == 0
    }

    /// What to do with a call: run it, or skip the store (and maybe probe
    /// it). One atomic load while up.
    pub fn admit(&self) -> Admission {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        if epoch % 2 == 0 {
            return Admission::Proceed(Ticket { epoch });
        }
        self.inner.skipped.fetch_add(1, Ordering::Relaxed);
        // Another caller holding the lock is deciding about the probe:
        // this one just skips.
        let Ok(mut state) = self.inner.probe.try_lock() else {
            return Admission::Skip(None);
        };
        if state.in_flight || self.inner.epoch.load(Ordering::Acquire) != epoch {
            return Admission::Skip(None);
        }
        let now = self.inner.clock.now();
        // A wait longer than the one scheduled means the clock went back:
        // probe now rather than stall.
        let wait = state.next_at - now;
        if wait > 0.0 && wait <= self.inner.max_backoff.as_secs_f64() {
            return Admission::Skip(None);
        }
        state.in_flight = true;
        drop(state);
        Admission::Skip(Some(Probe {
            inner: self.inner.clone(),
            epoch,
            reported: false,
        }))
    }

    /// A command admitted with `ticket` failed for want of the server
    /// (connection lost, no answer in time; not an error the server
    /// answered with). Turns the health down if that ticket's up period is
    /// still current: `Some(WentDown)` exactly once per outage.
    pub fn failed(&self, ticket: Ticket) -> Option<Transition> {
        self.go_down(ticket.epoch)
    }

    /// The store's client saw its connection fail outside any command (a
    /// connection-error event): turns the health down if it is up.
    pub fn lost(&self) -> Option<Transition> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        if epoch % 2 == 0 {
            self.go_down(epoch)
        } else {
            None
        }
    }

    /// While down, lets the next probe start at once whatever the
    /// backoff: for a store whose client reports that it reconnected.
    pub fn retry_now(&self) {
        if self.is_up() {
            return;
        }
        let mut state = lock(&self.inner.probe);
        state.next_at = f64::NEG_INFINITY;
        state.backoff = self.inner.first_backoff;
    }

    /// Completes once the store has gone down (or changed state at all)
    /// since `ticket` was issued: a command in flight can stop waiting for
    /// a server already known to be gone. Never completes while the
    /// ticket's up period lasts.
    pub fn went_down(&self, ticket: Ticket) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            loop {
                if inner.epoch.load(Ordering::Acquire) != ticket.epoch {
                    return;
                }
                let listener = inner.changed.listen();
                if inner.epoch.load(Ordering::Acquire) != ticket.epoch {
                    return;
                }
                listener.await;
            }
        }
    }

    fn go_down(&self, up_epoch: u64) -> Option<Transition> {
        let inner = &self.inner;
        let mut state = lock(&inner.probe);
        inner
            .epoch
            .compare_exchange(up_epoch, up_epoch + 1, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let now = inner.clock.now();
        *state = ProbeState {
            in_flight: false,
            next_at: now,
            backoff: inner.first_backoff,
            down_since: now,
        };
        inner.skipped.store(0, Ordering::Relaxed);
        drop(state);
        inner.changed.notify(usize::MAX);
        Some(Transition::WentDown)
    }
}

impl Probe {
    /// The store answered: turns the health up. `Some(CameBack)` once per
    /// outage.
    pub fn succeeded(mut self) -> Option<Transition> {
        self.reported = true;
        let inner = &self.inner;
        let mut state = lock(&inner.probe);
        state.in_flight = false;
        inner
            .epoch
            .compare_exchange(
                self.epoch,
                self.epoch + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        let down_for = (inner.clock.now() - state.down_since).max(0.0);
        drop(state);
        inner.changed.notify(usize::MAX);
        Some(Transition::CameBack {
            down_for: Duration::try_from_secs_f64(down_for).unwrap_or(Duration::MAX),
            skipped: inner.skipped.swap(0, Ordering::Relaxed),
        })
    }

    /// The store did not answer: the next probe waits the backoff, which
    /// doubles (up to its bound).
    pub fn failed(mut self) {
        self.reported = true;
        self.back_off();
    }

    fn back_off(&self) {
        let inner = &self.inner;
        let mut state = lock(&inner.probe);
        if inner.epoch.load(Ordering::Acquire) != self.epoch {
            return;
        }
        state.in_flight = false;
        state.next_at = inner.clock.now() + state.backoff.as_secs_f64();
        state.backoff = state.backoff.saturating_mul(2).min(inner.max_backoff);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.reported {
            self.back_off();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock moved by hand.
    #[derive(Debug, Default)]
    struct TestClock(Mutex<f64>);

    impl TestClock {
        fn advance(&self, secs: f64) {
            *lock(&self.0) += secs;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> f64 {
            *lock(&self.0)
        }
    }

    fn health() -> (Health, Arc<TestClock>) {
        let clock = Arc::new(TestClock::default());
        let health = Health::new(
            clock.clone(),
            Duration::from_millis(100),
            Duration::from_millis(400),
        );
        (health, clock)
    }

    fn ticket(health: &Health) -> Ticket {
        match health.admit() {
            Admission::Proceed(ticket) => ticket,
            other => panic!("expected the call to proceed, got {other:?}"),
        }
    }

    fn probe(health: &Health) -> Option<Probe> {
        match health.admit() {
            Admission::Skip(probe) => probe,
            Admission::Proceed(_) => panic!("expected the call to be skipped"),
        }
    }

    #[test]
    fn one_failure_turns_it_down_once_and_later_failures_are_quiet() {
        let (health, _) = health();
        let (first, second) = (ticket(&health), ticket(&health));
        assert_eq!(health.failed(first), Some(Transition::WentDown));
        assert_eq!(health.failed(second), None, "the outage is reported once");
        assert_eq!(health.lost(), None);
        assert!(!health.is_up());
    }

    #[test]
    fn probes_come_one_at_a_time_with_a_doubling_bounded_backoff() {
        let (health, clock) = health();
        assert_eq!(health.lost(), Some(Transition::WentDown));
        let first = probe(&health).expect("the first probe comes at once");
        assert!(probe(&health).is_none(), "one probe at a time");
        first.failed();
        // Waits: 100 ms, 200 ms, 400 ms, 400 ms (the bound).
        for wait in [0.1, 0.2, 0.4, 0.4] {
            clock.advance(wait - 0.01);
            assert!(probe(&health).is_none(), "not before {wait} s");
            clock.advance(0.02);
            probe(&health)
                .unwrap_or_else(|| panic!("a probe after {wait} s"))
                .failed();
        }
    }

    #[test]
    fn a_dropped_probe_counts_as_failed_and_does_not_wedge_the_probing() {
        let (health, clock) = health();
        health.lost();
        drop(probe(&health).unwrap());
        assert!(probe(&health).is_none(), "backoff after a dropped probe");
        clock.advance(0.1);
        assert!(probe(&health).is_some());
    }

    #[test]
    fn a_successful_probe_turns_it_up_and_reports_the_outage() {
        let (health, clock) = health();
        health.lost();
        let probe_1 = probe(&health).unwrap();
        clock.advance(1.5);
        for _ in 0..9 {
            assert!(probe(&health).is_none());
        }
        assert_eq!(
            probe_1.succeeded(),
            Some(Transition::CameBack {
                down_for: Duration::from_secs_f64(1.5),
                skipped: 10,
            })
        );
        assert!(health.is_up());
        ticket(&health);
    }

    #[test]
    fn failures_from_before_a_recovery_do_not_turn_it_down_again() {
        let (health, _) = health();
        let old = ticket(&health);
        health.failed(old);
        probe(&health).unwrap().succeeded();
        assert_eq!(health.failed(old), None, "a late failure of the old period");
        assert!(health.is_up());
        assert_eq!(health.failed(ticket(&health)), Some(Transition::WentDown));
    }

    #[test]
    fn retry_now_skips_the_backoff_but_not_the_one_at_a_time_rule() {
        let (health, _) = health();
        health.retry_now();
        assert!(health.is_up(), "no effect while up");
        health.lost();
        probe(&health).unwrap().failed();
        assert!(probe(&health).is_none(), "backing off");
        health.retry_now();
        let now = probe(&health).expect("after a reconnect, a probe at once");
        health.retry_now();
        assert!(probe(&health).is_none(), "still one at a time");
        assert!(now.succeeded().is_some());
    }

    #[test]
    fn a_clock_that_goes_back_does_not_stall_the_probes() {
        let (health, clock) = health();
        clock.advance(100.0);
        health.lost();
        probe(&health).unwrap().failed();
        clock.advance(-50.0);
        assert!(probe(&health).is_some());
    }

    #[test]
    fn commands_in_flight_learn_that_the_store_went_down() {
        let (health, _) = health();
        let ticket = ticket(&health);
        let waiting = {
            let health = health.clone();
            std::thread::spawn(move || crate::block_on(health.went_down(ticket)))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "still up: keeps waiting");
        health.lost();
        waiting.join().unwrap();
        // Issued while down and then up again: already done.
        probe(&health).unwrap().succeeded();
        crate::block_on(health.went_down(ticket));
    }
}
