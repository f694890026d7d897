//! Android Enterprise managed configuration for the Gmail app (`com.google.android.gm`), the
//! EAS client Android Enterprise EMMs configure for Exchange: its `exchange_*` restriction keys
//! (Google's "Gmail app managed configuration" reference). Gmail cannot fetch a certificate
//! itself; it names a KeyChain alias (`exchange_login_certificate_alias`) that the EMM's agent
//! fills, by SCEP or by installing the PKCS#12 with `DevicePolicyManager.installKeyPair`. The
//! JSON therefore carries the managed configuration and, beside it, the certificate delivery
//! the EMM performs under that alias.

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::{Credential, DeviceProfile};

/// The package whose managed configuration this is.
pub const GMAIL_PACKAGE: &str = "com.google.android.gm";

/// The KeyChain alias of a profile's certificate on the device.
pub fn certificate_alias(profile: &DeviceProfile) -> String {
    format!("easgate-{}-{}", profile.profile_name, profile.device_uid)
}

/// An EAS DeviceId Gmail may be told to use: ActiveSync wants at most 32 letters and digits.
fn eas_device_id(uid: &str) -> Option<&str> {
    (!uid.is_empty() && uid.len() <= 32 && uid.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(uid)
}

/// The JSON document for one device.
pub fn render(profile: &DeviceProfile) -> Value {
    let account = &profile.account;
    let alias = certificate_alias(profile);
    let username = match &account.domain {
        Some(domain) if !domain.is_empty() => format!("{domain}\\{}", account.username),
        _ => account.username.clone(),
    };
    let mut config = Map::new();
    config.insert("email_address".into(), json!(account.email));
    config.insert("exchange_host".into(), json!(account.host));
    config.insert("exchange_username".into(), json!(username));
    config.insert("exchange_ssl_required".into(), json!(true));
    config.insert("exchange_trust_all_certificates".into(), json!(false));
    config.insert("exchange_login_certificate_alias".into(), json!(alias));
    config.insert("allow_unmanaged_accounts".into(), json!(false));
    if let Some(id) = eas_device_id(&profile.device_uid) {
        config.insert("exchange_device_id".into(), json!(id));
    }
    let delivery = match &profile.credential {
        Credential::Scep(scep) => json!({
            "method": "scep",
            "alias": alias,
            "url": scep.url,
            "ca_name": scep.ca_name,
            "challenge": scep.challenge,
            "subject": scep.subject.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            "key_type": "RSA",
            "key_size": 2048,
            "subject_alt_names": {
                "rfc822Name": scep.rfc822_names,
                "ntPrincipalName": scep.nt_principal_names,
                "dNSName": scep.dns_names,
                "uniformResourceIdentifier": scep.uris,
            },
            "ca_sha256_fingerprint": hex::encode_upper(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &scep.ca_der)),
        }),
        Credential::Pkcs12(p12) => json!({
            "method": "pkcs12",
            "alias": alias,
            "file_name": p12.file_name,
            "pkcs12_base64": base64::engine::general_purpose::STANDARD.encode(&p12.bundle),
            "password": p12.password,
        }),
    };
    let mut doc = json!({
        "package": GMAIL_PACKAGE,
        "account_name": account.account_name,
        "managed_configuration": Value::Object(config),
        "certificate": delivery,
    });
    if let Some(root) = &profile.root {
        doc["trusted_root"] = json!({
            "name": root.name,
            "der_base64": base64::engine::general_purpose::STANDARD.encode(&root.der),
        });
    }
    doc
}
