//! Group commit: one thread makes sled's writes durable for every writer
//! waiting at the time.
//!
//! A writer makes its change in sled's memory, then waits here. The thread
//! takes every waiter queued so far, calls `flush()` once, and (at
//! [`Durability::Power`]) `fdatasync`s sled's files once, then answers them
//! all, so N concurrent writers cost about one flush, not N. A flush started
//! after a waiter queued covers that waiter's write, because the write happened
//! before it queued.
//!
//! `Tree::flush_async` is not used: with 32 tasks on two tokio workers it made
//! no progress for 30 s on these machines (SPEC, "Facts measured"). A plain
//! thread calling the blocking `flush` does not touch the executor at all.
//!
//! # What sled 0.34 leaves to us for power-loss durability
//!
//! Read from sled 0.34.7's source (`pagecache/iobuf.rs`, `snapshot.rs`,
//! `blob_io.rs`, `config.rs`):
//!
//! - `db`, the log: `flush` writes it with `pwrite` and makes it stable with
//!   `sync_file_range`, which starts and waits for the write-back of those
//!   pages but flushes neither the disk's cache nor the file's size. Its
//!   background thread calls `fsync` on it only every 500 ms.
//! - `snap.<lsn>`, the snapshot: written, `fsync`ed and renamed into place,
//!   but the directory is never synced, so the rename may not survive.
//! - `blobs/<lsn>`, values too large for a log segment: written with no sync
//!   at all, in a directory that is never synced.
//! - `conf`, the storage parameters: written once at creation, never synced.
//!
//! So at [`Durability::Power`] each group commit ends with `fdatasync` of
//! `db`, and with `fsync` of every file that appeared in the store's
//! directory or in `blobs/` since the last commit, then of the directory that
//! holds it. [`SyncedFiles::sync_all_new`] at open makes the files sled wrote
//! while opening (and the directory entry of the store itself) durable before
//! the first write is acknowledged.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;

use crate::Durability;

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
    /// Starts the flushing thread for `db`. `synced` is `Some` at
    /// [`Durability::Power`]: the files to `fdatasync` after every flush.
    pub(crate) fn start(db: sled::Db, mut synced: Option<SyncedFiles>) -> io::Result<Self> {
        let (queue, waiters) = mpsc::channel::<Waiter>();
        let thread = thread::Builder::new().name("oauth-sled-commit".into()).spawn(move || {
            while let Ok(first) = waiters.recv() {
                let mut batch = vec![first];
                batch.extend(waiters.try_iter());
                let mut result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                if let (Ok(()), Some(files)) = (&result, synced.as_mut()) {
                    result = files.sync().map_err(|e| format!("fdatasync of the store's files: {e}"));
                }
                for w in batch {
                    // A waiter that gave up (its request was dropped) needs no answer.
                    let _ = w.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { inner: Arc::new(Committer { queue: Some(queue), thread: Some(thread) }) })
    }

    /// Returns once every write this task made before the call is durable at
    /// the store's [`Durability`].
    pub(crate) async fn durable(&self) -> Result<(), String> {
        let stopped = || "the commit thread has stopped".to_owned();
        let (tx, rx) = oneshot::channel();
        self.inner.queue.as_ref().ok_or_else(stopped)?.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// The files of one sled directory that a power-durable commit syncs: the log,
/// kept open, and the names already synced in the directory and in `blobs/`,
/// so that a new file (a snapshot, a blob) is synced once, with its directory
/// entry.
#[derive(Debug)]
pub(crate) struct SyncedFiles {
    log: File,
    dirs: Vec<WatchedDir>,
}

#[derive(Debug)]
struct WatchedDir {
    path: PathBuf,
    known: BTreeSet<OsString>,
}

impl SyncedFiles {
    /// The files of the sled store in `dir`, which sled has opened (so `db`
    /// and `blobs/` exist). Nothing is synced yet: call [`Self::sync_all_new`].
    pub(crate) fn new(dir: &Path) -> io::Result<Self> {
        // Read-only is enough: fdatasync needs no write access, and it syncs the
        // file's data whichever descriptor asks.
        let log = File::open(dir.join("db"))?;
        let dirs = [dir.to_owned(), dir.join("blobs")]
            .into_iter()
            .map(|path| WatchedDir { path, known: BTreeSet::new() })
            .collect();
        Ok(SyncedFiles { log, dirs })
    }

    /// Syncs every file not synced before and each directory whose entries
    /// changed, then the log. At open this covers everything sled wrote
    /// while opening (its `conf` included) and, through the parent directory,
    /// the store's own directory entry.
    pub(crate) fn sync_all_new(&mut self, dir: &Path) -> io::Result<()> {
        self.sync()?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// One group commit's sync: new files and changed directories first, so
    /// that a snapshot's rename is durable with the log it summarises, then
    /// the log's data.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        for dir in &mut self.dirs {
            dir.sync_changes()?;
        }
        self.log.sync_data()
    }
}

impl WatchedDir {
    fn sync_changes(&mut self) -> io::Result<()> {
        let mut now = BTreeSet::new();
        for entry in std::fs::read_dir(&self.path)? {
            now.insert(entry?.file_name());
        }
        if now == self.known {
            return Ok(());
        }
        for name in now.difference(&self.known) {
            let path = self.path.join(name);
            // A file sled removed between the listing and here needs no sync.
            match File::open(&path) {
                Ok(f) => f.sync_all()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // Created, renamed and removed entries are made durable together.
        sync_dir(&self.path)?;
        self.known = now;
        Ok(())
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// What [`SledStore::open`](crate::SledStore::open) needs for `durability`.
pub(crate) fn files_for(durability: Durability, dir: &Path) -> io::Result<Option<SyncedFiles>> {
    match durability {
        Durability::Process => Ok(None),
        Durability::Power => {
            let mut files = SyncedFiles::new(dir)?;
            files.sync_all_new(dir)?;
            Ok(Some(files))
        }
    }
}
