//! Metrics: one InMemoryMetrics shared by a cached function and a bg
//! loader, its JSON stats, and the exporters (Prometheus, OpenTelemetry,
//! GCP Cloud Monitoring).
//!
//! Run with `cargo run --example metrics_and_exporters`.

use std::time::Duration;

use advanced_caching::exporters::{
    GcpCloudMonitoringMetrics, OpenTelemetryMetrics, PrometheusMetrics,
};
use advanced_caching::{Error, InMemoryMetrics, bg, cache};

fn main() -> Result<(), Error> {
    println!("1. InMemoryMetrics shared by a cached function and a bg loader");
    let metrics = InMemoryMetrics::new();
    let get_user = cache(60)
        .key("user:{}")
        .name("get_user")
        .metrics(metrics.clone())
        .wrap(|uid: u64| {
            std::thread::sleep(Duration::from_micros(300)); // a query
            format!("user-{uid}")
        })?;
    let flags = bg(300)
        .key("flags")
        .metrics(metrics.clone())
        .wrap(|| vec!["new_checkout".to_string()])?;
    for uid in [1, 2, 1, 1, 3, 1, 2, 1] {
        get_user.call(uid);
    }
    flags.get();
    let stats = serde_json::to_string_pretty(&metrics.get_stats()).expect("stats serialize");
    println!("{stats}");

    println!("\n2. Prometheus, through the `metrics` facade");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).expect("no recorder installed yet");
    // In a service: advanced_caching::exporters::install_prometheus_http(addr)
    let catalog = cache(3600)
        .key("catalog:{}")
        .name("catalog")
        .metrics(PrometheusMetrics::new("myapp", "cache"))
        .wrap(|page: u32| vec![page; 3])?;
    for page in [1, 1, 2] {
        catalog.call(page);
    }
    for line in prometheus
        .render()
        .lines()
        .filter(|l| l.starts_with("myapp_cache_") && !l.contains("latency"))
    {
        println!("  {line}");
    }

    println!("\n3. OpenTelemetry: instruments on the global meter provider's meter");
    let _otel = OpenTelemetryMetrics::new("myapp.cache");
    println!(
        "  OpenTelemetryMetrics::new(\"myapp.cache\") -> cache.hits, cache.misses, cache.latency, ..."
    );

    println!("\n4. GCP Cloud Monitoring: custom metrics, batched every flush interval");
    let gcp = GcpCloudMonitoringMetrics::builder("my-project")
        .token_provider(|| Err(Error::Unsupported("a token in this example".into())))
        .flush_interval(3600.0)
        .build()?;
    let _cached = cache(60).key("k").metrics(gcp.clone()).wrap(|()| 1u8)?;
    _cached.call(());
    let requests = gcp.requests();
    println!(
        "  a flush now would POST {} request(s), e.g. {} series",
        requests.len(),
        requests[0]["timeSeries"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}
