//! Certificate serial numbers: 16 random bytes, positive, printed as OpenSSL prints them.

use std::fmt;
use std::str::FromStr;

use crate::PkiError;

/// A certificate serial number as the big-endian bytes of a positive DER INTEGER (no leading
/// zero byte). Displayed as upper-case hex without separators, like `openssl x509 -serial`;
/// parsed from any case, with or without colons.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh random serial: 16 bytes from the system CSPRNG. The top bit is cleared (positive
    /// INTEGER) and the next one set, so every serial is exactly 16 bytes / 32 hex digits long
    /// (126 bits of entropy, well above the 64 bits RFC 5280 and the CA/B Forum ask for).
    pub fn random() -> Result<Self, PkiError> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::KeyGeneration("serial number"))?;
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Ok(Serial(bytes.to_vec()))
    }

    /// From the big-endian bytes of a DER INTEGER (leading zero bytes are dropped).
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Serial(bytes[first..].to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hex, no separators: the canonical form stored and printed.
    pub fn to_hex(&self) -> String {
        if self.0.is_empty() {
            return "00".to_string();
        }
        hex::encode_upper(&self.0)
    }
}

impl FromStr for Serial {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.trim().chars().filter(|c| *c != ':').collect();
        if digits.is_empty() || digits.len() > 64 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(PkiError::InvalidSerial(s.to_string()));
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(&padded).map_err(|_| PkiError::InvalidSerial(s.to_string()))?;
        Ok(Serial::from_be_bytes(&bytes))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_16_positive_bytes_and_distinct() {
        let a = Serial::random().unwrap();
        let b = Serial::random().unwrap();
        assert_eq!(a.as_bytes().len(), 16);
        assert!(a.as_bytes()[0] & 0x80 == 0 && a.as_bytes()[0] != 0);
        assert_ne!(a, b);
        assert_eq!(a.to_hex().len(), 32);
    }

    #[test]
    fn parses_any_case_with_or_without_colons() {
        let s: Serial = "0a:Bc:12".parse().unwrap();
        assert_eq!(s.to_hex(), "0ABC12");
        let t: Serial = "abc12".parse().unwrap();
        assert_eq!(s, t);
        assert!("xyz".parse::<Serial>().is_err());
        assert!("".parse::<Serial>().is_err());
    }
}
