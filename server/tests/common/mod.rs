//! Test support: the real `bss-server` binary on a free port, and a raw socket.io client
//! speaking Engine.IO v4 / Socket.IO v5 text frames over tokio-tungstenite.
#![allow(dead_code)] // each test file uses a different part of this module

pub mod write_load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected frame may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `bss-server` child process; killed on drop.
pub struct ServerProcess {
    child: Child,
    /// The port it printed.
    pub port: u16,
}

impl ServerProcess {
    /// Starts the binary on port 0 with `--db db` plus `extra` flags and waits for its
    /// `listening on http://127.0.0.1:PORT` line.
    pub fn start(db: &Path, extra: &[&str]) -> Self {
        Self::start_with_stderr(db, extra, Stdio::inherit())
    }

    /// Like [`ServerProcess::start`], with the server's log (stderr) written to `log`.
    pub fn start_logged(db: &Path, extra: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        Self::start_with_stderr(db, extra, Stdio::from(file))
    }

    /// Like [`ServerProcess::start`], run through `sh -c "<shell>; exec server …"` (to set
    /// limits first, for example).
    pub fn start_after(shell: &str, db: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new("sh");
        let script = format!("{shell}; exec \"$0\" \"$@\"");
        command.args(["-c", &script, env!("CARGO_BIN_EXE_bss-server")]);
        Self::spawn(command, db, extra, Stdio::inherit())
    }

    fn start_with_stderr(db: &Path, extra: &[&str], stderr: Stdio) -> Self {
        // `BSS_SERVER_BIN` runs another build (the abuse test uses the release one).
        let binary = std::env::var("BSS_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_bss-server").to_owned());
        let command = Command::new(binary);
        Self::spawn(command, db, extra, stderr)
    }

    fn spawn(mut command: Command, db: &Path, extra: &[&str], stderr: Stdio) -> Self {
        let mut child = command
            .args(["--port", "0", "--host", "127.0.0.1", "--db"])
            .arg(db)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn bss-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading so the child never blocks on a full pipe.
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let line = rx.recv_timeout(WAIT).expect("server printed its address");
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("port");
        Self { child, port }
    }

    /// Base HTTP url.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop within 5 s of SIGTERM");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory with a database path in it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("nested").join("test.sqlite3");
    (dir, db)
}

/// The WebSocket under a [`Client`].
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw socket.io client on one WebSocket.
pub struct Client {
    ws: Ws,
    /// Namespace prefix for packets: "" for `/`, "/admin," for `/admin`.
    nsp: String,
    next_ack: u64,
}

impl Client {
    /// Opens the WebSocket and checks the Engine.IO OPEN packet, without connecting a namespace.
    pub async fn open(port: u16) -> Self {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut client = Self {
            ws,
            nsp: String::new(),
            next_ack: 1,
        };
        let open = client.recv().await.expect("open packet");
        assert!(open.starts_with("0{"), "{open}");
        let open: Value = serde_json::from_str(&open[1..]).expect("open json");
        assert!(
            open["sid"].is_string() && open["pingInterval"].is_u64(),
            "{open}"
        );
        client
    }

    /// Opens and connects the `/` namespace (`40` -> `40{"sid":…}`).
    pub async fn connect(port: u16) -> Self {
        Self::connect_ns(port, "/").await
    }

    /// Opens and connects namespace `ns`.
    pub async fn connect_ns(port: u16, ns: &str) -> Self {
        let mut client = Self::open(port).await;
        client.nsp = if ns == "/" {
            String::new()
        } else {
            format!("{ns},")
        };
        let packet = format!("40{}", client.nsp);
        client.send(&packet).await;
        let reply = client.recv().await.expect("connect reply");
        let expected = format!("40{}{{\"sid\":", client.nsp);
        assert!(reply.starts_with(&expected), "{reply}");
        client
    }

