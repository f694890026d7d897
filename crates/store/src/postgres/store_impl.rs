//! `Store` for `PgStore`: each call is the inherent method of the same name (kept there so
//! the modules read as plain SQL, and callers holding a `PgStore` need no trait import).

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;
use crate::Store;

use super::PgStore;

#[async_trait]
impl Store for PgStore {
    async fn revision(&self) -> Result<i64> {
        PgStore::revision(self).await
    }
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        PgStore::changes_since(self, after, limit).await
    }
    async fn wait_for_changes(&self, at_most: std::time::Duration) {
        PgStore::wait_for_changes(self, at_most).await
    }
    async fn hold_lease(&self, name: &str) -> Result<bool> {
        PgStore::hold_lease(self, name).await
    }
    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        PgStore::get_setting(self, key).await
    }
    async fn set_setting(&self, ctx: &Ctx, key: &str, value: &str) -> Result<()> {
        PgStore::set_setting(self, ctx, key, value).await
    }
    async fn insert_ca(&self, ctx: &Ctx, ca: NewCa) -> Result<Ca> {
        PgStore::insert_ca(self, ctx, ca).await
    }
    async fn list_cas(&self) -> Result<Vec<Ca>> {
        PgStore::list_cas(self).await
    }
    async fn get_ca(&self, name: &str) -> Result<Option<Ca>> {
        PgStore::get_ca(self, name).await
    }
    async fn remove_ca(
        &self,
        ctx: &Ctx,
        name: &str,
        revoke: Option<Revocation>,
    ) -> Result<Vec<String>> {
        PgStore::remove_ca(self, ctx, name, revoke).await
    }
    async fn set_ca_scep_no_des(&self, ctx: &Ctx, name: &str, refuse: bool) -> Result<()> {
        PgStore::set_ca_scep_no_des(self, ctx, name, refuse).await
    }
    async fn set_ca_scep_ra_only(&self, ctx: &Ctx, name: &str, ra_only: bool) -> Result<()> {
        PgStore::set_ca_scep_ra_only(self, ctx, name, ra_only).await
    }
    async fn insert_trusted_ca(&self, ctx: &Ctx, ca: NewTrustedCa) -> Result<TrustedCa> {
        PgStore::insert_trusted_ca(self, ctx, ca).await
    }
    async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>> {
        PgStore::list_trusted_cas(self).await
    }
    async fn remove_trusted_ca(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_trusted_ca(self, ctx, name).await
    }
    async fn insert_group(&self, ctx: &Ctx, name: &str) -> Result<Group> {
        PgStore::insert_group(self, ctx, name).await
    }
    async fn list_groups(&self) -> Result<Vec<Group>> {
        PgStore::list_groups(self).await
    }
    async fn remove_group(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_group(self, ctx, name).await
    }
    async fn insert_user(&self, ctx: &Ctx, user: NewUser) -> Result<User> {
        PgStore::insert_user(self, ctx, user).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        PgStore::list_users(self).await
    }
    async fn get_user(&self, upn: &str) -> Result<Option<User>> {
        PgStore::get_user(self, upn).await
    }
    async fn remove_user(&self, ctx: &Ctx, upn: &str) -> Result<()> {
        PgStore::remove_user(self, ctx, upn).await
    }
    async fn update_user(&self, ctx: &Ctx, upn: &str, change: UserChange) -> Result<User> {
        PgStore::update_user(self, ctx, upn, change).await
    }
    async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        upn: &str,
        disabled: bool,
        revoke: Option<Revocation>,
    ) -> Result<(User, Vec<String>)> {
        PgStore::set_user_disabled(self, ctx, upn, disabled, revoke).await
    }
    async fn insert_template(&self, ctx: &Ctx, template: NewTemplate) -> Result<Template> {
        PgStore::insert_template(self, ctx, template).await
    }
    async fn list_templates(&self) -> Result<Vec<Template>> {
        PgStore::list_templates(self).await
    }
    async fn get_template(&self, name: &str) -> Result<Option<Template>> {
        PgStore::get_template(self, name).await
    }
    async fn update_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        PgStore::update_template(self, ctx, t).await
    }
    async fn set_default_template(&self, ctx: &Ctx, name: &str) -> Result<Template> {
        PgStore::set_default_template(self, ctx, name).await
    }
    async fn remove_template(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_template(self, ctx, name).await
    }
    async fn enroll_device(
        &self,
        ctx: &Ctx,
        device: NewDevice,
        challenge: NewChallenge,
    ) -> Result<Device> {
        PgStore::enroll_device(self, ctx, device, challenge).await
    }
    async fn reenroll_device(&self, ctx: &Ctx, uid: &str, secrets: NewChallenge) -> Result<Device> {
        PgStore::reenroll_device(self, ctx, uid, secrets).await
    }
    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>> {
        PgStore::list_devices(self, user).await
    }
    async fn get_device_with_owner(&self, uid: &str) -> Result<Option<(Device, User)>> {
        PgStore::get_device_with_owner(self, uid).await
    }
    async fn get_device(&self, uid: &str) -> Result<Option<Device>> {
        PgStore::get_device(self, uid).await
    }
    async fn set_device_state(
        &self,
        ctx: &Ctx,
        uid: &str,
        state: &str,
        revoke: Revocation,
    ) -> Result<(Device, Vec<String>)> {
        PgStore::set_device_state(self, ctx, uid, state, revoke).await
    }
    async fn insert_certificate(&self, ctx: &Ctx, cert: NewCertificate) -> Result<()> {
        PgStore::insert_certificate(self, ctx, cert).await
    }
    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<Certificate>> {
        PgStore::list_certificates(self, filter).await
    }
    async fn get_certificate(&self, serial: &str, now: i64) -> Result<Option<Certificate>> {
        PgStore::get_certificate(self, serial, now).await
    }
    async fn revoke_certificate(
        &self,
        ctx: &Ctx,
        serial: &str,
        revoke: Revocation,
    ) -> Result<Certificate> {
        PgStore::revoke_certificate(self, ctx, serial, revoke).await
    }
    async fn next_crl_number(&self, ctx: &Ctx, ca: &str) -> Result<i64> {
        PgStore::next_crl_number(self, ctx, ca).await
    }
    async fn insert_crl(&self, ctx: &Ctx, crl: NewCrl) -> Result<()> {
        PgStore::insert_crl(self, ctx, crl).await
    }
    async fn latest_crl(&self, ca: &str, scope: CrlScope) -> Result<Option<Crl>> {
        PgStore::latest_crl(self, ca, scope).await
    }
    async fn latest_crl_meta(&self, ca: &str, scope: CrlScope) -> Result<Option<CrlMeta>> {
        PgStore::latest_crl_meta(self, ca, scope).await
    }
    async fn revoked_certificates(
        &self,
        ca: &str,
        since: Option<i64>,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>> {
        PgStore::revoked_certificates(self, ca, since, now).await
    }
    async fn certificate_states(&self, ca: &str) -> Result<Vec<CertState>> {
        PgStore::certificate_states(self, ca).await
    }
    async fn consume_scep_challenge(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>> {
        PgStore::consume_scep_challenge(self, ctx, hash_hex).await
    }
    async fn peek_scep_challenge(&self, hash_hex: &str, now: i64) -> Result<Option<String>> {
        PgStore::peek_scep_challenge(self, hash_hex, now).await
    }
    async fn insert_unbound_challenge(
        &self,
        ctx: &Ctx,
        challenge: NewUnboundChallenge,
    ) -> Result<Option<i64>> {
        PgStore::insert_unbound_challenge(self, ctx, challenge).await
    }
    async fn peek_unbound_challenge(&self, hash_hex: &str, ca: &str, now: i64) -> Result<bool> {
        PgStore::peek_unbound_challenge(self, hash_hex, ca, now).await
    }
    async fn record_scep_enrollment(&self, ctx: &Ctx, e: ScepEnrollment) -> Result<bool> {
        PgStore::record_scep_enrollment(self, ctx, e).await
    }
    async fn get_scep_transaction(
        &self,
        ca: &str,
        transaction_id: &str,
    ) -> Result<Option<(String, String)>> {
        PgStore::get_scep_transaction(self, ca, transaction_id).await
    }
    async fn record_event(
        &self,
        ctx: &Ctx,
        action: &str,
        entity: &str,
        key: &str,
        detail: &str,
    ) -> Result<()> {
        PgStore::record_event(self, ctx, action, entity, key, detail).await
    }
    async fn list_audit(&self, since: i64) -> Result<Vec<AuditEvent>> {
        PgStore::list_audit(self, since).await
    }
    async fn page_audit(
        &self,
        filter: &AuditFilter,
        page: &PageQuery<i64>,
    ) -> Result<Vec<AuditEvent>> {
        PgStore::page_audit(self, filter, page).await
    }
    async fn insert_api_token(&self, ctx: &Ctx, token: NewApiToken) -> Result<ApiToken> {
        PgStore::insert_api_token(self, ctx, token).await
    }
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        PgStore::list_api_tokens(self).await
    }
    async fn api_token_by_hash(&self, hash_hex: &str) -> Result<Option<ApiToken>> {
        PgStore::api_token_by_hash(self, hash_hex).await
    }
    async fn revoke_api_token(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::revoke_api_token(self, ctx, name).await
    }
    async fn page_partnerships(
        &self,
        filter: &PartnershipFilter,
        page: &PageQuery<PartnershipKey>,
    ) -> Result<Vec<Partnership>> {
        PgStore::page_partnerships(self, filter, page).await
    }
    async fn page_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Device>> {
        PgStore::page_devices(self, filter, page).await
    }
    async fn page_certificates(
        &self,
        filter: &CertPageFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Certificate>> {
        PgStore::page_certificates(self, filter, page).await
    }
    async fn insert_rule(&self, ctx: &Ctx, rule: AccessRule) -> Result<()> {
        PgStore::insert_rule(self, ctx, rule).await
    }
    async fn list_rules(&self) -> Result<Vec<AccessRule>> {
        PgStore::list_rules(self).await
    }
    async fn remove_rule(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_rule(self, ctx, name).await
    }
    async fn set_override(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
        unmanaged: bool,
    ) -> Result<()> {
        PgStore::set_override(self, ctx, eas_device_id, action, reason, unmanaged).await
    }
    async fn list_overrides(&self) -> Result<Vec<EasOverride>> {
        PgStore::list_overrides(self).await
    }
    async fn insert_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        PgStore::insert_eas_policy(self, ctx, policy).await
    }
    async fn update_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        PgStore::update_eas_policy(self, ctx, policy).await
    }
    async fn list_eas_policies(&self) -> Result<Vec<EasPolicy>> {
        PgStore::list_eas_policies(self).await
    }
    async fn remove_eas_policy(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_eas_policy(self, ctx, name).await
    }
    async fn request_wipe(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        account_only: bool,
        device_uid: Option<&str>,
    ) -> Result<EasWipe> {
        PgStore::request_wipe(self, ctx, eas_device_id, account_only, device_uid).await
    }
    async fn cancel_wipe(&self, ctx: &Ctx, eas_device_id: &str) -> Result<()> {
        PgStore::cancel_wipe(self, ctx, eas_device_id).await
    }
    async fn list_wipes(&self) -> Result<Vec<EasWipe>> {
        PgStore::list_wipes(self).await
    }
    async fn mark_wipe_sent(&self, ctx: &Ctx, eas_device_id: &str) -> Result<bool> {
        PgStore::mark_wipe_sent(self, ctx, eas_device_id).await
    }
    async fn mark_wipe_acknowledged(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        succeeded: bool,
    ) -> Result<Option<EasWipe>> {
        PgStore::mark_wipe_acknowledged(self, ctx, eas_device_id, succeeded).await
    }
    async fn save_partnerships(&self, partnerships: &[Partnership]) -> Result<()> {
        PgStore::save_partnerships(self, partnerships).await
    }
    async fn list_partnerships(&self, user: Option<&str>) -> Result<Vec<Partnership>> {
        PgStore::list_partnerships(self, user).await
    }
    async fn get_partnerships(&self, eas_device_id: &str) -> Result<Vec<Partnership>> {
        PgStore::get_partnerships(self, eas_device_id).await
    }
    async fn clear_partnerships(&self, ctx: &Ctx, eas_device_id: &str) -> Result<usize> {
        PgStore::clear_partnerships(self, ctx, eas_device_id).await
    }
    async fn save_bindings(
        &self,
        bindings: &[CertificateBinding],
    ) -> Result<Vec<CertificateBinding>> {
        PgStore::save_bindings(self, bindings).await
    }
    async fn get_binding(&self, serial: &str) -> Result<Option<CertificateBinding>> {
        PgStore::get_binding(self, serial).await
    }
    async fn list_bindings(&self) -> Result<Vec<CertificateBinding>> {
        PgStore::list_bindings(self).await
    }
    async fn device_bindings(&self, eas_device_id: &str) -> Result<Vec<CertificateBinding>> {
        PgStore::device_bindings(self, eas_device_id).await
    }
    async fn insert_profile(&self, ctx: &Ctx, profile: NewProfile) -> Result<Profile> {
        PgStore::insert_profile(self, ctx, profile).await
    }
    async fn list_profiles(&self) -> Result<Vec<Profile>> {
        PgStore::list_profiles(self).await
    }
    async fn get_profile(&self, name: &str) -> Result<Option<Profile>> {
        PgStore::get_profile(self, name).await
    }
    async fn remove_profile(&self, ctx: &Ctx, name: &str) -> Result<()> {
        PgStore::remove_profile(self, ctx, name).await
    }
    async fn get_service_key(&self, ca: &str, role: &str) -> Result<Option<ServiceKey>> {
        PgStore::get_service_key(self, ca, role).await
    }
    async fn insert_service_key(&self, ctx: &Ctx, key: ServiceKey) -> Result<()> {
        PgStore::insert_service_key(self, ctx, key).await
    }
    async fn add_challenge(
        &self,
        ctx: &Ctx,
        uid: &str,
        hash_hex: &str,
        expires_at: i64,
    ) -> Result<()> {
        PgStore::add_challenge(self, ctx, uid, hash_hex, expires_at).await
    }
    async fn profile_token(&self, hash_hex: &str, now: i64) -> Result<Option<ProfileToken>> {
        PgStore::profile_token(self, hash_hex, now).await
    }
    async fn consume_profile_token(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>> {
        PgStore::consume_profile_token(self, ctx, hash_hex).await
    }
    async fn start_renewal(&self, ctx: &Ctx, renewal: NewRenewal) -> Result<bool> {
        PgStore::start_renewal(self, ctx, renewal).await
    }
    async fn expiring_certificates(&self, now: i64) -> Result<Vec<ExpiringCertificate>> {
        PgStore::expiring_certificates(self, now).await
    }
    async fn list_renewals(&self) -> Result<Vec<Renewal>> {
        PgStore::list_renewals(self).await
    }
}
