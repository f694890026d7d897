//! The cryptography of SCEP envelopes and signatures, all through aws-lc-rs.

#![allow(deprecated)] // single DES: micromdm's client still sends it (PEERS.md)

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_128, AES_256, DES_EDE3_FOR_LEGACY_USE_ONLY, DES_FOR_LEGACY_USE_ONLY,
};
use aws_lc_rs::iv::FixedLength;

use crate::oid;
use crate::ScepError;

/// Content encrypted under a fresh key.
pub struct Sealed {
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A content-encryption algorithm SCEP clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Des,
    Des3,
    Aes128,
    Aes256,
}

impl Cipher {
    pub fn from_oid(dotted: &str) -> Result<Self, ScepError> {
        Ok(match dotted {
            oid::DES_CBC => Cipher::Des,
            oid::DES_EDE3_CBC => Cipher::Des3,
            oid::AES128_CBC => Cipher::Aes128,
            oid::AES256_CBC => Cipher::Aes256,
            other => return Err(ScepError::BadAlg(format!("content encryption {other}"))),
        })
    }

    pub fn oid(self) -> &'static str {
        match self {
            Cipher::Des => oid::DES_CBC,
            Cipher::Des3 => oid::DES_EDE3_CBC,
            Cipher::Aes128 => oid::AES128_CBC,
            Cipher::Aes256 => oid::AES256_CBC,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Cipher::Des => 8,
            Cipher::Des3 => 24,
            Cipher::Aes128 => 16,
            Cipher::Aes256 => 32,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            Cipher::Des | Cipher::Des3 => 8,
            Cipher::Aes128 | Cipher::Aes256 => 16,
        }
    }

    fn unbound(self, key: &[u8]) -> Result<UnboundCipherKey, ScepError> {
        let algorithm = match self {
            Cipher::Des => &DES_FOR_LEGACY_USE_ONLY,
            Cipher::Des3 => &DES_EDE3_FOR_LEGACY_USE_ONLY,
            Cipher::Aes128 => &AES_128,
            Cipher::Aes256 => &AES_256,
        };
        UnboundCipherKey::new(algorithm, key)
            .map_err(|_| ScepError::BadRequest("content key has the wrong length".into()))
    }

    /// CBC decrypt with PKCS#7 padding.
    pub fn decrypt(self, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ScepError> {
        let bad = || ScepError::BadMessageCheck("the envelope does not decrypt".into());
        let context = match iv.len() {
            8 if self.iv_len() == 8 => DecryptionContext::Iv64(FixedLength::from(
                <[u8; 8]>::try_from(iv).map_err(|_| bad())?,
            )),
            16 if self.iv_len() == 16 => DecryptionContext::Iv128(FixedLength::from(
                <[u8; 16]>::try_from(iv).map_err(|_| bad())?,
            )),
            _ => return Err(ScepError::BadRequest("the IV has the wrong length".into())),
        };
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(self.unbound(key)?).map_err(|_| bad())?;
        let mut in_out = ciphertext.to_vec();
        let plain = key.decrypt(&mut in_out, context).map_err(|_| bad())?;
        Ok(plain.to_vec())
    }

    /// CBC encrypt with PKCS#7 padding under a fresh random key and IV.
    pub fn encrypt(self, plaintext: &[u8]) -> Result<Sealed, ScepError> {
        let failed = || ScepError::Build("content encryption failed".into());
        let mut key = vec![0u8; self.key_len()];
        let mut iv = vec![0u8; self.iv_len()];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| failed())?;
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| failed())?;
        let context = match self.iv_len() {
            8 => EncryptionContext::Iv64(FixedLength::from(
                <[u8; 8]>::try_from(iv.as_slice()).map_err(|_| failed())?,
            )),
            _ => EncryptionContext::Iv128(FixedLength::from(
                <[u8; 16]>::try_from(iv.as_slice()).map_err(|_| failed())?,
            )),
        };
        let sealer =
            PaddedBlockEncryptingKey::cbc_pkcs7(self.unbound(&key)?).map_err(|_| failed())?;
        let mut in_out = plaintext.to_vec();
        sealer
            .less_safe_encrypt(&mut in_out, context)
            .map_err(|_| failed())?;
        Ok(Sealed {
            key,
            iv,
            ciphertext: in_out,
        })
    }
}

