//! Apple configuration profiles (`.mobileconfig`): an XML property list whose payloads are an
//! Exchange ActiveSync account (`com.apple.eas.account`), the credential it logs in with
//! (`com.apple.security.scep` or `com.apple.security.pkcs12`, linked by
//! `PayloadCertificateUUID`) and, when the gateway's TLS certificate is ours, the CA that
//! signed it (`com.apple.security.root`). Key names follow Apple's Device Management profile
//! reference; `docs/profiles.md` lists them.

use plist::{Dictionary, Value};

use crate::{Credential, DeviceProfile, PayloadIds, ProfileError, ScepCredential};

/// Key Usage of the SCEP payload: 1 = digital signature, 4 = key encipherment (TLS client
/// authentication with an RSA key needs the first; the CA sets the certificate's own usage).
const SCEP_KEY_USAGE: i64 = 5;
/// Apple's SCEP payload makes RSA keys only.
const SCEP_KEY_SIZE: i64 = 2048;

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// One value as a string, several as an array (Apple accepts both for SAN entries).
fn one_or_many(values: &[String]) -> Option<Value> {
    match values {
        [] => None,
        [one] => Some(s(one)),
        many => Some(Value::Array(many.iter().map(|v| s(v)).collect())),
    }
}

/// The keys every payload carries.
fn payload(ids: &PayloadIds, kind: &str, role: &str, display_name: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), s(kind));
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    d.insert("PayloadIdentifier".into(), s(&ids.identifier(Some(role))));
    d.insert("PayloadUUID".into(), s(&ids.uuid(Some(role))));
    d.insert("PayloadDisplayName".into(), s(display_name));
    d
}

fn scep_payload(ids: &PayloadIds, scep: &ScepCredential) -> Dictionary {
    let mut content = Dictionary::new();
    content.insert("URL".into(), s(&scep.url));
    content.insert("Name".into(), s(&scep.ca_name));
    // Subject: an array of RDNs, each an array of [type, value] pairs.
    let subject = scep
        .subject
        .iter()
        .map(|(kind, value)| Value::Array(vec![Value::Array(vec![s(kind), s(value)])]))
        .collect();
    content.insert("Subject".into(), Value::Array(subject));
    content.insert("Challenge".into(), s(&scep.challenge));
    content.insert("Keysize".into(), Value::Integer(SCEP_KEY_SIZE.into()));
    content.insert("Key Type".into(), s("RSA"));
    content.insert("Key Usage".into(), Value::Integer(SCEP_KEY_USAGE.into()));
    let mut san = Dictionary::new();
    for (key, values) in [
        ("rfc822Name", &scep.rfc822_names),
        ("ntPrincipalName", &scep.nt_principal_names),
        ("dNSName", &scep.dns_names),
        ("uniformResourceIdentifier", &scep.uris),
    ] {
        if let Some(value) = one_or_many(values) {
            san.insert(key.into(), value);
        }
    }
    if !san.is_empty() {
        content.insert("SubjectAltName".into(), Value::Dictionary(san));
    }
    // Apple documents SHA-1 and MD5 fingerprints here, nothing newer.
    let fingerprint =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &scep.ca_der);
    content.insert(
        "CAFingerprint".into(),
        Value::Data(fingerprint.as_ref().to_vec()),
    );
    content.insert("Retries".into(), Value::Integer(3.into()));
    content.insert("RetryDelay".into(), Value::Integer(10.into()));
    let mut d = payload(
        ids,
        "com.apple.security.scep",
        "scep",
        "Mail certificate (SCEP)",
    );
    d.insert("PayloadContent".into(), Value::Dictionary(content));
    d
}

fn credential_payload(ids: &PayloadIds, credential: &Credential) -> Dictionary {
    match credential {
        Credential::Scep(scep) => scep_payload(ids, scep),
        Credential::Pkcs12(p12) => {
            let mut d = payload(
                ids,
                "com.apple.security.pkcs12",
                "pkcs12",
                "Mail certificate (PKCS#12)",
            );
            d.insert("PayloadContent".into(), Value::Data(p12.bundle.clone()));
            d.insert("Password".into(), s(&p12.password));
            d.insert("PayloadCertificateFileName".into(), s(&p12.file_name));
            d
        }
    }
}

fn credential_role(credential: &Credential) -> &'static str {
    match credential {
        Credential::Scep(_) => "scep",
        Credential::Pkcs12(_) => "pkcs12",
    }
}

fn eas_payload(ids: &PayloadIds, profile: &DeviceProfile) -> Dictionary {
    let account = &profile.account;
    let mut d = payload(ids, "com.apple.eas.account", "eas", &account.account_name);
    d.insert("EmailAddress".into(), s(&account.email));
    d.insert("Host".into(), s(&account.host));
    d.insert("SSL".into(), Value::Boolean(true));
    // The EAS payload has no domain key: a domain goes in front of the user name.
    let user = match &account.domain {
        Some(domain) if !domain.is_empty() => format!("{domain}\\{}", account.username),
        _ => account.username.clone(),
    };
    d.insert("UserName".into(), s(&user));
    d.insert(
        "PayloadCertificateUUID".into(),
        s(&ids.uuid(Some(credential_role(&profile.credential)))),
    );
    // S/MIME off (`SMIMEEnabled` is deprecated since iOS 10; these are its successors).
    d.insert("SMIMESigningEnabled".into(), Value::Boolean(false));
    d.insert("SMIMEEncryptByDefault".into(), Value::Boolean(false));
    d
}

