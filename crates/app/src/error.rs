//! The one mapping from failures to HTTP answers (house rule 4): input errors echo their reason,
//! internal errors are logged with their context and answered generically.

use http::StatusCode;

/// Every way a request can fail, by the status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A known path, another method; `allow` is the `Allow` header's value.
    #[error("{message}")]
    MethodNotAllowed { message: String, allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The configured session store cannot do this (the message says what to do instead).
    #[error("{0}")]
    NotImplemented(String),
    /// Temporarily unable (another worker holds the session's analysis); retry shortly.
    #[error("{0}")]
    Unavailable(String),
    /// Something on our side failed; `context` goes to the log, never to the client.
    #[error("internal error: {context}")]
    Internal { context: String },
}

impl ApiError {
    pub fn internal(context: impl std::fmt::Display) -> Self {
        ApiError::Internal {
            context: context.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal { .. } => {
                "The server failed while handling this request; it has been logged. Please try again."
                    .to_string()
            }
            other => other.to_string(),
        }
    }
}

impl From<mrpt_session::Error> for ApiError {
    fn from(err: mrpt_session::Error) -> Self {
        use mrpt_session::Error as E;
        let message = err.to_string();
        match err {
            E::MalformedSessionId | E::UnsafePath { .. } | E::BadChunk(_) => {
                ApiError::BadRequest(message)
            }
            E::TooLarge(_) => ApiError::PayloadTooLarge(message),
            E::IncompleteUpload(_) => ApiError::Conflict(message),
            E::SessionNotFound(_) => ApiError::NotFound(format!(
                "{message}: it may have been removed after a long idle time; start a new one with POST /api/session (or upload your data again from the page)"
            )),
            E::ArtifactNotFound(_) => ApiError::NotFound(message),
            E::NoData(_) | E::NoAnalysis(_) | E::Superseded { .. } | E::StaleAnalysis { .. } => {
                ApiError::Conflict(message)
            }
            E::Busy(_) => ApiError::Unavailable(message),
            E::Unsupported(_) => ApiError::NotImplemented(message),
            E::IncompleteAnalysis
            | E::WrongArtifactKind { .. }
            | E::Io { .. }
            | E::Manifest { .. }
            | E::Tampered { .. }
            | E::Entropy(_) => ApiError::internal(message),
        }
    }
}

impl From<crate::pipeline::PipelineError> for ApiError {
    fn from(err: crate::pipeline::PipelineError) -> Self {
        use crate::pipeline::PipelineError;
        match err {
            PipelineError::Input(m) => ApiError::BadRequest(m),
            PipelineError::UnsupportedType(m) => ApiError::UnsupportedMediaType(m),
            PipelineError::Unprocessable(m) => ApiError::Unprocessable(m),
            PipelineError::Internal(m) => ApiError::internal(m),
        }
    }
}
