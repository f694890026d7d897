//! Certificate templates: a subject and SANs written with lookup values such as
//! `CN={DeviceUid}` or `upn:{UserPrincipalName}`, checked when the template is created and
//! filled in for one device at issuance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{dn, PkiError};

/// The lookup values a template may use (DESIGN §4).
pub const LOOKUP_VALUES: [&str; 7] = [
    "DeviceUid",
    "UserPrincipalName",
    "EmailAddress",
    "UserName",
    "DisplayName",
    "DeviceSerial",
    "Platform",
];

/// The values for one device and its user.
#[derive(Clone, Debug, Default)]
pub struct LookupValues {
    pub device_uid: String,
    pub user_principal_name: String,
    pub email_address: String,
    pub display_name: Option<String>,
    pub device_serial: Option<String>,
    pub platform: String,
}

impl LookupValues {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "DeviceUid" => Some(self.device_uid.clone()),
            "UserPrincipalName" => Some(self.user_principal_name.clone()),
            "EmailAddress" => Some(self.email_address.clone()),
            "UserName" => Some(
                self.user_principal_name
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            "DisplayName" => self.display_name.clone().filter(|s| !s.is_empty()),
            "DeviceSerial" => self.device_serial.clone().filter(|s| !s.is_empty()),
            "Platform" => Some(self.platform.clone()),
            _ => None,
        }
    }
}

/// Check that every `{Name}` in `text` is a known lookup value and braces balance.
pub fn check_lookups(text: &str) -> Result<(), PkiError> {
    for_each_token(text, |_| Some("x".to_string())).map(|_| ())
}

/// Replace each `{Name}` with its value.
pub fn fill(text: &str, values: &LookupValues) -> Result<String, PkiError> {
    for_each_token(text, |name| values.get(name))
}

fn for_each_token(
    text: &str,
    mut value_of: impl FnMut(&str) -> Option<String>,
) -> Result<String, PkiError> {
    let invalid = |why: String| PkiError::InvalidTemplate {
        template: text.to_string(),
        why,
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(invalid("a `}` without its `{`".into()));
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| invalid("a `{` without its `}`".into()))?;
        let name = &after[..close];
        if !LOOKUP_VALUES.contains(&name) {
            return Err(invalid(format!(
                "unknown lookup value `{{{name}}}`; known: {}",
                LOOKUP_VALUES.map(|v| format!("{{{v}}}")).join(", ")
            )));
        }
        let value = value_of(name).ok_or_else(|| PkiError::MissingLookupValue(name.to_string()))?;
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The kinds of subject alternative name a template can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SanKind {
    /// rfc822Name
    Email,
    /// otherName 1.3.6.1.4.1.311.20.2.3 (Microsoft UPN), UTF8String
    Upn,
    /// dNSName
    Dns,
    /// uniformResourceIdentifier
    Uri,
    /// iPAddress (IPv4 or IPv6)
    Ip,
}

impl SanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SanKind::Email => "email",
            SanKind::Upn => "upn",
            SanKind::Dns => "dns",
            SanKind::Uri => "uri",
            SanKind::Ip => "ip",
        }
    }
}

/// One SAN of a template, e.g. `upn:{UserPrincipalName}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanTemplate {
    pub kind: SanKind,
    pub value: String,
}

impl FromStr for SanTemplate {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            PkiError::InvalidSan(
                s.into(),
                "expected TYPE:VALUE with TYPE email, upn, dns, uri or ip".into(),
            )
        })?;
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "email" => SanKind::Email,
            "upn" => SanKind::Upn,
            "dns" => SanKind::Dns,
            "uri" => SanKind::Uri,
            "ip" => SanKind::Ip,
            other => {
                return Err(PkiError::InvalidSan(
                    s.into(),
                    format!("unknown type `{other}` (use email, upn, dns, uri or ip)"),
                ))
            }
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(PkiError::InvalidSan(s.into(), "empty value".into()));
        }
        check_lookups(&value)?;
        Ok(SanTemplate { kind, value })
    }
}

impl fmt::Display for SanTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// A SAN with its lookup values filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct San {
    pub kind: SanKind,
    pub value: String,
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// The certificate-shaping part of a template, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSpec {
    pub subject: String,
    pub sans: Vec<SanTemplate>,
}

