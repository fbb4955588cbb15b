//! The steward's window, as a steward meets it: real bridges in one process (p2panda nodes,
//! emulated LoRa modules on the shared simulated channel, iroh on loopback), their status
//! page opened in Debian's headless Chromium, their `/metrics` scraped, and bad requests
//! sent by hand to the same listener.
//!
//! Why a DevTools client of its own (`cdp` below, a hundred lines over tokio-tungstenite)
//! rather than chromiumoxide or headless_chrome: the test needs five commands (open a tab,
//! size it like a phone, navigate, evaluate, screenshot), and those crates compile the whole
//! generated protocol (hundreds of thousands of lines) on the project's two-core machines,
//! and headless_chrome drives the browser from blocking threads beside tokio.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod common;
use common::{LIMIT, NETWORK, arrival, chat_topic, publish, status, subscribe};

use lorabridge_proto::message::Message;
use lorabridge_proto::{FrameCodec, NetworkTag, NodeTag, compact};
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood, demo_modulation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A has iroh and a radio, B only a radio, C only iroh: A hears B on the air and syncs with
/// C over iroh.
async fn neighbourhood() -> Neighbourhood {
    let members = [
        Member::new("A", true, true),
        Member::new("B", false, true),
        Member::new("C", true, false),
    ];
    Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts")
}

fn status_addr(n: &Neighbourhood, name: &str) -> SocketAddr {
    n.bridge(name).status_addr.expect("status served")
}

