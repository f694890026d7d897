//! Access control for the gateway: ordered rules and the default action (`policy …`), per-device
//! overrides and the partnerships the gateway has recorded (`eas …`), and what-if evaluation.
//! Rules are validated with the policy crate before they are stored, so the gateway can always
//! load what is in the store.

use std::collections::HashMap;
use std::net::IpAddr;

use easgate_policy::analysis::UnmanagedAllowance;
use easgate_policy::{
    parse_action, parse_client, parse_device_state, parse_platform, Action, Certificate, Decision,
    DeviceState, Facts, Override, Policy, Rule, RuleWords,
};
use easgate_store::{AccessRule, EasOverride, Partnership};
use serde::Serialize;

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

/// Settings key of the default action (absent: block).
pub const DEFAULT_ACTION_SETTING: &str = "policy.default";

/// Settings key of the upstream authentication mode the server last started with
/// (`passthrough` or `trusted-header`): what `policy add`, `policy default` and
/// `eas allow --unmanaged` check before they let devices without a certificate in.
pub const UPSTREAM_AUTH_SETTING: &str = "gateway.upstream_auth";

/// The `--upstream-auth` word of trusted-header mode.
pub const TRUSTED_HEADER: &str = "trusted-header";

/// Priority a rule gets without `--priority`: after every existing rule.
const PRIORITY_STEP: i32 = 10;

/// `policy test` input.
pub struct WhatIf<'a> {
    pub user: &'a str,
    pub platform: Option<&'a str>,
    pub client: Option<&'a str>,
    pub device_state: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub eas_device_id: Option<&'a str>,
    /// `valid`, `none`, `revoked`, `expired` or `foreign`; default: from `device_state`, else
    /// valid.
    pub cert: Option<&'a str>,
}

/// `policy test` output: the decision and what it was made from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhatIfAnswer {
    pub action: String,
    /// `override`, `rule` or `default`.
    pub matched: String,
    pub rule: Option<String>,
    pub explanation: String,
    pub user: String,
    pub groups: Vec<String>,
    pub platform: String,
    pub client: String,
    pub device_state: String,
    /// `valid`, `none`, `revoked`, `expired` or `foreign`.
    pub cert: String,
    /// The hard refusal's cause when one decided (`matched` is then `refusal`).
    pub refusal: Option<String>,
    /// The DeviceId is bound to a certificate and the request has none: no override applies.
    pub suspect: bool,
    /// Rules that can never match, and why.
    pub warnings: Vec<String>,
}

/// `eas show`: the partnerships of one DeviceId, its override and the certificates bound to it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EasDevice {
    pub eas_device_id: String,
    pub partnerships: Vec<Partnership>,
    #[serde(rename = "override")]
    pub override_: Option<EasOverride>,
    pub bound_certificates: Vec<String>,
    /// The remote wipe on record, if any.
    pub wipe: Option<easgate_store::EasWipe>,
}

/// The certificate state `policy test` simulates, from its `--cert` word.
fn simulated_certificate(word: &str) -> Result<Certificate> {
    match word.trim().to_ascii_lowercase().as_str() {
        "valid" => Ok(Certificate::Valid),
        "none" => Ok(Certificate::Absent),
        "revoked" => Ok(Certificate::Failed("revoked")),
        "expired" => Ok(Certificate::Failed("expired")),
        "foreign" => Ok(Certificate::Failed("untrusted")),
        other => Err(OpsError::Invalid(format!(
            "unknown certificate state `{other}` (expected valid, none, revoked, expired or foreign)"
        ))),
    }
}

/// The error for a change that would let devices without a certificate in while the server
/// runs in trusted-header mode.
fn trusted_header_refusal(what: &str, allowances: &[UnmanagedAllowance]) -> OpsError {
    let list = allowances
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    OpsError::Invalid(format!(
        "{what} would let devices without a certificate through, and the server runs with --upstream-auth trusted-header, where the upstream trusts the gateway's user header: {list}"
    ))
}

/// An EAS DeviceId as devices send it: up to 64 visible ASCII characters (the protocol says
/// alphanumeric, 32 at most; real clients stretch that a little).
pub fn check_eas_device_id(id: &str) -> Result<()> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "EAS DeviceId `{id}` is not valid: 1 to 64 visible ASCII characters"
        )))
    }
}

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

