//! MS-ASPROV as the gateway speaks it: reading a device's Provision request (a policy
//! download, its acknowledgement, or a remote wipe's acknowledgement) and building the answers
//! (the policy with its key, the final key, refusals by Status, the wipe order), and the
//! command Statuses (MS-ASCMD §2.2.2) that tell a device to provision again (sent in
//! [`crate::responses::status_only`]).
//!
//! Free of I/O and of policy storage: the gateway decides which policy and which key.

use crate::device::provision;
use crate::wbxml::{decode, Element, WbxmlError};

/// The policy type of EAS 12.0 and later (2.5's `MS-WAP-Provisioning-XML` is not offered).
pub const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

/// Command Status 140: the device must provision to receive a remote wipe.
pub const STATUS_REMOTE_WIPE_REQUESTED: &str = "140";
/// Command Status 142: the request has no policy key; the device must provision.
pub const STATUS_DEVICE_NOT_PROVISIONED: &str = "142";
/// Command Status 143: the policy changed since the device's key; provision again.
pub const STATUS_POLICY_REFRESH: &str = "143";
/// Command Status 144: the policy key is not one the server gave.
pub const STATUS_INVALID_POLICY_KEY: &str = "144";

/// Provision Status 2 (top level): the request could not be read.
pub const PROVISION_PROTOCOL_ERROR: &str = "2";
/// Provision Status 3 (top level): the server failed; the device retries.
pub const PROVISION_SERVER_ERROR: &str = "3";
/// Policy Status 3: the policy type is not one the server knows.
pub const POLICY_UNKNOWN_TYPE: &str = "3";
/// Policy Status 5: the device acknowledged a policy key the server did not give it.
pub const POLICY_WRONG_KEY: &str = "5";

/// `EASProvisionDoc` settings the gateway sends, in code-page order (the schema's sequence).
pub const SETTINGS: &[&str] = &[
    "DevicePasswordEnabled",
    "AlphanumericDevicePasswordRequired",
    "MinDevicePasswordLength",
    "MaxInactivityTimeDeviceLock",
    "MaxDevicePasswordFailedAttempts",
    "AllowSimpleDevicePassword",
    "DevicePasswordExpiration",
    "DevicePasswordHistory",
    "AllowStorageCard",
    "AllowCamera",
    "RequireDeviceEncryption",
];

/// What a device's Provision request asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvisionRequest {
    /// Phase one: the policy of `policy_type`, no key yet.
    Download { policy_type: String },
    /// Phase two: the device applied the policy it got with the temporary `key`; its Status
    /// (`1` applied in full, `2` partly, `3` not applied, `4` managed by a third party).
    Acknowledge {
        policy_type: String,
        key: String,
        status: Option<String>,
    },
    /// The device reports on a remote wipe: Status `1` done, `2` failed.
    WipeAcknowledged { account_only: bool, status: String },
}

/// Why a Provision body cannot be answered with a policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvisionError {
    #[error("the body is not WBXML: {0}")]
    NotWbxml(WbxmlError),
    #[error("the body is a {namespace}:{name} document, not Provision")]
    NotProvision {
        namespace: &'static str,
        name: &'static str,
    },
    #[error("the Provision request has neither Policies/Policy/PolicyType nor a wipe status")]
    Incomplete,
}

/// Read a Provision request body (its fields as [`crate::device::provision`] reads them).
pub fn read_request(body: &[u8]) -> Result<ProvisionRequest, ProvisionError> {
    let doc = decode(body).map_err(ProvisionError::NotWbxml)?;
    let root = doc.root();
    let fields = provision(root).ok_or(ProvisionError::NotProvision {
        namespace: root.namespace(),
        name: root.name(),
    })?;
    let trimmed =
        |text: Option<String>| text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let acknowledged = [
        (fields.remote_wipe_status, false),
        (fields.account_only_remote_wipe_status, true),
    ];
    for (status, account_only) in acknowledged {
        if let Some(status) = trimmed(status) {
            return Ok(ProvisionRequest::WipeAcknowledged {
                account_only,
                status,
            });
        }
    }
    let policy_type = trimmed(fields.policy_type).ok_or(ProvisionError::Incomplete)?;
    Ok(match trimmed(fields.policy_key) {
        Some(key) => ProvisionRequest::Acknowledge {
            policy_type,
            key,
            status: trimmed(fields.policy_status),
        },
        None => ProvisionRequest::Download { policy_type },
    })
}

/// `DevicePolicyApplicationStatus` (as Exchange names it) for an acknowledgement's Status.
pub fn application_status(status: Option<&str>) -> &'static str {
    match status {
        Some("1") => "AppliedInFull",
        Some("2") => "PartiallyApplied",
        Some("3") => "NotApplied",
        Some("4") => "ExternallyManaged",
        _ => "Unknown",
    }
}

fn el(name: &str) -> Result<Element, WbxmlError> {
    Element::new("Provision", name)
}

fn text(name: &str, value: &str) -> Result<Element, WbxmlError> {
    Ok(el(name)?.with_text(value))
}

/// `<Provision><Status>1</Status><Policies><Policy>…</Policy></Policies></Provision>`
fn with_policy(policy: Element) -> Result<Element, WbxmlError> {
    Ok(el("Provision")?
        .with(text("Status", "1")?)
        .with(el("Policies")?.with(policy)))
}

