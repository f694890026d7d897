//! Hard refusals: what refuses a request before any override, rule or default is looked at.
//!
//! The gateway finds the facts (did the certificate pass, is the user disabled, does `User=`
//! name the certificate's user, is the certificate bound to another DeviceId); this module
//! alone turns them into a refusal, in one fixed order, so the gateway and `policy test` cannot
//! disagree and no rule, override or default can ever allow such a request (docs/security.md).

use std::fmt;

/// How the request's client certificate stands after the gateway's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certificate {
    /// Presented and passed every check: chain, validity, clientAuth EKU, revocation, identity.
    Valid,
    /// None presented: an unmanaged device.
    Absent,
    /// Presented and failed a check; the word says which (`revoked`, `expired`, `untrusted`, …).
    /// A bad certificate is refused, never treated as "no certificate".
    Failed(&'static str),
}

impl Certificate {
    /// Managed only with a valid certificate.
    pub fn device_state(self) -> crate::DeviceState {
        match self {
            Certificate::Valid => crate::DeviceState::Managed,
            Certificate::Absent | Certificate::Failed(_) => crate::DeviceState::Unmanaged,
        }
    }
}

/// Why a request is refused whatever the policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HardRefusal {
    /// The presented certificate failed the check named.
    Certificate(&'static str),
    /// `User=` is not the certificate's user.
    IdentityMismatch,
    /// The user (named by the certificate, or by the request when it has none) is disabled.
    UserDisabled,
    /// The certificate is bound to another EAS DeviceId (possible stolen certificate).
    BoundElsewhere,
    /// The EAS DeviceId acknowledged a remote wipe: it is cut off until an admin forgets it
    /// (`eas clear`).
    DeviceWiped,
    /// No valid certificate while the upstream trusts the gateway's user header
    /// (`--upstream-auth trusted-header`): such a request is never forwarded.
    CertificateRequired,
}

impl HardRefusal {
    /// Metric label, log word and audit cause.
    pub fn cause(self) -> &'static str {
        match self {
            HardRefusal::Certificate(kind) => match kind {
                "revoked" => "certificate-revoked",
                "expired" => "certificate-expired",
                "not-yet-valid" => "certificate-not-yet-valid",
                "untrusted" => "certificate-untrusted",
                "no-client-auth-eku" => "certificate-no-client-auth",
                "no-identity" => "certificate-no-identity",
                "malformed" => "certificate-malformed",
                "revocation-unknown" => "certificate-revocation-unknown",
                "store-unreachable" => "certificate-store-unreachable",
                _ => "certificate-invalid",
            },
            HardRefusal::IdentityMismatch => "identity-mismatch",
            HardRefusal::UserDisabled => "user-disabled",
            HardRefusal::BoundElsewhere => "certificate-bound-elsewhere",
            HardRefusal::DeviceWiped => "device-wiped",
            HardRefusal::CertificateRequired => "certificate-required",
        }
    }
}

impl fmt::Display for HardRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HardRefusal::Certificate(kind) => write!(f, "client certificate failed: {kind}"),
            HardRefusal::IdentityMismatch => {
                f.write_str("request User is not the certificate's user")
            }
            HardRefusal::UserDisabled => f.write_str("user is disabled"),
            HardRefusal::BoundElsewhere => {
                f.write_str("certificate belongs to another device (possible stolen certificate)")
            }
            HardRefusal::DeviceWiped => f.write_str("this device was remotely wiped"),
            HardRefusal::CertificateRequired => f.write_str(
                "no valid client certificate, and trusted-header mode forwards only requests with one",
            ),
        }
    }
}

/// The facts a hard refusal is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub certificate: Certificate,
    pub identity_mismatch: bool,
    pub user_disabled: bool,
    pub bound_elsewhere: bool,
    /// The request's DeviceId acknowledged a remote wipe.
    pub device_wiped: bool,
}

/// The first hard refusal that applies, in the documented order: the certificate, the user it
/// names, the user's state, the certificate's DeviceId, a wiped DeviceId, then the upstream
/// mode's demand.
pub fn hard_refusal(facts: &Facts, certificate_required: bool) -> Option<HardRefusal> {
    if let Certificate::Failed(kind) = facts.certificate {
        return Some(HardRefusal::Certificate(kind));
    }
    if facts.identity_mismatch {
        return Some(HardRefusal::IdentityMismatch);
    }
    if facts.user_disabled {
        return Some(HardRefusal::UserDisabled);
    }
    if facts.bound_elsewhere {
        return Some(HardRefusal::BoundElsewhere);
    }
    if facts.device_wiped {
        return Some(HardRefusal::DeviceWiped);
    }
    if certificate_required && facts.certificate != Certificate::Valid {
        return Some(HardRefusal::CertificateRequired);
    }
    None
}
