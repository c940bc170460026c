//! Every route's error answers through `App::handle`, no socket: the status, the JSON shape
//! `{"status":"error","message":..}` and the words of the message a user acts on.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::{App, AppConfig, RequestReport};

struct Fixture {
    _dir: tempfile::TempDir,
    instance: std::path::PathBuf,
    app: App,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let instance = dir.path().join("instance");
    let app = App::new(AppConfig {
        instance_dir: instance.clone(),
        max_upload_bytes: 64 * 1024,
        max_json_bytes: 4 * 1024,
        ..AppConfig::default()
    })
    .unwrap();
    Fixture {
        _dir: dir,
        instance,
        app,
    }
}

/// One answer: status, the JSON body, the route label.
struct Answer {
    status: StatusCode,
    json: Value,
    text: String,
    route: &'static str,
    internal: Option<String>,
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(id) = session {
            b = b.header("x-session-id", id);
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let response = self
            .app
            .handle(b.body(Full::new(body.into())).unwrap())
            .await;
        let status = response.status();
        let report = response
            .extensions()
            .get::<RequestReport>()
            .cloned()
            .unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            route: report.route,
            internal: report.internal_error,
        }
    }

    async fn json(&self, path: &str, session: Option<&str>, body: &str) -> Answer {
        self.send(
            Method::POST,
            path,
            session,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    async fn new_session(&self) -> String {
        let a = self
            .send(Method::POST, "/api/session", None, None, "")
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.json["session_id"].as_str().unwrap().to_string()
    }
}

/// Asserts an error answer: status, JSON error shape, every `words` in the message.
#[track_caller]
fn expect(a: &Answer, status: StatusCode, words: &[&str]) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["status"], "error", "{}", a.text);
    let message = a.json["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    for w in words {
        assert!(
            message.contains(&w.to_lowercase()),
            "{w:?} not in {message:?}"
        );
    }
}

/// A well-formed id no server minted.
const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

const JSON_ROUTES: &[&str] = &[
    "/run_analysis",
    "/api/itn/update-distribution",
    "/api/itn/plan",
    "/send_message",
    "/send_message_streaming",
];

