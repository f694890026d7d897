//! Gateway settings: where it listens, its TLS certificate, the upstream and how the upstream
//! learns who the user is, how identities are read from certificates, and how stale a trusted
//! CA's CRL may be.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

use crate::error::ServeError;

/// How the upstream mail server authenticates the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// Forward the client's `Authorization` header unchanged.
    Passthrough,
    /// Strip the client's `Authorization` and any client copy of the header; set the header to
    /// the certificate's user. For upstreams that trust the gateway.
    TrustedHeader { header: http::HeaderName },
}

impl UpstreamAuth {
    /// The upstream trusts the gateway's user header: only requests with a valid certificate
    /// may ever be forwarded.
    pub fn trusts_gateway(&self) -> bool {
        matches!(self, UpstreamAuth::TrustedHeader { .. })
    }
}

/// Who answers EAS Provision (MS-ASPROV) for allowed devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvisionMode {
    /// The mail server: Provision passes through like any command.
    Upstream,
    /// The gateway: it hands out the user's EAS policy and checks the policy key of every
    /// command (`easgate eas-policy`).
    Gateway,
}

pub fn parse_provision_mode(mode: &str) -> Result<ProvisionMode, ServeError> {
    match mode {
        "upstream" => Ok(ProvisionMode::Upstream),
        "gateway" => Ok(ProvisionMode::Gateway),
        other => Err(ServeError::Config(format!(
            "--provision `{other}` is unknown (upstream: the mail server answers Provision; gateway: easgate hands out its EAS policies)"
        ))),
    }
}

/// Which certificate SAN names the user, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    Upn,
    Email,
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Threads serving gateway connections, each with its own event loop and upstream
    /// connection pool (like nginx's worker processes); one acceptor hands them connections.
    pub threads: usize,
    /// The upstream's EAS endpoint, e.g. `https://mail.corp/Microsoft-Server-ActiveSync`.
    pub upstream: Option<Uri>,
    /// Extra CA certificates (PEM) the upstream's TLS certificate may chain to.
    pub upstream_ca: Option<PathBuf>,
    pub upstream_auth: UpstreamAuth,
    /// Who answers Provision. A device with a remote wipe pending is answered by the gateway
    /// in either mode.
    pub provision: ProvisionMode,
    /// Longest wait for the upstream's response head, except Ping and Sync (long polls).
    pub upstream_timeout: Duration,
    /// The gateway's TLS certificate chain and key (PEM); default: the one made at first start.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub identity_order: Vec<IdentitySource>,
    /// A trusted CA's CRL is re-fetched at least this often (and at its nextUpdate).
    pub crl_max_age: Duration,
    /// Accept certificates of trusted CAs whose CRL is unknown or expired (fail open).
    pub allow_unknown_revocation: bool,
}

/// Longest a Ping or Sync may wait on the upstream (EAS allows 59 minutes of heartbeat).
pub const LONG_POLL_LIMIT: Duration = Duration::from_secs(60 * 60);

pub fn parse_upstream(text: &str) -> Result<Uri, ServeError> {
    let uri: Uri = text
        .parse()
        .map_err(|e| ServeError::Config(format!("--upstream `{text}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => {}
        _ => {
            return Err(ServeError::Config(format!(
                "--upstream `{text}` must be an http:// or https:// URL of the mail server's EAS endpoint, e.g. https://mail.corp.example/Microsoft-Server-ActiveSync"
            )))
        }
    }
    if uri.query().is_some() {
        return Err(ServeError::Config(format!(
            "--upstream `{text}` must not have a query string"
        )));
    }
    Ok(uri)
}

pub fn parse_upstream_auth(mode: &str, header: &str) -> Result<UpstreamAuth, ServeError> {
    match mode {
        "passthrough" => Ok(UpstreamAuth::Passthrough),
        "trusted-header" => {
            let header = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                ServeError::Config(format!(
                    "--upstream-user-header `{header}` is not a valid header name"
                ))
            })?;
            if header == http::header::AUTHORIZATION || header == http::header::HOST {
                return Err(ServeError::Config(format!(
                    "--upstream-user-header cannot be `{header}`"
                )));
            }
            Ok(UpstreamAuth::TrustedHeader { header })
        }
        other => Err(ServeError::Config(format!(
            "--upstream-auth `{other}` is unknown (passthrough or trusted-header)"
        ))),
    }
}

pub fn parse_identity_order(text: &str) -> Result<Vec<IdentitySource>, ServeError> {
    let mut order = Vec::new();
    for word in text.split(',').map(str::trim) {
        let source = match word.to_ascii_lowercase().as_str() {
            "upn" => IdentitySource::Upn,
            "email" => IdentitySource::Email,
            _ => {
                return Err(ServeError::Config(format!(
                    "--identity-order `{text}`: `{word}` is neither upn nor email (e.g. upn,email)"
                )))
            }
        };
        if !order.contains(&source) {
            order.push(source);
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_say_why() {
        assert!(parse_upstream("https://mail.example/Microsoft-Server-ActiveSync").is_ok());
        assert!(parse_upstream("mail.example").is_err());
        assert!(parse_upstream("ftp://mail.example/").is_err());
        assert!(parse_upstream("http://mail.example/x?a=b").is_err());
        assert_eq!(
            parse_identity_order("email, upn").unwrap(),
            vec![IdentitySource::Email, IdentitySource::Upn]
        );
        assert!(parse_identity_order("upn,dns").is_err());
        assert!(parse_upstream_auth("trusted-header", "X-Remote-User").is_ok());
        assert!(parse_upstream_auth("trusted-header", "Authorization").is_err());
        assert!(parse_upstream_auth("kerberos", "X").is_err());
        assert_eq!(
            parse_provision_mode("gateway").unwrap(),
            ProvisionMode::Gateway
        );
        assert!(parse_provision_mode("both").is_err());
    }
}