/// Phase one's answer: the policy (`settings` by element name, sent in [`SETTINGS`] order;
/// unknown names are left out) with the temporary key the device acknowledges with.
pub fn policy_download(settings: &[(&str, &str)], key: u32) -> Result<Element, WbxmlError> {
    let mut doc = el("EASProvisionDoc")?;
    for name in SETTINGS {
        if let Some((_, value)) = settings.iter().find(|(n, _)| n == name) {
            doc = doc.with(text(name, value)?);
        }
    }
    with_policy(
        el("Policy")?
            .with(text("PolicyType", POLICY_TYPE)?)
            .with(text("Status", "1")?)
            .with(text("PolicyKey", &key.to_string())?)
            .with(el("Data")?.with(doc)),
    )
}

/// Phase two's answer: the final policy key, to be sent with every command.
pub fn policy_acknowledged(key: u32) -> Result<Element, WbxmlError> {
    with_policy(
        el("Policy")?
            .with(text("PolicyType", POLICY_TYPE)?)
            .with(text("Status", "1")?)
            .with(text("PolicyKey", &key.to_string())?),
    )
}

/// A policy request refused with a Policy Status ([`POLICY_UNKNOWN_TYPE`], [`POLICY_WRONG_KEY`]).
pub fn policy_refused(policy_type: &str, status: &str) -> Result<Element, WbxmlError> {
    with_policy(
        el("Policy")?
            .with(text("PolicyType", policy_type)?)
            .with(text("Status", status)?),
    )
}

/// `<Provision><Status>N</Status></Provision>`: a top-level Status alone (an error, or the
/// answer to a wipe's acknowledgement with `1`).
pub fn provision_status(status: &str) -> Result<Element, WbxmlError> {
    Ok(el("Provision")?.with(text("Status", status)?))
}

/// Provision answer ordering a wipe: the whole device, or only the mail account (EAS 16.1).
pub fn wipe_order(account_only: bool) -> Result<Element, WbxmlError> {
    let order = if account_only {
        "AccountOnlyRemoteWipe"
    } else {
        "RemoteWipe"
    };
    Ok(el("Provision")?.with(text("Status", "1")?).with(el(order)?))
}

/// Whether the protocol version (`14.1`, `16.1`, …) is at least `major.minor`; an absent or
/// unreadable version is not.
pub fn version_at_least(version: Option<&str>, major: u8, minor: u8) -> bool {
    let Some((m, n)) = version.and_then(|v| v.trim().split_once('.')) else {
        return false;
    };
    match (m.parse::<u8>(), n.parse::<u8>()) {
        (Ok(m), Ok(n)) => (m, n) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wbxml::encode;

    fn request(root: Element) -> Result<ProvisionRequest, ProvisionError> {
        read_request(&encode(&root).unwrap())
    }

    #[test]
    fn the_three_requests_and_the_bad_ones_are_told_apart() {
        let policy = |key: Option<&str>| {
            let mut p = el("Policy")
                .unwrap()
                .with(text("PolicyType", POLICY_TYPE).unwrap());
            if let Some(k) = key {
                p = p
                    .with(text("PolicyKey", k).unwrap())
                    .with(text("Status", "1").unwrap());
            }
            el("Provision")
                .unwrap()
                .with(el("Policies").unwrap().with(p))
        };
        assert_eq!(
            request(policy(None)),
            Ok(ProvisionRequest::Download {
                policy_type: POLICY_TYPE.into()
            })
        );
        assert_eq!(
            request(policy(Some("123"))),
            Ok(ProvisionRequest::Acknowledge {
                policy_type: POLICY_TYPE.into(),
                key: "123".into(),
                status: Some("1".into())
            })
        );
        let ack = el("Provision").unwrap().with(
            el("AccountOnlyRemoteWipe")
                .unwrap()
                .with(text("Status", "1").unwrap()),
        );
        assert_eq!(
            request(ack),
            Ok(ProvisionRequest::WipeAcknowledged {
                account_only: true,
                status: "1".into()
            })
        );
        assert_eq!(
            request(el("Provision").unwrap()),
            Err(ProvisionError::Incomplete)
        );
        assert!(matches!(
            read_request(b"\x03\x01garbage"),
            Err(ProvisionError::NotWbxml(_))
        ));
        let ping = Element::new("Ping", "Ping").unwrap();
        assert!(matches!(
            request(ping),
            Err(ProvisionError::NotProvision { name: "Ping", .. })
        ));
    }

    #[test]
    fn settings_go_out_in_schema_order_and_unknown_ones_are_dropped() {
        let doc = policy_download(
            &[
                ("RequireDeviceEncryption", "1"),
                ("Bogus", "1"),
                ("DevicePasswordEnabled", "1"),
            ],
            7,
        )
        .unwrap();
        let provision_doc = doc
            .path(&["Policies", "Policy", "Data", "EASProvisionDoc"])
            .unwrap();
        let names: Vec<_> = provision_doc.elements().map(|e| e.name()).collect();
        assert_eq!(names, ["DevicePasswordEnabled", "RequireDeviceEncryption"]);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least(Some("16.1"), 16, 1));
        assert!(version_at_least(Some("16.10"), 16, 1));
        assert!(!version_at_least(Some("14.1"), 16, 1));
        assert!(!version_at_least(Some("12.1"), 14, 0));
        assert!(version_at_least(Some("14.0"), 14, 0));
        assert!(!version_at_least(None, 14, 0));
        assert!(!version_at_least(Some("x"), 14, 0));
    }
}
