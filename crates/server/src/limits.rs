//! What the server checks on a request before the handler sees it: gunicorn's request limits
//! (line 400, header count and header line 431), headers with `_` in their names (dropped, so
//! `X_Forwarded_For` cannot alias `X-Forwarded-For`), and X-Forwarded-For / X-Forwarded-Proto
//! believed only from trusted peers.
//!
//! hyper has parsed the head by now, so lengths are measured on what it kept: the request line is
//! `METHOD SP TARGET SP VERSION`, a header line is `name: value` plus CRLF. For the usual single
//! space after the colon that is the byte count on the wire.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::{Error, ResponseBody, full_body};

/// gunicorn's ceilings: a line limit above this is clamped, a field count of 0 or above the
/// maximum means the maximum.
pub(crate) const MAX_REQUEST_LINE: usize = 8190;
pub(crate) const MAX_REQUEST_FIELDS: usize = 32768;
pub(crate) const DEFAULT_FIELD_SIZE: usize = 8190;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// 0 = none of ours.
    pub line: usize,
    pub fields: usize,
    pub field_size: usize,
}

impl Limits {
    /// Applies gunicorn's clamps (1.15 of the spec).
    pub(crate) fn new(line: usize, fields: usize, field_size: usize) -> Limits {
        Limits {
            line: line.min(MAX_REQUEST_LINE),
            fields: if fields == 0 || fields > MAX_REQUEST_FIELDS {
                MAX_REQUEST_FIELDS
            } else {
                fields
            },
            field_size: if field_size == 0 {
                DEFAULT_FIELD_SIZE
            } else {
                field_size
            },
        }
    }

    /// hyper must buffer a whole head that passes our limits, so it can hand it to us; above
    /// 1 MiB hyper's own 431 applies (gunicorn's C parser has a similar cap).
    pub(crate) fn hyper_buf_size(&self) -> usize {
        let line = if self.line == 0 {
            MAX_REQUEST_LINE
        } else {
            self.line
        };
        (line + self.fields.saturating_mul(self.field_size) + 4096).clamp(16 * 1024, 1 << 20)
    }

    /// The error answer for a request over a limit, if it is.
    pub(crate) fn check<B>(&self, req: &Request<B>) -> Option<Response<ResponseBody>> {
        if self.line > 0 {
            let target_len = req
                .uri()
                .path_and_query()
                .filter(|_| req.uri().scheme().is_none())
                .map_or_else(|| req.uri().to_string().len(), |pq| pq.as_str().len());
            let line = req.method().as_str().len() + 1 + target_len + 1 + "HTTP/1.1".len();
            if line > self.line {
                return Some(error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("Request Line is too large ({line} > {})", self.line),
                ));
            }
        }
        if req.headers().len() > self.fields {
            return Some(error_page(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Too many header fields",
            ));
        }
        for (name, value) in req.headers() {
            let size = name.as_str().len() + 2 + value.len() + 2;
            if size > self.field_size {
                return Some(error_page(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    &format!(
                        "Request Header Field is too large ({size} > {})",
                        self.field_size
                    ),
                ));
            }
        }
        None
    }
}

