//! mrpt-session: the only code that touches `instance/`.
//!
//! Owns: session ids, the folder layout of `instance/uploads/<id>/`, state derived from disk on
//! every call, atomic writes, cross-process locks, and the commit protocols that keep uploads,
//! analyses and ITN results consistent across worker processes that share nothing but the
//! filesystem. There is no in-process cache of session state of any kind: every public call
//! reads the disk.
//!
//! Must not depend on any other internal crate; it knows file names and protocols, not what the
//! files contain.

// Tests may unwrap (helper rules); library code may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod analysis;
mod artifact;
mod backend;
mod beneath;
mod chunks;
mod conversation;
mod durable;
mod error;
pub mod fault;
mod id;
mod manifest;
pub mod object;
mod spool;
mod store;
mod sweep;

#[cfg(test)]
mod tests;

pub use analysis::{
    AnalysisInputs, AnalysisOutcome, AnalysisRequest, AnalysisResult, AnalysisStaging,
    AnalysisView, RunError,
};
pub use artifact::{
    ANALYSIS_EVIDENCE, Artifact, ArtifactKind, MAX_STORED_FILE_NAME, RelPath, TPR_OUTPUTS,
    UPLOADED_TABLE, UploadedTable, stored_file_name,
};
pub use backend::{Store, Upload};
pub use chunks::{
    ABANDONED_UPLOAD, AssembledPart, Chunk, ChunkLimits, ChunkStatus, Finalizing, MAX_UPLOAD_ID,
    PartStatus, check_upload_id,
};
pub use conversation::{ConversationMessage, ConversationSummary, MAX_CONVERSATION_BYTES};
pub use durable::AtomicFile;
pub use error::{Error, Result};
pub use id::SessionId;
pub use manifest::{
    AnalysisRecord, ItnRecord, PopulationRecord, StatusHead, TprOutputsRecord, TprRecord,
    UploadRecord,
};
pub use store::{
    SessionState, Store as LocalStore, Upload as LocalUpload, UploadInfo, create_runtime_dir,
    runtime_dir,
};
pub use sweep::{SweepPolicy, SweepReport};
