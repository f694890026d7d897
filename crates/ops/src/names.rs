//! Validation of the names administrators choose (CA, template, group, device uid): they end up
//! in URLs (`/crl/{ca}.crl`) and file names, so they are kept to a safe alphabet.

use crate::error::{OpsError, Result};

/// `[A-Za-z0-9]` first, then letters, digits, `.`, `_`, `-`; 1 to 64 characters.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "invalid {kind} name `{name}`: use 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        )))
    }
}

/// CA names: as [`check_name`], and not ending in `-delta`, which would make
/// `/crl/NAME-delta.crl` ambiguous between a CA's delta CRL and another CA's full CRL.
pub fn check_ca_name(name: &str) -> Result<()> {
    check_name("CA", name)?;
    if name.to_ascii_lowercase().ends_with("-delta") {
        return Err(OpsError::Invalid(format!(
            "invalid CA name `{name}`: it must not end in `-delta` (that suffix names delta CRLs)"
        )));
    }
    Ok(())
}

/// Device platforms of the contract.
pub const PLATFORMS: [&str; 3] = ["ios", "android", "windows"];

pub fn check_platform(platform: &str) -> Result<String> {
    let p = platform.trim().to_ascii_lowercase();
    if PLATFORMS.contains(&p.as_str()) {
        Ok(p)
    } else {
        Err(OpsError::Invalid(format!(
            "unknown platform `{platform}` (expected ios, android or windows)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("CA", "default").is_ok());
        assert!(check_name("CA", "mail-ca.2026_a").is_ok());
        for bad in ["", "-x", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(check_name("CA", bad).is_err(), "{bad}");
        }
        assert_eq!(check_platform("iOS").unwrap(), "ios");
        assert!(check_platform("symbian").is_err());
    }
}
