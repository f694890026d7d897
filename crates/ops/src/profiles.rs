//! Device profiles: `profile create|list|show|render` and the one-time download behind
//! `GET /enroll/{token}`. A profile names the EAS account (host, account name, email and user
//! name as lookup-value templates) and how the certificate gets there (SCEP with a fresh
//! one-time challenge, or a PKCS#12 with a key made here); rendering fills it in for one
//! device and hands the values to `easgate-profile`, which writes the bytes.
//!
//! Challenges and tokens are stored only as hashes, so every rendered SCEP profile carries a
//! challenge made for it; earlier unused challenges of the device stay valid until they expire.

use easgate_pki::pkcs12::{self, Pkcs12Format};
use easgate_pki::template::{check_lookups, fill, RenderedTemplate, SanKind};
use easgate_profile::signing::ProfileSigner;
use easgate_profile::{
    android, apple, check_eas_host, Credential, DeviceProfile, MailAccount, Pkcs12Credential,
    RootCertificate, ScepCredential,
};
use easgate_store::{Device, NewProfile, Profile, Template, TokenState, User};

use crate::certs::{check_active, lookup_values, KeySource};
use crate::devices::{random_hex, secret_hash, DEFAULT_CHALLENGE_DAYS};
use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::service_keys::ServiceRole;
use crate::templates::spec_of;
use crate::time_fmt::rfc3339;
use crate::Easgate;

/// Settings key naming the CA of ours that signed the gateway's TLS certificate (written by
/// `serve` at start; absent when the certificate is someone else's). Profiles then carry that
/// CA as a root payload so phones trust the gateway.
pub const GATEWAY_TLS_CA_SETTING: &str = "gateway_tls_ca";

/// Delivery methods of `profile create --delivery`.
pub const DELIVERIES: [&str; 3] = ["scep", "pkcs12", "pkcs12-legacy"];

/// What `profile create` takes.
#[derive(Clone, Debug)]
pub struct ProfileRequest {
    pub name: String,
    pub platform: String,
    pub template: String,
    pub eas_host: String,
    pub account_name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub domain: Option<String>,
    pub delivery: Option<String>,
    pub groups: Vec<String>,
}

/// A profile rendered for one device.
#[derive(Clone)]
pub struct RenderedProfile {
    pub profile: String,
    pub device: String,
    pub platform: String,
    pub content_type: &'static str,
    /// A file name for it (`{profile}-{device}.mobileconfig` / `.json`).
    pub file_name: String,
    pub signed: bool,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for RenderedProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RenderedProfile({} for {}, {} bytes)",
            self.profile,
            self.device,
            self.bytes.len()
        )
    }
}

/// A profile filled in for one device (see [`Easgate::fill_in`]).
struct Filled {
    template: Template,
    account: MailAccount,
    rendered: RenderedTemplate,
}

/// A device's certificate follows the template it was enrolled with (SCEP issues from it), so
/// its profile must describe that template.
fn fits_template(profile: &Profile, device: &Device) -> bool {
    device
        .template
        .as_deref()
        .is_none_or(|t| t == profile.template)
}

fn check_text(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(OpsError::Invalid(format!(
            "{what} `{value}`: use 1-256 printable characters"
        )));
    }
    Ok(())
}

