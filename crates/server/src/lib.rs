//! prefork-server: the master process and its workers (gunicorn semantics).
//!
//! Owns: binding, forking, supervision, signals, heartbeats, reload, upgrade, the hyper accept loop.
//! Must not depend on any mrpt-* crate: it serves whatever service it is handed.
