//! Reading request bodies within the configured size limit: JSON and multipart uploads.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};

use crate::ApiError;

/// Where a body goes once it no longer fits in memory, and how much memory bodies may hold.
#[derive(Debug, Clone)]
pub struct Spool {
    pub store: mrpt_session::Store,
    /// The session the request names, if it names a valid one (its staging area holds the
    /// spool file).
    pub session: Option<mrpt_session::SessionId>,
    /// Bytes of this body kept in memory before it spools.
    pub per_body: u64,
    /// Bytes of unfinished bodies held in memory by this worker, all requests together...
    pub held: Arc<AtomicU64>,
    /// ...and the most they may hold.
    pub max_held: u64,
}

/// A share of the worker's body-memory budget, given back when dropped (also when the request
/// is abandoned mid-body).
struct Reservation<'a> {
    held: &'a AtomicU64,
    bytes: u64,
}

impl Reservation<'_> {
    /// Takes `n` more bytes if the budget allows.
    fn grow(&mut self, n: u64, max: u64) -> bool {
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|&next| next <= max)
            })
            .is_ok();
        if taken {
            self.bytes += n;
        }
        taken
    }

    fn release(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Collect the whole body, refusing (413) anything over `limit` bytes before storing a byte.
/// While it arrives, at most `spool.per_body` bytes of it are held in memory, and only while the
/// worker's budget (`spool.max_held`, all unfinished bodies together) allows; past that the body
/// goes to a spool file on disk, chunk by chunk, and is read back once complete. So clients that
/// send large bodies slowly cost disk, not memory.
pub async fn collect<B>(
    headers: &HeaderMap,
    body: B,
    limit: u64,
    spool: &Spool,
) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {}; nothing was stored",
            describe_bytes(limit)
        ))
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(too_large());
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = std::pin::pin!(Limited::new(body, limit_usize));
    let mut reservation = Reservation {
        held: &spool.held,
        bytes: 0,
    };
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut file: Option<std::fs::File> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else {
                ApiError::BadRequest(format!("the request body could not be read: {err}"))
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let n = data.len() as u64;
        total += n;
        if file.is_none()
            && reservation.bytes + n <= spool.per_body
            && reservation.grow(n, spool.max_held)
        {
            chunks.push(data);
            continue;
        }
        let mut pending = std::mem::take(&mut chunks);
        pending.push(data);
        let target = file.take();
        let (store, session) = (spool.store.clone(), spool.session.clone());
        file = Some(
            crate::blocking(move || {
                let mut f = match target {
                    Some(f) => f,
                    None => store.spool(session.as_ref())?,
                };
                for chunk in pending {
                    f.write_all(&chunk)
                        .map_err(|e| ApiError::internal(format!("writing a spool file: {e}")))?;
                }
                Ok(f)
            })
            .await?,
        );
        reservation.release();
    }
    match file {
        None if chunks.len() == 1 => Ok(chunks.remove(0)),
        None => {
            let mut all = BytesMut::with_capacity(total as usize);
            for c in chunks {
                all.extend_from_slice(&c);
            }
            Ok(all.freeze())
        }
        Some(mut f) => {
            drop(reservation);
            crate::blocking(move || {
                let mut all = Vec::with_capacity(total as usize);
                f.rewind()
                    .and_then(|()| f.read_to_end(&mut all))
                    .map_err(|e| ApiError::internal(format!("reading a spool file back: {e}")))?;
                Ok(Bytes::from(all))
            })
            .await
        }
    }
}

/// "32 MiB", "1 MiB", "4096 bytes".
fn describe_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Parse a JSON body; an empty body counts as `{}` so optional-field routes accept a bare POST.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    serde_json::from_slice(text)
        .map_err(|err| ApiError::BadRequest(format!("the JSON body is not valid: {err}")))
}

/// One uploaded file of a multipart form.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub file_name: String,
    pub bytes: Bytes,
}

/// The files and text fields of a multipart/form-data body.
#[derive(Debug, Default)]
pub struct Form {
    pub files: HashMap<String, UploadedFile>,
    pub fields: HashMap<String, String>,
}

/// Parse an already size-checked multipart body.
pub async fn multipart(headers: &HeaderMap, body: Bytes) -> Result<Form, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::UnsupportedMediaType(
            "uploads must be sent as multipart/form-data with a boundary".to_string(),
        )
    })?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    loop {
        let field = match parts.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => {
                return Err(ApiError::BadRequest(format!(
                    "the multipart body is malformed: {err}"
                )));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|err| {
            ApiError::BadRequest(format!("the multipart field '{name}' is malformed: {err}"))
        })?;
        match file_name {
            Some(file_name) => {
                form.files.insert(name, UploadedFile { file_name, bytes });
            }
            None => {
                form.fields
                    .insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    Ok(form)
}
