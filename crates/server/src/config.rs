//! `serve` settings: command-line flags (and their environment variables) over the TOML file
//! given with `--config` over defaults. Checked once, at load, across fields; unknown keys in
//! the file are an error.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ServeError;

/// Settings as they may appear in the TOML file (every key optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub public_listen: Option<String>,
    pub admin_listen: Option<String>,
    pub admin_tls: Option<bool>,
    pub admin_tls_cert: Option<String>,
    pub admin_tls_key: Option<String>,
    pub gateway_listen: Option<String>,
    pub gateway_threads: Option<usize>,
    pub upstream: Option<String>,
    pub upstream_ca: Option<String>,
    pub upstream_auth: Option<String>,
    pub upstream_user_header: Option<String>,
    pub provision: Option<String>,
    pub upstream_timeout: Option<String>,
    pub gateway_cert: Option<String>,
    pub gateway_key: Option<String>,
    pub identity_order: Option<String>,
    pub crl_max_age: Option<String>,
    pub danger_allow_unknown_revocation: Option<bool>,
    pub crl_interval: Option<String>,
    pub crl_validity: Option<String>,
    pub delta_crl_delay: Option<String>,
    pub delta_crl_validity: Option<String>,
    pub ocsp_validity: Option<String>,
    pub change_poll_interval: Option<String>,
    pub max_staleness: Option<String>,
    pub renewal_interval: Option<String>,
    pub renewal_webhook: Option<String>,
    pub http_header_timeout: Option<String>,
    pub http_max_connections: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServeError::ConfigFile {
            path: path.to_path_buf(),
            why: source.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ServeError::ConfigFile {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }
}

/// Validated settings of a running server.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub public_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Serve the admin listener over TLS (required off loopback).
    pub admin_tls: Option<AdminTls>,
    /// Full CRLs are re-made this often.
    pub crl_interval: Duration,
    /// Full CRL nextUpdate - thisUpdate.
    pub crl_validity: Duration,
    /// A delta CRL is re-made at most this long after a revocation.
    pub delta_crl_delay: Duration,
    /// Delta CRL nextUpdate - thisUpdate (re-made at half of it even without revocations).
    pub delta_crl_validity: Duration,
    /// OCSP nextUpdate - thisUpdate.
    pub ocsp_validity: Duration,
    /// How often the store's change feed is polled.
    pub change_poll_interval: Duration,
    /// How long the gateway decides from memory while the store is unreachable.
    pub max_staleness: Duration,
    /// How often the renewal job looks for certificates inside their renewal window.
    pub renewal_interval: Duration,
    /// Where each started renewal is POSTed as JSON.
    pub renewal_webhook: Option<http::Uri>,
    /// Limits of the public and admin listeners.
    pub http_limits: crate::http_listener::HttpLimits,
    pub gateway: crate::gateway::GatewayConfig,
}

/// The admin listener's TLS identity; without files, the gateway's certificate and key.
#[derive(Clone, Debug, Default)]
pub struct AdminTls {
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// A webhook URL: absolute http:// or https:// with a host.
pub fn parse_webhook(text: &str) -> Result<http::Uri, ServeError> {
    let bad = |why: &str| ServeError::Config(format!("--renewal-webhook `{text}`: {why}"));
    let uri: http::Uri = text.trim().parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(bad("use an absolute http:// or https:// URL"));
    }
    Ok(uri)
}

/// Parse `90s`, `30m`, `12h`, `7d` (also `500ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// One setting from flag, file or default, parsed and named for errors.
pub fn pick_duration(
    name: &str,
    flag: Option<&str>,
    file: Option<&str>,
    default: &str,
) -> Result<Duration, ServeError> {
    let text = flag.or(file).unwrap_or(default);
    parse_duration(text).ok_or_else(|| {
        ServeError::Config(format!(
            "{name} `{text}` is not a duration (use e.g. 500ms, 90s, 30m, 12h, 7d)"
        ))
    })
}

pub fn pick_addr(
    name: &str,
    flag: Option<&str>,
    file: Option<&str>,
    default: &str,
) -> Result<SocketAddr, ServeError> {
    let text = flag.or(file).unwrap_or(default);
    text.parse().map_err(|_| {
        ServeError::Config(format!(
            "{name} `{text}` is not an address (use IP:PORT, e.g. 0.0.0.0:8080)"
        ))
    })
}

