//! The directory behind the server: one regular file per key, written
//! atomically (temporary file, fsync, rename, fsync of the directory).
//!
//! Versions (ETags) are the file's identity and state: device, inode,
//! modification time and size. Every write renames a new file into place,
//! so every write changes the ETag. Conditional writes check and rename
//! under one mutex, so they are atomic against every other request of this
//! server (the server must be the directory's only writer).

use crate::key::{decode_key_segment, encode_key_segment, key_problem};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// `%t` is not a valid escape, so no key encodes to a temporary file's name.
const TMP_PREFIX: &str = "%tmp-";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a directory operation can fail with.
#[derive(Debug)]
pub enum DirError {
    /// No object under the key.
    NotFound,
    /// The key can never be stored (empty, `.`, `..`, too long).
    BadKey(String),
    /// The object is larger than the limit.
    TooLarge(String),
    /// Anything else (I/O, special files).
    Io(String),
    /// The request's precondition does not hold (HTTP 412).
    PreconditionFailed(String),
}

/// The precondition of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// None.
    Any,
    /// `If-None-Match: *`: no object may exist.
    Absent,
    /// `If-Match: *`: an object must exist.
    Exists,
    /// `If-Match: "<etag>"`: the object must have this ETag.
    Matches(String),
}

/// The ETag of a file (quoted, as HTTP sends it).
fn etag_of(md: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "\"{:x}-{:x}-{:x}.{:09}-{:x}\"",
        md.dev(),
        md.ino(),
        md.mtime(),
        md.mtime_nsec(),
        md.size()
    )
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::NotFound => f.write_str("key not found"),
            DirError::BadKey(m)
            | DirError::TooLarge(m)
            | DirError::Io(m)
            | DirError::PreconditionFailed(m) => f.write_str(m),
        }
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> DirError {
    DirError::Io(format!("{what} {}: {e}", path.display()))
}

/// The objects of one directory.
#[derive(Debug)]
pub struct Dir {
    dir: PathBuf,
    max_object_bytes: u64,
    /// Held across a precondition check and the rename or removal it guards.
    writes: Mutex<()>,
}

impl Dir {
    /// Opens (creating it if missing) the directory.
    pub fn open(dir: &Path, max_object_bytes: u64) -> Result<Dir, DirError> {
        if dir.as_os_str().is_empty() {
            return Err(DirError::Io("store directory path is empty".into()));
        }
        fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
        if !fs::metadata(dir)
            .map_err(|e| io_err("stat", dir, e))?
            .is_dir()
        {
            return Err(DirError::Io(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let d = Dir {
            dir: dir.to_path_buf(),
            max_object_bytes,
            writes: Mutex::new(()),
        };
        d.remove_stale_temp_files();
        Ok(d)
    }

    /// Removes temporary files of writers that died mid-write. Best effort:
    /// a file left behind is never listed anyway.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if pid != std::process::id() as i32 && !process_alive(pid) {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, DirError> {
        if let Some(why) = key_problem(key) {
            return Err(DirError::BadKey(why));
        }
        Ok(self.dir.join(encode_key_segment(key)))
    }

    fn sync_dir(&self) -> Result<(), DirError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync directory", &self.dir, e))
    }

    /// The current ETag of `path`, None if there is no object.
    fn current_etag(&self, path: &Path) -> Result<Option<String>, DirError> {
        match fs::symlink_metadata(path) {
            Ok(md) if md.is_file() => Ok(Some(etag_of(&md))),
            Ok(_) => Err(DirError::Io(format!(
                "{} is not a regular file",
                path.display()
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", path, e)),
        }
    }

    fn check(&self, path: &Path, cond: &Cond) -> Result<(), DirError> {
        if *cond == Cond::Any {
            return Ok(());
        }
        let current = self.current_etag(path)?;
        let failed = match (cond, current.as_deref()) {
            (Cond::Absent, Some(_)) => "an object exists".to_string(),
            (Cond::Exists, None) => "no object exists".to_string(),
            (Cond::Matches(want), None) => format!("no object exists (wanted ETag {want})"),
            (Cond::Matches(want), Some(have)) if want != have => {
                format!("the ETag is {have}, not {want}")
            }
            _ => return Ok(()),
        };
        Err(DirError::PreconditionFailed(failed))
    }

    /// Stores `data` if `cond` holds; returns the new ETag.
    pub fn put(&self, key: &str, data: &[u8], cond: &Cond) -> Result<String, DirError> {
        let path = self.path_for(key)?;
        if data.len() as u64 > self.max_object_bytes {
            return Err(DirError::TooLarge(format!(
                "object of {} bytes exceeds the limit of {} bytes",
                data.len(),
                self.max_object_bytes
            )));
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write", &tmp, e));
        }
        let etag = {
            let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.check(&path, cond) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            if let Err(e) = fs::rename(&tmp, &path) {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("rename into", &path, e));
            }
            self.current_etag(&path)?
                .ok_or_else(|| DirError::Io(format!("{} vanished", path.display())))?
        };
        self.sync_dir()?;
        Ok(etag)
    }

    /// The object and its ETag (of the very file read).
    pub fn get(&self, key: &str) -> Result<(Vec<u8>, String), DirError> {
        let path = self.path_for(key)?;
        let f = open_regular(&path)?;
        let md = f.metadata().map_err(|e| io_err("stat", &path, e))?;
        let etag = etag_of(&md);
        let len = md.len();
        let too_big = |n: u64| {
            DirError::TooLarge(format!(
                "object of {n} bytes exceeds the limit of {} bytes",
                self.max_object_bytes
            ))
        };
        if len > self.max_object_bytes {
            return Err(too_big(len));
        }
        let mut buf = Vec::with_capacity(len as usize);
        f.take(self.max_object_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| io_err("read", &path, e))?;
        if buf.len() as u64 > self.max_object_bytes {
            return Err(too_big(buf.len() as u64));
        }
        Ok((buf, etag))
    }

    /// Removes the object if `cond` holds.
    pub fn delete(&self, key: &str, cond: &Cond) -> Result<(), DirError> {
        let path = self.path_for(key)?;
        let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_file() => {}
            Ok(_) => {
                return Err(DirError::Io(format!(
                    "{} is not a regular file",
                    path.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // If-Match on a missing object is a failed precondition (RFC 9110).
                return Err(match cond {
                    Cond::Matches(_) | Cond::Exists => {
                        DirError::PreconditionFailed("no object exists".into())
                    }
                    _ => DirError::NotFound,
                });
            }
            Err(e) => return Err(io_err("stat", &path, e)),
        }
        self.check(&path, cond)?;
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DirError::NotFound),
            Err(e) => Err(io_err("remove", &path, e)),
        }
    }

    /// Keys of the regular files whose key starts with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, DirError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| io_err("list", &self.dir, e))?;
        let mut keys = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| io_err("list", &self.dir, e))?;
            let Some(key) = entry.file_name().to_str().and_then(decode_key_segment) else {
                continue;
            };
            if !key.starts_with(prefix) || key_problem(&key).is_some() {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_file() => keys.push(key),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("stat", &entry.path(), e)),
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Opens `path` for reading only if it is a regular file: a symlink is not
/// followed, and a FIFO or device neither blocks the open nor is read.
fn open_regular(path: &Path) -> Result<File, DirError> {
    let mut oo = OpenOptions::new();
    oo.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        oo.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = match oo.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(DirError::NotFound),
        Err(e) => return Err(io_err("open", path, e)),
    };
    let md = f.metadata().map_err(|e| io_err("stat", path, e))?;
    if !md.is_file() {
        return Err(DirError::Io(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}
