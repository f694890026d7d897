//! The one error type of the PKI crate: each variant names what was wrong with which input.

use thiserror::Error;

/// Errors from PKI operations. The message is fit for an administrator; no secret is included.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("unknown key type `{0}` (expected rsa-2048, rsa-3072, rsa-4096, ec-p256 or ec-p384)")]
    UnknownKeyType(String),
    #[error("key generation failed for {0}")]
    KeyGeneration(&'static str),
    #[error("stored private key cannot be loaded: {0}")]
    BadPrivateKey(String),
    #[error("invalid distinguished name `{dn}`: {why}")]
    InvalidDn { dn: String, why: String },
    #[error("invalid template `{template}`: {why}")]
    InvalidTemplate { template: String, why: String },
    #[error("lookup value `{{{0}}}` has no value for this device")]
    MissingLookupValue(String),
    #[error("invalid subject alternative name `{0}`: {1}")]
    InvalidSan(String, String),
    #[error("the input is not a {what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("the certificate signing request's signature does not verify: the CSR was altered or not signed by its key")]
    CsrSignature,
    #[error("the CSR's public key is not supported: {0}")]
    UnsupportedPublicKey(String),
    #[error(
        "invalid serial number `{0}`: expected hexadecimal digits, optionally separated by colons"
    )]
    InvalidSerial(String),
    #[error("certificate building failed: {0}")]
    Build(String),
    #[error(
        "the master key cannot decrypt this secret (wrong master key, or the data was altered)"
    )]
    Unseal,
    #[error("sealing failed")]
    Seal,
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    #[error("PKCS#12 creation failed: {0}")]
    Pkcs12(String),
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Build(e.to_string())
    }
}
