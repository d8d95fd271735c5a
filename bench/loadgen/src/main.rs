//! `bss-loadgen`: opens C concurrent socket.io connections to a server speaking the
//! backbone-socket-sync wire protocol, has each issue `create` and `read` requests (ack mode,
//! one in flight per connection) for a fixed time, flat out or at a total target rate, and
//! prints ops/s, latency percentiles and the server's RSS and CPU (from `/proc/<pid>`).
//!
//! The human summary goes to stderr; one JSON object goes to stdout for `bench/run.mjs`.

mod conn;
mod frame;
mod pipeline;
mod procfs;

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "socket.io load generator for backbone-socket-sync servers")]
struct Args {
    /// Server base URL (http:// or ws://); /socket.io/?EIO=4&transport=websocket is appended.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Measured time, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Total target request rate, ops/s, spread evenly over the connections; flat out if unset.
    #[arg(long)]
    rate: Option<f64>,
    /// Collection endpoint the creates go to.
    #[arg(long, default_value = "/api/loadgen")]
    endpoint: String,
    /// Padding bytes added to each created item.
    #[arg(long, default_value_t = 64)]
    item_bytes: usize,
    /// PID of the server process, for its RSS and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Requests in flight per connection (flat out only; 1 = wait for each reply).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Worker threads of the generator's runtime (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Handshakes in progress at once while connecting.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Seconds to wait for a handshake or a reply before counting the connection as failed.
    #[arg(long, default_value_t = 15.0)]
    timeout: f64,
    /// Name of this run in the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Only creates (by default every other request reads the model created last).
    #[arg(long)]
    creates_only: bool,
    /// Also report the answers per interval of this many milliseconds (`timeline`, from
    /// `begin_unix_ms`), to see the rate change during the run (a node frozen meanwhile).
    #[arg(long)]
    timeline_ms: Option<u64>,
}

/// A connection's report: how the handshake went, then what it measured.
enum Report {
    Connected,
    Failed(String),
    Done(conn::Outcome),
}