/// The neighbour tag the status shows for a bridge: its node id's first two bytes.
fn tag(n: &Neighbourhood, name: &str) -> String {
    hex(&n.bridge(name).node.id().as_bytes()[..2])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where test artifacts go: cargo's temporary folder under the target directory.
fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_neighbours_airtime_and_new_operations_without_a_reload() {
    let browser = cdp::Browser::launch().await;
    let n = neighbourhood().await;
    let page = browser
        .open(&format!("http://{}/", status_addr(&n, "A")))
        .await;
    page.eval("window.sameDocument = true").await;

    let b = tag(&n, "B");
    // New operations: one from B over the radio, one from C over iroh. They come first
    // because an idle bridge may stay silent: Trickle suppresses its summaries for as long as
    // it hears a neighbour's matching ones first. B's op makes A hear B, and C's op makes A
    // send on the air (to B), so A's page has a neighbour and airtime to show.
    for (name, payload, via) in [
        ("B", &b"over the air"[..], "lora"),
        ("C", b"over iroh", "iroh"),
    ] {
        let mut local = subscribe(n.bridge(name).grpc_addr).await;
        publish(n.bridge(name).grpc_addr, payload, b"").await;
        let id = hex(&arrival(&mut local, payload).await.operation_id);
        page.wait_for(
            &format!("document.querySelector('#recent tr[data-op=\"{id}\"]')?.dataset.via"),
            |shown| shown == via,
            &format!("{name}'s operation in A's recent operations, via {via}"),
        )
        .await;
    }
    let row = format!(
        "(document.querySelector('#neighbours tr[data-tag=\"{b}\"][data-via=\"lora\"]') \
         || {{}}).textContent"
    );
    page.wait_for(
        &row,
        |text| text.as_str().is_some_and(|t| t.contains("-97 dBm")),
        "B in A's neighbours, at the channel's -97 dBm",
    )
    .await;
    // The SNR as the status has it (the emulated module reports whole dB, as RUI3 does).
    let lora = common::transport(status_addr(&n, "A"), "lora").await;
    let snr = lora.neighbours[0].snr_db.expect("an SNR");
    // The page follows the status over its event stream, so it may show an earlier frame's
    // signal for a moment.
    let shown = format!("{snr:.1} dB");
    page.wait_for(
        &row,
        |text| text.as_str().is_some_and(|t| t.contains(&shown)),
        &format!("B's row with the SNR the status has, {shown}"),
    )
    .await;
    let history = page
        .eval(&format!(
            "document.querySelector('#neighbours tr[data-tag=\"{b}\"] polyline')\
             .getAttribute('points')"
        ))
        .await;
    assert!(
        history.as_str().is_some_and(|p| !p.is_empty()),
        "B's signal history is drawn: {history}"
    );
    page.wait_for(
        "[...document.querySelectorAll('#airtime [data-sub-band]')]\
         .some(band => Number(band.dataset.used) > 0)",
        |ok| ok == &serde_json::json!(true),
        "airtime used on a sub-band",
    )
    .await;

    assert_eq!(
        page.eval("window.sameDocument === true && document.getElementById('live').textContent")
            .await,
        "live",
        "the page updated itself, without a reload"
    );

    let weight = page
        .eval(
            "performance.getEntriesByType('navigation')[0].encodedBodySize + \
             performance.getEntriesByType('resource')\
             .filter(r => /\\/(app\\.js|style\\.css)$/.test(r.name))\
             .reduce((sum, r) => sum + r.encodedBodySize, 0)",
        )
        .await;
    let screenshot = artifact("steward-page.png");
    page.screenshot(&screenshot).await;
    eprintln!(
        "the page weighs {weight} bytes (HTML, script and style); screenshot at {}",
        screenshot.display()
    );
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_traffic_the_test_caused() {
    let n = neighbourhood().await;
    let mut at_b = subscribe(n.bridge("B").grpc_addr).await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;
    let published = [&b"one"[..], b"two", b"three"];
    for payload in published {
        publish(n.bridge("A").grpc_addr, payload, b"").await;
    }
    for payload in published {
        arrival(&mut at_b, payload).await;
        arrival(&mut at_c, payload).await;
    }

    let (a, b, c) = (
        status_addr(&n, "A"),
        status_addr(&n, "B"),
        status_addr(&n, "C"),
    );
    let lora = "{transport=\"lora\"}";
    let iroh = "{transport=\"iroh\"}";
    let m = Metrics::until(b, "B's three operations from the radio", |m| {
        m.get(&format!("lorabridge_operations_received_total{lora}")) == 3.0
    })
    .await;
    assert_eq!(
        m.get("lorabridge_topic_operations"),
        3.0,
        "B holds them\n{m}"
    );
    for state in ["iroh", "reticulum"].map(|t| format!("{{transport=\"{t}\",state=\"disabled\"}}"))
    {
        assert_eq!(
            m.get(&format!("lorabridge_transport_state{state}")),
            1.0,
            "{m}"
        );
    }
    assert!(
        !m.has(&format!("lorabridge_operations_received_total{iroh}")),
        "{m}"
    );
    let m = Metrics::until(c, "C's three operations over iroh", |m| {
        m.get(&format!("lorabridge_operations_received_total{iroh}")) == 3.0
    })
    .await;
    assert_eq!(m.get("lorabridge_topic_operations"), 3.0, "{m}");
    assert!(
        !m.has(&format!("lorabridge_frames_sent_total{lora}")),
        "C has no radio\n{m}"
    );
    Metrics::until(c, "A among C's iroh peers", |m| {
        m.get("lorabridge_iroh_peers") == 1.0
    })
    .await;

    // B hears A, whose sends carried the operations. (A need not hear B: B may have sent
    // nothing, its summaries suppressed by A's matching ones.)
    Metrics::until(b, "A as B's radio neighbour", |m| {
        m.get(&format!("lorabridge_neighbours{lora}")) == 1.0
    })
    .await;
    let m = Metrics::until(a, "A's sends and its iroh peer C", |m| {
        m.get(&format!("lorabridge_operations_sent_total{lora}")) >= 3.0
            && m.get("lorabridge_iroh_peers") == 1.0
    })
    .await;
    let sent = m.get(&format!("lorabridge_frames_sent_total{lora}"));
    assert!(sent >= 3.0, "{m}");
    assert_eq!(
        m.get(&format!("lorabridge_operations_received_total{lora}")),
        0.0
    );
    // All of it on EU868's 869.4–869.65 MHz sub-band, where the demo radios sit, whose
    // budget is 10 % of an hour; and all of it within the last hour.
    let used: Vec<(String, f64)> = m
        .series("lorabridge_airtime_used_seconds")
        .filter(|(_, used)| *used > 0.0)
        .collect();
    let band = "{sub_band=\"869.4-869.65\"}";
    assert_eq!(
        used.iter().map(|(b, _)| &**b).collect::<Vec<_>>(),
        [band],
        "{m}"
    );
    assert_eq!(
        m.get(&format!("lorabridge_airtime_budget_seconds{band}")),
        360.0
    );
    let total = m.get(&format!("lorabridge_airtime_seconds_total{lora}"));
    assert!((used[0].1 - total).abs() < 1e-6, "{m}");
    let heard = Metrics::scrape(b)
        .await
        .get(&format!("lorabridge_frames_received_total{lora}"));
    assert!(heard >= 3.0, "B heard A's frames: {heard}");

    // A rogue transmitter sends a genuinely signed operation with its body altered: a frame
    // that decodes, carrying an operation that does not. Sent again until heard (a radio
    // that was transmitting at that moment missed it).
    let tampered = tampered_frame();
    let medium = n.medium.clone();
    let (rogue, _rx) = medium.attach("rogue");
    let mut sends = 0.0;
    let m = loop {
        let airtime = medium.transmit(rogue, &demo_modulation(), &tampered);
        sends += 1.0;
        tokio::time::sleep(airtime + Duration::from_millis(1500)).await;
        let m = Metrics::scrape(b).await;
        if m.get(&format!("lorabridge_operations_rejected_total{lora}")) >= 1.0 || sends >= 10.0 {
            break m;
        }
    };
    let rejected = m.get(&format!("lorabridge_operations_rejected_total{lora}"));
    assert!(
        (1.0..=sends).contains(&rejected),
        "{rejected} of {sends}\n{m}"
    );
    assert_eq!(
        m.get(&format!("lorabridge_frames_rejected_total{lora}")),
        rejected,
        "each rejected frame was one of the rogue's\n{m}"
    );
    assert_eq!(
        m.get("lorabridge_topic_operations"),
        3.0,
        "nothing of it stored"
    );
    assert_eq!(m.get("lorabridge_import_backlog_operations"), 0.0);
    n.stop().await;
}

/// A frame of this network carrying a signed chat operation whose body no longer matches
/// its signature.
fn tampered_frame() -> Vec<u8> {
    let topic = chat_topic().topic;
    let op = common::stranger_op();
    let mut bytes = compact::encode(&op, &topic, false).expect("encodes");
    *bytes.last_mut().expect("a body") ^= 0x01;
    FrameCodec::new(NetworkTag::from_network_id(&NETWORK), None)
        .encode(
            NodeTag([0xee, 0xee]),
            &Message::Op(bytes.iter().copied().collect()),
            [0; 12],
            250,
        )
        .expect("a frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_grpc_shares_the_port() {
    let n = Neighbourhood::start(NETWORK, &[Member::new("A", false, false)], &[chat_topic()])
        .await
        .expect("starts");
    let addr = status_addr(&n, "A");
    let silent = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        tokio::time::timeout(LIMIT, stream.read(&mut [0; 1])).await
    });

    let reply = request(
        addr,
        "POST /api/status HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(reply.status, 405, "{reply:?}");
    assert!(reply.head.contains("allow: GET"), "{reply:?}");
    let reply = get(addr, "/nowhere").await;
    assert_eq!(reply.status, 404);
    assert!(
        reply.body.contains("/metrics"),
        "says what exists: {reply:?}"
    );
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    assert_eq!(request(addr, &huge).await.status, 431, "a head past 16 KiB");
    assert_eq!(request(addr, "NONSENSE\r\n\r\n").await.status, 400);

    // Live views are bounded: the ninth waits for one to close.
    let mut views = Vec::new();
    for _ in 0..8 {
        let (head, stream) = open_live_view(addr).await;
        assert!(
            head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"),
            "{head}"
        );
        views.push(stream);
    }
    let (head, _) = open_live_view(addr).await;
    assert!(
        head.starts_with("HTTP/1.1 503") && head.contains("retry-after"),
        "{head}"
    );
    drop(views.pop());
    let reopened = tokio::time::timeout(LIMIT, async {
        loop {
            let (head, stream) = open_live_view(addr).await;
            if head.starts_with("HTTP/1.1 200") {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "a closed view frees its place");

    // The JSON is the gRPC status, served on the same port.
    let reply = get(addr, "/api/status").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.head.contains("content-type: application/json"),
        "{reply:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let grpc = status(addr).await;
    assert_eq!(json["node_id"], hex(&grpc.node_id));
    assert_eq!(json["network_id"], hex(&NETWORK));
    assert_eq!(json["topics"][0]["topic_id"], hex(&grpc.topics[0].topic_id));
    let states: Vec<(String, String)> = grpc
        .transports
        .iter()
        .map(|t| (t.name.clone(), t.state.clone()))
        .collect();
    let json_states: Vec<(String, String)> = json["transports"]
        .as_array()
        .expect("transports")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(json_states, states);
    assert!(
        states.iter().all(|(_, state)| state == "disabled"),
        "a bridge with no transport says so: {states:?}"
    );
    drop(views);
    assert!(
        matches!(silent.await.expect("joins"), Ok(Ok(0) | Err(_))),
        "a client that connects and says nothing is let go"
    );
    n.stop().await;
}

/// An HTTP reply, header names in lower case.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends `raw` as it is and reads the reply until the server closes the connection.
async fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    // A server that answers before reading the whole request may close while we still write.
    let _ = stream.write_all(raw.as_bytes()).await;
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut bytes)).await;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Reply {
        status,
        head: head.to_lowercase().replace("allow: get", "allow: GET"),
        body: body.to_string(),
    }
}

/// Opens `/api/events` and reads the reply's head; the stream stays open while held.
async fn open_live_view(addr: SocketAddr) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let raw = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(raw.as_bytes()).await.expect("sends");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        let read = tokio::time::timeout(LIMIT, stream.read(&mut byte)).await;
        match read {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    (
        String::from_utf8_lossy(&head)
            .to_lowercase()
            .replace("http/1.1", "HTTP/1.1"),
        stream,
    )
}

/// One scrape of `/metrics`: each series (name and labels as written) and its value.
struct Metrics {
    text: String,
    series: HashMap<String, f64>,
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Metrics {
    async fn scrape(addr: SocketAddr) -> Self {
        let reply = get(addr, "/metrics").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            reply
                .head
                .contains("content-type: text/plain; version=0.0.4"),
            "Prometheus' text format: {reply:?}"
        );
        let series = reply
            .body
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Metrics {
            text: reply.body,
            series,
        }
    }

    /// Scrapes until `done` (the status refreshes every second), or fails naming `what`.
    async fn until(addr: SocketAddr, what: &str, done: impl Fn(&Metrics) -> bool) -> Self {
        let started = std::time::Instant::now();
        loop {
            let m = Self::scrape(addr).await;
            if done(&m) {
                return m;
            }
            assert!(
                started.elapsed() < LIMIT,
                "no {what} within {LIMIT:?}:\n{m}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn has(&self, series: &str) -> bool {
        self.series.contains_key(series)
    }

    /// The value of a series; for a name without labels, the sum of the name's series.
    fn get(&self, series: &str) -> f64 {
        match self.series.get(series) {
            Some(value) => *value,
            None => self.series(series).map(|(_, v)| v).sum(),
        }
    }

    /// The series of a metric name: their labels (`{…}`) and values.
    fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (String, f64)> + 'a {
        self.series.iter().filter_map(move |(series, value)| {
            let labels = series.strip_prefix(name)?;
            labels
                .starts_with('{')
                .then(|| (labels.to_string(), *value))
        })
    }
}

/// Just enough of the Chrome DevTools protocol to open a page like a phone, read its DOM and
/// photograph it.
mod cdp {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine as _;
    use futures_util::SinkExt;
    use futures_util::stream::{SplitSink, StreamExt};
    use serde_json::{Value, json};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    use super::LIMIT;

    /// Debian's Chromium (`apt-get install chromium`).
    const CHROMIUM: &str = "/usr/bin/chromium";
    /// A phone's screen, in CSS pixels.
    const PHONE: (u32, u32) = (412, 915);
    /// A command that gets no answer in this long failed.
    const ANSWER_WITHIN: Duration = Duration::from_secs(30);

    type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
    type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

    pub struct Browser {
        child: Child,
        sink: tokio::sync::Mutex<Sink>,
        waiting: Waiting,
        next_id: AtomicU64,
        _profile: tempfile::TempDir,
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Browser {
        /// Starts headless Chromium with a fresh profile and none of its background
        /// connections (the machine's network refuses them), and connects to it.
        pub async fn launch() -> Arc<Browser> {
            assert!(
                Path::new(CHROMIUM).exists(),
                "{CHROMIUM} is missing: this test needs Debian's Chromium; install it with \
                 `apt-get install chromium` (.ci/run does)"
            );
            let profile = tempfile::tempdir().expect("a profile folder");
            let mut child = Command::new(CHROMIUM)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-port=0",
                    "about:blank",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
            // Chromium names its DevTools address on stderr; the thread then drains the rest,
            // so that a chatty browser never blocks on a full pipe.
            let stderr = child.stderr.take().expect("piped");
            let (found, address) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let _ = found.send(url.trim().to_string());
                    }
                }
            });
            let url = tokio::task::spawn_blocking(move || address.recv_timeout(LIMIT))
                .await
                .expect("joins")
                .expect("Chromium names its DevTools address");
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("connects to Chromium's DevTools");
            let (sink, mut stream) = socket.split();
            let waiting: Waiting = Arc::default();
            let answers = waiting.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    // Events have no id; answers go to whoever asked.
                    let Some(id) = message["id"].as_u64() else {
                        continue;
                    };
                    if let Some(asker) = answers.lock().unwrap().remove(&id) {
                        let _ = asker.send(message);
                    }
                }
            });
            Arc::new(Browser {
                child,
                sink: tokio::sync::Mutex::new(sink),
                waiting,
                next_id: AtomicU64::new(1),
                _profile: profile,
            })
        }

        /// Sends one command (to a page's session, or to the browser) and returns its result.
        async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut command = json!({ "id": id, "method": method, "params": params });
            if let Some(session) = session {
                command["sessionId"] = session.into();
            }
            let (tx, rx) = oneshot::channel();
            self.waiting.lock().unwrap().insert(id, tx);
            self.sink
                .lock()
                .await
                .send(Message::text(command.to_string()))
                .await
                .expect("Chromium takes the command");
            let answer = tokio::time::timeout(ANSWER_WITHIN, rx)
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} in {ANSWER_WITHIN:?}"))
                .expect("Chromium is running");
            assert!(
                answer["error"].is_null(),
                "{method} failed: {}",
                answer["error"]
            );
            answer["result"].clone()
        }

        /// A new tab the size of a phone, showing `url`.
        pub async fn open(self: &Arc<Self>, url: &str) -> Page {
            let target = self
                .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
                .await;
            let attached = self
                .call(
                    None,
                    "Target.attachToTarget",
                    json!({ "targetId": target["targetId"], "flatten": true }),
                )
                .await;
            let page = Page {
                browser: self.clone(),
                session: attached["sessionId"].as_str().expect("a session").into(),
            };
            page.size(PHONE.1).await;
            page.call("Page.navigate", json!({ "url": url })).await;
            page
        }
    }

    pub struct Page {
        browser: Arc<Browser>,
        session: String,
    }

    impl Page {
        async fn call(&self, method: &str, params: Value) -> Value {
            self.browser.call(Some(&self.session), method, params).await
        }

        async fn size(&self, height: u32) {
            let metrics = json!({
                "width": PHONE.0, "height": height, "deviceScaleFactor": 1, "mobile": true
            });
            self.call("Emulation.setDeviceMetricsOverride", metrics)
                .await;
        }

        /// The value of a JavaScript expression in the page.
        pub async fn eval(&self, expression: &str) -> Value {
            let params = json!({ "expression": expression, "returnByValue": true });
            let result = self.call("Runtime.evaluate", params).await;
            assert!(
                result["exceptionDetails"].is_null(),
                "{expression} threw: {}",
                result["exceptionDetails"]
            );
            result["result"]["value"].clone()
        }

        /// Evaluates `expression` until `done` holds for its value.
        pub async fn wait_for(&self, expression: &str, done: impl Fn(&Value) -> bool, what: &str) {
            let started = std::time::Instant::now();
            loop {
                let value = self.eval(expression).await;
                if done(&value) {
                    return;
                }
                if started.elapsed() > LIMIT {
                    let page = self.eval("document.querySelector('main').innerText").await;
                    panic!("no {what} within {LIMIT:?}; last {value}; the page:\n{page}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }

        /// A PNG of the whole page, at the phone's width.
        pub async fn screenshot(&self, path: &Path) {
            let height = self.eval("document.documentElement.scrollHeight").await;
            self.size(height.as_u64().expect("a height") as u32).await;
            let shot = self
                .call("Page.captureScreenshot", json!({ "format": "png" }))
                .await;
            let png = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().expect("image data"))
                .expect("base64");
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).expect("artifact folder");
            }
            std::fs::write(path, png).expect("screenshot written");
        }
    }
}
