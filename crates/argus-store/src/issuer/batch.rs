//! Concurrent calls turned into batches: one statement for many requests.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a hand-off between threads (two
//! context switches), and every write statement is a commit that writes and locks the WAL. On the token endpoint's
//! hot path those costs, not SQLite's work, bound the request rate. A [`Queue`] hands its calls to one task, which
//! takes every call waiting (up to [`Batch::MAX`]) and runs them together with [`Batch::run`]: under load, one
//! hand-off and one commit serve many requests; alone, a call is a batch of one and waits for nobody.
//!
//! A call whose caller goes away (a cancelled request) still runs: the task, not the caller, owns it once queued.

use std::fmt;
use std::future::Future;

use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use argus_oauth::StorageError;

/// Calls waiting in a queue; past that, callers wait to enqueue.
const QUEUE: usize = 4096;

/// Work that is cheaper done for many items at once.
pub(crate) trait Batch: Send + Sync + 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;
    /// Most items in one batch.
    const MAX: usize;
    /// Do `items` together: one output per item, in order.
    fn run(pool: &SqlitePool, items: Vec<Self::Item>) -> impl Future<Output = Vec<Self::Output>> + Send;
}

type Call<B> = (<B as Batch>::Item, oneshot::Sender<<B as Batch>::Output>);

/// The sending end of a batching task, kept by every clone of the store.
pub(crate) struct Queue<B: Batch> {
    tx: mpsc::Sender<Call<B>>,
    /// For a call that cannot be queued: the task is gone (the runtime that started it has ended).
    pool: SqlitePool,
}

impl<B: Batch> Clone for Queue<B> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), pool: self.pool.clone() }
    }
}

impl<B: Batch> fmt::Debug for Queue<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("batch", &std::any::type_name::<B>()).finish_non_exhaustive()
    }
}

impl<B: Batch> Queue<B> {
    /// Start the batching task on the current tokio runtime. It ends when the last clone of the queue is dropped.
    pub fn start(pool: SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(serve::<B>(pool.clone(), rx));
        Self { tx, pool }
    }

    /// Run `item` with whatever other items are waiting.
    pub async fn call(&self, item: B::Item) -> Result<B::Output, StorageError> {
        let (reply, output) = oneshot::channel();
        if let Err(mpsc::error::SendError((item, _))) = self.tx.send((item, reply)).await {
            return B::run(&self.pool, vec![item]).await.pop().ok_or_else(no_answer);
        }
        output.await.map_err(|_| no_answer())
    }
}

/// The number of parameter rows a statement for `n` items has: `n` rounded up to a power of two. sqlx keeps a
/// prepared statement per SQL text (up to 100 per connection); a text per batch size would evict them all, and
/// preparing a statement of hundreds of parameters costs more than running it. Rows beyond `n` bind NULLs, which
/// match nothing.
pub(crate) fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

/// `rows` parenthesised lists of `width` anonymous parameters (`(?, ?), (?, ?)`), the `VALUES` of a batch. `?`
/// rather than `$n`: sqlx looks each parameter's name up, and SQLite finds a name by a linear search, which makes
/// numbered parameters quadratic in their count.
pub(crate) fn parameter_rows(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

fn no_answer() -> StorageError {
    StorageError("a batched statement gave no answer".into())
}

/// The task: take the first call waiting and every one queued behind it, run them, answer each.
async fn serve<B: Batch>(pool: SqlitePool, mut rx: mpsc::Receiver<Call<B>>) {
    let mut calls = Vec::with_capacity(B::MAX);
    while rx.recv_many(&mut calls, B::MAX).await > 0 {
        let (items, replies): (Vec<_>, Vec<_>) = calls.drain(..).unzip();
        let outputs = B::run(&pool, items).await;
        for (reply, output) in replies.into_iter().zip(outputs) {
            // The caller may have gone; what was done stands all the same.
            let _ = reply.send(output);
        }
    }
}
