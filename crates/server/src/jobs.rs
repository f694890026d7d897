//! Background work of a running server: applying the store's change feed to the in-memory state
//! (CLI changes show within one poll interval), and keeping CRLs and OCSP responders fresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use easgate_pki::Serial;
use easgate_store::{CertStatus as StoreStatus, CrlScope};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::metrics::CrlLabels;
use crate::state::{CaState, Known};
use crate::App;

/// How long an OCSP responder certificate is valid; it is replaced at half-life.
pub const RESPONDER_VALIDITY: time::Duration = time::Duration::days(7);

/// Follow the change feed until shutdown: woken by the store's change notifications where it
/// has them (PostgreSQL), and at least every `--change-poll-interval`.
pub async fn follow_changes(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut revision = app.start_revision;
    let store = app.easgate.store.clone();
    loop {
        tokio::select! {
            _ = store.wait_for_changes(app.config.change_poll_interval) => {}
            _ = shutdown.changed() => return,
        }
        let outcome = tokio::select! {
            outcome = apply_changes(&app, revision) => outcome,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Ok(new) => {
                revision = new;
                app.freshness.confirm();
            }
            Err(e) => {
                app.metrics.job_failures.inc();
                if !app.freshness.check_stale() {
                    warn!(
                        error = %e,
                        age_seconds = app.freshness.age().as_secs(),
                        "could not apply store changes; deciding from memory, retrying"
                    );
                }
            }
        }
    }
}

async fn apply_changes(app: &App, after: i64) -> Result<i64, easgate_ops::OpsError> {
    let store = &app.easgate.store;
    if store.revision().await? <= after {
        return Ok(after);
    }
    let mut last = after;
    loop {
        let changes = store.changes_since(last, 1000).await?;
        let Some(newest) = changes.last().map(|c| c.revision) else {
            break;
        };
        for change in &changes {
            match change.entity.as_str() {
                "certificate" => refresh_certificate(app, &change.key).await?,
                "setting" => app.easgate.forget_settings(),
                "ca" => {
                    app.easgate.forget_ca(&change.key);
                    let stored = store.get_ca(&change.key).await?;
                    let served = app.pki.get(&change.key);
                    match (stored, served) {
                        (None, Some(_)) => {
                            app.pki.remove(&change.key);
                            info!(ca = %change.key, "CA removed: no longer served or trusted");
                        }
                        // New, or removed and made again under the same name.
                        (Some(ca), served)
                            if served
                                .as_ref()
                                .is_none_or(|s| s.cert_der.as_ref() != ca.cert_der.as_slice()) =>
                        {
                            let state =
                                CaState::load(&app.easgate, &change.key, RESPONDER_VALIDITY)
                                    .await
                                    .map_err(|e| {
                                        easgate_ops::OpsError::Conflict(format!(
                                            "loading new CA `{}`: {e}",
                                            change.key
                                        ))
                                    })?;
                            app.pki.insert(state);
                            info!(ca = %change.key, "new CA is served");
                        }
                        _ => {}
                    }
                }
                "crl" => {
                    if let Some(ca) = app.pki.get(&change.key) {
                        for scope in [CrlScope::Full, CrlScope::Delta] {
                            if let Some(crl) = store.latest_crl(&change.key, scope).await? {
                                ca.publish(crl);
                            }
                        }
                    }
                }
                _ => {}
            }
            crate::gateway::apply_change(app, &change.entity, &change.key)
                .await
                .map_err(|e| {
                    easgate_ops::OpsError::Conflict(format!(
                        "applying {} `{}` to the gateway: {e}",
                        change.entity, change.key
                    ))
                })?;
        }
        last = newest;
        if changes.len() < 1000 {
            break;
        }
    }
    app.metrics.change_revision.set(last);
    Ok(last)
}

async fn refresh_certificate(app: &App, serial_hex: &str) -> Result<(), easgate_ops::OpsError> {
    let now = app.easgate.now().unix_timestamp();
    let Some(cert) = app.easgate.store.get_certificate(serial_hex, now).await? else {
        return Ok(());
    };
    let Some(ca) = app.pki.get(&cert.ca) else {
        return Ok(());
    };
    let Ok(serial) = serial_hex.parse::<Serial>() else {
        return Ok(());
    };
    let known = Known::from_state(&easgate_store::CertState {
        serial: cert.serial.clone(),
        revoked_at: cert.revoked_at,
        reason: cert.revocation_reason.clone(),
        not_after: cert.not_after,
    });
    let changed = match ca.known.write() {
        Ok(mut map) => map.insert(serial, known) != Some(known),
        Err(_) => false,
    };
    if changed {
        ca.forget_presigned();
    }
    if cert.status == StoreStatus::Revoked && changed {
        // Due `--delta-crl-delay` after the revocation itself, not after this server saw it
        // (the change poll) and less one upkeep tick, so that the published delta lists it
        // within the promised delay.
        let since = Duration::from_secs(
            u64::try_from(now.saturating_sub(cert.revoked_at.unwrap_or(now))).unwrap_or(0),
        );
        let wait = app
            .config
            .delta_crl_delay
            .saturating_sub(since)
            .saturating_sub(tick(app));
        if let Ok(mut due) = ca.delta_due.lock() {
            let at = Instant::now() + wait;
            if due.is_none_or(|d| at < d) {
                *due = Some(at);
            }
        }
        info!(ca = %ca.name, serial = %cert.serial, "revocation applied; OCSP answers revoked now");
    }
    Ok(())
}

