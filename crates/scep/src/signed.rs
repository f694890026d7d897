//! The requester's SignedData, read leniently about serial numbers.
//!
//! `cms`'s types decode every certificate and the SignerInfo's issuerAndSerialNumber with
//! RFC 5280's profile, which refuses serials longer than 20 (21 encoded) octets. sscep 0.10
//! signs its PKCSReq with a self-signed certificate that has a 32-octet serial, and nothing
//! forbids it: RFC 5280 §4.1.2.2 asks relying parties to cope with long serials and RFC 8894
//! sets no limit. A requester's self-signed certificate is only a carrier for its public key,
//! so here the certificates and the signer identifier stay raw and certificates are read with
//! x509-cert's `Raw` profile, which checks no serial length. Certificates easgate issues are
//! still parsed strictly everywhere else.

use cms::content_info::CmsVersion;
use cms::signed_data::{DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedAttributes};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence, ValueOrd};
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::ScepError;

/// SignedData (RFC 5652 §5.1) with certificates and CRLs left undecoded.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SignedData {
    pub version: CmsVersion,
    pub digest_algorithms: DigestAlgorithmIdentifiers,
    pub encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<SetOfVec<Any>>,
    pub signer_infos: SetOfVec<SignerInfo>,
}

/// SignerInfo (RFC 5652 §5.3) with the signer identifier left undecoded.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub(crate) struct SignerInfo {
    pub version: CmsVersion,
    /// IssuerAndSerialNumber (a SEQUENCE) or `[0]` SubjectKeyIdentifier.
    pub sid: Any,
    pub digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub signed_attrs: Option<SignedAttributes>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: OctetString,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub unsigned_attrs: Option<SignedAttributes>,
}

/// What easgate needs of a requester's certificate: the key to verify with and encrypt to,
/// and its IssuerAndSerialNumber (whatever the serial's length) to name it as a recipient.
pub(crate) struct RequesterCert {
    pub der: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub issuer_and_serial_der: Vec<u8>,
}

impl RequesterCert {
    pub fn parse(der: &[u8]) -> Result<Self, ScepError> {
        let bad = |e: der::Error| ScepError::BadRequest(format!("the signer's certificate: {e}"));
        let cert = CertificateInner::<Raw>::from_der(der).map_err(bad)?;
        let tbs = &cert.tbs_certificate;
        let issuer = tbs.issuer.to_der().map_err(bad)?;
        let serial = tbs.serial_number.to_der().map_err(bad)?;
        let issuer_and_serial_der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&issuer);
                w.next().write_der(&serial);
            })
        });
        Ok(RequesterCert {
            der: der.to_vec(),
            spki_der: tbs.subject_public_key_info.to_der().map_err(bad)?,
            issuer_and_serial_der,
        })
    }
}

/// The certificate among `certs` that `sid` names (by IssuerAndSerialNumber); the first
/// readable one when `sid` is a key identifier or names none of them — its key must then
/// still verify the signature.
pub(crate) fn signer_cert(certs: &[Any], sid: &Any) -> Option<RequesterCert> {
    let readable: Vec<RequesterCert> = certs
        .iter()
        .filter_map(|c| c.to_der().ok())
        .filter_map(|der| RequesterCert::parse(&der).ok())
        .collect();
    let sid_der = sid.to_der().ok();
    let named = readable
        .iter()
        .position(|c| Some(&c.issuer_and_serial_der) == sid_der.as_ref())
        .unwrap_or(0);
    readable.into_iter().nth(named)
}
