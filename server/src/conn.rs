//! One accepted TCP connection and the bounds on it: backpressure instead of buffering.
//!
//! Every connection's bytes pass through [`GatedIo`], before and after a WebSocket upgrade
//! (hyper hands the same stream to the WebSocket). Its [`Conn`] counts
//!
//! - the socket.io requests read from it and not answered yet ([`Conn::begin_request`]), and
//! - the replies queued for it and not yet written to the kernel, and their bytes
//!   ([`Conn::queue_reply`], drained by the bytes written: each reply is charged no more than
//!   the bytes it takes on the wire, so the count never runs ahead of the truth, and bytes
//!   written beyond what was charged, such as pings and broadcasts, are not credited).
//!
//! and the bytes of the requests in flight. While any is at its bound, [`GatedIo`] stops
//! reading the connection: engineioxide reads
//! the WebSocket and hands each packet to its handler synchronously, so no new request is
//! read, the kernel's receive buffer fills and TCP pushes back on the client. Nothing is
//! refused or dropped; the client's requests wait in its own buffers. Overshoot is bounded by
//! what the WebSocket reader has already buffered (engineioxide reads 4 KiB at a time).
//!
//! Requests already read can still make big replies (a collection read): a read runs only
//! with one of [`READS_AT_ONCE`] slots of its connection and once the connection's queued
//! reply bytes are under their bound ([`Conn::read_admission`]), so the replies of requests in
//! flight never pile up past that bound by more than the replies of those few reads.
//!
//! A connection whose writes cannot make progress for the stall timeout (the Engine.IO ping
//! timeout: the client is not reading) is declared dead: its reads and writes fail, so the
//! session closes and every queued reply is freed. The client reconnects and re-sends its
//! unanswered requests under their `requestId`s, which the store answers without applying
//! them twice. Each connection logs such an event once, not once per reply.

use std::collections::VecDeque;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Replies one connection may have queued unwritten: a quarter of socketioxide's send buffer
/// (16,384 packets, see `lib.rs`), the rest left for broadcasts and heartbeats.
pub const MAX_QUEUED_REPLIES: usize = 4096;

/// Bytes every reply takes on the wire beyond its JSON at the least (WebSocket header,
/// `43<id>[null,` … `]` or `42["<event>",` … `]`): what a reply is charged on top of its JSON.
pub const REPLY_ENVELOPE: usize = 7;

/// Reads of one connection that run at once (see [`Conn::read_admission`]).
pub const READS_AT_ONCE: usize = 4;

/// The bounds every connection gets.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Requests read and not yet answered, per connection.
    pub max_in_flight: usize,
    /// Bytes of replies queued and not yet written, per connection.
    pub max_queued_bytes: usize,
    /// How long a write may make no progress before the connection is closed.
    pub stall_timeout: Duration,
}

/// Connections counted across the process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Open connections upgraded to a socket.io WebSocket.
    pub websockets: AtomicUsize,
}

/// The state shared by one connection's stream, its requests and its socket.io handlers.
pub struct Conn {
    bounds: Bounds,
    counters: Arc<Counters>,
    in_flight: AtomicUsize,
    /// Bytes of the requests in flight.
    in_flight_bytes: AtomicUsize,
    reads: Arc<Semaphore>,
    /// Woken when the queued reply bytes fall under their bound.
    drained: Notify,
    backlog: Mutex<Backlog>,
    /// The reader parked on the gate.
    reader: Mutex<Option<Waker>>,
    upgraded: AtomicBool,
    dead: AtomicBool,
    /// The read waiting on the stream itself, woken when the connection is closed.
    stream_reader: AtomicWaker,
    /// Set once the gate closed for queued bytes, so that is logged once per connection.
    logged_backlog: AtomicBool,
}