impl Easgate {
    pub async fn create_profile(&self, request: ProfileRequest) -> Result<Profile> {
        check_name("profile", &request.name)?;
        let platform = request.platform.trim().to_ascii_lowercase();
        if !matches!(platform.as_str(), "ios" | "android") {
            return Err(OpsError::Invalid(format!(
                "profile platform `{}`: profiles are made for ios or android",
                request.platform
            )));
        }
        let template = self.get_template(&request.template).await?;
        let host = check_eas_host(request.eas_host.trim())
            .map_err(|e| OpsError::Invalid(e.to_string()))?
            .to_string();
        check_text("account name", &request.account_name)?;
        let email = request.email.unwrap_or_else(|| "{EmailAddress}".into());
        let username = request
            .username
            .unwrap_or_else(|| "{UserPrincipalName}".into());
        for (what, text) in [("--email", &email), ("--username", &username)] {
            check_text(what, text)?;
            check_lookups(text).map_err(|e| OpsError::Invalid(format!("{what}: {e}")))?;
        }
        if let Some(domain) = &request.domain {
            check_text("domain", domain)?;
        }
        let delivery = request.delivery.unwrap_or_else(|| "scep".into());
        if !DELIVERIES.contains(&delivery.as_str()) {
            return Err(OpsError::Invalid(format!(
                "delivery `{delivery}`: expected scep, pkcs12 or pkcs12-legacy"
            )));
        }
        self.store
            .insert_profile(
                &self.ctx(),
                NewProfile {
                    name: request.name,
                    platform,
                    template: template.name,
                    eas_host: host,
                    account_name: request.account_name,
                    email,
                    username,
                    domain: request.domain,
                    delivery,
                    groups: request.groups,
                },
            )
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("create it with `easgate group add`"))
    }

    pub async fn list_profiles(&self) -> Result<Vec<Profile>> {
        Ok(self.store.list_profiles().await?)
    }

    pub async fn get_profile(&self, name: &str) -> Result<Profile> {
        self.store
            .get_profile(name)
            .await?
            .ok_or_else(|| OpsError::not_found("profile", name, "see `easgate profile list`"))
    }

    pub async fn remove_profile(&self, name: &str) -> Result<()> {
        self.store
            .remove_profile(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate profile list`"))
    }

    /// The profile a device downloads: of its platform and template, for one of its user's
    /// groups when any profile names groups, else one without groups; the first by name among
    /// equals.
    pub async fn profile_for_device(&self, device: &Device, user: &User) -> Result<Profile> {
        let profiles = self.store.list_profiles().await?;
        let of_platform = || {
            profiles
                .iter()
                .filter(|p| p.platform == device.platform && fits_template(p, device))
        };
        let by_group = of_platform().find(|p| {
            p.groups
                .iter()
                .any(|g| user.groups.iter().any(|u| u.eq_ignore_ascii_case(g)))
        });
        by_group
            .or_else(|| of_platform().find(|p| p.groups.is_empty()))
            .cloned()
            .ok_or_else(|| {
                OpsError::Conflict(format!(
                    "no profile fits device `{}` ({} device of {}, template {}): create one \
                     with `easgate profile create NAME --platform {} --template {}`",
                    device.uid,
                    device.platform,
                    user.upn,
                    device.template.as_deref().unwrap_or("-"),
                    device.platform,
                    device.template.as_deref().unwrap_or("T"),
                ))
            })
    }

    async fn device_and_owner(&self, uid: &str) -> Result<(Device, User)> {
        let (device, user) = self
            .store
            .get_device_with_owner(uid)
            .await?
            .ok_or_else(|| OpsError::not_found("device", uid, "see `easgate device list`"))?;
        check_active(&device, &user, "profile")?;
        Ok((device, user))
    }

    /// `profile render NAME --device UID [--signed]`.
    pub async fn render_profile(
        &self,
        name: &str,
        uid: &str,
        signed: bool,
    ) -> Result<RenderedProfile> {
        let profile = self.get_profile(name).await?;
        let (device, user) = self.device_and_owner(uid).await?;
        if profile.platform != device.platform {
            return Err(OpsError::Invalid(format!(
                "profile `{}` is for {} devices; device `{uid}` is {}",
                profile.name, profile.platform, device.platform
            )));
        }
        if !fits_template(&profile, &device) {
            return Err(OpsError::Invalid(format!(
                "profile `{}` uses template `{}`, but device `{uid}` was enrolled with template \
                 `{}`, which decides its certificate: use a profile of that template",
                profile.name,
                profile.template,
                device.template.as_deref().unwrap_or_default()
            )));
        }
        if signed && profile.platform != "ios" {
            return Err(OpsError::Invalid(
                "--signed applies to Apple profiles; an Android managed configuration is \
                 delivered by the EMM, not signed"
                    .into(),
            ));
        }
        let filled = self.fill_in(&profile, &device, &user).await?;
        self.render_for(&profile, &device, filled, signed).await
    }

    /// `GET /enroll/{token}`: the device's profile, once. A used or expired token is
    /// [`OpsError::Gone`]; an unknown one is not found. Apple profiles are signed.
    pub async fn download_profile(&self, token: &str) -> Result<RenderedProfile> {
        let hash = secret_hash(token);
        let now = self.ctx().now;
        let unknown = || {
            OpsError::not_found(
                "enrollment link",
                "",
                "check the link, or ask your administrator for a new one",
            )
        };
        let found = self
            .store
            .profile_token(&hash, now)
            .await?
            .ok_or_else(unknown)?;
        match found.state {
            TokenState::Usable => {}
            TokenState::Used(at) => {
                return Err(OpsError::Gone(format!(
                    "this enrollment link was already used (at {}); each link downloads the \
                     profile once — ask your administrator for a new one",
                    rfc3339(at)
                )))
            }
            TokenState::Expired(at) => {
                return Err(OpsError::Gone(format!(
                    "this enrollment link expired at {}; ask your administrator for a new one",
                    rfc3339(at)
                )))
            }
        }
        let (device, user) = self.device_and_owner(&found.device).await?;
        let profile = self.profile_for_device(&device, &user).await?;
        // Everything that can fail for this device's values fails before the link is spent.
        let filled = self.fill_in(&profile, &device, &user).await?;
        if self
            .store
            .consume_profile_token(&self.ctx(), &hash)
            .await?
            .is_none()
        {
            return Err(OpsError::Gone(
                "this enrollment link was just used; each link downloads the profile once".into(),
            ));
        }
        let signed = profile.platform == "ios";
        self.render_for(&profile, &device, filled, signed).await
    }

    /// Fill in the profile's and its template's lookup values for the device, writing
    /// nothing: a value the user lacks (e.g. `{DisplayName}`) is a clear error here, before a
    /// link is spent or a challenge or certificate made.
    async fn fill_in(&self, profile: &Profile, device: &Device, user: &User) -> Result<Filled> {
        let template = self.get_template(&profile.template).await?;
        let spec = spec_of(&template)?;
        let values = lookup_values(device, user);
        let filled = (|| {
            Ok::<_, easgate_pki::PkiError>((
                MailAccount {
                    account_name: profile.account_name.clone(),
                    host: profile.eas_host.clone(),
                    email: fill(&profile.email, &values)?,
                    username: fill(&profile.username, &values)?,
                    domain: profile.domain.clone(),
                },
                spec.render(&values)?,
            ))
        })();
        let (account, rendered) = filled.map_err(|e| {
            OpsError::Conflict(format!(
                "profile `{}` cannot be filled in for device `{}` of {}: {e}",
                profile.name, device.uid, user.upn
            ))
        })?;
        Ok(Filled {
            template,
            account,
            rendered,
        })
    }

    async fn render_for(
        &self,
        profile: &Profile,
        device: &Device,
        filled: Filled,
        signed: bool,
    ) -> Result<RenderedProfile> {
        let Filled {
            template,
            account,
            rendered,
        } = filled;
        let credential = match profile.delivery.as_str() {
            "scep" => Credential::Scep(self.scep_credential(&template, device, rendered).await?),
            delivery => {
                let format = if delivery == "pkcs12-legacy" {
                    Pkcs12Format::Legacy
                } else {
                    Pkcs12Format::Modern
                };
                let issued = self
                    .issue_certificate(&template.name, &device.uid, KeySource::Generate)
                    .await?;
                let key = issued.key.as_ref().ok_or_else(|| {
                    OpsError::Conflict("the issued certificate came without its key".into())
                })?;
                let password = random_hex(12)?;
                let bundle = pkcs12::build(
                    key,
                    &issued.der,
                    &issued.ca_der,
                    &issued.record.subject,
                    &password,
                    format,
                )?;
                Credential::Pkcs12(Pkcs12Credential {
                    bundle,
                    password,
                    file_name: format!("{}.p12", device.uid),
                })
            }
        };
        let root = match self.store.get_setting(GATEWAY_TLS_CA_SETTING).await? {
            Some(ca) if !ca.is_empty() => {
                let record = self.get_ca(&ca).await?;
                Some(RootCertificate {
                    name: record.name,
                    der: record.cert_der,
                })
            }
            _ => None,
        };
        let device_profile = DeviceProfile {
            profile_name: profile.name.clone(),
            device_uid: device.uid.clone(),
            account,
            credential,
            root,
        };
        let profile_error = |e: easgate_profile::ProfileError| OpsError::Invalid(e.to_string());
        let (bytes, content_type, extension) = if profile.platform == "ios" {
            let plist = apple::render(&device_profile).map_err(profile_error)?;
            let bytes = if signed {
                self.sign_profile(&template.ca, &plist).await?
            } else {
                plist
            };
            (bytes, "application/x-apple-aspen-config", "mobileconfig")
        } else {
            let json = serde_json::to_vec_pretty(&android::render(&device_profile))
                .map_err(|e| OpsError::Invalid(format!("writing the JSON: {e}")))?;
            (json, "application/json", "json")
        };
        Ok(RenderedProfile {
            profile: profile.name.clone(),
            device: device.uid.clone(),
            platform: profile.platform.clone(),
            content_type,
            file_name: format!("{}-{}.{extension}", profile.name, device.uid),
            signed,
            bytes,
        })
    }

    /// A SCEP payload's values: URL, subject and SANs from the template, and a new one-time
    /// challenge recorded for the device.
    async fn scep_credential(
        &self,
        template: &Template,
        device: &Device,
        rendered: RenderedTemplate,
    ) -> Result<ScepCredential> {
        let of_kind = |kind: SanKind| -> Vec<String> {
            rendered
                .sans
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.value.clone())
                .collect()
        };
        let challenge = random_hex(20)?;
        let expires_at = self.ctx().now + i64::from(DEFAULT_CHALLENGE_DAYS) * 86_400;
        self.store
            .add_challenge(
                &self.ctx(),
                &device.uid,
                &secret_hash(&challenge),
                expires_at,
            )
            .await?;
        let ca = self.get_ca(&template.ca).await?;
        Ok(ScepCredential {
            url: self.urls_of(&template.ca).await?.scep,
            ca_name: template.ca.clone(),
            subject: rendered
                .subject_dn
                .iter()
                .map(|a| (a.kind.clone(), a.value.clone()))
                .collect(),
            challenge,
            rfc822_names: of_kind(SanKind::Email),
            nt_principal_names: of_kind(SanKind::Upn),
            dns_names: of_kind(SanKind::Dns),
            uris: of_kind(SanKind::Uri),
            ca_der: ca.cert_der,
        })
    }

    /// Sign `content` with CA `ca`'s profile-signing certificate, made on first use.
    async fn sign_profile(&self, ca: &str, content: &[u8]) -> Result<Vec<u8>> {
        let (cert_der, key) = self.service_key(ca, ServiceRole::ProfileSigner).await?;
        let ca_der = self.get_ca(ca).await?.cert_der;
        let chain: [&[u8]; 1] = [&ca_der];
        let sign = |data: &[u8]| key.sign(data).map_err(|e| e.to_string());
        easgate_profile::signing::sign(
            content,
            &ProfileSigner {
                cert_der: &cert_der,
                chain: &chain,
                sign: &sign,
            },
            self.now(),
        )
        .map_err(|e| OpsError::Invalid(e.to_string()))
    }
}
