//! PKCS#12 bundles (key + certificate + CA) for the server-generated-key delivery path, built
//! with `p12-keystore`. The modern form (PBES2 with AES-256-CBC and an HMAC-SHA-256 MAC) is
//! what OpenSSL 3, current iOS and Android import; the legacy form (PBE-SHA1-3DES and an
//! HMAC-SHA-1 MAC) is for older devices whose importers know nothing newer.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey as P12Key,
    PrivateKeyChain,
};

use crate::{PkiError, PrivateKey};

/// Which encryption and MAC a bundle uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pkcs12Format {
    /// PBES2 / AES-256-CBC, HMAC-SHA-256.
    Modern,
    /// PBE-SHA1-3DES, HMAC-SHA-1 (iOS before 13, old Android builds).
    Legacy,
}

/// Bundle `key`, its certificate and the CA certificate under `password` with `friendly_name`.
pub fn build(
    key: &PrivateKey,
    cert_der: &[u8],
    ca_der: &[u8],
    friendly_name: &str,
    password: &str,
    format: Pkcs12Format,
) -> Result<Vec<u8>, PkiError> {
    let err = |e: p12_keystore::error::Error| PkiError::Pkcs12(e.to_string());
    let leaf = Certificate::from_der(cert_der).map_err(err)?;
    let ca = Certificate::from_der(ca_der).map_err(err)?;
    let p12_key = P12Key::from_der(&key.pkcs8_der()).map_err(err)?;
    let mut local_key_id = [0u8; 20];
    aws_lc_rs::rand::fill(&mut local_key_id).map_err(|_| PkiError::Pkcs12("randomness".into()))?;
    let chain = PrivateKeyChain::new(local_key_id.to_vec(), p12_key, [leaf, ca]);
    let mut store = KeyStore::new();
    store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    let writer = store.writer(password);
    let writer = match format {
        Pkcs12Format::Modern => writer,
        Pkcs12Format::Legacy => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1),
    };
    writer.write().map_err(err)
}
