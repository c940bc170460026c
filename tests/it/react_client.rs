//! ChatMRPT's React client against the real binary: the exact requests it sends
//! (`../shared/specs/react-client.md`: headers, multipart field names, JSON bodies), written
//! from that contract as fixtures here. A "browser" is a cookie jar plus, per tab, the
//! `sessionStorage` id the client sends as `X-Session-ID` once it has one (axios calls) or as
//! `session_id` in the JSON body (its raw `fetch` calls, which send no `X-Session-ID`).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Answer, Body, Part, Reply, ServerBuilder, fixture, multipart, request};

/// The client's chunk size (1 MiB) and the size above which it switches to chunks (5 MiB).
const CHUNK: usize = 1 << 20;

/// The cookies of one browser profile, shared by its tabs.
#[derive(Clone, Default)]
struct Jar(Arc<Mutex<Vec<(String, String)>>>);

impl Jar {
    fn header(&self) -> Option<String> {
        let cookies = self.0.lock().unwrap();
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn session(&self) -> Option<String> {
        let cookies = self.0.lock().unwrap();
        cookies
            .iter()
            .find(|(k, _)| k == "session_id")
            .map(|(_, v)| v.clone())
    }

    /// Takes the reply's `Set-Cookie` headers (name=value; attributes ignored, Max-Age=0 removes).
    fn take(&self, reply: &Reply) {
        let mut cookies = self.0.lock().unwrap();
        for (name, value) in &reply.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            cookies.retain(|(name, _)| name != k.trim());
            if !value.contains("Max-Age=0") {
                cookies.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
}

/// One tab of the React client.
struct Tab {
    addr: SocketAddr,
    jar: Jar,
    /// `sessionStorage.session_id`, set from upload answers.
    session: Option<String>,
    conversation: String,
}

impl Tab {
    fn new(addr: SocketAddr, jar: &Jar, conversation: &str) -> Tab {
        Tab {
            addr,
            jar: jar.clone(),
            session: None,
            conversation: conversation.to_owned(),
        }
    }

    /// An axios call: cookies, `X-Conversation-ID`, and `X-Session-ID` once stored.
    fn axios(&self, method: &str, path: &str, body: Body<'_>) -> Reply {
        let cookie = self.jar.header();
        let mut headers = vec![("X-Conversation-ID", self.conversation.as_str())];
        if let Some(sid) = &self.session {
            headers.push(("X-Session-ID", sid.as_str()));
        }
        if let Some(c) = &cookie {
            headers.push(("Cookie", c.as_str()));
        }
        let reply = request(self.addr, method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.jar.take(&reply);
        reply
    }

    /// A raw `fetch` call: cookies and `X-Conversation-ID` only.
    fn fetch(&self, method: &str, path: &str, body: Body<'_>) -> Reply {
        let cookie = self.jar.header();
        let mut headers = vec![("X-Conversation-ID", self.conversation.as_str())];
        if let Some(c) = &cookie {
            headers.push(("Cookie", c.as_str()));
        }
        let reply = request(self.addr, method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.jar.take(&reply);
        reply
    }

    fn fetch_json(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.fetch("POST", path, Body::Sized("application/json", &bytes))
    }

    fn axios_json(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.axios("POST", path, Body::Sized("application/json", &bytes))
    }

    /// `POST /upload_both_files` as the client sends it (≤ 5 MiB), storing the answered id.
    fn upload_both(&mut self, csv: (&str, &[u8]), shp: (&str, &[u8])) -> Value {
        let (ct, body) = multipart(&[
            Part::file("csv_file", csv.0, csv.1),
            Part::file("shapefile", shp.0, shp.1),
        ]);
        let r = self
            .axios("POST", "/upload_both_files", Body::Sized(&ct, &body))
            .expect(200, "upload_both_files");
        let v = r.json_body();
        assert_eq!(v["status"], "success", "{v}");
        self.session = Some(v["session_id"].as_str().unwrap().to_owned());
        v
    }

    /// `POST /send_message_streaming {message, session_id}` (fetch); the text the client shows
    /// (every `content` appended) and the frames.
    fn chat(&self, message: &str) -> (String, Vec<Value>) {
        let body = json!({"message": message, "session_id": self.session});
        let r = self
            .fetch_json("/send_message_streaming", &body)
            .expect(200, message);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream")),
            "{:?}",
            r.headers
        );
        // As the client parses it: split on newlines, `data: ` lines as JSON, the rest ignored.
        let frames: Vec<Value> = r
            .text()
            .split('\n')
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        assert!(
            frames.iter().any(|f| f["done"] == true),
            "no done frame: {frames:?}"
        );
        let text = frames
            .iter()
            .filter_map(|f| f["content"].as_str())
            .collect::<String>();
        (text, frames)
    }
}

/// A shapefile zip padded to `size` bytes with a stored `padding.bin` entry (never read by the
/// shapefile reader): the Kano data, as large as a national upload.
fn padded_zip(zip: &[u8], size: usize) -> Vec<u8> {
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    let eocd = (0..zip.len() - 21)
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .unwrap();
    let entries = u16_at(zip, eocd + 10);
    let cd_size = u32_at(zip, eocd + 12);
    let cd_start = u32_at(zip, eocd + 16);
    let name = b"padding.bin";
    let pad_len = size - zip.len() - 30 - 46 - 2 * name.len();
    let pad: Vec<u8> = (0..pad_len).map(|i| (i * 7 % 251) as u8).collect();
    let crc = crc32(&pad);
    let mut out = zip[..cd_start].to_vec();
    let local_at = out.len();
    out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(pad_len as u32).to_le_bytes());
    out.extend_from_slice(&(pad_len as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&pad);
    let new_cd = out.len();
    out.extend_from_slice(&zip[cd_start..cd_start + cd_size]);
    out.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(pad_len as u32).to_le_bytes());
    out.extend_from_slice(&(pad_len as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&(local_at as u32).to_le_bytes());
    out.extend_from_slice(name);
    let cd_len = out.len() - new_cd;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&((entries + 1) as u16).to_le_bytes());
    out.extend_from_slice(&((entries + 1) as u16).to_le_bytes());
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(new_cd as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The multipart body of one `POST /upload/chunk`, field for field as the client builds its
/// `FormData` (the chunk is a `Blob` slice: file name `blob`).
fn chunk_form(
    upload_id: &str,
    file_type: &str,
    index: usize,
    total: usize,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let index = index.to_string();
    let total = total.to_string();
    multipart(&[
        Part::text("upload_id", upload_id),
        Part::text("file_type", file_type),
        Part::text("chunk_index", &index),
        Part::text("total_chunks", &total),
        Part::file("chunk", "blob", bytes),
    ])
}

fn kano() -> (Vec<u8>, Vec<u8>) {
    (
        fixture("kano/kano_wards.csv"),
        fixture("kano/kano_wards_shapefile.zip"),
    )
}

#[test]
fn auth_status_mints_an_anonymous_guest_session_once() {
    let server = ServerBuilder::new().args(&["-w", "2"]).start();
    let jar = Jar::default();
    let tab = Tab::new(server.addr(), &jar, "conv-1");
    // App mount: `GET /auth/status` (fetch) with `X-Conversation-ID` and no cookie yet.
    let r = tab
        .fetch("GET", "/auth/status", Body::Empty)
        .expect(200, "auth status");
    let v = r.json_body();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["authenticated"], true, "{v}");
    assert_eq!(v["user"]["username"], "guest", "{v}");
    assert_eq!(v["user"]["email"], "", "{v}");
    assert!(v["user"]["id"].is_string(), "{v}");
    let sid = jar.session().expect("/auth/status sets the session cookie");
    assert_eq!(sid.len(), 32);
    // `GET /session_info` (axios, mount) answers that session.
    let info = tab
        .axios("GET", "/session_info", Body::Empty)
        .expect(200, "session_info");
    assert_eq!(info.json_body()["session_id"], sid.as_str());
    // Again (a reload): the same session, no new one.
    let again = tab
        .fetch("GET", "/auth/status", Body::Empty)
        .expect(200, "again");
    assert!(again.header("set-cookie").is_none(), "{:?}", again.headers);
    assert_eq!(jar.session().as_deref(), Some(sid.as_str()));
    // A chat before any upload works (a session exists) and says what to do.
    let (text, _) = tab.chat("hello");
    assert!(!text.is_empty());
    // Accounts do not exist: the sign-in routes say so clearly.
    let login = tab.axios_json("/auth/login", &json!({"email": "a@b.c", "password": "x"}));
    assert!(login.status >= 400, "{}", login.text());
}

#[test]
fn a_12_mb_upload_in_1_mib_chunks_over_six_workers_retried_and_resumed() {
    let instance = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new()
        .args(&[
            "-w",
            "6",
            "--instance-dir",
            instance.path().to_str().unwrap(),
        ])
        .start();
    server.wait_workers(6, Duration::from_secs(60)).unwrap();
    let addr = server.addr();
    let (csv, zip) = kano();
    let shp = padded_zip(&zip, 12 * 1000 * 1000);
    assert!(csv.len() + shp.len() > 5 * CHUNK);
    let shp_chunks: Vec<&[u8]> = shp.chunks(CHUNK).collect();
    assert_eq!(shp_chunks.len(), 12);
    let upload_id = "upload_1764763200000_x7k2p9q4m";
    let jar = Jar::default();
    // A fresh tab: no stored session id, no cookie (the first upload of a new user).
    let tab = Tab::new(addr, &jar, "conv-chunks");
    let mut pids = std::collections::BTreeSet::new();
    let mut send_chunk = |file_type: &str, index: usize, total: usize, bytes: &[u8]| {
        let (ct, body) = chunk_form(upload_id, file_type, index, total, bytes);
        let r = tab
            .axios("POST", "/upload/chunk", Body::Sized(&ct, &body))
            .expect(200, "chunk");
        pids.insert(r.worker());
        r.json_body()
    };
    send_chunk("csv", 0, 1, &csv);
    let sid = jar
        .session()
        .expect("the first chunk starts a session and sets the cookie");
    for (index, bytes) in shp_chunks.iter().enumerate().take(6) {
        send_chunk("shapefile", index, 12, bytes);
    }
    // Chunk 3 again: the client retries a chunk whose answer it did not get.
    send_chunk("shapefile", 3, 12, shp_chunks[3]);
    // Chunk 6: the connection drops half-way through the body.
    {
        let (ct, body) = chunk_form(upload_id, "shapefile", 6, 12, shp_chunks[6]);
        let mut s = TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /upload/chunk HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nCookie: {}\r\nX-Conversation-ID: conv-chunks\r\n\r\n",
            body.len(),
            jar.header().unwrap()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..body.len() / 2]).unwrap();
        drop(s);
    }
    // Resume: the server says which chunks it holds; the rest are sent.
    let status = tab
        .axios(
            "GET",
            &format!("/upload/status?upload_id={upload_id}"),
            Body::Empty,
        )
        .expect(200, "upload status")
        .json_body();
    assert_eq!(status["parts"]["csv"]["received"], json!([0]), "{status}");
    assert_eq!(
        status["parts"]["shapefile"]["received"],
        json!([0, 1, 2, 3, 4, 5]),
        "{status}"
    );
    assert_eq!(
        status["missing"]["shapefile"],
        json!([6, 7, 8, 9, 10, 11]),
        "{status}"
    );
    // Finalize too early: 409 naming what is missing, nothing committed.
    let early = json!({"upload_id": upload_id, "csv_filename": "kano_wards.csv", "shapefile_filename": "kano_wards_shapefile.zip", "csv_total_chunks": 1, "shp_total_chunks": 12});
    let r = tab.axios_json("/upload/finalize", &early);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("shapefile chunks 6"), "{}", r.text());
    for (index, bytes) in shp_chunks.iter().enumerate().skip(6) {
        send_chunk("shapefile", index, 12, bytes);
    }
    assert!(
        pids.len() >= 2,
        "14 chunk requests on new connections reached one worker of 6: {pids:?}"
    );
    let finalize = json!({
        "upload_id": upload_id,
        "csv_filename": "kano_wards.csv",
        "shapefile_filename": "kano_wards_shapefile.zip",
        "csv_total_chunks": 1,
        "shp_total_chunks": 12,
    });
    let done = tab
        .axios_json("/upload/finalize", &finalize)
        .expect(200, "finalize")
        .json_body();
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["session_id"], sid.as_str(), "{done}");
    // The finalize answer lost and sent again: the same answer, no second upload.
    let again = tab
        .axios_json("/upload/finalize", &finalize)
        .expect(200, "finalize again")
        .json_body();
    assert_eq!(again["session_id"], done["session_id"]);
    let folder = instance.path().join("uploads").join(&sid);
    assert_eq!(
        std::fs::read(folder.join("raw_shapefile.zip")).unwrap(),
        shp
    );
    assert_eq!(std::fs::read(folder.join("raw_data.csv")).unwrap(), csv);
    let info = tab
        .axios("GET", "/session_info", Body::Empty)
        .expect(200, "info")
        .json_body();
    assert_eq!(info["session_id"], sid.as_str(), "{info}");
    let state = request(
        addr,
        "GET",
        "/api/session/status",
        &[("X-Session-ID", &sid)],
        Body::Empty,
    )
    .unwrap()
    .json_body();
    assert_eq!(state["generation"], 1, "one commit: {state}");
    assert_eq!(state["shapefile_loaded"], true, "{state}");
    // The client then stores the id and sends the silent trigger.
    let mut tab = tab;
    tab.session = Some(sid.clone());
    let (text, _) = tab.chat("__DATA_UPLOADED__");
    assert!(text.contains("66"), "{text}");
    // A chunk over the per-chunk limit is refused with a JSON reason, nothing stored.
    let big = vec![b'x'; 9 << 20];
    let (ct, body) = chunk_form("upload_2", "csv", 0, 1, &big);
    let r = tab.axios("POST", "/upload/chunk", Body::Sized(&ct, &body));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json_body()["error"].is_string() || r.json_body()["message"].is_string());
}

