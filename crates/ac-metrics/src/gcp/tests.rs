use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;

use ac_core::ManualClock;

use super::*;

/// One request the fake API received.
#[derive(Debug)]
struct Request {
    line: String,
    authorization: Option<String>,
    body: Value,
}

/// A fake Monitoring API on loopback: records requests, answers `status`
/// (changeable between requests).
struct FakeApi {
    url: String,
    requests: mpsc::Receiver<Request>,
    status: Arc<Mutex<u16>>,
}

fn fake_api() -> FakeApi {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, requests) = mpsc::channel();
    let status = Arc::new(Mutex::new(200u16));
    let answer = Arc::clone(&status);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let (mut length, mut authorization) = (0, None);
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(": ").unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap(),
                    "authorization" => authorization = Some(value.to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = *answer.lock().unwrap();
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            stream.write_all(reply.as_bytes()).unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx
                .send(Request {
                    line: line.trim_end().to_owned(),
                    authorization,
                    body,
                })
                .is_err()
            {
                return;
            }
        }
    });
    FakeApi {
        url,
        requests,
        status,
    }
}

fn exporter(api: &FakeApi, clock: &ManualClock) -> GcpCloudMonitoringMetrics {
    GcpCloudMonitoringMetrics::builder("my-project")
        .endpoint(&api.url)
        .token_provider(|| Ok("test-token".into()))
        .flush_interval(10.0)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn series<'a>(body: &'a Value, name: &str) -> Vec<&'a Value> {
    let ty = format!("custom.googleapis.com/advanced_caching/{name}");
    body["timeSeries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"]["type"] == ty.as_str())
        .collect()
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_flush_sends_exact_time_series() {
    let api = fake_api();
    let m = exporter(&api, &ManualClock::new(0.0));
    for _ in 0..3 {
        m.record_hit("users", "k");
    }
    m.record_miss("users", "k");
    m.record_error("users", "get", "store");
    m.record_memory_usage("users", 4096, 9);
    m.record_latency("users", "get", Duration::from_millis(2));
    m.record_background_refresh("flags", true, Duration::from_millis(1));
    m.flush().unwrap();

    let request = api.requests.recv_timeout(WAIT).unwrap();
    assert_eq!(
        request.line,
        "POST /v3/projects/my-project/timeSeries HTTP/1.1"
    );
    assert_eq!(request.authorization.as_deref(), Some("Bearer test-token"));
    let body = &request.body;
    let hits = series(body, "hits");
    assert_eq!(hits.len(), 1);
    let hits = hits[0];
    assert_eq!(hits["metric"]["labels"], json!({ "cache": "users" }));
    assert_eq!(
        hits["resource"],
        json!({ "type": "global", "labels": { "project_id": "my-project" } })
    );
    assert_eq!(hits["metricKind"], "CUMULATIVE");
    assert_eq!(hits["valueType"], "INT64");
    assert_eq!(hits["points"][0]["value"], json!({ "int64Value": "3" }));
    assert!(
        hits["points"][0]["interval"]["startTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        series(body, "misses")[0]["points"][0]["value"]["int64Value"],
        "1"
    );
    let errors = series(body, "errors")[0];
    assert_eq!(
        errors["metric"]["labels"],
        json!({ "cache": "users", "operation": "get", "error_type": "store" })
    );
    let memory = series(body, "memory_bytes")[0];
    assert_eq!(
        (
            memory["metricKind"].as_str(),
            &memory["points"][0]["value"]["int64Value"]
        ),
        (Some("GAUGE"), &json!("4096"))
    );
    let p50 = series(body, "latency_p50_ms")
        .into_iter()
        .find(|s| s["metric"]["labels"] == json!({ "cache": "users", "operation": "get" }))
        .unwrap();
    assert_eq!(p50["valueType"], "DOUBLE");
    let p50 = p50["points"][0]["value"]["doubleValue"].as_f64().unwrap();
    assert!((p50 - 2.0).abs() < 0.01, "{p50}");
    let refresh = series(body, "background_refresh")[0];
    assert_eq!(
        refresh["metric"]["labels"],
        json!({ "cache": "flags", "result": "success" })
    );
    assert!(series(body, "sets").is_empty(), "no zero series");
}

#[test]
fn series_are_batched_by_two_hundred() {
    let api = fake_api();
    let m = exporter(&api, &ManualClock::new(0.0));
    for i in 0..450 {
        m.record_hit(&format!("cache-{i}"), "k");
    }
    m.flush().unwrap();
    let sizes: Vec<usize> = (0..3)
        .map(|_| {
            api.requests.recv_timeout(WAIT).unwrap().body["timeSeries"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    assert!(api.requests.try_recv().is_err(), "exactly three requests");

    // A refused chunk does not hold back the others.
    *api.status.lock().unwrap() = 400;
    assert!(m.flush().is_err());
    for _ in 0..3 {
        api.requests
            .recv_timeout(WAIT)
            .expect("every chunk was still sent");
    }
}

#[test]
fn the_background_flush_follows_the_clock() {
    let api = fake_api();
    let clock = ManualClock::new(1_000.0);
    let m = exporter(&api, &clock);
    m.record_hit("c", "k");
    assert!(
        api.requests
            .recv_timeout(Duration::from_millis(100))
            .is_err(),
        "not due"
    );
    clock.advance(10.0);
    let request = api
        .requests
        .recv_timeout(WAIT)
        .expect("flushed at the interval");
    assert_eq!(series(&request.body, "hits").len(), 1);
}

#[test]
fn a_failed_flush_is_an_error_and_the_next_one_resends_the_totals() {
    let api = fake_api();
    let m = exporter(&api, &ManualClock::new(0.0));
    m.record_hit("c", "k");
    *api.status.lock().unwrap() = 503;
    let error = m.flush().unwrap_err();
    // The status is the source, as ureq reports it; a 503 may pass.
    let status = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<ureq::Error>());
    assert!(
        matches!(status, Some(ureq::Error::StatusCode(503))),
        "{error:?}"
    );
    assert!(error.is_transient(), "{error}");
    api.requests.recv_timeout(WAIT).unwrap();
    // A refusal (400: a bad series) will not pass by retrying.
    *api.status.lock().unwrap() = 400;
    let error = m.flush().unwrap_err();
    assert!(!error.is_transient(), "{error}");
    api.requests.recv_timeout(WAIT).unwrap();
    *api.status.lock().unwrap() = 200;
    m.record_hit("c", "k");
    m.flush().unwrap();
    let request = api.requests.recv_timeout(WAIT).unwrap();
    assert_eq!(
        series(&request.body, "hits")[0]["points"][0]["value"]["int64Value"],
        "2"
    );
}

#[test]
fn misconfiguration_is_refused() {
    let e = GcpCloudMonitoringMetrics::builder("p")
        .flush_interval(1.0)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("at least 5 s"), "{e}");
    let e = GcpCloudMonitoringMetrics::builder("").build().unwrap_err();
    assert!(e.to_string().contains("project id"), "{e}");
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
    assert_eq!(rfc3339(t), "2023-11-14T22:13:20.500000Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00.000000Z"
    );
}