fn certificate_word(c: Certificate) -> &'static str {
    match c {
        Certificate::Valid => "valid",
        Certificate::Absent => "none",
        Certificate::Failed("revoked") => "revoked",
        Certificate::Failed("expired") => "expired",
        Certificate::Failed(_) => "foreign",
    }
}

fn parsed_with(rule: &AccessRule) -> Result<Rule> {
    Rule::from_words(&words(rule)).map_err(invalid)
}

fn words(rule: &AccessRule) -> RuleWords<'_> {
    RuleWords {
        name: &rule.name,
        priority: rule.priority,
        users: &rule.users,
        groups: &rule.groups,
        platforms: &rule.platforms,
        clients: &rule.clients,
        device_states: &rule.device_states,
        networks: &rule.networks,
        action: &rule.action,
    }
}

impl Easgate {
    /// Add a rule. Words are normalised (lower case; networks as given once parsed); groups
    /// and users must exist, so a typo cannot leave a rule that never matches.
    pub async fn add_rule(
        &self,
        mut rule: AccessRule,
        priority: Option<i32>,
    ) -> Result<AccessRule> {
        check_name("rule", &rule.name)?;
        let lower = |v: &mut Vec<String>| {
            for w in v.iter_mut() {
                *w = w.trim().to_ascii_lowercase();
            }
        };
        lower(&mut rule.platforms);
        lower(&mut rule.clients);
        lower(&mut rule.device_states);
        rule.action = rule.action.trim().to_ascii_lowercase();
        let parsed = parsed_with(&rule)?;
        rule.networks = parsed.networks.iter().map(ToString::to_string).collect();
        for upn in &rule.users {
            self.get_user(upn).await?;
        }
        let groups = self.list_groups().await?;
        for g in &rule.groups {
            if !groups.iter().any(|h| h.name.eq_ignore_ascii_case(g)) {
                return Err(OpsError::not_found(
                    "group",
                    g.clone(),
                    "create it with `easgate group add`",
                ));
            }
        }
        let existing = self.store.list_rules().await?;
        rule.priority = match priority {
            Some(p) => p,
            None => existing
                .iter()
                .map(|r| r.priority)
                .max()
                .map_or(PRIORITY_STEP * 10, |p| p.saturating_add(PRIORITY_STEP)),
        };
        let mut rules = self.load_policy().await?.rules().to_vec();
        rules.push(parsed);
        let candidate = Policy::new(rules, self.default_action().await?, HashMap::new());
        self.refuse_in_trusted_header(
            &candidate,
            UnmanagedAllowance::Rule(rule.name.clone()),
            &format!("rule `{}`", rule.name),
        )
        .await?;
        self.store.insert_rule(&self.ctx(), rule.clone()).await?;
        Ok(rule)
    }

    pub async fn list_rules(&self) -> Result<Vec<AccessRule>> {
        Ok(self.store.list_rules().await?)
    }

