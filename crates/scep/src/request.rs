//! Reading a PKIOperation message (RFC 8894 §3.2): a SignedData made by the requester over a
//! pkcsPKIEnvelope (EnvelopedData) that holds the CSR.

use cms::content_info::ContentInfo;
use der::asn1::{OctetStringRef, PrintableStringRef};
use der::{Decode, Encode};

use crate::crypto::{self, Cipher, SignatureScheme};
use crate::signed::{signer_cert, SignedData};
use crate::{oid, ScepError};

/// Largest message accepted.
pub const MAX_MESSAGE: usize = 2 * 1024 * 1024;

/// The messageType of a PKIOperation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    RenewalReq,
    PkcsReq,
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    fn parse(text: &str) -> Result<Self, ScepError> {
        Ok(match text.trim() {
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            other => return Err(ScepError::BadRequest(format!("messageType {other}"))),
        })
    }
}

/// A verified PKIOperation message. The envelope is still encrypted: [`PkiMessage::open`]
/// decrypts it with the CA's (or RA's) key.
#[derive(Clone, Debug)]
pub struct PkiMessage {
    pub message_type: MessageType,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    /// The certificate that signed the message (self-signed for PKCSReq, an issued one for
    /// RenewalReq).
    pub signer_cert_der: Vec<u8>,
    /// The digest algorithm the requester used.
    pub digest_oid: String,
    /// The signingTime attribute (Unix seconds), when the requester sent one.
    pub signing_time: Option<i64>,
    /// Why the message failed its checks (signature, digest, algorithms), if it did: the
    /// fields above are still good enough to address a failure CertRep.
    pub problem: Option<ScepError>,
    envelope_der: Vec<u8>,
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> ScepError {
    ScepError::Unreadable(format!("{what}: {e}"))
}

fn printable(value: &der::Any) -> Result<String, ScepError> {
    if let Ok(p) = value.decode_as::<PrintableStringRef<'_>>() {
        return Ok(p.as_str().to_string());
    }
    std::str::from_utf8(value.value())
        .map(str::to_string)
        .map_err(|_| ScepError::BadRequest("attribute is not text".into()))
}

impl PkiMessage {
    /// Decode and verify a PKIOperation body: the signature over the signed attributes with the
    /// signer certificate's key, and the messageDigest over the envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self, ScepError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ScepError::Unreadable("message larger than 2 MiB".into()));
        }
        let info = ContentInfo::from_der(bytes).map_err(|e| unreadable("ContentInfo", e))?;
        if info.content_type.to_string() != oid::SIGNED_DATA {
            return Err(ScepError::Unreadable("not a SignedData".into()));
        }
        let signed: SignedData = info
            .content
            .decode_as()
            .map_err(|e| unreadable("SignedData", e))?;
        let envelope_der = signed
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or_else(|| ScepError::BadRequest("no pkcsPKIEnvelope".into()))?
            .decode_as::<OctetStringRef<'_>>()
            .map_err(|e| unreadable("encapsulated content", e))?
            .as_bytes()
            .to_vec();
        let signer = signed
            .signer_infos
            .iter()
            .next()
            .ok_or_else(|| ScepError::BadRequest("no signer".into()))?;
        let certs = signed
            .certificates
            .as_ref()
            .map(|c| c.as_slice())
            .unwrap_or(&[]);
        let signer_cert = signer_cert(certs, &signer.sid).ok_or_else(|| {
            ScepError::BadRequest("the signer's certificate is not included".into())
        })?;
        let signed_attrs = signer
            .signed_attrs
            .as_ref()
            .ok_or_else(|| ScepError::BadRequest("no signed attributes".into()))?;
        let mut message_type = None;
        let mut transaction_id = None;
        let mut sender_nonce = None;
        let mut message_digest = None;
        let mut signing_time = None;
        for attr in signed_attrs.iter() {
            let Some(value) = attr.values.iter().next() else {
                continue;
            };
            match attr.oid.to_string().as_str() {
                oid::MESSAGE_TYPE => message_type = Some(MessageType::parse(&printable(value)?)?),
                oid::TRANSACTION_ID => transaction_id = Some(printable(value)?),
                oid::SENDER_NONCE => sender_nonce = Some(value.value().to_vec()),
                oid::MESSAGE_DIGEST => message_digest = Some(value.value().to_vec()),
                oid::SIGNING_TIME => signing_time = time_of(value),
                _ => {}
            }
        }
        let digest_oid = signer.digest_alg.oid.to_string();
        let signed_der = signed_attrs
            .to_der()
            .map_err(|e| unreadable("signed attributes", e))?;
        let check = || -> Result<(), ScepError> {
            let envelope_digest = crypto::digest(&digest_oid, &envelope_der)?;
            if message_digest.as_deref() != Some(envelope_digest.as_slice()) {
                return Err(ScepError::BadMessageCheck(
                    "messageDigest does not match the envelope".into(),
                ));
            }
            let scheme = SignatureScheme::of(&signer.signature_algorithm, &digest_oid)?;
            crypto::rsa_verify(
                &digest_oid,
                scheme,
                &signer_cert.spki_der,
                &signed_der,
                signer.signature.as_bytes(),
            )
        };
        let problem = check().err();
        Ok(PkiMessage {
            signing_time,
            problem,
            message_type: message_type
                .ok_or_else(|| ScepError::BadRequest("no messageType".into()))?,
            transaction_id: transaction_id
                .ok_or_else(|| ScepError::BadRequest("no transactionID".into()))?,
            sender_nonce: sender_nonce
                .ok_or_else(|| ScepError::BadRequest("no senderNonce".into()))?,
            signer_cert_der: signer_cert.der,
            digest_oid,
            envelope_der,
        })
    }

    /// Decrypt the pkcsPKIEnvelope with the recipient's RSA key (PKCS#8): the CSR's DER for a
    /// PKCSReq or RenewalReq. Returns it and the cipher the requester chose.
    pub fn open(&self, recipient_pkcs8: &[u8]) -> Result<(Vec<u8>, Cipher), ScepError> {
        let envelope = parse_envelope(&self.envelope_der)?;
        let cipher = Cipher::from_oid(&envelope.cipher_oid)?;
        let key = crypto::rsa_decrypt(recipient_pkcs8, &envelope.encrypted_key)?;
        Ok((
            cipher.decrypt(&key, &envelope.iv, &envelope.ciphertext)?,
            cipher,
        ))
    }
}

