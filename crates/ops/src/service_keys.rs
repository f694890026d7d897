//! Certificates easgate keeps for its own jobs on a CA: the SCEP registration authority (the
//! RSA decrypter of an EC CA) and the profile signer. Each is RSA-2048, issued by the CA on first
//! use, recorded like every certificate, and its key sealed with the master key under
//! `{role}:{ca}`; one per (CA, role) in the store, so concurrent first uses agree on one.

use easgate_pki::issue::Purpose;
use easgate_pki::{KeyType, PrivateKey};
use easgate_store::{ServiceKey, StoreError};

use crate::error::{OpsError, Result};
use crate::Easgate;

/// What a service certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceRole {
    /// Decrypts SCEP requests for an EC CA and signs the answers (Apple's SCEP payload, and
    /// most clients, can only encrypt to RSA).
    ScepRa,
    /// Signs configuration profiles.
    ProfileSigner,
}

impl ServiceRole {
    /// The role's name in the store and in the seal context.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceRole::ScepRa => "scep-ra",
            ServiceRole::ProfileSigner => "profile-signer",
        }
    }

    fn purpose(self) -> Purpose {
        match self {
            ServiceRole::ScepRa => Purpose::ScepRa,
            ServiceRole::ProfileSigner => Purpose::ProfileSigning,
        }
    }

    /// Lifetime in days (capped by the CA's own).
    fn validity_days(self) -> u32 {
        match self {
            ServiceRole::ScepRa => 730,
            ServiceRole::ProfileSigner => 5 * 365,
        }
    }

    fn common_name(self, ca: &str) -> String {
        match self {
            ServiceRole::ScepRa => format!("easgate {ca} SCEP RA"),
            ServiceRole::ProfileSigner => format!("easgate {ca} profile signing"),
        }
    }

    fn seal_context(self, ca: &str) -> String {
        format!("{}:{ca}", self.as_str())
    }
}

impl Easgate {
    /// The service certificate of `role` on CA `ca`, made first if there is none.
    pub async fn service_certificate(&self, ca: &str, role: ServiceRole) -> Result<Vec<u8>> {
        Ok(self.service_record(ca, role).await?.cert_der)
    }

    /// The service certificate and key of `role` on CA `ca`, made first if there is none.
    pub async fn service_key(&self, ca: &str, role: ServiceRole) -> Result<(Vec<u8>, PrivateKey)> {
        let record = self.service_record(ca, role).await?;
        let key = self.open_service_key(&record, role)?;
        Ok((record.cert_der, key))
    }

    /// The service certificate and key of `role` on CA `ca`, if it has one.
    pub async fn existing_service_key(
        &self,
        ca: &str,
        role: ServiceRole,
    ) -> Result<Option<(Vec<u8>, PrivateKey)>> {
        match self.store.get_service_key(ca, role.as_str()).await? {
            Some(record) => {
                let key = self.open_service_key(&record, role)?;
                Ok(Some((record.cert_der, key)))
            }
            None => Ok(None),
        }
    }

    fn open_service_key(&self, record: &ServiceKey, role: ServiceRole) -> Result<PrivateKey> {
        let pkcs8 = self
            .master()
            .open(&role.seal_context(&record.ca), &record.key_sealed)
            .map_err(|_| {
                OpsError::MasterKey(format!(
                    "cannot decrypt the {} key of CA `{}`",
                    role.as_str(),
                    record.ca
                ))
            })?;
        Ok(PrivateKey::from_pkcs8_der(KeyType::Rsa2048, &pkcs8)?)
    }

    async fn service_record(&self, ca: &str, role: ServiceRole) -> Result<ServiceKey> {
        if let Some(existing) = self.store.get_service_key(ca, role.as_str()).await? {
            return Ok(existing);
        }
        let (cert_der, key) = self
            .issue_service_certificate(
                ca,
                &role.common_name(ca),
                Vec::new(),
                KeyType::Rsa2048,
                role.purpose(),
                role.validity_days(),
            )
            .await?;
        let record = ServiceKey {
            ca: ca.to_string(),
            role: role.as_str().into(),
            cert_der,
            key_sealed: self
                .master()
                .seal(&role.seal_context(ca), &key.pkcs8_der())?,
        };
        match self
            .store
            .insert_service_key(&self.ctx(), record.clone())
            .await
        {
            Ok(()) => Ok(record),
            // Another process made one first: use that one.
            Err(StoreError::AlreadyExists { .. }) => self
                .store
                .get_service_key(ca, role.as_str())
                .await?
                .ok_or_else(|| {
                    OpsError::Conflict(format!("the {} of CA `{ca}` vanished", role.as_str()))
                }),
            Err(e) => Err(e.into()),
        }
    }
}
