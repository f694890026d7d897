//! Profile inputs: EAS host names as admins type them, and arbitrary text (names, addresses,
//! lookup results) rendered into Apple plists and Android JSON, which must always parse back.
#![no_main]
use easgate_profile::{
    android, apple, check_eas_host, Credential, DeviceProfile, MailAccount, ScepCredential,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = check_eas_host(text);
    let profile = DeviceProfile {
        profile_name: text.into(),
        device_uid: text.into(),
        account: MailAccount {
            account_name: text.into(),
            host: text.into(),
            email: text.into(),
            username: text.into(),
            domain: Some(text.into()),
        },
        credential: Credential::Scep(ScepCredential {
            url: text.into(),
            ca_name: text.into(),
            subject: vec![(text.into(), text.into())],
            challenge: text.into(),
            rfc822_names: vec![text.into()],
            nt_principal_names: vec![],
            dns_names: vec![],
            uris: vec![],
            ca_der: data.to_vec(),
        }),
        root: None,
    };
    // XML 1.0 cannot carry most control characters; the renderer may refuse them, but what it
    // writes must parse.
    if let Ok(bytes) = apple::render(&profile) {
        assert!(plist::from_bytes::<plist::Value>(&bytes).is_ok());
    }
    let json = android::render(&profile).to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
});
