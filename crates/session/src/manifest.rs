//! `manifest.json`: the one document that says which files are the session's current state.
//! Everything else in the folder is either immutable data named by it, a mirror for older
//! tools, or debris that counts for nothing.
//!
//! The file starts with a one-line **head**, `{"head":{...},`, holding exactly what the status
//! route answers, derived from the rest of the document every time it is written. Head and
//! body are one file replaced by one rename, so they cannot disagree, and a status read parses
//! the first few hundred bytes with a typed struct instead of the whole document.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::artifact::{ANALYSIS_EVIDENCE, Artifact, ArtifactKind, FIXED};
use crate::durable::AtomicFile;
use crate::error::{Error, Result};
use crate::store::SessionDir;

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const FORMAT: u32 = 1;
/// How the head line starts; a manifest without it (written before heads existed) is read whole.
const HEAD_PREFIX: &[u8] = b"{\"head\":";
/// A status read reads this much of the manifest; the head is ~300 bytes.
pub(crate) const HEAD_READ: usize = 1024;

/// The status route's fields, first in `manifest.json` (the `"head"` member). Derived from the
/// body on every write, never edited on its own. `csv_loaded` is `data_loaded` and
/// `analysis_complete` is `analysis_id.is_some()`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusHead {
    /// Upload generation: +1 per upload and per clear.
    pub generation: u64,
    /// `raw_data.csv` or `raw_data.xlsx` is current.
    pub data_loaded: bool,
    /// `raw_shapefile.zip` is current.
    pub shapefile_loaded: bool,
    /// `population.csv` is current for this generation.
    pub population_loaded: bool,
    /// `Some` exactly when the current upload has a committed analysis (`analysis_complete`).
    pub analysis_id: Option<String>,
    /// An ITN plan exists for the current analysis.
    pub itn_complete: bool,
    /// Analyses started over the session's life.
    pub analyses_started: u64,
    /// Analyses committed over the session's life (never above `analyses_started`).
    pub analyses_committed: u64,
    /// A reader must take the slow path (it finishes the cleanup of an upload or clear).
    pub cleanup_pending: bool,
    /// Derived from a folder of the Python system (no manifest); never part of a written head.
    #[serde(skip)]
    pub legacy: bool,
}

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
    /// The TPR workflow's facility export and its latest outputs (tpr.md §8). Independent of
    /// the ward-table generations: a ward upload keeps it, a clear removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpr: Option<TprRecord>,
    /// TPR uploads over the session's life (numbers [`TprRecord::seq`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tpr_uploads: u64,
    /// Set by the commit of an upload or a clear until the previous generation's derived files
    /// (root mirrors, maps, packages) are gone: a worker that dies in between leaves it set, and
    /// the next reader finishes the job before anything of the old data can be served.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup_pending: bool,
    /// Loose files (`visualizations/...`, `exports/...`) that the last commit made obsolete: an
    /// earlier ITN plan's map and table, the maps and packages of a superseded analysis. Removed
    /// right after that commit, and again (idempotently) before the next one, so a crash in
    /// between leaves nothing behind for long.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
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
    /// File names of the upload (`raw_data.csv`, `raw_shapefile.zip`).
    pub files: Vec<String>,
    /// `csv_shapefile` or `csv_only`.
    pub upload_type: String,
    /// Unix ms of the commit.
    pub committed_at_ms: u64,
    /// Whatever the app recorded (original file names, row/column counts, ward matching ...).
    pub info: Value,
    /// The chunked upload this came from (`chunks.rs`): a finalize repeated after a crash
    /// between this commit and remembering its answer does not commit twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunked_upload: Option<String>,
}

/// The committed `population.csv`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PopulationRecord {
    /// Directory under `.data/`; `None` for a file in the folder root.
    pub dir: Option<String>,
    /// The upload generation it was committed into (stale once that changes).
    pub generation: u64,
    /// Unix ms of the commit.
    pub committed_at_ms: u64,
    /// What the app recorded (row counts, matching).
    pub info: Value,
}