    /// Opens a WebSocket and sends the `/` namespace CONNECT with `payload` (`40{…}`): the
    /// connected client, or the server's CONNECT_ERROR frame (`44{…}`) with the still-open
    /// client.
    pub async fn connect_with(port: u16, payload: &Value) -> Result<Self, (String, Self)> {
        let mut client = Self::open(port).await;
        client.send(&format!("40{payload}")).await;
        let reply = client.recv().await.expect("connect reply");
        if reply.starts_with("40{\"sid\":") {
            Ok(client)
        } else {
            Err((reply, client))
        }
    }

    /// The connected WebSocket, for tests that drive it themselves (split, never read, …).
    pub fn into_ws(self) -> Ws {
        self.ws
    }

    /// Sends one text frame.
    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// Sends a raw WebSocket message of any kind (may fail if the server already closed).
    pub async fn send_raw(&mut self, message: Message) -> bool {
        self.ws.send(message).await.is_ok()
    }

    /// Next text frame, answering Engine.IO pings on the way; `None` once the connection closed.
    pub async fn recv(&mut self) -> Option<String> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("frame in time");
            match next {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    let _ = self.send_raw(Message::text("3")).await;
                }
                Some(Ok(Message::Text(text))) => return Some(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Next text frame without answering pings (for heartbeat tests): `None` when `wait`
    /// passed, `Some(None)` when the connection closed.
    pub async fn recv_raw(&mut self, wait: Duration) -> Option<Option<String>> {
        loop {
            return match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => None,
                Ok(Some(Ok(Message::Text(text)))) => Some(Some(text.as_str().to_owned())),
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => Some(None),
                Ok(Some(Ok(_))) => continue, // WebSocket-level ping/pong, binary
            };
        }
    }

    /// True when the server closes the connection (or sends an Engine.IO CLOSE or a
    /// socket.io DISCONNECT) within `WAIT`, ignoring other frames on the way; false if it
    /// stays open.
    pub async fn closes(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_raw(left).await {
                None => return false,
                Some(None) => return true,
                Some(Some(frame)) if frame == "1" || frame.starts_with("41") => return true,
                Some(Some(frame)) if frame == "2" => {
                    let _ = self.send_raw(Message::text("3")).await;
                }
                Some(Some(_)) => {}
            }
        }
    }

    /// Emits `method` with `arg` and an ack id; returns the ack's argument array.
    pub async fn ack(&mut self, method: &str, arg: Value) -> Vec<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = format!("42{}{id}{}", self.nsp, serde_json::json!([method, arg]));
        self.send(&packet).await;
        let prefix = format!("43{}{id}", self.nsp);
        loop {
            let frame = self.recv().await.expect("ack before close");
            if let Some(rest) = frame.strip_prefix(&prefix) {
                return serde_json::from_str(rest).expect("ack json");
            }
        }
    }

    /// Emits `method` with `arg` in ack mode and returns the result, panicking on an error reply.
    pub async fn ok(&mut self, method: &str, arg: Value) -> Value {
        self.ok_versioned(method, arg).await.0
    }

    /// Like [`Client::ok`], with the version a write or a model read answers as its third ack
    /// argument (`[null, result, {"version": v}]`), `None` when there is none (`[null, result]`).
    pub async fn ok_versioned(&mut self, method: &str, arg: Value) -> (Value, Option<i64>) {
        let reply = self.ack(method, arg).await;
        assert!(
            matches!(reply.len(), 2 | 3),
            "expected [null, result, {{version}}?], got {reply:?}"
        );
        assert!(reply[0].is_null(), "{reply:?}");
        (reply[1].clone(), version_of(reply.get(2)))
    }

    /// Emits in ack mode and returns the error object, panicking on success.
    pub async fn err(&mut self, method: &str, arg: Value) -> Value {
        let reply = self.ack(method, arg).await;
        assert_eq!(reply.len(), 1, "expected [error], got {reply:?}");
        reply[0].clone()
    }

    /// Emits without an ack id; returns the next event `(name, payload)`.
    pub async fn event(&mut self, method: &str, arg: Value) -> (String, Value) {
        let packet = format!("42{}{}", self.nsp, serde_json::json!([method, arg]));
        self.send(&packet).await;
        self.next_event().await
    }

    /// The next event the server emits.
    pub async fn next_event(&mut self) -> (String, Value) {
        let (name, payload, _) = self.next_event_versioned().await;
        (name, payload)
    }

    /// The next event the server emits, with the version a reply event carries as its second
    /// argument (`(model, {"version": v})`), if any.
    pub async fn next_event_versioned(&mut self) -> (String, Value, Option<i64>) {
        let prefix = format!("42{}", self.nsp);
        loop {
            let frame = self.recv().await.expect("event before close");
            if let Some(rest) = frame.strip_prefix(&prefix) {
                let array: Vec<Value> = serde_json::from_str(rest).expect("event json");
                assert!(matches!(array.len(), 2 | 3), "{frame}");
                let name = array[0].as_str().expect("name").to_owned();
                return (name, array[1].clone(), version_of(array.get(2)));
            }
        }
    }
}