impl TemplateSpec {
    /// Validate a subject template and SAN templates: lookup values must be known and the
    /// subject must be a well-formed DN once filled in.
    pub fn new(subject: &str, sans: Vec<SanTemplate>) -> Result<Self, PkiError> {
        check_lookups(subject)?;
        let sample = LookupValues {
            device_uid: "sample".into(),
            user_principal_name: "user@example.com".into(),
            email_address: "user@example.com".into(),
            display_name: Some("Sample".into()),
            device_serial: Some("SERIAL".into()),
            platform: "ios".into(),
        };
        dn::split(&fill(subject, &sample)?).map_err(|e| PkiError::InvalidTemplate {
            template: subject.to_string(),
            why: e.to_string(),
        })?;
        Ok(TemplateSpec {
            subject: subject.to_string(),
            sans,
        })
    }

    /// Fill in the lookup values for one device.
    pub fn render(&self, values: &LookupValues) -> Result<RenderedTemplate, PkiError> {
        let subject = fill(&self.subject, values)?;
        let subject_dn = dn::split(&subject)?;
        let sans = self
            .sans
            .iter()
            .map(|san| {
                let value = fill(&san.value, values)?;
                check_san_value(san.kind, &value)?;
                Ok(San {
                    kind: san.kind,
                    value,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        Ok(RenderedTemplate {
            subject,
            subject_dn,
            sans,
        })
    }
}

/// A template filled in for one device.
#[derive(Clone, Debug)]
pub struct RenderedTemplate {
    pub subject: String,
    pub subject_dn: Vec<dn::DnAttribute>,
    pub sans: Vec<San>,
}

fn check_san_value(kind: SanKind, value: &str) -> Result<(), PkiError> {
    let bad = |why: &str| PkiError::InvalidSan(format!("{}:{value}", kind.as_str()), why.into());
    match kind {
        SanKind::Email | SanKind::Upn => {
            if !looks_like_address(value) {
                return Err(bad("not of the form local@domain"));
            }
            if kind == SanKind::Email && !value.is_ascii() {
                return Err(bad("an rfc822Name must be ASCII"));
            }
        }
        SanKind::Dns => {
            if value.is_empty()
                || !value.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                })
            {
                return Err(bad("not a DNS name"));
            }
        }
        SanKind::Uri => {
            if !value.is_ascii() || !value.contains(':') || value.contains(char::is_whitespace) {
                return Err(bad("not an absolute URI"));
            }
        }
        SanKind::Ip => {
            if value.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("not an IPv4 or IPv6 address"));
            }
        }
    }
    Ok(())
}

/// `local@domain` with a dotted domain and no white space: the check used for UPNs and email
/// addresses alike.
pub fn looks_like_address(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.contains(char::is_whitespace)
        && !value.contains(['<', '>', ',', ';', '"'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> LookupValues {
        LookupValues {
            device_uid: "dev-1".into(),
            user_principal_name: "alice@corp.example".into(),
            email_address: "alice@mail.example".into(),
            display_name: None,
            device_serial: None,
            platform: "ios".into(),
        }
    }

    #[test]
    fn renders_lookup_values() {
        let spec = TemplateSpec::new(
            "CN={DeviceUid},OU={Platform}",
            vec![
                "email:{EmailAddress}".parse().unwrap(),
                "upn:{UserPrincipalName}".parse().unwrap(),
            ],
        )
        .unwrap();
        let r = spec.render(&values()).unwrap();
        assert_eq!(r.subject, "CN=dev-1,OU=ios");
        assert_eq!(r.sans[0].value, "alice@mail.example");
        assert_eq!(r.sans[1].value, "alice@corp.example");
        assert_eq!(fill("{UserName}", &values()).unwrap(), "alice");
    }

    #[test]
    fn unknown_lookup_values_fail_at_creation() {
        assert!(TemplateSpec::new("CN={DeviceId}", vec![]).is_err());
        assert!("email:{Mail}".parse::<SanTemplate>().is_err());
        assert!(TemplateSpec::new("CN={DeviceUid", vec![]).is_err());
        assert!(TemplateSpec::new("CN=}", vec![]).is_err());
        assert!("fax:123".parse::<SanTemplate>().is_err());
    }

    #[test]
    fn missing_optional_value_fails_at_render() {
        let spec = TemplateSpec::new("CN={DeviceSerial}", vec![]).unwrap();
        assert!(matches!(
            spec.render(&values()),
            Err(PkiError::MissingLookupValue(_))
        ));
    }

    #[test]
    fn addresses() {
        assert!(looks_like_address("a@b.c"));
        for bad in ["a", "@b.c", "a@", "a@b", "a b@c.d", "a@b@c.d", "a@.c"] {
            assert!(!looks_like_address(bad), "{bad}");
        }
    }
}
