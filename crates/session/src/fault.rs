//! Named crash points in the commit protocols. Compiled to nothing unless the crate is built for
//! its own tests or with the `fault-injection` feature; then `MRPT_FAULT=<point>[,<point>...]`
//! aborts the process (no destructors, no unlocks: like SIGKILL) when it reaches a listed point.

/// Every point, so tests can iterate over them.
pub const POINTS: [&str; 14] = [
    "upload-after-first-input",
    "upload-before-commit",
    "upload-after-manifest",
    "analysis-started",
    "analysis-after-first-output",
    "analysis-before-commit",
    "analysis-after-data-rename",
    "analysis-after-manifest",
    "analysis-mid-publish",
    "itn-before-commit",
    "itn-after-manifest",
    // A chunk of a chunked upload is stored; the answer is not sent.
    "chunk-after-write",
    // A finalize committed the upload; its answer is not remembered yet.
    "finalize-after-commit",
    // Any manifest write: the new manifest (head line and body) is complete and fsynced under
    // its temp name, not yet renamed over the old one.
    "manifest-before-rename",
];

#[cfg(any(test, feature = "fault-injection"))]
pub(crate) fn point(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    if let Ok(wanted) = std::env::var("MRPT_FAULT")
        && wanted.split(',').any(|p| p == name)
    {
        std::process::abort();
    }
}

#[cfg(not(any(test, feature = "fault-injection")))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}

/// Points where a test can hold a worker (`MRPT_PAUSE`), to line up a race deterministically.
pub const PAUSE_POINTS: [&str; 1] = [
    // A map of a fresh analysis is written and not yet in place under `visualizations/`.
    "visualization-before-place",
];

/// `MRPT_PAUSE=<point>=<path>`: the first time this process reaches `<point>`, it creates
/// `<path>.reached` and waits until `<path>` exists (at most two minutes), then goes on.
#[cfg(any(test, feature = "fault-injection"))]
pub(crate) fn pause(name: &str) {
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    debug_assert!(PAUSE_POINTS.contains(&name), "unknown pause point {name}");
    let Ok(wanted) = std::env::var("MRPT_PAUSE") else {
        return;
    };
    let Some(gate) = wanted
        .split_once('=')
        .filter(|(point, _)| *point == name)
        .map(|(_, path)| std::path::PathBuf::from(path))
    else {
        return;
    };
    if PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let mut reached = gate.clone().into_os_string();
    reached.push(".reached");
    let _ = std::fs::write(&reached, name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !gate.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(any(test, feature = "fault-injection")))]
#[inline(always)]
pub(crate) fn pause(_name: &str) {}
