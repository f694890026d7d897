//! SCEP errors, each mapped to the failInfo a CertRep reports (RFC 8894 §3.2.1.4.5).

use thiserror::Error;

/// failInfo values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg = 0,
    BadMessageCheck = 1,
    BadRequest = 2,
    BadTime = 3,
    BadCertId = 4,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScepError {
    /// The bytes are not a SCEP message at all: no CertRep can be addressed (HTTP 400).
    #[error("not a SCEP message: {0}")]
    Unreadable(String),
    #[error("unsupported algorithm: {0}")]
    BadAlg(String),
    #[error("the message's signature or digest does not verify: {0}")]
    BadMessageCheck(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the message's signing time is too far from now: {0}")]
    BadTime(String),
    #[error("cannot build the response: {0}")]
    Build(String),
}

impl ScepError {
    /// The failInfo a CertRep reports for this error.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            ScepError::BadAlg(_) => FailInfo::BadAlg,
            ScepError::BadMessageCheck(_) => FailInfo::BadMessageCheck,
            ScepError::BadTime(_) => FailInfo::BadTime,
            _ => FailInfo::BadRequest,
        }
    }
}
