//! Opening files of a session without following symbolic links, so that a local user who can
//! write one session folder (plant a link at `.data`, at a data directory, at a file or at the
//! session folder itself) cannot make this crate read another session's files, or anything else.
//!
//! Every read resolves a path *relative to the `uploads/` directory* (`<id>/.data/<token>/<name>`)
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: one system call, and the kernel refuses a
//! symbolic link in any component and any escape from `uploads/`. Where `openat2` is missing
//! (Linux < 5.6, or a seccomp filter), the same guarantee comes from walking the components with
//! `openat(O_NOFOLLOW)`, each relative to the descriptor of the directory before it.
//!
//! The `uploads/` path itself is the operator's (it may well lead through a symbolic link) and
//! is opened once per `Store`.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;

/// Set once `openat2` turned out to be unavailable in this process (a property of the kernel,
/// not of any session).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens a directory for use as the anchor of [`open`] (`O_PATH`: no read permission needed).
pub(crate) fn open_anchor(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// What to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A file for reading. `O_NONBLOCK` so that a planted FIFO cannot block the caller (it
    /// changes nothing for regular files).
    Read,
    /// A directory, as an anchor for `*at` calls (not `O_PATH`: with `O_NOFOLLOW` that would
    /// open a trailing link itself instead of refusing it).
    Dir,
}

impl Want {
    fn flags(self) -> OFlag {
        let common = OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        match self {
            Want::Read => common | OFlag::O_RDONLY | OFlag::O_NONBLOCK,
            Want::Dir => common | OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        }
    }
}

/// Opens `rel` (plain components only: no `..`, no `.`, not absolute) below `anchor`, refusing a
/// symbolic link in every component. A refused link is `ErrorKind::FilesystemLoop` (`ELOOP`).
pub(crate) fn open(anchor: BorrowedFd<'_>, rel: &str, want: Want) -> io::Result<OwnedFd> {
    plain(rel)?;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = OpenHow::new().flags(want.flags()).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        match openat2(anchor, rel, how) {
            Ok(fd) => return Ok(fd),
            // ENOSYS: no such system call; EPERM: a seccomp filter that predates it.
            Err(Errno::ENOSYS | Errno::EPERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(e) => return Err(e.into()),
        }
    }
    open_by_components(anchor, rel, want)
}

/// The portable way: each directory opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one
/// before it, so no component can be swapped for a link between checks.
pub(crate) fn open_by_components(
    anchor: BorrowedFd<'_>,
    rel: &str,
    want: Want,
) -> io::Result<OwnedFd> {
    plain(rel)?;
    let mut parts = rel.split('/').peekable();
    let mut current: Option<OwnedFd> = None;
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let flags = if last { want } else { Want::Dir }.flags();
        let base = current.as_ref().map_or(anchor, |fd| fd.as_fd());
        let name = OsStr::from_bytes(part.as_bytes());
        let fd = match openat(base, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // `O_DIRECTORY | O_NOFOLLOW` on a link says "not a directory": say "link" instead.
            Err(Errno::ENOTDIR) if is_link(base, name) => return Err(Errno::ELOOP.into()),
            Err(e) => return Err(e.into()),
        };
        current = Some(fd);
    }
    current.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
}

fn is_link(base: BorrowedFd<'_>, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(base, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK)
}

/// Opens a regular file for reading below `anchor` (see [`open`]); anything that is not a
/// regular file (a directory, a FIFO, a device) is `NotFound`.
pub(crate) fn open_file(anchor: BorrowedFd<'_>, rel: &str) -> io::Result<File> {
    let file = File::from(open(anchor, rel, Want::Read)?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(file)
}

/// True when the kernel refused a symbolic link (or an escape) on the way.
pub(crate) fn is_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ELOOP | Errno::EXDEV)
    )
}

fn plain(rel: &str) -> io::Result<()> {
    let ok = !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain relative path",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(anchor: &OwnedFd, rel: &str, walk: bool) -> io::Result<String> {
        let fd = if walk {
            open_by_components(anchor.as_fd(), rel, Want::Read)?
        } else {
            open(anchor.as_fd(), rel, Want::Read)?
        };
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn links_are_refused_in_every_component_both_ways() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        let b = root.path().join("b");
        std::fs::create_dir_all(a.join(".data/u-1")).unwrap();
        std::fs::create_dir_all(b.join(".data/u-2")).unwrap();
        std::fs::write(a.join(".data/u-1/raw_data.csv"), "mine").unwrap();
        std::fs::write(b.join(".data/u-2/raw_data.csv"), "theirs").unwrap();
        // A session folder pointing at another one, a data directory, a file, `.data` itself.
        symlink(&b, root.path().join("c")).unwrap();
        symlink(b.join(".data/u-2"), a.join(".data/u-3")).unwrap();
        symlink(
            b.join(".data/u-2/raw_data.csv"),
            a.join(".data/u-1/link.csv"),
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("d")).unwrap();
        symlink(b.join(".data"), root.path().join("d/.data")).unwrap();
        let anchor = open_anchor(root.path()).unwrap();
        for walk in [false, true] {
            assert_eq!(
                read(&anchor, "a/.data/u-1/raw_data.csv", walk).unwrap(),
                "mine"
            );
            for rel in [
                "c/.data/u-2/raw_data.csv",
                "a/.data/u-3/raw_data.csv",
                "a/.data/u-1/link.csv",
                "d/.data/u-2/raw_data.csv",
            ] {
                let e = read(&anchor, rel, walk).unwrap_err();
                assert!(is_refusal(&e), "{rel} (walk {walk}): {e}");
            }
            assert!(read(&anchor, "a/../b/.data/u-2/raw_data.csv", walk).is_err());
            assert!(read(&anchor, "/etc/passwd", walk).is_err());
        }
        assert!(open_file(anchor.as_fd(), "a/.data").is_err());
    }

    #[test]
    fn a_fifo_does_not_block() {
        let root = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&root.path().join("manifest.json"), Mode::S_IRWXU).unwrap();
        let anchor = open_anchor(root.path()).unwrap();
        let e = open_file(anchor.as_fd(), "manifest.json").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
