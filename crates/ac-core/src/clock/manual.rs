//! [`ManualClock`]: a test clock that moves only when told.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use event_listener::Event;

use super::{Clock, unix_now};
use crate::BoxFuture;

/// A clock that moves only when told: for tests of TTL and
/// stale-while-revalidate boundaries without sleeping. Clones share the time.
///
/// ```
/// use ac_core::Clock;
/// use ac_core::clock::ManualClock;
///
/// let clock = ManualClock::new(1_000.0);
/// clock.advance(60.0);
/// assert_eq!(clock.now(), 1_060.0);
/// ```
///
/// Periodic jobs scheduled on this clock (see [`Clock::alarm`]) wake when it
/// is moved past their tick, on whatever runtime they run.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

struct Manual {
    now: AtomicU64,
    moved: Event,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl ManualClock {
    /// A clock standing at `start` Unix seconds.
    pub fn new(start: f64) -> Self {
        Self {
            inner: Arc::new(Manual {
                now: AtomicU64::new(start.to_bits()),
                moved: Event::new(),
            }),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: f64) {
        self.inner.now.store(now.to_bits(), Ordering::SeqCst);
        self.inner.moved.notify(usize::MAX);
    }

    /// Moves time forward by `secs`.
    pub fn advance(&self, secs: f64) {
        let _ = self
            .inner
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
                Some((f64::from_bits(bits) + secs).to_bits())
            });
        self.inner.moved.notify(usize::MAX);
    }
}

impl Default for ManualClock {
    /// A clock standing at the current system time.
    fn default() -> Self {
        Self::new(unix_now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.inner.now.load(Ordering::SeqCst))
    }

    fn alarm(&self, deadline: f64) -> Option<BoxFuture<'static, ()>> {
        let clock = self.clone();
        Some(Box::pin(async move {
            loop {
                let moved = clock.inner.moved.listen();
                if clock.now() >= deadline {
                    return;
                }
                moved.await;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_alarm_fires_when_moved_past_the_deadline() {
        let clock = ManualClock::new(0.0);
        let alarm = clock.alarm(10.0).unwrap();
        let mover = clock.clone();
        let thread = std::thread::spawn(move || {
            mover.advance(5.0);
            mover.advance(5.0);
        });
        crate::block_on(alarm);
        assert!(clock.now() >= 10.0);
        thread.join().unwrap();
    }

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(10.0);
        let other = clock.clone();
        assert_eq!(clock.now(), 10.0);
        other.advance(2.5);
        assert_eq!(clock.now(), 12.5);
        clock.set(100.0);
        assert_eq!(other.now(), 100.0);
    }
}
