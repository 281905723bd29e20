//! A FUSE file system for power-loss tests: it keeps in memory what has been
//! written, and separately what has been synced, and a power cut keeps only
//! the synced part (the idea of LazyFS).
//!
//! The model is the strict one POSIX allows, not the kindest a journaling file
//! system gives:
//!
//! - a file's writes and size changes become durable only when the file is
//!   `fsync`ed or `fdatasync`ed (`sync_file_range` never reaches a FUSE file
//!   system, just as it never flushes a disk's cache);
//! - a directory's entries (created, renamed and removed names) become
//!   durable only when the directory is `fsync`ed;
//! - at a power cut everything else is thrown away, and from then on every
//!   operation fails with `EIO`, as a machine without power does.
//!
//! Writes go straight to this process (no kernel write-back cache), so the
//! file system sees each `write` and each sync in the order the writer made
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support fails by panicking, like the tests")]

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

/// Attributes and entries may be cached by the kernel: every change goes
/// through it, so its cache cannot go stale while a mount lives.
const TTL: Duration = Duration::from_secs(60);

/// What survives a power cut: the synced tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Image {
    root: DirImage,
}

#[derive(Debug, Clone, Default)]
struct DirImage {
    files: BTreeMap<OsString, Vec<u8>>,
    dirs: BTreeMap<OsString, DirImage>,
}

impl Image {
    /// The files under `dir` on a real file system, all durable.
    pub(crate) fn read_from(dir: &Path) -> std::io::Result<Image> {
        fn read(at: &Path) -> std::io::Result<DirImage> {
            let mut d = DirImage::default();
            for entry in std::fs::read_dir(at)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    d.dirs.insert(entry.file_name(), read(&entry.path())?);
                } else {
                    d.files.insert(entry.file_name(), std::fs::read(entry.path())?);
                }
            }
            Ok(d)
        }
        Ok(Image { root: read(dir)? })
    }

    /// Writes the image into `dir` on a real file system (to inspect a failure).
    pub(crate) fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        fn write(d: &DirImage, at: &Path) -> std::io::Result<()> {
            std::fs::create_dir_all(at)?;
            for (name, data) in &d.files {
                std::fs::write(at.join(name), data)?;
            }
            for (name, sub) in &d.dirs {
                write(sub, &at.join(name))?;
            }
            Ok(())
        }
        write(&self.root, dir)
    }
}

/// A mounted lazy file system. Dropping it unmounts.
pub(crate) struct Mount {
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
}

