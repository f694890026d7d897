//! Stable payload identifiers and UUIDs. iOS replaces an installed profile that has the same
//! top-level PayloadIdentifier, and payloads refer to each other by UUID
//! (`PayloadCertificateUUID`), so both are derived from (profile, device) rather than drawn at
//! random: rendering again gives the same names and the phone updates in place.

use uuid::Uuid;

/// Namespace for easgate's name-based (v5) UUIDs.
const NAMESPACE: Uuid = Uuid::from_bytes([
    0x6e, 0x61, 0x73, 0x67, 0x61, 0x74, 0x65, 0x2d, 0x8e, 0xa5, 0x67, 0x61, 0x74, 0x65, 0x00, 0x01,
]);

/// The identifier prefix and UUIDs of one (profile, device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadIds {
    prefix: String,
}

impl PayloadIds {
    /// Identifiers under the reversed EAS host (`mail.example.com` → `com.example.mail`), the
    /// organisation's own namespace, then `easgate.{profile}.{device}`.
    pub fn new(eas_host: &str, profile: &str, device: &str) -> Self {
        let host = eas_host.split(':').next().unwrap_or(eas_host);
        let reversed: Vec<&str> = host.split('.').rev().collect();
        let clean = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        };
        PayloadIds {
            prefix: format!(
                "{}.easgate.{}.{}",
                reversed.join("."),
                clean(profile),
                clean(device)
            ),
        }
    }

    /// The identifier of the whole profile, or of one payload when `role` is given.
    pub fn identifier(&self, role: Option<&str>) -> String {
        match role {
            Some(role) => format!("{}.{role}", self.prefix),
            None => self.prefix.clone(),
        }
    }

    /// The UUID (upper case, as Apple writes them) of the whole profile or one payload.
    pub fn uuid(&self, role: Option<&str>) -> String {
        Uuid::new_v5(&NAMESPACE, self.identifier(role).as_bytes())
            .hyphenated()
            .to_string()
            .to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_profile_and_device_and_distinct_per_role() {
        let a = PayloadIds::new("mail.example.com:443", "ios-mail", "dev1");
        let b = PayloadIds::new("mail.example.com:443", "ios-mail", "dev1");
        assert_eq!(a.identifier(None), "com.example.mail.easgate.ios-mail.dev1");
        assert_eq!(a.uuid(Some("eas")), b.uuid(Some("eas")));
        assert_ne!(a.uuid(Some("eas")), a.uuid(Some("scep")));
        let other = PayloadIds::new("mail.example.com", "ios-mail", "dev2");
        assert_ne!(a.uuid(None), other.uuid(None));
        assert_eq!(a.uuid(None).len(), 36);
    }
}
