//! Which session a request speaks for: the `session_id` cookie, or the `X-Session-ID` header for
//! API clients. Ids are minted by the server only (`mrpt-session` checks the folder exists).

use http::{HeaderMap, HeaderValue, header};

pub const COOKIE_NAME: &str = "session_id";
pub const HEADER_NAME: &str = "x-session-id";

/// The session id text the client sent, header first (explicit beats ambient), if any.
pub fn requested_session(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(HEADER_NAME) {
        return Some(value.to_str().unwrap_or("\u{0}invalid").trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
}

/// The cookie that binds a browser to its session. Not `Secure`: the service sits behind HTTP
/// load balancers (H14, a Secure cookie over HTTP is never sent back).
pub fn set_cookie(session: &str) -> HeaderValue {
    let text = format!("{COOKIE_NAME}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400");
    // The id is 32 hex characters, always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("session_id=; Path=/"))
}

/// Tells the browser to forget its session cookie (the session no longer exists: removed by the
/// idle-session sweep), so that its next upload or chat starts a new one.
pub fn expire_cookie() -> HeaderValue {
    HeaderValue::from_static("session_id=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The request names its session by cookie only (a browser), not by `X-Session-ID` (a script).
pub fn by_cookie_only(headers: &HeaderMap) -> bool {
    !headers.contains_key(HEADER_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_beats_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; session_id=abc"),
        );
        assert_eq!(requested_session(&headers).as_deref(), Some("abc"));
        headers.insert(HEADER_NAME, HeaderValue::from_static("def"));
        assert_eq!(requested_session(&headers).as_deref(), Some("def"));
    }

    #[test]
    fn no_session() {
        assert_eq!(requested_session(&HeaderMap::new()), None);
    }
}