impl Conn {
    /// A new connection under `bounds`, counted in `counters`.
    pub fn new(bounds: Bounds, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(Self {
            bounds,
            counters,
            in_flight: AtomicUsize::new(0),
            in_flight_bytes: AtomicUsize::new(0),
            reads: Arc::new(Semaphore::new(READS_AT_ONCE)),
            drained: Notify::new(),
            backlog: Mutex::default(),
            reader: Mutex::new(None),
            upgraded: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            stream_reader: AtomicWaker::new(),
            logged_backlog: AtomicBool::new(false),
        })
    }

    /// Counts this connection as a WebSocket unless `max` are already open; false if refused.
    pub fn try_upgrade(&self, max: usize) -> bool {
        if self.upgraded.load(Ordering::Acquire) {
            return true;
        }
        let counted =
            self.counters
                .websockets
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                    (open < max).then_some(open + 1)
                });
        if counted.is_ok() {
            self.upgraded.store(true, Ordering::Release);
        }
        counted.is_ok()
    }

    /// Counts a request of `bytes` read from this connection until the guard is dropped.
    pub fn begin_request(self: &Arc<Self>, bytes: usize) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.in_flight_bytes.fetch_add(bytes, Ordering::AcqRel);
        InFlight {
            conn: self.clone(),
            bytes,
        }
    }

    /// Waits for one of the connection's read slots and for its queued reply bytes to be
    /// under their bound; the read runs while the permit is held. `None` once the connection
    /// is dead: its reads are not worth running.
    pub async fn read_admission(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self
            .reads
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.dead.load(Ordering::Acquire) {
                return None;
            }
            if !self.backlog_bytes_over() {
                return Some(permit);
            }
            drained.await;
        }
    }

    fn backlog_bytes_over(&self) -> bool {
        let backlog = self.backlog.lock().expect("backlog");
        backlog.charged - backlog.written >= self.bounds.max_queued_bytes as u64
    }

    /// Counts a reply of `json_bytes` queued for this connection, until written.
    pub fn queue_reply(&self, json_bytes: usize) {
        let mut backlog = self.backlog.lock().expect("backlog");
        backlog.charged += (json_bytes + REPLY_ENVELOPE) as u64;
        let end = backlog.charged;
        backlog.ends.push_back(end);
        let over = backlog.over(&self.bounds);
        drop(backlog);
        if over && !self.logged_backlog.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                max_bytes = self.bounds.max_queued_bytes,
                max_replies = MAX_QUEUED_REPLIES,
                "a client is not reading its replies: stopped reading its connection until they drain (logged once per connection)"
            );
        }
    }

    /// Requests in flight, replies queued and their bytes.
    pub fn load(&self) -> (usize, usize, u64) {
        let backlog = self.backlog.lock().expect("backlog");
        (
            self.in_flight.load(Ordering::Acquire),
            backlog.ends.len(),
            backlog.charged - backlog.written,
        )
    }

    fn over_bounds(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) >= self.bounds.max_in_flight
            || self.in_flight_bytes.load(Ordering::Acquire) >= self.bounds.max_queued_bytes
            || self.backlog.lock().expect("backlog").over(&self.bounds)
    }

    /// True when reading must wait; then `waker` is woken once it may go on.
    fn must_wait(&self, waker: &Waker) -> bool {
        if self.dead.load(Ordering::Acquire) || !self.over_bounds() {
            return false;
        }
        *self.reader.lock().expect("reader waker") = Some(waker.clone());
        // Checked again after parking: a release between the two checks has woken nobody.
        self.over_bounds() && !self.dead.load(Ordering::Acquire)
    }

    fn wake_reader(&self) {
        if let Some(waker) = self.reader.lock().expect("reader waker").take() {
            waker.wake();
        }
    }

    fn wrote(&self, bytes: usize) {
        let mut backlog = self.backlog.lock().expect("backlog");
        if backlog.ends.is_empty() {
            return;
        }
        let was_over = backlog.over(&self.bounds);
        let bytes_were_over = backlog.charged - backlog.written >= limit_bytes(&self.bounds);
        backlog.written = (backlog.written + bytes as u64).min(backlog.charged);
        while backlog
            .ends
            .front()
            .is_some_and(|end| *end <= backlog.written)
        {
            backlog.ends.pop_front();
        }
        let over = backlog.over(&self.bounds);
        let bytes_over = backlog.charged - backlog.written >= limit_bytes(&self.bounds);
        drop(backlog);
        if was_over && !over {
            self.wake_reader();
        }
        if bytes_were_over && !bytes_over {
            self.drained.notify_waiters();
        }
    }

    /// Closes the connection from the server's side: its reads and writes fail from now on
    /// (a read waiting for the client's bytes is woken to fail), so the Engine.IO session ends
    /// as if the network had dropped it, without a socket.io DISCONNECT. Its client therefore
    /// reconnects and re-sends its unanswered requests under their `requestId`s (a DISCONNECT
    /// from the server is final for socket.io clients). Logged once, with `why`.
    pub fn close(&self, why: &str) {
        if !self.dead.swap(true, Ordering::AcqRel) {
            let (in_flight, replies, bytes) = self.load();
            tracing::warn!(
                in_flight,
                replies,
                bytes,
                "closing a connection: {why}; its client will reconnect and retry its requests"
            );
        }
        self.wake_reader();
        self.stream_reader.wake();
        self.drained.notify_waiters();
    }

    fn mark_dead(&self) {
        let stall = self.bounds.stall_timeout;
        self.close(&format!("its client read nothing for {stall:?}"));
    }
}

