//! The route table, written once: each line holds a route's method, its path pattern, the label
//! its metrics carry, and its handler. [`find`] resolves a request against it; a known path with
//! an unknown method answers 405 with an `Allow` header, an unknown path 404.
//!
//! Handlers live in one module per concern below; each is an `async fn(&App, Routed)`.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, Uri};
use http_body_util::BodyExt;

use crate::{ApiError, App, ResponseBody};

pub(crate) mod analysis;
pub(crate) mod chat;
pub(crate) mod chunked;
pub(crate) mod files;
pub(crate) mod itn;
pub(crate) mod ops;
pub(crate) mod react;
pub(crate) mod session;
pub(crate) mod spa;
pub(crate) mod tpr;
pub(crate) mod ui;
pub(crate) mod upload;

/// A request body of any host, type-erased so one handler type serves them all.
pub(crate) type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The error type of [`RequestBody`].
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler answers: a response, or the error `reply::error` maps.
pub(crate) type Handled<'a> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, ApiError>> + Send + 'a>>;

/// A request as a handler receives it.
pub(crate) struct Routed {
    /// The request's headers (session cookie or `X-Session-ID`, content type, length).
    pub(crate) headers: HeaderMap,
    /// The request target, for routes that read a query string.
    pub(crate) uri: Uri,
    /// The values of the pattern's `{name}` and `{*name}` segments, in order.
    pub(crate) params: Vec<String>,
    /// The body, not yet read: `App::body` (JSON, `max_json_bytes`) or `App::upload_body`
    /// (`max_upload_bytes`) reads it within its limit.
    pub(crate) body: RequestBody,
}

impl Routed {
    /// The `i`th path parameter (empty when the pattern has fewer).
    pub(crate) fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }
}

/// One line of the table.
pub(crate) struct Route {
    /// `GET` routes answer `HEAD` too.
    pub(crate) method: Method,
    /// `/literal/{one_segment}/{*one_or_more_segments}`.
    pub(crate) pattern: &'static str,
    /// The metric label (bounded: never a raw path).
    pub(crate) label: &'static str,
    pub(crate) handler: for<'a> fn(&'a App, Routed) -> Handled<'a>,
}

/// `route!(METHOD "/pattern" => module::handler)`, with `, label "/x"` when the metric label is
/// not the pattern itself (aliases, patterns with ids).
macro_rules! route {
    ($method:ident $pattern:literal => $($handler:ident)::+) => {
        route!($method $pattern => $($handler)::+, label $pattern)
    };
    ($method:ident $pattern:literal => $($handler:ident)::+, label $label:literal) => {
        Route {
            method: Method::$method,
            pattern: $pattern,
            label: $label,
            handler: |app, req| Box::pin($($handler)::+(app, req)),
        }
    };
}

/// Every route of the service.
pub(crate) static ROUTES: &[Route] = &[
    route!(GET "/" => ui::index),
    route!(GET "/static/{file}" => ui::asset, label "/static"),
    route!(GET "/ping" => ops::ping),
    route!(POST "/api/session" => session::create),
    route!(GET "/api/session/status" => session::status),
    route!(GET "/session_info" => session::info),
    route!(POST "/clear_session" => session::clear),
    route!(POST "/upload_both_files" => upload::upload),
    route!(POST "/upload" => upload::upload, label "/upload_both_files"),
    route!(POST "/upload_population" => upload::upload_population),
    route!(POST "/upload_lga_lookup" => upload::upload_lga_lookup),
    route!(POST "/run_analysis" => analysis::run_analysis),
    route!(POST "/api/itn/update-distribution" => itn::plan_itn),
    route!(POST "/api/itn/plan" => itn::plan_itn, label "/api/itn/update-distribution"),
    route!(POST "/send_message" => chat::send_message),
    route!(POST "/send_message_streaming" => chat::send_message_streaming),
    route!(GET "/serve_viz_file/{session}/{*file}" => files::serve_viz, label "/serve_viz_file"),
    route!(GET "/export/download/{session}/{*file}" => files::download, label "/export/download"),
    route!(POST "/generate_report" => files::generate_report),
    route!(GET "/assets/{*file}" => spa::asset, label "/assets"),
    route!(POST "/upload/chunk" => chunked::chunk),
    route!(GET "/upload/status" => chunked::status),
    route!(POST "/upload/finalize" => chunked::finalize),
    route!(GET "/auth/status" => react::auth_status),
    route!(POST "/auth/login" => react::auth_unavailable, label "/auth/*"),
    route!(POST "/auth/signup" => react::auth_unavailable, label "/auth/*"),
    route!(POST "/auth/logout" => react::auth_unavailable, label "/auth/*"),
    route!(GET "/auth/google" => react::auth_unavailable, label "/auth/*"),
    route!(POST "/explain_visualization" => react::explain_unavailable),
    route!(GET "/get_welcome_content" => react::welcome),
    route!(POST "/load_sample_data" => react::load_sample),
    route!(GET "/export/list/{session}" => react::export_list, label "/export/list"),
    route!(GET "/api/conversations" => react::conversations),
    route!(POST "/api/conversations/{session}/resume" => react::resume, label "/api/conversations/resume"),
    route!(POST "/api/tpr/upload" => tpr::upload),
    route!(POST "/api/data-analysis/upload" => tpr::upload, label "/api/tpr/upload"),
    route!(GET "/api/tpr/options" => tpr::options),
    route!(POST "/api/tpr/options" => tpr::options_post, label "/api/tpr/options"),
    route!(POST "/api/tpr/calculate" => tpr::calculate),
    route!(POST "/api/tpr/reprioritise" => tpr::reprioritise),
];

