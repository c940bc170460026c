//! The typed report a response carries to its host, and 405 answers.

#![allow(clippy::unwrap_used)]

use crate::*;
use http::Method;
use http_body_util::Full;

fn app(dir: &std::path::Path) -> App {
    App::new(AppConfig {
        instance_dir: dir.join("instance"),
        ..AppConfig::default()
    })
    .unwrap()
}

fn request(method: Method, path: &str, session: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(id) = session {
        b = b.header("x-session-id", id);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

async fn body_text(response: Response<ResponseBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn an_internal_error_travels_as_a_typed_report_never_as_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let created = app
        .handle(request(Method::POST, "/api/session", None))
        .await;
    let text = body_text(created).await;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = value["session_id"].as_str().unwrap().to_owned();
    let manifest = dir
        .path()
        .join("instance/uploads")
        .join(&id)
        .join("manifest.json");
    std::fs::write(&manifest, b"{ not json\nat all").unwrap();

    let response = app
        .handle(request(Method::GET, "/api/session/status", Some(&id)))
        .await;
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    // Nothing but the JSON content type: the report is no header.
    let names: Vec<&str> = response.headers().keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["content-type"]);
    let report = response
        .extensions()
        .get::<RequestReport>()
        .unwrap()
        .clone();
    assert_eq!(report.route, "/api/session/status");
    let error = report.internal_error.unwrap();
    assert!(
        error.starts_with("GET /api/session/status: ") && !error.contains('\n'),
        "{error}"
    );
    let text = body_text(response).await;
    assert!(
        !text.contains("manifest") && text.contains("has been logged"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn every_answer_names_its_route_and_metrics_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let response = app.handle(request(Method::GET, "/ping", None)).await;
    let report = response.extensions().get::<RequestReport>().unwrap();
    assert_eq!(report.route, "/ping");
    assert!(report.internal_error.is_none() && report.metrics.is_empty());
    let response = app.handle(request(Method::GET, "/nowhere/42", None)).await;
    assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
    let report = response.extensions().get::<RequestReport>().unwrap();
    assert_eq!((report.route, &report.internal_error), ("other", &None));

    let mut response = reply::json(http::StatusCode::OK, &serde_json::json!({}));
    add_metric(&mut response, "uploads_total=1, upload_bytes=2048");
    add_metric(&mut response, "analysis_seconds=2.5, junk");
    let report = response.extensions().get::<RequestReport>().unwrap();
    assert_eq!(
        report.metrics,
        vec![
            ("uploads_total".to_owned(), 1.0),
            ("upload_bytes".to_owned(), 2048.0),
            ("analysis_seconds".to_owned(), 2.5)
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_known_path_with_an_unknown_method_answers_405_with_allow() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let response = app
        .handle(request(Method::GET, "/run_analysis", None))
        .await;
    assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[http::header::ALLOW], "POST");
    let report = response.extensions().get::<RequestReport>().unwrap();
    assert_eq!(report.route, "/run_analysis");
    let value: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(value["status"], "error");
    assert_eq!(
        value["message"],
        "GET is not allowed on /run_analysis; allowed: POST"
    );
    let response = app.handle(request(Method::PUT, "/ping", None)).await;
    assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[http::header::ALLOW], "GET, HEAD");
}
