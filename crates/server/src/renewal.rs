//! The renewal job: every `--renewal-interval` (and once at start) it starts a renewal
//! enrollment for each certificate inside its template's renewal window (see
//! `easgate_ops::renewals`) and, with `--renewal-webhook`, POSTs a JSON event per renewal so
//! an MDM can push the new profile. Each renewal is started once (the store keys it by serial),
//! so several servers on one database do not announce it twice.
//!
//! The event carries the one-time challenge and profile link: they are what the receiver
//! needs. They are never logged; the log line names device, user and serial.

use std::sync::Arc;
use std::time::Duration;

use easgate_ops::renewals::RenewalStarted;
use easgate_ops::time_fmt::rfc3339;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::App;

/// Attempts per webhook event, with 2 s, 4 s between them.
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Run until shutdown.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match app.easgate.start_due_renewals().await {
            Ok(started) => {
                for renewal in started {
                    info!(
                        device = %renewal.device,
                        user = %renewal.user,
                        serial = %renewal.serial,
                        not_after = %rfc3339(renewal.not_after),
                        "renewal enrollment started"
                    );
                    if let Some(url) = &app.config.renewal_webhook {
                        notify(&app, url, &renewal).await;
                    }
                }
            }
            Err(e) => {
                app.metrics.job_failures.inc();
                warn!(error = %e, "renewal check failed; retrying at the next interval");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(app.config.renewal_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The webhook's JSON body.
pub fn event(renewal: &RenewalStarted) -> serde_json::Value {
    serde_json::json!({
        "event": "certificate.renewal",
        "device": renewal.device,
        "user": renewal.user,
        "serial": renewal.serial,
        "not_after": rfc3339(renewal.not_after),
        "scep_url": renewal.scep_url,
        "challenge": renewal.challenge,
        "profile_url": renewal.profile_url,
        "expires_at": rfc3339(renewal.expires_at),
    })
}

async fn notify(app: &App, url: &http::Uri, renewal: &RenewalStarted) {
    let body = event(renewal).to_string();
    let mut outcome = String::new();
    for attempt in 1..=ATTEMPTS {
        match post(app, url, body.clone()).await {
            Ok(status) if status.is_success() => {
                info!(device = %renewal.device, serial = %renewal.serial, %url, status = status.as_u16(), "renewal webhook delivered");
                audit(app, renewal, &format!("webhook {url} answered {status}")).await;
                return;
            }
            Ok(status) => outcome = format!("answered {status}"),
            Err(e) => outcome = e,
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
        }
    }
    app.metrics.job_failures.inc();
    warn!(device = %renewal.device, serial = %renewal.serial, %url, why = %outcome, "renewal webhook failed after {ATTEMPTS} attempts");
    audit(app, renewal, &format!("webhook {url} failed: {outcome}")).await;
}

async fn post(app: &App, url: &http::Uri, body: String) -> Result<http::StatusCode, String> {
    let request = http::Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "easgate")
        .body(crate::gateway::proxy::full_body(body))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(TIMEOUT, app.gateway.http_client.request(request))
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    Ok(response.status())
}

async fn audit(app: &App, renewal: &RenewalStarted, detail: &str) {
    let result = app
        .easgate
        .store
        .record_event(
            &app.easgate.ctx(),
            "renewal.notify",
            "device",
            &renewal.device,
            detail,
        )
        .await;
    if let Err(e) = result {
        warn!(error = %e, "could not record the webhook outcome in the audit trail");
    }
}
