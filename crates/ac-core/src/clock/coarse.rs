//! [`CoarseClock`]: wall time from one atomic that a ticker thread keeps
//! within a tick of the system clock, and that costs an idle process
//! nothing.
//!
//! The ticker does not write the time: once a tick it marks the cell
//! stale, and the first read after that takes the system time and puts it
//! in the cell for every other reader of that tick. So a read is one
//! relaxed load (about a nanosecond), plus one `SystemTime::now()` per
//! tick for the whole process; and a tick that no reader asked for shows:
//! the mark is still there. After [`IDLE_TICKS`] such ticks in a row the
//! ticker parks, and the next read (which finds the mark, reads the system
//! time) unparks it. An idle process has no thread waking up for it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;

use super::{Clock, unix_now};

/// How often the coarse clock's ticker marks the time stale: a read is at
/// most about this much behind the system clock (more only if the ticker
/// thread is not scheduled in time).
pub const COARSE_RESOLUTION: Duration = Duration::from_millis(1);

/// Ticks in a row without a reader after which the ticker parks until the
/// next read: about 0.1 s.
pub const IDLE_TICKS: u32 = 100;

/// The cell value meaning "stale: read the system clock". A NaN payload
/// that `unix_now` (a finite, non-negative number) never produces.
const STALE: u64 = 0x7ff8_dead_c0de_0001;

/// The process-wide cell of [`CoarseClock`]: what [`Clock::static_cell`]
/// hands to hot paths so that they read it inline.
#[derive(Debug)]
pub struct CoarseCell {
    /// Unix seconds as `f64` bits, or [`STALE`].
    bits: AtomicU64,
    /// Whether the ticker is parked (or about to): a reader that refreshes
    /// the cell then unparks it.
    parked: AtomicBool,
    /// The ticker thread, once started.
    ticker: OnceLock<Option<Thread>>,
}

/// The one coarse cell of the process.
static CELL: CoarseCell = CoarseCell {
    bits: AtomicU64::new(STALE),
    parked: AtomicBool::new(false),
    ticker: OnceLock::new(),
};

impl CoarseCell {
    /// Now, in Unix seconds: one relaxed load, except for the first read of
    /// a tick, which reads the system clock for everyone.
    #[inline]
    pub fn now(&self) -> f64 {
        let bits = self.bits.load(Ordering::Relaxed);
        if bits == STALE {
            return self.refresh();
        }
        f64::from_bits(bits)
    }

    /// The first read since the ticker marked the cell stale: the system
    /// time, shared through the cell, and a wake-up for a parked ticker.
    #[cold]
    #[inline(never)]
    fn refresh(&self) -> f64 {
        let now = unix_now();
        let Some(Some(ticker)) = self.ticker.get() else {
            // No ticker (it could not start): keep the cell stale, so that
            // every read asks the system clock rather than stand still.
            return now;
        };
        let now = match self.bits.compare_exchange(
            STALE,
            now.to_bits(),
            Ordering::SeqCst,
            Ordering::Relaxed,
        ) {
            Ok(_) => now,
            // Another reader of this tick was first: agree with it, so one
            // thread never sees the time go back between two reads.
            Err(other) if other != STALE => f64::from_bits(other),
            Err(_) => now,
        };
        if self.parked.swap(false, Ordering::SeqCst) {
            ticker.unpark();
        }
        now
    }

    /// Starts the ticker thread, once per process.
    fn start(&'static self) {
        self.ticker.get_or_init(|| {
            let spawned = std::thread::Builder::new()
                .name("ac-coarse-clock".into())
                .spawn(|| CELL.tick_forever());
            match spawned {
                Ok(handle) => Some(handle.thread().clone()),
                Err(error) => {
                    // Without a ticker the first reader's time would stand
                    // still: read the system clock on every call instead.
                    tracing::error!(target: "advanced_caching::clock", %error, "cannot start the coarse clock thread; every read will ask the system clock");
                    None
                }
            }
        });
    }

    /// The ticker: marks the cell stale every tick; parks after
    /// [`IDLE_TICKS`] ticks that no reader asked for.
    fn tick_forever(&self) -> ! {
        let mut idle = 0u32;
        loop {
            std::thread::sleep(COARSE_RESOLUTION);
            let previous = self.bits.swap(STALE, Ordering::SeqCst);
            idle = if previous == STALE { idle + 1 } else { 0 };
            if idle < IDLE_TICKS {
                continue;
            }
            // Park, unless a reader came between the swap and here: it
            // found `parked` false and will not unpark, so look once more
            // after announcing the park.
            self.parked.store(true, Ordering::SeqCst);
            if self.bits.load(Ordering::SeqCst) == STALE {
                // Spurious wake-ups are harmless: the loop checks again.
                while self.parked.load(Ordering::SeqCst) {
                    std::thread::park();
                }
            } else {
                self.parked.store(false, Ordering::SeqCst);
            }
            idle = 0;
            // The reader that woke us shared its time: mark it stale now,
            // not a tick later, so the wake-up latency is all it can lag.
            self.bits.store(STALE, Ordering::SeqCst);
        }
    }

    /// Whether the ticker is parked (for tests and diagnostics).
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }
}

/// Wall-clock time at most about a tick ([`COARSE_RESOLUTION`]) behind the
/// system clock, for one relaxed atomic load a read (about a nanosecond)
/// instead of a `SystemTime::now()` call (about 30 ns on some virtual
/// machines).
///
/// One ticker thread per process, started by the first
/// [`CoarseClock::new`], marks the time stale once a tick; the first read of
/// a tick reads the system clock for every reader. When nobody has read
/// the clock for about 0.1 s ([`IDLE_TICKS`]) the ticker parks, so an idle
/// process pays no wake-ups for it; the next read finds the time stale,
/// reads the system clock and wakes the ticker.
///
/// ```
/// use ac_core::{Clock, CoarseClock};
///
/// let clock = CoarseClock::new();
/// let system = ac_core::clock::unix_now();
/// assert!((clock.now() - system).abs() < 1.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    _started: (),
}

impl CoarseClock {
    /// The coarse clock, starting the ticker thread on first use.
    pub fn new() -> Self {
        CELL.start();
        Self { _started: () }
    }

    /// The process-wide cell this clock reads.
    pub fn cell() -> &'static CoarseCell {
        &CELL
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
        CELL.now()
    }

    fn static_cell(&self) -> Option<&'static CoarseCell> {
        Some(&CELL)
    }
}
