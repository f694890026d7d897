//! A few facts read from a certificate, for records and listings.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::extensions::{decode_upn_value, UPN_OID};
use crate::{PkiError, Serial};

#[derive(Clone, Debug)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: Serial,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// `email:…`, `upn:…`, `dns:…`, `uri:…`.
    pub sans: Vec<String>,
}

/// Read a DER certificate's summary; errors name what is wrong.
pub fn summarize(der: &[u8]) -> Result<CertSummary, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Malformed {
        what: "certificate",
        why: format!("not an X.509 certificate ({e})"),
    })?;
    if !rest.is_empty() {
        return Err(PkiError::Malformed {
            what: "certificate",
            why: "trailing bytes after the certificate".into(),
        });
    }
    let mut sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::RFC822Name(v) => sans.push(format!("email:{v}")),
                GeneralName::DNSName(v) => sans.push(format!("dns:{v}")),
                GeneralName::URI(v) => sans.push(format!("uri:{v}")),
                GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                    if let Some(upn) = decode_upn_value(value) {
                        sans.push(format!("upn:{upn}"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: Serial::from_be_bytes(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        sans,
    })
}

/// Which of `cas` (name, DER) issued `cert_der`: issuer name equal to its subject and the
/// signature verifying under its key. `None` when none did (or the input does not parse).
pub fn issuing_ca<'a>(cert_der: &[u8], cas: &'a [(String, Vec<u8>)]) -> Option<&'a str> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    cas.iter().find_map(|(name, ca_der)| {
        let (_, ca) = X509Certificate::from_der(ca_der).ok()?;
        (ca.subject().as_raw() == cert.issuer().as_raw()
            && cert.verify_signature(Some(ca.public_key())).is_ok())
        .then_some(name.as_str())
    })
}

/// The host names a server certificate is valid for: its DNS and IP address SANs (IP
/// addresses in their usual text form), for checking that a TLS certificate covers the name
/// clients connect to.
pub fn host_names(der: &[u8]) -> Result<Vec<String>, PkiError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Malformed {
        what: "certificate",
        why: format!("not an X.509 certificate ({e})"),
    })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(v) => names.push(v.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(names)
}

/// Whether `host` (a DNS name or IP address) is covered by `names` (as [`host_names`] gives
/// them): equal ignoring case, or matched by a `*.` wildcard for one leftmost label.
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|name| {
        if *name == host {
            return true;
        }
        match name.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => false,
        }
    })
}
