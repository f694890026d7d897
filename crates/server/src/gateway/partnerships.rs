//! The gateway's running record of device partnerships and certificate bindings.
//!
//! Every request updates a partnership in memory; a flush task writes what changed to the
//! store once a second in one transaction, so no request waits on the database and at most a
//! second of "last seen" times is lost on a crash. A certificate is bound to the first EAS
//! DeviceId it is used with, in memory at once and in the store with the next flush; bindings
//! are loaded at start, so they survive restarts.
//!
//! A request that names a DeviceId bound to a certificate without presenting one bound to it is
//! a possible spoof: it gets a partnership of its own (`suspect`), so it never overwrites the
//! bound device's record.
//!
//! With several gateways on one database, the store keeps the first binding of a certificate.
//! A gateway records a certificate's first binding in the store before it answers that first
//! request (the one database write a request may wait for, once per certificate and instance):
//! if another gateway bound the certificate first, it adopts that binding and decides again,
//! so a stolen certificate cannot be bound to a second DeviceId through a second gateway. Each
//! new binding is also a change that other gateways adopt from the change feed. When the store
//! cannot be reached, the binding is kept in memory and written by a later flush.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use easgate_activesync::device::DeviceInformation;
use easgate_pki::Serial;
use easgate_store::{CertificateBinding, Partnership, Store};
use tokio::sync::watch;
use tracing::warn;

/// `user` and `DeviceId`, lower case, joined by a newline (which neither may contain), and a
/// newline and `!` for a suspect partnership.
type Key = String;

fn key(user: &str, eas_device_id: &str, suspect: bool) -> Key {
    let mut k = String::with_capacity(user.len() + eas_device_id.len() + 3);
    push_key(&mut k, user, eas_device_id, suspect);
    k
}

fn push_key(k: &mut String, user: &str, eas_device_id: &str, suspect: bool) {
    let start = k.len();
    k.reserve(user.len() + eas_device_id.len() + 3);
    k.push_str(user);
    k.push('\n');
    k.push_str(eas_device_id);
    k[start..].make_ascii_lowercase();
    if suspect {
        k.push_str("\n!");
    }
}

fn key_device(k: &str) -> &str {
    k.split('\n').nth(1).unwrap_or(k)
}

thread_local! {
    /// Where a request's key is built to look its partnership up without allocating.
    static LOOKUP_KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Set `slot` to `value` if it differs; whether it did.
fn set_str(slot: &mut String, value: &str) -> bool {
    if slot != value {
        value.clone_into(slot);
        true
    } else {
        false
    }
}

/// Set `slot` to `value` if one is given and it differs.
fn set_opt(slot: &mut Option<String>, value: Option<&str>) -> bool {
    match value {
        Some(v) if slot.as_deref() != Some(v) => {
            *slot = Some(v.to_string());
            true
        }
        _ => false,
    }
}

/// Set `slot` to what `value` displays as, if that differs (compared without allocating).
fn set_display(slot: &mut String, value: &dyn fmt::Display) -> bool {
    struct Same<'a> {
        rest: &'a str,
    }
    impl fmt::Write for Same<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self.rest.strip_prefix(s) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                None => Err(fmt::Error),
            }
        }
    }
    let mut same = Same { rest: slot };
    if write!(same, "{value}").is_ok() && same.rest.is_empty() {
        return false;
    }
    *slot = value.to_string();
    true
}

/// What one request tells about its device.
pub struct Sighting<'a> {
    pub user: &'a str,
    pub eas_device_id: &'a str,
    pub device_type: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub client: &'a str,
    pub platform: &'a str,
    pub protocol: Option<&'a str>,
    pub command: &'a str,
    /// The serial of a valid certificate the request presented.
    pub cert_serial: Option<&'a str>,
    pub device_state: &'a str,
    pub access_state: &'a str,
    pub access_reason: &'a dyn fmt::Display,
    /// The request goes to the mailbox.
    pub synced: bool,
    /// The request was refused (a hard refusal or a block).
    pub refused: bool,
    /// The request names a DeviceId bound to a certificate it does not present.
    pub suspect: bool,
    pub now: i64,
}

