//! A real S3-compatible server for the tests: `moto_server` (Python, moto 5.2: PutObject
//! `If-None-Match: *` and `If-Match`) on a free loopback port, in its own process group, killed
//! on drop. Found as `target/moto-venv/bin/moto_server`, else on `PATH`; when neither runs, the
//! harness creates the venv and `pip install "moto[server]"` into it (about two minutes, once).

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prefork_loadgen::http::{self, Request, Timeouts};

use super::poll_until;

pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv")
}

fn runs(program: &PathBuf) -> bool {
    Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `moto_server` program, installing it once per test process if needed.
pub fn moto_server() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    static INSTALL: Mutex<()> = Mutex::new(());
    FOUND
        .get_or_init(|| {
            let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
            let local = venv().join("bin/moto_server");
            if runs(&local) {
                return local;
            }
            let on_path = PathBuf::from("moto_server");
            if runs(&on_path) {
                return on_path;
            }
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(venv())
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv().join("bin/pip"))
                    .args(["install", "--quiet", "moto[server]"])
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(
                ok && runs(&local),
                "could not install moto[server] into {}",
                venv().display()
            );
            local
        })
        .clone()
}

impl Moto {
    /// Starts a server and creates `bucket` in it.
    pub fn start(bucket: &str) -> Moto {
        let program = moto_server();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let moto = Moto {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let created = poll_until(Duration::from_secs(60), || {
            // Creates the bucket with the workspace's one HTTP/1.1 client.
            let path = format!("/{bucket}");
            let timeouts = Timeouts {
                connect: Duration::from_secs(2),
                io: Duration::from_secs(10),
            };
            let reply = http::send(moto.addr, &Request::new("PUT", &path), timeouts).ok()?;
            (reply.status == 200).then_some(())
        });
        assert!(
            created.is_some(),
            "moto_server did not answer on port {port}"
        );
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `AWS_*` settings of a client of this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}
