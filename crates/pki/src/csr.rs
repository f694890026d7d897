//! Certificate signing requests: parse, verify the self-signature, take the public key.
//!
//! Only the public key is used: the requested subject, SANs and extensions never reach the
//! certificate (the template decides), so the CSR's extensions are not interpreted at all —
//! which also means real clients' unusual CSR extensions are no reason to refuse them.

use x509_parser::prelude::FromDer;

use crate::input::pem_or_der;
use crate::issue::SubjectKey;
use crate::PkiError;

/// A verified CSR reduced to what issuance needs.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    /// The requested subject, shown for information only.
    pub requested_subject: String,
    /// The requested subject's first common name (SCEP with a CA's static challenge names the
    /// device by it).
    pub requested_common_name: Option<String>,
    pub key: SubjectKey,
}

/// Parse a CSR from PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER and verify
/// its signature.
pub fn parse_and_verify(bytes: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let der = pem_or_der(
        bytes,
        &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"],
        "certificate signing request",
    )?;
    parse_and_verify_der(&der)
}

/// The same for DER input (as SCEP carries it).
pub fn parse_and_verify_der(der: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let malformed = |why: String| PkiError::Malformed {
        what: "certificate signing request",
        why,
    };
    let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| malformed(format!("not a PKCS#10 request ({e})")))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after the request".into()));
    }
    let info = &csr.certification_request_info;
    // The key first: a weak key would otherwise surface as a confusing signature failure,
    // since the verifier refuses RSA keys under 2048 bits.
    let key = SubjectKey::from_spki_der(info.subject_pki.raw)?;
    csr.verify_signature().map_err(|_| PkiError::CsrSignature)?;
    let requested_common_name = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    Ok(VerifiedCsr {
        requested_subject: info.subject.to_string(),
        requested_common_name,
        key,
    })
}
