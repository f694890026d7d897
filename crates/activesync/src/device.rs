//! What a device says about itself: Settings DeviceInformation (MS-ASCMD §2.2.1.18) and the
//! fields of a Provision exchange (MS-ASPROV).

use crate::wbxml::ElementRef;

/// `Settings/DeviceInformation/Set` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub model: Option<String>,
    pub imei: Option<String>,
    pub friendly_name: Option<String>,
    pub os: Option<String>,
    pub os_language: Option<String>,
    pub phone_number: Option<String>,
    pub user_agent: Option<String>,
    pub mobile_operator: Option<String>,
}

/// What a Settings or Provision request body (WBXML) says about the device; `None` when it is
/// not WBXML or carries no DeviceInformation.
pub fn reported_device_information(body: &[u8]) -> Option<DeviceInformation> {
    let doc = crate::wbxml::decode(body).ok()?;
    device_information(doc.root()).or_else(|| provision(doc.root())?.device_information)
}

/// Extract DeviceInformation from a Settings request's root element (`Settings:Settings`);
/// `None` when the request carries none.
pub fn device_information(root: ElementRef<'_>) -> Option<DeviceInformation> {
    if root.name() != "Settings" || root.namespace() != "Settings" {
        return None;
    }
    from_device_information(root.child("DeviceInformation")?)
}

/// Read a `DeviceInformation` element (in Settings, or inside Provision since EAS 14.1).
fn from_device_information(info: ElementRef<'_>) -> Option<DeviceInformation> {
    let set = info.child("Set")?;
    let field = |name: &str| {
        set.child(name)
            .and_then(|e| e.text())
            .map(|t| t.chars().take(256).collect())
    };
    Some(DeviceInformation {
        model: field("Model"),
        imei: field("IMEI"),
        friendly_name: field("FriendlyName"),
        os: field("OS"),
        os_language: field("OSLanguage"),
        phone_number: field("PhoneNumber"),
        user_agent: field("UserAgent"),
        mobile_operator: field("MobileOperator"),
    })
}

/// The fields of a Provision request or response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provision {
    pub policy_type: Option<String>,
    pub policy_key: Option<String>,
    /// The Policy's Status (response: the server's verdict; request: how the device applied it).
    pub policy_status: Option<String>,
    /// Top-level Status (responses).
    pub status: Option<String>,
    /// `RemoteWipe` present (response: wipe ordered; request: its Status acknowledges one).
    pub remote_wipe: bool,
    pub account_only_remote_wipe: bool,
    /// The Status inside `RemoteWipe` / `AccountOnlyRemoteWipe`: a device's acknowledgement.
    pub remote_wipe_status: Option<String>,
    pub account_only_remote_wipe_status: Option<String>,
    /// DeviceInformation sent inside Provision (EAS 14.1+).
    pub device_information: Option<DeviceInformation>,
}

/// Read a Provision document's root (`Provision:Provision`).
pub fn provision(root: ElementRef<'_>) -> Option<Provision> {
    if root.name() != "Provision" || root.namespace() != "Provision" {
        return None;
    }
    let policy = root.path(&["Policies", "Policy"]);
    let policy_field = |name: &str| policy.and_then(|p| p.child(name)).and_then(|e| e.text());
    let wipe_status = |order: &str| {
        root.child(order)
            .and_then(|w| w.child("Status"))
            .and_then(|e| e.text())
    };
    Some(Provision {
        policy_type: policy_field("PolicyType"),
        policy_key: policy_field("PolicyKey"),
        policy_status: policy_field("Status"),
        status: root.child("Status").and_then(|e| e.text()),
        remote_wipe: root.child("RemoteWipe").is_some(),
        account_only_remote_wipe: root.child("AccountOnlyRemoteWipe").is_some(),
        remote_wipe_status: wipe_status("RemoteWipe"),
        account_only_remote_wipe_status: wipe_status("AccountOnlyRemoteWipe"),
        device_information: root
            .child("DeviceInformation")
            .and_then(from_device_information),
    })
}
