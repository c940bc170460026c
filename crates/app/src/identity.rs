//! Which session a request speaks for. The rule, first match wins:
//! 1. the `X-Session-ID` header (scripts, our page, the React client's axios calls);
//! 2. `session_id` in the JSON body or the query string (the React client's raw `fetch` calls
//!    send their tab's id there and no header) — adopted into the header by the router
//!    ([`adopt_query_session`], [`adopt_body_session`]), so every handler sees one rule;
//! 3. the `session_id` cookie (one per browser, shared by its tabs).
//!
//! 1 and 2 are *explicit*; the cookie is not. An upload that names no session explicitly starts
//! a new session and sets the cookie (as ChatMRPT does), so a second tab's upload never replaces
//! the first tab's data. Ids are minted by the server only (`mrpt-session` checks the folder
//! exists).
//!
//! The browser also keeps `session_history`: the ids this server handed it (newest first, at
//! most [`HISTORY_LEN`]). It lists the browser's conversations and lets a tab fetch the maps and
//! files of its own session after another tab moved the cookie on. Like the session cookie it is
//! a bearer of ids the browser was given, nothing more.

use http::{HeaderMap, HeaderValue, header};

pub const COOKIE_NAME: &str = "session_id";
pub const HEADER_NAME: &str = "x-session-id";
pub const HISTORY_COOKIE: &str = "session_history";
/// Sessions remembered per browser.
pub const HISTORY_LEN: usize = 8;

fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == wanted)
        .map(|(_, value)| value.trim().to_string())
}

/// The session id text the client sent, explicit first (header, or a body/query id adopted into
/// it), then the cookie; `None` if neither.
pub fn requested_session(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(HEADER_NAME) {
        return Some(value.to_str().unwrap_or("\u{0}invalid").trim().to_string());
    }
    cookie(headers, COOKIE_NAME)
}

/// The request names its session explicitly (header, JSON body or query), not only by cookie.
pub fn is_explicit(headers: &HeaderMap) -> bool {
    headers.contains_key(HEADER_NAME)
}

/// The request names its session by cookie only (a browser), not explicitly.
pub fn by_cookie_only(headers: &HeaderMap) -> bool {
    !is_explicit(headers)
}

fn adopt(headers: &mut HeaderMap, value: &str) {
    let value = value.trim();
    if value.is_empty() || headers.contains_key(HEADER_NAME) {
        return;
    }
    // An id that is not a header value cannot be a session id either: it is refused as
    // malformed like any other.
    let value = HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("invalid"));
    headers.insert(HEADER_NAME, value);
}

/// `?session_id=<id>` counts as explicit, after the header.
pub fn adopt_query_session(headers: &mut HeaderMap, query: Option<&str>) {
    let Some(query) = query else { return };
    let found = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "session_id")
        .map(|(_, v)| v.to_string());
    if let Some(v) = found {
        adopt(headers, &v);
    }
}

/// `{"session_id": "<id>", ...}` in a JSON body counts as explicit, after the header. A
/// `null`, empty or non-string value, or a body that is not a JSON object, names nothing.
pub fn adopt_body_session(headers: &mut HeaderMap, body: &[u8]) {
    if headers.contains_key(HEADER_NAME) || body.is_empty() {
        return;
    }
    #[derive(serde::Deserialize)]
    struct Named {
        session_id: Option<serde_json::Value>,
    }
    if let Ok(Named {
        session_id: Some(serde_json::Value::String(id)),
    }) = serde_json::from_slice::<Named>(body)
    {
        adopt(headers, &id);
    }
}

/// A multipart form's `session_id` field counts as explicit, after the header.
pub fn adopt_form_session(headers: &mut HeaderMap, value: Option<&str>) {
    if let Some(v) = value {
        adopt(headers, v);
    }
}