    pub async fn remove_rule(&self, name: &str) -> Result<()> {
        self.store
            .remove_rule(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate policy list`"))
    }

    pub async fn default_action(&self) -> Result<Action> {
        match self.store.get_setting(DEFAULT_ACTION_SETTING).await? {
            Some(word) => parse_action(&word).map_err(invalid),
            None => Ok(Action::Block),
        }
    }

    pub async fn set_default_action(&self, action: &str) -> Result<Action> {
        let action = parse_action(action).map_err(invalid)?;
        let candidate = Policy::new(
            self.load_policy().await?.rules().to_vec(),
            action,
            HashMap::new(),
        );
        self.refuse_in_trusted_header(
            &candidate,
            UnmanagedAllowance::Default,
            &format!("`policy default {action}`"),
        )
        .await?;
        self.store
            .set_setting(&self.ctx(), DEFAULT_ACTION_SETTING, action.as_str())
            .await?;
        Ok(action)
    }

    /// Everything the gateway decides with, as one evaluable policy.
    pub async fn load_policy(&self) -> Result<Policy> {
        let rules = self
            .store
            .list_rules()
            .await?
            .iter()
            .map(|r| Rule::from_words(&words(r)).map_err(invalid))
            .collect::<Result<Vec<_>>>()?;
        let mut overrides = HashMap::new();
        for o in self.store.list_overrides().await? {
            overrides.insert(
                o.eas_device_id.to_ascii_lowercase(),
                Override {
                    action: parse_action(&o.action).map_err(invalid)?,
                    reason: o.reason,
                    unmanaged: o.unmanaged,
                },
            );
        }
        Ok(Policy::new(rules, self.default_action().await?, overrides))
    }

    /// The upstream authentication mode the server last started with.
    pub async fn recorded_upstream_auth(&self) -> Result<Option<String>> {
        Ok(self.store.get_setting(UPSTREAM_AUTH_SETTING).await?)
    }

    /// Record the mode `serve` starts with (written only when it changed).
    pub async fn record_upstream_auth(&self, mode: &str) -> Result<()> {
        if self.recorded_upstream_auth().await?.as_deref() != Some(mode) {
            self.store
                .set_setting(&self.ctx(), UPSTREAM_AUTH_SETTING, mode)
                .await?;
        }
        Ok(())
    }

    /// Refuse a change (`candidate`: the policy it would make) whose `allowance` would let
    /// devices without a certificate through, while the server runs in trusted-header mode.
    async fn refuse_in_trusted_header(
        &self,
        candidate: &Policy,
        allowance: UnmanagedAllowance,
        what: &str,
    ) -> Result<()> {
        if candidate.unmanaged_allowances().contains(&allowance)
            && self.trusted_header_recorded().await?
        {
            return Err(trusted_header_refusal(what, &[allowance]));
        }
        Ok(())
    }

    async fn trusted_header_recorded(&self) -> Result<bool> {
        Ok(self.recorded_upstream_auth().await?.as_deref() == Some(TRUSTED_HEADER))
    }

    /// What-if: the decision for a request with these properties, and why — in the gateway's
    /// order: hard refusals, overrides, rules, default.
    pub async fn policy_test(&self, q: &WhatIf<'_>) -> Result<WhatIfAnswer> {
        let directory_user = self.store.get_user(q.user).await?;
        let (groups, disabled) = match &directory_user {
            Some(user) => (user.groups.clone(), user.disabled),
            None => (Vec::new(), false),
        };
        let platform = parse_platform(q.platform.unwrap_or("other")).map_err(invalid)?;
        let client = parse_client(q.client.unwrap_or("native")).map_err(invalid)?;
        let state = q
            .device_state
            .map(|s| parse_device_state(s).map_err(invalid))
            .transpose()?;
        let certificate = match (q.cert, state) {
            (Some(word), state) => {
                let certificate = simulated_certificate(word)?;
                if state.is_some_and(|s| s != certificate.device_state()) {
                    return Err(OpsError::Invalid(format!(
                        "--cert {word} and --device-state {} contradict each other (a device is managed only with a valid certificate)",
                        state.map_or("", DeviceState::as_str)
                    )));
                }
                certificate
            }
            (None, Some(DeviceState::Unmanaged)) => Certificate::Absent,
            (None, _) => Certificate::Valid,
        };
        let ip =
            q.ip.map(|ip| {
                ip.parse::<IpAddr>()
                    .map_err(|_| OpsError::Invalid(format!("`{ip}` is not an IP address")))
            })
            .transpose()?;
        let eas_device_id = q.eas_device_id.map(str::to_ascii_lowercase);
        if let Some(id) = &eas_device_id {
            check_eas_device_id(id)?;
        }
        // A request without a valid certificate that names a DeviceId bound to a certificate
        // is a possible spoof: no override of that DeviceId applies to it.
        let suspect = match (&eas_device_id, certificate) {
            (Some(id), Certificate::Absent | Certificate::Failed(_)) => {
                !self.store.device_bindings(id).await?.is_empty()
            }
            _ => false,
        };
        // A DeviceId whose remote wipe was acknowledged is refused, as at the gateway.
        let device_wiped = match &eas_device_id {
            Some(id) => self
                .eas_wipe(id)
                .await?
                .is_some_and(|w| w.is_acknowledged()),
            None => false,
        };
        let policy = self
            .load_policy()
            .await?
            .with_certificate_required(self.trusted_header_recorded().await?);
        let decision: Decision = policy.evaluate(&easgate_policy::Subject {
            user: Some(q.user),
            groups: &groups,
            platform,
            client,
            ip,
            eas_device_id: eas_device_id.as_deref(),
            facts: Facts {
                certificate,
                identity_mismatch: false,
                user_disabled: disabled,
                bound_elsewhere: false,
                device_wiped,
            },
            suspect,
        });
        let (matched, rule) = match &decision.matched {
            easgate_policy::Matched::Refused(_) => ("refusal", None),
            easgate_policy::Matched::Override { .. } => ("override", None),
            easgate_policy::Matched::Rule { name } => ("rule", Some(name.clone())),
            easgate_policy::Matched::Default => ("default", None),
        };
        let device_state = certificate.device_state();
        Ok(WhatIfAnswer {
            action: match decision.refusal() {
                Some(_) => "refuse".into(),
                None => decision.action.to_string(),
            },
            matched: matched.into(),
            rule,
            explanation: decision.to_string(),
            user: q.user.to_string(),
            groups,
            platform: platform.as_str().into(),
            client: client.as_str().into(),
            device_state: device_state.as_str().into(),
            cert: certificate_word(certificate).into(),
            refusal: decision.refusal().map(|r| r.cause().to_string()),
            suspect,
            warnings: policy.shadowed().iter().map(ToString::to_string).collect(),
        })
    }

    /// Rules that can never match (for `policy list`).
    pub async fn shadowed_rules(&self) -> Result<Vec<String>> {
        Ok(self
            .load_policy()
            .await?
            .shadowed()
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// What lets devices without a certificate through; `serve` refuses trusted-header mode
    /// while this is not empty.
    pub async fn unmanaged_allowances(&self) -> Result<Vec<UnmanagedAllowance>> {
        Ok(self.load_policy().await?.unmanaged_allowances())
    }

    /// `eas allow|block|quarantine`: decide for one DeviceId before any rule. The DeviceId
    /// need not have been seen yet (an admin may approve a device ahead of its first sync).
    pub async fn set_eas_override(
        &self,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
        unmanaged: bool,
    ) -> Result<Action> {
        check_eas_device_id(eas_device_id)?;
        let action = parse_action(action).map_err(invalid)?;
        if unmanaged {
            if action != Action::Allow {
                return Err(OpsError::Invalid(
                    "--unmanaged goes with `eas allow` only (block and quarantine hold with or without a certificate)".into(),
                ));
            }
            if self.trusted_header_recorded().await? {
                return Err(trusted_header_refusal(
                    &format!("`eas allow {eas_device_id} --unmanaged`"),
                    &[UnmanagedAllowance::Override(eas_device_id.to_string())],
                ));
            }
        }
        self.store
            .set_override(
                &self.ctx(),
                eas_device_id,
                action.as_str(),
                reason,
                unmanaged,
            )
            .await?;
        Ok(action)
    }

    /// `eas clear`: forget the partnerships and the override of one DeviceId.
    pub async fn clear_eas_device(&self, eas_device_id: &str) -> Result<usize> {
        check_eas_device_id(eas_device_id)?;
        self.store
            .clear_partnerships(&self.ctx(), eas_device_id)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate eas list`"))
    }

    /// DeviceIds allowed without a certificate (`eas allow --unmanaged`).
    pub async fn unmanaged_overrides(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_overrides()
            .await?
            .into_iter()
            .filter(|o| o.unmanaged && o.action == "allow")
            .map(|o| o.eas_device_id)
            .collect())
    }

    pub async fn list_partnerships(&self, user: Option<&str>) -> Result<Vec<Partnership>> {
        Ok(self.store.list_partnerships(user).await?)
    }

    pub async fn show_eas_device(&self, eas_device_id: &str) -> Result<EasDevice> {
        let partnerships = self.store.get_partnerships(eas_device_id).await?;
        let override_ = self
            .store
            .list_overrides()
            .await?
            .into_iter()
            .find(|o| o.eas_device_id.eq_ignore_ascii_case(eas_device_id));
        if partnerships.is_empty() && override_.is_none() {
            return Err(OpsError::not_found(
                "EAS device",
                eas_device_id,
                "see `easgate eas list`",
            ));
        }
        let bound_certificates = self
            .store
            .device_bindings(eas_device_id)
            .await?
            .into_iter()
            .map(|b| b.serial)
            .collect();
        Ok(EasDevice {
            eas_device_id: eas_device_id.to_string(),
            partnerships,
            override_,
            bound_certificates,
            wipe: self.eas_wipe(eas_device_id).await?,
        })
    }
}
