//! Group commit: one thread flushes sled for every writer waiting at the time.
//!
//! A writer makes its change in sled's memory, then waits here. The thread
//! takes every waiter queued so far, calls `flush()` once, and answers them
//! all, so N concurrent writers cost about one flush, not N. A flush started
//! after a waiter queued covers that waiter's write, because the write happened
//! before it queued.
//!
//! `Tree::flush_async` is not used: with 32 tasks on two tokio workers it made
//! no progress for 30 s on these machines (SPEC, "Facts measured"). A plain
//! thread calling the blocking `flush` does not touch the executor at all.

use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// The handle writers queue on. When the last clone is dropped, the thread
/// finishes the flush it is in and is joined, so the database (and its file
/// lock) is released before the drop returns, and the directory can be
/// reopened at once.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    inner: Arc<Committer>,
}

#[derive(Debug)]
struct Committer {
    queue: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; then wait for it.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl GroupCommit {
    /// Starts the flushing thread for `db`.
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Self> {
        let (queue, waiters) = mpsc::channel::<Waiter>();
        let thread = thread::Builder::new().name("oauth-sled-commit".into()).spawn(move || {
            while let Ok(first) = waiters.recv() {
                let mut batch = vec![first];
                batch.extend(waiters.try_iter());
                let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                for w in batch {
                    // A waiter that gave up (its request was dropped) needs no answer.
                    let _ = w.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { inner: Arc::new(Committer { queue: Some(queue), thread: Some(thread) }) })
    }

    /// Returns once every write this task made before the call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), String> {
        let stopped = || "the commit thread has stopped".to_owned();
        let (tx, rx) = oneshot::channel();
        self.inner.queue.as_ref().ok_or_else(stopped)?.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}
