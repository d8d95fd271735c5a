//! The writers of the PostgreSQL store: [`LANES`] writer tasks, each with a connection of its
//! own, each committing the writes queued to it in batches ([`super::batch`]), answering them
//! only after COMMIT.
//!
//! Order: writes reach the store in call order, and a dispatcher sends each to a lane. Every
//! write of one collection (of one owner) goes to the lane that already holds a queued or
//! committing write of it, else to the least busy lane, so the writes of a collection (hence of
//! each model, and each client's writes to one collection) are applied in call order, while
//! other collections go on in other lanes, even when one lane waits on a lock. (A create after
//! a client's write of id 2 must skip 2: that order needs one lane. Spreading one collection's
//! creates over several lanes was also measured slower on a CPU-bound 2-core host: smaller
//! batches cost more per write.) Create ids come from ranges each node reserves outside any
//! batch ([`super::ids`]), so batches of two nodes in one collection share no lock.
//!
//! Nothing is held across nodes but row locks inside a batch's own transaction, released at
//! COMMIT or rollback, and every connection runs with `idle_in_transaction_session_timeout`:
//! a node frozen in the middle of a batch has its transaction ended by the server, and its
//! locks released, within about that long. A batch that deadlocks, meets a document inserted
//! meanwhile, or times out on a lock is rolled back and retried whole; a batch that does not
//! commit answers every write with an error (no acks, so clients retry: their retries are
//! replays of request ids, or new writes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;

use super::batch::{Batch, BatchError};
use super::ids::IdRanges;
use super::listen::keep_and_notify;
use super::plan::CollKey;
use super::{pg_error, pool_error, Job, MAX_BATCH};
use crate::store::change::Origin;
use crate::store::{Applied, StoreError, Write};

/// Writer connections (and lanes) per node.
pub(super) const LANES: usize = 4;
/// Retries of a batch rolled back by a deadlock, a concurrent insert or a lock timeout.
const RETRIES: u32 = 5;
/// Writes after which a node has the tables analyzed once. A table never analyzed (a new
/// database) has no statistics, and the planner then looks models up by the collection-order
/// index, filtering every row of the collection, until autovacuum analyzes it a minute or
/// more later; after one ANALYZE it knows `id` is unique and uses the primary key.
const ANALYZE_AFTER: usize = 1_000;

/// Test fault point: with `BSS_FAULT_AFTER_COMMIT=N` in its environment, a debug build aborts
/// right after its N-th committed batch, before it answers or broadcasts any write of it (the
/// multi-node tests show that other nodes still broadcast those writes, once). Not compiled
/// into release builds.
#[cfg(debug_assertions)]
const FAULT_AFTER_COMMIT: &str = "BSS_FAULT_AFTER_COMMIT";

/// What every lane writes with.
struct Lanes {
    pool: Pool,
    node: String,
    notify: String,
    max_doc_bytes: usize,
    /// The ids this node reserved for creates.
    ids: IdRanges,
    /// Writes committed so far, up to [`ANALYZE_AFTER`].
    written: std::sync::atomic::AtomicUsize,
    /// Batches left to commit before the test fault point aborts the process.
    #[cfg(debug_assertions)]
    fault_after: Option<std::sync::atomic::AtomicU64>,
}

/// The queue of one collection: the lane its writes go to while any is in flight.
struct InFlight {
    lane: usize,
    writes: usize,
}

/// Sends each write to its lane (see the module's doc).
struct Dispatcher {
    lanes: Vec<mpsc::UnboundedSender<Job>>,
    /// Writes queued or committing per lane.
    load: Vec<usize>,
    in_flight: HashMap<CollKey, InFlight>,
}

impl Dispatcher {
    fn dispatch(&mut self, job: Job) {
        let key = coll_key(&job.0);
        let lane = match self.in_flight.get_mut(&key) {
            Some(queue) => {
                queue.writes += 1;
                queue.lane
            }
            None => {
                let (lane, _) = self
                    .load
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, load)| **load)
                    .expect("lanes");
                self.in_flight.insert(key, InFlight { lane, writes: 1 });
                lane
            }
        };
        self.load[lane] += 1;
        if let Err(mpsc::error::SendError((_, _, reply))) = self.lanes[lane].send(job) {
            let _ = reply.send(Err(StoreError::Internal("writer lane stopped".into())));
        }
    }

    /// `lane` answered writes of these collections.
    fn finished(&mut self, lane: usize, keys: Vec<CollKey>) {
        self.load[lane] -= keys.len();
        for key in keys {
            if let Some(queue) = self.in_flight.get_mut(&key) {
                queue.writes -= 1;
                if queue.writes == 0 {
                    self.in_flight.remove(&key);
                }
            }
        }
    }
}

fn coll_key(write: &Write) -> CollKey {
    (write.owner.clone(), write.op.collection().to_owned())
}