#[tokio::test(flavor = "current_thread")]
async fn json_routes_refuse_bad_json_without_a_session_and_unknown_sessions() {
    let f = fixture();
    let id = f.new_session().await;
    for path in JSON_ROUTES {
        let a = f.json(path, Some(&id), "{ not json").await;
        expect(&a, StatusCode::BAD_REQUEST, &["JSON"]);
        let a = f.json(path, Some(&id), "\"text\"").await;
        expect(&a, StatusCode::BAD_REQUEST, &[]);
        // Too large: refused before it is parsed, whatever it holds.
        let big = format!("{{\"message\": \"{}\"}}", "x".repeat(8 * 1024));
        let a = f.json(path, Some(&id), &big).await;
        expect(&a, StatusCode::PAYLOAD_TOO_LARGE, &[]);
        // Another method on the path.
        let a = f.send(Method::GET, path, Some(&id), None, "").await;
        expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["not allowed", "POST"]);
    }
    let valid = [
        ("/run_analysis", "{}"),
        ("/api/itn/update-distribution", r#"{"total_nets": 1000}"#),
        ("/api/itn/plan", r#"{"total_nets": 1000}"#),
        ("/send_message", r#"{"message": "hello"}"#),
        ("/send_message_streaming", r#"{"message": "hello"}"#),
    ];
    for (path, body) in valid {
        let a = f.json(path, None, body).await;
        expect(
            &a,
            StatusCode::BAD_REQUEST,
            &["no session", "POST /api/session"],
        );
        let a = f.json(path, Some(UNKNOWN), body).await;
        expect(&a, StatusCode::NOT_FOUND, &["session"]);
        let a = f.json(path, Some("../../etc"), body).await;
        expect(&a, StatusCode::BAD_REQUEST, &[]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn missing_and_wrong_fields_name_the_field() {
    let f = fixture();
    let id = f.new_session().await;
    let a = f.json("/run_analysis", Some(&id), r#"{"colour": 1}"#).await;
    expect(&a, StatusCode::BAD_REQUEST, &["colour"]);
    let a = f
        .json(
            "/run_analysis",
            Some(&id),
            r#"{"selected_variables": "rain"}"#,
        )
        .await;
    expect(&a, StatusCode::BAD_REQUEST, &[]);
    let a = f
        .json("/api/itn/update-distribution", Some(&id), "{}")
        .await;
    expect(&a, StatusCode::BAD_REQUEST, &["total_nets"]);
    let a = f
        .json(
            "/api/itn/update-distribution",
            Some(&id),
            r#"{"total_nets": 2.5}"#,
        )
        .await;
    expect(&a, StatusCode::BAD_REQUEST, &["total_nets"]);
    let a = f
        .json(
            "/api/itn/update-distribution",
            Some(&id),
            r#"{"total_nets": 1000, "method": "astrology"}"#,
        )
        .await;
    expect(&a, StatusCode::BAD_REQUEST, &[]);
    for path in ["/send_message", "/send_message_streaming"] {
        let a = f.json(path, Some(&id), "{}").await;
        expect(&a, StatusCode::BAD_REQUEST, &["no message"]);
        let a = f.json(path, Some(&id), r#"{"message": "   "}"#).await;
        expect(&a, StatusCode::BAD_REQUEST, &["no message"]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_session_without_data_gets_409_from_every_step_that_needs_data() {
    let f = fixture();
    let id = f.new_session().await;
    let a = f.json("/run_analysis", Some(&id), "{}").await;
    expect(&a, StatusCode::CONFLICT, &["upload"]);
    let a = f
        .json(
            "/api/itn/update-distribution",
            Some(&id),
            r#"{"total_nets": 1000}"#,
        )
        .await;
    expect(&a, StatusCode::CONFLICT, &[]);
    let a = f
        .send(Method::POST, "/generate_report", Some(&id), None, "")
        .await;
    expect(&a, StatusCode::CONFLICT, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn uploads_refuse_wrong_forms_and_oversized_bodies() {
    let f = fixture();
    let id = f.new_session().await;
    for path in ["/upload_both_files", "/upload", "/upload_population"] {
        let a = f
            .send(Method::POST, path, Some(&id), Some("text/plain"), "hello")
            .await;
        expect(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE, &["multipart"]);
        let boundary = "XyZ";
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--{boundary}--\r\n"
        );
        let a = f
            .send(
                Method::POST,
                path,
                Some(&id),
                Some(&format!("multipart/form-data; boundary={boundary}")),
                form,
            )
            .await;
        expect(&a, StatusCode::BAD_REQUEST, &["file"]);
        let big = vec![b'a'; 80 * 1024];
        let a = f
            .send(
                Method::POST,
                path,
                Some(&id),
                Some("multipart/form-data; boundary=XyZ"),
                big,
            )
            .await;
        expect(&a, StatusCode::PAYLOAD_TOO_LARGE, &[]);
        let a = f.send(Method::GET, path, Some(&id), None, "").await;
        expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["POST"]);
    }
    let a = f
        .send(
            Method::POST,
            "/upload_population",
            None,
            Some("text/plain"),
            "x",
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.text);
}

#[tokio::test(flavor = "current_thread")]
async fn session_and_file_routes_map_their_errors() {
    let f = fixture();
    let id = f.new_session().await;
    let a = f.send(Method::GET, "/session_info", None, None, "").await;
    expect(&a, StatusCode::BAD_REQUEST, &["no session"]);
    let a = f
        .send(Method::GET, "/session_info", Some(UNKNOWN), None, "")
        .await;
    expect(&a, StatusCode::NOT_FOUND, &["session"]);
    let a = f
        .send(
            Method::GET,
            "/api/session/status",
            Some("nonsense!"),
            None,
            "",
        )
        .await;
    expect(&a, StatusCode::BAD_REQUEST, &[]);
    let a = f.send(Method::GET, "/api/session", None, None, "").await;
    expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["POST"]);
    let a = f.send(Method::POST, "/session_info", None, None, "").await;
    expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["GET"]);
    let a = f.send(Method::GET, "/clear_session", None, None, "").await;
    expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["POST"]);
    let a = f.send(Method::GET, "/static/nope.js", None, None, "").await;
    expect(&a, StatusCode::NOT_FOUND, &["nope.js"]);
    for prefix in ["/serve_viz_file", "/export/download"] {
        // Someone else's session, a file that does not exist, an escaping path: all 404 alike.
        for (sid, file) in [
            (UNKNOWN, "a.html"),
            (id.as_str(), "missing.html"),
            (id.as_str(), "../manifest.json"),
        ] {
            let a = f
                .send(
                    Method::GET,
                    &format!("{prefix}/{sid}/{file}"),
                    Some(&id),
                    None,
                    "",
                )
                .await;
            expect(&a, StatusCode::NOT_FOUND, &[]);
            assert!(
                !a.text.contains(&*f.instance.to_string_lossy()),
                "{}",
                a.text
            );
        }
        let a = f
            .send(
                Method::POST,
                &format!("{prefix}/{id}/a.html"),
                Some(&id),
                None,
                "",
            )
            .await;
        expect(&a, StatusCode::METHOD_NOT_ALLOWED, &["GET"]);
    }
    let a = f.send(Method::GET, "/nowhere", None, None, "").await;
    expect(&a, StatusCode::NOT_FOUND, &["no route"]);
    assert_eq!(a.route, "other");
}

#[tokio::test(flavor = "current_thread")]
async fn internal_error_text_never_reaches_the_client() {
    let f = fixture();
    let id = f.new_session().await;
    let folder = f.instance.join("uploads").join(&id);
    std::fs::write(folder.join("manifest.json"), b"{ broken\n").unwrap();
    let requests: Vec<(Method, &str, Option<&str>)> = vec![
        (Method::GET, "/api/session/status", None),
        (Method::GET, "/session_info", None),
        (Method::POST, "/run_analysis", Some("{}")),
        (
            Method::POST,
            "/api/itn/update-distribution",
            Some(r#"{"total_nets": 10}"#),
        ),
        (Method::POST, "/send_message", Some(r#"{"message": "hi"}"#)),
        (
            Method::POST,
            "/send_message_streaming",
            Some(r#"{"message": "hi"}"#),
        ),
        (Method::POST, "/generate_report", None),
    ];
    let root = f.instance.to_string_lossy().into_owned();
    for (method, path, body) in requests {
        let a = f
            .send(
                method,
                path,
                Some(&id),
                body.map(|_| "application/json"),
                body.unwrap_or("").to_string(),
            )
            .await;
        expect(&a, StatusCode::INTERNAL_SERVER_ERROR, &["has been logged"]);
        for secret in ["manifest", "uploads", &root, "expected", "line 1"] {
            assert!(!a.text.contains(secret), "{path}: {secret:?} in {}", a.text);
        }
        let logged = a.internal.unwrap_or_default();
        assert!(logged.contains(path), "{path}: {logged}");
    }
}
