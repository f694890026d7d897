//! Realistic WBXML for benchmarks: a Sync response carrying many e-mails, like a phone's first
//! sync of a busy Inbox. Kept in the library so the criterion benchmark and the
//! whole-process comparison with `wbxml2xml` decode exactly the same bytes.

use crate::wbxml::{Element, WbxmlError};

fn t(namespace: &str, name: &str, value: &str) -> Result<Element, WbxmlError> {
    Ok(Element::new(namespace, name)?.with_text(value))
}

/// A Sync response with e-mails added until the encoding reaches `target_bytes`.
pub fn sync_response(target_bytes: usize) -> Result<Element, WbxmlError> {
    let mut commands = Element::new("AirSync", "Commands")?;
    let mut size = 0usize;
    let mut i = 0usize;
    while size < target_bytes {
        let body = format!(
            "<html><body><p>Hello team,</p><p>Item {i}: the quarterly figures are attached. Please review them before Friday's meeting and send comments to the list.</p><p>Regards, Bob</p></body></html>"
        );
        let add = Element::new("AirSync", "Add")?
            .with(t("AirSync", "ServerId", &format!("2:{i}"))?)
            .with(
                Element::new("AirSync", "ApplicationData")?
                    .with(t("Email", "To", "\"Alice Example\" <alice@corp.example>")?)
                    .with(t("Email", "From", "\"Bob Example\" <bob@corp.example>")?)
                    .with(t(
                        "Email",
                        "Subject",
                        &format!("Quarterly report, part {i}"),
                    )?)
                    .with(t("Email", "DateReceived", "2026-11-20T08:15:00.000Z")?)
                    .with(t("Email", "DisplayTo", "Alice Example")?)
                    .with(t("Email", "ThreadTopic", "Quarterly report")?)
                    .with(t("Email", "Importance", "1")?)
                    .with(t("Email", "Read", "0")?)
                    .with(
                        Element::new("AirSyncBase", "Body")?
                            .with(t("AirSyncBase", "Type", "2")?)
                            .with(t(
                                "AirSyncBase",
                                "EstimatedDataSize",
                                &body.len().to_string(),
                            )?)
                            .with(t("AirSyncBase", "Data", &body)?),
                    )
                    .with(t("Email", "MessageClass", "IPM.Note")?)
                    .with(t("Email", "InternetCPID", "65001")?)
                    .with(t("Email2", "ConversationId", "AbCdEfGh")?),
            );
        // Its encoded size, less the 4-byte header (page switches inside are counted).
        size += crate::wbxml::encode(&add)?.len().saturating_sub(4);
        commands = commands.with(add);
        i += 1;
    }
    let collection = Element::new("AirSync", "Collection")?
        .with(t("AirSync", "SyncKey", "1234567891")?)
        .with(t("AirSync", "CollectionId", "2")?)
        .with(t("AirSync", "Status", "1")?)
        .with(commands);
    Ok(Element::new("AirSync", "Sync")?
        .with(Element::new("AirSync", "Collections")?.with(collection)))
}
