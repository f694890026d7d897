//! Admin API tokens and their roles. A token is 32 random bytes shown once (`egt_` + hex); the
//! store keeps its SHA-256 only. A token of 256 random bits needs no slow password hash: there
//! is nothing to guess. Authentication looks the hash up and compares it again in constant time,
//! and checks expiry and revocation on every call, so both take effect on the next request.

use std::fmt;
use std::str::FromStr;

use easgate_store::{ApiToken, NewApiToken};
use serde::Serialize;

use crate::devices::{random_hex, secret_hash};
use crate::names::check_name;
use crate::{Easgate, OpsError, Result};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Devices, partnerships, overrides, re-enrollment and revocation; reads everything but
    /// the audit trail and tokens.
    Helpdesk,
    /// Reads everything, including the audit trail; changes nothing.
    Auditor,
    /// Only enrolls and re-enrolls devices and fetches SCEP challenges: what an MDM gets.
    Enroller,
}

/// The kinds of operation the API guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read configuration, devices, certificates, partnerships.
    Read,
    /// Read the audit trail.
    ReadAudit,
    /// Change devices, partnerships, overrides; revoke certificates.
    Helpdesk,
    /// Enroll and re-enroll devices, fetch challenges.
    Enroll,
    /// Everything else: CAs, templates, profiles, rules, users, tokens.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::ReadAudit,
        Permission::Helpdesk,
        Permission::Enroll,
        Permission::Admin,
    ];

    /// The permission's name as the web console's session lists it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::ReadAudit => "read_audit",
            Permission::Helpdesk => "helpdesk",
            Permission::Enroll => "enroll",
            Permission::Admin => "admin",
        }
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Helpdesk, Role::Auditor, Role::Enroller];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
            Role::Enroller => "enroller",
        }
    }

    pub fn may(self, need: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Helpdesk => matches!(need, Read | Helpdesk | Enroll),
            Role::Auditor => matches!(need, Read | ReadAudit),
            Role::Enroller => matches!(need, Enroll),
        }
    }

    /// The least role that holds `need`, for naming it in a refusal.
    pub fn least_for(need: Permission) -> Role {
        match need {
            Permission::Read | Permission::Helpdesk => Role::Helpdesk,
            Permission::ReadAudit => Role::Auditor,
            Permission::Enroll => Role::Enroller,
            Permission::Admin => Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = OpsError;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "unknown role `{s}`: use admin, helpdesk, auditor or enroller"
                ))
            })
    }
}

/// A token just made: the secret is in here and nowhere else.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// The token to send as `Authorization: Bearer …`. Shown once.
    pub secret: String,
}

/// Why a presented token does not authenticate. Deliberately coarse towards the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Unknown,
    Expired,
    Revoked,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The audit trail's actor for what this caller changes.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

impl Easgate {
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        expires_in_secs: Option<i64>,
    ) -> Result<CreatedToken> {
        check_name("token", name)?;
        let ctx = self.ctx();
        let expires_at = match expires_in_secs {
            Some(secs) if secs <= 0 => {
                return Err(OpsError::Invalid(
                    "a token's lifetime must be positive, e.g. 90d".into(),
                ))
            }
            Some(secs) => Some(
                ctx.now
                    .checked_add(secs)
                    .ok_or_else(|| OpsError::Invalid("a token's lifetime is too long".into()))?,
            ),
            None => None,
        };
        let secret = format!("egt_{}", random_hex(32)?);
        let token = self
            .store
            .insert_api_token(
                &ctx,
                NewApiToken {
                    name: name.to_string(),
                    role: role.as_str().to_string(),
                    hash: secret_hash(&secret),
                    expires_at,
                },
            )
            .await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        Ok(self.store.list_api_tokens().await?)
    }

    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        Ok(self.store.revoke_api_token(&self.ctx(), name).await?)
    }

    /// The caller a presented token stands for, checked against the store now.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<Caller, AuthFailure>> {
        self.authenticate_hash(&secret_hash(secret)).await
    }

    /// As [`Easgate::authenticate`], for a token known by its stored hash (the web console's
    /// session keeps the hash, never the token): expiry and revocation are checked anew.
    pub async fn authenticate_hash(
        &self,
        hash: &str,
    ) -> Result<std::result::Result<Caller, AuthFailure>> {
        let hash = hash.to_string();
        let Some(token) = self.store.api_token_by_hash(&hash).await? else {
            return Ok(Err(AuthFailure::Unknown));
        };
        if aws_lc_rs::constant_time::verify_slices_are_equal(token.hash.as_bytes(), hash.as_bytes())
            .is_err()
        {
            return Ok(Err(AuthFailure::Unknown));
        }
        if token.revoked_at.is_some() {
            return Ok(Err(AuthFailure::Revoked));
        }
        let now = self.now().unix_timestamp();
        if token.expires_at.is_some_and(|at| at <= now) {
            return Ok(Err(AuthFailure::Expired));
        }
        let Ok(role) = token.role.parse() else {
            return Ok(Err(AuthFailure::Unknown));
        };
        Ok(Ok(Caller {
            name: token.name,
            role,
        }))
    }
}