impl ServeConfig {
    /// Cross-field checks.
    pub fn validate(self) -> Result<Self, ServeError> {
        let at_least = |name: &str, d: Duration, min: Duration| {
            if d < min {
                Err(ServeError::Config(format!(
                    "{name} {d:?} is too short (at least {min:?})"
                )))
            } else {
                Ok(())
            }
        };
        at_least("--crl-interval", self.crl_interval, Duration::from_secs(60))?;
        if !(1..=1024).contains(&self.gateway.threads) {
            return Err(ServeError::Config(format!(
                "--gateway-threads {} is out of range (1 to 1024)",
                self.gateway.threads
            )));
        }
        at_least(
            "--crl-validity",
            self.crl_validity,
            Duration::from_secs(120),
        )?;
        at_least(
            "--delta-crl-validity",
            self.delta_crl_validity,
            Duration::from_secs(120),
        )?;
        at_least(
            "--ocsp-validity",
            self.ocsp_validity,
            Duration::from_secs(60),
        )?;
        at_least(
            "--change-poll-interval",
            self.change_poll_interval,
            Duration::from_millis(50),
        )?;
        if self.crl_validity <= self.crl_interval {
            return Err(ServeError::Config(format!(
                "--crl-validity ({:?}) must be longer than --crl-interval ({:?}), or relying parties see an expired CRL before the next one is made",
                self.crl_validity, self.crl_interval
            )));
        }
        if self.delta_crl_delay >= self.delta_crl_validity {
            return Err(ServeError::Config(
                "--delta-crl-delay must be shorter than --delta-crl-validity".into(),
            ));
        }
        if self.change_poll_interval > Duration::from_secs(2) {
            return Err(ServeError::Config(
                "--change-poll-interval above 2s breaks the promise that CLI changes apply within 2 s".into(),
            ));
        }
        if self.max_staleness < self.change_poll_interval * 2 {
            return Err(ServeError::Config(format!(
                "--max-staleness {:?} must be at least twice --change-poll-interval ({:?}), or \
                 a healthy database would be taken for an unreachable one",
                self.max_staleness, self.change_poll_interval
            )));
        }
        at_least(
            "--renewal-interval",
            self.renewal_interval,
            Duration::from_secs(1),
        )?;
        at_least(
            "--crl-max-age",
            self.gateway.crl_max_age,
            Duration::from_secs(1),
        )?;
        let listeners = [self.public_listen, self.admin_listen, self.gateway.listen];
        for (i, a) in listeners.iter().enumerate() {
            if a.port() != 0 && listeners[i + 1..].contains(a) {
                return Err(ServeError::Config(format!(
                    "two listeners are set to {a}: the public, admin and gateway listeners need different addresses"
                )));
            }
        }
        if self.admin_tls.is_none() && !self.admin_listen.ip().is_loopback() {
            return Err(ServeError::Config(format!(
                "--admin-listen {}: the admin API carries tokens and changes everything, so off \
                 loopback it is served only over TLS: add --admin-tls (the gateway's certificate \
                 by default, or --admin-tls-cert/--admin-tls-key), or listen on 127.0.0.1",
                self.admin_listen
            )));
        }
        if self.public_listen == self.admin_listen && self.public_listen.port() != 0 {
            return Err(ServeError::Config(
                "the public and admin listeners need different addresses".into(),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_validation() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5y"), None);
        let ok = ServeConfig {
            public_listen: "127.0.0.1:8080".parse().unwrap(),
            admin_listen: "127.0.0.1:9090".parse().unwrap(),
            admin_tls: None,
            crl_interval: Duration::from_secs(43_200),
            crl_validity: Duration::from_secs(86_400),
            delta_crl_delay: Duration::from_secs(60),
            delta_crl_validity: Duration::from_secs(3600),
            ocsp_validity: Duration::from_secs(3600),
            change_poll_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(300),
            renewal_interval: Duration::from_secs(3600),
            renewal_webhook: None,
            http_limits: crate::http_listener::HttpLimits::default(),
            gateway: crate::gateway::GatewayConfig {
                listen: "127.0.0.1:8443".parse().unwrap(),
                threads: 2,
                upstream: None,
                upstream_ca: None,
                upstream_auth: crate::gateway::config::UpstreamAuth::Passthrough,
                provision: crate::gateway::config::ProvisionMode::Upstream,
                upstream_timeout: Duration::from_secs(120),
                cert: None,
                key: None,
                identity_order: vec![crate::gateway::config::IdentitySource::Upn],
                crl_max_age: Duration::from_secs(3600),
                allow_unknown_revocation: false,
            },
        };
        assert!(ok.clone().validate().is_ok());
        let bad = ServeConfig {
            crl_validity: Duration::from_secs(3600),
            ..ok.clone()
        };
        assert!(bad.validate().is_err());
        let bad = ServeConfig {
            admin_listen: ok.public_listen,
            ..ok.clone()
        };
        assert!(bad.validate().is_err());
        // Off loopback the admin listener needs TLS.
        let open = ServeConfig {
            admin_listen: "0.0.0.0:9090".parse().unwrap(),
            ..ok.clone()
        };
        assert!(open.clone().validate().is_err());
        let open_tls = ServeConfig {
            admin_tls: Some(AdminTls::default()),
            ..open
        };
        assert!(open_tls.validate().is_ok());
    }

    #[test]
    fn webhooks_must_be_absolute_http_urls() {
        assert!(parse_webhook("http://127.0.0.1:9/hook").is_ok());
        assert!(parse_webhook("https://mdm.example.com/renewals").is_ok());
        for bad in [
            "ftp://x/y",
            "/hook",
            "mdm.example.com/hook",
            "http://",
            "not a url",
        ] {
            assert!(parse_webhook(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("public_listen = \"127.0.0.1:1\"\n").is_ok());
        assert!(toml::from_str::<FileConfig>("pubic_listen = \"127.0.0.1:1\"\n").is_err());
    }
}
