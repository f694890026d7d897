//! PKCS#12 bundles (key + certificate + CA) for the server-generated-key delivery path, built
//! with `p12-keystore`: PBES2 with AES-256-CBC and an HMAC-SHA-256 MAC, which OpenSSL 3,
//! iOS and Android import.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey as P12Key, PrivateKeyChain};

use crate::{PkiError, PrivateKey};

/// Bundle `key`, its certificate and the CA certificate under `password` with `friendly_name`.
pub fn build(
    key: &PrivateKey,
    cert_der: &[u8],
    ca_der: &[u8],
    friendly_name: &str,
    password: &str,
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
    store.writer(password).write().map_err(err)
}
