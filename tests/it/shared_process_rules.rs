//! The integration tests share two processes (`tests/it`, `tests/signals`) and run on parallel
//! threads, so none may change what every thread of the process sees: the environment, the
//! working directory, the umask or a signal disposition. A test gives such settings to the
//! child it starts instead (`ServerBuilder::env` / `cwd`, `run_to_exit`, `Command::env`).

use std::path::{Path, PathBuf};

/// Calls that change process-wide state (split so that this file does not match itself).
const FORBIDDEN: [(&str, &str); 6] = [
    ("env::set_", "var("),
    ("env::remove_", "var("),
    ("env::set_current_", "dir("),
    ("libc::", "umask("),
    ("sigaction", "("),
    ("signal::", "signal("),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("node_modules") && !path.ends_with("fixtures") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_changes_process_wide_state() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    rust_files(&tests, &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let mut offending = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for (a, b) in FORBIDDEN {
                if line.contains(&format!("{a}{b}")) {
                    offending.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offending.is_empty(),
        "these lines change process-wide state in a shared test binary; pass the setting to the \
         child process instead:\n{}",
        offending.join("\n")
    );
}
