//! The records the store keeps. Plain data: times are Unix seconds (UTC), serials upper-case
//! hex, key types and states their contract names. Validation happens before a record gets here.

use serde::Serialize;

/// Who is making a change, and when: every mutating call writes one audit event and one
/// change-feed row in the same transaction as the change itself.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: String,
    pub now: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Ca {
    pub name: String,
    pub key_type: String,
    pub subject: String,
    #[serde(skip)]
    pub cert_der: Vec<u8>,
    #[serde(skip)]
    pub key_sealed: Vec<u8>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_before: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Refuse single-DES SCEP envelopes (failInfo badAlg).
    pub scep_no_des: bool,
    /// An EC CA answers GetCACert with its RSA RA alone.
    pub scep_ra_only: bool,
}

#[derive(Clone, Debug)]
pub struct NewCa {
    pub name: String,
    pub key_type: String,
    pub subject: String,
    pub cert_der: Vec<u8>,
    pub key_sealed: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub scep_no_des: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TrustedCa {
    pub name: String,
    pub subject: String,
    #[serde(skip)]
    pub cert_der: Vec<u8>,
    pub crl_url: Option<String>,
    pub delta_crl_url: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewTrustedCa {
    pub name: String,
    pub subject: String,
    pub cert_der: Vec<u8>,
    pub crl_url: Option<String>,
    pub delta_crl_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub name: String,
    pub members: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub upn: String,
    pub email: String,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub groups: Vec<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub upn: String,
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
}

/// One SCEP enrollment, written in one transaction (see `Store::record_scep_enrollment`).
#[derive(Clone, Debug)]
pub struct ScepEnrollment {
    /// The one-time challenge to spend; `None` for a static challenge or a renewal.
    pub challenge: Option<SpentChallenge>,
    pub certificate: NewCertificate,
    /// The certificate a renewal replaces (revoked `superseded`).
    pub supersedes: Option<String>,
    pub ca: String,
    pub transaction_id: String,
    pub key_sha256: String,
    /// The `scep.enroll` audit event's detail.
    pub detail: String,
}

/// The one-time SCEP challenge an enrollment spends, by the SHA-256 (hex) of its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpentChallenge {
    /// A device's own challenge: it must belong to the certificate's device.
    Device(String),
    /// A challenge bound to no device (NDES-style, fetched by an MDM): it must be meant for the
    /// enrollment's CA or for any; it records the device it enrolled.
    Unbound(String),
}

/// A new one-time challenge bound to no device (see `Store::insert_unbound_challenge`).
#[derive(Clone, Debug)]
pub struct NewUnboundChallenge {
    /// SHA-256 of the challenge, hex.
    pub hash_hex: String,
    /// The CA it enrolls at; `None`: any.
    pub ca: Option<String>,
    pub expires_at: i64,
    /// Refuse when this many unused, unexpired ones exist already.
    pub max_live: i64,
}

/// A change to a user (`user set`): only what is given changes.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub add_groups: Vec<String>,
    pub remove_groups: Vec<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Template {
    pub name: String,
    pub ca: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub validity_days: u32,
    pub renew_before_days: u32,
    pub is_default: bool,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewTemplate {
    pub name: String,
    pub ca: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub validity_days: u32,
    pub renew_before_days: u32,
    pub is_default: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub uid: String,
    pub user: String,
    pub platform: String,
    pub template: Option<String>,
    pub state: String,
    pub device_serial: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewDevice {
    pub uid: String,
    pub user: String,
    pub platform: String,
    pub template: Option<String>,
    pub device_serial: Option<String>,
}

/// A device's one-time SCEP challenge and profile-download token: only their SHA-256 hashes
/// are stored.
#[derive(Clone, Debug)]
pub struct NewChallenge {
    pub hash_hex: String,
    pub profile_token_hash_hex: String,
    pub expires_at: i64,
}

/// Status as stored; `expired` is derived at read time from `not_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    Valid,
    Revoked,
    Expired,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Revoked => "revoked",
            CertStatus::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Certificate {
    pub serial: String,
    pub ca: String,
    pub device: Option<String>,
    pub template: Option<String>,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_before: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: i64,
    pub status: CertStatus,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: i64,
    #[serde(skip)]
    pub der: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct NewCertificate {
    pub serial: String,
    pub ca: String,
    pub device: Option<String>,
    pub template: Option<String>,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub not_before: i64,
    pub not_after: i64,
    pub der: Vec<u8>,
}

/// How to revoke: reason name (RFC 5280) and time.
#[derive(Clone, Debug)]
pub struct Revocation {
    pub reason: String,
    pub at: i64,
}

#[derive(Clone, Debug, Default)]
pub struct CertFilter {
    pub device: Option<String>,
    pub status: Option<CertStatus>,
    /// "now" for deciding `expired`.
    pub now: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub revision: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub entity: String,
    pub key: String,
}

/// A revoked certificate as a CRL lists it.
#[derive(Clone, Debug)]
pub struct RevokedCertificate {
    pub serial: String,
    pub revoked_at: i64,
    pub reason: String,
}

/// Full CRL or delta CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrlScope {
    Full,
    Delta,
}

impl CrlScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CrlScope::Full => "full",
            CrlScope::Delta => "delta",
        }
    }
}

