//! The EAS request line (MS-ASHTTP §2.2.1.1.1): the plain query form
//! (`Cmd=Sync&User=…&DeviceId=…&DeviceType=…`) and the base64-encoded binary form, plus the
//! headers that complete it, parsed into one [`EasRequest`].

use std::collections::BTreeMap;

use base64::Engine;
use thiserror::Error;

/// Longest query string accepted.
pub const MAX_QUERY: usize = 8 * 1024;
/// Longest single value (user, device id, …) accepted.
pub const MAX_VALUE: usize = 512;

#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    #[error("the query string is longer than {MAX_QUERY} bytes")]
    TooLong,
    #[error("the query string is empty")]
    Empty,
    #[error("bad percent-encoding in the query string")]
    PercentEncoding,
    #[error("parameter `{0}` is longer than {MAX_VALUE} bytes")]
    ValueTooLong(String),
    #[error("parameter `{0}` appears twice")]
    Duplicate(String),
    #[error("no Cmd parameter")]
    NoCommand,
    #[error("the base64 query ends early (at byte {0})")]
    Truncated(usize),
    #[error("the base64 query is not base64")]
    Base64,
    #[error("the base64 query's {0} is not UTF-8")]
    Utf8(&'static str),
    #[error("unknown base64 command code {0}")]
    UnknownCommandCode(u8),
    #[error("the policy key must be 0 or 4 bytes, not {0}")]
    PolicyKeyLength(u8),
}

/// The EAS commands (MS-ASCMD), with their base64 codes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    SendMail,
    SmartForward,
    SmartReply,
    GetAttachment,
    GetHierarchy,
    CreateCollection,
    DeleteCollection,
    MoveCollection,
    FolderSync,
    FolderCreate,
    FolderDelete,
    FolderUpdate,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Search,
    Settings,
    Ping,
    ItemOperations,
    Provision,
    ResolveRecipients,
    ValidateCert,
    Find,
    /// A `Cmd` value this library does not know (kept as sent).
    Other(String),
}

const COMMANDS: [(u8, &str); 24] = [
    (0, "Sync"),
    (1, "SendMail"),
    (2, "SmartForward"),
    (3, "SmartReply"),
    (4, "GetAttachment"),
    (5, "GetHierarchy"),
    (6, "CreateCollection"),
    (7, "DeleteCollection"),
    (8, "MoveCollection"),
    (9, "FolderSync"),
    (10, "FolderCreate"),
    (11, "FolderDelete"),
    (12, "FolderUpdate"),
    (13, "MoveItems"),
    (14, "GetItemEstimate"),
    (15, "MeetingResponse"),
    (16, "Search"),
    (17, "Settings"),
    (18, "Ping"),
    (19, "ItemOperations"),
    (20, "Provision"),
    (21, "ResolveRecipients"),
    (22, "ValidateCert"),
    (23, "Find"),
];

impl Command {
    pub fn from_name(name: &str) -> Self {
        match COMMANDS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(c, _)| *c)
        {
            Some(code) => Self::from_code(code).unwrap_or_else(|| Command::Other(name.to_string())),
            None => Command::Other(name.to_string()),
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Command::Sync,
            1 => Command::SendMail,
            2 => Command::SmartForward,
            3 => Command::SmartReply,
            4 => Command::GetAttachment,
            5 => Command::GetHierarchy,
            6 => Command::CreateCollection,
            7 => Command::DeleteCollection,
            8 => Command::MoveCollection,
            9 => Command::FolderSync,
            10 => Command::FolderCreate,
            11 => Command::FolderDelete,
            12 => Command::FolderUpdate,
            13 => Command::MoveItems,
            14 => Command::GetItemEstimate,
            15 => Command::MeetingResponse,
            16 => Command::Search,
            17 => Command::Settings,
            18 => Command::Ping,
            19 => Command::ItemOperations,
            20 => Command::Provision,
            21 => Command::ResolveRecipients,
            22 => Command::ValidateCert,
            23 => Command::Find,
            _ => return None,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Command::Other(name) => name,
            known => COMMANDS
                .iter()
                .find(|(code, _)| Command::from_code(*code).as_ref() == Some(known))
                .map(|(_, n)| *n)
                .unwrap_or("?"),
        }
    }
}

/// Which form the query came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryForm {
    Plain,
    Base64,
}

