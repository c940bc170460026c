//! What the integration-test binaries share (`tests/it` and `tests/signals` both include this
//! directory with `#[path = "../support/mod.rs"] mod support;`): the server under test
//! (`server`), the HTTP side of the tests over the workspace's one client, `prefork_loadgen::http`
//! (`client`), a paced request loop (`load`), the chat conversation steps (`chat`), the ward-name
//! checks of the workflow tests (`wards`), fixtures and deadline polling.
//!
//! Rules for code that runs in these binaries (many tests share one process, on parallel
//! threads): never change process-wide state (`std::env::set_var`, `remove_var`,
//! `set_current_dir`, the umask, signal dispositions). Give a child process its environment and
//! working directory through `ServerBuilder::env` / `cwd` or `run_to_exit`; `shared_process_rules`
//! in tests/it checks the sources for it.
// Each binary uses part of it.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

pub mod chat;
pub mod client;
pub mod load;
pub mod moto;
pub mod server;
pub mod wards;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use client::*;
pub use load::{Load, LoadStats};
pub use prefork_loadgen::http::{
    Body, Connection, Failure, Part, Reply, Request, Timeouts, multipart,
};
pub use server::*;
pub use wards::*;

pub const POLL: Duration = Duration::from_millis(50);

/// Held by each many-user load test for its whole run, so two of them never share the 2 CI cores
/// (each one's duration bound assumes it has the machine to itself among the load tests).
pub static LOAD_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll_until<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// The repository's test fixtures.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// Names of every entry under `dir`, recursively, relative to it (sorted).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
