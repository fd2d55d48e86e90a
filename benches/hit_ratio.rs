//! Hit ratios of `InMemCache`, moka, quick_cache and an exact LRU, side by
//! side on the same request streams (see BENCH.md, "Hit ratio").
//!
//! Each cache sees every request of a stream: a read, and on a miss a write
//! of that key, as a cached function does. Streams are deterministic
//! (fixed seeds): Zipf s = 0.8, 1.0 and 1.2 over a universe of 1 M keys,
//! and a hot Zipf (s = 1.0) set interleaved with one-off scans (keys never
//! requested again) making up 20 % or 50 % of the requests, at capacities
//! of 10 k and 100 k entries. Hit ratios do not depend on machine load;
//! the ns per request printed beside them do (and include key formatting
//! for `InMemCache`, whose keys are strings).
//!
//! `cargo bench -p ac-benches --bench hit_ratio` runs 10 M requests per
//! stream (a few minutes); `-- --smoke` runs 300 k (seconds, for CI) and
//! checks only that `InMemCache` beats the exact LRU. `-- --check` exits
//! non-zero when a target (≥ the better of moka and quick_cache, within
//! 0.5 points) is missed; `--stream TEXT` and `--capacity N` run the
//! streams whose name contains TEXT, at that capacity; `--subject NAME`
//! runs one cache only, for profiling. Markdown goes to stdout, progress to stderr;
//! `scripts/bench-hit-ratio` puts the table into BENCH.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use advanced_caching::crates::core::block_on;
use advanced_caching::{Entry, InMemCache, Store, Value};

const UNIVERSE: usize = 1_000_000;
const CAPACITIES: [usize; 2] = [10_000, 100_000];
/// Points a cache may trail the better peer by and still meet the target.
const TOLERANCE: f64 = 0.5;

/// A sampler of Zipf-distributed ranks by inverting the exact CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|rank| {
                sum += 1.0 / (rank as f64).powf(s);
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> u64 {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c < u) as u64
    }
}

/// Spreads ranks over the key space so that popular keys are not adjacent.
fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 8
}

struct Stream {
    name: String,
    requests: Vec<u64>,
}

fn zipf_stream(s: f64, requests: usize, seed: u64) -> Stream {
    let zipf = Zipf::new(UNIVERSE, s);
    let mut rng = fastrand::Rng::with_seed(seed);
    Stream {
        name: format!("Zipf {s:.1}"),
        requests: (0..requests)
            .map(|_| key_of(zipf.sample(&mut rng)))
            .collect(),
    }
}

/// Runs of `hot` Zipf 1.0 requests, each followed by `scan` requests for
/// keys never requested before or after.
fn scan_stream(requests: usize, hot: usize, scan: usize, seed: u64) -> Stream {
    let zipf = Zipf::new(UNIVERSE, 1.0);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(requests);
    // Beyond every hot key: `key_of` maps ranks below 2^56 under 2^56.
    let mut next_scan = 1u64 << 60;
    while out.len() < requests {
        out.extend((0..hot).map(|_| key_of(zipf.sample(&mut rng))));
        out.extend((0..scan).map(|_| {
            next_scan += 1;
            next_scan
        }));
    }
    out.truncate(requests);
    Stream {
        name: format!(
            "hot Zipf 1.0 + scans {} %",
            (100 * scan).div_ceil(hot + scan)
        ),
        requests: out,
    }
}

/// A cache under test: `access` reads `key` and, on a miss, writes it.
trait Subject {
    /// Whether `key` was a hit.
    fn access(&mut self, key: u64) -> bool;
}

struct Mem {
    cache: InMemCache,
    buf: String,
}

impl Subject for Mem {
    fn access(&mut self, key: u64) -> bool {
        self.buf.clear();
        let _ = write!(self.buf, "k{key}");
        if self.cache.visit(&self.buf, |_| ()) == advanced_caching::crates::core::Local::Found {
            return true;
        }
        let entry = Entry::new(Value::new(key), f64::INFINITY, 0.0);
        block_on(
            self.cache
                .set(&self.buf, entry, Some(Duration::from_secs(3600))),
        )
        .expect("InMemCache writes do not fail");
        false
    }
}