/// One EAS request's identity and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EasRequest {
    pub form: QueryForm,
    pub command: Command,
    pub user: Option<String>,
    pub device_id: Option<String>,
    pub device_type: Option<String>,
    /// `MS-ASProtocolVersion`, or the base64 form's version byte (e.g. `14.1`).
    pub protocol_version: Option<String>,
    /// `X-MS-PolicyKey`, or the base64 form's policy key.
    pub policy_key: Option<u32>,
    pub user_agent: Option<String>,
    /// Base64 form only: the locale (LCID).
    pub locale: Option<u16>,
    /// Every other parameter (AttachmentName, CollectionId, ItemId, LongId, Occurrence,
    /// SaveInSent, AcceptMultiPart, …) by its MS-ASHTTP name.
    pub params: BTreeMap<String, String>,
}

fn percent_decode(s: &str) -> Result<std::borrow::Cow<'_, str>, QueryError> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(QueryError::PercentEncoding)?;
                let text = std::str::from_utf8(hex).map_err(|_| QueryError::PercentEncoding)?;
                out.push(u8::from_str_radix(text, 16).map_err(|_| QueryError::PercentEncoding)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| QueryError::PercentEncoding)
}

/// Canonical MS-ASHTTP parameter names, matched case-insensitively.
const PARAMS: [&str; 13] = [
    "Cmd",
    "User",
    "DeviceId",
    "DeviceType",
    "AttachmentName",
    "CollectionId",
    "CollectionName",
    "ItemId",
    "LongId",
    "ParentId",
    "Occurrence",
    "SaveInSent",
    "AcceptMultiPart",
];

fn parse_plain(query: &str) -> Result<EasRequest, QueryError> {
    // The four parameters every request has go straight to their fields (this runs on every
    // gateway request); the rest to `params` under their canonical names.
    let mut command: Option<String> = None;
    let mut user: Option<String> = None;
    let mut device_id: Option<String> = None;
    let mut device_type: Option<String> = None;
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        let canonical = PARAMS
            .iter()
            .find(|p| p.eq_ignore_ascii_case(&key))
            .copied();
        let name = || canonical.map_or_else(|| key.to_string(), str::to_string);
        let value = percent_decode(value)?;
        if value.len() > MAX_VALUE {
            return Err(QueryError::ValueTooLong(name()));
        }
        let slot = match canonical {
            Some("Cmd") => &mut command,
            Some("User") => &mut user,
            Some("DeviceId") => &mut device_id,
            Some("DeviceType") => &mut device_type,
            _ => match params.entry(name()) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    return Err(QueryError::Duplicate(e.key().clone()))
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(value.into_owned());
                    continue;
                }
            },
        };
        if slot.is_some() {
            return Err(QueryError::Duplicate(name()));
        }
        *slot = Some(value.into_owned());
    }
    let command = command.ok_or(QueryError::NoCommand)?;
    Ok(EasRequest {
        form: QueryForm::Plain,
        command: Command::from_name(&command),
        user: user.filter(|v| !v.is_empty()),
        device_id: device_id.filter(|v| !v.is_empty()),
        device_type: device_type.filter(|v| !v.is_empty()),
        protocol_version: None,
        policy_key: None,
        user_agent: None,
        locale: None,
        params,
    })
}

/// The base64 form's parameter tags (MS-ASHTTP §2.2.1.1.1.1.3).
fn param_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0 => "AttachmentName",
        1 => "CollectionId",
        2 => "CollectionName",
        3 => "ItemId",
        4 => "LongId",
        5 => "ParentId",
        6 => "Occurrence",
        7 => "Options",
        8 => "User",
        _ => return None,
    })
}

fn device_id_text(raw: &[u8]) -> String {
    if !raw.is_empty()
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut text = String::with_capacity(raw.len() * 2);
        for b in raw {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
        text
    }
}

/// `MS-ASProtocolVersion` text for the base64 form's version byte (e.g. 141 → `14.1`).
fn version_text(version: u8) -> String {
    match version {
        120 => "12.0".into(),
        121 => "12.1".into(),
        140 => "14.0".into(),
        141 => "14.1".into(),
        160 => "16.0".into(),
        161 => "16.1".into(),
        other => format!("{}.{}", other / 10, other % 10),
    }
}