impl Mount {
    /// Mounts a file system holding `image` (already durable) at `at`.
    pub(crate) fn new(at: &Path, image: &Image) -> std::io::Result<Mount> {
        let state = Arc::new(Mutex::new(State::from_image(image)));
        let fs = LazyFs { state: state.clone() };
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("lazyfs".into())];
        let session = fuser::spawn_mount(fs, at, &config)?;
        Ok(Mount { state, session: Some(session) })
    }

    /// Cuts the power: returns what was synced, and makes every later
    /// operation fail with `EIO`.
    pub(crate) fn cut_power(&self) -> Image {
        let mut state = lock(&self.state);
        state.dead = true;
        state.image()
    }

    /// Unmounts, waiting for the file system's thread.
    pub(crate) fn unmount(mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A change to a file not yet synced, replayed onto the durable copy by a sync.
#[derive(Debug)]
enum Pending {
    Write { offset: usize, data: Vec<u8> },
    Resize(usize),
}

#[derive(Debug, Default)]
struct FileNode {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

impl FileNode {
    fn sync(&mut self) {
        for change in self.pending.drain(..) {
            match change {
                Pending::Write { offset, data } => write_at(&mut self.durable, offset, &data),
                Pending::Resize(len) => self.durable.resize(len, 0),
            }
        }
    }
}

fn write_at(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if buf.len() < offset + data.len() {
        buf.resize(offset + data.len(), 0);
    }
    buf[offset..offset + data.len()].copy_from_slice(data);
}

#[derive(Debug, Default)]
struct DirNode {
    current: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct State {
    nodes: HashMap<u64, Node>,
    next: u64,
    dead: bool,
}

impl State {
    fn from_image(image: &Image) -> State {
        let mut state = State { nodes: HashMap::new(), next: 2, dead: false };
        state.load_dir(1, &image.root);
        state
    }

    fn load_dir(&mut self, ino: u64, d: &DirImage) {
        let mut entries = BTreeMap::new();
        for (name, data) in &d.files {
            let child = self.alloc();
            let node = FileNode { current: data.clone(), durable: data.clone(), pending: Vec::new() };
            self.nodes.insert(child, Node::File(node));
            entries.insert(name.clone(), child);
        }
        for (name, sub) in &d.dirs {
            let child = self.alloc();
            self.load_dir(child, sub);
            entries.insert(name.clone(), child);
        }
        self.nodes.insert(ino, Node::Dir(DirNode { current: entries.clone(), durable: entries }));
    }

    fn alloc(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// The tree as the synced directory entries reach it, with synced data.
    fn image(&self) -> Image {
        Image { root: self.dir_image(1) }
    }

    fn dir_image(&self, ino: u64) -> DirImage {
        let mut out = DirImage::default();
        let Some(Node::Dir(d)) = self.nodes.get(&ino) else { return out };
        for (name, child) in &d.durable {
            match self.nodes.get(child) {
                Some(Node::File(f)) => {
                    out.files.insert(name.clone(), f.durable.clone());
                }
                Some(Node::Dir(_)) => {
                    out.dirs.insert(name.clone(), self.dir_image(*child));
                }
                None => {}
            }
        }
        out
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, size, perm, nlink) = match self.nodes.get(&ino)? {
            Node::File(f) => (FileType::RegularFile, f.current.len() as u64, 0o644, 1),
            Node::Dir(_) => (FileType::Directory, 0, 0o755, 2),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn dir(&mut self, ino: u64) -> Result<&mut DirNode, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn file(&mut self, ino: u64) -> Result<&mut FileNode, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir(_)) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn child(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?.current.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// Adds a new node under `parent`; its entry is not durable until the
    /// parent is synced.
    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<u64, Errno> {
        if self.dir(parent)?.current.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.alloc();
        self.nodes.insert(ino, node);
        self.dir(parent)?.current.insert(name.to_owned(), ino);
        Ok(ino)
    }
}

struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    /// The state, or `EIO` once the power is cut.
    fn live(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let state = lock(&self.state);
        if state.dead { Err(Errno::EIO) } else { Ok(state) }
    }
}

macro_rules! or_reply {
    ($reply:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $reply.error(e),
        }
    };
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut s = or_reply!(reply, self.live());
        let ino = or_reply!(reply, s.child(parent.0, name));
        match s.attr(ino) {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let s = or_reply!(reply, self.live());
        match s.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = or_reply!(reply, self.live());
        if let Some(size) = size {
            let f = or_reply!(reply, s.file(ino.0));
            let size = size as usize;
            f.current.resize(size, 0);
            f.pending.push(Pending::Resize(size));
        }
        match s.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        let mut s = or_reply!(reply, self.live());
        let ino = or_reply!(reply, s.add(parent.0, name, Node::Dir(DirNode::default())));
        reply.entry(&TTL, &s.attr(ino).expect("just added"), Generation(0));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = or_reply!(reply, self.live());
        let d = or_reply!(reply, s.dir(parent.0));
        // The node stays: the durable entries may still name it.
        match d.current.remove(name) {
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = or_reply!(reply, self.live());
        let ino = or_reply!(reply, s.child(parent.0, name));
        if !or_reply!(reply, s.dir(ino)).current.is_empty() {
            return reply.error(Errno::ENOTEMPTY);
        }
        or_reply!(reply, s.dir(parent.0)).current.remove(name);
        reply.ok();
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut s = or_reply!(reply, self.live());
        let ino = or_reply!(reply, s.child(parent.0, name));
        or_reply!(reply, s.dir(parent.0)).current.remove(name);
        or_reply!(reply, s.dir(newparent.0)).current.insert(newname.to_owned(), ino);
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let s = or_reply!(reply, self.live());
        if s.nodes.contains_key(&ino.0) {
            // DIRECT_IO: every read and write comes here, none is served from
            // or held in the kernel's page cache.
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = or_reply!(reply, self.live());
        let ino = match s.child(parent.0, name) {
            Ok(_) if flags & libc::O_EXCL != 0 => return reply.error(Errno::EEXIST),
            Ok(ino) => ino,
            Err(_) => or_reply!(reply, s.add(parent.0, name, Node::File(FileNode::default()))),
        };
        if flags & libc::O_TRUNC != 0 {
            let f = or_reply!(reply, s.file(ino));
            f.current.clear();
            f.pending.push(Pending::Resize(0));
        }
        let attr = s.attr(ino).expect("exists");
        reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut s = or_reply!(reply, self.live());
        let f = or_reply!(reply, s.file(ino.0));
        let start = (offset as usize).min(f.current.len());
        let end = (start + size as usize).min(f.current.len());
        reply.data(&f.current[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut s = or_reply!(reply, self.live());
        let f = or_reply!(reply, s.file(ino.0));
        write_at(&mut f.current, offset as usize, data);
        f.pending.push(Pending::Write { offset: offset as usize, data: data.to_vec() });
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close(2) syncs nothing.
        let _live = or_reply!(reply, self.live());
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut s = or_reply!(reply, self.live());
        or_reply!(reply, s.file(ino.0)).sync();
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let mut s = or_reply!(reply, self.live());
        let entries: Vec<(OsString, u64)> =
            or_reply!(reply, s.dir(ino.0)).current.iter().map(|(n, i)| (n.clone(), *i)).collect();
        let mut all = vec![(OsString::from("."), ino.0), (OsString::from(".."), 1)];
        all.extend(entries);
        for (i, (name, child)) in all.into_iter().enumerate().skip(offset as usize) {
            let kind = match s.nodes.get(&child) {
                Some(Node::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut s = or_reply!(reply, self.live());
        let d = or_reply!(reply, s.dir(ino.0));
        d.durable = d.current.clone();
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let _live = or_reply!(reply, self.live());
        reply.ok();
    }
}