/// A policy a device acknowledged.
pub struct AppliedPolicy<'a> {
    pub name: &'a str,
    pub key: u32,
    /// `AppliedInFull`, `PartiallyApplied`, …
    pub status: &'a str,
    pub at: i64,
}

/// Whether a certificate may be used by a DeviceId.
#[derive(Debug, PartialEq, Eq)]
pub enum Binding {
    /// First use (bound now) or the device it is bound to.
    Ok,
    /// Bound to another DeviceId.
    Elsewhere(String),
}

#[derive(Default)]
struct Book {
    partnerships: HashMap<Key, Partnership>,
    dirty: HashSet<Key>,
    bindings: HashMap<Serial, String>,
    /// Lower-case DeviceIds that have a certificate bound to them.
    bound_devices: HashSet<String>,
    new_bindings: Vec<CertificateBinding>,
}

#[derive(Default)]
pub struct Partnerships {
    book: Mutex<Book>,
}

impl Partnerships {
    pub async fn load(store: &dyn Store) -> easgate_store::Result<Self> {
        let mut book = Book::default();
        for p in store.list_partnerships(None).await? {
            book.partnerships
                .insert(key(&p.user, &p.eas_device_id, p.suspect), p);
        }
        for b in store.list_bindings().await? {
            if let Ok(serial) = b.serial.parse::<Serial>() {
                book.bound_devices
                    .insert(b.eas_device_id.to_ascii_lowercase());
                book.bindings.insert(serial, b.eas_device_id);
            }
        }
        Ok(Partnerships {
            book: Mutex::new(book),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Check, and on first use record, the certificate's DeviceId.
    pub fn bind(&self, serial: &Serial, eas_device_id: &str, user: &str, now: i64) -> Binding {
        let mut book = self.book();
        match book.bindings.get(serial) {
            Some(bound) if bound.eq_ignore_ascii_case(eas_device_id) => Binding::Ok,
            Some(bound) => Binding::Elsewhere(bound.clone()),
            None => {
                book.bindings
                    .insert(serial.clone(), eas_device_id.to_string());
                book.bound_devices
                    .insert(eas_device_id.to_ascii_lowercase());
                book.new_bindings.push(CertificateBinding {
                    serial: serial.to_hex(),
                    eas_device_id: eas_device_id.to_string(),
                    user: user.to_string(),
                    bound_at: now,
                });
                Binding::Ok
            }
        }
    }

    /// The binding `bind` just made for `serial` on first use, taken out of the next flush so
    /// that the caller records it in the store at once ([`Partnerships::keep_for_flush`] puts
    /// it back if that fails).
    /// Called for every request with a valid certificate: nothing is allocated unless some
    /// binding is new (which is rare: the first request of a certificate).
    pub fn take_new_binding(&self, serial: &Serial) -> Option<CertificateBinding> {
        let mut book = self.book();
        if book.new_bindings.is_empty() {
            return None;
        }
        let hex = serial.to_hex();
        let at = book.new_bindings.iter().position(|b| b.serial == hex)?;
        Some(book.new_bindings.swap_remove(at))
    }

    /// Leave a binding to the next flush (recording it at once failed).
    pub fn keep_for_flush(&self, binding: CertificateBinding) {
        self.book().new_bindings.push(binding);
    }

    /// Take a binding as the store has it: another gateway may have bound the certificate
    /// first (the store keeps the first), and then this one's memory is wrong until now.
    pub fn adopt_binding(&self, binding: &CertificateBinding) {
        let Ok(serial) = binding.serial.parse::<Serial>() else {
            return;
        };
        let mut book = self.book();
        let differs = book
            .bindings
            .get(&serial)
            .is_none_or(|bound| !bound.eq_ignore_ascii_case(&binding.eas_device_id));
        if differs {
            if book.bindings.contains_key(&serial) {
                warn!(
                    serial = %binding.serial,
                    device = %binding.eas_device_id,
                    "another gateway bound this certificate first; its binding applies here too"
                );
            }
            book.bound_devices
                .insert(binding.eas_device_id.to_ascii_lowercase());
            book.bindings.insert(serial, binding.eas_device_id.clone());
        }
    }

    /// Whether some certificate is bound to this DeviceId.
    pub fn device_is_bound(&self, eas_device_id: &str) -> bool {
        let book = self.book();
        if eas_device_id.bytes().any(|b| b.is_ascii_uppercase()) {
            book.bound_devices
                .contains(&eas_device_id.to_ascii_lowercase())
        } else {
            book.bound_devices.contains(eas_device_id)
        }
    }

    /// Whether the certificate `serial` is bound to this DeviceId.
    pub fn serial_bound_to(&self, serial: &Serial, eas_device_id: &str) -> bool {
        self.book()
            .bindings
            .get(serial)
            .is_some_and(|bound| bound.eq_ignore_ascii_case(eas_device_id))
    }

    /// Update the partnership a request belongs to. Repeated requests of a device change
    /// little; nothing is allocated unless something changed.
    pub fn record(&self, s: Sighting<'_>) {
        LOOKUP_KEY.with(|cell| {
            let mut k = cell.borrow_mut();
            k.clear();
            push_key(&mut k, s.user, s.eas_device_id, s.suspect);
            let mut book = self.book();
            let changed = match book.partnerships.get_mut(k.as_str()) {
                Some(entry) => update(entry, &s),
                None => {
                    let mut entry = Partnership {
                        user: s.user.to_ascii_lowercase(),
                        eas_device_id: s.eas_device_id.to_string(),
                        suspect: s.suspect,
                        device_type: None,
                        model: None,
                        os: None,
                        friendly_name: None,
                        user_agent: None,
                        client: String::new(),
                        platform: String::new(),
                        protocol: None,
                        first_seen: s.now,
                        last_seen: s.now,
                        last_sync: None,
                        last_command: None,
                        cert_serial: None,
                        device_state: String::new(),
                        access_state: String::new(),
                        access_reason: String::new(),
                        last_refusal_at: None,
                        last_refusal: None,
                        policy_applied: None,
                        policy_key: None,
                        policy_status: None,
                        policy_updated_at: None,
                    };
                    update(&mut entry, &s);
                    book.partnerships.insert(k.clone(), entry);
                    true
                }
            };
            if changed && !book.dirty.contains(k.as_str()) {
                book.dirty.insert(k.clone());
            }
        });
    }

    /// Add what the device said about itself (Settings or Provision DeviceInformation).
    pub fn record_device_information(
        &self,
        user: &str,
        eas_device_id: &str,
        suspect: bool,
        info: &DeviceInformation,
    ) {
        let k = key(user, eas_device_id, suspect);
        let mut book = self.book();
        if let Some(entry) = book.partnerships.get_mut(k.as_str()) {
            if info.model.is_some() {
                entry.model = info.model.clone();
            }
            if info.os.is_some() {
                entry.os = info.os.clone();
            }
            if info.friendly_name.is_some() {
                entry.friendly_name = info.friendly_name.clone();
            }
            book.dirty.insert(k);
        }
    }

    /// Record the EAS policy a device acknowledged (`--provision gateway`).
    pub fn record_policy(&self, user: &str, eas_device_id: &str, applied: &AppliedPolicy<'_>) {
        let k = key(user, eas_device_id, false);
        let mut book = self.book();
        if let Some(entry) = book.partnerships.get_mut(k.as_str()) {
            entry.policy_applied = Some(applied.name.to_string());
            entry.policy_key = Some(i64::from(applied.key));
            entry.policy_status = Some(applied.status.to_string());
            entry.policy_updated_at = Some(applied.at);
            book.dirty.insert(k);
        }
    }

    /// The policy key a device last acknowledged, if any.
    pub fn policy_key(&self, user: &str, eas_device_id: &str) -> Option<i64> {
        self.book()
            .partnerships
            .get(key(user, eas_device_id, false).as_str())
            .and_then(|p| p.policy_key)
    }

    /// Forget a DeviceId's partnerships an admin cleared (`eas clear`), unless a request has
    /// updated them since.
    pub fn forget_cleared(&self, eas_device_id: &str, still_stored: &[Partnership]) {
        let mut book = self.book();
        let Book {
            partnerships,
            dirty,
            ..
        } = &mut *book;
        partnerships.retain(|k, _| {
            !key_device(k).eq_ignore_ascii_case(eas_device_id)
                || dirty.contains(k)
                || still_stored
                    .iter()
                    .any(|p| key(&p.user, &p.eas_device_id, p.suspect) == *k)
        });
    }

    /// Write what changed since the last flush.
    pub async fn flush(&self, store: &dyn Store) -> easgate_store::Result<()> {
        let (changed, bindings) = {
            let mut book = self.book();
            let dirty: Vec<Key> = book.dirty.drain().collect();
            let changed: Vec<Partnership> = dirty
                .iter()
                .filter_map(|k| book.partnerships.get(k).cloned())
                .collect();
            (changed, std::mem::take(&mut book.new_bindings))
        };
        if !bindings.is_empty() {
            match store.save_bindings(&bindings).await {
                Ok(in_effect) => {
                    for binding in &in_effect {
                        self.adopt_binding(binding);
                    }
                }
                Err(e) => {
                    self.book().new_bindings.extend(bindings);
                    return Err(e);
                }
            }
        }
        if !changed.is_empty() {
            if let Err(e) = store.save_partnerships(&changed).await {
                let mut book = self.book();
                for p in &changed {
                    book.dirty.insert(key(&p.user, &p.eas_device_id, p.suspect));
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Apply a sighting to a partnership; whether anything changed.
fn update(entry: &mut Partnership, s: &Sighting<'_>) -> bool {
    let mut changed = false;
    changed |= set_opt(&mut entry.device_type, s.device_type);
    changed |= set_opt(&mut entry.user_agent, s.user_agent);
    changed |= set_opt(&mut entry.protocol, s.protocol);
    changed |= set_str(&mut entry.client, s.client);
    changed |= set_str(&mut entry.platform, s.platform);
    if entry.last_seen != s.now {
        entry.last_seen = s.now;
        changed = true;
    }
    if s.synced && entry.last_sync != Some(s.now) {
        entry.last_sync = Some(s.now);
        changed = true;
    }
    changed |= set_opt(&mut entry.last_command, Some(s.command));
    changed |= set_opt(&mut entry.cert_serial, s.cert_serial);
    changed |= set_str(&mut entry.device_state, s.device_state);
    changed |= set_str(&mut entry.access_state, s.access_state);
    changed |= set_display(&mut entry.access_reason, s.access_reason);
    if s.refused {
        if entry.last_refusal_at != Some(s.now) {
            entry.last_refusal_at = Some(s.now);
            changed = true;
        }
        if entry.last_refusal.as_deref() != Some(entry.access_reason.as_str()) {
            entry.last_refusal = Some(entry.access_reason.clone());
            changed = true;
        }
    }
    changed
}

/// How often partnerships are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Flush every [`FLUSH_EVERY`] until shutdown, then once more: partnerships, bindings and the
/// refusals due in the audit trail.
pub async fn flush_loop(app: Arc<crate::App>, mut shutdown: watch::Receiver<bool>) {
    let store = Arc::clone(&app.easgate.store);
    let gw = &app.gateway;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = shutdown.changed() => true,
        };
        if let Err(e) = gw.partnerships.flush(store.as_ref()).await {
            warn!(error = %e, "cannot record device partnerships; retrying");
        }
        let now = app.easgate.now().unix_timestamp();
        if let Err(e) = gw.refusals.flush(store.as_ref(), now).await {
            warn!(error = %e, "cannot record access refusals in the audit trail");
        }
        if let Err(e) = app.api_calls.flush(store.as_ref(), now, stopping).await {
            warn!(error = %e, "cannot record API calls in the audit trail");
        }
        if stopping {
            return;
        }
    }
}