fn parse_base64(query: &str) -> Result<EasRequest, QueryError> {
    // Percent-decoding only: in this form `+` is a base64 digit, not a space.
    let cleaned: std::borrow::Cow<'_, str> = if query.contains('%') {
        percent_decode(&query.replace('+', "%2B"))?
            .into_owned()
            .into()
    } else {
        query.into()
    };
    let input = cleaned.trim().as_bytes();
    // MAX_QUERY bounds the input, so the decoded bytes fit on the stack.
    let mut buffer = [0u8; MAX_QUERY * 3 / 4 + 3];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(input, &mut buffer)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(input, &mut buffer)
        })
        .map_err(|_| QueryError::Base64)?;
    let data = &buffer[..n];
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], QueryError> {
        let slice = data.get(at..at + n).ok_or(QueryError::Truncated(at))?;
        at += n;
        Ok(slice)
    };
    let version = take(1)?[0];
    let code = take(1)?[0];
    let command = Command::from_code(code).ok_or(QueryError::UnknownCommandCode(code))?;
    let locale_bytes = take(2)?;
    let locale = u16::from_le_bytes([locale_bytes[0], locale_bytes[1]]);
    let id_len = usize::from(take(1)?[0]);
    let device_id = device_id_text(take(id_len)?);
    let key_len = take(1)?[0];
    let policy_key = match key_len {
        0 => None,
        4 => {
            let b = take(4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        other => return Err(QueryError::PolicyKeyLength(other)),
    };
    let type_len = usize::from(take(1)?[0]);
    let device_type = std::str::from_utf8(take(type_len)?)
        .map_err(|_| QueryError::Utf8("device type"))?
        .to_string();
    let mut params = BTreeMap::new();
    let mut user = None;
    while let Ok(tag) = take(1) {
        let tag = tag[0];
        let len = usize::from(take(1)?[0]);
        let value = take(len)?;
        match param_name(tag) {
            Some("Options") => {
                let bits = value.first().copied().unwrap_or(0);
                if bits & 0x01 != 0 {
                    params.insert("SaveInSent".to_string(), "T".to_string());
                }
                if bits & 0x02 != 0 {
                    params.insert("AcceptMultiPart".to_string(), "T".to_string());
                }
            }
            Some("User") => {
                user = Some(
                    std::str::from_utf8(value)
                        .map_err(|_| QueryError::Utf8("user"))?
                        .to_string(),
                )
            }
            Some(name) => {
                let text = std::str::from_utf8(value).map_err(|_| QueryError::Utf8("parameter"))?;
                params.insert(name.to_string(), text.to_string());
            }
            None => {} // unknown tags are skipped, as their lengths allow
        }
    }
    Ok(EasRequest {
        form: QueryForm::Base64,
        command,
        user,
        device_id: Some(device_id).filter(|d| !d.is_empty()),
        device_type: Some(device_type).filter(|d| !d.is_empty()),
        protocol_version: Some(version_text(version)),
        policy_key,
        user_agent: None,
        locale: Some(locale),
        params,
    })
}

impl EasRequest {
    /// Parse the query string (without `?`) and the request's headers.
    pub fn parse<'h>(
        query: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> Result<Self, QueryError> {
        if query.len() > MAX_QUERY {
            return Err(QueryError::TooLong);
        }
        if query.is_empty() {
            return Err(QueryError::Empty);
        }
        // Base64 has `=` only as trailing padding and never `&`: anything else is the plain form.
        // (Padding sent percent-encoded, `%3D`, has neither character.)
        let unpadded = query.trim_end_matches('=');
        let mut request = if unpadded.contains(['=', '&']) {
            parse_plain(query)?
        } else {
            parse_base64(query)?
        };
        for (name, value) in headers {
            let value = value.trim();
            if name.eq_ignore_ascii_case("MS-ASProtocolVersion")
                && request.protocol_version.is_none()
            {
                request.protocol_version = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("X-MS-PolicyKey") && request.policy_key.is_none() {
                request.policy_key = value.parse().ok();
            } else if name.eq_ignore_ascii_case("User-Agent") {
                request.user_agent = Some(if value.len() <= MAX_VALUE {
                    value.to_string()
                } else {
                    value.chars().take(MAX_VALUE).collect()
                });
            }
        }
        Ok(request)
    }

    /// The user part of `User` in any of its forms: `user`, `DOMAIN\user`, `user@domain`.
    pub fn user_name(&self) -> Option<&str> {
        let user = self.user.as_deref()?;
        let user = user.rsplit('\\').next().unwrap_or(user);
        Some(user.split('@').next().unwrap_or(user))
    }
}
