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

/// Verify an RSA PKCS#1 v1.5 signature made with `digest_alg` by the key in `spki_der`.
pub fn rsa_verify(
    digest_alg: &str,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), ScepError> {
    use aws_lc_rs::signature::{
        UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512,
    };
    let params = match digest_alg {
        oid::SHA1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        oid::SHA256 => &RSA_PKCS1_2048_8192_SHA256,
        oid::SHA512 => &RSA_PKCS1_2048_8192_SHA512,
        other => return Err(ScepError::BadAlg(format!("digest {other}"))),
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
