//! Throwaway Redis servers for the tests of advanced-caching.
//!
//! [`RedisServer::start`] runs `redis-server` (from `PATH`) on a free
//! loopback port with no persistence; [`RedisCluster::start`] runs three
//! cluster-enabled servers and joins them with `redis-cli --cluster create`.
//! [`RedisServer::start_tls`] runs one that speaks only TLS, with a
//! certificate from a throwaway [`TestCa`] made with the `openssl` command.
//! All stop their processes when dropped, also when a test panics.
//! `scripts/test` installs `redis-server` (and `openssl`) when missing.
//!
//! [`S3Server`] (moto) and [`GcsServer`] (fake-gcs-server behind a small
//! translating proxy) are object-store emulators from the test venv; see
//! [`object`].
#![forbid(unsafe_code)]

pub mod object;

pub use object::{GcsServer, S3Server};

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A `redis-server` process on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    dir: tempfile::TempDir,
    /// For a TLS-only server: the CA that signed its certificate.
    tls_ca: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a standalone server on a free port.
    ///
    /// # Panics
    /// If `redis-server` is not on `PATH` or does not come up: these are
    /// test fixtures, and a missing server must fail the test loudly.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let extra = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::start_with_dir(dir, extra)
    }

    /// Starts a server that accepts only TLS connections (`--port 0
    /// --tls-port P`), with a certificate signed by `ca` for `127.0.0.1`
    /// and `localhost`; clients need no certificate of their own. Extra
    /// `redis-server` arguments as in [`RedisServer::start_with`].
    ///
    /// # Panics
    /// As [`RedisServer::start`], or if `openssl` cannot make the
    /// certificate.
    pub fn start_tls(ca: &TestCa, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let (cert, key) = ca.issue_server_certificate(dir.path());
        let mut args: Vec<String> = vec![
            "--tls-cert-file".into(),
            path_arg(&cert),
            "--tls-key-file".into(),
            path_arg(&key),
            "--tls-ca-cert-file".into(),
            path_arg(&ca.cert_path()),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start_in(dir, args, Some(ca.cert_path()))
    }

    fn start_with_dir(dir: tempfile::TempDir, extra: Vec<String>) -> Self {
        Self::start_in(dir, extra, None)
    }

    fn start_in(dir: tempfile::TempDir, extra: Vec<String>, tls_ca: Option<PathBuf>) -> Self {
        let mut server = Self {
            port: 0,
            child: None,
            extra,
            dir,
            tls_ca,
        };
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 5 attempts");
    }

    /// Spawns the process on `self.port`; false if it exited early (port
    /// taken meanwhile).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let ports: &[&str] = if self.tls_ca.is_some() {
            &["--port", "0", "--tls-port", &port]
        } else {
            &["--port", &port]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server (is it installed and on PATH?): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_status)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.ping() {
                // Ours, not a server another test started on this port?
                let pid = self.child.as_ref().map_or(0, Child::id);
                let info = self.cli(&["info", "server"]);
                if info.contains(&format!("process_id:{pid}\r")) {
                    return true;
                }
                if info.contains("NOAUTH") {
                    // A password-protected server: ours if our child lives
                    // on (a port clash makes it exit at once).
                    std::thread::sleep(Duration::from_millis(100));
                    if let Some(child) = &mut self.child
                        && matches!(child.try_wait(), Ok(None))
                    {
                        return true;
                    }
                }
                self.stop();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Whether the server answers `PING` (or asks for a password).
    fn ping(&self) -> bool {
        if self.tls_ca.is_some() {
            let reply = self.cli(&["ping"]);
            reply.contains("PONG") || reply.contains("NOAUTH")
        } else {
            ping(self.port)
        }
    }

    /// Kills the server with SIGKILL (an outage: no goodbye to clients);
    /// [`RedisServer::restart`] brings it back on the same port, empty.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    ///
    /// # Panics
    /// If it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server could not restart on port {}",
            self.port
        );
    }

    /// Freezes the server with SIGSTOP: connections stay open but nothing
    /// answers (a hung server, or a network that drops packets), until
    /// [`RedisServer::resume`].
    ///
    /// # Panics
    /// If the signal cannot be sent.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [paused](RedisServer::pause) server run again (SIGCONT).
    ///
    /// # Panics
    /// If the signal cannot be sent.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("the server is not running")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Runs `redis-cli` against this server (over TLS for a TLS server)
    /// and returns its output.
    ///
    /// # Panics
    /// If `redis-cli` cannot run.
    pub fn cli(&self, args: &[&str]) -> String {
        match &self.tls_ca {
            Some(ca) => {
                let ca = path_arg(ca);
                let mut all = vec!["--tls", "--cacert", ca.as_str()];
                all.extend_from_slice(args);
                cli(self.port, &all)
            }
            None => cli(self.port, args),
        }
    }

    /// `PTTL key`: milliseconds left, `-1` without expiry, `-2` if absent.
    ///
    /// # Panics
    /// If the reply is not a number.
    pub fn pttl(&self, key: &str) -> i64 {
        let reply = self.cli(&["pttl", key]);
        reply
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("PTTL {key}: unexpected reply {reply:?}"))
    }

    /// How many times `command` (lower case, e.g. `"get"`) ran so far, from
    /// `INFO commandstats`; 0 if never.
    pub fn command_calls(&self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        self.cli(&["info", "commandstats"])
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused (stopped) server too.
        self.stop();
    }
}

