//! Writing the CertRep (RFC 8894 §3.3.2): on success, the issued certificate in a certs-only
//! PKCS#7, encrypted to the requester's key with the cipher it chose, inside a SignedData signed
//! by the CA (or its RA) carrying the SCEP attributes; on failure, the same SignedData with no
//! content and a failInfo.

use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::crypto::{self, Cipher};
use crate::signed::RequesterCert;
use crate::{oid, FailInfo, PkiMessage, ScepError};

/// Signs bytes with RSA PKCS#1 v1.5 / SHA-256 (the error is a message for the log).
pub type SignFn<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

/// Who signs the CertRep: its certificate and its signing function.
pub struct Signer<'a> {
    pub cert_der: &'a [u8],
    pub sign: SignFn<'a>,
}

/// What the CertRep says.
pub enum CertRep<'a> {
    /// The issued certificate (and any chain to send with it, e.g. the CA).
    /// Encrypted to the requester with the cipher it chose.
    Success {
        certs: &'a [&'a [u8]],
        cipher: Cipher,
    },
    Failure(FailInfo),
}

fn write_oid(w: DERWriter<'_>, dotted: &str) {
    w.write_oid(&ObjectIdentifier::from_slice(&oid::parts(dotted)));
}

fn is_printable(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

fn write_text(w: DERWriter<'_>, s: &str) {
    if is_printable(s) {
        w.write_printable_string(s);
    } else {
        w.write_utf8_string(s);
    }
}

/// EnvelopedData (as ContentInfo) of `content` for the holder of `recipient_cert_der` (the
/// requester's certificate, read as leniently as the request was: its serial may be long).
fn envelope(
    content: &[u8],
    recipient_cert_der: &[u8],
    cipher: Cipher,
) -> Result<Vec<u8>, ScepError> {
    let crypto::Sealed {
        key,
        iv,
        ciphertext,
    } = cipher.encrypt(content)?;
    let recipient = RequesterCert::parse(recipient_cert_der)?;
    let encrypted_key = crypto::rsa_encrypt(&recipient.spki_der, &key)?;
    let rid = recipient.issuer_and_serial_der;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            write_oid(w.next(), oid::ENVELOPED_DATA);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(0);
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_u8(0);
                            w.next().write_der(&rid);
                            w.next().write_sequence(|w| {
                                write_oid(w.next(), oid::RSA);
                                w.next().write_null();
                            });
                            w.next().write_bytes(&encrypted_key);
                        })
                    });
                    w.next().write_sequence(|w| {
                        write_oid(w.next(), oid::DATA);
                        w.next().write_sequence(|w| {
                            write_oid(w.next(), cipher.oid());
                            w.next().write_bytes(&iv);
                        });
                        w.next()
                            .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(&ciphertext));
                    });
                })
            });
        })
    }))
}

/// Build the CertRep answering `request`.
pub fn cert_rep(
    request: &PkiMessage,
    outcome: &CertRep<'_>,
    signer: &Signer<'_>,
) -> Result<Vec<u8>, ScepError> {
    let content = match outcome {
        CertRep::Success { certs, cipher } => Some(envelope(
            &certs_only(certs),
            &request.signer_cert_der,
            *cipher,
        )?),
        CertRep::Failure(_) => None,
    };
    let digest = crypto::digest(oid::SHA256, content.as_deref().unwrap_or(&[]))?;
    let mut sender_nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut sender_nonce).map_err(|_| ScepError::Build("randomness".into()))?;
    let (status, fail) = match outcome {
        CertRep::Success { .. } => ("0", None),
        CertRep::Failure(info) => ("2", Some(*info as u8)),
    };
    // The signed attributes, as the SET OF that is signed; in the SignerInfo the same bytes
    // appear under [0] IMPLICIT.
    let attribute = |w: DERWriter<'_>, id: &str, value: &dyn Fn(DERWriter<'_>)| {
        w.write_sequence(|w| {
            write_oid(w.next(), id);
            w.next().write_set(|w| value(w.next()));
        })
    };
    let signed_attrs = yasna::construct_der(|w| {
        w.write_set_of(|w| {
            attribute(w.next(), oid::CONTENT_TYPE, &|w| write_oid(w, oid::DATA));
            attribute(w.next(), oid::MESSAGE_DIGEST, &|w| w.write_bytes(&digest));
            attribute(w.next(), oid::MESSAGE_TYPE, &|w| {
                w.write_printable_string("3")
            });
            attribute(w.next(), oid::PKI_STATUS, &|w| {
                w.write_printable_string(status)
            });
            attribute(w.next(), oid::TRANSACTION_ID, &|w| {
                write_text(w, &request.transaction_id)
            });
            attribute(w.next(), oid::RECIPIENT_NONCE, &|w| {
                w.write_bytes(&request.sender_nonce)
            });
            attribute(w.next(), oid::SENDER_NONCE, &|w| {
                w.write_bytes(&sender_nonce)
            });
            if let Some(code) = fail {
                attribute(w.next(), oid::FAIL_INFO, &|w| {
                    w.write_printable_string(&code.to_string())
                });
            }
        })
    });
    let signature = (signer.sign)(&signed_attrs).map_err(ScepError::Build)?;
    easgate_pki::der_writing::rsa_signed_data(
        content.as_deref(),
        &[signer.cert_der],
        &signed_attrs,
        &signature,
    )
    .map_err(|e| ScepError::Build(format!("signer certificate: {e}")))
}

/// A degenerate ("certs-only") PKCS#7 SignedData carrying `certs`: no content, no signers.
/// The CertRep's inner content, and GetCACert's answer when an RA accompanies the CA
/// (RFC 8894 §4.2.1.2).
pub fn certs_only(certs: &[&[u8]]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            write_oid(w.next(), oid::SIGNED_DATA);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|_| {});
                    w.next().write_sequence(|w| write_oid(w.next(), oid::DATA));
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for cert in certs {
                                w.next().write_der(cert);
                            }
                        })
                    });
                    w.next().write_set(|_| {});
                })
            });
        })
    })
}
