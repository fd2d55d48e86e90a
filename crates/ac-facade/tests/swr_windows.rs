//! Stale-while-revalidate on the real clock, with real threads and, for
//! shared stores, a second real process: every stale window gets exactly
//! one refresh, window after window.
//!
//! The manual-clock tests in `swr.rs` prove the rules; these catch races
//! that only real interleavings produce. Each run hammers one key from
//! several threads (and from a child process running this same test
//! binary) for more than ten stale windows. Every run of the function
//! appends its start time to a log file shared by both processes, and the
//! run then checks the gaps between consecutive starts:
//! - no gap much shorter than `TTL`: two refreshes in one window would
//!   make one;
//! - no gap longer than `TTL` plus the function's time and some scheduling
//!   slack: a window without a refresh serves the stale value for up to
//!   `STALE` (30 s) and makes one far longer.
#![cfg(feature = "file")]

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use advanced_caching::crates::core::PreciseClock;
use advanced_caching::{Cached, InMemCache, LocalFileCache, Plain, Store, ThreadScheduler, cache};

/// Seconds an entry stays fresh: one stale window begins every `TTL` plus
/// the function's time.
const TTL: f64 = 0.1;
/// Long enough that a window without a refresh is unmistakable.
const STALE: f64 = 30.0;
/// How long the function takes.
const LOAD_TIME: Duration = Duration::from_millis(5);
/// How late a refresh may start after its window opens on a busy 2-core
/// machine (threads pause 0.2 ms between calls; the refresh job must be
/// scheduled).
const SLACK: f64 = 0.35;
/// The shortest gap allowed between two runs of the function: an entry is
/// written after its function returns and stays fresh for `TTL`, so the
/// next refresh starts at least `TTL` later. The cache reads the same clock
/// as the log (`PreciseClock`): the default coarse clock lagged real time
/// by ~50 ms on a loaded machine, which made entries go stale early.
const SHORTEST_GAP: f64 = TTL * 0.9;
/// How long each run hammers the key: at least ten windows.
const RUN_SECS: f64 = 2.5;
/// Threads calling the function in each process.
const THREADS: usize = 4;
/// Runs per store. On the code before the fix, a Redis or hybrid run
/// failed every time and a file run about every other time: enough runs
/// make a pass by luck negligible.
const RUNS: usize = 3;
/// Runs over the file store, whose stalls were rarer per window.
const FILE_RUNS: usize = 6;
/// Where a child process learns what to do: `kind|location|key|log|until`.
const CHILD_ENV: &str = "AC_SWR_WINDOWS_CHILD";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Builds the store named by `kind` at `location` (a directory or a URL).
fn store(kind: &str, location: &str) -> Arc<dyn Store> {
    match kind {
        "inmem" => Arc::new(InMemCache::new()),
        "file" => Arc::new(
            LocalFileCache::builder(location)
                .clock(PreciseClock)
                .build()
                .unwrap(),
        ),
        #[cfg(feature = "redis")]
        "redis" => Arc::new(
            advanced_caching::RedisCache::builder(location)
                .prefix("swrw:")
                .build()
                .unwrap(),
        ),
        #[cfg(feature = "redis")]
        "hybrid" => {
            let l2 = advanced_caching::RedisCache::builder(location)
                .prefix("swrw:")
                .build()
                .unwrap();
            Arc::new(
                advanced_caching::ChainCache::builder()
                    .level_with_ttl(InMemCache::new(), 60)
                    .level_with_ttl(l2, 120)
                    .clock(PreciseClock)
                    .build()
                    .unwrap(),
            )
        }
        other => panic!("unknown store kind {other:?}"),
    }
}

/// The cached function of a run: logs the start time of every run of the
/// function to `log` and returns it (µs), so values only grow.
fn counted(store: Arc<dyn Store>, key: &str, log: &Path) -> Cached<(), u64, Plain, dyn Store> {
    let log = log.to_owned();
    cache(TTL)
        .stale(STALE)
        .key(key)
        .store(store)
        .clock(PreciseClock)
        // A pool of its own, so runs and tests do not queue behind each other.
        .scheduler(ThreadScheduler::new("swr-windows", 2).unwrap())
        .wrap(move |()| {
            let started = unix_now();
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            // One short write per line: appends from two processes interleave
            // whole lines.
            file.write_all(format!("{started:.6}\n").as_bytes())
                .unwrap();
            thread::sleep(LOAD_TIME);
            (started * 1e6) as u64
        })
        .unwrap()
}

/// Calls `f` from `THREADS` threads until the Unix time `until`, checking
/// that every call returns at once with a value no older than the last.
fn hammer(f: &Cached<(), u64, Plain, dyn Store>, until: f64) {
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut last = 0;
                while unix_now() < until {
                    let started = Instant::now();
                    let value = f.call(());
                    assert!(value >= last, "a call went back to an older value");
                    last = value;
                    // A stale serve never waits for the refresh; only the
                    // very first miss of a process can take LOAD_TIME.
                    assert!(
                        started.elapsed() < Duration::from_secs(1),
                        "a call waited {:?}",
                        started.elapsed()
                    );
                    thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
}

/// The second process: this test binary, running only the child entry
/// point below.
fn spawn_child(kind: &str, location: &str, key: &str, log: &Path, until: f64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_entry_point",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{kind}|{location}|{key}|{}|{until}", log.display()),
        )
        .spawn()
        .unwrap()
}

