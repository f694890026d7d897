//! DER pieces written by hand in more than one place (CRLs here, SCEP responses in
//! `easgate-scep`, signed profiles in `easgate-profile`), all with `yasna`.

use der::{Decode, Encode};
use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, UTCTime};
use yasna::DERWriter;

/// An RFC 5280 / RFC 5652 Time: UTCTime for 1950–2049, GeneralizedTime otherwise, in whole
/// seconds.
pub fn write_time(w: DERWriter<'_>, t: OffsetDateTime) {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    if (1950..2050).contains(&t.year()) {
        w.write_utctime(&UTCTime::from_datetime(t));
    } else {
        w.write_generalized_time(&GeneralizedTime::from_datetime(t));
    }
}

/// The IssuerAndSerialNumber (RFC 5652 §10.2.4) of a DER certificate, as DER.
pub fn issuer_and_serial(cert_der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    let issuer = cert.tbs_certificate.issuer.to_der()?;
    let serial = cert.tbs_certificate.serial_number.to_der()?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&issuer);
            w.next().write_der(&serial);
        })
    }))
}