struct Moka(moka::sync::Cache<u64, u64>);

impl Subject for Moka {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);

impl Subject for Quick {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

/// An exact LRU: a map to nodes of a doubly linked list in a vector.
struct Lru {
    capacity: usize,
    index: HashMap<u64, usize>,
    /// (key, prev, next); the head is the least recently used.
    nodes: Vec<(u64, usize, usize)>,
    head: usize,
    tail: usize,
}

const END: usize = usize::MAX;

impl Lru {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            index: HashMap::with_capacity(capacity + 1),
            nodes: Vec::with_capacity(capacity),
            head: END,
            tail: END,
        }
    }

    fn unlink(&mut self, at: usize) {
        let (_, prev, next) = self.nodes[at];
        match prev {
            END => self.head = next,
            prev => self.nodes[prev].2 = next,
        }
        match next {
            END => self.tail = prev,
            next => self.nodes[next].1 = prev,
        }
    }

    fn push_back(&mut self, at: usize) {
        self.nodes[at].1 = self.tail;
        self.nodes[at].2 = END;
        match self.tail {
            END => self.head = at,
            tail => self.nodes[tail].2 = at,
        }
        self.tail = at;
    }
}

impl Subject for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&at) = self.index.get(&key) {
            self.unlink(at);
            self.push_back(at);
            return true;
        }
        let at = if self.nodes.len() < self.capacity {
            self.nodes.push((key, END, END));
            self.nodes.len() - 1
        } else {
            let victim = self.head;
            self.unlink(victim);
            self.index.remove(&self.nodes[victim].0);
            self.nodes[victim].0 = key;
            victim
        };
        self.index.insert(key, at);
        self.push_back(at);
        false
    }
}

const SUBJECTS: [&str; 4] = ["InMemCache", "moka", "quick_cache", "exact LRU"];

fn subject(name: &str, capacity: usize) -> Box<dyn Subject> {
    match name {
        "InMemCache" => Box::new(Mem {
            cache: InMemCache::builder()
                .max_entries(capacity)
                .build()
                .expect("a valid bound"),
            buf: String::new(),
        }),
        "moka" => Box::new(Moka(moka::sync::Cache::new(capacity as u64))),
        "quick_cache" => Box::new(Quick(quick_cache::sync::Cache::new(capacity))),
        _ => Box::new(Lru::new(capacity)),
    }
}

/// Hit ratio in percent and ns per request.
fn run(subject: &mut dyn Subject, requests: &[u64]) -> (f64, f64) {
    let start = Instant::now();
    let hits = requests.iter().filter(|&&key| subject.access(key)).count();
    let ns = start.elapsed().as_nanos() as f64 / requests.len() as f64;
    (100.0 * hits as f64 / requests.len() as f64, ns)
}

