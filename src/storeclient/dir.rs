//! [`DirStore`]: one file per key in a local directory.

use super::{
    check_key, check_object_size, decode_key_segment, encode_key_segment, Listed, Precondition,
    Store, StoreError, StoreOptions,
};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of temporary file names. `%t` is not a valid escape, so no key
/// ever encodes to such a name and `list` skips them without a special case.
const TMP_PREFIX: &str = "%tmp-";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A [`Store`] keeping each object in its own file, named by
/// [`encode_key_segment`] of the key, directly inside one directory.
///
/// Writes go to a uniquely named temporary file in the same directory, which
/// is fsynced, renamed over the target, and then the directory is fsynced: a
/// crash leaves either the old or the new object, never a torn one.
///
/// Versions: an object's version is its file's identity and state (device,
/// inode, modification time, size). Every write replaces the file (a new
/// inode), so the version changes with each write. Writes and deletes take
/// an exclusive `flock` on the directory itself and check their
/// [`Precondition`] under it, which gives compare-and-swap between the
/// processes of one machine. Only the check and the rename run under it
/// (the data is written to the temporary file before), so one lock for the
/// whole directory costs little and leaves no lock files behind.
#[derive(Debug)]
pub struct DirStore {
    dir: PathBuf,
    max_object_bytes: u64,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::Storage(format!("{what} {}: {e}", path.display()))
}

impl DirStore {
    /// Opens (creating it and its parents if missing) the directory `dir`.
    pub fn open(dir: impl AsRef<Path>, opts: &StoreOptions) -> Result<DirStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if dir.as_os_str().is_empty() {
            return Err(StoreError::Storage("store directory path is empty".into()));
        }
        fs::create_dir_all(&dir).map_err(|e| io_err("create directory", &dir, e))?;
        let md = fs::metadata(&dir).map_err(|e| io_err("stat", &dir, e))?;
        if !md.is_dir() {
            return Err(StoreError::Storage(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let store = DirStore {
            dir,
            max_object_bytes: opts.max_object_bytes,
        };
        store.remove_stale_temp_files();
        Ok(store)
    }

    /// Removes the temporary files of writers that died mid-write (their
    /// process no longer exists). Best effort: a file that cannot be checked
    /// or removed is left, and is never listed anyway.
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

    /// The directory holding the objects.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or would hold) `key`.
    pub fn path_for(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.dir.join(encode_key_segment(key)))
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync directory", &self.dir, e))
    }

    fn write_tmp(&self, tmp: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        f.write_all(data)?;
        f.sync_all()
    }
}

fn not_regular(path: &Path) -> StoreError {
    StoreError::Storage(format!(
        "{} is not a regular file (special files and symlinks are never objects)",
        path.display()
    ))
}

/// Opens `path` for reading only if it is a regular file: a symlink is not
/// followed, and a FIFO or device neither blocks the open nor is read.
fn open_regular(path: &Path, key: &str) -> Result<File, StoreError> {
    let mut oo = OpenOptions::new();
    oo.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        oo.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = match oo.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::KeyNotFound(key.to_string()))
        }
        Err(e) => return Err(io_err("open", path, e)),
    };
    let md = f.metadata().map_err(|e| io_err("stat", path, e))?;
    if !md.is_file() {
        return Err(not_regular(path));
    }
    Ok(f)
}

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}

/// The version token of a file (see [`DirStore`]).
fn version_of(md: &fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{:x}-{:x}-{:x}.{:09}-{:x}",
            md.dev(),
            md.ino(),
            md.mtime(),
            md.mtime_nsec(),
            md.size()
        )
    }
    #[cfg(not(unix))]
    {
        let t = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{t:x}-{:x}", md.len())
    }
}

/// The exclusive lock of the store's writers, released when dropped (the
/// directory handle closes).
struct ObjectLock {
    _file: File,
}

