//! `manifest.json`: the one document that says which files are the session's current state.
//! Everything else in the folder is either immutable data named by it, a mirror for older
//! tools, or debris that counts for nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::artifact::{ANALYSIS_EVIDENCE, Artifact, ArtifactKind, FIXED};
use crate::durable::write_atomic;
use crate::error::{Error, Result};

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    /// Incremented by every upload and every clear. Work started on an older generation never
    /// commits.
    pub generation: u64,
    /// Analyses that began computing (after the exactly-once checks), over the session's life.
    pub analyses_started: u64,
    /// Analyses that committed, over the session's life.
    pub analyses_committed: u64,
    pub upload: Option<UploadRecord>,
    pub population: Option<PopulationRecord>,
    pub analysis: Option<AnalysisRecord>,
    pub itn: Option<ItnRecord>,
    /// Set by the commit of an upload or a clear until the previous generation's derived files
    /// (root mirrors, maps, packages) are gone: a worker that dies in between leaves it set, and
    /// the next reader finishes the job before anything of the old data can be served.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup_pending: bool,
    /// True when this manifest was derived from a folder of the Python system, not read.
    #[serde(skip)]
    pub derived_from_legacy: bool,
}

/// The committed upload of the current generation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UploadRecord {
    /// Directory under `.data/` holding the files; `None` for files in the folder root (a folder
    /// of the Python system).
    pub dir: Option<String>,
    pub files: Vec<String>,
    pub upload_type: String,
    pub committed_at_ms: u64,
    /// Whatever the app recorded (original file names, row/column counts, ward matching ...).
    pub info: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PopulationRecord {
    pub dir: Option<String>,
    pub generation: u64,
    pub committed_at_ms: u64,
    pub info: Value,
}

