//! Publishing CRLs: allocate the next CRL number, collect the revocations, sign, record. Used by
//! `easgate crl generate` and by the server's schedule alike.

use easgate_pki::crl::{CrlParams, CrlScope as PkiScope, RevokedEntry};
use easgate_pki::issue::PublicUrls;
use easgate_pki::revocation::RevocationReason;
use easgate_pki::Serial;
use easgate_store::{Crl, CrlScope, NewCrl};
use time::Duration;

use crate::error::{OpsError, Result};
use crate::time_fmt::from_unix;
use crate::Easgate;

/// Default time from thisUpdate to nextUpdate of a full CRL.
pub const FULL_CRL_VALIDITY: Duration = Duration::hours(24);
/// Default time from thisUpdate to nextUpdate of a delta CRL.
pub const DELTA_CRL_VALIDITY: Duration = Duration::hours(1);

impl Easgate {
    /// Sign and publish a full CRL of `ca`: every revoked certificate that has not expired.
    pub async fn generate_full_crl(&self, ca: &str, validity: Duration) -> Result<Crl> {
        self.publish_crl(ca, CrlScope::Full, validity).await
    }

    /// Sign and publish a delta CRL of `ca` against its latest full CRL (made first if there is
    /// none): every certificate revoked since that full CRL was made.
    pub async fn generate_delta_crl(&self, ca: &str, validity: Duration) -> Result<Crl> {
        if self
            .store
            .latest_crl_meta(ca, CrlScope::Full)
            .await?
            .is_none()
        {
            self.generate_full_crl(ca, FULL_CRL_VALIDITY).await?;
        }
        self.publish_crl(ca, CrlScope::Delta, validity).await
    }

    async fn publish_crl(&self, ca_name: &str, scope: CrlScope, validity: Duration) -> Result<Crl> {
        if validity < Duration::minutes(1) || validity > Duration::days(366) {
            return Err(OpsError::Invalid(format!(
                "CRL validity {validity} must be between 1 minute and 366 days"
            )));
        }
        let ca = self.load_ca(ca_name).await?;
        let ctx = self.ctx();
        let (since, base_number) = match scope {
            CrlScope::Full => (None, None),
            CrlScope::Delta => {
                let base = self
                    .store
                    .latest_crl_meta(ca_name, CrlScope::Full)
                    .await?
                    .ok_or_else(|| {
                        OpsError::Conflict(format!("CA `{ca_name}` has no full CRL yet"))
                    })?;
                // Same-second revocations may or may not be in the base: list them again.
                (Some(base.this_update), Some(base.number))
            }
        };
        let revoked = self
            .store
            .revoked_certificates(ca_name, since, ctx.now)
            .await?;
        let entries = revoked
            .iter()
            .map(|r| {
                Ok(RevokedEntry {
                    serial: r.serial.parse::<Serial>()?,
                    revoked_at: from_unix(r.revoked_at),
                    reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let number = self.store.next_crl_number(&ctx, ca_name).await?;
        let this_update = from_unix(ctx.now);
        let next_update = this_update + validity;
        let urls = PublicUrls::for_ca(&self.public_url().await?, ca_name);
        let der = ca.sign_crl(&CrlParams {
            number: u64::try_from(number).unwrap_or_default(),
            scope: match base_number {
                Some(base) => PkiScope::Delta {
                    base_number: u64::try_from(base).unwrap_or_default(),
                },
                None => PkiScope::Full,
            },
            this_update,
            next_update,
            entries: &entries,
            freshest_crl_url: Some(&urls.delta_crl),
        })?;
        let crl = NewCrl {
            ca: ca_name.to_string(),
            number,
            scope,
            base_number,
            this_update: ctx.now,
            next_update: next_update.unix_timestamp(),
            entries: i64::try_from(entries.len()).unwrap_or(i64::MAX),
            der,
        };
        self.store.insert_crl(&ctx, crl.clone()).await?;
        Ok(Crl {
            ca: crl.ca,
            number: crl.number,
            scope: crl.scope,
            base_number: crl.base_number,
            this_update: crl.this_update,
            next_update: crl.next_update,
            entries: crl.entries,
            der: crl.der,
        })
    }
}

impl Easgate {
    /// Issue a delegated OCSP responder certificate for `ca` (EKU OCSPSigning, ocsp-nocheck),
    /// recorded in the store like every certificate. The key lives only in the server's memory:
    /// a restart issues a new responder.
    pub async fn issue_ocsp_responder(
        &self,
        ca: &str,
        validity: Duration,
    ) -> Result<easgate_pki::ocsp::Responder> {
        let authority = self.load_ca(ca).await?;
        let serial = Serial::random()?;
        let responder =
            easgate_pki::ocsp::Responder::issue(&authority, ca, &serial, self.now(), validity)?;
        self.record_service_certificate(
            ca,
            responder.cert_der(),
            responder.key().key_type().as_str(),
        )
        .await?;
        Ok(responder)
    }
}
