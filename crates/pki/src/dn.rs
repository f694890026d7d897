//! Distinguished names written as text: `CN=Device 1,O=Example\, Inc.,C=DE`.
//!
//! Attributes are separated by commas (`\,` escapes a literal comma) and listed
//! most-significant last is *not* assumed: the order written is the order encoded.

use rcgen::{DistinguishedName, DnType};

use crate::PkiError;

/// One `TYPE=value` pair of a DN string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnAttribute {
    pub kind: String,
    pub value: String,
}

/// Split a DN string into attributes, validating the attribute types.
pub fn split(dn: &str) -> Result<Vec<DnAttribute>, PkiError> {
    let invalid = |why: &str| PkiError::InvalidDn {
        dn: dn.to_string(),
        why: why.to_string(),
    };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => return Err(invalid("ends with a lone backslash")),
            },
            ',' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut attributes = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            return Err(invalid(
                "empty attribute (two commas in a row, or a trailing comma)",
            ));
        }
        let (kind, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(&format!("`{part}` is not TYPE=value")))?;
        let kind = kind.trim().to_ascii_uppercase();
        let value = value.trim().to_string();
        if dn_type(&kind).is_none() {
            return Err(invalid(&format!(
                "unknown attribute type `{kind}` (use CN, O, OU, C, L, ST, E or DC)"
            )));
        }
        if value.is_empty() {
            return Err(invalid(&format!("`{kind}` has an empty value")));
        }
        if kind == "C" && (value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic())) {
            return Err(invalid("C must be a two-letter country code"));
        }
        attributes.push(DnAttribute { kind, value });
    }
    Ok(attributes)
}

fn dn_type(kind: &str) -> Option<DnType> {
    Some(match kind {
        "CN" => DnType::CommonName,
        "O" => DnType::OrganizationName,
        "OU" => DnType::OrganizationalUnitName,
        "C" => DnType::CountryName,
        "L" => DnType::LocalityName,
        "ST" => DnType::StateOrProvinceName,
        "E" => DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
        "DC" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        _ => return None,
    })
}

/// Build an rcgen DN from validated attributes.
pub fn to_rcgen(attributes: &[DnAttribute]) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    for attr in attributes {
        let kind = dn_type(&attr.kind).ok_or_else(|| PkiError::InvalidDn {
            dn: attr.kind.clone(),
            why: "unknown attribute type".into(),
        })?;
        let value =
            match attr.kind.as_str() {
                // Country is a PrintableString; E and DC are IA5String by their definitions.
                "C" => rcgen::DnValue::PrintableString(attr.value.clone().try_into().map_err(
                    |_| PkiError::InvalidDn {
                        dn: attr.value.clone(),
                        why: "not printable".into(),
                    },
                )?),
                "E" | "DC" => {
                    rcgen::DnValue::Ia5String(attr.value.clone().try_into().map_err(|_| {
                        PkiError::InvalidDn {
                            dn: attr.value.clone(),
                            why: "not ASCII".into(),
                        }
                    })?)
                }
                _ => rcgen::DnValue::Utf8String(attr.value.clone()),
            };
        dn.push(kind, value);
    }
    Ok(dn)
}

/// Parse a DN string straight into rcgen's form.
pub fn parse(dn: &str) -> Result<DistinguishedName, PkiError> {
    to_rcgen(&split(dn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_escapes() {
        let attrs = split("CN=Dev 1, O=Example\\, Inc.,c=DE").unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[1].value, "Example, Inc.");
        assert_eq!(attrs[2].kind, "C");
    }

    #[test]
    fn rejects_bad_dns() {
        for bad in ["", "CN", "CN=", "XX=1", "CN=a,,O=b", "C=Germany", "CN=a\\"] {
            assert!(split(bad).is_err(), "{bad} should fail");
        }
    }
}