/// A published CRL.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Crl {
    pub ca: String,
    pub number: i64,
    pub scope: CrlScope,
    pub base_number: Option<i64>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub this_update: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_update: i64,
    pub entries: i64,
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// What is known of a published CRL without its (possibly large) body.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CrlMeta {
    pub number: i64,
    pub base_number: Option<i64>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub this_update: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_update: i64,
    pub entries: i64,
}

/// A CRL to record (its number came from [`crate::Store::next_crl_number`]).
#[derive(Clone, Debug)]
pub struct NewCrl {
    pub ca: String,
    pub number: i64,
    pub scope: CrlScope,
    pub base_number: Option<i64>,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: i64,
    pub der: Vec<u8>,
}

/// What the OCSP responder needs to know of one certificate.
#[derive(Clone, Debug)]
pub struct CertState {
    pub serial: String,
    pub revoked_at: Option<i64>,
    pub reason: Option<String>,
    pub not_after: i64,
}

/// An access rule as stored. Conditions are contract words (`ios`, `managed`, `10.0.0.0/8`);
/// the policy crate parses them. An empty list matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessRule {
    pub name: String,
    pub priority: i32,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub platforms: Vec<String>,
    pub clients: Vec<String>,
    pub device_states: Vec<String>,
    pub networks: Vec<String>,
    pub action: String,
}

/// An admin's decision for one EAS DeviceId, evaluated before the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EasOverride {
    pub eas_device_id: String,
    pub action: String,
    pub reason: Option<String>,
    /// An allow that admits the device without a certificate (`eas allow --unmanaged`).
    pub unmanaged: bool,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A device partnership: one (user, EAS DeviceId) the gateway has seen, like Exchange's
/// Get-MobileDevice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Partnership {
    pub user: String,
    pub eas_device_id: String,
    /// Requests that named this DeviceId without the certificate it is bound to: a possible
    /// spoof, kept apart from the bound device's own partnership.
    pub suspect: bool,
    pub device_type: Option<String>,
    pub model: Option<String>,
    pub os: Option<String>,
    pub friendly_name: Option<String>,
    pub user_agent: Option<String>,
    pub client: String,
    pub platform: String,
    pub protocol: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: i64,
    /// Last request that reached the mailbox (allowed), if any.
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sync: Option<i64>,
    pub last_command: Option<String>,
    pub cert_serial: Option<String>,
    /// `managed` or `unmanaged`, as of the last request.
    pub device_state: String,
    /// `allow`, `block`, `quarantine` or `refuse` (a hard refusal): the last decision.
    pub access_state: String,
    pub access_reason: String,
    /// The last refused request (blocked or refused) and why.
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_refusal_at: Option<i64>,
    pub last_refusal: Option<String>,
    /// The EAS policy the device last acknowledged at the gateway (`--provision gateway`),
    /// like Exchange's `DevicePolicyApplied`.
    pub policy_applied: Option<String>,
    /// The policy key the device was given with it.
    pub policy_key: Option<i64>,
    /// `AppliedInFull`, `PartiallyApplied`, `NotApplied` or `ExternallyManaged`, as the device
    /// said in its acknowledgement (`DevicePolicyApplicationStatus`).
    pub policy_status: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub policy_updated_at: Option<i64>,
}

/// An EAS device policy (MS-ASPROV), handed out by the gateway in `--provision gateway` mode to
/// the users of its groups (or to everyone else, when it is the default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EasPolicy {
    pub name: String,
    /// The `EASProvisionDoc` settings by their MS-ASPROV element names
    /// (`DevicePasswordEnabled`, `MinDevicePasswordLength`, …) with the values sent.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Groups whose users get this policy.
    pub groups: Vec<String>,
    /// The policy of users in none of the assigned groups (at most one policy is the default).
    pub is_default: bool,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A remote wipe ordered for one EAS DeviceId, like Exchange's `Clear-MobileDevice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EasWipe {
    pub eas_device_id: String,
    /// Only the mail account and its data (EAS 16.1 `AccountOnlyRemoteWipe`).
    pub account_only: bool,
    /// `pending` (not yet sent), `sent`, `succeeded` or `failed` (the device's acknowledgement).
    pub state: String,
    pub requested_by: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<i64>,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ack_at: Option<i64>,
    /// The enrolled device (`device wipe UID`) the wipe was ordered for, if any.
    pub device_uid: Option<String>,
}