/// RSA PKCS#1 v1.5 decryption of a content key with our (CA or RA) private key.
pub fn rsa_decrypt(pkcs8: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ScepError> {
    use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
    let bad = || {
        ScepError::BadMessageCheck("the content key is not encrypted to this CA's SCEP key".into())
    };
    let key = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|_| ScepError::Build("the SCEP decryption key is unusable".into()))?;
    let key = Pkcs1PrivateDecryptingKey::new(key)
        .map_err(|_| ScepError::Build("the SCEP decryption key is unusable".into()))?;
    let mut out = vec![0u8; key.min_output_size()];
    let plain = key.decrypt(ciphertext, &mut out).map_err(|_| bad())?;
    Ok(plain.to_vec())
}

/// RSA PKCS#1 v1.5 encryption of a content key to a requester's public key (SPKI DER).
pub fn rsa_encrypt(spki_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ScepError> {
    use aws_lc_rs::rsa::{Pkcs1PublicEncryptingKey, PublicEncryptingKey};
    let bad = |why: &str| ScepError::BadRequest(format!("cannot encrypt to the requester: {why}"));
    let key = PublicEncryptingKey::from_der(spki_der).map_err(|_| bad("its key is not RSA"))?;
    let key = Pkcs1PublicEncryptingKey::new(key).map_err(|_| bad("its key is not RSA"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let sealed = key
        .encrypt(plaintext, &mut out)
        .map_err(|_| bad("encryption failed"))?;
    Ok(sealed.to_vec())
}

/// Digest by OID.
pub fn digest(algorithm: &str, data: &[u8]) -> Result<Vec<u8>, ScepError> {
    use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256, SHA512};
    Ok(match algorithm {
        oid::SHA1 => digest(&SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec(),
        oid::SHA256 => digest(&SHA256, data).as_ref().to_vec(),
        oid::SHA512 => digest(&SHA512, data).as_ref().to_vec(),
        other => return Err(ScepError::BadAlg(format!("digest {other}"))),
    })
}

/// How the requester's SignerInfo says it signed (RFC 5652 §5.3 signatureAlgorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    /// RSA PKCS#1 v1.5: `rsaEncryption` or `sha*WithRSAEncryption`.
    Pkcs1,
    /// RSASSA-PSS (RFC 4055), as strongSwan's `pki --scep --rsa-padding pss` signs.
    Pss,
}

impl SignatureScheme {
    /// The scheme of `algorithm`, for a message digested with `digest_oid`. PSS is accepted
    /// only in the form RFC 4055 recommends and aws-lc-rs verifies: the hash of its
    /// parameters is the SignerInfo's digest, MGF1 with that same hash, a salt as long as the
    /// hash and trailerField 1; anything else, like an unknown algorithm, is badAlg.
    pub fn of(
        algorithm: &x509_cert::spki::AlgorithmIdentifierOwned,
        digest_oid: &str,
    ) -> Result<Self, ScepError> {
        let dotted = algorithm.oid.to_string();
        match dotted.as_str() {
            oid::RSA | oid::SHA1_RSA | oid::SHA256_RSA | oid::SHA512_RSA => Ok(Self::Pkcs1),
            oid::RSASSA_PSS => {
                let params = match &algorithm.parameters {
                    Some(any) => {
                        use der::Encode;
                        let der = any.to_der().map_err(|e| {
                            ScepError::BadAlg(format!("RSASSA-PSS parameters: {e}"))
                        })?;
                        PssParams::parse(&der)?
                    }
                    None => PssParams::default(),
                };
                let salt_len = match digest_oid {
                    oid::SHA256 => 32,
                    oid::SHA512 => 64,
                    other => {
                        return Err(ScepError::BadAlg(format!(
                            "RSASSA-PSS with digest {other} (SHA-256 and SHA-512 are accepted)"
                        )))
                    }
                };
                if params.hash != digest_oid
                    || params.mgf != oid::MGF1
                    || params.mgf_hash != digest_oid
                    || params.salt_len != salt_len
                    || params.trailer != 1
                {
                    return Err(ScepError::BadAlg(format!(
                        "RSASSA-PSS parameters {params:?} (expected hash {digest_oid} with MGF1 of it and a {salt_len}-octet salt)"
                    )));
                }
                Ok(Self::Pss)
            }
            other => Err(ScepError::BadAlg(format!("signature {other}"))),
        }
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1), every field with its DEFAULT filled in.
#[derive(Debug, PartialEq, Eq)]
struct PssParams {
    hash: String,
    mgf: String,
    mgf_hash: String,
    salt_len: u64,
    trailer: u64,
}

impl Default for PssParams {
    fn default() -> Self {
        PssParams {
            hash: oid::SHA1.into(),
            mgf: oid::MGF1.into(),
            mgf_hash: oid::SHA1.into(),
            salt_len: 20,
            trailer: 1,
        }
    }
}

impl PssParams {
    fn parse(der: &[u8]) -> Result<Self, ScepError> {
        use yasna::{BERReader, Tag};
        fn dotted(o: yasna::models::ObjectIdentifier) -> String {
            o.components()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
        }
        // AlgorithmIdentifier: the OID, then optional parameters (NULL, or MGF1's hash).
        fn algorithm(r: BERReader<'_, '_>) -> yasna::ASN1Result<(String, Option<String>)> {
            r.read_sequence(|r| {
                let id = dotted(r.next().read_oid()?);
                let inner = r.read_optional(|r| r.read_der())?;
                let inner_oid = inner.and_then(|der| {
                    yasna::parse_der(&der, |r| {
                        r.read_sequence(|r| {
                            let id = r.next().read_oid()?;
                            r.read_optional(|r| r.read_der())?; // NULL or absent
                            Ok(id)
                        })
                    })
                    .ok()
                    .map(dotted)
                });
                Ok((id, inner_oid))
            })
        }
        let mut params = PssParams::default();
        yasna::parse_der(der, |r| {
            r.read_sequence(|r| {
                if let Some((hash, _)) =
                    r.read_optional(|r| r.read_tagged(Tag::context(0), algorithm))?
                {
                    params.hash = hash;
                }
                if let Some((mgf, mgf_hash)) =
                    r.read_optional(|r| r.read_tagged(Tag::context(1), algorithm))?
                {
                    params.mgf = mgf;
                    params.mgf_hash = mgf_hash.unwrap_or_default();
                }
                if let Some(salt) =
                    r.read_optional(|r| r.read_tagged(Tag::context(2), |r| r.read_u64()))?
                {
                    params.salt_len = salt;
                }
                if let Some(trailer) =
                    r.read_optional(|r| r.read_tagged(Tag::context(3), |r| r.read_u64()))?
                {
                    params.trailer = trailer;
                }
                Ok(())
            })
        })
        .map_err(|e| ScepError::BadAlg(format!("RSASSA-PSS parameters: {e}")))?;
        Ok(params)
    }
}

/// Verify an RSA signature (PKCS#1 v1.5 or PSS) made with `digest_alg` by the key in
/// `spki_der`.
pub fn rsa_verify(
    digest_alg: &str,
    scheme: SignatureScheme,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), ScepError> {
    use aws_lc_rs::signature::{
        UnparsedPublicKey, VerificationAlgorithm, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256,
        RSA_PSS_2048_8192_SHA512,
    };
    let params: &'static dyn VerificationAlgorithm = match (scheme, digest_alg) {
        (SignatureScheme::Pkcs1, oid::SHA1) => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (SignatureScheme::Pkcs1, oid::SHA256) => &RSA_PKCS1_2048_8192_SHA256,
        (SignatureScheme::Pkcs1, oid::SHA512) => &RSA_PKCS1_2048_8192_SHA512,
        (SignatureScheme::Pss, oid::SHA256) => &RSA_PSS_2048_8192_SHA256,
        (SignatureScheme::Pss, oid::SHA512) => &RSA_PSS_2048_8192_SHA512,
        (_, other) => return Err(ScepError::BadAlg(format!("digest {other}"))),
    };
    // UnparsedPublicKey takes the RSAPublicKey (the SPKI's BIT STRING contents).
    let bits = spki_public_key_bits(spki_der)?;
    UnparsedPublicKey::new(params, bits)
        .verify(message, signature)
        .map_err(|_| ScepError::BadMessageCheck("the requester's signature does not verify".into()))
}

fn spki_public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>, ScepError> {
    use der::Decode;
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| ScepError::Unreadable(format!("signer key: {e}")))?;
    if spki.algorithm.oid.to_string() != oid::RSA {
        return Err(ScepError::BadAlg("the requester's key is not RSA".into()));
    }
    Ok(spki.subject_public_key.raw_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailInfo;

    fn pss(params: Option<Vec<u8>>) -> x509_cert::spki::AlgorithmIdentifierOwned {
        use der::Decode;
        x509_cert::spki::AlgorithmIdentifierOwned {
            oid: der::oid::ObjectIdentifier::new_unwrap(oid::RSASSA_PSS),
            parameters: params.map(|p| der::Any::from_der(&p).unwrap()),
        }
    }

    /// RSASSA-PSS-params with `hash` for both the message and MGF1, and `salt`.
    fn pss_params(hash: &str, salt: u64) -> Vec<u8> {
        use yasna::models::ObjectIdentifier;
        let algorithm = |w: yasna::DERWriter<'_>, id: &str, inner: Option<&str>| {
            w.write_sequence(|w| {
                w.next()
                    .write_oid(&ObjectIdentifier::from_slice(&oid::parts(id)));
                match inner {
                    Some(inner) => w.next().write_sequence(|w| {
                        w.next()
                            .write_oid(&ObjectIdentifier::from_slice(&oid::parts(inner)));
                        w.next().write_null();
                    }),
                    None => w.next().write_null(),
                }
            })
        };
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next()
                    .write_tagged(yasna::Tag::context(0), |w| algorithm(w, hash, None));
                w.next().write_tagged(yasna::Tag::context(1), |w| {
                    algorithm(w, oid::MGF1, Some(hash))
                });
                w.next()
                    .write_tagged(yasna::Tag::context(2), |w| w.write_u64(salt));
            })
        })
    }

    #[test]
    fn pss_is_accepted_only_with_matching_hashes_and_salt() {
        let scheme = |params, digest| SignatureScheme::of(&pss(params), digest);
        assert_eq!(
            scheme(Some(pss_params(oid::SHA256, 32)), oid::SHA256).unwrap(),
            SignatureScheme::Pss
        );
        assert_eq!(
            scheme(Some(pss_params(oid::SHA512, 64)), oid::SHA512).unwrap(),
            SignatureScheme::Pss
        );
        for (params, digest) in [
            (Some(pss_params(oid::SHA256, 20)), oid::SHA256),
            (Some(pss_params(oid::SHA512, 64)), oid::SHA256),
            (Some(pss_params(oid::SHA1, 20)), oid::SHA1),
            // Absent parameters mean SHA-1 with a 20-octet salt.
            (None, oid::SHA256),
            (Some(vec![0x30, 0x03, 0x02, 0x01, 0x05]), oid::SHA256),
        ] {
            assert_eq!(
                scheme(params, digest).unwrap_err().fail_info(),
                FailInfo::BadAlg
            );
        }
    }

    #[test]
    fn ciphers_round_trip_and_unknown_algorithms_are_bad_alg() {
        for cipher in [Cipher::Des, Cipher::Des3, Cipher::Aes128, Cipher::Aes256] {
            let sealed = cipher.encrypt(b"a certificate signing request").unwrap();
            assert_eq!(sealed.key.len(), cipher.key_len());
            assert_eq!(
                cipher
                    .decrypt(&sealed.key, &sealed.iv, &sealed.ciphertext)
                    .unwrap(),
                b"a certificate signing request"
            );
            assert!(cipher
                .decrypt(&sealed.key, &sealed.iv[..4], &sealed.ciphertext)
                .is_err());
            assert_eq!(Cipher::from_oid(cipher.oid()).unwrap(), cipher);
        }
        let rc2 = Cipher::from_oid("1.2.840.113549.3.2").unwrap_err();
        assert_eq!(rc2.fail_info(), FailInfo::BadAlg);
        assert_eq!(
            digest("1.2.840.113549.2.5", b"md5")
                .unwrap_err()
                .fail_info(),
            FailInfo::BadAlg
        );
        assert_eq!(
            ScepError::BadTime("x".into()).fail_info(),
            FailInfo::BadTime
        );
        assert_eq!(
            ScepError::BadMessageCheck("x".into()).fail_info(),
            FailInfo::BadMessageCheck
        );
        assert_eq!(
            ScepError::BadRequest("x".into()).fail_info(),
            FailInfo::BadRequest
        );
    }
}