/// The profile as an XML property list.
pub fn render(profile: &DeviceProfile) -> Result<Vec<u8>, ProfileError> {
    let ids = profile.ids();
    let mut content = Vec::new();
    if let Some(root) = &profile.root {
        let mut d = payload(
            &ids,
            "com.apple.security.root",
            "root",
            &format!("{} (gateway TLS)", root.name),
        );
        d.insert("PayloadContent".into(), Value::Data(root.der.clone()));
        d.insert(
            "PayloadCertificateFileName".into(),
            s(&format!("{}.cer", root.name)),
        );
        content.push(Value::Dictionary(d));
    }
    content.push(Value::Dictionary(credential_payload(
        &ids,
        &profile.credential,
    )));
    content.push(Value::Dictionary(eas_payload(&ids, profile)));

    let mut top = Dictionary::new();
    top.insert("PayloadType".into(), s("Configuration"));
    top.insert("PayloadVersion".into(), Value::Integer(1.into()));
    top.insert("PayloadIdentifier".into(), s(&ids.identifier(None)));
    top.insert("PayloadUUID".into(), s(&ids.uuid(None)));
    top.insert(
        "PayloadDisplayName".into(),
        s(&profile.account.account_name),
    );
    top.insert(
        "PayloadDescription".into(),
        s(&format!(
            "Mail account {} and its device certificate (device {}).",
            profile.account.email, profile.device_uid
        )),
    );
    top.insert("PayloadOrganization".into(), s("easgate"));
    top.insert("PayloadRemovalDisallowed".into(), Value::Boolean(false));
    top.insert("PayloadContent".into(), Value::Array(content));
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &Value::Dictionary(top))
        .map_err(|e| ProfileError::Plist(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MailAccount, Pkcs12Credential, RootCertificate};

    fn profile(credential: Credential) -> DeviceProfile {
        DeviceProfile {
            profile_name: "ios-mail".into(),
            device_uid: "dev1".into(),
            account: MailAccount {
                account_name: "Corp Mail".into(),
                host: "mail.example.com".into(),
                email: "alice@example.com".into(),
                username: "alice".into(),
                domain: Some("CORP".into()),
            },
            credential,
            root: Some(RootCertificate {
                name: "default".into(),
                der: vec![0x30, 0x00],
            }),
        }
    }

    fn scep() -> Credential {
        Credential::Scep(ScepCredential {
            url: "http://pki.example.com/scep/default".into(),
            ca_name: "default".into(),
            subject: vec![("CN".into(), "dev1".into()), ("O".into(), "Corp".into())],
            challenge: "c0ffee".into(),
            rfc822_names: vec!["alice@example.com".into()],
            nt_principal_names: vec!["alice@corp.example.com".into()],
            dns_names: vec![],
            uris: vec!["urn:a".into(), "urn:b".into()],
            ca_der: vec![1, 2, 3],
        })
    }

    fn parse(bytes: &[u8]) -> Dictionary {
        plist::from_bytes::<Value>(bytes)
            .unwrap()
            .into_dictionary()
            .unwrap()
    }

    fn payloads(top: &Dictionary) -> Vec<Dictionary> {
        top["PayloadContent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_dictionary().unwrap().clone())
            .collect()
    }

    #[test]
    fn scep_profile_links_the_account_to_its_credential() {
        let top = parse(&render(&profile(scep())).unwrap());
        let all = payloads(&top);
        let kinds: Vec<&str> = all
            .iter()
            .map(|p| p["PayloadType"].as_string().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "com.apple.security.root",
                "com.apple.security.scep",
                "com.apple.eas.account"
            ]
        );
        let eas = &all[2];
        assert_eq!(eas["PayloadCertificateUUID"], all[1]["PayloadUUID"]);
        assert_eq!(eas["UserName"].as_string(), Some("CORP\\alice"));
        assert_eq!(eas["SSL"].as_boolean(), Some(true));
        let content = all[1]["PayloadContent"].as_dictionary().unwrap();
        assert_eq!(content["Subject"].as_array().unwrap().len(), 2);
        let san = content["SubjectAltName"].as_dictionary().unwrap();
        assert_eq!(san["rfc822Name"].as_string(), Some("alice@example.com"));
        assert_eq!(
            san["uniformResourceIdentifier"].as_array().unwrap().len(),
            2
        );
        assert!(!san.contains_key("dNSName"));
        assert_eq!(content["CAFingerprint"].as_data().unwrap().len(), 20);
    }

    #[test]
    fn pkcs12_profile_carries_bundle_and_password() {
        let top = parse(
            &render(&profile(Credential::Pkcs12(Pkcs12Credential {
                bundle: vec![9, 9, 9],
                password: "secret".into(),
                file_name: "dev1.p12".into(),
            })))
            .unwrap(),
        );
        let all = payloads(&top);
        assert_eq!(
            all[1]["PayloadType"].as_string(),
            Some("com.apple.security.pkcs12")
        );
        assert_eq!(all[1]["PayloadContent"].as_data(), Some(&[9u8, 9, 9][..]));
        assert_eq!(all[1]["Password"].as_string(), Some("secret"));
        assert_eq!(all[2]["PayloadCertificateUUID"], all[1]["PayloadUUID"]);
    }

    #[test]
    fn text_that_looks_like_markup_is_escaped() {
        let mut p = profile(scep());
        p.account.account_name = "<Mail & \"more\">".into();
        let top = parse(&render(&p).unwrap());
        assert_eq!(
            top["PayloadDisplayName"].as_string(),
            Some("<Mail & \"more\">")
        );
    }
}