impl EasWipe {
    /// The device answered (`succeeded` or `failed`): the DeviceId is refused from then on.
    pub fn is_acknowledged(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed")
    }
}

/// A client certificate's first EAS DeviceId.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CertificateBinding {
    pub serial: String,
    pub eas_device_id: String,
    pub user: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub bound_at: i64,
}

/// A device profile as stored (DESIGN §4 `profile create`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub name: String,
    pub platform: String,
    pub template: String,
    pub eas_host: String,
    pub account_name: String,
    /// Lookup-value templates, e.g. `{EmailAddress}`.
    pub email: String,
    pub username: String,
    pub domain: Option<String>,
    /// `scep`, `pkcs12` or `pkcs12-legacy`.
    pub delivery: String,
    pub groups: Vec<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewProfile {
    pub name: String,
    pub platform: String,
    pub template: String,
    pub eas_host: String,
    pub account_name: String,
    pub email: String,
    pub username: String,
    pub domain: Option<String>,
    pub delivery: String,
    pub groups: Vec<String>,
}

/// A certificate and sealed key easgate keeps for one of its own jobs on a CA (`role`:
/// `scep-ra`, `profile-signer`).
#[derive(Clone, Debug)]
pub struct ServiceKey {
    pub ca: String,
    pub role: String,
    pub cert_der: Vec<u8>,
    pub key_sealed: Vec<u8>,
}

/// Where a profile-download token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Usable,
    /// Downloaded at this time.
    Used(i64),
    /// Expired at this time without being used.
    Expired(i64),
}

/// A profile-download token: its device and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileToken {
    pub device: String,
    pub state: TokenState,
}

/// A renewal enrollment to start for one certificate: a new challenge and profile token for
/// its device.
#[derive(Clone, Debug)]
pub struct NewRenewal {
    pub device: String,
    pub serial: String,
    pub secrets: NewChallenge,
}

/// A renewal enrollment: pending until the device gets a newer certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Renewal {
    pub device: String,
    pub serial: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cleared_at: Option<i64>,
}

/// A valid device certificate inside its template's renewal window.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExpiringCertificate {
    #[serde(flatten)]
    pub certificate: Certificate,
    /// When its window opened: notAfter minus the template's renew-before days.
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub renew_from: i64,
    /// Whether a renewal enrollment has been started for it.
    pub renewal_started: bool,
}

/// An admin API token as kept: its name, role and life, never the token itself.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub name: String,
    /// `admin`, `helpdesk`, `auditor` or `enroller`.
    pub role: String,
    /// SHA-256 of the token, hex: compared in constant time, never shown.
    #[serde(skip)]
    pub hash: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "crate::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub name: String,
    pub role: String,
    pub hash: String,
    pub expires_at: Option<i64>,
}

/// One page of a list walked in key order: at most `limit` records after the key `after`.
/// Each page is an index range scan, so page 900 costs what page 1 costs.
#[derive(Clone, Debug)]
pub struct PageQuery<K> {
    pub after: Option<K>,
    pub limit: u32,
}

/// The key partnerships are listed by: (user, EAS DeviceId, suspect).
pub type PartnershipKey = (String, String, bool);

#[derive(Clone, Debug, Default)]
pub struct PartnershipFilter {
    pub user: Option<String>,
    /// Access state: `allow`, `block`, `quarantine` or `refuse`.
    pub state: Option<String>,
    /// Device state: `managed` or `unmanaged`.
    pub status: Option<String>,
    /// Substring of the DeviceId, user, model, friendly name or user agent (case-insensitive).
    pub text: Option<String>,
    /// `ios`, `android`, `windows` or `other`.
    pub platform: Option<String>,
    /// `native`, `outlook` or `other`.
    pub client: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeviceFilter {
    pub user: Option<String>,
    /// `pending`, `enrolled`, `retired` or `wiped`.
    pub state: Option<String>,
    pub platform: Option<String>,
    /// Substring of the uid, user or device serial (case-insensitive).
    pub text: Option<String>,
}

#[derive(Clone, Debug)]
pub struct CertPageFilter {
    pub device: Option<String>,
    pub user: Option<String>,
    pub status: Option<CertStatus>,
    pub ca: Option<String>,
    /// Substring of the subject or serial (case-insensitive).
    pub text: Option<String>,
    /// "now" for deciding `expired`.
    pub now: i64,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub since: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The event's target, whole (`device:dev1`) or its key alone (`dev1`).
    pub subject: Option<String>,
    /// Substring of the target or detail (case-insensitive).
    pub text: Option<String>,
    /// Newest first (the cursor then pages back in time).
    pub newest_first: bool,
}
