//! The reference Reticulum stack as child processes, for the Reticulum tests and the `hold`
//! example: an rnsd on a free loopback port and a Python RNS peer (`tests/reticulum/peer.py`),
//! both killed on drop, also when a test panics. Both come from the venv that
//! `tests/reticulum/setup.sh` makes; like a test, these panic when something is missing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The venv made by tests/reticulum/setup.sh.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("RNS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/rns-venv"));
    assert!(
        venv.join("bin/rnsd").exists(),
        "no rns venv at {}: run tests/reticulum/setup.sh first",
        venv.display()
    );
    venv
}

/// The scripts and rnsd config beside the Reticulum tests.
fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/reticulum")
}

/// Kills and reaps a child process when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reference transport node with one TCP server interface on 127.0.0.1.
pub struct Rnsd {
    pub port: u16,
    _child: Reaped,
    _dir: tempfile::TempDir,
}

impl Rnsd {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// An rnsd on a given port (a restarted transport node).
    pub fn start_on(port: u16) -> Self {
        let venv = venv();
        let dir = tempfile::tempdir().unwrap();
        let template = std::fs::read_to_string(script_dir().join("rnsd.config")).unwrap();
        std::fs::write(
            dir.path().join("config"),
            template.replace("PORT", &port.to_string()),
        )
        .unwrap();
        let child = Command::new(venv.join("bin/rnsd"))
            .arg("--config")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rnsd starts");
        let child = Reaped(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rnsd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            port,
            _child: child,
            _dir: dir,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// tests/reticulum/peer.py, driven over stdin/stdout (JSON lines).
pub struct PythonPeer {
    pub dest: String,
    stdin: ChildStdin,
    events: mpsc::Receiver<serde_json::Value>,
    pub seen: Vec<serde_json::Value>,
    _child: Reaped,
}

impl PythonPeer {
    pub fn start(port: u16, network_tag: &str, topics: &[&str]) -> Self {
        Self::start_with(port, network_tag, topics, &[])
    }

    /// With extra peer.py flags (`--ratchets`).
    pub fn start_with(port: u16, network_tag: &str, topics: &[&str], flags: &[&str]) -> Self {
        let mut child = Command::new(venv().join("bin/python"))
            .arg(script_dir().join("peer.py"))
            .args(["--port", &port.to_string(), "--network-tag", network_tag])
            .args(["--topics", &topics.join(",")])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python peer starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut peer = Self {
            dest: String::new(),
            stdin,
            events,
            seen: Vec::new(),
            _child: Reaped(child),
        };
        let ready = peer.wait_for(Duration::from_secs(60), |e| e["event"] == "ready");
        peer.dest = ready["dest"].as_str().unwrap().to_owned();
        peer
    }

    pub fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The first event (already seen or arriving within `timeout`) matching `pred`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Err(_) => panic!("python peer: no matching event; saw {:?}", self.seen),
            }
        }
    }

    /// Waits until `n` events matching `pred` have been seen in all.
    pub fn wait_count(
        &mut self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while self.seen.iter().filter(|e| pred(e)).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => self.seen.push(e),
                Err(_) => panic!(
                    "python peer: fewer than {n} matching events; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Like `wait_for`, but gives up quietly after `timeout`.
    pub fn poll_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return Some(e.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Ok(e) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(e.clone());
            if pred(&e) {
                return Some(e);
            }
        }
        None
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
