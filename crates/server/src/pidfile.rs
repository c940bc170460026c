//! The pidfile: "PID\n", written atomically, refused while another live process owns it, removed
//! at exit only if it still names us.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::Error;

#[derive(Debug)]
pub(crate) struct Pidfile {
    path: PathBuf,
    pid: u32,
}

/// Fails if the file names a live process other than us; a dead pid or garbage is stale.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Pidfile {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    if pid <= 0 || pid as u32 == std::process::id() {
        return Ok(());
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => Err(Error::AlreadyRunning {
            pid,
            path: path.to_path_buf(),
        }),
        Err(_) => Ok(()),
    }
}

impl Pidfile {
    pub(crate) fn create(path: &Path) -> Result<Pidfile, Error> {
        check(path)?;
        let pid = std::process::id();
        let err = |source| Error::Pidfile {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        tmp.write_all(format!("{pid}\n").as_bytes()).map_err(err)?;
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(err)?;
        }
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// Leaves a file that another process has since claimed.
    pub(crate) fn remove(self) {
        if let Ok(text) = std::fs::read_to_string(&self.path)
            && text.trim() == self.pid.to_string()
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_stale_live_and_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pid");
        let pf = Pidfile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        pf.remove();
        assert!(!path.exists());

        // pid 1 is alive (EPERM or Ok): refused.
        std::fs::write(&path, "1\n").unwrap();
        assert!(matches!(
            Pidfile::create(&path),
            Err(Error::AlreadyRunning { pid: 1, .. })
        ));
        // garbage is stale
        std::fs::write(&path, "not a pid").unwrap();
        let pf = Pidfile::create(&path).unwrap();
        // someone else's pid now: not removed
        std::fs::write(&path, "1\n").unwrap();
        pf.remove();
        assert!(path.exists());
    }
}