/// The committed analysis. Only current when `generation` equals the manifest's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AnalysisRecord {
    /// 32 hex characters, new per committed analysis.
    pub analysis_id: String,
    /// The upload generation it was computed from.
    pub generation: u64,
    /// Value of `analyses_committed` this analysis produced (0 for a Python-system folder).
    pub seq: u64,
    /// Directory under `.data/`; `None` for outputs in the folder root (Python system).
    pub dir: Option<String>,
    /// File names of its outputs.
    pub files: Vec<String>,
    /// The variables asked for (`None`: automatic selection).
    pub variables_requested: Option<Vec<String>>,
    /// The variables the ranking used.
    pub variables_used: Vec<String>,
    /// Options that change the result (method, ...), compared for reuse.
    pub options: Value,
    /// The route's answer material (top wards, PCA figures, warnings) so a reused answer needs
    /// no recomputation.
    pub summary: Value,
    /// Unix ms when computing began.
    pub started_at_ms: u64,
    /// Unix ms of the commit.
    pub finished_at_ms: u64,
    /// Derived from a folder of the Python system.
    pub legacy: bool,
}

/// The committed ITN plan. Only current while its analysis is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItnRecord {
    /// The analysis the plan was made from.
    pub analysis_id: String,
    /// The upload generation of that analysis.
    pub generation: u64,
    /// Directory under `.data/`; `None` for a file in the folder root.
    pub dir: Option<String>,
    /// Unix ms of the commit.
    pub committed_at_ms: u64,
    /// The plan's loose files (its map, its allocation table), as `visualizations/...` and
    /// `exports/...` names: retired when another plan (or analysis) replaces this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loose: Vec<String>,
}

/// The current TPR upload (tpr.md §8.3 `POST /api/tpr/upload`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TprRecord {
    /// Which TPR upload this is; outputs computed from an older one never commit.
    pub seq: u64,
    /// Directory under `.data/` holding the export.
    pub dir: Option<String>,
    /// `tpr_upload.csv`, `.xlsx` or `.xls`.
    pub file: String,
    /// Inputs stored with it in the same directory (`tpr_shapefile.zip`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// Unix ms of the commit.
    pub committed_at_ms: u64,
    /// Whatever the app recorded (original name, mapping override, summaries ...).
    pub info: Value,
    /// The latest computation from this upload; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<TprOutputsRecord>,
}

