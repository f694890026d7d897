//! Key types offered for CAs and device certificates, and private keys in PKCS#8.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize, SignatureAlgorithm};
use serde::{Deserialize, Serialize};

use crate::PkiError;

/// The key types of the interface contract: `rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
}

impl KeyType {
    pub const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// The signature algorithm a key of this type signs with (SHA-256 for RSA and P-256,
    /// SHA-384 for P-384, as RFC 5480 pairs them).
    pub fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    /// Generate a fresh key of this type.
    pub fn generate(self) -> Result<PrivateKey, PkiError> {
        let pair = match self {
            KeyType::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyType::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyType::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            KeyType::EcP256 | KeyType::EcP384 => KeyPair::generate_for(self.signature_algorithm()),
        }
        .map_err(|_| PkiError::KeyGeneration(self.as_str()))?;
        Ok(PrivateKey {
            key_type: self,
            pair,
        })
    }
}

impl FromStr for KeyType {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| PkiError::UnknownKeyType(s.to_string()))
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key with its type. Debug output never shows key material.
pub struct PrivateKey {
    pub(crate) key_type: KeyType,
    pub(crate) pair: KeyPair,
}

impl PrivateKey {
    /// Load a PKCS#8 DER key of a known type (as stored after unsealing).
    pub fn from_pkcs8_der(key_type: KeyType, der: &[u8]) -> Result<Self, PkiError> {
        let pkcs8 = rustls_pki_types_pkcs8(der);
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, key_type.signature_algorithm())
            .map_err(|e| PkiError::BadPrivateKey(e.to_string()))?;
        Ok(PrivateKey { key_type, pair })
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// PKCS#8 DER. Secret: seal it before it touches a disk.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        self.pair.serialize_der()
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), for `--out-key` files.
    pub fn pkcs8_pem(&self) -> String {
        self.pair.serialize_pem()
    }

    /// DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.pair)
    }

    /// Sign `message` (RSA PKCS#1 v1.5 with SHA-256; ECDSA with SHA-256 or SHA-384).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        Ok(rcgen::SigningKey::sign(&self.pair, message)?)
    }

    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.key_type)
    }
}

fn rustls_pki_types_pkcs8(der: &[u8]) -> rustls_pki_types::PrivatePkcs8KeyDer<'_> {
    rustls_pki_types::PrivatePkcs8KeyDer::from(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_parse_and_round_trip_through_pkcs8() {
        for kt in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
            let key = kt.generate().unwrap();
            let again = PrivateKey::from_pkcs8_der(kt, &key.pkcs8_der()).unwrap();
            assert_eq!(key.public_key_der(), again.public_key_der());
            assert_eq!(kt.as_str().parse::<KeyType>().unwrap(), kt);
        }
        assert!("rsa-1024".parse::<KeyType>().is_err());
        assert!(!format!("{:?}", KeyType::EcP256.generate().unwrap()).contains("BEGIN"));
    }
}
