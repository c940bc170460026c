//! Reading request bodies within the configured size limit: JSON and multipart uploads.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};

use crate::ApiError;

/// Collect the whole body, refusing (413) anything over `limit` bytes before storing a byte.
pub async fn collect<B>(headers: &HeaderMap, body: B, limit: u64) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {} MiB; nothing was stored",
            limit / (1024 * 1024)
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
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large())
            } else {
                Err(ApiError::BadRequest(format!(
                    "the request body could not be read: {err}"
                )))
            }
        }
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