/// The parts of a pkcsPKIEnvelope needed to open it.
struct Envelope {
    encrypted_key: Vec<u8>,
    cipher_oid: String,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Read the EnvelopedData with yasna in BER mode: clients (Go's pkcs7 among them) send the
/// encrypted content as a constructed OCTET STRING, which strict DER decoders refuse.
fn parse_envelope(ber: &[u8]) -> Result<Envelope, ScepError> {
    use yasna::Tag;
    let dotted = |o: yasna::models::ObjectIdentifier| {
        o.components()
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    };
    yasna::parse_ber(ber, |r| {
        r.read_sequence(|r| {
            let content_type = r.next().read_oid()?;
            if dotted(content_type) != oid::ENVELOPED_DATA {
                return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid));
            }
            r.next().read_tagged(Tag::context(0), |r| {
                r.read_sequence(|r| {
                    r.next().read_i64()?; // version
                                          // SCEP envelopes carry no originatorInfo.
                    let mut encrypted_key = None;
                    let mut recipients = |r: yasna::BERReader<'_, '_>| {
                        r.read_set_of(|r| {
                            let der = r.read_der()?;
                            if encrypted_key.is_none() {
                                encrypted_key = yasna::parse_ber(&der, |r| {
                                    r.read_sequence(|r| {
                                        r.next().read_i64()?;
                                        r.next().read_der()?; // rid
                                        r.next().read_der()?; // keyEncryptionAlgorithm
                                        r.next().read_bytes()
                                    })
                                })
                                .ok();
                            }
                            Ok(())
                        })
                    };
                    recipients(r.next())?;
                    let (cipher_oid, iv, ciphertext) = r.next().read_sequence(|r| {
                        r.next().read_oid()?; // contentType
                        let (cipher_oid, iv) = r.next().read_sequence(|r| {
                            let o = r.next().read_oid()?;
                            let iv = r.next().read_bytes()?;
                            Ok((dotted(o), iv))
                        })?;
                        let ciphertext = r
                            .next()
                            .read_tagged_implicit(Tag::context(0), |r| r.read_bytes())?;
                        Ok((cipher_oid, iv, ciphertext))
                    })?;
                    r.read_optional(|r| r.read_tagged_der())?; // unprotectedAttrs
                    Ok((encrypted_key, cipher_oid, iv, ciphertext))
                })
            })
        })
    })
    .map_err(|e| ScepError::BadRequest(format!("the pkcsPKIEnvelope is not an EnvelopedData: {e}")))
    .and_then(|(encrypted_key, cipher_oid, iv, ciphertext)| {
        Ok(Envelope {
            encrypted_key: encrypted_key
                .ok_or_else(|| ScepError::BadAlg("no key-transport recipient".into()))?,
            cipher_oid,
            iv,
            ciphertext,
        })
    })
}

impl PkiMessage {
    /// The envelope bytes (for tests and diagnostics).
    pub fn envelope(&self) -> &[u8] {
        &self.envelope_der
    }
}

/// A UTCTime or GeneralizedTime as Unix seconds.
fn time_of(value: &der::Any) -> Option<i64> {
    let duration = value
        .decode_as::<der::asn1::UtcTime>()
        .map(|t| t.to_unix_duration())
        .or_else(|_| {
            value
                .decode_as::<der::asn1::GeneralizedTime>()
                .map(|t| t.to_unix_duration())
        })
        .ok()?;
    i64::try_from(duration.as_secs()).ok()
}

/// The challengePassword of a CSR (PKCS#9), if it has one.
pub fn challenge_password(csr_der: &[u8]) -> Option<String> {
    let req = x509_cert::request::CertReq::from_der(csr_der).ok()?;
    req.info
        .attributes
        .iter()
        .find(|a| a.oid.to_string() == oid::CHALLENGE_PASSWORD)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| printable(v).ok())
}
