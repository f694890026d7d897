//! What a quarantined device sees, answered by the gateway itself (nothing reaches the
//! upstream): FolderSync gives one Inbox, Sync of that Inbox gives one notice message saying
//! the device waits for approval. Provision (an empty policy) and Settings are answered too, so
//! a device gets as far as its folder list — as with Exchange, where a quarantined device
//! completes provisioning and then sees only the quarantine notice. Everything else is refused.

use bytes::Bytes;
use easgate_activesync::provision;
use easgate_activesync::responses::{self, Notice};
use easgate_activesync::{decode, encode, Command, Element, WbxmlError};

/// The Inbox the gateway invents for a quarantined device.
const INBOX_ID: &str = "easgate-quarantine";

/// The policy key handed out while quarantined (any non-zero value will do: the device sends it
/// back and nothing checks it).
const QUARANTINE_POLICY_KEY: u32 = 1;

fn text(ns: &str, name: &str, value: &str) -> Result<Element, WbxmlError> {
    Ok(Element::new(ns, name)?.with_text(value))
}

/// Provision answer: phase one (no policy key yet) hands out an empty policy, phase two
/// (the device acknowledges with a key) confirms it.
fn provision_answer(acknowledging: bool) -> Result<Element, WbxmlError> {
    if acknowledging {
        provision::policy_acknowledged(QUARANTINE_POLICY_KEY)
    } else {
        provision::policy_download(&[("DevicePasswordEnabled", "0")], QUARANTINE_POLICY_KEY)
    }
}

fn settings_answer() -> Result<Element, WbxmlError> {
    let ns = "Settings";
    Ok(Element::new(ns, "Settings")?
        .with(text(ns, "Status", "1")?)
        .with(Element::new(ns, "DeviceInformation")?.with(text(ns, "Status", "1")?)))
}

/// The answer body (WBXML) for a quarantined device's request, or `None` to refuse it.
pub fn answer(command: &Command, body: &[u8], user: &str, now_rfc3339: &str) -> Option<Vec<u8>> {
    let request = decode(body).ok();
    let root = request.as_ref().map(|d| d.root());
    let element = match command {
        Command::Provision => {
            let acknowledging = root
                .and_then(|r| r.path(&["Policies", "Policy", "PolicyKey"]))
                .is_some();
            provision_answer(acknowledging).ok()?
        }
        Command::Settings => settings_answer().ok()?,
        Command::FolderSync => {
            let key = root
                .and_then(|r| r.child("SyncKey"))
                .and_then(|k| k.text())
                .unwrap_or_else(|| "0".into());
            if key == "0" {
                responses::folder_sync_inbox("1", INBOX_ID).ok()?
            } else {
                responses::folder_sync_unchanged(&key).ok()?
            }
        }
        Command::Sync => {
            let collection = root.and_then(|r| r.path(&["Collections", "Collection"]));
            let collection_id = collection
                .and_then(|c| c.child("CollectionId"))
                .and_then(|c| c.text())
                .unwrap_or_else(|| INBOX_ID.into());
            let key = collection
                .and_then(|c| c.child("SyncKey"))
                .and_then(|k| k.text())
                .unwrap_or_else(|| "0".into());
            let notice = Notice {
                server_id: "easgate-quarantine:1",
                from: "easgate@localhost",
                to: user,
                subject: "This device is waiting for approval",
                body: "Your mail administrator has not yet approved this device for mail access. \
                       This device is waiting for approval; mail will appear once it is allowed.",
                received: now_rfc3339,
            };
            match key.as_str() {
                // The initial Sync only sets up the key; items come with the next one.
                "0" => responses::sync_with_notice(&collection_id, "1", None).ok()?,
                "1" => responses::sync_with_notice(&collection_id, "2", Some(&notice)).ok()?,
                other => responses::sync_with_notice(&collection_id, other, None).ok()?,
            }
        }
        _ => return None,
    };
    encode(&element).ok()
}

/// The "device blocked" body (EAS Status 129) for commands that have a WBXML response.
pub fn blocked_body(command: &Command) -> Option<Bytes> {
    let element = responses::blocked(command).ok()??;
    encode(&element).ok().map(Bytes::from)
}
