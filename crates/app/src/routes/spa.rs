//! Another UI in place of the built-in page (`--ui-dir DIR`, config `app.ui_dir`): a built
//! single-page app such as ChatMRPT's React client (Vite's `dist/`), served from the same
//! origin as the API: `DIR/index.html` at `/`, `DIR/assets/*` at `/assets/*`, and the other
//! files of `DIR`'s top level (`favicon.ico`, `vite.svg`...) at `/<name>`. Files are read from
//! disk on each request (a rebuilt bundle shows at once); names are checked, never joined
//! blindly: one plain component per path segment, no dot files, no `..`.

use std::path::{Path, PathBuf};

use http::{HeaderValue, Response, StatusCode, header};

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, reply};

/// The policy such a bundle runs under (README, "ChatMRPT's React client"): its own scripts
/// (a Vite build has no inline script), inline styles (its components set them), images from
/// itself, `data:` and `blob:`, connections and frames to this origin only.
pub const SPA_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-src 'self'; \
     worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// `rel` under `root`, if every segment is a plain name (no `..`, no dot file, no empty
/// segment, no backslash).
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for segment in rel.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && !segment.contains('\\')
            && !segment.contains('\0');
        if !plain {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

async fn serve(
    path: PathBuf,
    name: String,
    immutable: bool,
) -> Result<Response<ResponseBody>, ApiError> {
    let not_found = format!("no file {name:?} in the UI bundle");
    let bytes = blocking(move || match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => std::fs::read(&path)
            .map_err(|e| ApiError::internal(format!("read {}: {e}", path.display()))),
        _ => Err(ApiError::NotFound(not_found)),
    })
    .await?;
    let mut response = Response::new(reply::full(bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SPA_CSP),
    );
    // Vite names assets by their content hash: they never change under a name.
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

/// `GET /` with `ui_dir` set.
pub async fn index(dir: &Path) -> Result<Response<ResponseBody>, ApiError> {
    serve(dir.join("index.html"), "index.html".to_string(), false).await
}

/// `GET /assets/{*file}`.
pub async fn asset(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let Some(dir) = app.config.ui_dir.clone() else {
        return Err(ApiError::NotFound(
            "no UI bundle is configured (--ui-dir); the built-in page's files are under /static/"
                .to_string(),
        ));
    };
    let rel = req.param(0).to_string();
    let path = safe_join(&dir.join("assets"), &rel)
        .ok_or_else(|| ApiError::NotFound(format!("no file {rel:?} in the UI bundle")))?;
    serve(path, rel, true).await
}

/// A top-level file of the bundle (`/favicon.ico`, `/vite.svg`), for a GET no route matched.
pub async fn top_level(dir: &Path, name: &str) -> Option<Response<ResponseBody>> {
    if name.contains('/') || name == "index.html" {
        return None;
    }
    let path = safe_join(dir, name)?;
    serve(path, name.to_string(), false).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_joined() {
        let root = Path::new("/srv/ui/assets");
        assert_eq!(
            safe_join(root, "index-3f2a.js"),
            Some(root.join("index-3f2a.js"))
        );
        assert_eq!(
            safe_join(root, "img/logo.svg"),
            Some(root.join("img/logo.svg"))
        );
        for bad in ["../secret", "a/../../b", ".env", "a//b", "", "a\\..\\b"] {
            assert_eq!(safe_join(root, bad), None, "{bad}");
        }
    }
}