/// The version of a `{"version": v}` reply argument; panics on any other shape.
fn version_of(arg: Option<&Value>) -> Option<i64> {
    let arg = arg?;
    let version = arg["version"].as_i64();
    assert!(
        version.is_some() && arg.as_object().is_some_and(|o| o.len() == 1),
        "expected {{\"version\": n}}, got {arg}"
    );
    version
}

/// A request argument: `{signature: {endPoint}, item?}`.
pub fn req(endpoint: &str, item: Option<Value>) -> Value {
    let mut arg = serde_json::json!({ "signature": { "endPoint": endpoint } });
    if let Some(item) = item {
        arg["item"] = item;
    }
    arg
}

/// A request argument with a requestId.
pub fn req_id(endpoint: &str, item: Option<Value>, request_id: &str) -> Value {
    let mut arg = req(endpoint, item);
    arg["signature"]["requestId"] = Value::from(request_id);
    arg
}

/// Creates one model per item in `collection` over one socket, pipelined: every
/// `create` frame is written before any ack is read; returns once all of them are acked, and
/// panics on an error ack (`[{status, message}]`: not a create). The
/// server's pings are answered meanwhile (a long fill on a busy machine outlasts a short ping
/// timeout, and a client that does not answer is closed, rightly).
pub async fn create_pipelined(port: u16, collection: &str, items: Vec<Value>) {
    let n = items.len();
    let (mut tx, mut rx) = Client::connect(port).await.into_ws().split();
    let frames: Vec<String> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let create = Value::Array(vec!["create".into(), req(collection, Some(item))]);
            format!("42{}{create}", i + 1)
        })
        .collect();
    let (pongs, mut pings) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sender = tokio::spawn(async move {
        for frame in frames {
            while pings.try_recv().is_ok() {
                tx.feed(Message::text("3")).await.unwrap();
            }
            tx.feed(Message::text(frame)).await.unwrap();
        }
        tx.flush().await.unwrap();
        while pings.recv().await.is_some() {
            tx.send(Message::text("3")).await.unwrap();
        }
        tx
    });
    let mut acks = 0;
    while acks < n {
        let message = rx.next().await.expect("open until every create is acked");
        if let Message::Text(text) = message.unwrap() {
            if let Some(rest) = text.as_str().strip_prefix("43") {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let reply: Vec<Value> = serde_json::from_str(&rest[digits..]).expect("ack json");
                assert!(
                    reply.first() == Some(&Value::Null)
                        && reply.get(1).is_some_and(Value::is_object),
                    "create {} answered {reply:?}",
                    &rest[..digits]
                );
                acks += 1;
            } else if text.as_str() == "2" {
                let _ = pongs.send(());
            }
        }
    }
    drop(pongs);
    drop(sender.await.unwrap());
}
