//! Issue 18 against the real server: the hostile inputs, sent to one worker that runs under a
//! 4 GiB address-space cap (`ulimit -v`, RLIMIT_AS), must each get a clear answer at a few
//! seconds of CPU per MB at most, and the worker must still be the same process afterwards.
//! Unfinished bodies spool to disk instead of memory; work whose client has gone stops.
#![cfg(feature = "test-hooks")]

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    self, Answer, Body, Connection, Part, Reply, ServerBuilder, Session, Timeouts, poll_until,
};
use mrpt_formats::hostile;

const MIB: usize = 1 << 20;

/// A shell wrapper that caps the address space (and so every worker's) at 4 GiB, then execs
/// the server.
fn capped_program(dir: &std::path::Path) -> std::path::PathBuf {
    let wrapper = dir.join("prefork-capped");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -v 4194304\nexec '{}' \"$@\"\n",
            support::BIN
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    wrapper
}

/// CPU seconds (user + system, all threads) a process has used so far.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // CLK_TCK is 100 on Linux
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn upload(s: &Session, csv: (&str, &[u8]), shapefile: Option<(&str, &[u8])>) -> Reply {
    s.upload(csv, shapefile)
}

#[test]
fn no_hostile_input_kills_a_worker_under_a_4gib_address_space_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new()
        .program(&capped_program(dir.path()))
        .args(&["-w", "1", "--timeout", "120"])
        .start();
    let worker = poll_until(Duration::from_secs(30), || server.get("/ping").ok())
        .unwrap()
        .worker();
    let s = Session::create(server.addr());
    let kano_csv = support::fixture("kano/kano_wards.csv");
    let kano_zip = support::fixture("kano/kano_wards_shapefile.zip");
    let kano_rows = hostile::csv_rows(&kano_csv);
    let far = hostile::xlsx_far_cell(&kano_rows).unwrap();
    let records = |fields: usize| MIB - (32 + 32 * fields + 1) - 1;
    let dbf = hostile::dbf_zero_length_fields(2000, records(2000)).unwrap();
    let padded = hostile::zip_many_large_entries(997, MIB).unwrap();
    let wide = hostile::wide_csv(100_000);
    let wider = hostile::wide_csv(1_000_000);
    let long_name = "v".repeat(300_000);
    let kano_xls = support::fixture("kano/kano_wards.xls");
    let xls_far = hostile::xls_far_cell(&kano_rows);
    let xls_dims = hostile::xls_huge_dimensions(&kano_rows);
    let xls_sst = hostile::xls_huge_sst(&kano_rows);
    let xls_labels = hostile::xls_label_capacity(100_000);
    let xls_cycle = hostile::xls_cyclic_chain(&kano_rows);
    let xls_cut = kano_xls[..kano_xls.len() / 2].to_vec();

    type Send<'a> = Box<dyn Fn() -> Reply + 'a>;
    let cases: Vec<(&str, usize, u16, &str, Send<'_>)> = vec![
        (
            "xlsx: Kano + a cell at XFD1048576",
            far.len(),
            422,
            "16384 columns; at most 1000",
            Box::new(|| upload(&s, ("kano.xlsx", &far), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: Kano + a number at row 65536, column 65536",
            xls_far.len(),
            422,
            "65536 columns; at most 1000",
            Box::new(|| upload(&s, ("kano.xls", &xls_far), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: DIMENSIONS of 4 billion rows",
            xls_dims.len(),
            422,
            "4294967295 rows by 256 columns",
            Box::new(|| upload(&s, ("kano.xls", &xls_dims), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: a shared string table of 4 billion strings",
            xls_sst.len(),
            422,
            "shared string table of 4294967295 strings",
            Box::new(|| upload(&s, ("kano.xls", &xls_sst), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: 100k labels claiming 64 KiB each",
            xls_labels.len(),
            422,
            "text limit",
            Box::new(|| upload(&s, ("labels.xls", &xls_labels), None)),
        ),
        (
            "population xls: a number at row 65536, column 65536",
            xls_far.len(),
            422,
            "65536 columns; at most 1000",
            Box::new(|| s.upload_population("pop.xls", &xls_far)),
        ),
        (
            "xls: a sector chain that loops",
            xls_cycle.len(),
            400,
            "a sector chain loops",
            Box::new(|| upload(&s, ("kano.xls", &xls_cycle), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: truncated",
            xls_cut.len(),
            400,
            "truncated",
            Box::new(|| upload(&s, ("kano.xls", &xls_cut), Some(("k.zip", &kano_zip)))),
        ),
        (
            "xls: the Kano table from xlwt",
            kano_xls.len(),
            200,
            "Loaded",
            Box::new(|| upload(&s, ("kano.xls", &kano_xls), Some(("k.zip", &kano_zip)))),
        ),
        (
            "shapefile: .dbf of 2000 zero-length fields",
            dbf.len(),
            400,
            "more than 255 fields",
            Box::new(|| upload(&s, ("kano.csv", &kano_csv), Some(("bomb.zip", &dbf)))),
        ),
        (
            "shapefile zip + 997 entries of 1 MiB",
            padded.len(),
            200,
            "Loaded",
            Box::new(|| upload(&s, ("kano.csv", &kano_csv), Some(("padded.zip", &padded)))),
        ),
        (
            "csv: 100k columns",
            wide.len(),
            422,
            "100000 columns; at most 1000",
            Box::new(|| upload(&s, ("wide.csv", &wide), None)),
        ),
        (
            "csv: 1M columns",
            wider.len(),
            422,
            "1000000 columns; at most 1000",
            Box::new(|| upload(&s, ("wider.csv", &wider), None)),
        ),
        (
            "population: 1M columns",
            wider.len(),
            422,
            "at most 1000",
            Box::new(|| s.upload_population("pop.csv", &wider)),
        ),
        (
            "run_analysis: a 300 kB variable name",
            long_name.len(),
            400,
            "at most 256 bytes",
            Box::new(|| s.run_analysis(&json!({"selected_variables": [&long_name, "tpr"]}))),
        ),
        (
            "run_analysis: a 2 MiB JSON body",
            2 * MIB,
            413,
            "1 MiB",
            Box::new(|| {
                let body = vec![b' '; 2 * MIB];
                s.send(
                    "POST",
                    "/run_analysis",
                    Body::Sized("application/json", &body),
                )
            }),
        ),
        (
            "itn: a household of a billion",
            64,
            400,
            "avg_household_size must be between 1 and 50",
            Box::new(|| s.plan_itn(&json!({"total_nets": 1000, "avg_household_size": 1e9}))),
        ),
        (
            "itn: a negative urban threshold",
            64,
            400,
            "urban_threshold must be between 0 and 100",
            Box::new(|| s.plan_itn(&json!({"total_nets": 1000, "urban_threshold": -5}))),
        ),
        (
            "itn: a trillion nets",
            64,
            400,
            "total_nets must be a whole number of nets from 1 to 1000000000",
            Box::new(|| s.plan_itn(&json!({"total_nets": 1_000_000_000_000i64}))),
        ),
    ];
    let mut report = Vec::new();
    for (what, bytes, status, needle, send) in &cases {
        let cpu0 = cpu_seconds(worker);
        let t0 = Instant::now();
        let r = send();
        let cpu = cpu_seconds(worker) - cpu0;
        let mb = (*bytes as f64 / MIB as f64).max(1.0);
        report.push(format!(
            "{what}: {} bytes -> {} in {:.2} s wall, {cpu:.2} s CPU ({:.2} s/MB)",
            bytes,
            r.status,
            t0.elapsed().as_secs_f64(),
            cpu / mb
        ));
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        assert!(r.text().contains(needle), "{what}: {}", r.text());
        assert_eq!(r.worker(), worker, "{what}: another worker answered");
        // Debug build on a shared 2-core box: still far below the minutes these cost before.
        assert!(cpu / mb < 5.0, "{what}: {cpu} s of CPU for {mb} MB");
    }
    println!("{}", report.join("\n"));
    assert_eq!(server.get("/ping").unwrap().worker(), worker);
    let log = server.stderr();
    assert_eq!(
        server.count_lines("Booting worker"),
        1,
        "a worker was replaced:\n{log}"
    );
    for bad in ["died", "aborted", "memory allocation"] {
        assert!(!log.contains(bad), "{bad}:\n{log}");
    }
}

/// A client that sends the head and part of a large upload, then stalls.
fn stall_upload(
    addr: std::net::SocketAddr,
    session: &str,
    length: usize,
    sent: usize,
) -> Connection {
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        io: Duration::from_secs(60),
    };
    let mut c = Connection::open(addr, timeouts).unwrap();
    let head = format!(
        "POST /upload_both_files HTTP/1.1\r\nHost: t\r\nX-Session-ID: {session}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {length}\r\n\r\n"
    );
    c.write_raw(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 256 << 10];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        c.write_raw(&chunk[..n]).unwrap();
        left -= n;
    }
    c
}

#[test]
fn unfinished_bodies_spool_to_disk_instead_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spool.toml");
    std::fs::write(
        &config,
        "[app]\nbody_memory_bytes = 262144\nmax_body_memory = 4194304\n",
    )
    .unwrap();
    let server = ServerBuilder::new()
        .args(&["-w", "1", "-c", config.to_str().unwrap()])
        .start();
    let worker = poll_until(Duration::from_secs(30), || server.get("/ping").ok())
        .unwrap()
        .worker();
    let s = Session::create(server.addr());
    let before = rss_kib(worker);
    // 40 uploads announce 31 MiB each and send 4 MiB of it: 160 MiB held in memory before.
    let stalled: Vec<Connection> = (0..40)
        .map(|_| stall_upload(server.addr(), &s.id, 31 * MIB, 4 * MIB))
        .collect();
    // Wait until the worker has taken in what was sent (its CPU goes quiet), then measure.
    let mut last = cpu_seconds(worker);
    poll_until(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(500));
        let now = cpu_seconds(worker);
        let quiet = now - last < 0.05;
        last = now;
        quiet.then_some(())
    });
    let grown = rss_kib(worker).saturating_sub(before);
    println!(
        "40 stalled uploads of 4 MiB each: worker RSS grew by {} MiB",
        grown / 1024
    );
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(server.get("/ping").unwrap().status, 200);
    // Nothing of the spooled bodies is visible in the session folder.
    let staging = server
        .dir
        .path()
        .join("instance/uploads")
        .join(&s.id)
        .join(".staging");
    drop(stalled);
    let leftovers: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A complete upload after them still works (read back from its spool file).
    s.upload_kano().expect(200, "upload after the stalled ones");
}

#[test]
fn work_whose_client_has_gone_is_cancelled() {
    let server = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || server.get("/ping").ok()).unwrap();
    let s = Session::create(server.addr());
    // A table near the cell cap: seconds of parsing, typing and summarising.
    let columns = 100;
    let rows = 45_000;
    let mut csv = b"WardName".to_vec();
    for c in 1..columns {
        csv.extend_from_slice(format!(",v{c}").as_bytes());
    }
    for r in 0..rows {
        csv.extend_from_slice(format!("\nward {r}").as_bytes());
        for c in 1..columns {
            csv.extend_from_slice(format!(",{}.{}", r % 97, c).as_bytes());
        }
    }
    let (content_type, body) = support::multipart(&[Part::file("csv_file", "big.csv", &csv)]);
    let headers = [("X-Session-ID", s.id.as_str())];
    let request = support::Request::new("POST", "/upload_both_files")
        .headers(&headers)
        .body(Body::Sized(&content_type, &body));
    let mut c = Connection::open(
        server.addr(),
        Timeouts {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(1),
        },
    )
    .unwrap();
    c.write_raw(&request.to_bytes("t", false)).unwrap();
    // Give the worker a moment to read the body and start, then hang up.
    std::thread::sleep(Duration::from_millis(1500));
    drop(c);
    let line = server.wait_for_line(Duration::from_secs(120), |l| {
        l.contains("work of an abandoned request stopped")
    });
    assert!(line.is_some(), "{}", server.stderr());
    println!("{}", line.unwrap_or_default());
    // The session got nothing from the abandoned upload.
    let (_, status) = s.status();
    assert_eq!(status["data_loaded"], json!(false));
}
