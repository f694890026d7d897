//! Trusted external CAs: certificates of other CAs whose device certificates the gateway
//! accepts, with the CRL URLs it checks them against.

use easgate_pki::input::pem_or_der;
use easgate_pki::summary::summarize;
use easgate_store::{NewTrustedCa, TrustedCa};

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

fn check_crl_url(flag: &str, url: &str) -> Result<()> {
    if (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(char::is_whitespace)
        && url.len() > 8
    {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "{flag} `{url}` must be an http:// or https:// URL"
        )))
    }
}

impl Easgate {
    pub async fn add_trusted_ca(
        &self,
        name: &str,
        cert_bytes: &[u8],
        crl_url: Option<&str>,
        delta_crl_url: Option<&str>,
    ) -> Result<TrustedCa> {
        check_name("trusted CA", name)?;
        if let Some(url) = crl_url {
            check_crl_url("--crl-url", url)?;
        }
        if let Some(url) = delta_crl_url {
            check_crl_url("--delta-crl-url", url)?;
        }
        let der = pem_or_der(
            cert_bytes,
            &["CERTIFICATE", "X509 CERTIFICATE"],
            "certificate",
        )?;
        let summary = summarize(&der)?;
        if !summary.is_ca {
            return Err(OpsError::Invalid(format!(
                "`{}` is not a CA certificate (basicConstraints CA:true is missing); trust the CA that issued it instead",
                summary.subject
            )));
        }
        Ok(self
            .store
            .insert_trusted_ca(
                &self.ctx(),
                NewTrustedCa {
                    name: name.to_string(),
                    subject: summary.subject,
                    cert_der: der,
                    crl_url: crl_url.map(str::to_string),
                    delta_crl_url: delta_crl_url.map(str::to_string),
                },
            )
            .await?)
    }

    pub async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>> {
        Ok(self.store.list_trusted_cas().await?)
    }

    pub async fn remove_trusted_ca(&self, name: &str) -> Result<()> {
        Ok(self.store.remove_trusted_ca(&self.ctx(), name).await?)
    }
}