fn limit_bytes(bounds: &Bounds) -> u64 {
    bounds.max_queued_bytes as u64
}

/// The replies queued on a connection, as offsets in the stream of bytes charged for them.
#[derive(Default)]
struct Backlog {
    /// Bytes charged for every reply so far.
    charged: u64,
    /// Bytes written, counted only up to `charged`.
    written: u64,
    /// Where each reply not yet written ends.
    ends: VecDeque<u64>,
}

impl Backlog {
    fn over(&self, bounds: &Bounds) -> bool {
        self.ends.len() >= MAX_QUEUED_REPLIES
            || self.charged - self.written >= bounds.max_queued_bytes as u64
    }
}

/// A request in flight on a connection; dropping it (after its reply is queued) lets the
/// connection's reader go on if it was waiting for a slot.
pub struct InFlight {
    conn: Arc<Conn>,
    bytes: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.conn;
        let before = conn.in_flight.fetch_sub(1, Ordering::AcqRel);
        let bytes_before = conn.in_flight_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        let limit = conn.bounds.max_queued_bytes;
        if before == conn.bounds.max_in_flight
            || (bytes_before >= limit && bytes_before - self.bytes < limit)
        {
            conn.wake_reader();
        }
    }
}

/// A connection's stream with the read gate and the write stall timer of its [`Conn`].
pub struct GatedIo<T> {
    inner: T,
    conn: Arc<Conn>,
    stall: Option<Pin<Box<Sleep>>>,
}

impl<T> GatedIo<T> {
    /// Wraps `inner`, accepted as `conn`.
    pub fn new(inner: T, conn: Arc<Conn>) -> Self {
        Self {
            inner,
            conn,
            stall: None,
        }
    }

    fn dead() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "connection closed by the server")
    }

    /// Arms (or checks) the stall timer of a write that made no progress.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.conn.bounds.stall_timeout;
        let timer = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.conn.mark_dead();
            return true;
        }
        false
    }
}

