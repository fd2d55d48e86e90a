//! The [`Clock`] trait: where entries get their timestamps.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in Unix seconds.
///
/// Entries carry absolute timestamps (`fresh_until`, `created_at`) so that
/// processes sharing a store agree on them; a clock is therefore wall time,
/// not a monotonic instant. Injectable, so tests move time instead of
/// sleeping. Reading it is on every cache hit: implementations must be cheap.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> f64;

    /// A process-wide cell holding the current time as `f64` bits, if this
    /// clock is just a read of one. Lets hot paths read it inline instead
    /// of through a virtual call; `None` (the default) is always correct.
    fn static_cell(&self) -> Option<&'static AtomicU64> {
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
    cell: Option<&'static AtomicU64>,
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
            Some(cell) => f64::from_bits(cell.load(Ordering::Relaxed)),
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
/// machines. Production code wants a coarse clock (see `ac-sched`).
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

    fn static_cell(&self) -> Option<&'static AtomicU64> {
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
        return Err(crate::Error::InvalidConfig(format!(
            "{what} must be a non-negative number of seconds, got {secs}"
        )));
    }
    Ok(secs)
}

/// Seconds as a store TTL: `None` (keep until deleted) for infinity.
pub fn ttl_duration(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

/// How often the coarse clock's ticker thread reads the system clock.
pub const COARSE_RESOLUTION: Duration = Duration::from_millis(1);

/// Unix seconds (f64 bits), updated by the ticker thread.
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);
static TICKER: OnceLock<()> = OnceLock::new();

/// Wall-clock time read from an atomic that a background thread refreshes
/// every [`COARSE_RESOLUTION`]: a read is one relaxed load (about a
/// nanosecond) instead of a `SystemTime::now()` call (about 30 ns on some
/// virtual machines), and is at most a tick or so behind.
///
/// The ticker is one daemon thread per process, started by the first
/// [`CoarseClock::new`]; it sleeps between ticks and holds no locks.
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    _started: (),
}

impl CoarseClock {
    /// The coarse clock, starting the ticker thread on first use.
    pub fn new() -> Self {
        TICKER.get_or_init(|| {
            COARSE_NOW.store(unix_now().to_bits(), Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("ac-coarse-clock".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(COARSE_RESOLUTION);
                        COARSE_NOW.store(unix_now().to_bits(), Ordering::Relaxed);
                    }
                });
            if let Err(error) = spawned {
                // Without a ticker the clock would stand still; say so loudly.
                tracing::error!(target: "advanced_caching::clock", %error, "cannot start the coarse clock thread; time will not advance");
            }
        });
        Self { _started: () }
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> f64 {
        f64::from_bits(COARSE_NOW.load(Ordering::Relaxed))
    }

    fn static_cell(&self) -> Option<&'static AtomicU64> {
        Some(&COARSE_NOW)
    }
}
