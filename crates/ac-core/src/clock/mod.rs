//! The [`Clock`] trait, where entries get their timestamps, and its
//! implementations: [`CoarseClock`] for production (one atomic load a
//! read, no wake-ups while idle), [`PreciseClock`], and [`ManualClock`]
//! for tests.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod coarse;
mod manual;

pub use coarse::{COARSE_RESOLUTION, CoarseCell, CoarseClock, IDLE_TICKS};
pub use manual::ManualClock;

/// Wall-clock time in Unix seconds.
///
/// Entries carry absolute timestamps (`fresh_until`, `created_at`) so that
/// processes sharing a store agree on them; a clock is therefore wall time,
/// not a monotonic instant. Injectable, so tests move time instead of
/// sleeping. Reading it is on every cache hit: implementations must be cheap.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> f64;

    /// The process-wide [`CoarseCell`], if this clock is just a read of it
    /// (as [`CoarseClock`] is). Lets hot paths read it inline instead of
    /// through a virtual call; `None` (the default) is always correct.
    fn static_cell(&self) -> Option<&'static CoarseCell> {
        None
    }

    /// For clocks that do not follow real time (test clocks): a future that
    /// completes once [`Clock::now`] reaches `deadline`. `None` (the
    /// default) means real time: schedulers use their runtime's timer.
    fn alarm(&self, deadline: f64) -> Option<crate::BoxFuture<'static, ()>> {
        let _ = deadline;
        None
    }
}

/// A shared [`Clock`] with the common case, a [`Clock::static_cell`], read
/// inline. What policies and in-process stores hold.
#[derive(Clone)]
pub struct ClockReader {
    cell: Option<&'static CoarseCell>,
    clock: Arc<dyn Clock>,
}

impl ClockReader {
    /// Wraps `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            cell: clock.static_cell(),
            clock,
        }
    }

    /// Now, in Unix seconds.
    #[inline]
    pub fn now(&self) -> f64 {
        match self.cell {
            Some(cell) => cell.now(),
            None => self.clock.now(),
        }
    }

    /// The wrapped clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

impl fmt::Debug for ClockReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.clock.fmt(f)
    }
}

/// [`SystemTime::now`] on every read: exact, but ~30 ns a read on some
/// machines. Production code wants the [`CoarseClock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PreciseClock;

/// A shared clock is a clock too, so builders that take an `impl Clock`
/// accept the `Arc<dyn Clock>` another part already holds, and read
/// through to it (its coarse cell and alarms included).
impl Clock for Arc<dyn Clock> {
    #[inline]
    fn now(&self) -> f64 {
        (**self).now()
    }

    fn static_cell(&self) -> Option<&'static CoarseCell> {
        (**self).static_cell()
    }

    fn alarm(&self, deadline: f64) -> Option<crate::BoxFuture<'static, ()>> {
        (**self).alarm(deadline)
    }
}

impl Clock for PreciseClock {
    fn now(&self) -> f64 {
        unix_now()
    }
}

/// Now in Unix seconds from the system clock; 0 before 1970.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A number of seconds as given to builders: integers, floats or a
/// [`Duration`]. Validation (no negative, no NaN) happens at construction.
pub trait IntoSeconds {
    /// The number of seconds (may be negative or NaN; builders refuse those).
    fn into_seconds(self) -> f64;
}

macro_rules! into_seconds {
    ($($t:ty),*) => {$(
        impl IntoSeconds for $t {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn into_seconds(self) -> f64 { self as f64 }
        }
    )*};
}
into_seconds!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

impl IntoSeconds for Duration {
    fn into_seconds(self) -> f64 {
        self.as_secs_f64()
    }
}

/// Checks a seconds value from a builder: finite or `+inf`, not negative.
pub fn check_seconds(what: &str, secs: f64) -> Result<f64, crate::Error> {
    if secs.is_nan() || secs < 0.0 {
        return Err(crate::Error::invalid_config(format!(
            "{what} must be a non-negative number of seconds, got {secs}"
        )));
    }
    Ok(secs)
}

/// Seconds as a store TTL: `None` (keep until deleted) for infinity.
pub fn ttl_duration(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}