/// The latest TPR computation of the current TPR upload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TprOutputsRecord {
    /// Directory under `.data/` holding the outputs.
    pub dir: Option<String>,
    /// File names of the outputs (tpr.md §8.1).
    pub files: Vec<String>,
    /// Unix ms of the commit.
    pub committed_at_ms: u64,
    /// The computation's answer material (selection, figures), so answers need no recomputation.
    pub summary: Value,
    /// Its maps (`visualizations/tpr_*.html`), retired with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loose: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// implies. The file is opened without following links (see `beneath.rs`) and checked
    /// ([`Manifest::validate`]) before anything in it is used.
    pub(crate) fn load(dir: &SessionDir) -> Result<Manifest> {
        const STALE_RETRIES: u32 = 8;
        let path = dir.join(MANIFEST);
        // ESTALE (NFS: another client replaced the manifest between our lookup and our read) is
        // retried: the next open resolves the name again and finds the new file.
        let mut tries = 0;
        let bytes = loop {
            tries += 1;
            let mut file = match dir.open_manifest() {
                Ok(file) => file,
                Err(e) if crate::durable::stale(&e) && tries < STALE_RETRIES => continue,
                Err(e) if crate::durable::stale(&e) => return Err(Error::io("open", &path)(e)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return derive_legacy(dir),
                Err(e) => return Err(dir.open_error_of(MANIFEST, e)),
            };
            let mut bytes = Vec::new();
            match file.read_to_end(&mut bytes) {
                Ok(_) => break bytes,
                Err(e) if crate::durable::stale(&e) && tries < STALE_RETRIES => continue,
                Err(e) => return Err(Error::io("read", &path)(e)),
            }
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| Error::Manifest {
            path: path.clone(),
            source,
        })?;
        m.validate()
            .map_err(|reason| Error::Tampered { path, reason })?;
        Ok(m)
    }

    /// Writes head line + body in one atomic replacement.
    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let bytes = self.to_bytes().map_err(|source| Error::Manifest {
            path: path.clone(),
            source,
        })?;
        let mut file = AtomicFile::create(&path)?.with_fault_point("manifest-before-rename");
        file.write_all(&bytes).map_err(Error::io("write", &path))?;
        file.commit()
    }

    /// `{"head":{...},` + the pretty-printed body without its opening brace: one JSON object
    /// whose first member is the head, on the first line.
    pub(crate) fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let body = serde_json::to_vec_pretty(self)?;
        let head = serde_json::to_vec(&StatusHead::of(self))?;
        let mut out = Vec::with_capacity(HEAD_PREFIX.len() + head.len() + body.len() + 1);
        out.extend_from_slice(HEAD_PREFIX);
        out.extend_from_slice(&head);
        out.push(b',');
        // `body` is `{\n  "format": ...}`; an empty object cannot happen (format is always there).
        out.extend_from_slice(body.get(1..).unwrap_or_default());
        Ok(out)
    }

    /// Refuses a manifest that names data outside the crate's own formats: data directory
    /// tokens must be exactly `<kind>-<32 hex>` of the record's kind, file lists only the fixed
    /// names of that record's kind, ids the shapes this crate mints, loose names safe relative
    /// paths. Whoever can write the session folder cannot steer reads anywhere else this way.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let token = |dir: &Option<String>, kind: char, what: &str| match dir {
            Some(t) if !valid_token(t, kind) => Err(format!(
                "{what} data directory {:?} is not {kind}-<32 hex digits>",
                clip(t)
            )),
            _ => Ok(()),
        };
        let files = |files: &[String], kind: ArtifactKind, what: &str| match files
            .iter()
            .find(|f| Artifact::from_file_name(f).is_none_or(|a| a.kind() != kind))
        {
            Some(f) => Err(format!("{what} lists an unknown file {:?}", clip(f))),
            None => Ok(()),
        };
        if let Some(up) = &self.upload {
            token(&up.dir, 'u', "the upload's")?;
            files(&up.files, ArtifactKind::Input, "the upload")?;
        }
        if let Some(p) = &self.population {
            token(&p.dir, 'p', "the population's")?;
        }
        if let Some(a) = &self.analysis {
            token(&a.dir, 'a', "the analysis'")?;
            files(&a.files, ArtifactKind::AnalysisOutput, "the analysis")?;
            if !valid_analysis_id(&a.analysis_id) {
                return Err(format!(
                    "analysis id {:?} is malformed",
                    clip(&a.analysis_id)
                ));
            }
        }
        if let Some(i) = &self.itn {
            token(&i.dir, 'i', "the ITN plan's")?;
            if !valid_analysis_id(&i.analysis_id) {
                return Err(format!(
                    "ITN analysis id {:?} is malformed",
                    clip(&i.analysis_id)
                ));
            }
            if let Some(bad) = i.loose.iter().find(|n| loose_artifact(n).is_none()) {
                return Err(format!("the ITN plan names a bad file {:?}", clip(bad)));
            }
        }
        if let Some(t) = &self.tpr {
            token(&t.dir, 't', "the TPR upload's")?;
            files(
                std::slice::from_ref(&t.file),
                ArtifactKind::TprInput,
                "the TPR upload",
            )?;
            files(&t.extra, ArtifactKind::TprInput, "the TPR upload")?;
            if let Some(o) = &t.outputs {
                token(&o.dir, 'r', "the TPR outputs'")?;
                files(&o.files, ArtifactKind::TprOutput, "the TPR outputs")?;
                if let Some(bad) = o.loose.iter().find(|n| loose_artifact(n).is_none()) {
                    return Err(format!("the TPR outputs name a bad file {:?}", clip(bad)));
                }
            }
        }
        if let Some(bad) = self.retired.iter().find(|n| loose_artifact(n).is_none()) {
            return Err(format!("retired file {:?} is not a safe name", clip(bad)));
        }
        Ok(())
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
            ArtifactKind::TprInput => {
                let t = self.tpr.as_ref()?;
                (t.file == name || t.extra.iter().any(|f| f == name)).then_some(t.dir.as_deref())
            }
            ArtifactKind::TprOutput => {
                let o = self.tpr.as_ref()?.outputs.as_ref()?;
                o.files
                    .iter()
                    .any(|f| f == name)
                    .then_some(o.dir.as_deref())
            }
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
        if let Some(t) = &self.tpr {
            dirs.extend(t.dir.as_deref());
            dirs.extend(t.outputs.as_ref().and_then(|o| o.dir.as_deref()));
        }
        dirs
    }
}