/// The lease whose holder makes and signs CRLs: with several instances on one database exactly
/// one signs at a time; the others serve what it publishes (a `crl` change) and take over
/// within a tick or two of its death.
pub const CRL_LEADER_LEASE: &str = "crl-leader";

/// Keep every CA's CRLs and responder fresh until shutdown.
pub async fn maintain(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut leading = false;
    loop {
        let lead = match app.easgate.store.hold_lease(CRL_LEADER_LEASE).await {
            Ok(lead) => lead,
            Err(e) => {
                warn!(error = %e, "cannot check the CRL leader lease; not making CRLs now");
                false
            }
        };
        let took_over = lead && !leading;
        if lead != leading {
            if lead {
                info!("this instance is the CRL leader: it makes and signs the CRLs");
            } else {
                warn!("this instance is no longer the CRL leader");
            }
            leading = lead;
        }
        app.metrics.crl_leader.set(i64::from(lead));
        for ca in app.pki.all() {
            if took_over {
                schedule_missed_delta(&ca);
            }
            if let Err(e) = maintain_ca(&app, &ca, lead).await {
                app.metrics.job_failures.inc();
                error!(ca = %ca.name, error = %e, "CRL or responder upkeep failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick(&app)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn tick(app: &App) -> Duration {
    app.config
        .delta_crl_delay
        .clamp(Duration::from_millis(100), Duration::from_secs(1))
}

fn age(this_update: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(now.saturating_sub(this_update)).unwrap_or(0))
}

/// A CA's upkeep: its CRLs when this instance is the leader (`lead`), its own OCSP responder
/// certificate always (each instance signs with its own).
async fn maintain_ca(app: &App, ca: &CaState, lead: bool) -> Result<(), easgate_ops::OpsError> {
    renew_responder(app, ca).await?;
    if lead {
        maintain_crls(app, ca).await?;
    } else if let Ok(mut due) = ca.delta_due.lock() {
        // The leader makes that delta; a new leader works out what it missed on taking over.
        *due = None;
    }
    Ok(())
}

/// On taking over as CRL leader: a delta CRL is due now if a certificate was revoked at or
/// after the newest delta's thisUpdate (the old leader may have died before publishing it).
fn schedule_missed_delta(ca: &CaState) {
    let Some(delta) = ca.crl(CrlScope::Delta) else {
        return; // none yet: maintain_crls makes one anyway
    };
    let newest_revocation = ca.known.read().ok().and_then(|known| {
        known
            .values()
            .filter_map(|k| k.revoked.map(|(at, _)| at.unix_timestamp()))
            .max()
    });
    if newest_revocation.is_some_and(|at| at >= delta.this_update) {
        if let Ok(mut due) = ca.delta_due.lock() {
            *due = Some(Instant::now());
        }
        info!(ca = %ca.name, "a revocation is newer than the last delta CRL: making one now");
    }
}

async fn maintain_crls(app: &App, ca: &CaState) -> Result<(), easgate_ops::OpsError> {
    let cfg = &app.config;
    let now = app.easgate.now().unix_timestamp();
    let to_time = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::HOUR);
    let full_due = match ca.crl(CrlScope::Full) {
        None => true,
        Some(full) => age(full.this_update, now) >= cfg.crl_interval,
    };
    if full_due {
        let full = app
            .easgate
            .generate_full_crl(&ca.name, to_time(cfg.crl_validity))
            .await?;
        published(app, ca, full);
    }
    let base = ca.crl(CrlScope::Full).map(|f| f.number);
    let revocation_due = ca
        .delta_due
        .lock()
        .map(|due| due.is_some_and(|at| Instant::now() >= at))
        .unwrap_or(false);
    let delta_due = full_due
        || revocation_due
        || match ca.crl(CrlScope::Delta) {
            None => true,
            Some(delta) => {
                delta.base_number != base
                    || age(delta.this_update, now) >= cfg.delta_crl_validity / 2
            }
        };
    if delta_due {
        if let Ok(mut due) = ca.delta_due.lock() {
            *due = None;
        }
        let delta = app
            .easgate
            .generate_delta_crl(&ca.name, to_time(cfg.delta_crl_validity))
            .await?;
        published(app, ca, delta);
    }
    Ok(())
}

async fn renew_responder(app: &App, ca: &CaState) -> Result<(), easgate_ops::OpsError> {
    let responder = ca.responder();
    if responder.not_after() - app.easgate.now() < RESPONDER_VALIDITY / 2 {
        let fresh = app
            .easgate
            .issue_ocsp_responder(&ca.name, RESPONDER_VALIDITY)
            .await?;
        if let Ok(mut slot) = ca.responder.write() {
            *slot = Arc::new(fresh);
        }
        ca.forget_presigned();
        info!(ca = %ca.name, "OCSP responder certificate renewed");
    }
    Ok(())
}

fn published(app: &App, ca: &CaState, crl: easgate_store::Crl) {
    let labels = CrlLabels {
        ca: ca.name.clone(),
        scope: crl.scope.as_str(),
    };
    app.metrics.crls_published.get_or_create(&labels).inc();
    app.metrics
        .crl_number
        .get_or_create(&labels)
        .set(crl.number);
    info!(ca = %ca.name, scope = crl.scope.as_str(), number = crl.number, entries = crl.entries, "CRL published");
    ca.publish(crl);
}
