//! The coarse clock's ticker with real threads and real time: it parks
//! when nobody reads the clock, and a read after a long idle still gets the
//! current time. Its own test binary, so that no other test reads the
//! clock meanwhile; the tests share the one process-wide ticker, so they
//! run one at a time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ac_core::clock::{COARSE_RESOLUTION, CoarseClock, unix_now};
use ac_core::{Clock, ClockReader};

/// The tests share the process's one ticker.
static SERIAL: Mutex<()> = Mutex::new(());

/// How far behind the system clock a read may be: a tick, plus the time a
/// busy machine (2 cores, several builds) may leave the ticker or the
/// reader unscheduled, which was seen to reach ~90 ms. A parked ticker
/// that was not woken freezes the time for good, which the idle periods
/// below (0.4 s and more, summed over many rounds) make far larger.
const SLACK: f64 = 0.250;

/// A field of a `/proc/self/task/*/status` file.
#[cfg(target_os = "linux")]
fn status_field(path: &std::path::Path, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(path.join("status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|value| value.trim().to_owned())
}

/// The voluntary context switches (wake-ups) of the ticker thread, from
/// `/proc/self/task/TID/status`.
#[cfg(target_os = "linux")]
fn ticker_wakeups() -> u64 {
    static TICKER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let path = TICKER.get_or_init(|| {
        // Listing the tasks while other threads exit may skip entries:
        // look a few times.
        for _ in 0..100 {
            let found = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(Result::ok)
                .map(|task| task.path())
                .find(|path| status_field(path, "Name:").as_deref() == Some("ac-coarse-clock"));
            if let Some(path) = found {
                return path;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no ac-coarse-clock thread in this process");
    });
    status_field(path, "voluntary_ctxt_switches:")
        .expect("the ticker thread is gone")
        .parse()
        .unwrap()
}

/// Reads `clock` between two system-clock reads and checks it is current.
fn assert_current(clock: &dyn Fn() -> f64, what: &str) -> f64 {
    let before = unix_now();
    let now = clock();
    let after = unix_now();
    assert!(
        now <= after && now >= before - SLACK,
        "{what}: read {now}, system clock {before}..{after} ({:.1} ms behind)",
        (before - now) * 1e3
    );
    now
}

/// Waits (bounded) until the ticker thread stops waking up: no wake-up
/// over a window of 300 ticks, where a running ticker wakes ~300 times.
#[cfg(target_os = "linux")]
fn wait_until_parked() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let start = ticker_wakeups();
        std::thread::sleep(COARSE_RESOLUTION * 300);
        let woke = ticker_wakeups() - start;
        if woke <= 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ticker of an idle clock still wakes up {woke} times per 300 ticks"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn idle_ticker_parks_and_a_read_after_a_long_idle_is_current() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clock = CoarseClock::new();
    assert_current(&|| clock.now(), "first read");
    wait_until_parked();
    // A long idle: the time a parked clock would be behind if it kept the
    // last reader's value.
    std::thread::sleep(Duration::from_millis(400));
    assert_current(&|| clock.now(), "read after a long idle");
    // Through the inline path of hot code too.
    std::thread::sleep(Duration::from_millis(200));
    let reader = ClockReader::new(std::sync::Arc::new(clock));
    assert_current(&|| reader.now(), "ClockReader after a long idle");

    // The read woke the ticker: while someone reads, the time moves on
    // without any read being far behind.
    let woken = ticker_wakeups();
    let until = Instant::now() + Duration::from_millis(300);
    let mut last = 0.0;
    let mut advanced = 0;
    while Instant::now() < until {
        let now = assert_current(&|| clock.now(), "read while in use");
        assert!(now >= last, "time went back: {last} then {now}");
        if now > last {
            advanced += 1;
        }
        last = now;
        std::thread::yield_now();
    }
    assert!(
        advanced >= 50,
        "the clock advanced only {advanced} times in 300 ms of reads"
    );
    assert!(
        ticker_wakeups() > woken + 50,
        "the ticker did not run while the clock was read"
    );
    // And it parks again once nobody reads.
    wait_until_parked();
}

/// Readers on several threads that go idle for about as long as the
/// ticker waits before parking, so that reads race with parking and
/// waking: no read is ever stale (a lost wake-up would freeze the time at
/// the last reader's value).
#[test]
fn reads_racing_with_park_and_wake_are_never_stale() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clock = CoarseClock::new();
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(thread);
                for _ in 0..16 {
                    // Around the park threshold (100 ticks, ~0.1 s and up).
                    let idle = Duration::from_millis(rng.u64(60..260));
                    std::thread::sleep(idle);
                    for _ in 0..rng.usize(1..50) {
                        assert_current(&|| clock.now(), "racing read");
                    }
                }
            });
        }
    });
}
