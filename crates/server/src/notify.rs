//! sd_notify: one datagram per message to systemd's NOTIFY_SOCKET (a path, or `@name` in the
//! abstract namespace). Errors are ignored (logged at debug), as systemd's own client does: a
//! missing notify socket must never stop the server.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

pub(crate) struct Notifier {
    target: Option<PathBuf>,
    sock: Option<UnixDatagram>,
}

impl Notifier {
    pub(crate) fn new(target: Option<PathBuf>) -> Notifier {
        let sock = target.as_ref().and_then(|_| UnixDatagram::unbound().ok());
        Notifier { target, sock }
    }

    /// Sends `msg` (newline-separated `KEY=value` lines); returns the error text if it failed.
    pub(crate) fn send(&self, msg: &str) -> Result<(), String> {
        let (Some(sock), Some(target)) = (&self.sock, &self.target) else {
            return Ok(());
        };
        let text = target.to_string_lossy();
        let res = if let Some(name) = text.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| sock.send_to_addr(msg.as_bytes(), &addr))
        } else {
            sock.send_to(msg.as_bytes(), target)
        };
        res.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// `MONOTONIC_USEC=` for RELOADING=1 (systemd wants it with Type=notify-reload).
pub(crate) fn monotonic_usec() -> u128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| std::time::Duration::from(t).as_micros())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_and_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path));
        n.send("READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("prefork-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(Some(PathBuf::from(format!("@{name}"))))
            .send("WATCHDOG=1")
            .unwrap();
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        assert!(Notifier::new(None).send("READY=1").is_ok());
    }
}
