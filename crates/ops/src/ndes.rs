//! One-time SCEP challenges bound to no device, as Microsoft NDES hands them out: an MDM
//! (Intune, Workspace ONE, MaaS360, Jamf, Fleet …) configured with a "dynamic challenge" asks
//! for a fresh one per enrollment before it sends the device its SCEP payload, and knows nothing
//! of easgate's device records. The certificate request's common name then names the device,
//! which must already be enrolled here (by the CLI or `POST /api/v1/devices`) and active, so a
//! challenge alone never creates a device or picks its user. Only the SHA-256 is kept; a
//! challenge is spent in the transaction that records its certificate (`scep.rs`).

use easgate_store::NewUnboundChallenge;

use crate::devices::{secret_hash, DYNAMIC_CHALLENGE_SECS};
use crate::error::Result;
use crate::Easgate;

/// How many unused, unexpired unbound challenges may exist at once. NDES keeps a "password
/// cache" (5 by default) for the same reason: a leaked enroller token must not fill the
/// database. Ten thousand outstanding in one hour is far beyond any MDM's enrollment burst.
pub const MAX_LIVE_UNBOUND_CHALLENGES: i64 = 10_000;

/// A challenge just made: the text is here and nowhere else.
#[derive(Clone, Debug)]
pub struct UnboundChallenge {
    /// 32 upper-case hex digits (128 bits), the shape NDES clients' parsers accept (some
    /// match only `[A-Z0-9]{16,32}`).
    pub challenge: String,
    /// The CA it enrolls at; `None`: any of ours.
    pub ca: Option<String>,
    pub expires_at: i64,
}

/// Why no challenge was made: [`MAX_LIVE_UNBOUND_CHALLENGES`] are outstanding.
#[derive(Debug, PartialEq, Eq)]
pub struct ChallengeCacheFull;

impl Easgate {
    /// A new one-time challenge bound to no device, usable for [`DYNAMIC_CHALLENGE_SECS`] at
    /// CA `ca`'s SCEP URL or, without one, at any of ours. Audited as whoever acts (the API
    /// token's name).
    pub async fn unbound_challenge(
        &self,
        ca: Option<&str>,
    ) -> Result<std::result::Result<UnboundChallenge, ChallengeCacheFull>> {
        if let Some(ca) = ca {
            self.get_ca(ca).await?;
        }
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| crate::OpsError::Invalid("the system random generator failed".into()))?;
        let challenge = hex::encode_upper(bytes);
        let ctx = self.ctx();
        let expires_at = ctx.now + DYNAMIC_CHALLENGE_SECS;
        let made = self
            .store
            .insert_unbound_challenge(
                &ctx,
                NewUnboundChallenge {
                    hash_hex: secret_hash(&challenge),
                    ca: ca.map(str::to_string),
                    expires_at,
                    max_live: MAX_LIVE_UNBOUND_CHALLENGES,
                },
            )
            .await?;
        Ok(match made {
            Some(_) => Ok(UnboundChallenge {
                challenge,
                ca: ca.map(str::to_string),
                expires_at,
            }),
            None => Err(ChallengeCacheFull),
        })
    }
}