/// RFC 9112's rules on a request message that hyper does not enforce: the Host header
/// (§3.2: missing on HTTP/1.1, repeated, or not `host[:port]` -> 400), the transfer codings (only
/// a single `chunked` is understood: `chunked` twice -> 400, any other coding -> 501, §6.1), and
/// the request-target forms (§3.2.3: authority-form only with CONNECT, asterisk-form only with
/// OPTIONS -> 400). The answer closes the connection.
pub(crate) fn check_message<B>(req: &Request<B>) -> Option<Response<ResponseBody>> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == http::Version::HTTP_11 => {
            return Some(error_page(StatusCode::BAD_REQUEST, "Missing Host header"));
        }
        (Some(host), None) if !valid_host(host.as_bytes()) => {
            return Some(error_page(StatusCode::BAD_REQUEST, "Invalid Host header"));
        }
        (Some(_), Some(_)) => {
            return Some(error_page(StatusCode::BAD_REQUEST, "Duplicate Host header"));
        }
        _ => {}
    }
    let te = req.headers().get_all(header::TRANSFER_ENCODING);
    let only_chunked = || {
        let mut values = te.iter();
        matches!((values.next(), values.next()), (Some(v), None)
            if v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"))
    };
    if te.iter().next().is_some() && !only_chunked() {
        let codings: Vec<String> = te
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|c| String::from_utf8_lossy(c.trim_ascii()).to_ascii_lowercase())
            .collect();
        if codings.iter().filter(|c| *c == "chunked").count() > 1 {
            return Some(error_page(
                StatusCode::BAD_REQUEST,
                "Invalid Transfer-Encoding: chunked is applied more than once",
            ));
        }
        return Some(error_page(
            StatusCode::NOT_IMPLEMENTED,
            "Unsupported transfer coding: only chunked is understood",
        ));
    }
    let uri = req.uri();
    if uri.scheme().is_none() && uri.authority().is_some() && req.method() != http::Method::CONNECT
    {
        return Some(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request target: the authority form is for CONNECT only",
        ));
    }
    if uri.path() == "*" && req.method() != http::Method::OPTIONS {
        return Some(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request target: * is for OPTIONS only",
        ));
    }
    None
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is allowed (a target
/// without authority).
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        let ok = std::str::from_utf8(literal).is_ok_and(|l| {
            l.parse::<std::net::Ipv6Addr>().is_ok()
                || (l.starts_with(['v', 'V'])
                    && l.len() > 1
                    && l.bytes().all(|b| reg_name_byte(b) || b == b':'))
        });
        if !ok {
            return false;
        }
        match &value[end + 1..] {
            [] => (&[][..], None),
            [b':', port @ ..] => (&[][..], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    let mut i = 0;
    while i < host.len() {
        if host[i] == b'%' {
            if !(host.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && host.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        if !reg_name_byte(host[i]) {
            return false;
        }
        i += 1;
    }
    port_ok
}

/// unreserved / sub-delims of RFC 3986.
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// gunicorn's small HTML error page, with Connection: close.
pub(crate) fn error_page(status: StatusCode, reason: &str) -> Response<ResponseBody> {
    let title = status.canonical_reason().unwrap_or("Error");
    let reason = reason.replace('&', "&amp;").replace('<', "&lt;");
    let body = format!(
        "<html>\n  <head>\n    <title>{title}</title>\n  </head>\n  <body>\n    \
         <h1><p>{title}</p></h1>\n    {reason}\n  </body>\n</html>\n"
    );
    let mut resp = Response::new(full_body(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// `--forwarded-allow-ips`: addresses and CIDR blocks, or `*` for everyone. Default
/// `127.0.0.1,::1`. Unix-socket peers are always trusted (as gunicorn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    any: bool,
    nets: Vec<(IpAddr, u8)>,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        TrustedProxies {
            any: false,
            nets: vec![
                (IpAddr::from([127, 0, 0, 1]), 32),
                (IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]), 128),
            ],
        }
    }
}

impl FromStr for TrustedProxies {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut out = TrustedProxies {
            any: false,
            nets: Vec::new(),
        };
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || Error::BadTrustedProxy {
                entry: entry.to_owned(),
            };
            if entry == "*" {
                out.any = true;
                continue;
            }
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
                None => (entry, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                return Err(bad());
            }
            out.nets.push((ip, bits));
        }
        Ok(out)
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self
            .nets
            .iter()
            .map(|(ip, bits)| {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if *bits == max {
                    ip.to_string()
                } else {
                    format!("{ip}/{bits}")
                }
            })
            .collect();
        if self.any {
            parts.insert(0, "*".to_owned());
        }
        f.write_str(&parts.join(","))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl TrustedProxies {
    /// Whether a peer at `ip` may set X-Forwarded-For / X-Forwarded-Proto (`*` trusts every peer).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.any || self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }
}

/// Who the server believes the client is, in the request extensions next to the `SocketAddr`
/// (which holds the believed client address; port 0 when it came from X-Forwarded-For).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The TCP peer (the load balancer when proxied); `None` on a unix socket.
    pub peer: Option<SocketAddr>,
    /// The client address: from X-Forwarded-For when the peer is trusted, else the peer's.
    pub client: Option<IpAddr>,
    /// X-Forwarded-Proto: https (or X-Forwarded-Ssl: on) from a trusted peer.
    pub https: bool,
}

fn header_str<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
}

/// Drops `_` headers and works out the client; an `Err` is the reason for a 400 (scheme headers
/// that disagree).
pub(crate) fn resolve_client<B>(
    req: &mut Request<B>,
    peer: Option<SocketAddr>,
    trusted: &TrustedProxies,
) -> Result<ClientInfo, &'static str> {
    let underscored: Vec<_> = req
        .headers()
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .cloned()
        .collect();
    for name in underscored {
        req.headers_mut().remove(name);
    }
    let mut info = ClientInfo {
        peer,
        client: peer.map(|p| p.ip()),
        https: false,
    };
    let believed = peer.is_none_or(|p| trusted.trusts(p.ip()));
    if !believed {
        return Ok(info);
    }
    let proto = header_str(req, "x-forwarded-proto").map(|v| v == "https");
    let ssl = header_str(req, "x-forwarded-ssl").map(|v| v == "on");
    if let (Some(a), Some(b)) = (proto, ssl)
        && a != b
    {
        return Err("Contradictory scheme headers");
    }
    info.https = proto.or(ssl).unwrap_or(false);
    if let Some(xff) = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        // Right to left: the nearest hop that is not one of our proxies is the client.
        let mut client = info.client;
        for hop in xff.rsplit(',').map(str::trim) {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = Some(ip);
            if !trusted.trusts(ip) {
                break;
            }
        }
        info.client = client;
    }
    Ok(info)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(line_target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(line_target);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn request_line_and_header_boundaries() {
        let l = Limits::new(4094, 100, 8190);
        // "GET " + target + " HTTP/1.1" = 13 + target
        let ok = format!("/{}", "a".repeat(4094 - 13 - 1));
        assert!(l.check(&req(&ok, &[])).is_none());
        let over = format!("/{}", "a".repeat(4094 - 13));
        assert_eq!(
            l.check(&req(&over, &[])).unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        // "X-Long: " + value + CRLF
        let v = "v".repeat(8190 - 8 - 2);
        assert!(l.check(&req("/", &[("x-long", &v)])).is_none());
        let v = "v".repeat(8190 - 8 - 1);
        assert_eq!(
            l.check(&req("/", &[("x-long", &v)])).unwrap().status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(Limits::new(0, 0, 0), Limits::new(0, 40000, 8190));
        assert_eq!(Limits::new(99999, 1, 1).line, 8190);
    }

    #[test]
    fn host_values_follow_the_uri_grammar() {
        for ok in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
            "",
            "a-b_c~d.e%41",
            "host:",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "exa mple.com",
            "a/b",
            "user@host",
            "host:port",
            "a:b:c",
            "[::1",
            "[zz]",
            "[::1]x",
            "h%4",
            "host:123456",
            "\"q\"",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn message_rules_hyper_does_not_enforce() {
        let status = |r: Request<()>| check_message(&r).map(|resp| resp.status());
        let get = |target: &str| Request::builder().uri(target).header("host", "h");
        assert_eq!(status(get("/").body(()).unwrap()), None);
        let no_host = Request::builder().uri("/").body(()).unwrap();
        assert_eq!(status(no_host), Some(StatusCode::BAD_REQUEST));
        let old = Request::builder()
            .uri("/")
            .version(http::Version::HTTP_10)
            .body(())
            .unwrap();
        assert_eq!(status(old), None);
        let two = get("/").header("host", "h").body(()).unwrap();
        assert_eq!(status(two), Some(StatusCode::BAD_REQUEST));
        let te = |v: &str| get("/").header("transfer-encoding", v).body(()).unwrap();
        assert_eq!(status(te("chunked")), None);
        assert_eq!(status(te("Chunked")), None);
        assert_eq!(
            status(te("chunked, chunked")),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(te("gzip, chunked")),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(
            status(get("example.com:80").body(()).unwrap()),
            Some(StatusCode::BAD_REQUEST)
        );
        let connect = get("example.com:443")
            .method(http::Method::CONNECT)
            .body(())
            .unwrap();
        assert_eq!(status(connect), None);
        assert_eq!(
            status(get("*").body(()).unwrap()),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(status(get("http://h/x").body(()).unwrap()), None);
    }

    #[test]
    fn trusted_proxies_parse_and_match() {
        let t: TrustedProxies = "10.0.0.0/8, ::1, 192.168.1.5".parse().unwrap();
        assert!(t.trusts("10.20.30.40".parse().unwrap()));
        assert!(t.trusts("::ffff:10.1.1.1".parse().unwrap()));
        assert!(t.trusts("::1".parse().unwrap()));
        assert!(!t.trusts("11.0.0.1".parse().unwrap()));
        assert!(!t.trusts("127.0.0.1".parse().unwrap()));
        assert!(
            "*".parse::<TrustedProxies>()
                .unwrap()
                .trusts("8.8.8.8".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("banana".parse::<TrustedProxies>().is_err());
        assert_eq!(TrustedProxies::default().to_string(), "127.0.0.1,::1");
        assert!(TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_headers_only_from_trusted_peers() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut r = req(
            "/",
            &[
                ("x-forwarded-for", "203.0.113.9, 127.0.0.1"),
                ("x-forwarded-proto", "https"),
                ("x_forwarded_for", "6.6.6.6"),
            ],
        );
        let info = resolve_client(&mut r, Some(peer), &TrustedProxies::default()).unwrap();
        assert_eq!(info.client, Some("203.0.113.9".parse().unwrap()));
        assert!(info.https);
        assert!(r.headers().get("x_forwarded_for").is_none());

        let stranger: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let mut r = req("/", &[("x-forwarded-for", "203.0.113.9")]);
        let info = resolve_client(&mut r, Some(stranger), &TrustedProxies::default()).unwrap();
        assert_eq!(info.client, Some(stranger.ip()));

        let mut r = req(
            "/",
            &[("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")],
        );
        let e = resolve_client(&mut r, Some(peer), &TrustedProxies::default()).unwrap_err();
        assert_eq!(e, "Contradictory scheme headers");
    }
}
