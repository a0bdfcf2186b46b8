//! The one error type. Each variant maps one-to-one onto a C status code
//! (`vectord_status`), so the FFI layer never has to guess.

/// Every failure vectord reports. The message names the offending thing
/// (the index, the id, the item position, the byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("dimension mismatch: {0}")]
    DimensionMismatch(String),
    #[error("invalid vector: {0}")]
    InvalidVector(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A save or delete lost a race: the stored object changed since this
    /// process read or wrote it. The in-memory state is kept.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl Error {
    /// The C status code of this error (`VECTORD_STATUS_*`).
    pub fn status_code(&self) -> u32 {
        match self {
            Error::InvalidArgument(_) => 1,
            Error::NotFound(_) => 2,
            Error::AlreadyExists(_) => 3,
            Error::DimensionMismatch(_) => 4,
            Error::InvalidVector(_) => 5,
            Error::Corrupt(_) => 6,
            Error::Unsupported(_) => 7,
            Error::Storage(_) => 8,
            Error::Internal(_) => 9,
            Error::Conflict(_) => 10,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
