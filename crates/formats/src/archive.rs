//! Reading uploaded zip archives in memory, with caps against zip bombs and refusal of entries
//! whose names could escape an extraction folder.

use std::io::{Cursor, Read};

use crate::error::{Error, Result};

/// Caps for an uploaded archive.
#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    pub max_entries: usize,
    /// Total uncompressed bytes of all entries we read.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of an entry larger than 1 MiB.
    pub max_ratio: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_entries: 1000,
            max_total_bytes: 1 << 30,
            max_ratio: 200,
        }
    }
}

/// One regular file of the archive, read into memory.
#[derive(Debug)]
pub struct ZipEntry {
    /// Path inside the archive ('/' separated).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads every regular file of the archive. Refuses unsafe names and links before reading any
/// data; skips directories and macOS resource forks (`__MACOSX/`, `._*`).
pub fn read_zip(bytes: &[u8], limits: &ZipLimits) -> Result<Vec<ZipEntry>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| Error::BadZip {
        reason: e.to_string(),
    })?;
    if archive.len() > limits.max_entries {
        return Err(Error::ZipBomb {
            reason: format!("{} entries (limit {})", archive.len(), limits.max_entries),
        });
    }
    let mut wanted = Vec::new();
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).map_err(|e| Error::BadZip {
            reason: e.to_string(),
        })?;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        check_entry_name(&name)?;
        if file.is_symlink() {
            return Err(Error::ZipUnsafeEntry {
                entry: name,
                reason: "it is a symbolic link",
            });
        }
        if file.is_dir() || is_resource_fork(&name) {
            continue;
        }
        declared = declared.saturating_add(file.size());
        if declared > limits.max_total_bytes {
            return Err(Error::ZipBomb {
                reason: format!("more than {} bytes uncompressed", limits.max_total_bytes),
            });
        }
        wanted.push(i);
    }
    let mut out = Vec::with_capacity(wanted.len());
    let mut total: u64 = 0;
    for i in wanted {
        let mut file = archive.by_index(i).map_err(|e| Error::BadZip {
            reason: e.to_string(),
        })?;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        let compressed = file.compressed_size().max(1);
        // Declared sizes can lie: read at most what the caps still allow, plus one byte to
        // notice an overrun.
        let budget = limits.max_total_bytes - total;
        let mut buf = Vec::with_capacity(file.size().min(budget) as usize);
        (&mut file)
            .take(budget + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::BadZip {
                reason: format!("{name}: {e}"),
            })?;
        let len = buf.len() as u64;
        if len > budget {
            return Err(Error::ZipBomb {
                reason: format!("more than {} bytes uncompressed", limits.max_total_bytes),
            });
        }
        if len > (1 << 20) && len / compressed > limits.max_ratio {
            return Err(Error::ZipBomb {
                reason: format!(
                    "{name} expands {}-fold (limit {})",
                    len / compressed,
                    limits.max_ratio
                ),
            });
        }
        total += len;
        out.push(ZipEntry { name, bytes: buf });
    }
    Ok(out)
}

fn is_resource_fork(name: &str) -> bool {
    name.starts_with("__MACOSX/") || base_name(name).starts_with("._")
}

/// The last path component.
pub(crate) fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn check_entry_name(name: &str) -> Result<()> {
    let refuse = |reason| {
        Err(Error::ZipUnsafeEntry {
            entry: name.to_string(),
            reason,
        })
    };
    if name.contains('\0') {
        return refuse("its name contains a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return refuse("it has an absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return refuse("it has a drive-letter path");
    }
    if name.split(['/', '\\']).any(|c| c == "..") {
        return refuse("its path climbs out of the archive (`..`)");
    }
    Ok(())
}

/// Builds a deflated zip from (name, bytes) pairs with a fixed timestamp, so equal inputs give
/// equal archives.
pub fn write_zip(entries: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let fail = |e: zip::result::ZipError| Error::Io {
        path: "zip archive".into(),
        source: std::io::Error::other(e.to_string()),
    };
    for (name, bytes) in entries {
        w.start_file(*name, opts).map_err(fail)?;
        std::io::Write::write_all(&mut w, bytes).map_err(|e| Error::Io {
            path: (*name).to_string(),
            source: e,
        })?;
    }
    Ok(w.finish().map_err(fail)?.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_names() {
        let z = write_zip(&[("a/b.txt", b"hello"), ("__MACOSX/._b.txt", b"junk")]).unwrap();
        let entries = read_zip(&z, &ZipLimits::default()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "a/b.txt");
        assert_eq!(entries[0].bytes, b"hello");
    }

    #[test]
    fn traversal_refused() {
        for bad in [
            "../evil.shp",
            "/etc/passwd",
            "a/../../x",
            "C:/x.shp",
            "..\\x.dbf",
        ] {
            let z = write_zip(&[(bad, b"x")]).unwrap();
            assert!(
                matches!(
                    read_zip(&z, &ZipLimits::default()),
                    Err(Error::ZipUnsafeEntry { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bomb_caps() {
        let big = vec![0u8; 4 << 20];
        let z = write_zip(&[("zeros.shp", &big)]).unwrap();
        assert!(matches!(
            read_zip(&z, &ZipLimits::default()),
            Err(Error::ZipBomb { .. })
        ));
        let small = ZipLimits {
            max_total_bytes: 1000,
            ..ZipLimits::default()
        };
        let z = write_zip(&[("a.shp", &[1u8; 600]), ("b.shp", &[2u8; 600])]).unwrap();
        assert!(matches!(read_zip(&z, &small), Err(Error::ZipBomb { .. })));
        let few = ZipLimits {
            max_entries: 1,
            ..ZipLimits::default()
        };
        assert!(matches!(read_zip(&z, &few), Err(Error::ZipBomb { .. })));
    }

    #[test]
    fn junk_is_bad_zip() {
        assert!(matches!(
            read_zip(b"not a zip at all", &ZipLimits::default()),
            Err(Error::BadZip { .. })
        ));
    }
}
