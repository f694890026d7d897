//! Request lines in both MS-ASHTTP forms. The base64 vectors are assembled byte by byte from
//! the layout in MS-ASHTTP §2.2.1.1.1.1 (version, command code, locale, length-prefixed device
//! id, policy key and device type, then tag-length-value parameters).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use easgate_activesync::{Command, EasRequest, QueryError, QueryForm};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// version, command, locale, device id, policy key, device type, then (tag, value) parameters.
fn vector(
    version: u8,
    command: u8,
    locale: u16,
    device_id: &[u8],
    policy_key: Option<u32>,
    device_type: &str,
    params: &[(u8, &[u8])],
) -> Vec<u8> {
    let mut v = vec![version, command];
    v.extend_from_slice(&locale.to_le_bytes());
    v.push(device_id.len() as u8);
    v.extend_from_slice(device_id);
    match policy_key {
        Some(key) => {
            v.push(4);
            v.extend_from_slice(&key.to_le_bytes());
        }
        None => v.push(0),
    }
    v.push(device_type.len() as u8);
    v.extend_from_slice(device_type.as_bytes());
    for (tag, value) in params {
        v.push(*tag);
        v.push(value.len() as u8);
        v.extend_from_slice(value);
    }
    v
}

#[test]
fn base64_sync_with_guid_device_id_and_policy_key() {
    let guid = [
        0x8D, 0xE7, 0x0F, 0x6A, 0x8F, 0xB4, 0x05, 0x38, 0x3C, 0x2B, 0xA4, 0xE9, 0x1D, 0x01, 0xA1,
        0x11,
    ];
    let raw = vector(
        141,
        0,
        0x0409,
        &guid,
        Some(3_942_919_513),
        "iPhone",
        &[(8, b"alice@corp.example")],
    );
    let request =
        EasRequest::parse(&b64(&raw), [("User-Agent", "Apple-iPhone14C2/2104.96")]).unwrap();
    assert_eq!(request.form, QueryForm::Base64);
    assert_eq!(request.command, Command::Sync);
    assert_eq!(request.protocol_version.as_deref(), Some("14.1"));
    assert_eq!(request.locale, Some(0x0409));
    assert_eq!(
        request.device_id.as_deref(),
        Some("8DE70F6A8FB405383C2BA4E91D01A111")
    );
    assert_eq!(request.policy_key, Some(3_942_919_513));
    assert_eq!(request.device_type.as_deref(), Some("iPhone"));
    assert_eq!(request.user.as_deref(), Some("alice@corp.example"));
    assert_eq!(request.user_name(), Some("alice"));
    assert_eq!(
        request.user_agent.as_deref(),
        Some("Apple-iPhone14C2/2104.96")
    );
}

#[test]
fn base64_sendmail_with_options_and_ascii_device_id() {
    let raw = vector(
        161,
        1,
        0x0407,
        b"ApplF17XK1ABC",
        None,
        "iPad",
        &[(8, b"CORP\\bob"), (7, &[0x03])],
    );
    let request = EasRequest::parse(&b64(&raw), []).unwrap();
    assert_eq!(request.command, Command::SendMail);
    assert_eq!(request.protocol_version.as_deref(), Some("16.1"));
    assert_eq!(request.device_id.as_deref(), Some("ApplF17XK1ABC"));
    assert_eq!(request.policy_key, None);
    assert_eq!(request.user_name(), Some("bob"));
    assert_eq!(
        request.params.get("SaveInSent").map(String::as_str),
        Some("T")
    );
    assert_eq!(
        request.params.get("AcceptMultiPart").map(String::as_str),
        Some("T")
    );
}

