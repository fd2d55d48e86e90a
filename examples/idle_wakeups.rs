//! How often an idle process wakes up because of the cache: a sync cached
//! function over the default in-memory store is called, then the process
//! sits idle; the example counts the voluntary context switches (wakeups)
//! of each of its threads over the idle window, from `/proc` (Linux only).
//!
//! Run with `cargo run --release --example idle_wakeups [SECONDS]`
//! (default 10 s).

use std::time::Duration;

use advanced_caching::{Error, cache};

/// `(thread id, thread name, voluntary context switches)` of every thread
/// of this process.
fn switches() -> Vec<(String, String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out: Vec<(String, String, u64)> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            let switches = field("voluntary_ctxt_switches:")?.parse().ok()?;
            let tid = task.file_name().to_string_lossy().into_owned();
            Some((tid, field("Name:")?, switches))
        })
        .collect();
    out.sort();
    out
}

fn main() -> Result<(), Error> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let square = cache(60).key("square:{}").wrap(|n: u64| n * n)?;
    for n in 0..1_000 {
        assert_eq!(square.call(n % 10), (n % 10) * (n % 10));
    }
    // Let anything started by the calls settle, then watch the idle process.
    std::thread::sleep(Duration::from_millis(500));
    let before = switches();
    std::thread::sleep(Duration::from_secs(secs));
    let after = switches();
    println!("wakeups per second over {secs} s of idle (voluntary context switches):");
    let mut total = 0.0;
    for (tid, name, end) in &after {
        let start = before
            .iter()
            .find(|(t, _, _)| t == tid)
            .map_or(0, |(_, _, s)| *s);
        #[allow(clippy::cast_precision_loss)]
        let rate = end.saturating_sub(start) as f64 / secs as f64;
        total += rate;
        println!("  {name:<20} {rate:>8.1}/s");
    }
    println!("  {:<20} {total:>8.1}/s", "process");
    // The cache still answers after the idle window.
    assert_eq!(square.call(7), 49);
    Ok(())
}
