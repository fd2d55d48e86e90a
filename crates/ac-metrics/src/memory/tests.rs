use std::thread;

use super::*;

#[test]
fn counts_are_exact_per_cache() {
    let m = InMemoryMetrics::new();
    for _ in 0..3 {
        m.record_hit("a", "k");
    }
    m.record_miss("a", "k");
    m.record_set("a", "k", None);
    m.record_delete("a", "k");
    m.record_error("a", "get", "store");
    m.record_error("a", "get", "store");
    m.record_error("a", "set", "serialization");
    m.record_memory_usage("a", 4096, 12);
    m.record_hit("b", "k");
    m.record_background_refresh("flags", true, Duration::from_millis(2));
    m.record_background_refresh("flags", false, Duration::from_millis(3));
    m.record_background_refresh("flags", true, Duration::from_millis(4));

    let stats = m.get_stats();
    let a = &stats.caches["a"];
    assert_eq!(
        (a.hits, a.misses, a.sets, a.deletes, a.errors),
        (3, 1, 1, 1, 3)
    );
    assert_eq!(a.hit_rate_percent, 75.0);
    assert_eq!((a.memory_bytes, a.entries), (4096, 12));
    assert_eq!(a.errors_by["get.store"], 2);
    assert_eq!(a.errors_by["set.serialization"], 1);
    assert_eq!(stats.caches["b"].hits, 1);
    assert_eq!(
        stats.background_refresh["flags"],
        RefreshStats {
            success: 2,
            failure: 1
        }
    );
    assert_eq!(
        stats.caches["flags"].latency["refresh"].count, 3,
        "refresh durations kept"
    );
}

#[test]
fn concurrent_recording_loses_nothing() {
    let m = InMemoryMetrics::new();
    thread::scope(|s| {
        for t in 0..4 {
            let m = &m;
            s.spawn(move || {
                for i in 0..10_000u64 {
                    m.record_hit("hot", "k");
                    if i % 10 == 0 {
                        m.record_miss("hot", "k");
                    }
                    m.record_latency("hot", "get", Duration::from_nanos(100 + t));
                }
            });
        }
    });
    let hot = &m.get_stats().caches["hot"];
    assert_eq!((hot.hits, hot.misses), (40_000, 4_000));
    assert_eq!(hot.latency["get"].count, 40_000);
}

#[test]
fn percentiles_are_within_one_percent() {
    let m = InMemoryMetrics::new();
    // 1 µs .. 10 ms, uniformly: p50 = 5 ms, p95 = 9.5 ms, p99 = 9.9 ms.
    for micros in 1..=10_000u64 {
        m.record_latency("c", "get", Duration::from_micros(micros));
    }
    let c = &m.get_stats().caches["c"];
    for (got, want) in [
        (c.latency_p50_ms, 5.0),
        (c.latency_p95_ms, 9.5),
        (c.latency_p99_ms, 9.9),
        (c.latency["get"].avg_ms, 5.0005),
    ] {
        assert!(
            (got - want).abs() / want < 0.01,
            "got {got} ms, want {want} ms"
        );
    }
}

#[test]
fn the_json_has_the_seed_shape() {
    let m = InMemoryMetrics::new();
    m.record_hit("get_user", "user:1");
    m.record_latency("get_user", "get", Duration::from_micros(80));
    m.record_background_refresh("flags", true, Duration::from_millis(1));
    let json = serde_json::to_value(m.get_stats()).unwrap();
    let user = &json["caches"]["get_user"];
    for field in [
        "hits",
        "misses",
        "hit_rate_percent",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "errors",
        "sets",
        "deletes",
        "memory_bytes",
        "entries",
    ] {
        assert!(
            user.get(field).is_some(),
            "caches.get_user.{field} missing: {user}"
        );
    }
    assert_eq!(user["hits"], 1);
    let p50 = user["latency_p50_ms"].as_f64().unwrap();
    assert!((p50 - 0.08).abs() < 0.0008, "{p50}");
    assert_eq!(json["background_refresh"]["flags"]["success"], 1);
    assert_eq!(json["background_refresh"]["flags"]["failure"], 0);
}

#[test]
fn clones_share_and_reset_forgets() {
    let m = InMemoryMetrics::new();
    let other = m.clone();
    other.record_hit("x", "k");
    assert_eq!(m.get_stats().caches["x"].hits, 1);
    m.reset();
    assert!(m.get_stats().caches.is_empty());
}
