//! The integration tests that start the real `prefork` binary (or run its CLI), in ONE test
//! binary: linking each test file as its own binary cost a link of the whole package per file.
//! Tests that send real signals live in `tests/signals` (architecture.md: their own binary).
//!
//! Every module is one former `tests/<name>.rs`; test names are `<module>::<test>`, e.g.
//! `cargo test --features test-hooks --test it workflow_seed::`. Shared code is in
//! `tests/support/` (see its rules on process-wide state). To add tests: a new file
//! `tests/it/<name>.rs` (no `mod support;` in it; `use crate::support::...`) and a `mod <name>;`
//! line below. See tests/README.md.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod analyze_cli;
mod browser_e2e;
mod chat_conversation;
mod chat_lga;
mod chat_openai;
mod chat_stream;
mod csv_injection;
mod golden_outputs;
mod hostile_input;
mod object_store_moto;
mod ops_http;
mod react_client;
mod s3_workflow;
mod server_lifecycle;
mod session_lifecycle;
mod shared_instance_dir;
mod shared_process_rules;
mod tpr_cli;
mod tpr_http;
mod workflow_bad_input;
mod workflow_concurrency;
mod workflow_faults;
mod workflow_legacy;
mod workflow_seed;
