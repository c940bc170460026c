//! The integration tests that send real signals (to the server, its workers or, through
//! scripts/deploy.sh and the chaos run, to processes they start), in their own test binary
//! (architecture.md "Tests"). Everything else is in `tests/it`.
//!
//! Every module is one former `tests/<name>.rs`; run one with e.g.
//! `cargo test --features test-hooks --test signals server_signals::`. Shared code is in
//! `tests/support/`. To add tests: a new file `tests/signals/<name>.rs` and a `mod <name>;` line
//! below. See tests/README.md.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod load_ci;
mod load_two_instances;
mod load_two_instances_s3;
mod ops_deploy;
mod ops_reload;
mod ops_systemd;
mod ops_upgrade;
mod server_signals;
