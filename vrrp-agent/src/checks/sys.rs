//! The two kernel interfaces the runners need and libc/tokio do not wrap:
//! `pidfd_open(2)` (a process's death as fd readiness) and `inotify(7)` on a
//! directory. Everything unsafe of the checks lives here.

use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use tokio::io::unix::AsyncFd;

/// A process, as a pidfd: readable once the process has exited.
pub struct PidFd {
    pid: i32,
    fd: AsyncFd<OwnedFd>,
}

impl PidFd {
    /// Opens a pidfd for `pid` (`ESRCH` if there is no such process).
    /// Must be called inside a tokio runtime.
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
        // no memory is passed.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let raw = i32::try_from(ret).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: the kernel just returned this fd to us and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the fd from here on; nothing replaces or
        // closes it while registered.
        let fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)? };
        Ok(PidFd { pid, fd })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Returns once the process has exited (it may be a zombie until its
    /// parent reaps it; to us it is gone).
    pub async fn exited(&self) -> io::Result<()> {
        // A pidfd stays readable after exit, so the guard need not be cleared.
        self.fd.readable().await.map(|_| ())
    }
}

/// The inotify events that mean "the file may have a new value": a writer
/// closed it, it was renamed into place, or it went away. `IN_MODIFY` and
/// `IN_CREATE` are left out on purpose: `echo 5 > f` truncates first, and a
/// read then would see an empty file (0) for a moment.
const FILE_EVENTS: u32 =
    libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE;

/// An inotify instance watching one directory.
pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Watches `dir` for files being replaced, closed after writing, or
    /// removed. Must be called inside a tokio runtime.
    pub fn new(dir: &Path) -> io::Result<DirWatch> {
        // SAFETY: inotify_init1 takes flags only and returns a new fd or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: `owned` is a live inotify fd and `path` a NUL-terminated
        // string that outlives the call.
        let wd = unsafe {
            libc::inotify_add_watch(
                owned.as_raw_fd(),
                path.as_ptr(),
                FILE_EVENTS | libc::IN_ONLYDIR,
            )
        };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns the fd from here on; nothing replaces or
        // closes it while registered.
        let fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)? };
        Ok(DirWatch { fd })
    }

    /// Waits for the next batch of events and returns the names of the
    /// directory entries they are about.
    pub async fn changed(&self) -> io::Result<Vec<OsString>> {
        let mut buf = [0u8; 4096];
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
                let n = unsafe {
                    libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match read {
                Ok(Ok(n)) => return Ok(parse_events(&buf[..n])),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Splits a buffer of `struct inotify_event` records (`wd: i32, mask: u32,
/// cookie: u32, len: u32, name[len]` NUL-padded) into the names, bounds
/// checked.
pub fn parse_events(mut buf: &[u8]) -> Vec<OsString> {
    const HEADER: usize = 16;
    let mut names = Vec::new();
    while buf.len() >= HEADER {
        let len_bytes = [buf[12], buf[13], buf[14], buf[15]];
        let Ok(len) = usize::try_from(u32::from_ne_bytes(len_bytes)) else {
            break;
        };
        let Some(name) = buf.get(HEADER..HEADER.saturating_add(len)) else {
            break;
        };
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if end > 0 {
            names.push(OsStr::from_bytes(&name[..end]).to_owned());
        }
        buf = &buf[HEADER + len..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &[u8], padded: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&1i32.to_ne_bytes());
        v.extend_from_slice(&libc::IN_CLOSE_WRITE.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&(padded as u32).to_ne_bytes());
        let mut n = name.to_vec();
        n.resize(padded, 0);
        v.extend_from_slice(&n);
        v
    }

    #[test]
    fn parses_names_and_stops_at_truncation() {
        let mut buf = event(b"weight", 16);
        buf.extend(event(b"other", 8));
        assert_eq!(parse_events(&buf), ["weight", "other"]);
        let mut cut = event(b"weight", 16);
        cut.truncate(20);
        assert!(parse_events(&cut).is_empty());
        let mut huge = event(b"x", 4);
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_events(&huge).is_empty());
    }
}
