//! What a bounded `InMemCache` costs beside its peers: write stalls at a
//! million entries, a miss-and-insert bounded and unbounded, and memory
//! per entry. `cargo bench -p ac-benches --bench store_cost` runs all three
//! and prints markdown (progress on stderr); `-- stalls`, `-- miss` or
//! `-- memory` runs one. Timings depend on machine load: take them on a
//! quiet machine and print `uptime` beside them. Memory figures do not.
//!
//! - Stalls: each store bounded at 1 M entries takes 1 M inserts of new
//!   keys (filling it) and 1 M more (each evicting); every insert is timed.
//! - Miss and insert: 1 M calls with new keys, each a miss that runs the
//!   function and stores its result, through a cached function and at the
//!   store (a read that misses, then a write), on a store bounded at 100 k
//!   (already full) and on an unbounded one (holding the same 100 k first).
//! - Memory: the growth of the process's resident set for 1 M entries
//!   (keys `user:{i}`, values a distinct `Arc<String>` of 100 bytes or a
//!   `u64`), each store in a fresh child process.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use advanced_caching::crates::core::{Local, block_on};
use advanced_caching::{Entry, InMemCache, Store, Value, cache};
use hdrhistogram::Histogram;

const MILLION: usize = 1_000_000;
const TTL: Duration = Duration::from_secs(3600);

fn key(i: usize) -> String {
    format!("user:{i}")
}

fn hundred_bytes(i: usize) -> Arc<String> {
    let mut s = format!("{i:0>100}");
    s.truncate(100);
    Arc::new(s)
}

// ---------------------------------------------------------------- stalls

/// Inserts into a store under test.
trait Insert {
    fn insert(&self, key: &str, value: &Arc<String>);
    fn len(&self) -> usize;
}

impl Insert for InMemCache {
    fn insert(&self, key: &str, value: &Arc<String>) {
        let entry = Entry::new(Value::new(Arc::clone(value)), f64::INFINITY, 0.0);
        block_on(self.set(key, entry, Some(TTL))).expect("InMemCache writes do not fail");
    }
    fn len(&self) -> usize {
        InMemCache::len(self)
    }
}

impl Insert for moka::sync::Cache<String, Arc<String>> {
    fn insert(&self, key: &str, value: &Arc<String>) {
        moka::sync::Cache::insert(self, key.to_owned(), Arc::clone(value));
    }
    fn len(&self) -> usize {
        self.run_pending_tasks();
        self.entry_count() as usize
    }
}

