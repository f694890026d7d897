//! Sealing secrets (CA private keys) with the master key: AES-256-GCM from aws-lc-rs.
//!
//! Format of a sealed blob: `b"EGS1"` ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag.
//! The associated data binds the blob to its owner (for a CA: `ca:` + its name), so a sealed
//! key copied onto another row does not open.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::PkiError;

const MAGIC: &[u8; 4] = b"EGS1";

/// The 256-bit master key. Never printed: `Debug` redacts it.
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> Result<Self, PkiError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::KeyGeneration("master key"))?;
        Ok(MasterKey(bytes))
    }

    /// Parse the textual form: 64 hex digits (surrounding white space ignored).
    pub fn from_text(text: &str) -> Result<Self, PkiError> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|_| {
            PkiError::InvalidMasterKey("expected 64 hexadecimal digits (32 bytes)".into())
        })?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            PkiError::InvalidMasterKey("expected 64 hexadecimal digits (32 bytes)".into())
        })?;
        Ok(MasterKey(array))
    }

    /// The textual form written to `DATA/master.key`.
    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    fn aead(&self) -> Result<LessSafeKey, PkiError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0).map_err(|_| PkiError::Seal)?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Encrypt `plaintext`, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce_bytes).map_err(|_| PkiError::Seal)?;
        let mut in_out = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| PkiError::Seal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + in_out.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Decrypt a blob made by [`MasterKey::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rest = sealed
            .strip_prefix(MAGIC.as_slice())
            .ok_or(PkiError::Unseal)?;
        if rest.len() < NONCE_LEN + 16 {
            return Err(PkiError::Unseal);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| PkiError::Unseal)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| PkiError::Unseal)?;
        Ok(plain.to_vec())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let key = MasterKey::generate().unwrap();
        let blob = key.seal("ca:default", b"secret key bytes").unwrap();
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("ca:default", &blob).unwrap(), b"secret key bytes");
        assert!(key.open("ca:other", &blob).is_err());
        let other = MasterKey::generate().unwrap();
        assert!(other.open("ca:default", &blob).is_err());
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open("ca:default", &tampered).is_err());
        assert!(key.open("ca:default", b"EGS1short").is_err());
    }

    #[test]
    fn text_form_round_trips() {
        let key = MasterKey::generate().unwrap();
        let again = MasterKey::from_text(&format!("{}\n", key.to_text())).unwrap();
        assert_eq!(key.0, again.0);
        assert!(MasterKey::from_text("abcd").is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }
}
