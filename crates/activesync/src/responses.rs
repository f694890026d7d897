//! Documents the gateway answers itself, without the upstream: refusals in the right command
//! wrapper, and what a quarantined device sees (a folder list with one Inbox, one notice
//! message, empty Pings). Provision's answers are in [`crate::provision`].

use crate::query::Command;
use crate::wbxml::{Element, WbxmlError};

/// EAS Status 129: DeviceIsBlockedForThisUser (MS-ASCMD §2.2.2).
pub const STATUS_DEVICE_BLOCKED: &str = "129";

fn el(namespace: &str, name: &str) -> Result<Element, WbxmlError> {
    Element::new(namespace, name)
}

fn text(namespace: &str, name: &str, value: &str) -> Result<Element, WbxmlError> {
    Ok(el(namespace, name)?.with_text(value))
}

/// The command's top-level element and the namespace its Status lives in, for commands whose
/// responses carry a WBXML body; `None` for the others (they get HTTP 403 alone).
fn wrapper(command: &Command) -> Option<(&'static str, &'static str)> {
    Some(match command {
        Command::Sync => ("AirSync", "Sync"),
        Command::FolderSync => ("FolderHierarchy", "FolderSync"),
        Command::FolderCreate => ("FolderHierarchy", "FolderCreate"),
        Command::FolderDelete => ("FolderHierarchy", "FolderDelete"),
        Command::FolderUpdate => ("FolderHierarchy", "FolderUpdate"),
        Command::GetItemEstimate => ("GetItemEstimate", "GetItemEstimate"),
        Command::MeetingResponse => ("MeetingResponse", "MeetingResponse"),
        Command::MoveItems => ("Move", "MoveItems"),
        Command::Ping => ("Ping", "Ping"),
        Command::Provision => ("Provision", "Provision"),
        Command::ResolveRecipients => ("ResolveRecipients", "ResolveRecipients"),
        Command::Search => ("Search", "Search"),
        Command::Settings => ("Settings", "Settings"),
        Command::ItemOperations => ("ItemOperations", "ItemOperations"),
        Command::ValidateCert => ("ValidateCert", "ValidateCert"),
        Command::SendMail => ("ComposeMail", "SendMail"),
        Command::SmartForward => ("ComposeMail", "SmartForward"),
        Command::SmartReply => ("ComposeMail", "SmartReply"),
        Command::Find => ("Find", "Find"),
        _ => return None,
    })
}

/// `<Command><Status>N</Status></Command>` in the command's namespace: how a command is
/// refused (129, blocked) or sent back to provision (140–144); `None` when the command has no
/// WBXML response.
pub fn status_only(command: &Command, status: &str) -> Result<Option<Element>, WbxmlError> {
    let Some((namespace, name)) = wrapper(command) else {
        return Ok(None);
    };
    Ok(Some(
        el(namespace, name)?.with(text(namespace, "Status", status)?),
    ))
}

/// The body of a "device blocked" answer for `command` (Status 129); `None` when the command
/// has no WBXML response.
pub fn blocked(command: &Command) -> Result<Option<Element>, WbxmlError> {
    status_only(command, STATUS_DEVICE_BLOCKED)
}

/// FolderSync answer with one Inbox (type 2) for a quarantined device.
pub fn folder_sync_inbox(sync_key: &str, inbox_id: &str) -> Result<Element, WbxmlError> {
    let ns = "FolderHierarchy";
    let add = el(ns, "Add")?
        .with(text(ns, "ServerId", inbox_id)?)
        .with(text(ns, "ParentId", "0")?)
        .with(text(ns, "DisplayName", "Inbox")?)
        .with(text(ns, "Type", "2")?);
    let root = el(ns, "FolderSync")?
        .with(text(ns, "Status", "1")?)
        .with(text(ns, "SyncKey", sync_key)?)
        .with(el(ns, "Changes")?.with(text(ns, "Count", "1")?).with(add));
    Ok(root)
}

/// FolderSync answer "no changes" at `sync_key`.
pub fn folder_sync_unchanged(sync_key: &str) -> Result<Element, WbxmlError> {
    let ns = "FolderHierarchy";
    Ok(el(ns, "FolderSync")?
        .with(text(ns, "Status", "1")?)
        .with(text(ns, "SyncKey", sync_key)?)
        .with(el(ns, "Changes")?.with(text(ns, "Count", "0")?)))
}

/// A notice for the quarantined device's Inbox.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    pub server_id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// e.g. `2026-11-23T10:00:00.000Z`
    pub received: &'a str,
}

/// Sync answer that adds one message to `collection_id` (or nothing when `notice` is `None`).
pub fn sync_with_notice(
    collection_id: &str,
    sync_key: &str,
    notice: Option<&Notice<'_>>,
) -> Result<Element, WbxmlError> {
    let mut collection = el("AirSync", "Collection")?
        .with(text("AirSync", "SyncKey", sync_key)?)
        .with(text("AirSync", "CollectionId", collection_id)?)
        .with(text("AirSync", "Status", "1")?);
    if let Some(n) = notice {
        let body = el("AirSyncBase", "Body")?
            .with(text("AirSyncBase", "Type", "1")?)
            .with(text(
                "AirSyncBase",
                "EstimatedDataSize",
                &n.body.len().to_string(),
            )?)
            .with(text("AirSyncBase", "Data", n.body)?);
        let data = el("AirSync", "ApplicationData")?
            .with(text("Email", "To", n.to)?)
            .with(text("Email", "From", n.from)?)
            .with(text("Email", "Subject", n.subject)?)
            .with(text("Email", "DateReceived", n.received)?)
            .with(text("Email", "DisplayTo", n.to)?)
            .with(text("Email", "Importance", "2")?)
            .with(text("Email", "Read", "0")?)
            .with(body)
            .with(text("Email", "MessageClass", "IPM.Note")?);
        let add = el("AirSync", "Add")?
            .with(text("AirSync", "ServerId", n.server_id)?)
            .with(data);
        collection = collection.with(el("AirSync", "Commands")?.with(add));
    }
    let root = el("AirSync", "Sync")?.with(el("AirSync", "Collections")?.with(collection));
    Ok(root)
}

/// Ping answer "heartbeat expired, nothing changed" (Status 1).
pub fn ping_nothing_changed() -> Result<Element, WbxmlError> {
    Ok(el("Ping", "Ping")?.with(text("Ping", "Status", "1")?))
}