impl Insert for quick_cache::sync::Cache<String, Arc<String>> {
    fn insert(&self, key: &str, value: &Arc<String>) {
        quick_cache::sync::Cache::insert(self, key.to_owned(), Arc::clone(value));
    }
    fn len(&self) -> usize {
        quick_cache::sync::Cache::len(self)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

fn micros(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

fn stalls_of(name: &str, store: &dyn Insert) -> String {
    let value = hundred_bytes(7);
    let mut keys = (0..2 * MILLION).map(key);
    let time = |h: &mut Histogram<u64>, key: String| {
        let start = Instant::now();
        store.insert(&key, &value);
        let ns = start.elapsed().as_nanos() as u64;
        h.saturating_record(ns.max(1));
        ns
    };
    let mut fill = histogram();
    for key in keys.by_ref().take(MILLION) {
        time(&mut fill, key);
    }
    let mut bound = histogram();
    let crossing = time(&mut bound, keys.next().expect("2 M keys"));
    for key in keys {
        time(&mut bound, key);
    }
    eprintln!("stalls: {name} done, {} entries", store.len());
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
        micros(fill.max()),
        micros(crossing),
        micros(bound.value_at_quantile(0.5)),
        micros(bound.value_at_quantile(0.99)),
        micros(bound.value_at_quantile(0.999)),
        micros(bound.value_at_quantile(0.9999)),
        micros(bound.max()),
        micros(bound.mean() as u64),
    )
}

fn stalls() -> String {
    let inmem = InMemCache::builder()
        .max_entries(MILLION)
        .build()
        .expect("a valid bound");
    let rows = [
        stalls_of("InMemCache", &inmem),
        stalls_of(
            "moka",
            &moka::sync::Cache::<String, Arc<String>>::new(MILLION as u64),
        ),
        stalls_of(
            "quick_cache",
            &quick_cache::sync::Cache::<String, Arc<String>>::new(MILLION),
        ),
    ];
    let mut out = String::from(
        "### Write stalls, bound 1 M entries\n\n\
         1 M inserts of new keys fill each store, then 1 M more each evict; every insert \
         timed. Target for `InMemCache`: at the bound, worst ≤ 5 ms and p99.99 ≤ 100 µs.\n\n\
         | store | worst while filling | write crossing the bound | p50 at the bound | p99 | \
         p99.9 | p99.99 | worst at the bound | mean at the bound |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------- miss + insert

const PREFILL: usize = 100_000;
const MISSES: usize = MILLION;

/// Mean ns per miss-and-insert through a cached function over `store`.
fn cached_miss(store: &InMemCache) -> f64 {
    let f = cache(3600)
        .key("k:{}")
        .store(store.clone())
        .wrap(|id: u64| id)
        .expect("a valid cached function");
    for id in 0..PREFILL as u64 {
        black_box(f.call(id));
    }
    let start = Instant::now();
    for id in PREFILL as u64..(PREFILL + MISSES) as u64 {
        black_box(f.call(id));
    }
    start.elapsed().as_nanos() as f64 / MISSES as f64
}

/// Mean ns per read-that-misses plus write, at the store.
fn store_miss(store: &InMemCache) -> f64 {
    let value = hundred_bytes(3);
    let round = |i: usize| {
        let key = key(i);
        if store.visit(&key, |_| ()) == Local::Missing {
            store.insert(&key, &value);
        }
    };
    (0..PREFILL).for_each(round);
    let start = Instant::now();
    (PREFILL..PREFILL + MISSES).for_each(round);
    start.elapsed().as_nanos() as f64 / MISSES as f64
}

fn quick_miss() -> f64 {
    let quick = quick_cache::sync::Cache::<String, Arc<String>>::new(PREFILL);
    let value = hundred_bytes(3);
    let round = |i: usize| {
        black_box(quick.get_or_insert_with(&key(i), || Ok::<_, ()>(Arc::clone(&value))))
            .expect("infallible");
    };
    (0..PREFILL).for_each(round);
    let start = Instant::now();
    (PREFILL..PREFILL + MISSES).for_each(round);
    start.elapsed().as_nanos() as f64 / MISSES as f64
}

fn miss() -> String {
    let bounded = || {
        InMemCache::builder()
            .max_entries(PREFILL)
            .build()
            .expect("a valid bound")
    };
    let cached = (cached_miss(&bounded()), cached_miss(&InMemCache::new()));
    eprintln!("miss: cached functions done");
    let store = (store_miss(&bounded()), store_miss(&InMemCache::new()));
    let quick = quick_miss();
    eprintln!("miss: stores done");
    format!(
        "### A miss that inserts\n\n\
         1 M new keys after 100 k; mean ns per miss. Target: bounded ≤ 2 × unbounded.\n\n\
         | path | bounded at 100 k | unbounded | bounded / unbounded |\n\
         |---|---:|---:|---:|\n\
         | cached function (`cache(3600).store(..)`, a `u64`) | {:.0} | {:.0} | {:.2} |\n\
         | store: `visit` miss + `set` (an `Arc<String>`) | {:.0} | {:.0} | {:.2} |\n\
         | quick_cache `get_or_insert_with`, bounded at 100 k | {quick:.0} | — | — |\n",
        cached.0,
        cached.1,
        cached.0 / cached.1,
        store.0,
        store.1,
        store.0 / store.1,
    )
}

// ---------------------------------------------------------------- memory

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

const SUBJECTS: [&str; 6] = [
    "papaya HashMap<String, V> (the floor)",
    "papaya HashMap<Box<str>, Entry> (ac-core's Entry, no store)",
    "quick_cache, capacity 1 M",
    "moka, capacity 1 M",
    "InMemCache, unbounded",
    "InMemCache, max_entries 1 M",
];

/// Builds subject `which` with 1 M entries of `V` and prints its bytes per
/// entry (run in a child process, so the heap starts empty).
fn memory_child<V: advanced_caching::crates::core::SerdeValue>(
    which: usize,
    value: impl Fn(usize) -> V,
) {
    type Papaya<K, V> = papaya::HashMap<K, V, foldhash::fast::RandomState>;
    fn papaya<K, V>() -> Papaya<K, V> {
        papaya::HashMap::builder()
            .hasher(foldhash::fast::RandomState::default())
            .build()
    }
    let before = resident_bytes();
    let (held, len): (Box<dyn std::any::Any>, usize) = match which {
        0 => {
            let map: Papaya<String, V> = papaya();
            (0..MILLION).for_each(|i| {
                map.pin().insert(key(i), value(i));
            });
            let len = map.len();
            (Box::new(map), len)
        }
        1 => {
            let map: Papaya<Box<str>, Entry> = papaya();
            (0..MILLION).for_each(|i| {
                let entry = Entry::new(Value::new(value(i)), f64::INFINITY, 0.0);
                map.pin().insert(key(i).into(), entry);
            });
            let len = map.len();
            (Box::new(map), len)
        }
        2 => {
            let quick = quick_cache::sync::Cache::<String, V>::new(MILLION);
            (0..MILLION).for_each(|i| quick.insert(key(i), value(i)));
            // Its shards round the capacity: it keeps a little under 1 M.
            let len = quick.len();
            (Box::new(quick), len)
        }
        3 => {
            let moka = moka::sync::Cache::<String, V>::new(MILLION as u64);
            (0..MILLION).for_each(|i| moka.insert(key(i), value(i)));
            moka.run_pending_tasks();
            let len = moka.entry_count() as usize;
            (Box::new(moka), len)
        }
        _ => {
            let store = if which == 4 {
                InMemCache::new()
            } else {
                InMemCache::builder()
                    .max_entries(MILLION)
                    .build()
                    .expect("a valid bound")
            };
            (0..MILLION).for_each(|i| {
                let entry = Entry::new(Value::new(value(i)), f64::INFINITY, 0.0);
                block_on(store.set(&key(i), entry, Some(TTL))).expect("no failure");
            });
            assert_eq!(store.len(), MILLION, "InMemCache kept every entry");
            (Box::new(store), MILLION)
        }
    };
    let grown = resident_bytes().saturating_sub(before);
    black_box(&held);
    println!("{:.1}", grown as f64 / len as f64);
}

fn memory() -> String {
    let exe = std::env::current_exe().expect("the bench binary");
    let measure = |which: usize, kind: &str| -> f64 {
        let out = std::process::Command::new(&exe)
            .args(["--memory-child", &which.to_string(), kind])
            .output()
            .expect("the bench binary runs itself");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("bytes per entry")
    };
    let rows: Vec<(f64, f64)> = (0..SUBJECTS.len())
        .map(|which| {
            let row = (measure(which, "arc"), measure(which, "u64"));
            eprintln!("memory: {} done: {row:?}", SUBJECTS[which]);
            row
        })
        .collect();
    let quick = rows[2];
    let mut out = String::from(
        "### Memory per entry\n\n\
         Growth of the resident set for 1 M inserts, keys `user:{i}`, in bytes per entry \
         held (fresh process each; quick_cache's shards keep a little under 1 M). Target: `InMemCache` ≤ quick_cache + 16 B.\n\n\
         | store | `Arc<String>` (100 B) | − quick_cache | `u64` | − quick_cache |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (name, (arc, word)) in SUBJECTS.iter().zip(&rows) {
        out.push_str(&format!(
            "| {name} | {arc:.0} | {:+.0} | {word:.0} | {:+.0} |\n",
            arc - quick.0,
            word - quick.1
        ));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--memory-child") {
        let which: usize = args[at + 1].parse().expect("a subject index");
        match args[at + 2].as_str() {
            "arc" => memory_child(which, hundred_bytes),
            _ => memory_child(which, |i| i as u64),
        }
        return;
    }
    let only = |what: &str| {
        !args
            .iter()
            .any(|a| ["stalls", "miss", "memory"].contains(&a.as_str()))
            || args.iter().any(|a| a == what)
    };
    if only("memory") {
        println!("{}", memory());
    }
    if only("miss") {
        println!("{}", miss());
    }
    if only("stalls") {
        println!("{}", stalls());
    }
}
