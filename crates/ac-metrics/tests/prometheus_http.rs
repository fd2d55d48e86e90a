//! Scrape a real HTTP listener on loopback. Alone in its binary: it
//! installs the process-wide `metrics` recorder.
#![cfg(feature = "prometheus")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ac_core::MetricsCollector;
use ac_metrics::{PrometheusMetrics, install_prometheus_http};

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            return response;
        }
        assert!(Instant::now() < deadline, "no listener on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scrape_sees_what_the_cache_recorded() {
    let addr = free_port();
    install_prometheus_http(addr).unwrap();
    let m = PrometheusMetrics::new("svc", "cache");
    for _ in 0..5 {
        m.record_hit("catalog", "k");
    }
    m.record_miss("catalog", "k");
    let response = scrape(addr);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#"svc_cache_hits_total{cache="catalog"} 5"#),
        "{response}"
    );
    assert!(
        response.contains(r#"svc_cache_misses_total{cache="catalog"} 1"#),
        "{response}"
    );
    let again = install_prometheus_http(free_port())
        .unwrap_err()
        .to_string();
    assert!(again.contains("cannot serve Prometheus metrics"), "{again}");
}
