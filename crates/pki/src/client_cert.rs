//! What the gateway reads from a device's client certificate once its chain is verified: the
//! serial (to look up revocation), the UPN and email SANs (the user), and whether its extended
//! key usage allows TLS client authentication.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::extensions::{decode_upn_value, UPN_OID};
use crate::Serial;

/// The parts of a client certificate the gateway decides with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    pub serial: Serial,
    pub upns: Vec<String>,
    pub emails: Vec<String>,
    /// extendedKeyUsage is present and lists clientAuth (or anyExtendedKeyUsage).
    pub client_auth: bool,
    pub not_before: i64,
    pub not_after: i64,
}

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientCertError {
    #[error("the certificate is not valid DER X.509")]
    Malformed,
    #[error("the certificate's {0} extension is malformed")]
    BadExtension(&'static str),
}

pub fn read_client_certificate(der: &[u8]) -> Result<ClientCertificate, ClientCertError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| ClientCertError::Malformed)?;
    if !rest.is_empty() {
        return Err(ClientCertError::Malformed);
    }
    let mut upns = Vec::new();
    let mut emails = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                    GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                        if let Some(upn) = decode_upn_value(value) {
                            upns.push(upn);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(_) => return Err(ClientCertError::BadExtension("subjectAltName")),
    }
    let client_auth = match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.client_auth || eku.value.any,
        Ok(None) => false,
        Err(_) => return Err(ClientCertError::BadExtension("extendedKeyUsage")),
    };
    Ok(ClientCertificate {
        serial: Serial::from_be_bytes(cert.raw_serial()),
        upns,
        emails,
        client_auth,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert_eq!(
            read_client_certificate(b"not a certificate"),
            Err(ClientCertError::Malformed)
        );
        assert_eq!(
            read_client_certificate(&[]),
            Err(ClientCertError::Malformed)
        );
    }
}
