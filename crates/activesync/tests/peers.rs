//! The WBXML codec and code pages checked against two independent implementations:
//! libwbxml2 (`xml2wbxml` / `wbxml2xml`, Debian `libwbxml2-utils`) and pyactivesync's encoder
//! and tables. `scripts/test` installs both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use easgate_activesync::codepages::CODE_PAGES;
use easgate_activesync::{decode, encode, Element, Node};

fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing: scripts/test installs libwbxml2-utils"
    );
    path
}

fn python() -> PathBuf {
    let dir = std::env::var_os("EASGATE_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/venv"));
    let python = dir.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test installs pyactivesync",
        python.display()
    );
    python
}

fn xml2wbxml(xml: &Path, out: &Path) -> Vec<u8> {
    let status = Command::new(tool("xml2wbxml"))
        .args(["-v", "1.3", "-n", "-a", "-o"])
        .arg(out)
        .arg(xml)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "xml2wbxml {}: {}",
        xml.display(),
        String::from_utf8_lossy(&status.stdout)
    );
    std::fs::read(out).unwrap()
}

fn wbxml2xml(wbxml: &Path) -> String {
    let out = Command::new(tool("wbxml2xml"))
        .args(["-l", "ACTIVESYNC", "-m", "0", "-o", "-"])
        .arg(wbxml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wbxml2xml {}: {}",
        wbxml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_round_trips_byte_for_byte_with_libwbxml2() {
    let files = corpus();
    assert!(
        files.len() >= 30,
        "the corpus needs at least 30 documents, has {}",
        files.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut pages_seen = std::collections::BTreeSet::new();
    for xml in &files {
        let theirs = xml2wbxml(xml, &tmp.path().join("theirs.wbxml"));
        let doc = decode(&theirs).unwrap_or_else(|e| panic!("{}: {e}", xml.display()));
        let tree = doc.to_element();
        collect_pages(&tree, &mut pages_seen);
        let ours = encode(&tree).unwrap();
        assert_eq!(ours, theirs, "{}: re-encoding differs", xml.display());
        // The other direction: libwbxml2 reads what we write, and writes it back the same.
        let ours_path = tmp.path().join("ours.wbxml");
        std::fs::write(&ours_path, &ours).unwrap();
        let text = wbxml2xml(&ours_path);
        let root_name = xml
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .split('-')
            .next()
            .unwrap()
            .to_string();
        assert!(
            text.to_ascii_lowercase().contains(&format!("<{root_name}")),
            "{}: {text}",
            xml.display()
        );
        let back = tmp.path().join("back.xml");
        std::fs::write(&back, text).unwrap();
        assert_eq!(
            xml2wbxml(&back, &tmp.path().join("back.wbxml")),
            ours,
            "{}",
            xml.display()
        );
    }
    assert!(
        pages_seen.len() >= 18,
        "the corpus should cover most code pages, covers {pages_seen:?}"
    );
}

fn collect_pages(e: &Element, pages: &mut std::collections::BTreeSet<u8>) {
    pages.insert(e.page);
    for child in e.elements() {
        collect_pages(child, pages);
    }
}

/// libwbxml2's names where MS-ASWBXML (and easgate) name the same token differently.
fn libwbxml_alias(page: u8, spec: &str) -> String {
    let renamed: &[(u8, &str, &str)] = &[
        (1, "AssistantPhoneNumber", "AssistantTelephoneNumber"),
        (2, "AttOid", "AttOId"),
        (2, "DtStamp", "DTStamp"),
        (4, "DtStamp", "DTStamp"),
        (4, "CompressedRTF", "Compressed_RTF"),
        (4, "Email", "Attendee_Email"),
        (4, "Name", "Attendee_Name"),
        (4, "Deleted", "Exception_Deleted"),
        (4, "ExceptionStartTime", "Exception_StartTime"),
        (4, "OrganizerEmail", "Organizer_Email"),
        (4, "OrganizerName", "Organizer_Name"),
        (4, "AttendeeStatus", "Attendee_Status"),
        (4, "AttendeeType", "Attendee_Type"),
        (
            18,
            "RightsManagementInformation",
            "ihsManagementInformation",
        ),
        (2, "Status", "FlagStatus"),
    ];
    if let Some((_, _, theirs)) = renamed.iter().find(|(p, s, _)| *p == page && *s == spec) {
        return theirs.to_string();
    }
    if page == 1 {
        for kind in ["Business", "Home", "Other"] {
            if let Some(rest) = spec.strip_prefix(&format!("{kind}Address")) {
                return format!("{kind}{rest}");
            }
        }
    }
    if matches!(page, 2 | 4 | 9)
        && [
            "Type",
            "Start",
            "Until",
            "Occurrences",
            "Interval",
            "DayOfWeek",
            "DayOfMonth",
            "WeekOfMonth",
            "MonthOfYear",
            "Regenerate",
            "DeadOccur",
        ]
        .contains(&spec)
    {
        return format!("Recurrence_{spec}");
    }
    spec.to_string()
}

#[test]
fn every_token_decodes_to_the_same_tag_in_libwbxml2() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.wbxml");
    let mut checked = 0;
    for page in CODE_PAGES.iter().filter(|p| p.number <= 24) {
        for (token, name) in page.tags {
            if (page.number, *name) == (14, "AccountOnlyRemoteWipe")
                || (page.number, *name) == (2, "ReplyTo")
            {
                continue; // not in libwbxml2 0.11.8 (checked against pyactivesync instead)
            }
            std::fs::write(&path, [3, 1, 0x6A, 0, 0, page.number, *token]).unwrap();
            let text = wbxml2xml(&path);
            let expected = format!("<{}", libwbxml_alias(page.number, name));
            assert!(
                text.contains(&expected),
                "page {} token {token:#04x}: we say {name}, libwbxml2 says {text}",
                page.number
            );
            checked += 1;
        }
    }
    assert!(checked > 600, "{checked}");
}

#[test]
fn code_pages_agree_with_pyactivesync() {
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyactivesync_dump.py"))
        .arg("codepages")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeMap<String, BTreeMap<String, u8>> =
        serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (namespace, tags) in &theirs {
        // pyactivesync calls page 6 `ItemEstimate`.
        let wanted = if namespace == "ItemEstimate" {
            "GetItemEstimate"
        } else {
            namespace.as_str()
        };
        let page = CODE_PAGES
            .iter()
            .find(|p| p.namespace.eq_ignore_ascii_case(wanted))
            .unwrap_or_else(|| panic!("pyactivesync has a page `{namespace}` we lack"));
        for (name, token) in tags {
            // Same token must mean the same tag; names may differ only by the known aliases.
            let ours = page.tags.iter().find(|(t, _)| t == token).map(|(_, n)| *n);
            let Some(ours) = ours else {
                panic!("pyactivesync has {namespace}:{name} = {token:#04x}, which we do not know");
            };
            let same = ours == name
                || libwbxml_alias(page.number, ours) == *name
                || ours.eq_ignore_ascii_case(name);
            assert!(
                same,
                "{namespace} token {token:#04x}: pyactivesync `{name}`, easgate `{ours}`"
            );
            compared += 1;
        }
    }
    assert!(compared > 250, "{compared}");
}

fn leaves(e: &Element, prefix: &str, out: &mut Vec<(String, String)>) {
    let path = format!("{prefix}/{}:{}", e.namespace(), e.name());
    let mut has_text = false;
    for node in &e.children {
        match node {
            Node::Element(child) => leaves(child, &path, out),
            Node::Text(t) => {
                out.push((path.clone(), t.clone()));
                has_text = true;
            }
            Node::Opaque(_) => {}
        }
    }
    let _ = has_text;
}

#[test]
fn pyactivesync_encoder_output_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyactivesync_dump.py"))
        .arg("encode")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_slice(&std::fs::read(tmp.path().join("expected.json")).unwrap()).unwrap();
    assert!(expected.len() >= 7);
    for (name, want) in &expected {
        let bytes = std::fs::read(tmp.path().join(format!("{name}.wbxml"))).unwrap();
        let doc = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got = Vec::new();
        leaves(&doc.to_element(), "", &mut got);
        assert_eq!(&got, want, "{name}");
        assert_eq!(
            encode(&doc.to_element()).unwrap(),
            bytes,
            "{name}: our encoding differs from pyactivesync's"
        );
    }
}

fn corpus_doc(name: &str) -> easgate_activesync::Document {
    let tmp = tempfile::tempdir().unwrap();
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/corpus/{name}.xml"));
    decode(&xml2wbxml(&xml, &tmp.path().join("d.wbxml"))).unwrap()
}

#[test]
fn device_information_from_settings_and_provision() {
    use easgate_activesync::device::{device_information, provision};
    let settings = corpus_doc("settings-deviceinformation");
    let info = device_information(settings.root()).unwrap();
    assert_eq!(info.model.as_deref(), Some("SM-S911B"));
    assert_eq!(info.imei.as_deref(), Some("351234567890123"));
    assert_eq!(info.friendly_name.as_deref(), Some("Galaxy S23"));
    assert_eq!(info.os.as_deref(), Some("Android 14"));
    assert_eq!(info.os_language.as_deref(), Some("en-GB"));
    assert_eq!(
        info.user_agent.as_deref(),
        Some("SAMSUNG-SM-S911B/101.5001")
    );
    assert_eq!(info.mobile_operator.as_deref(), Some("Vodafone"));
    assert_eq!(info.phone_number, None);

    let request = provision(corpus_doc("provision-request").root()).unwrap();
    assert_eq!(
        request.policy_type.as_deref(),
        Some("MS-EAS-Provisioning-WBXML")
    );
    let info = request.device_information.unwrap();
    assert_eq!(info.model.as_deref(), Some("iPhone14C2"));
    assert_eq!(info.friendly_name.as_deref(), Some("Alice's iPhone"));
    assert_eq!(info.phone_number.as_deref(), Some("+491701234567"));
    assert_eq!(info.mobile_operator.as_deref(), Some("Telekom.de"));

    let response = provision(corpus_doc("provision-response").root()).unwrap();
    assert_eq!(response.status.as_deref(), Some("1"));
    assert_eq!(response.policy_key.as_deref(), Some("1307199584"));
    assert!(!response.remote_wipe);
    assert!(
        provision(corpus_doc("provision-wipe").root())
            .unwrap()
            .remote_wipe
    );
    // Not a Settings / Provision document: nothing.
    assert!(device_information(corpus_doc("ping-request").root()).is_none());
    assert!(provision(corpus_doc("ping-request").root()).is_none());
}

#[test]
fn gateway_responses_are_read_by_libwbxml2() {
    use easgate_activesync::responses::*;
    use easgate_activesync::Command;
    let tmp = tempfile::tempdir().unwrap();
    let render = |doc: &Element| {
        let path = tmp.path().join("r.wbxml");
        let bytes = encode(doc).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(decode(&bytes).unwrap().to_element(), *doc);
        wbxml2xml(&path)
    };
    for (command, wrapper) in [
        (
            Command::Sync,
            "<Sync xmlns=\"AirSync:\"><Status>129</Status></Sync>",
        ),
        (
            Command::FolderSync,
            "<FolderSync xmlns=\"FolderHierarchy:\"><Status>129</Status></FolderSync>",
        ),
        (
            Command::Ping,
            "<Ping xmlns=\"Ping:\"><Status>129</Status></Ping>",
        ),
        (
            Command::Provision,
            "<Provision xmlns=\"Provision:\"><Status>129</Status></Provision>",
        ),
        (
            Command::SendMail,
            "<SendMail xmlns=\"ComposeMail:\"><Status>129</Status></SendMail>",
        ),
        (
            Command::ItemOperations,
            "<ItemOperations xmlns=\"ItemOperations:\"><Status>129</Status></ItemOperations>",
        ),
        (
            Command::Settings,
            "<Settings xmlns=\"Settings:\"><Status>129</Status></Settings>",
        ),
    ] {
        let doc = blocked(&command).unwrap().unwrap();
        let xml = render(&doc);
        assert!(xml.contains(wrapper), "{command:?}: {xml}");
    }
    assert!(
        blocked(&Command::GetAttachment).unwrap().is_none(),
        "GetAttachment has no WBXML body"
    );

    let xml = render(&folder_sync_inbox("1", "1").unwrap());
    assert!(xml.contains("<Count>1</Count><Add><ServerId>1</ServerId><ParentId>0</ParentId><DisplayName>Inbox</DisplayName><Type>2</Type></Add>"), "{xml}");

    let notice = Notice {
        server_id: "1:1",
        from: "easgate <noreply@corp.example>",
        to: "alice@corp.example",
        subject: "This device is waiting for approval",
        body: "Your IT department must approve this device before mail is delivered to it.",
        received: "2026-11-23T10:00:00.000Z",
    };
    let doc = sync_with_notice("1", "2", Some(&notice)).unwrap();
    let xml = render(&doc);
    assert!(
        xml.contains("<Subject xmlns=\"Email:\">This device is waiting for approval</Subject>"),
        "{xml}"
    );
    assert!(
        xml.contains("<ServerId>1:1</ServerId>")
            && xml.contains("<MessageClass xmlns=\"Email:\">IPM.Note</MessageClass>"),
        "{xml}"
    );
    let data = doc
        .path(&[
            "Collections",
            "Collection",
            "Commands",
            "Add",
            "ApplicationData",
            "Body",
            "Data",
        ])
        .unwrap();
    assert_eq!(data.text().as_deref(), Some(notice.body));
    assert!(!render(&sync_with_notice("1", "3", None).unwrap()).contains("Commands"));
    assert!(render(&ping_nothing_changed().unwrap())
        .contains("<Ping xmlns=\"Ping:\"><Status>1</Status></Ping>"));
    assert!(
        render(&easgate_activesync::provision::wipe_order(false).unwrap())
            .contains("<RemoteWipe/>")
    );
    // AccountOnlyRemoteWipe (EAS 16.1) is newer than libwbxml2: check it with our decoder.
    let decoded =
        decode(&encode(&easgate_activesync::provision::wipe_order(true).unwrap()).unwrap())
            .unwrap();
    let wipe = easgate_activesync::device::provision(decoded.root()).unwrap();
    assert!(wipe.account_only_remote_wipe && !wipe.remote_wipe);
}