/// A body with nothing in it, left in a [`Routed`] whose body was taken.
pub(crate) fn empty_body() -> RequestBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The label of requests no route matches.
pub(crate) const UNMATCHED_LABEL: &str = "other";

/// How a request resolves against the table.
pub(crate) enum Found {
    /// This route, with the path's parameters.
    Route(&'static Route, Vec<String>),
    /// The path is known, the method is not: 405 naming the methods that are.
    WrongMethod { label: &'static str, allow: String },
    /// No route has this path: 404.
    Nowhere,
}

/// Resolve `method path` against [`ROUTES`].
pub(crate) fn find(method: &Method, path: &str) -> Found {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut allowed: Vec<&'static str> = Vec::new();
    let mut label = None;
    for route in ROUTES {
        let Some(params) = match_pattern(route.pattern, &segments) else {
            continue;
        };
        let head_of_get = route.method == Method::GET && *method == Method::HEAD;
        if route.method == *method || head_of_get {
            return Found::Route(route, params);
        }
        label.get_or_insert(route.label);
        let names: &[&'static str] = if route.method == Method::GET {
            &["GET", "HEAD"]
        } else {
            &[route.method.as_str_static()]
        };
        for name in names {
            if !allowed.contains(name) {
                allowed.push(name);
            }
        }
    }
    match label {
        Some(label) => Found::WrongMethod {
            label,
            allow: allowed.join(", "),
        },
        None => Found::Nowhere,
    }
}

/// The parameters of `segments` under `pattern`, if it matches. Walks the pattern in place: a
/// route that does not match costs no allocation (every request is tried against the table).
fn match_pattern(pattern: &str, segments: &[&str]) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut parts = 0;
    for (i, part) in pattern.trim_start_matches('/').split('/').enumerate() {
        parts = i + 1;
        if part.starts_with("{*") && part.ends_with('}') {
            let rest = segments.get(i..).filter(|rest| !rest.is_empty())?;
            params.push(rest.join("/"));
            return Some(params);
        }
        let segment = segments.get(i)?;
        if part.starts_with('{') && part.ends_with('}') {
            params.push((*segment).to_string());
        } else if part != *segment {
            return None;
        }
    }
    (parts == segments.len()).then_some(params)
}

/// `as_str` for the methods of the table (the `http` crate's is tied to the value's lifetime).
trait StaticName {
    fn as_str_static(&self) -> &'static str;
}

impl StaticName for Method {
    fn as_str_static(&self) -> &'static str {
        match *self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            _ => "OPTIONS",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(method: Method, path: &str) -> Result<(&'static str, Vec<String>), String> {
        match find(&method, path) {
            Found::Route(route, params) => Ok((route.label, params)),
            Found::WrongMethod { label, allow } => Err(format!("405 {label} {allow}")),
            Found::Nowhere => Err("404".to_string()),
        }
    }

    #[test]
    fn patterns_capture_segments_and_tails() {
        assert_eq!(resolve(Method::GET, "/"), Ok(("/", vec![])));
        assert_eq!(
            resolve(Method::HEAD, "/static/app.js"),
            Ok(("/static", vec!["app.js".into()]))
        );
        assert_eq!(
            resolve(Method::GET, "/serve_viz_file/abc/maps/x.html"),
            Ok(("/serve_viz_file", vec!["abc".into(), "maps/x.html".into()]))
        );
        assert_eq!(
            resolve(Method::GET, "/serve_viz_file/abc"),
            Err("404".into())
        );
        assert_eq!(resolve(Method::GET, "/static/a/b"), Err("404".into()));
        assert_eq!(
            resolve(Method::POST, "/upload"),
            Ok(("/upload_both_files", vec![]))
        );
    }

    #[test]
    fn a_known_path_with_another_method_names_the_allowed_ones() {
        assert_eq!(
            resolve(Method::GET, "/run_analysis"),
            Err("405 /run_analysis POST".into())
        );
        assert_eq!(
            resolve(Method::DELETE, "/ping"),
            Err("405 /ping GET, HEAD".into())
        );
        assert_eq!(resolve(Method::GET, "/nowhere"), Err("404".into()));
    }

    #[test]
    fn every_pattern_is_written_once_per_method() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.pattern == b.pattern && a.method == b.method),
                    "{} {} twice",
                    a.method,
                    a.pattern
                );
            }
        }
    }
}
