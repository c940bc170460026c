//! Bind addresses (gunicorn's syntax) and the listening sockets the master creates before it forks.

use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::Error;
use crate::logging::Logger;

/// `HOST:PORT`, `[V6]:PORT`, `tcp://HOST:PORT`, a bare `HOST` (port 8000), `unix:PATH`
/// (or `unix://PATH`), `fd://N` (an already listening socket inherited from the parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// `host:port` as written; resolved at bind time.
    Tcp(String),
    /// `unix:PATH` (or `unix://PATH`): a unix stream socket at PATH.
    Unix(PathBuf),
    /// `fd://N`: descriptor N, already bound and listening, inherited from the parent.
    Fd(i32),
}

impl FromStr for BindAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadBindAddr {
            addr: s.to_owned(),
            reason: reason.to_owned(),
        };
        let s_trim = s.trim();
        if let Some(path) = s_trim
            .strip_prefix("unix://")
            .or_else(|| s_trim.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(bad("empty unix socket path"));
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        if let Some(n) = s_trim.strip_prefix("fd://") {
            return n
                .parse::<i32>()
                .ok()
                .filter(|fd| *fd >= 0)
                .map(BindAddr::Fd)
                .ok_or_else(|| bad("fd:// needs a non-negative file descriptor number"));
        }
        let hostport = s_trim.strip_prefix("tcp://").unwrap_or(s_trim);
        if hostport.is_empty() {
            return Ok(BindAddr::Tcp("0.0.0.0:8000".to_owned()));
        }
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            match after.strip_prefix(':') {
                Some(port) => (format!("[{host}]"), port),
                None if after.is_empty() => (format!("[{host}]"), "8000"),
                None => return Err(bad("expected ':PORT' after ']'")),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port),
                None => (hostport.to_owned(), "8000"),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad("invalid host"));
        }
        if host.contains(':') && !host.starts_with('[') {
            return Err(bad("an IPv6 address needs brackets: [ADDR]:PORT"));
        }
        let port: u16 = port.parse().map_err(|_| bad("port must be 0-65535"))?;
        Ok(BindAddr::Tcp(format!("{host}:{port}")))
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(hp) => f.write_str(hp),
            BindAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            BindAddr::Fd(n) => write!(f, "fd://{n}"),
        }
    }
}

/// A bound, listening, non-blocking socket. The master keeps one copy; each worker inherits one.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The path is unlinked when the master stops, unless the socket was inherited.
    Unix(UnixListener, Option<PathBuf>),
}

impl Listener {
    /// What "Listening at:" prints: the real port after binding port 0.
    pub(crate) fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => format!("http://{addr}"),
                Err(_) => "http://?".to_owned(),
            },
            Listener::Unix(l, path) => match (path, l.local_addr()) {
                (Some(p), _) => format!("unix:{}", p.display()),
                (None, Ok(addr)) => match addr.as_pathname() {
                    Some(p) => format!("unix:{}", p.display()),
                    None => "unix:(unnamed)".to_owned(),
                },
                (None, Err(_)) => "unix:?".to_owned(),
            },
        }
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// Closes the master's copy; the unix socket file goes too, so new clients are refused.
    pub(crate) fn close_and_unlink(self) {
        if let Listener::Unix(_, Some(path)) = &self {
            let _ = std::fs::remove_file(path);
        }
    }
}

const BIND_ATTEMPTS: u32 = 5;

