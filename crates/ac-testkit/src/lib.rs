//! Throwaway Redis servers for the tests of advanced-caching.
//!
//! [`RedisServer::start`] runs `redis-server` (from `PATH`) on a free
//! loopback port with no persistence; [`RedisCluster::start`] runs three
//! cluster-enabled servers and joins them with `redis-cli --cluster create`.
//! Both stop their processes when dropped, also when a test panics.
//! `scripts/test` installs `redis-server` when it is missing.
#![forbid(unsafe_code)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A `redis-server` process on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    dir: tempfile::TempDir,
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

    fn start_with_dir(dir: tempfile::TempDir, extra: Vec<String>) -> Self {
        let mut server = Self {
            port: 0,
            child: None,
            extra,
            dir,
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
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
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
            if ping(self.port) {
                // Ours, not a server another test started on this port?
                let pid = self.child.as_ref().map_or(0, Child::id);
                let info = cli(self.port, &["info", "server"]);
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

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage); [`RedisServer::restart`] brings it
    /// back on the same port, empty.
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

    /// Runs `redis-cli` against this server and returns its output.
    ///
    /// # Panics
    /// If `redis-cli` cannot run.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
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
        self.stop();
    }
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