/// The committed analysis. Only current when `generation` equals the manifest's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AnalysisRecord {
    pub analysis_id: String,
    pub generation: u64,
    /// Value of `analyses_committed` this analysis produced (0 for a Python-system folder).
    pub seq: u64,
    pub dir: Option<String>,
    pub files: Vec<String>,
    /// The variables asked for (`None`: automatic selection).
    pub variables_requested: Option<Vec<String>>,
    pub variables_used: Vec<String>,
    /// Options that change the result (method, ...), compared for reuse.
    pub options: Value,
    /// The route's answer material (top wards, PCA figures, warnings) so a reused answer needs
    /// no recomputation.
    pub summary: Value,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    pub legacy: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItnRecord {
    pub analysis_id: String,
    pub generation: u64,
    pub dir: Option<String>,
    pub committed_at_ms: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Manifest {
    pub(crate) fn empty() -> Manifest {
        Manifest {
            format: FORMAT,
            ..Manifest::default()
        }
    }

    /// The manifest of `dir`, or, when there is none, the state a folder of the Python system
    /// implies.
    pub(crate) fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Manifest { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => derive_legacy(dir),
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }

    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Manifest {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }

    /// The analysis record if it belongs to the current generation and holds evidence.
    pub(crate) fn current_analysis(&self) -> Option<&AnalysisRecord> {
        self.analysis.as_ref().filter(|a| {
            a.generation == self.generation
                && ANALYSIS_EVIDENCE
                    .iter()
                    .any(|e| a.files.iter().any(|f| Some(f.as_str()) == e.fixed_name()))
        })
    }

    pub(crate) fn current_itn(&self) -> Option<&ItnRecord> {
        let analysis = self.current_analysis()?;
        self.itn
            .as_ref()
            .filter(|i| i.analysis_id == analysis.analysis_id)
    }

    pub(crate) fn current_population(&self) -> Option<&PopulationRecord> {
        self.population
            .as_ref()
            .filter(|p| p.generation == self.generation)
    }

    /// Where the current version of a fixed artifact lives: `Some(Some(dir))` under `.data/`,
    /// `Some(None)` in the folder root (Python-system files), `None` when it is not current.
    pub(crate) fn locate(&self, artifact: &Artifact) -> Option<Option<&str>> {
        let name = artifact.fixed_name()?;
        match artifact.kind() {
            ArtifactKind::Input => {
                let up = self.upload.as_ref()?;
                up.files
                    .iter()
                    .any(|f| f == name)
                    .then_some(up.dir.as_deref())
            }
            ArtifactKind::Population => self.current_population().map(|p| p.dir.as_deref()),
            ArtifactKind::AnalysisOutput => {
                let a = self.current_analysis()?;
                a.files
                    .iter()
                    .any(|f| f == name)
                    .then_some(a.dir.as_deref())
            }
            ArtifactKind::Itn => self.current_itn().map(|i| i.dir.as_deref()),
            ArtifactKind::Loose | ArtifactKind::Document => None,
        }
    }

    /// The `.data/` directories this manifest refers to.
    pub(crate) fn referenced_dirs(&self) -> Vec<&str> {
        let mut dirs = Vec::new();
        dirs.extend(self.upload.as_ref().and_then(|u| u.dir.as_deref()));
        dirs.extend(self.current_population().and_then(|p| p.dir.as_deref()));
        dirs.extend(self.current_analysis().and_then(|a| a.dir.as_deref()));
        dirs.extend(self.current_itn().and_then(|i| i.dir.as_deref()));
        dirs
    }
}

/// State of a folder without a manifest: the Python system's rules (chatmrpt-server.md §2.5).
fn derive_legacy(dir: &Path) -> Result<Manifest> {
    let present = |artifact: &Artifact| -> Result<Option<fs::Metadata>> {
        let path = dir.join(artifact.fixed_name().unwrap_or_default());
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() > 0 => Ok(Some(meta)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", path)(e)),
        }
    };
    let mut manifest = Manifest {
        derived_from_legacy: true,
        ..Manifest::empty()
    };

    let mut inputs = Vec::new();
    for artifact in [Artifact::RawCsv, Artifact::RawXlsx, Artifact::RawShapefile] {
        if present(&artifact)?.is_some() {
            inputs.push(artifact.file_name());
        }
    }
    if !inputs.is_empty() {
        let has_shape = inputs.iter().any(|f| f == "raw_shapefile.zip");
        manifest.upload = Some(UploadRecord {
            dir: None,
            upload_type: if has_shape {
                "csv_shapefile"
            } else {
                "csv_only"
            }
            .to_owned(),
            files: inputs,
            committed_at_ms: 0,
            info: serde_json::json!({ "legacy": true }),
        });
    }
    if present(&Artifact::Population)?.is_some() {
        manifest.population = Some(PopulationRecord {
            dir: None,
            generation: 0,
            committed_at_ms: 0,
            info: Value::Null,
        });
    }

    // The id must be stable across workers and calls, so it is derived from what is on disk.
    let mut fingerprint = Fnv64::new();
    let mut outputs = Vec::new();
    let mut evidence = false;
    for artifact in FIXED
        .iter()
        .filter(|a| a.kind() == ArtifactKind::AnalysisOutput)
    {
        if let Some(meta) = present(artifact)? {
            let name = artifact.file_name();
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            fingerprint.feed(name.as_bytes());
            fingerprint.feed(&meta.len().to_le_bytes());
            fingerprint.feed(&mtime_ns.to_le_bytes());
            evidence |= ANALYSIS_EVIDENCE.contains(artifact);
            outputs.push(name);
        }
    }
    if evidence {
        let analysis_id = format!("legacy-{:016x}", fingerprint.finish());
        let variables_used = legacy_variables(&dir.join(Artifact::VariableMetadata.file_name()));
        if present(&Artifact::ItnResults)?.is_some() {
            manifest.itn = Some(ItnRecord {
                analysis_id: analysis_id.clone(),
                generation: 0,
                dir: None,
                committed_at_ms: 0,
            });
        }
        manifest.analysis = Some(AnalysisRecord {
            analysis_id,
            generation: 0,
            seq: 0,
            dir: None,
            files: outputs,
            variables_requested: None,
            variables_used,
            options: Value::Null,
            summary: Value::Null,
            started_at_ms: 0,
            finished_at_ms: 0,
            legacy: true,
        });
    }
    Ok(manifest)
}

fn legacy_variables(path: &PathBuf) -> Vec<String> {
    let Ok(bytes) = fs::read(path) else {
        return Vec::new();
    };
    let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
        return Vec::new();
    };
    doc.get("selected_variables")
        .and_then(Value::as_array)
        .map(|vars| {
            vars.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// FNV-1a: tiny, and unlike std's hasher its output is fixed across Rust releases, which matters
/// for an id that is stored and compared later.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
