//! The easgate store: one [`Store`] trait that the CLI, the REST API and the server use, and its
//! backends: SQLite (WAL, embedded migrations; the default) and PostgreSQL (`postgres://`, a
//! pool, its own migrations). The trait speaks in plain records and Unix-second times so
//! neither backend's idioms leak to callers; the contract suite runs against both.
//!
//! Every mutating call runs in one transaction that also appends an audit event and a
//! change-feed row. The change feed's revision grows by one per change; a running server polls
//! [`Store::revision`] and reloads what [`Store::changes_since`] names.

pub mod copy;
mod error;
pub mod model;
mod postgres;
mod provision;
mod sqlite;
mod sqlite_api;
mod sqlite_gateway;
mod sqlite_profiles;
mod sqlite_provision;
mod sqlite_unbound;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::{Result, StoreError};
pub mod json_time;
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The operations of the store. Implementations must make each mutating call atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// The latest change-feed revision (0 on an empty store).
    async fn revision(&self) -> Result<i64>;
    /// Changes with a revision above `after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>>;
    /// Wait until the change feed may have grown, or `at_most` has passed, whichever is first.
    /// A backend that can be told of another process's commit (PostgreSQL: `LISTEN/NOTIFY`)
    /// returns as soon as one lands; the default just sleeps, which makes the caller a poller.
    /// A spurious early return is allowed: callers re-read [`Store::revision`].
    async fn wait_for_changes(&self, at_most: std::time::Duration) {
        tokio::time::sleep(at_most).await;
    }
    /// Whether this process holds the lease `name` (taking it if it is free): at most one
    /// process on the database holds a lease at a time, and it is freed when the holder's
    /// process or database connection ends. Called again to renew (and to learn of a lost
    /// lease). The SQLite backend serves one process per database file, so it always holds.
    async fn hold_lease(&self, _name: &str) -> Result<bool> {
        Ok(true)
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    async fn set_setting(&self, ctx: &Ctx, key: &str, value: &str) -> Result<()>;

    async fn insert_ca(&self, ctx: &Ctx, ca: NewCa) -> Result<Ca>;
    async fn list_cas(&self) -> Result<Vec<Ca>>;
    async fn get_ca(&self, name: &str) -> Result<Option<Ca>>;
    /// Remove a CA: refused while it has valid device certificates unless `revoke` is given,
    /// which revokes them. The row stays (renamed `NAME.removed-<time>`) for the certificates
    /// it issued; the CA is no longer listed, served or trusted. Returns the serials revoked.
    async fn remove_ca(
        &self,
        ctx: &Ctx,
        name: &str,
        revoke: Option<Revocation>,
    ) -> Result<Vec<String>>;
    /// Make CA `name` refuse (or accept again) single-DES SCEP envelopes; `NotFound` if there
    /// is no such CA.
    async fn set_ca_scep_no_des(&self, ctx: &Ctx, name: &str, refuse: bool) -> Result<()>;
    /// Make an EC CA answer GetCACert with its RA alone (`true`) or with the CA and the RA.
    async fn set_ca_scep_ra_only(&self, ctx: &Ctx, name: &str, ra_only: bool) -> Result<()>;

    async fn insert_trusted_ca(&self, ctx: &Ctx, ca: NewTrustedCa) -> Result<TrustedCa>;
    async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>>;
    /// Remove a trusted CA; `NotFound` if there is none of that name.
    async fn remove_trusted_ca(&self, ctx: &Ctx, name: &str) -> Result<()>;

    async fn insert_group(&self, ctx: &Ctx, name: &str) -> Result<Group>;
    async fn list_groups(&self) -> Result<Vec<Group>>;
    /// Remove a group and its memberships; refused while an access rule or profile names it.
    async fn remove_group(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// Add a user; every group named must exist.
    async fn insert_user(&self, ctx: &Ctx, user: NewUser) -> Result<User>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn get_user(&self, upn: &str) -> Result<Option<User>>;
    /// Remove a user who never had a device, and their memberships; refused while the user
    /// has devices (their certificates stay attributable: disable instead) or a rule names them.
    async fn remove_user(&self, ctx: &Ctx, upn: &str) -> Result<()>;
    /// Change a user's email, name or groups; groups must exist.
    async fn update_user(&self, ctx: &Ctx, upn: &str, change: UserChange) -> Result<User>;
    /// Disable or enable a user. When `revoke` is given, every valid certificate of the user's
    /// devices is revoked in the same transaction; the revoked serials are returned.
    async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        upn: &str,
        disabled: bool,
        revoke: Option<Revocation>,
    ) -> Result<(User, Vec<String>)>;

    async fn insert_template(&self, ctx: &Ctx, template: NewTemplate) -> Result<Template>;
    async fn list_templates(&self) -> Result<Vec<Template>>;
    async fn get_template(&self, name: &str) -> Result<Option<Template>>;
    /// Replace a template's subject, SANs, key type, validity and renewal window (its name,
    /// CA and default mark stay). Certificates already issued are not changed.
    async fn update_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template>;
    /// Make `name` the template devices get without `--template`.
    async fn set_default_template(&self, ctx: &Ctx, name: &str) -> Result<Template>;
    /// Remove a template nothing refers to (no device, certificate or profile).
    async fn remove_template(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// Create a device and its one-time SCEP challenge together.
    async fn enroll_device(
        &self,
        ctx: &Ctx,
        device: NewDevice,
        challenge: NewChallenge,
    ) -> Result<Device>;
    /// A device's new one-time SCEP challenge and profile token; every earlier unused one
    /// stops working, in the same transaction. Refused for a retired or wiped device.
    async fn reenroll_device(&self, ctx: &Ctx, uid: &str, secrets: NewChallenge) -> Result<Device>;
    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>>;
    /// A device together with its owner, in one read (issuance needs both).
    async fn get_device_with_owner(&self, uid: &str) -> Result<Option<(Device, User)>>;
    async fn get_device(&self, uid: &str) -> Result<Option<Device>>;
    /// Move a device to `state` (retired / wiped), revoking every valid certificate of it in the
    /// same transaction; the revoked serials are returned.
    async fn set_device_state(
        &self,
        ctx: &Ctx,
        uid: &str,
        state: &str,
        revoke: Revocation,
    ) -> Result<(Device, Vec<String>)>;

    /// Record an issued certificate (and mark its device enrolled).
    async fn insert_certificate(&self, ctx: &Ctx, cert: NewCertificate) -> Result<()>;
    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<Certificate>>;
    async fn get_certificate(&self, serial: &str, now: i64) -> Result<Option<Certificate>>;
    /// Revoke one certificate; `Conflict` if it is already revoked.
    async fn revoke_certificate(
        &self,
        ctx: &Ctx,
        serial: &str,
        revoke: Revocation,
    ) -> Result<Certificate>;

    /// Take the next CRL number of a CA (one sequence for its full and delta CRLs; starts at 1).
    async fn next_crl_number(&self, ctx: &Ctx, ca: &str) -> Result<i64>;
    /// Record a signed CRL (its publication is a change in the feed).
    async fn insert_crl(&self, ctx: &Ctx, crl: NewCrl) -> Result<()>;
    /// The CRL of that scope with the highest number.
    async fn latest_crl(&self, ca: &str, scope: CrlScope) -> Result<Option<Crl>>;
    /// The same without the body: a full CRL of a million entries is ~46 MB, and making a delta
    /// must cost in proportion to the delta.
    async fn latest_crl_meta(&self, ca: &str, scope: CrlScope) -> Result<Option<CrlMeta>>;
    /// Revoked certificates of a CA that have not expired at `now`, revoked at or after `since`
    /// when given (in no particular order: a CRL's entries are a set).
    async fn revoked_certificates(
        &self,
        ca: &str,
        since: Option<i64>,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>>;
    /// Every certificate of a CA with its revocation state (for the OCSP responder's snapshot).
    async fn certificate_states(&self, ca: &str) -> Result<Vec<CertState>>;

    /// Use a SCEP challenge once: if a challenge with this SHA-256 exists, is unused and has not
    /// expired, mark it used and return its device's uid; otherwise `None` (and nothing changes).
    async fn consume_scep_challenge(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>>;

    /// A SCEP transaction answered earlier: (SHA-256 of the requested key, certificate serial).
    /// The device an unused, unexpired one-time challenge (its hash) belongs to; nothing is
    /// spent.
    async fn peek_scep_challenge(&self, hash_hex: &str, now: i64) -> Result<Option<String>>;
    /// Add a one-time SCEP challenge bound to no device (handed to an MDM by the NDES-compatible
    /// page), usable at CA `ca` or, without one, at any; audited `scep.challenge.create` on
    /// `challenge:unbound`. `Ok(None)`, with nothing written, when `max_live` unused, unexpired
    /// ones exist already (NDES's "password cache is full"). `NotFound` for an unknown CA.
    async fn insert_unbound_challenge(
        &self,
        ctx: &Ctx,
        challenge: NewUnboundChallenge,
    ) -> Result<Option<i64>>;
    /// Whether an unused one-time challenge bound to no device (its hash), unexpired at `now`,
    /// may enroll at CA `ca`; nothing is spent.
    async fn peek_unbound_challenge(&self, hash_hex: &str, ca: &str, now: i64) -> Result<bool>;
    /// A SCEP enrollment as one transaction: the challenge spent (it must still be unused and
    /// belong to the certificate's device, or, bound to no device, be meant for this CA), the certificate recorded, the certificate it
    /// renews revoked (`superseded`), and the SCEP transaction recorded — all or nothing, so a
    /// server stopped at any point leaves the challenge usable for the client's retry. The
    /// `scep.enroll` audit event is part of it.
    /// `Ok(false)`, with nothing written, when the challenge was spent meanwhile.
    async fn record_scep_enrollment(&self, ctx: &Ctx, e: ScepEnrollment) -> Result<bool>;
    async fn get_scep_transaction(
        &self,
        ca: &str,
        transaction_id: &str,
    ) -> Result<Option<(String, String)>>;

    /// Append an audit event that goes with no other change (e.g. how an enrollment arrived).
    async fn record_event(
        &self,
        ctx: &Ctx,
        action: &str,
        entity: &str,
        key: &str,
        detail: &str,
    ) -> Result<()>;

    /// Audit events at or after `since`, oldest first.
    async fn list_audit(&self, since: i64) -> Result<Vec<AuditEvent>>;
    /// One page of audit events in id order, filtered.
    async fn page_audit(
        &self,
        filter: &AuditFilter,
        page: &PageQuery<i64>,
    ) -> Result<Vec<AuditEvent>>;

    /// Admin API tokens: create (the name unique among live tokens), list, find by hash, revoke.
    async fn insert_api_token(&self, ctx: &Ctx, token: NewApiToken) -> Result<ApiToken>;
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn api_token_by_hash(&self, hash_hex: &str) -> Result<Option<ApiToken>>;
    async fn revoke_api_token(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// Paged lists for the admin API, in key order after the cursor.
    async fn page_partnerships(
        &self,
        filter: &PartnershipFilter,
        page: &PageQuery<PartnershipKey>,
    ) -> Result<Vec<Partnership>>;
    async fn page_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Device>>;
    async fn page_certificates(
        &self,
        filter: &CertPageFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Certificate>>;

    /// Add an access rule (its name unique).
    async fn insert_rule(&self, ctx: &Ctx, rule: AccessRule) -> Result<()>;
    async fn list_rules(&self) -> Result<Vec<AccessRule>>;
    async fn remove_rule(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// Set (or replace) the override of one EAS DeviceId.
    async fn set_override(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
        unmanaged: bool,
    ) -> Result<()>;
    async fn list_overrides(&self) -> Result<Vec<EasOverride>>;

    /// Add an EAS policy (its name unique). A default policy takes the default from any other.
    async fn insert_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()>;
    /// Replace an EAS policy's settings, groups and default flag (`created_at` is kept).
    async fn update_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()>;
    /// Every EAS policy, by name.
    async fn list_eas_policies(&self) -> Result<Vec<EasPolicy>>;
    async fn remove_eas_policy(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// Order a remote wipe of one EAS DeviceId (state `pending`): a `wipe` change, audited as
    /// `eas.wipe.request`. A DeviceId with a wipe on record (any state) is a conflict.
    async fn request_wipe(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        account_only: bool,
        device_uid: Option<&str>,
    ) -> Result<EasWipe>;
    /// Withdraw a wipe that is still `pending` (`eas.wipe.cancel`); one already sent or
    /// acknowledged is a conflict.
    async fn cancel_wipe(&self, ctx: &Ctx, eas_device_id: &str) -> Result<()>;
    /// Every wipe on record, by DeviceId.
    async fn list_wipes(&self) -> Result<Vec<EasWipe>>;
    /// The gateway handed the wipe to the device: `pending` becomes `sent` (`eas.wipe.sent`);
    /// whether it did (false when it was already sent, or there is no such wipe).
    async fn mark_wipe_sent(&self, ctx: &Ctx, eas_device_id: &str) -> Result<bool>;
    /// The device acknowledged the wipe: `pending`/`sent` becomes `succeeded` or `failed`
    /// (`eas.wipe.ack`). The wipe as it now is; `None` when none was pending or sent.
    async fn mark_wipe_acknowledged(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        succeeded: bool,
    ) -> Result<Option<EasWipe>>;

    /// Write partnerships as the gateway last saw them (insert or update each). With several
    /// gateways on one database the latest sighting wins: a partnership whose stored
    /// `last_seen` is newer than the one given is left alone, and `first_seen` keeps the
    /// earliest. No audit event or change row: this is the gateway's running record.
    async fn save_partnerships(&self, partnerships: &[Partnership]) -> Result<()>;
    /// Partnerships, of one user or all, by user then DeviceId.
    async fn list_partnerships(&self, user: Option<&str>) -> Result<Vec<Partnership>>;
    /// Every partnership of one EAS DeviceId (normally one).
    async fn get_partnerships(&self, eas_device_id: &str) -> Result<Vec<Partnership>>;
    /// Remove every partnership, the override and the wipe record of one EAS DeviceId; the
    /// number of partnerships removed.
    async fn clear_partnerships(&self, ctx: &Ctx, eas_device_id: &str) -> Result<usize>;

    /// Record certificate-to-DeviceId bindings not yet recorded (an existing binding is kept:
    /// the first writer wins, whichever gateway it was); each new one is a `binding` change, so
    /// other instances learn it. Returns the binding in effect for each serial given, which
    /// differs from the one given when another gateway bound that certificate first.
    async fn save_bindings(
        &self,
        bindings: &[CertificateBinding],
    ) -> Result<Vec<CertificateBinding>>;
    /// The binding of one certificate (serial in hex), if it has one.
    async fn get_binding(&self, serial: &str) -> Result<Option<CertificateBinding>>;
    async fn list_bindings(&self) -> Result<Vec<CertificateBinding>>;
    /// The bindings of the certificates used with one EAS DeviceId (case-insensitive).
    async fn device_bindings(&self, eas_device_id: &str) -> Result<Vec<CertificateBinding>>;

    /// Add a profile; its template and every group named must exist.
    async fn insert_profile(&self, ctx: &Ctx, profile: NewProfile) -> Result<Profile>;
    async fn list_profiles(&self) -> Result<Vec<Profile>>;
    async fn get_profile(&self, name: &str) -> Result<Option<Profile>>;
    /// Remove a profile; `NotFound` if there is none of that name. Rendered profiles and
    /// enrollment links already handed out are not affected (links pick a profile when used).
    async fn remove_profile(&self, ctx: &Ctx, name: &str) -> Result<()>;

    /// A certificate and sealed key easgate keeps for `role` on CA `ca`.
    async fn get_service_key(&self, ca: &str, role: &str) -> Result<Option<ServiceKey>>;
    /// Record one (`AlreadyExists` if that CA has one for the role).
    async fn insert_service_key(&self, ctx: &Ctx, key: ServiceKey) -> Result<()>;

    /// Give device `uid` another one-time SCEP challenge (each rendered SCEP profile carries
    /// a fresh one, since only hashes are kept).
    async fn add_challenge(
        &self,
        ctx: &Ctx,
        uid: &str,
        hash_hex: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// A profile-download token's device and state at `now`; `None` if no such token exists.
    async fn profile_token(&self, hash_hex: &str, now: i64) -> Result<Option<ProfileToken>>;
    /// Use a profile-download token once: if it is unused and not expired, mark it used and
    /// return its device's uid; otherwise `None` (and nothing changes).
    async fn consume_profile_token(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>>;

    /// Start a renewal enrollment (renewal row + challenge + profile token, one transaction)
    /// unless one exists for that serial; `false` when one did.
    async fn start_renewal(&self, ctx: &Ctx, renewal: NewRenewal) -> Result<bool>;
    /// Valid device certificates inside their template's renewal window at `now` whose device
    /// holds no newer valid certificate, soonest expiry first.
    async fn expiring_certificates(&self, now: i64) -> Result<Vec<ExpiringCertificate>>;
    /// Every renewal, oldest first. Recording a newer certificate for a device clears its
    /// pending renewals.
    async fn list_renewals(&self) -> Result<Vec<Renewal>>;
}

/// Open the store a database URL names: `sqlite://PATH` (created if missing), or
/// `postgres://…` / `postgresql://…` (optionally `?schema=NAME`, created if missing); either is
/// migrated to the current schema first.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if is_postgres_url(url) {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
            why: "expected sqlite://PATH or postgres://…".into(),
        })
    }
}

/// Whether `url` names PostgreSQL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The database file of a `sqlite:` URL (`None` for any other kind, e.g. PostgreSQL, whose
/// storage the server guards): what file-mode checks look at.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if url.starts_with("sqlite:") {
        sqlite::path_of(url).ok()
    } else {
        None
    }
}

/// A URL with any password replaced, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