fn main() {
    let args = Args::parse();
    let nofile = procfs::raise_nofile(args.conns as u64 + 256);
    if nofile < args.conns as u64 + 16 {
        eprintln!(
            "bss-loadgen: open-files limit {nofile} is too low for {} connections",
            args.conns
        );
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(run(args));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let url = socket_url(&args.url);
    let timeout = Duration::from_secs_f64(args.timeout);
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.conns as f64 / rate.max(0.001)));
    // Request ids must not repeat across runs against one server (its idempotency log
    // would replay old results), so they carry this process's id and start time.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let plan = conn::Plan {
        endpoint: args.endpoint.clone(),
        pad: "x".repeat(args.item_bytes),
        interval,
        timeout,
        run_id: format!("{}.{nanos}", std::process::id()),
        creates_only: args.creates_only,
    };
    let duration = Duration::from_secs_f64(args.duration);

    let gate = std::sync::Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let (close_tx, close_rx) = watch::channel(false);
    let connect_started = Instant::now();
    for index in 0..args.conns {
        let (url, plan, gate, report) =
            (url.clone(), plan.clone(), gate.clone(), report_tx.clone());
        let (mut start, mut close) = (start_rx.clone(), close_rx.clone());
        let conns = args.conns;
        let window = if plan.interval.is_some() {
            1
        } else {
            args.pipeline.max(1)
        };
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("semaphore open");
            let opened = conn::open(&url, timeout).await;
            drop(permit);
            let mut ws = match opened {
                Ok(ws) => ws,
                Err(e) => return drop(report.send(Report::Failed(e))),
            };
            let _ = report.send(Report::Connected);
            let Ok(begin) = start
                .wait_for(Option::is_some)
                .await
                .map(|s| s.expect("set"))
            else {
                return;
            };
            // Spread the connections' first requests over one interval so a rate is even.
            let offset = plan
                .interval
                .map_or(Duration::ZERO, |i| i.mul_f64(index as f64 / conns as f64));
            let outcome = if window > 1 {
                pipeline::run(&mut ws, index, &plan, window, begin + duration).await
            } else {
                conn::run(&mut ws, index, &plan, begin + offset, begin + duration).await
            };
            let _ = report.send(Report::Done(outcome));
            // Keep the socket open until the server's memory has been sampled.
            let _ = close.wait_for(|c| *c).await;
            let _ = ws.close(None).await;
        });
    }
    drop(report_tx);

    let (mut connected, mut connect_errors) = (0usize, Vec::new());
    while connected + connect_errors.len() < args.conns {
        match reports.recv().await {
            Some(Report::Connected) => connected += 1,
            Some(Report::Failed(e)) => connect_errors.push(e),
            Some(Report::Done(_)) | None => break,
        }
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    let before = args.server_pid.and_then(procfs::sample);
    let self_cpu_before = procfs::self_cpu_s();
    let begin = Instant::now() + Duration::from_millis(50);
    let begin_unix_ms = unix_ms() + 50;
    let _ = start_tx.send(Some(begin));

    let (mut latencies, mut create_us, mut read_us) = (Vec::new(), Vec::new(), Vec::new());
    let (mut creates, mut reads, mut errors, mut failures) = (0u64, 0u64, 0u64, Vec::new());
    let mut timeline = Vec::new();
    let mut done = 0;
    while done < connected {
        match reports.recv().await {
            Some(Report::Done(o)) => {
                done += 1;
                latencies.extend_from_slice(&o.create_us);
                latencies.extend_from_slice(&o.read_us);
                create_us.extend_from_slice(&o.create_us);
                read_us.extend_from_slice(&o.read_us);
                creates += o.creates;
                reads += o.reads;
                errors += o.errors;
                failures.extend(o.failure);
                if let Some(ms) = args.timeline_ms {
                    add_to_timeline(&mut timeline, &o.done_at, begin, ms);
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let after = args.server_pid.and_then(procfs::sample);
    let self_cpu = procfs::self_cpu_s() - self_cpu_before;
    let _ = close_tx.send(true);

    for list in [&mut latencies, &mut create_us, &mut read_us] {
        list.sort_unstable();
    }
    let pct = |p: f64| percentile_ms(&latencies, p);
    let ops = creates + reads;
    let ops_per_s = ops as f64 / elapsed;
    let server_cpu = match (before, after) {
        (Some(b), Some(a)) => Some(a.cpu_s - b.cpu_s),
        _ => None,
    };
    let report = json!({
        "label": args.label,
        "url": url,
        "conns": args.conns,
        "connected": connected,
        "connect_errors": connect_errors.len(),
        "connect_error_sample": connect_errors.first(),
        "connect_s": round(connect_s, 3),
        "duration_s": round(elapsed, 3),
        "target_rate": args.rate,
        "pipeline": args.pipeline,
        "ops": ops,
        "creates": creates,
        "reads": reads,
        "errors": errors,
        "failure_sample": failures.first(),
        "ops_per_s": round(ops_per_s, 1),
        "p50_ms": round(pct(50.0), 3),
        "p90_ms": round(pct(90.0), 3),
        "p99_ms": round(pct(99.0), 3),
        "max_ms": round(pct(100.0), 3),
        "create_p50_ms": round(percentile_ms(&create_us, 50.0), 3),
        "create_p99_ms": round(percentile_ms(&create_us, 99.0), 3),
        "read_p50_ms": round(percentile_ms(&read_us, 50.0), 3),
        "read_p99_ms": round(percentile_ms(&read_us, 99.0), 3),
        "server_rss_kib_connected": before.map(|s| s.rss_kib),
        "server_rss_kib_end": after.map(|s| s.rss_kib),
        "server_hwm_kib": after.map(|s| s.hwm_kib),
        "server_cpu_s": server_cpu.map(|c| round(c, 3)),
        "server_cpu_us_per_op": server_cpu.map(|c| round(c * 1e6 / ops.max(1) as f64, 1)),
        "loadgen_cpu_s": round(self_cpu, 3),
        "creates_only": args.creates_only,
        "begin_unix_ms": begin_unix_ms,
        "timeline_ms": args.timeline_ms,
        "timeline": args.timeline_ms.map(|_| timeline),
    });
    eprintln!(
        "{:<12} C={:<5} connected={} ops={} ({:.0} ops/s{}) p50={:.2}ms p99={:.2}ms max={:.2}ms errors={} rss={}",
        args.label,
        args.conns,
        connected,
        ops,
        ops_per_s,
        args.rate.map_or(String::new(), |r| format!(", target {r:.0}")),
        pct(50.0),
        pct(99.0),
        pct(100.0),
        errors + connect_errors.len() as u64,
        after.map_or("?".into(), |s| format!("{} MiB", s.rss_kib / 1024)),
    );
    println!("{report}");
    if connected == 0 || !connect_errors.is_empty() || errors > 0 {
        1
    } else {
        0
    }
}

/// Counts each answer time of `done_at` in its `ms`-wide bucket after `begin`.
fn add_to_timeline(timeline: &mut Vec<u64>, done_at: &[Instant], begin: Instant, ms: u64) {
    for at in done_at {
        let bucket = (at.saturating_duration_since(begin).as_millis() as u64 / ms.max(1)) as usize;
        if timeline.len() <= bucket {
            timeline.resize(bucket + 1, 0);
        }
        timeline[bucket] += 1;
    }
}

/// Milliseconds since the Unix epoch (the timeline's origin, for scripts that act meanwhile).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The p-th percentile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// `http://h:p` or `ws://h:p` (with or without a path) to the Engine.IO WebSocket URL.
fn socket_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    if base.contains("/socket.io") {
        base
    } else {
        format!("{base}/socket.io/?EIO=4&transport=websocket")
    }
}