/// Binds every address, retrying an address in use like gunicorn (5 tries, 1 s apart).
pub(crate) fn bind_all(
    addrs: &[BindAddr],
    backlog: i32,
    log: &Logger,
) -> Result<Vec<Listener>, Error> {
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let mut attempt = 1;
        loop {
            match bind_one(addr, backlog) {
                Ok(l) => {
                    out.push(l);
                    break;
                }
                Err(Error::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse
                        && attempt < BIND_ATTEMPTS =>
                {
                    log.error(format!("Connection in use: {addr}"));
                    log.error("Retrying in 1 second.");
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

fn bind_one(addr: &BindAddr, backlog: i32) -> Result<Listener, Error> {
    let err = |source: std::io::Error| Error::Bind {
        addr: addr.to_string(),
        source,
    };
    match addr {
        BindAddr::Tcp(hostport) => {
            let sockaddr: SocketAddr = hostport
                .to_socket_addrs()
                .map_err(err)?
                .next()
                .ok_or_else(|| err(std::io::Error::other("host resolves to no address")))?;
            let socket =
                Socket::new(Domain::for_address(sockaddr), Type::STREAM, None).map_err(err)?;
            socket.set_reuse_address(true).map_err(err)?;
            socket.set_tcp_nodelay(true).map_err(err)?;
            socket.bind(&sockaddr.into()).map_err(err)?;
            socket.listen(backlog).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            Ok(Listener::Tcp(socket.into()))
        }
        BindAddr::Unix(path) => {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_socket() => {
                    // A stale socket from a previous run; a live server would own it, but gunicorn
                    // replaces it the same way and the pidfile guards against double starts.
                    std::fs::remove_file(path).map_err(err)?;
                }
                Ok(_) => {
                    return Err(err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "path exists and is not a socket",
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            }
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
            socket
                .bind(&SockAddr::unix(path).map_err(err)?)
                .map_err(err)?;
            socket.listen(backlog).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            Ok(Listener::Unix(socket.into(), Some(path.clone())))
        }
        BindAddr::Fd(n) => adopt_fd(*n).map_err(err),
    }
}

pub(crate) fn adopt_fd(n: i32) -> std::io::Result<Listener> {
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    if n < 0 {
        return Err(std::io::Error::from_raw_os_error(nix::libc::EBADF));
    }
    // SAFETY: the borrow lives only for this F_GETFD probe, which tolerates a closed number
    // (EBADF) and keeps nothing; it makes sure from_raw_fd below never wraps a closed number.
    let probe = unsafe { BorrowedFd::borrow_raw(n) };
    nix::fcntl::fcntl(probe, nix::fcntl::FcntlArg::F_GETFD).map_err(std::io::Error::from)?;
    // SAFETY: `fd://N` is the operator handing us ownership of descriptor N (open, checked
    // above); nothing else in this process owns it, and it is adopted exactly once at startup.
    let owned = unsafe { OwnedFd::from_raw_fd(n) };
    let socket = Socket::from(owned);
    if socket.r#type()? != Type::STREAM {
        return Err(std::io::Error::other("not a stream socket"));
    }
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    if local.is_unix() {
        Ok(Listener::Unix(socket.into(), None))
    } else {
        socket.set_tcp_nodelay(true)?;
        Ok(Listener::Tcp(socket.into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_gunicorn_bind_forms() {
        let p = |s: &str| s.parse::<BindAddr>();
        assert_eq!(
            p("127.0.0.1:0").unwrap(),
            BindAddr::Tcp("127.0.0.1:0".into())
        );
        assert_eq!(
            p("tcp://localhost:80").unwrap(),
            BindAddr::Tcp("localhost:80".into())
        );
        assert_eq!(p("[::1]:8080").unwrap(), BindAddr::Tcp("[::1]:8080".into()));
        assert_eq!(p("example").unwrap(), BindAddr::Tcp("example:8000".into()));
        assert_eq!(
            p("unix:/tmp/x.sock").unwrap(),
            BindAddr::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            p("unix://rel.sock").unwrap(),
            BindAddr::Unix("rel.sock".into())
        );
        assert_eq!(p("fd://3").unwrap(), BindAddr::Fd(3));
        assert!(p("127.0.0.1:99999").is_err());
        assert!(p("fd://x").is_err());
        assert!(p("unix:").is_err());
        assert!(p("[::1").is_err());
        assert!(p("::1:80").is_err());
        assert_eq!(p("unix:/a").unwrap().to_string(), "unix:/a");
    }

    #[test]
    fn binds_port_zero_and_reports_the_real_port() {
        let dir = tempfile::tempdir().unwrap();
        let log = Logger::open(
            &crate::LogTarget::File(dir.path().join("e.log")),
            None,
            crate::Level::Info,
        )
        .unwrap();
        let ls = bind_all(&[BindAddr::Tcp("127.0.0.1:0".into())], 16, &log).unwrap();
        let url = ls[0].url();
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
            "{url}"
        );
    }

    #[test]
    fn unix_socket_replaces_a_stale_socket_and_refuses_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        let l = bind_one(&BindAddr::Unix(path.clone()), 16).unwrap();
        assert_eq!(l.url(), format!("unix:{}", path.display()));
        l.close_and_unlink();
        assert!(!path.exists());
        std::fs::write(&path, "x").unwrap();
        assert!(bind_one(&BindAddr::Unix(path), 16).is_err());
    }
}
