//! Spool files: where a request body that is too large to hold in memory waits on disk until it
//! is complete. Each is an unnamed file (`O_TMPFILE`, or created and unlinked at once where the
//! file system lacks it): nothing of it is visible in the folder, and the kernel frees it when
//! the last descriptor closes, also when the worker dies. So a spool file can never be mistaken
//! for session data, needs no sweeping and never outlives its request.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::store::{STAGING, Store, runtime_dir};

impl Store {
    /// A new spool file: in the session's staging area (`<session>/.staging/`) when the request
    /// names a session, else in the instance's runtime folder (`run/spool/`), for a request that
    /// has none yet (a first upload mints its session once its body is read).
    pub fn spool(&self, session: Option<&SessionId>) -> Result<File> {
        let dir = match session {
            Some(id) => self.session_dir(id)?.join(STAGING),
            None => runtime_dir(self.instance_dir(), "spool"),
        };
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        unnamed_file(&dir)
    }
}

fn unnamed_file(dir: &Path) -> Result<File> {
    tempfile::tempfile_in(dir).map_err(Error::io("create a spool file in", dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;

    #[test]
    fn spool_files_leave_nothing_in_the_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("instance")).unwrap();
        let id = store.create_session().unwrap();
        for session in [Some(&id), None] {
            let mut f = store.spool(session).unwrap();
            f.write_all(b"body bytes").unwrap();
            f.rewind().unwrap();
            let mut back = String::new();
            f.read_to_string(&mut back).unwrap();
            assert_eq!(back, "body bytes");
        }
        let staging = dir
            .path()
            .join("instance/uploads")
            .join(id.as_str())
            .join(STAGING);
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        let spool = dir.path().join("instance/run/spool");
        assert_eq!(fs::read_dir(&spool).unwrap().count(), 0);
        // The session's state is untouched.
        assert!(!store.status(&id).unwrap().data_loaded);
    }
}