/// The ids of the browser's `session_history` cookie (well-formed ones only).
pub fn history(headers: &HeaderMap) -> Vec<String> {
    cookie(headers, HISTORY_COOKIE)
        .map(|v| {
            v.split('.')
                .filter(|id| {
                    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
                .take(HISTORY_LEN)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The browser was handed `id` (its cookie, or its history): the id in a file route's path may
/// be this one.
pub fn browser_holds(headers: &HeaderMap, id: &str) -> bool {
    requested_session(headers).as_deref() == Some(id)
        || cookie(headers, COOKIE_NAME).as_deref() == Some(id)
        || history(headers).iter().any(|h| h == id)
}

/// The cookie that binds a browser to its session. Not `Secure`: the service sits behind HTTP
/// load balancers (H14, a Secure cookie over HTTP is never sent back).
pub fn set_cookie(session: &str) -> HeaderValue {
    let text = format!("{COOKIE_NAME}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400");
    // The id is 32 hex characters, always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("session_id=; Path=/"))
}

/// The session cookie for `session` and the history cookie with `session` first, both to be
/// sent as `Set-Cookie` when the server hands the browser a session.
pub fn hand_over(headers: &HeaderMap, session: &str) -> [HeaderValue; 2] {
    let mut ids = vec![session.to_string()];
    ids.extend(
        history(headers)
            .into_iter()
            .chain(cookie(headers, COOKIE_NAME))
            .filter(|id| id != session && id.len() == 32),
    );
    let mut seen = Vec::new();
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen.truncate(HISTORY_LEN);
    let text = format!(
        "{HISTORY_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000",
        seen.join(".")
    );
    [
        set_cookie(session),
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("session_history=; Path=/")),
    ]
}

/// Adds [`hand_over`]'s cookies to a response's headers.
pub fn set_cookies(out: &mut HeaderMap, request: &HeaderMap, session: &str) {
    for value in hand_over(request, session) {
        out.append(header::SET_COOKIE, value);
    }
}

/// Tells the browser to forget its session cookie (the session no longer exists: removed by the
/// idle-session sweep), so that its next upload or chat starts a new one.
pub fn expire_cookie() -> HeaderValue {
    HeaderValue::from_static("session_id=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn header_then_body_or_query_then_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; session_id=abc"),
        );
        assert_eq!(requested_session(&headers).as_deref(), Some("abc"));
        assert!(!is_explicit(&headers));
        let mut with_body = headers.clone();
        adopt_body_session(
            &mut with_body,
            br#"{"message":"hi","session_id":"fromBody"}"#,
        );
        assert_eq!(requested_session(&with_body).as_deref(), Some("fromBody"));
        assert!(is_explicit(&with_body));
        let mut with_query = headers.clone();
        adopt_query_session(&mut with_query, Some("x=1&session_id=fromQuery"));
        assert_eq!(requested_session(&with_query).as_deref(), Some("fromQuery"));
        // The header beats both.
        headers.insert(HEADER_NAME, HeaderValue::from_static("def"));
        adopt_body_session(&mut headers, br#"{"session_id":"fromBody"}"#);
        adopt_query_session(&mut headers, Some("session_id=fromQuery"));
        assert_eq!(requested_session(&headers).as_deref(), Some("def"));
    }

    #[test]
    fn null_empty_or_odd_body_ids_name_nothing() {
        for body in [
            &br#"{"session_id":null}"#[..],
            br#"{"session_id":""}"#,
            br#"{"session_id":5}"#,
            br#"[1,2]"#,
            b"not json",
        ] {
            let mut headers = HeaderMap::new();
            adopt_body_session(&mut headers, body);
            assert!(!is_explicit(&headers), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn no_session() {
        assert_eq!(requested_session(&HeaderMap::new()), None);
    }

    #[test]
    fn history_keeps_the_ids_handed_over_newest_first() {
        let mut headers = HeaderMap::new();
        let text = format!("session_id={A}; session_history={A}.bad.{A}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&text).unwrap());
        let [session, history_cookie] = hand_over(&headers, B);
        assert!(
            session
                .to_str()
                .unwrap()
                .starts_with(&format!("session_id={B};"))
        );
        assert!(
            history_cookie
                .to_str()
                .unwrap()
                .starts_with(&format!("session_history={B}.{A};"))
        );
        assert!(browser_holds(&headers, A));
        assert!(!browser_holds(&headers, B));
    }
}
