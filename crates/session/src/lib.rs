//! mrpt-session: the only code that touches `instance/`.
//!
//! Owns: session ids, the folder layout, state derived from disk, atomic writes, cross-process locks.
//! Must not depend on any other internal crate.
