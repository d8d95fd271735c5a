//! Several `bss-server` nodes on one PostgreSQL and one Redis, all real processes started by
//! the test, over real sockets: writes on one node reach the subscribers of every node (not
//! the writer), a request id is applied once whichever nodes it is sent to, a `kill -9` of a
//! node mid-burst loses no acknowledged write and doubles none, a node that dies right after
//! COMMIT still has its write broadcast (once), a Redis restart leaves no node deaf, one
//! request id sent to two nodes at the same moment is applied once with one answer, and
//! writers racing on one model from two nodes leave every subscriber with the stored document.

mod common;
mod services;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{req, req_id, Client, ServerProcess, WAIT};
use serde_json::{json, Value};
use services::{shared_postgres, Redis};

/// Starts a node on database `db` with broadcasts through `redis`.
fn node(db: &str, redis: &Redis) -> ServerProcess {
    let args = ["--adapter", &redis.url(), "--dynamic-namespaces"];
    ServerProcess::start(Path::new(db), &args)
}

async fn stats(node: &ServerProcess) -> Value {
    reqwest::get(format!("{}/_bss/stats", node.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Subscribes `c` to `/api/todos`.
async fn subscribe(c: &mut Client) {
    let reply = c.ok("subscribe", req("/api/todos", None)).await;
    assert_eq!(reply, json!({"endPoint": "/api/todos"}));
}

/// The next event on `c`, which must be `name`; its item.
async fn expect(c: &mut Client, name: &str) -> Value {
    let (event, payload) = c.next_event().await;
    assert_eq!(event, name, "{payload}");
    payload["item"].clone()
}

/// Asserts that no broadcast is still coming to any of `watchers` (subscribers of
/// `/api/todos`): `writer`, a socket of its own, creates a sentinel there, and the sentinel
/// must be the next event each watcher hears. An ack is no such proof: PostgreSQL's broadcasts
/// come from the change feed after the write is answered, in commit order, so the sentinel,
/// committed after every write checked, is heard after any broadcast of theirs. Returns the
/// sentinel (it is stored in `/api/todos`; see [`without_sentinels`]).
async fn assert_quiet(watchers: &mut [&mut Client], writer: &mut Client) -> Value {
    let sentinel = writer
        .ok("create", req("/api/todos", Some(json!({"sentinel": true}))))
        .await;
    for watcher in watchers.iter_mut() {
        let (event, payload) = watcher.next_event().await;
        assert_eq!(
            (event.as_str(), &payload["item"]),
            ("created", &sentinel),
            "an unexpected event came before the sentinel"
        );
    }
    sentinel
}

/// The models of a collection read, without [`assert_quiet`]'s sentinels.
fn without_sentinels(models: Value) -> Value {
    let models = models.as_array().expect("a collection").iter();
    models
        .filter(|m| m.get("sentinel").is_none())
        .cloned()
        .collect()
}

/// Polls `check` on the nodes' stats until it holds (the event it waits for has no other
/// signal the test can read), failing after the usual wait.
async fn wait_stats(node: &ServerProcess, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = stats(node).await;
        if check(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_writes_and_broadcasts_and_apply_a_request_id_once() {
    let db = shared_postgres().create_database("three");
    let redis = Redis::start();
    let (a, b, c) = (node(&db, &redis), node(&db, &redis), node(&db, &redis));
    let mut on_a = Client::connect(a.port).await;
    let mut on_b = Client::connect(b.port).await;
    let mut on_c = Client::connect(c.port).await;
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        subscribe(client).await;
    }
    let mut sentinels = Client::connect(c.port).await;

    // A socket create on A reaches B and C, not A.
    let created = on_a
        .ok("create", req("/api/todos", Some(json!({"t": "from A"}))))
        .await;
    assert_eq!(created, json!({"id": 1, "t": "from A"}));
    assert_eq!(expect(&mut on_b, "created").await, created);
    assert_eq!(expect(&mut on_c, "created").await, created);
    assert_quiet(&mut [&mut on_a, &mut on_b, &mut on_c], &mut sentinels).await;

    // A REST write on C reaches A and B (and C's own subscriber: REST has no socket to spare).
    let response = reqwest::Client::new()
        .patch(format!("{}/api/todos/1", c.url()))
        .json(&json!({"done": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched = json!({"id": 1, "t": "from A", "done": true});
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(expect(client, "patched").await, patched);
    }

    // The same request id on A, then on B: applied once, replayed once, broadcast once.
    let arg = req_id("/api/todos", Some(json!({"t": "once"})), "same-id");
    let first = on_a.ok("create", arg.clone()).await;
    assert_eq!(expect(&mut on_b, "created").await, first);
    assert_eq!(expect(&mut on_c, "created").await, first);
    let replay = on_b.ok("create", arg).await;
    assert_eq!(replay, first);
    let all = on_c.ok("read", req("/api/todos", None)).await;
    assert_eq!(without_sentinels(all), json!([patched, first]));
    let (sa, sb, sc) = (stats(&a).await, stats(&b).await, stats(&c).await);
    assert_eq!(
        (sa["writes"].clone(), sa["replays"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        (sb["writes"].clone(), sb["replays"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(sc["writes"], json!(2), "the REST patch and a sentinel");
    // Nothing more arrived anywhere: the replay was not broadcast.
    assert_quiet(&mut [&mut on_a, &mut on_b, &mut on_c], &mut sentinels).await;
    for s in [sa, sb, sc] {
        assert_eq!(s["bus"]["dropped"], json!(0), "{s}");
        assert_eq!(s["bus"]["publishFailures"], json!(0), "{s}");
    }

    // A change too big for a NOTIFY payload (8,000 bytes) travels by reference.
    let big = "x".repeat(20_000);
    let large = on_c
        .ok("create", req("/api/todos", Some(json!({ "big": big }))))
        .await;
    assert_eq!(expect(&mut on_a, "created").await, large);
    assert_eq!(expect(&mut on_b, "created").await, large);
    assert_quiet(&mut [&mut on_a, &mut on_b, &mut on_c], &mut sentinels).await;

    // Multi-node mode is WebSocket-only: a long-polling handshake is refused.
    let polling = reqwest::get(format!("{}/socket.io/?EIO=4&transport=polling", a.url()))
        .await
        .unwrap();
    assert_eq!(polling.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_leaves_no_node_deaf() {
    let db = shared_postgres().create_database("restart");
    let mut redis = Redis::start();
    let (a, b) = (node(&db, &redis), node(&db, &redis));
    let mut writer = Client::connect(a.port).await;
    let mut near = Client::connect(a.port).await;
    let mut far = Client::connect(b.port).await;
    subscribe(&mut near).await;
    subscribe(&mut far).await;
    let before = writer
        .ok("create", req("/api/todos", Some(json!({"n": 1}))))
        .await;
    assert_eq!(expect(&mut far, "created").await, before);
    assert_eq!(expect(&mut near, "created").await, before);

    // Redis away: the write is stored and answered, and every node's subscribers still hear
    // it (write broadcasts travel in PostgreSQL's change feed, not through Redis).
    redis.stop();
    let during = writer
        .ok("create", req("/api/todos", Some(json!({"n": 2}))))
        .await;
    assert_eq!(expect(&mut near, "created").await, during);
    assert_eq!(expect(&mut far, "created").await, during);

    // Redis back: both nodes reconnect and resubscribe (socket.io's adapter hears the other
    // nodes again), and broadcasts go on both ways.
    redis.resume();
    for n in [&a, &b] {
        wait_stats(n, "reconnected", |s| {
            s["bus"]["reconnections"].as_u64() >= Some(1)
        })
        .await;
    }
    let after = writer
        .ok("create", req("/api/todos", Some(json!({"n": 3}))))
        .await;
    assert_eq!(expect(&mut far, "created").await, after);
    assert_eq!(expect(&mut near, "created").await, after);
    let back = far
        .ok("create", req("/api/todos", Some(json!({"n": 4}))))
        .await;
    assert_eq!(expect(&mut near, "created").await, back);
    assert_eq!(
        far.ok("read", req("/api/todos", None))
            .await
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_right_after_commit_still_has_its_write_broadcast_once() {
    let db = shared_postgres().create_database("fault");
    let redis = Redis::start();
    // The fault point: this node aborts right after its first COMMIT, before it answers or
    // broadcasts anything.
    let mut doomed = ServerProcess::start_after(
        "export BSS_FAULT_AFTER_COMMIT=1",
        Path::new(&db),
        &["--adapter", &redis.url()],
    );
    let survivor = node(&db, &redis);
    let mut watcher = Client::connect(survivor.port).await;
    subscribe(&mut watcher).await;

    let mut writer = Client::connect(doomed.port).await;
    let arg = req_id("/api/todos", Some(json!({"t": "last words"})), "fault-1");
    writer
        .send(&format!("421{}", json!(["create", arg.clone()])))
        .await;
    while let Some(frame) = writer.recv().await {
        assert!(
            !frame.starts_with("43"),
            "the doomed node answered: {frame}"
        );
    }
    let deadline = Instant::now() + WAIT;
    while doomed.is_running() {
        assert!(Instant::now() < deadline, "the fault point stops the node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Committed before the node died: the other node's subscriber hears it all the same.
    let created = expect(&mut watcher, "created").await;
    assert_eq!(created, json!({"id": 1, "t": "last words"}));

    // The client re-sends through the survivor with the same request id: answered from the
    // record, neither applied nor broadcast again.
    let mut retry = Client::connect(survivor.port).await;
    assert_eq!(retry.ok("create", arg).await, created);
    assert_eq!(stats(&survivor).await["replays"], json!(1));
    // Exactly once: changes arrive in commit order, so the next one the watcher hears is a
    // later write, with nothing in between.
    let later = retry
        .ok("create", req("/api/todos", Some(json!({"t": "later"}))))
        .await;
    assert_eq!(expect(&mut watcher, "created").await, later);
    let all = retry.ok("read", req("/api/todos", None)).await;
    assert_eq!(all, json!([created, later]));
    assert_quiet(&mut [&mut watcher], &mut retry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_node_mid_burst_loses_and_doubles_nothing() {
    const BURST: usize = 600;
    let db = shared_postgres().create_database("kill");
    let redis = Redis::start();
    let a = node(&db, &redis);
    let b = node(&db, &redis);
    let c = node(&db, &redis);
    let mut watcher = Client::connect(c.port).await;
    subscribe(&mut watcher).await;

    // One client on B pipelines a burst of creates, each with its own request id.
    let request = |i: usize| req_id("/api/todos", Some(json!({"n": i})), &format!("burst-{i}"));
    let mut on_b = Client::connect(b.port).await;
    for i in 0..BURST {
        let packet = format!("42{}{}", i + 1, json!(["create", request(i)]));
        on_b.send(&packet).await;
    }
    // Some answers come back; B goes on committing the rest, and dies once more are stored
    // than were answered: those writes are committed, but their acks never reach the client.
    let mut acked: Vec<Option<Value>> = vec![None; BURST];
    let mut answered = 0;
    while answered < BURST / 10 {
        let frame = on_b.recv().await.expect("ack");
        if let Some((id, body)) = parse_ack(&frame) {
            acked[id - 1] = Some(body);
            answered += 1;
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let stored: Value = reqwest::get(format!("{}/api/todos", a.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stored.as_array().unwrap().len() > answered + 10 {
            break;
        }
        assert!(Instant::now() < deadline, "B stores the burst");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b); // SIGKILL
    drop(on_b); // the acks still in flight are lost with the connection
    let resent: Vec<usize> = (0..BURST).filter(|&i| acked[i].is_none()).collect();
    eprintln!(
        "kill -9 after {answered} of {BURST} acks; re-sending {} through A",
        resent.len()
    );

    // The client re-sends what was unanswered through A, with the same request ids.
    let mut on_a = Client::connect(a.port).await;
    for &i in &resent {
        acked[i] = Some(on_a.ok("create", request(i)).await);
    }

    let replays = stats(&a).await["replays"].as_u64().unwrap();
    eprintln!("A answered {replays} of them from B's committed records");
    assert!(
        replays > 10,
        "writes B committed without acking were replayed, not re-applied"
    );

    // Every acknowledged write is stored exactly once, with the id its ack reported.
    let stored = on_a.ok("read", req("/api/todos", None)).await;
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), BURST, "one row per request");
    let mut seen = vec![false; BURST];
    for model in stored {
        let n = model["n"].as_u64().unwrap() as usize;
        assert!(!seen[n], "request {n} stored twice");
        seen[n] = true;
        assert_eq!(acked[n].as_ref(), Some(model));
    }

    // A and C keep broadcasting.
    let mut writer = Client::connect(a.port).await;
    let after = writer
        .ok("create", req("/api/todos", Some(json!({"after": "kill"}))))
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "broadcast from A after the kill");
        if expect(&mut watcher, "created").await == after {
            break;
        }
    }
}

/// `43<id>[null, model]` -> (id, model).
fn parse_ack(frame: &str) -> Option<(usize, Value)> {
    let rest = frame.strip_prefix("43")?;
    let split = rest.find('[')?;
    let id = rest[..split].parse().ok()?;
    let body: Value = serde_json::from_str(&rest[split..]).ok()?;
    assert!(body[0].is_null(), "{frame}");
    Some((id, body[1].clone()))
}

/// Established TCP connections that process `pid` holds with local port `port`: its socket
/// descriptors whose inode `/proc/net/tcp` lists on that port in state ESTABLISHED (`01`).
fn connections_to(pid: u32, port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    let inodes: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let on_port = fields.get(1)?.ends_with(&local) && *fields.get(3)? == "01";
            on_port.then(|| fields.get(9).map(|inode| inode.to_string()))?
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?.to_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

/// A `bss-server` started on a given port (the shared-port test cannot use port 0); killed on
/// drop.
struct PortNode(std::process::Child);

impl PortNode {
    /// Starts a node on `port`; `Ok` once it prints its address, `Err(stderr)` if it exits.
    fn start(db: &str, redis: &Redis, port: u16, extra: &[&str]) -> Result<Self, String> {
        use std::io::{BufRead, BufReader, Read};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_bss-server"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--db",
                db,
            ])
            .args(["--adapter", &redis.url()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bss-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read stdout");
        if line.starts_with("listening on ") {
            return Ok(Self(child));
        }
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr);
        let _ = child.wait();
        Err(stderr)
    }
}

impl Drop for PortNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_port_lets_nodes_share_one_address() {
    let db = shared_postgres().create_database("reuse");
    let redis = Redis::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let first = PortNode::start(&db, &redis, port, &["--reuse-port"]).expect("first node");
    let second = PortNode::start(&db, &redis, port, &["--reuse-port"]).expect("second node");
    // Without the flag the port is taken: one clear line, non-zero exit.
    let refused = PortNode::start(&db, &redis, port, &[])
        .err()
        .expect("refused");
    assert!(
        refused.trim().starts_with("bss-server: cannot listen on"),
        "{refused}"
    );

    // Connections on the one port are spread by the kernel over both nodes; every one is
    // served.
    let mut watcher = Client::connect(port).await;
    subscribe(&mut watcher).await;
    let mut clients = Vec::new();
    for n in 0..16 {
        let mut c = Client::connect(port).await;
        let created = c
            .ok("create", req("/api/todos", Some(json!({"n": n}))))
            .await;
        assert_eq!(expect(&mut watcher, "created").await, created);
        clients.push(c);
    }
    let taken = [&first, &second].map(|node| connections_to(node.0.id(), port));
    eprintln!("connections taken by each node: {taken:?}");
    assert!(
        taken.iter().all(|&n| n > 0),
        "both nodes took connections: {taken:?}"
    );
    assert_eq!(
        taken.iter().sum::<usize>(),
        17,
        "the 16 clients and the watcher"
    );
    drop(clients);
    // One node gone, the address still answers.
    drop(first);
    let mut c = Client::connect(port).await;
    let all = c.ok("read", req("/api/todos", None)).await;
    assert_eq!(all.as_array().unwrap().len(), 16);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_namespace_hears_writes_of_nodes_without_it() {
    // Every node emits each change to its own namespaces, so a client of a dynamic namespace
    // that only its node has hears the writes of the other nodes (through socket.io's Redis
    // adapter alone it would not: a node broadcasts in the namespaces it has).
    let db = shared_postgres().create_database("dynns");
    let redis = Redis::start();
    let (a, b) = (node(&db, &redis), node(&db, &redis));
    let mut admin_on_b = Client::connect_ns(b.port, "/admin").await;
    subscribe(&mut admin_on_b).await;
    let mut root_on_a = Client::connect(a.port).await;
    let created = root_on_a
        .ok("create", req("/api/todos", Some(json!({"n": 1}))))
        .await;
    assert_eq!(expect(&mut admin_on_b, "created").await, created);
    assert_quiet(&mut [&mut admin_on_b], &mut root_on_a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_sent_to_two_nodes_at_the_same_moment_is_applied_once() {
    const TRIALS: usize = 20;
    let db = shared_postgres().create_database("together");
    let redis = Redis::start();
    let (a, b) = (node(&db, &redis), node(&db, &redis));
    let mut on_a = Client::connect(a.port).await;
    let mut on_b = Client::connect(b.port).await;
    let model = on_a
        .ok("create", req("/api/todos", Some(json!({"p": -1}))))
        .await;
    let model_url = format!("/api/todos/{}", model["id"]);

    // Each request is written to both sockets at once, a create and then a patch: one node
    // applies it, the other answers from its record, and the two answers are the same.
    for trial in 0..TRIALS {
        let create = req_id(
            "/api/todos",
            Some(json!({ "t": trial })),
            &format!("create-{trial}"),
        );
        let patch = req_id(
            &model_url,
            Some(json!({ "p": trial })),
            &format!("patch-{trial}"),
        );
        for (method, arg) in [("create", create), ("patch", patch)] {
            let (from_a, from_b) =
                tokio::join!(on_a.ack(method, arg.clone()), on_b.ack(method, arg.clone()));
            assert!(from_a[0].is_null(), "{method} {trial}: {from_a:?}");
            assert_eq!(from_a, from_b, "{method} {trial}: both answers");
        }
    }
    let all = on_b.ok("read", req("/api/todos", None)).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1 + TRIALS, "each create stored once: {all:?}");
    assert_eq!(all[0]["p"], json!(TRIALS - 1));
    let (sa, sb) = (stats(&a).await, stats(&b).await);
    let count = |key: &str| sa[key].as_u64().unwrap() + sb[key].as_u64().unwrap();
    assert_eq!(count("writes"), 1 + 2 * TRIALS as u64, "{sa} {sb}");
    assert_eq!(count("replays"), 2 * TRIALS as u64, "{sa} {sb}");
}

/// Pipelines `n` patches `{"by": by, "n": i}` of the model at `url` on `c`, each frame written
/// before any answer is read; returns once all are answered, each successfully.
async fn patch_pipelined(c: &mut Client, url: &str, by: &str, n: usize) {
    for i in 0..n {
        let arg = req(url, Some(json!({ "by": by, "n": i })));
        c.send(&format!("42{}{}", 1_000_000 + i, json!(["patch", arg])))
            .await;
    }
    let mut answered = 0;
    while answered < n {
        let frame = c.recv().await.expect("patch answers");
        if let Some((_, reply)) = common::write_load::parse_ack(&frame) {
            assert!(reply[0].is_null(), "{frame}");
            answered += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_on_one_model_from_two_nodes_leave_subscribers_with_the_stored_document() {
    const TRIALS: usize = 5;
    const PATCHES: usize = 100;
    let db = shared_postgres().create_database("race");
    let redis = Redis::start();
    let (a, b) = (node(&db, &redis), node(&db, &redis));
    let (mut writer_a, mut writer_b) =
        (Client::connect(a.port).await, Client::connect(b.port).await);
    let mut sentinels = Client::connect(a.port).await;
    let mut watchers = [Client::connect(a.port).await, Client::connect(b.port).await];
    for watcher in watchers.iter_mut() {
        subscribe(watcher).await;
    }
    for trial in 0..TRIALS {
        let model = sentinels
            .ok("create", req("/api/todos", Some(json!({ "trial": trial }))))
            .await;
        let url = format!("/api/todos/{}", model["id"]);
        tokio::join!(
            patch_pipelined(&mut writer_a, &url, "a", PATCHES),
            patch_pipelined(&mut writer_b, &url, "b", PATCHES)
        );
        let stored = sentinels.ack("read", req(&url, None)).await;
        assert!(stored[0].is_null(), "{stored:?}");
        assert_heard_last(&mut watchers, &mut sentinels, &model, &stored, 2 * PATCHES).await;
    }
}

/// Each watcher hears `model` created, then `patches` patches of it, the last of them the
/// `stored` read's document (and version, once replies carry one), then a sentinel from
/// `writer`: nothing later.
async fn assert_heard_last(
    watchers: &mut [Client],
    writer: &mut Client,
    model: &Value,
    stored: &[Value],
    patches: usize,
) {
    for (w, watcher) in watchers.iter_mut().enumerate() {
        assert_eq!(expect(watcher, "created").await, *model);
        let (mut last, mut versions) = (Value::Null, Vec::new());
        for _ in 0..patches {
            let (event, payload) = watcher.next_event().await;
            assert_eq!(event, "patched", "watcher {w}: {payload}");
            versions.push(payload["version"].clone());
            last = payload;
        }
        assert_eq!(
            last["item"],
            stored[1],
            "watcher {w}: the last broadcast is stored; the last versions heard: {:?}",
            &versions[versions.len().saturating_sub(10)..]
        );
        if let Some(version) = stored.get(2) {
            assert_eq!(last["version"], version["version"], "watcher {w}: {last}");
        }
    }
    let mut watchers: Vec<&mut Client> = watchers.iter_mut().collect();
    assert_quiet(&mut watchers, writer).await;
}
