//! Device profiles: what puts the mail account and its certificate on a phone.
//!
//! - [`apple::render`] writes an Apple configuration profile (`.mobileconfig`, an XML property
//!   list) with an Exchange ActiveSync payload, a credential payload (SCEP, or PKCS#12 with a
//!   key easgate made) and, when the gateway's TLS certificate is ours, a root payload.
//! - [`android::render`] writes the Android Enterprise managed configuration of the Gmail app
//!   (the mainstream EAS client there) and says how the certificate reaches the device.
//! - [`signing::sign`] wraps a rendered profile in CMS SignedData, which iOS shows as
//!   "Verified".
//!
//! Like the other pure crates it takes every value (names, secrets, certificates, time) as an
//! argument and does no I/O: `ops` decides what goes in, this crate only writes it down.

pub mod android;
pub mod apple;
mod host;
mod ids;
pub mod signing;

pub use host::check_eas_host;
pub use ids::PayloadIds;

/// Why a profile could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("EAS host `{host}`: {why}")]
    InvalidHost { host: String, why: String },
    #[error("writing the property list: {0}")]
    Plist(String),
    #[error("signing the profile: {0}")]
    Sign(String),
}

/// The mail account a profile sets up, lookup values already filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAccount {
    /// What the phone shows as the account's name.
    pub account_name: String,
    /// The gateway's host name (and port, if not 443), as checked by [`check_eas_host`].
    pub host: String,
    pub email: String,
    pub username: String,
    pub domain: Option<String>,
}

/// A SCEP enrollment the phone performs itself (it makes its own key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScepCredential {
    /// `…/scep/{ca}` on the public listener.
    pub url: String,
    /// The CA identifier sent with GetCACert (easgate's CA name).
    pub ca_name: String,
    /// The subject the template gives, one attribute per RDN: (`CN`, `device-1`), …
    pub subject: Vec<(String, String)>,
    /// The device's one-time challenge.
    pub challenge: String,
    /// SAN values the certificate will carry.
    pub rfc822_names: Vec<String>,
    pub nt_principal_names: Vec<String>,
    pub dns_names: Vec<String>,
    pub uris: Vec<String>,
    /// DER of the CA certificate the phone must find in GetCACert (its fingerprint pins it).
    pub ca_der: Vec<u8>,
}

/// A key and certificate easgate made, in a password-protected PKCS#12 bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs12Credential {
    pub bundle: Vec<u8>,
    pub password: String,
    /// The bundle's name as the phone shows it.
    pub file_name: String,
}

impl std::fmt::Debug for Pkcs12Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs12Credential({}, {} bytes, <password redacted>)",
            self.file_name,
            self.bundle.len()
        )
    }
}

/// How the certificate reaches the phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Scep(ScepCredential),
    Pkcs12(Pkcs12Credential),
}

/// A root certificate the phone must trust (the CA of the gateway's TLS certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootCertificate {
    pub name: String,
    pub der: Vec<u8>,
}

/// Everything one device's profile says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    /// The easgate profile's name (part of every identifier).
    pub profile_name: String,
    pub device_uid: String,
    pub account: MailAccount,
    pub credential: Credential,
    pub root: Option<RootCertificate>,
}

impl DeviceProfile {
    /// Identifiers and UUIDs of this profile's payloads: the same for the same profile and
    /// device, so a re-rendered profile replaces the installed one instead of adding a second.
    pub fn ids(&self) -> PayloadIds {
        PayloadIds::new(&self.account.host, &self.profile_name, &self.device_uid)
    }
}