/// Not a test of its own: the body of the second process of the
/// two-process runs, started by `spawn_child` with its instructions in
/// `CHILD_ENV`.
#[test]
#[ignore = "the second process of the two-process SWR tests; started by them"]
fn second_process_entry_point() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [kind, location, key, log, until] = parts[..] else {
        panic!("bad {CHILD_ENV}: {spec:?}");
    };
    let f = counted(store(kind, location), key, Path::new(log));
    hammer(&f, until.parse().unwrap());
}

/// Starts of the function's runs, in order.
fn starts(log: &Path) -> Vec<f64> {
    let mut starts: Vec<f64> = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    starts.sort_by(f64::total_cmp);
    starts
}

/// Checks one run: the first start is the priming miss, every later one a
/// refresh, one per window.
fn check_windows(what: &str, starts: &[f64], until: f64) -> Result<usize, String> {
    let longest = TTL + LOAD_TIME.as_secs_f64() + SLACK;
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        if gap < SHORTEST_GAP {
            return Err(format!(
                "{what}: two runs of the function {gap:.3} s apart, within one stale window \
                 (ttl {TTL}); starts: {starts:.3?}"
            ));
        }
        if gap > longest {
            return Err(format!(
                "{what}: no refresh for {gap:.3} s (a window opens every ~{TTL} s): a stale \
                 window went without its refresh; starts: {starts:.3?}"
            ));
        }
    }
    let last = starts.last().copied().unwrap_or(0.0);
    if until - last > longest {
        return Err(format!(
            "{what}: no refresh in the last {:.3} s of the run; starts: {starts:.3?}",
            until - last
        ));
    }
    let refreshes = starts.len() - 1;
    if refreshes < 10 {
        return Err(format!(
            "{what}: only {refreshes} refreshes in {RUN_SECS} s; starts: {starts:.3?}"
        ));
    }
    Ok(refreshes)
}

/// `runs` runs over the store `kind` at `location`, each on a fresh key,
/// with `processes` processes (1 or 2) calling it.
fn exactly_one_refresh_per_window(kind: &str, location: &str, processes: usize, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut refreshes = Vec::new();
    for run in 0..runs {
        let key = format!(
            "swr-windows:{kind}:{processes}:{run}:{}",
            std::process::id()
        );
        let log = dir.path().join(format!("run-{run}.log"));
        let f = counted(store(kind, location), &key, &log);
        f.call(()); // the priming miss, before any other caller exists
        let start = unix_now() + if processes > 1 { 0.3 } else { 0.0 };
        let until = start + RUN_SECS;
        let child = (processes > 1).then(|| spawn_child(kind, location, &key, &log, until));
        while unix_now() < start {
            thread::sleep(Duration::from_millis(5));
        }
        hammer(&f, until);
        if let Some(mut child) = child {
            assert!(child.wait().unwrap().success(), "the second process failed");
        }
        // A refresh started just before `until` may still be running.
        thread::sleep(LOAD_TIME * 4);
        let what = format!("{kind}, {processes} process(es), run {run}");
        match check_windows(&what, &starts(&log), until) {
            Ok(n) => refreshes.push(n),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(failure);
            }
        }
    }
    eprintln!(
        "{kind}, {processes} process(es): refreshes per run {refreshes:?}, {} of {runs} runs failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn temp_dir_path(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().unwrap().to_owned()
}

/// A directory for the file store on tmpfs where there is one: the store
/// fsyncs every write, and on a disk busy with other work (a build) one
/// fsync took up to a second and a half, which these timings cannot tell
/// from a window without a refresh.
fn store_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn inmem_one_process_refreshes_once_per_window() {
    exactly_one_refresh_per_window("inmem", "", 1, RUNS);
}

#[test]
fn file_one_process_refreshes_once_per_window() {
    let dir = store_dir();
    exactly_one_refresh_per_window("file", &temp_dir_path(&dir), 1, FILE_RUNS);
}

#[test]
fn file_two_processes_refresh_once_per_window_between_them() {
    let dir = store_dir();
    exactly_one_refresh_per_window("file", &temp_dir_path(&dir), 2, FILE_RUNS);
}

#[cfg(feature = "redis")]
mod redis {
    use super::{RUNS, exactly_one_refresh_per_window};
    use ac_testkit::RedisServer;

    #[test]
    fn redis_one_process_refreshes_once_per_window() {
        let server = RedisServer::start();
        exactly_one_refresh_per_window("redis", &server.url(), 1, RUNS);
    }

    #[test]
    fn redis_two_processes_refresh_once_per_window_between_them() {
        let server = RedisServer::start();
        exactly_one_refresh_per_window("redis", &server.url(), 2, RUNS);
    }

    #[test]
    fn hybrid_one_process_refreshes_once_per_window() {
        let server = RedisServer::start();
        exactly_one_refresh_per_window("hybrid", &server.url(), 1, RUNS);
    }

    #[test]
    fn hybrid_two_processes_refresh_once_per_window_between_them() {
        let server = RedisServer::start();
        exactly_one_refresh_per_window("hybrid", &server.url(), 2, RUNS);
    }
}