#[test]
fn base64_attachment_item_and_collection_parameters() {
    let raw = vector(
        121,
        4,
        0x0409,
        b"dev1",
        Some(1),
        "SAMSUNGSMS911B",
        &[
            (0, b"2:1:0"),
            (1, b"7"),
            (3, b"7:12"),
            (4, b"RgAAAA"),
            (6, b"2026-11-24T09:00:00.000Z"),
            (8, b"carol"),
        ],
    );
    // URL-encoded, as it arrives in the request line.
    let encoded = b64(&raw)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert!(
        encoded.ends_with("%3D"),
        "padding sent percent-encoded: {encoded}"
    );
    let request = EasRequest::parse(&encoded, [("MS-ASProtocolVersion", "16.1")]).unwrap();
    assert_eq!(request.command, Command::GetAttachment);
    assert_eq!(
        request.protocol_version.as_deref(),
        Some("12.1"),
        "the query's own version wins"
    );
    for (name, value) in [
        ("AttachmentName", "2:1:0"),
        ("CollectionId", "7"),
        ("ItemId", "7:12"),
        ("LongId", "RgAAAA"),
        ("Occurrence", "2026-11-24T09:00:00.000Z"),
    ] {
        assert_eq!(
            request.params.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    // Every command code.
    for code in 0..=23u8 {
        let raw = vector(141, code, 0, b"d", None, "t", &[]);
        let request = EasRequest::parse(&b64(&raw), []).unwrap();
        assert_eq!(request.command, Command::from_code(code).unwrap());
        assert_eq!(Command::from_name(request.command.name()), request.command);
    }
}

#[test]
fn base64_errors_are_typed() {
    let good = vector(141, 0, 0x0409, b"dev", Some(7), "iPhone", &[(8, b"u")]);
    for cut in 1..good.len() - 1 {
        let result = EasRequest::parse(&b64(&good[..cut]), []);
        if cut < good.len() - 3 {
            assert!(result.is_err(), "truncated at {cut} accepted");
        }
    }
    let mut bad_key = vector(141, 0, 0, b"d", None, "t", &[]);
    bad_key[5 + 1] = 3; // policy key length 3
    assert_eq!(
        EasRequest::parse(&b64(&bad_key), []).unwrap_err(),
        QueryError::PolicyKeyLength(3)
    );
    let unknown = vector(141, 99, 0, b"d", None, "t", &[]);
    assert_eq!(
        EasRequest::parse(&b64(&unknown), []).unwrap_err(),
        QueryError::UnknownCommandCode(99)
    );
    assert_eq!(
        EasRequest::parse("!!!", []).unwrap_err(),
        QueryError::Base64
    );
    assert_eq!(EasRequest::parse("", []).unwrap_err(), QueryError::Empty);
    assert_eq!(
        EasRequest::parse(&"A".repeat(9000), []).unwrap_err(),
        QueryError::TooLong
    );
}

#[test]
fn plain_queries() {
    let request = EasRequest::parse(
        "Cmd=Sync&User=CORP%5Calice&DeviceId=ApplF17XK1ABC&DeviceType=iPhone",
        [
            ("MS-ASProtocolVersion", "14.1"),
            ("X-MS-PolicyKey", "1307199584"),
            ("User-Agent", "Apple-iPhone14C2/2104.96"),
        ],
    )
    .unwrap();
    assert_eq!(request.form, QueryForm::Plain);
    assert_eq!(request.command, Command::Sync);
    assert_eq!(request.user.as_deref(), Some("CORP\\alice"));
    assert_eq!(request.user_name(), Some("alice"));
    assert_eq!(request.device_id.as_deref(), Some("ApplF17XK1ABC"));
    assert_eq!(request.protocol_version.as_deref(), Some("14.1"));
    assert_eq!(request.policy_key, Some(1_307_199_584));
    let request = EasRequest::parse(
        "cmd=SendMail&user=bob%40corp.example&deviceid=X&devicetype=Android&SaveInSent=T",
        [],
    )
    .unwrap();
    assert_eq!(request.command, Command::SendMail);
    assert_eq!(request.user_name(), Some("bob"));
    assert_eq!(
        request.params.get("SaveInSent").map(String::as_str),
        Some("T")
    );
    let request = EasRequest::parse(
        "Cmd=GetAttachment&AttachmentName=2%3A1%3A0&User=u&DeviceId=d&DeviceType=t",
        [],
    )
    .unwrap();
    assert_eq!(
        request.params.get("AttachmentName").map(String::as_str),
        Some("2:1:0")
    );
    assert_eq!(
        EasRequest::parse("Cmd=Frobnicate&User=u", [])
            .unwrap()
            .command,
        Command::Other("Frobnicate".into())
    );

    assert_eq!(
        EasRequest::parse("User=u&DeviceId=d", []).unwrap_err(),
        QueryError::NoCommand
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&Cmd=Ping", []).unwrap_err(),
        QueryError::Duplicate("Cmd".into())
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&user=a&USER=b", []).unwrap_err(),
        QueryError::Duplicate("User".into())
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&CollectionId=1&collectionid=2", []).unwrap_err(),
        QueryError::Duplicate("CollectionId".into())
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&X-Custom=1&X-Custom=2", []).unwrap_err(),
        QueryError::Duplicate("X-Custom".into())
    );
    assert_eq!(
        EasRequest::parse(&format!("cmd=Sync&deviceid={}", "d".repeat(600)), []).unwrap_err(),
        QueryError::ValueTooLong("DeviceId".into())
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&User=%ZZ", []).unwrap_err(),
        QueryError::PercentEncoding
    );
    assert_eq!(
        EasRequest::parse("Cmd=Sync&User=%C3%28", []).unwrap_err(),
        QueryError::PercentEncoding
    );
    assert!(matches!(
        EasRequest::parse(&format!("Cmd=Sync&User={}", "a".repeat(600)), []),
        Err(QueryError::ValueTooLong(_))
    ));
}

#[test]
fn base64_query_with_a_raw_plus_sign() {
    // Find a vector whose base64 has a `+`, and send it without percent-encoding, as some
    // clients do: `+` must stay a base64 digit, not become a space.
    let raw = (0u8..=255)
        .map(|b| {
            vector(
                141,
                9,
                0x0409,
                &[b, 0xFB, 0xEF],
                None,
                "Android",
                &[(8, b"dave")],
            )
        })
        .find(|v| b64(v).contains('+'))
        .unwrap();
    let request = EasRequest::parse(&b64(&raw), []).unwrap();
    assert_eq!(request.command, Command::FolderSync);
    assert_eq!(request.user.as_deref(), Some("dave"));
}