#[test]
fn sample_data_exports_history_welcome_and_unknown_keys() {
    let instance = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new()
        .args(&[
            "-w",
            "2",
            "--instance-dir",
            instance.path().to_str().unwrap(),
        ])
        .start();
    let addr = server.addr();
    let jar = Jar::default();
    let mut tab = Tab::new(addr, &jar, "conv-sample");
    tab.fetch("GET", "/auth/status", Body::Empty)
        .expect(200, "auth");
    let sid = jar.session().unwrap();

    let welcome = tab
        .axios("GET", "/get_welcome_content", Body::Empty)
        .expect(200, "welcome")
        .json_body();
    assert!(
        welcome["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{welcome}"
    );
    assert!(welcome["subtitle"].is_string(), "{welcome}");
    assert!(
        welcome["capabilities"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{welcome}"
    );

    // The sidebar's sample button: the Kano data shipped with prefork.
    let r = tab
        .axios_json(
            "/load_sample_data",
            &json!({"data_type": "kano", "session_id": sid}),
        )
        .expect(200, "sample");
    let v = r.json_body();
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["session_id"], sid.as_str(), "{v}");
    tab.session = Some(sid.clone());
    let r = tab.axios_json("/load_sample_data", &json!({"data_type": "lagos"}));
    assert_eq!(r.status, 400, "{}", r.text());

    let (text, _) = tab.chat("I've uploaded my data, what's in it?");
    assert!(text.contains("66 rows covering 66 wards"), "{text}");
    // Unknown keys the client sends are accepted and ignored.
    let r = tab.axios_json(
        "/run_analysis",
        &json!({"session_id": sid, "use_llm_selection": true, "analysis_type": "composite"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (text, frames) = tab.chat("show me the vulnerability map");
    assert!(!text.is_empty());
    assert!(
        frames.iter().any(|f| f["visualizations"]
            .as_array()
            .is_some_and(|v| !v.is_empty())),
        "{frames:?}"
    );

    // The toolbar's Download menu (fetch, cookie only).
    let list = tab
        .fetch("GET", &format!("/export/list/{sid}"), Body::Empty)
        .expect(200, "export list")
        .json_body();
    assert_eq!(list["success"], true, "{list}");
    let files = list["files"].as_array().unwrap();
    assert!(!files.is_empty(), "{list}");
    for f in files {
        for key in ["name", "filename", "type", "description", "url", "category"] {
            assert!(f[key].is_string(), "{key} in {f}");
        }
        let got = tab.fetch("GET", f["url"].as_str().unwrap(), Body::Empty);
        assert_eq!(got.status, 200, "{f}: {}", got.text());
    }
    assert!(files.iter().any(|f| f["category"] == "analysis"), "{list}");
    // Another session's list is not this browser's to see.
    let other = request(
        addr,
        "GET",
        "/export/list/0123456789abcdef0123456789abcdef",
        &[],
        Body::Empty,
    )
    .unwrap();
    assert!(
        other.status == 404 || other.json_body()["files"] == json!([]),
        "{}",
        other.text()
    );

    // History: the list and the resume view.
    let convs = tab
        .axios("GET", "/api/conversations", Body::Empty)
        .expect(200, "conversations")
        .json_body();
    assert_eq!(convs["success"], true, "{convs}");
    let mine = convs["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["session_id"] == sid.as_str())
        .unwrap_or_else(|| panic!("{convs}"))
        .clone();
    for key in ["title", "last_activity", "created_at", "preview"] {
        assert!(mine[key].is_string(), "{key} in {mine}");
    }
    assert_eq!(mine["has_files"], true);
    let resumed = tab
        .axios_json(&format!("/api/conversations/{sid}/resume"), &json!({}))
        .expect(200, "resume")
        .json_body();
    assert_eq!(resumed["success"], true);
    assert_eq!(resumed["session_id"], sid.as_str());
    let messages = resumed["messages"].as_array().unwrap();
    assert!(messages.len() >= 4, "{resumed}");
    assert_eq!(messages[0]["type"], "user");
    assert_eq!(
        messages[0]["content"],
        "I've uploaded my data, what's in it?"
    );
    assert_eq!(messages[1]["type"], "assistant");
    assert!(
        messages
            .iter()
            .all(|m| m["timestamp"].is_string() && m["visualizations"].is_array())
    );
    let state = &resumed["session_state"];
    assert_eq!(state["has_files"], true, "{state}");
    assert_eq!(state["tpr_active"], false, "{state}");
    assert!(state["csv_filename"].is_string(), "{state}");
    // Resuming a session the browser does not hold is refused.
    let r = tab.axios_json(
        "/api/conversations/0123456789abcdef0123456789abcdef/resume",
        &json!({}),
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // The history survives restarts: it is on disk. A new server on the same instance.
    drop(server);
    let server = ServerBuilder::new()
        .args(&[
            "-w",
            "1",
            "--instance-dir",
            instance.path().to_str().unwrap(),
        ])
        .start();
    let mut tab = Tab::new(server.addr(), &jar, "conv-sample");
    tab.session = Some(sid.clone());
    let again = tab
        .axios_json(&format!("/api/conversations/{sid}/resume"), &json!({}))
        .expect(200, "resume after restart")
        .json_body();
    assert_eq!(again["messages"], resumed["messages"]);
}

#[test]
fn two_tabs_sharing_a_cookie_jar_keep_their_own_data() {
    let server = ServerBuilder::new().args(&["-w", "3"]).start();
    let addr = server.addr();
    let jar = Jar::default();
    let mut tab1 = Tab::new(addr, &jar, "conv-tab-1");
    let mut tab2 = Tab::new(addr, &jar, "conv-tab-2");
    let (csv, zip) = kano();
    let a = tab1.upload_both(("kano_wards.csv", &csv), ("kano_wards_shapefile.zip", &zip));
    let sid1 = a["session_id"].as_str().unwrap().to_owned();
    assert_eq!(jar.session().as_deref(), Some(sid1.as_str()));
    // Tab 2 (cookie of tab 1 in the jar, nothing in its sessionStorage) uploads other data.
    let ilorin_csv = fixture("ilorin/ilorin_wards.csv");
    let ilorin_zip = fixture("ilorin/ilorin_wards_shapefile.zip");
    let b = tab2.upload_both(
        ("ilorin_wards.csv", &ilorin_csv),
        ("ilorin_wards_shapefile.zip", &ilorin_zip),
    );
    let sid2 = b["session_id"].as_str().unwrap().to_owned();
    assert_ne!(sid1, sid2, "an upload naming no session starts a new one");
    assert_eq!(
        jar.session().as_deref(),
        Some(sid2.as_str()),
        "and sets the cookie"
    );
    // Tab 1 chats (fetch: the cookie is tab 2's now, the body names tab 1's session).
    let (text, _) = tab1.chat("I've uploaded my data, what's in it?");
    assert!(
        text.contains("66 rows covering 66 wards"),
        "tab 1 sees Kano: {text}"
    );
    let (text, _) = tab2.chat("I've uploaded my data, what's in it?");
    assert!(
        text.contains("35 rows covering 35 wards"),
        "tab 2 sees Ilorin: {text}"
    );
    // Tab 1's axios calls carry its X-Session-ID.
    let info = tab1
        .axios("GET", "/session_info", Body::Empty)
        .expect(200, "info")
        .json_body();
    assert_eq!(info["session_id"], sid1.as_str());
    // Tab 1 uploads again (X-Session-ID set): its own session, not a new one.
    let again = tab1.upload_both(("kano_wards.csv", &csv), ("kano_wards_shapefile.zip", &zip));
    assert_eq!(again["session_id"], sid1.as_str());
    let (text, _) = tab2.chat("I've uploaded my data, what's in it?");
    assert!(text.contains("35 rows"), "{text}");
    // A query-string id works for GETs without a header (e.g. links).
    let r = request(
        addr,
        "GET",
        &format!("/session_info?session_id={sid2}"),
        &[],
        Body::Empty,
    )
    .unwrap();
    assert_eq!(r.json_body()["session_id"], sid2.as_str());
}

#[test]
fn ui_dir_serves_a_built_spa_under_the_documented_csp() {
    let ui = tempfile::tempdir().unwrap();
    let index = "<!doctype html><html><head><script type=\"module\" crossorigin src=\"/assets/index-3f2a9c.js\"></script>\
                 <link rel=\"stylesheet\" href=\"/assets/index-77b1.css\"></head><body><div id=\"root\"></div></body></html>";
    std::fs::write(ui.path().join("index.html"), index).unwrap();
    std::fs::write(
        ui.path().join("vite.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    std::fs::create_dir(ui.path().join("assets")).unwrap();
    std::fs::write(
        ui.path().join("assets/index-3f2a9c.js"),
        "console.log('react');",
    )
    .unwrap();
    std::fs::write(ui.path().join("assets/index-77b1.css"), "body{margin:0}").unwrap();
    std::fs::write(ui.path().join(".env"), "SECRET=1").unwrap();
    let server = ServerBuilder::new()
        .args(&["-w", "1", "--ui-dir", ui.path().to_str().unwrap()])
        .start();
    let addr = server.addr();
    let get = |path: &str| request(addr, "GET", path, &[], Body::Empty).unwrap();
    let page = get("/").expect(200, "index");
    assert_eq!(page.text(), index);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "connect-src 'self'",
        "frame-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    // The README documents exactly this policy.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.replace('\n', " ").contains(&csp),
        "README lacks the policy {csp}"
    );
    let js = get("/assets/index-3f2a9c.js").expect(200, "asset");
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(js.text(), "console.log('react');");
    assert!(
        get("/assets/index-77b1.css")
            .header("content-type")
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(get("/vite.svg").status, 200);
    for bad in [
        "/assets/../index.html",
        "/assets/%2e%2e/index.html",
        "/.env",
        "/assets/missing.js",
    ] {
        let r = get(bad);
        assert!(r.status == 404 || r.status == 400, "{bad}: {}", r.status);
        assert!(!r.text().contains("SECRET"));
    }
    // The API and the built-in page's files are still there.
    assert_eq!(get("/ping").status, 200);
    assert_eq!(get("/static/app.js").status, 200);

    // A directory without index.html: the server refuses to start, saying why.
    let empty = tempfile::tempdir().unwrap();
    let (code, _out, err) = crate::support::run_to_exit(
        &[
            "--ui-dir",
            empty.path().to_str().unwrap(),
            "-b",
            "127.0.0.1:0",
            "--check-config",
        ],
        &[],
        empty.path(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("index.html"), "{err}");
}
