//! mrpt-app: the HTTP routes, the workflows that join the crates, the web UI assets, and the one
//! ApiError -> response mapping.
//!
//! Must not depend on the server crate: it speaks plain `http` types, so the binary can hand it to
//! any server (and tests can call it without a socket). Every request derives session state from
//! disk through `mrpt-session`; nothing about a session is kept in this process between requests.

mod error;
mod reply;

use std::path::PathBuf;

use bytes::Bytes;
use http::{Method, Request, Response};

pub use error::ApiError;
pub use reply::ResponseBody;

/// What the app needs to know, from the binary's configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The `instance/` folder (sessions live in `uploads/` below it).
    pub instance_dir: PathBuf,
    /// Largest request body accepted (uploads included); larger ones get 413 and store nothing.
    pub max_upload_bytes: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            instance_dir: PathBuf::from("instance"),
            max_upload_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Failures that stop the app from starting in a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot prepare the instance directory {path}: {source}")]
    InstanceDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The service: one per worker process, built after fork.
#[derive(Debug, Clone)]
pub struct App {
    config: AppConfig,
}

impl App {
    pub fn new(config: AppConfig) -> Result<Self, Error> {
        let uploads = config.instance_dir.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(|source| Error::InstanceDir {
            path: uploads.clone(),
            source,
        })?;
        Ok(App { config })
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Answer one request. Never fails: every error becomes a JSON answer here.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        match self.route(req).await {
            Ok(response) => response,
            Err(err) => {
                if let ApiError::Internal { context } = &err {
                    tracing::error!(%method, %path, "request failed: {context}");
                }
                reply::error(&err)
            }
        }
    }

    async fn route<B>(&self, req: Request<B>) -> Result<Response<ResponseBody>, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let segments: Vec<&str> = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .collect();
        match (req.method(), segments.as_slice()) {
            (&Method::GET, ["ping"]) | (&Method::HEAD, ["ping"]) => {
                Ok(reply::json(http::StatusCode::OK, &serde_json::json!({"status": "ok"})))
            }
            _ => Err(ApiError::NotFound(format!(
                "no route for {} {}",
                req.method(),
                req.uri().path()
            ))),
        }
    }
}