impl DirStore {
    fn lock_object(&self, key: &str) -> Result<ObjectLock, StoreError> {
        check_key(key)?;
        let file = File::open(&self.dir).map_err(|e| io_err("open", &self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            loop {
                // SAFETY: flock on a descriptor we own; blocks until granted.
                let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
                if r == 0 {
                    break;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(io_err("lock", &self.dir, e));
                }
            }
        }
        Ok(ObjectLock { _file: file })
    }

    /// The version of the object at `path` now; None if there is none.
    fn current_version(&self, path: &Path) -> Result<Option<String>, StoreError> {
        match fs::metadata(path) {
            Ok(md) => Ok(Some(version_of(&md))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", path, e)),
        }
    }

    fn check_precondition(
        &self,
        what: &str,
        key: &str,
        path: &Path,
        cond: &Precondition,
    ) -> Result<(), StoreError> {
        let current = match cond {
            Precondition::Any => return Ok(()),
            _ => self.current_version(path)?,
        };
        let why = match (cond, current.as_deref()) {
            (Precondition::Absent, Some(_)) => "an object exists already".to_string(),
            (Precondition::Version(v), None) => {
                format!("the object (version {v}) was deleted")
            }
            (Precondition::Version(v), Some(c)) if c != v => {
                format!("the object is no longer version {v} (now {c})")
            }
            _ => return Ok(()),
        };
        Err(StoreError::Conflict(format!(
            "{what} {key:?} in {}: {why}",
            self.dir.display()
        )))
    }
}

impl Store for DirStore {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.put_if(key, data, &Precondition::Any).map(|_| ())
    }

    fn put_if(
        &self,
        key: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        let path = self.path_for(key)?;
        check_object_size(&format!("put {key:?}"), data.len(), self.max_object_bytes)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        // Written before the lock is taken: the slow part does not block
        // other writers of the object.
        if let Err(e) = self.write_tmp(&tmp, data) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write", &tmp, e));
        }
        let guard = match self.lock_object(key) {
            Ok(g) => g,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.check_precondition("put", key, &path, cond) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("rename into", &path, e));
        }
        let version = self.current_version(&path)?;
        drop(guard);
        self.sync_dir()?;
        Ok(version)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.get_versioned(key).map(|(d, _)| d)
    }

    fn get_versioned(&self, key: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
        let path = self.path_for(key)?;
        let f = open_regular(&path, key)?;
        // The open file's own metadata: its version matches the bytes read,
        // whatever renames happen meanwhile.
        let md = f.metadata().map_err(|e| io_err("stat", &path, e))?;
        let version = version_of(&md);
        let len = md.len();
        let too_big = |n: u64| {
            StoreError::Storage(format!(
                "get {key:?}: object of {n} bytes exceeds the limit of {} bytes",
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
        Ok((buf, Some(version)))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_if(key, &Precondition::Any)
    }

    fn delete_if(&self, key: &str, cond: &Precondition) -> Result<(), StoreError> {
        let path = self.path_for(key)?;
        let _guard = self.lock_object(key)?;
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_file() => {}
            Ok(_) => return Err(not_regular(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::KeyNotFound(key.to_string()))
            }
            Err(e) => return Err(io_err("stat", &path, e)),
        }
        self.check_precondition("delete", key, &path, cond)?;
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::KeyNotFound(key.to_string()))
            }
            Err(e) => Err(io_err("remove", &path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| io_err("list", &self.dir, e))?;
        let mut keys = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| io_err("list", &self.dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(key) = decode_key_segment(&name) else {
                continue; // temporary files and foreign names
            };
            if !key.starts_with(prefix) || check_key(&key).is_err() {
                continue;
            }
            // Only regular files are objects: a FIFO would block the load,
            // a symlink could point out of the store (or at /dev/zero).
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

    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    fn supports_conditions(&self) -> bool {
        true
    }

    fn list_versions(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        for key in self.list(prefix)? {
            // Gone between the listing and the stat: not listed.
            if let Some(version) = self.current_version(&self.path_for(&key)?)? {
                out.push(Listed {
                    key,
                    version: Some(version),
                });
            }
        }
        Ok(out)
    }
}