/// A throwaway certificate authority (an ECDSA P-256 key and a
/// self-signed certificate, valid one day) made with the `openssl`
/// command in a temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a new CA whose certificate's subject is `CN=<name>`.
    ///
    /// # Panics
    /// If `openssl` is missing or fails.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for a test CA");
        let key = dir.path().join("ca.key");
        let cert = dir.path().join("ca.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &path_arg(&key),
            "-out",
            &path_arg(&cert),
        ]);
        Self { dir }
    }

    /// The CA certificate's file (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate, PEM.
    ///
    /// # Panics
    /// If the file cannot be read.
    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.cert_path()).expect("read the test CA certificate")
    }

    /// Makes a server key and a certificate signed by this CA for
    /// `IP:127.0.0.1` and `DNS:localhost` in `dir`; returns their paths
    /// (certificate, key).
    ///
    /// # Panics
    /// If `openssl` fails.
    pub fn issue_server_certificate(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.pem");
        let extensions = dir.join("server.ext");
        std::fs::write(
            &extensions,
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write the certificate extensions");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &path_arg(&key),
            "-out",
            &path_arg(&csr),
        ]);
        let serial = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos())
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path_arg(&csr),
            "-CA",
            &path_arg(&self.cert_path()),
            "-CAkey",
            &path_arg(&self.dir.path().join("ca.key")),
            "-set_serial",
            &serial,
            "-days",
            "1",
            "-extfile",
            &path_arg(&extensions),
            "-out",
            &path_arg(&cert),
        ]);
        (cert, key)
    }
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

/// A three-primary Redis Cluster on `127.0.0.1`, no replicas.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and creates the cluster;
    /// returns once `CLUSTER INFO` says `cluster_state:ok` on every node.
    ///
    /// # Panics
    /// If the cluster cannot be formed.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = Command::new("redis-cli")
            .args(&args)
            .output()
            .expect("cannot run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let deadline = Instant::now() + START_TIMEOUT;
        for node in &nodes {
            while !node.cli(&["cluster", "info"]).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "cluster never reached cluster_state:ok"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=…`.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes[1..].iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    /// Keys held by each node (`DBSIZE`), to check data is spread.
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| n.cli(&["dbsize"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

/// A port free on loopback whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        if port < 55_000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // "+PONG", or "-NOAUTH" from a server with a password: either way, up.
    let mut reply = [0u8; 2];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && (&reply == b"+P" || &reply == b"-N")
}

fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("cannot run redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