/// A WebSocket is counted while its stream (its file descriptor) is open, not while other
/// parts of the server still hold its [`Conn`] (socketioxide keeps a session that never
/// connected a namespace until its connect timeout).
impl<T> Drop for GatedIo<T> {
    fn drop(&mut self) {
        if self.conn.upgraded.load(Ordering::Acquire) {
            self.conn.counters.websockets.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GatedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.conn.dead.load(Ordering::Acquire) {
            return Poll::Ready(Err(Self::dead()));
        }
        if self.conn.must_wait(cx.waker()) {
            return Poll::Pending;
        }
        self.conn.stream_reader.register(cx.waker());
        if self.conn.dead.load(Ordering::Acquire) {
            return Poll::Ready(Err(Self::dead()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GatedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.conn.dead.load(Ordering::Acquire) {
            return Poll::Ready(Err(Self::dead()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                self.stall = None;
                self.conn.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.stalled(cx) => Poll::Ready(Err(Self::dead())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.conn.dead.load(Ordering::Acquire) {
            return Poll::Ready(Err(Self::dead()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending if self.stalled(cx) => Poll::Ready(Err(Self::dead())),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn bounds() -> Bounds {
        Bounds {
            max_in_flight: 2,
            max_queued_bytes: 100,
            stall_timeout: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn reading_waits_while_requests_or_reply_bytes_are_at_their_bound() {
        let conn = Conn::new(bounds(), Arc::default());
        let (client, server) = tokio::io::duplex(1024);
        let mut gated = GatedIo::new(server, conn.clone());
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(b"abcdef").await.unwrap();
        let mut buf = [0u8; 1];
        gated.read_exact(&mut buf).await.unwrap();

        let first = conn.begin_request(1);
        let second = conn.begin_request(1);
        let blocked = tokio::time::timeout(Duration::from_millis(50), gated.read_exact(&mut buf));
        assert!(blocked.await.is_err(), "two in flight: reading waits");
        drop(first);
        gated.read_exact(&mut buf).await.unwrap();
        drop(second);

        conn.queue_reply(30 - REPLY_ENVELOPE);
        conn.queue_reply(120 - REPLY_ENVELOPE);
        assert_eq!(conn.load(), (0, 2, 150));
        let blocked = tokio::time::timeout(Duration::from_millis(50), gated.read_exact(&mut buf));
        assert!(blocked.await.is_err(), "150 bytes queued: reading waits");
        gated.write_all(&[0u8; 60]).await.unwrap();
        let mut sink = [0u8; 60];
        client_read.read_exact(&mut sink).await.unwrap();
        gated.read_exact(&mut buf).await.unwrap();
        assert_eq!(conn.load(), (0, 1, 90), "the first reply is out");
        gated.write_all(&[0u8; 200]).await.unwrap();
        assert_eq!(conn.load(), (0, 0, 0), "extra bytes are not credited");
        conn.queue_reply(1);
        assert_eq!(conn.load(), (0, 1, 1 + REPLY_ENVELOPE as u64));
    }

    #[tokio::test]
    async fn a_write_stalled_past_the_timeout_kills_the_connection() {
        let conn = Conn::new(bounds(), Arc::default());
        let (_client, server) = tokio::io::duplex(64);
        let mut gated = GatedIo::new(server, conn.clone());
        let error = gated.write_all(&[0u8; 1000]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let mut buf = [0u8; 1];
        assert!(gated.read(&mut buf).await.is_err(), "reads fail too");
    }

    #[tokio::test]
    async fn closing_fails_a_read_waiting_for_the_client() {
        let conn = Conn::new(bounds(), Arc::default());
        let (_client, server) = tokio::io::duplex(64);
        let mut gated = GatedIo::new(server, conn.clone());
        let read = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            gated.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        assert!(!read.is_finished(), "nothing to read yet");
        conn.close("a test");
        let read = tokio::time::timeout(Duration::from_secs(5), read).await;
        let error = read
            .expect("woken by the close")
            .expect("task")
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn websockets_are_counted_up_to_the_limit() {
        let counters = Arc::new(Counters::default());
        let a = Conn::new(bounds(), counters.clone());
        let b = Conn::new(bounds(), counters.clone());
        let (_, stream) = tokio::io::duplex(8);
        let a_stream = GatedIo::new(stream, a.clone());
        assert!(a.try_upgrade(1));
        assert!(a.try_upgrade(1), "already counted");
        assert!(!b.try_upgrade(1));
        drop(a_stream);
        assert!(b.try_upgrade(1), "counted while its stream is open");
        assert_eq!(counters.websockets.load(Ordering::Acquire), 1);
    }
}