impl StatusHead {
    /// The head a manifest implies: the same rules as `Store::status`.
    pub(crate) fn of(m: &Manifest) -> StatusHead {
        let has = |a: &Artifact| m.locate(a).is_some();
        StatusHead {
            generation: m.generation,
            data_loaded: has(&Artifact::RawCsv) || has(&Artifact::RawXlsx),
            shapefile_loaded: has(&Artifact::RawShapefile),
            population_loaded: has(&Artifact::Population),
            analysis_id: m.current_analysis().map(|a| a.analysis_id.clone()),
            itn_complete: m.current_itn().is_some(),
            analyses_started: m.analyses_started,
            analyses_committed: m.analyses_committed,
            cleanup_pending: m.cleanup_pending,
            legacy: m.derived_from_legacy,
        }
    }

    /// The head of a manifest from its first bytes, or `None` when they hold no usable head (a
    /// manifest written before heads existed, a head cut off by the end of `bytes`, anything
    /// malformed): the caller then reads and checks the whole document. Only the head is
    /// parsed; what follows it is not looked at.
    pub(crate) fn parse_prefix(bytes: &[u8]) -> Option<StatusHead> {
        let rest = bytes.strip_prefix(HEAD_PREFIX)?;
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<StatusHead>();
        let head = stream.next()?.ok()?;
        // The head object must be followed by the comma that continues the document.
        let complete = rest.get(stream.byte_offset()) == Some(&b',');
        let id_ok = head.analysis_id.as_deref().is_none_or(valid_analysis_id);
        (complete && id_ok).then_some(head)
    }
}

/// `<kind>-` and 32 lowercase hex digits: the only data directory names this crate makes.
pub(crate) fn valid_token(token: &str, kind: char) -> bool {
    let mut chars = token.chars();
    chars.next() == Some(kind) && chars.next() == Some('-') && is_hex(chars.as_str(), 32)
}

/// 32 lowercase hex digits (minted), or `legacy-` and 16 (a Python-system folder).
pub(crate) fn valid_analysis_id(id: &str) -> bool {
    is_hex(id, 32) || id.strip_prefix("legacy-").is_some_and(|h| is_hex(h, 16))
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A loose file name as recorded in the manifest (`visualizations/...`, `exports/...`).
pub(crate) fn loose_artifact(name: &str) -> Option<Artifact> {
    if let Some(rel) = name.strip_prefix("visualizations/") {
        Artifact::visualization(rel).ok()
    } else if let Some(rel) = name.strip_prefix("exports/") {
        Artifact::export(rel).ok()
    } else {
        None
    }
}

/// At most 64 characters of a refused value, for an error message.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

/// State of a folder without a manifest: the Python system's rules (chatmrpt-server.md §2.5).
fn derive_legacy(dir: &SessionDir) -> Result<Manifest> {
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
            chunked_upload: None,
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
        let variables_used = legacy_variables(dir);
        if present(&Artifact::ItnResults)?.is_some() {
            manifest.itn = Some(ItnRecord {
                analysis_id: analysis_id.clone(),
                generation: 0,
                dir: None,
                committed_at_ms: 0,
                loose: Vec::new(),
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

fn legacy_variables(dir: &SessionDir) -> Vec<String> {
    let mut bytes = Vec::new();
    let read = dir
        .open_file(Artifact::VariableMetadata.fixed_name().unwrap_or_default())
        .and_then(|mut f| {
            f.read_to_end(&mut bytes)
                .map_err(Error::io("read", dir.as_ref()))
        });
    if read.is_err() {
        return Vec::new();
    }
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