/// The writer: dispatches `jobs` to [`LANES`] lanes until the queue is dropped, then waits
/// for the lanes to commit what they hold.
pub(super) async fn run_writer(
    pool: Pool,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    max_doc_bytes: usize,
    node: String,
) {
    let shared = Arc::new(Lanes {
        pool,
        node,
        notify: keep_and_notify(),
        max_doc_bytes,
        ids: IdRanges::default(),
        written: Default::default(),
        #[cfg(debug_assertions)]
        fault_after: std::env::var(FAULT_AFTER_COMMIT)
            .ok()
            .and_then(|n| n.parse().ok())
            .map(std::sync::atomic::AtomicU64::new),
    });
    let (done, mut finished) = mpsc::unbounded_channel();
    let mut dispatcher = Dispatcher {
        lanes: Vec::new(),
        load: vec![0; LANES],
        in_flight: HashMap::new(),
    };
    let mut tasks = Vec::new();
    for lane in 0..LANES {
        let (queue, queued) = mpsc::unbounded_channel();
        dispatcher.lanes.push(queue);
        tasks.push(tokio::spawn(run_lane(
            lane,
            shared.clone(),
            queued,
            done.clone(),
        )));
    }
    drop(done);
    loop {
        tokio::select! {
            biased;
            Some((lane, keys)) = finished.recv() => dispatcher.finished(lane, keys),
            job = jobs.recv() => match job {
                Some(job) => dispatcher.dispatch(job),
                None => break,
            },
        }
    }
    drop(dispatcher); // the lanes end once their queues are committed
    for task in tasks {
        let _ = task.await;
    }
}

/// One lane: wait for a write, take every write already queued (up to [`MAX_BATCH`]), commit
/// them in one transaction, answer them, tell the dispatcher.
async fn run_lane(
    lane: usize,
    shared: Arc<Lanes>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    done: mpsc::UnboundedSender<(usize, Vec<CollKey>)>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let keys = batch.iter().map(|(write, _, _)| coll_key(write)).collect();
        let (writes, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|(write, origin, reply)| ((write, origin), reply))
            .unzip();
        let started = std::time::Instant::now();
        let committed = shared.commit(&writes).await;
        tracing::debug!(
            lane,
            writes = writes.len(),
            ms = started.elapsed().as_millis() as u64,
            "batch"
        );
        match committed {
            Ok(results) => {
                #[cfg(debug_assertions)]
                shared.fault_point();
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
                shared.count(writes.len());
            }
            Err(error) => {
                tracing::warn!(%error, "batch not committed");
                for reply in replies {
                    let _ = reply.send(Err(match &error {
                        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                        other => StoreError::Internal(other.to_string()),
                    }));
                }
            }
        }
        let _ = done.send((lane, keys));
    }
}

impl Lanes {
    /// Commits `writes` as one batch, retrying it whole when it was rolled back for a reason
    /// that a new attempt can avoid.
    async fn commit(
        &self,
        writes: &[(Write, Option<Origin>)],
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let batch = Batch {
            node: &self.node,
            notify: &self.notify,
            max_doc_bytes: self.max_doc_bytes,
            ids: &self.ids,
        };
        let mut attempt = 0;
        loop {
            let client = self.pool.get().await.map_err(pool_error)?;
            let error = match batch.apply(&client, writes).await {
                Ok(results) => return Ok(results),
                Err(error) => error,
            };
            if !client.is_closed() {
                // Ends the transaction when the batch failed before its COMMIT was sent.
                let _ = client.batch_execute("ROLLBACK").await;
            }
            match error {
                BatchError::Pg(error) if attempt < RETRIES && retryable(&error) => {
                    attempt += 1;
                    tracing::debug!(%error, attempt, "batch rolled back; retrying");
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                BatchError::Pg(error) => return Err(pg_error(error)),
                BatchError::Store(error) => return Err(error),
            }
        }
    }

    /// Counts committed writes; has the tables analyzed once past [`ANALYZE_AFTER`].
    fn count(&self, writes: usize) {
        use std::sync::atomic::Ordering;
        let before = self.written.fetch_add(writes, Ordering::Relaxed);
        if before < ANALYZE_AFTER && before + writes >= ANALYZE_AFTER {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let analyzed = match pool.get().await {
                    Ok(client) => client
                        .batch_execute("ANALYZE bss_documents, bss_requests")
                        .await
                        .map_err(pg_error),
                    Err(error) => Err(pool_error(error)),
                };
                if let Err(error) = analyzed {
                    tracing::debug!(%error, "analyze");
                }
            });
        } else if before >= ANALYZE_AFTER {
            self.written.store(ANALYZE_AFTER, Ordering::Relaxed);
        }
    }

    #[cfg(debug_assertions)]
    fn fault_point(&self) {
        use std::sync::atomic::Ordering;
        if let Some(left) = &self.fault_after {
            if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                eprintln!("bss-server: {FAULT_AFTER_COMMIT}: aborting after a commit");
                std::process::abort();
            }
        }
    }
}

/// Errors after which the whole transaction was rolled back and a new attempt may succeed.
fn retryable(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::UNIQUE_VIOLATION,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code)
    })
}
