use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the session layer. Variants name what failed; the app maps
/// them to HTTP (see each variant's note).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not 32 lowercase hex characters (HTTP 400).
    #[error("malformed session id: expected 32 lowercase hex characters")]
    MalformedSessionId,

    /// Well-formed, but this server never minted it (HTTP 404).
    #[error("unknown session {0}")]
    SessionNotFound(String),

    /// A user-supplied relative path under `visualizations/` or `exports/` was refused
    /// (HTTP 400, or 404 when answering a download).
    #[error("refused path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },

    /// The session has no uploaded data (HTTP 409: upload a CSV first).
    #[error("session {0} has no uploaded data; upload a CSV (or XLSX) first")]
    NoData(String),

    /// The current upload has not been analysed (HTTP 409: run the analysis first).
    #[error("session {0} has no completed analysis for the current upload; run the analysis first")]
    NoAnalysis(String),

    /// A newer upload (or a clear) replaced the data this work was based on; nothing was stored
    /// (HTTP 409: the data changed, run again).
    #[error(
        "the session's data changed while this ran (started on generation {started}, now {current}); nothing was stored"
    )]
    Superseded { started: u64, current: u64 },

    /// An ITN result was offered for an analysis that is no longer the current one (HTTP 409).
    #[error(
        "analysis {offered} is not the current analysis (current: {current:?}); nothing was stored"
    )]
    StaleAnalysis {
        offered: String,
        current: Option<String>,
    },

    /// The requested file does not exist in the current state of the session (HTTP 404).
    #[error("{0} does not exist in this session")]
    ArtifactNotFound(String),

    /// The computation committed none of the four files that make an analysis count
    /// (programming error in the pipeline, HTTP 500).
    #[error(
        "the analysis wrote none of unified_dataset.geoparquet, unified_dataset.csv, analysis_vulnerability_rankings.csv, analysis_vulnerability_rankings_pca.csv"
    )]
    IncompleteAnalysis,

    /// A caller used an artifact where another kind is required, e.g. an analysis output in an
    /// upload (programming error, HTTP 500).
    #[error("{artifact} cannot be written {context}")]
    WrongArtifactKind {
        artifact: String,
        context: &'static str,
    },

    /// Another worker holds the session's analysis lock and the caller's wait limit passed
    /// (HTTP 503, retry later).
    #[error("session {0} is busy with another analysis; try again shortly")]
    Busy(String),

    /// A filesystem operation failed (HTTP 500).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `manifest.json` exists but cannot be parsed or serialised (HTTP 500).
    #[error("session manifest {path}: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The session folder holds something this server never writes: a symbolic link on the way
    /// to a file, a manifest naming a data directory or file outside the crate's formats. The
    /// read is refused (HTTP 500; the details go to the log only).
    #[error("refused to read {path}: {reason}")]
    Tampered { path: PathBuf, reason: String },

    /// A chunk or finalize request of a chunked upload is malformed or contradicts what the
    /// upload announced (HTTP 400).
    #[error("{0}")]
    BadChunk(String),

    /// A chunk or a chunked upload is over its size limit (HTTP 413).
    #[error("{0}")]
    TooLarge(String),

    /// A finalize found chunks missing (HTTP 409; the message names them).
    #[error("{0}")]
    IncompleteUpload(String),

    /// The OS random source failed while minting an id (HTTP 500).
    /// The configured session store cannot do this (the message says what to do instead).
    #[error("{0}")]
    Unsupported(String),
    #[error("the OS random number source failed: {0}")]
    Entropy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// True for errors caused by the request (bad id, bad path, missing precondition), false for
    /// failures of the server itself.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Io { .. }
                | Error::Manifest { .. }
                | Error::Tampered { .. }
                | Error::Entropy(_)
                | Error::WrongArtifactKind { .. }
                | Error::IncompleteAnalysis
        )
    }
}
