//! SCEP (RFC 8894) messages over CMS, free of I/O: reading a PKIOperation request (verify the
//! requester's signature, decrypt the pkcsPKIEnvelope, find the CSR and challenge) and writing
//! the CertRep answer (the issued certificate encrypted to the requester, signed by the CA or
//! its RA). No SCEP crate exists; this builds on `cms` (decoding), `yasna` (encoding) and
//! aws-lc-rs (RSA, DES/3DES/AES) — not the `rsa` crate's private-key operations
//! (RUSTSEC-2023-0071).

mod crypto;
mod error;
pub mod request;
pub mod response;
mod signed;

pub use crypto::{Cipher, SignatureScheme};
pub use error::{FailInfo, ScepError};
pub use request::{MessageType, PkiMessage};
pub use response::{certs_only, CertRep, Signer};

/// GetCACaps: what easgate offers, one capability per line (RFC 8894 §3.5.2).
pub const CAPABILITIES: &[&str] = &[
    "POSTPKIOperation",
    "SHA-512",
    "SHA-256",
    "SHA-1",
    "AES",
    "DES3",
    "SCEPStandard",
    "Renewal",
];

/// The GetCACaps body.
pub fn capabilities_text() -> String {
    let mut text = CAPABILITIES.join("\n");
    text.push('\n');
    text
}

/// The SCEP attribute OIDs (id-VeriSign 2.16.840.1.113733.1.9.*).
pub(crate) mod oid {
    pub const MESSAGE_TYPE: &str = "2.16.840.1.113733.1.9.2";
    pub const PKI_STATUS: &str = "2.16.840.1.113733.1.9.3";
    pub const FAIL_INFO: &str = "2.16.840.1.113733.1.9.4";
    pub const SENDER_NONCE: &str = "2.16.840.1.113733.1.9.5";
    pub const RECIPIENT_NONCE: &str = "2.16.840.1.113733.1.9.6";
    pub const TRANSACTION_ID: &str = "2.16.840.1.113733.1.9.7";
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    pub const CHALLENGE_PASSWORD: &str = "1.2.840.113549.1.9.7";
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    pub const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const RSA: &str = "1.2.840.113549.1.1.1";
    pub const SHA1_RSA: &str = "1.2.840.113549.1.1.5";
    pub const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA512_RSA: &str = "1.2.840.113549.1.1.13";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const MGF1: &str = "1.2.840.113549.1.1.8";
    pub const DES_CBC: &str = "1.3.14.3.2.7";
    pub const DES_EDE3_CBC: &str = "1.2.840.113549.3.7";
    pub const AES128_CBC: &str = "2.16.840.1.101.3.4.1.2";
    pub const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";

    /// Dotted text to yasna's form.
    pub fn parts(dotted: &str) -> Vec<u64> {
        dotted.split('.').filter_map(|p| p.parse().ok()).collect()
    }
}