/// The 1-minute load average, as `uptime` shows it.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let load_at_start = load();
    let smoke = args.iter().any(|a| a == "--smoke");
    let check = args.iter().any(|a| a == "--check");
    let requests = if smoke { 300_000 } else { 10_000_000 };
    // `--stream TEXT` and `--capacity N` run a part of the grid.
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let stream_filter = value_of("--stream");
    let capacity_filter: Option<usize> = value_of("--capacity").and_then(|c| c.parse().ok());
    let streams: [&dyn Fn() -> Stream; 5] = [
        &|| zipf_stream(0.8, requests, 8),
        &|| zipf_stream(1.0, requests, 10),
        &|| zipf_stream(1.2, requests, 12),
        &|| scan_stream(requests, 100_000, 25_000, 20),
        &|| scan_stream(requests, 20_000, 20_000, 50),
    ];
    // `--subject NAME` runs one cache only (for profiling; no table).
    if let Some(name) = value_of("--subject") {
        for make in streams {
            let stream = make();
            if stream_filter
                .as_ref()
                .is_some_and(|f| !stream.name.contains(f.as_str()))
            {
                continue;
            }
            for capacity in CAPACITIES
                .into_iter()
                .filter(|c| capacity_filter.is_none_or(|f| f == *c))
            {
                let (ratio, ns) = run(&mut *subject(&name, capacity), &stream.requests);
                println!(
                    "{} {capacity} {name}: {ratio:.2} % {ns:.0} ns/request",
                    stream.name
                );
            }
        }
        return;
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "{} requests per stream, key universe {} (scan keys outside it), deterministic seeds; \
         hit ratio in %, best in bold. Target: `InMemCache` ≥ the better of moka and \
         quick_cache − {TOLERANCE} points.\n",
        thousands(requests),
        thousands(UNIVERSE),
    );
    let _ = writeln!(
        table,
        "| stream | capacity | {} | target |",
        SUBJECTS.join(" | ")
    );
    let _ = writeln!(table, "|---|---|{}---|", "---:|".repeat(SUBJECTS.len()));
    let mut timing = String::from("| stream | capacity | ");
    let _ = writeln!(timing, "{} |", SUBJECTS.join(" | "));
    let _ = writeln!(timing, "|---|---|{}", "---:|".repeat(SUBJECTS.len()));
    let mut missed = Vec::new();
    for make in streams {
        let stream = make();
        if stream_filter
            .as_ref()
            .is_some_and(|f| !stream.name.contains(f.as_str()))
        {
            continue;
        }
        for capacity in CAPACITIES {
            if capacity_filter.is_some_and(|c| c != capacity) {
                continue;
            }
            let results: Vec<(f64, f64)> = SUBJECTS
                .iter()
                .map(|name| {
                    let (ratio, ns) = run(&mut *subject(name, capacity), &stream.requests);
                    eprintln!(
                        "{:<26} {:>7} {name:<12} {ratio:6.2} %  {ns:7.1} ns/request",
                        stream.name, capacity
                    );
                    (ratio, ns)
                })
                .collect();
            let best = results.iter().map(|r| r.0).fold(f64::MIN, f64::max);
            let peers = results[1].0.max(results[2].0);
            let ours = results[0].0;
            let met = ours >= peers - TOLERANCE;
            if smoke && ours < results[3].0 - TOLERANCE {
                missed.push(format!(
                    "{} at {capacity}: InMemCache {ours:.2} % < exact LRU {:.2} %",
                    stream.name, results[3].0
                ));
            }
            if !smoke && !met {
                missed.push(format!(
                    "{} at {capacity}: InMemCache {ours:.2} % < {peers:.2} % - {TOLERANCE}",
                    stream.name
                ));
            }
            let cells: Vec<String> = results
                .iter()
                .map(|&(ratio, _)| {
                    if ratio == best {
                        format!("**{ratio:.2}**")
                    } else {
                        format!("{ratio:.2}")
                    }
                })
                .collect();
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} ({:+.2}) |",
                stream.name,
                thousands(capacity),
                cells.join(" | "),
                if met { "met" } else { "**missed**" },
                ours - peers
            );
            let ns: Vec<String> = results.iter().map(|r| format!("{:.0}", r.1)).collect();
            let _ = writeln!(
                timing,
                "| {} | {} | {} |",
                stream.name,
                thousands(capacity),
                ns.join(" | ")
            );
        }
    }
    println!("{table}");
    println!(
        "ns per request in the same run (single thread; load-dependent, only a rough guide; \
         `InMemCache` also formats a string key per request). Load average (1 min) at the \
         start {load_at_start}, at the end {}, on {} cores:\n",
        load(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("{timing}");
    if !missed.is_empty() {
        eprintln!("missed:\n  {}", missed.join("\n  "));
        if check || smoke {
            std::process::exit(1);
        }
    }
}

fn thousands(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{} M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{} k", n / 1_000),
        n => n.to_string(),
    }
}
