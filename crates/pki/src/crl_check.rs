//! Reading a trusted external CA's CRL for the gateway: parse, verify its signature with the
//! CA's certificate, and keep what revocation checks need (the revoked serials, thisUpdate,
//! nextUpdate, whether it is a delta and on which base). The signature is checked once here,
//! when the CRL is fetched, so each request only looks a serial up. The serial sets hash with
//! foldhash rather than SipHash: a lookup on every request costs a third as much, and what goes
//! into them comes from a CRL signed by a CA the admin trusts, not from a device.

use foldhash::{HashSet, HashSetExt};

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Name;

use crate::input::pem_or_der;
use crate::Serial;

const DELTA_CRL_INDICATOR: &str = "2.5.29.27";

/// A verified CRL, reduced to what the gateway uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationList {
    pub revoked: HashSet<Serial>,
    /// Delta CRLs: serials the delta takes off the list (reason removeFromCRL).
    pub removed: HashSet<Serial>,
    pub number: Option<u64>,
    /// `Some(base CRL number)` for a delta CRL.
    pub delta_base: Option<u64>,
    pub this_update: i64,
    /// `None` when the CRL gives no nextUpdate.
    pub next_update: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrlCheckError {
    #[error("not a CRL (DER or PEM X509 CRL expected)")]
    Malformed,
    #[error("the issuer certificate is not valid X.509")]
    BadIssuer,
    #[error("the CRL is issued by `{crl}`, not by `{ca}`")]
    WrongIssuer { crl: String, ca: String },
    #[error("the CRL's signature does not verify with the CA's key")]
    BadSignature,
}

fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

/// Parse `bytes` (DER or PEM) and verify it was signed by `issuer_der`.
pub fn read_crl(bytes: &[u8], issuer_der: &[u8]) -> Result<RevocationList, CrlCheckError> {
    let der = pem_or_der(bytes, &["X509 CRL"], "CRL").map_err(|_| CrlCheckError::Malformed)?;
    let (_, crl) =
        CertificateRevocationList::from_der(&der).map_err(|_| CrlCheckError::Malformed)?;
    let (_, issuer) =
        X509Certificate::from_der(issuer_der).map_err(|_| CrlCheckError::BadIssuer)?;
    if !same_name(crl.issuer(), issuer.subject()) {
        return Err(CrlCheckError::WrongIssuer {
            crl: crl.issuer().to_string(),
            ca: issuer.subject().to_string(),
        });
    }
    crl.verify_signature(issuer.public_key())
        .map_err(|_| CrlCheckError::BadSignature)?;
    let mut delta_base = None;
    for ext in crl.extensions() {
        if ext.oid.to_id_string() == DELTA_CRL_INDICATOR {
            let (_, base) = x509_parser::asn1_rs::Integer::from_der(ext.value)
                .map_err(|_| CrlCheckError::Malformed)?;
            delta_base = Some(base.as_u64().map_err(|_| CrlCheckError::Malformed)?);
        }
    }
    let mut revoked = HashSet::new();
    let mut removed = HashSet::new();
    for entry in crl.iter_revoked_certificates() {
        let serial = Serial::from_be_bytes(entry.raw_serial());
        let remove = matches!(
            entry.reason_code(),
            Some((_, code)) if code.0 == 8 // removeFromCRL
        );
        if remove {
            removed.insert(serial);
        } else {
            revoked.insert(serial);
        }
    }
    Ok(RevocationList {
        revoked,
        removed,
        number: crl
            .crl_number()
            .and_then(|n| match n.to_u64_digits().as_slice() {
                [] => Some(0),
                [one] => Some(*one),
                _ => None,
            }),
        delta_base,
        this_update: crl.last_update().timestamp(),
        next_update: crl.next_update().map(|t| t.timestamp()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_crl() {
        assert_eq!(read_crl(b"garbage", b""), Err(CrlCheckError::Malformed));
        assert_eq!(
            read_crl(&[0x30, 0x03, 0x02, 0x01, 0x01], b""),
            Err(CrlCheckError::Malformed)
        );
    }
}
