//! Access control for the gateway: ordered rules and the default action (`policy …`), per-device
//! overrides and the partnerships the gateway has recorded (`eas …`), and what-if evaluation.
//! Rules are validated with the policy crate before they are stored, so the gateway can always
//! load what is in the store.

use std::collections::HashMap;
use std::net::IpAddr;

use easgate_policy::{
    parse_action, parse_client, parse_device_state, parse_platform, Action, Decision, Override,
    Policy, Rule, RuleWords,
};
use easgate_store::{AccessRule, EasOverride, Partnership};
use serde::Serialize;

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

/// Settings key of the default action (absent: block).
pub const DEFAULT_ACTION_SETTING: &str = "policy.default";

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
}

/// `policy test` output: the decision and what it was made from.
#[derive(Debug, Serialize)]
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
}

/// `eas show`: the partnerships of one DeviceId, its override and the certificates bound to it.
#[derive(Debug, Serialize)]
pub struct EasDevice {
    pub eas_device_id: String,
    pub partnerships: Vec<Partnership>,
    #[serde(rename = "override")]
    pub override_: Option<EasOverride>,
    pub bound_certificates: Vec<String>,
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
        let parsed = Rule::from_words(&words(&rule)).map_err(invalid)?;
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
                },
            );
        }
        Ok(Policy::new(rules, self.default_action().await?, overrides))
    }

    /// What-if: the decision for a request with these properties, and why.
    pub async fn policy_test(&self, q: &WhatIf<'_>) -> Result<WhatIfAnswer> {
        let groups = match self.store.get_user(q.user).await? {
            Some(user) => user.groups,
            None => Vec::new(),
        };
        let platform = parse_platform(q.platform.unwrap_or("other")).map_err(invalid)?;
        let client = parse_client(q.client.unwrap_or("native")).map_err(invalid)?;
        let device_state =
            parse_device_state(q.device_state.unwrap_or("managed")).map_err(invalid)?;
        let ip =
            q.ip.map(|ip| {
                ip.parse::<IpAddr>()
                    .map_err(|_| OpsError::Invalid(format!("`{ip}` is not an IP address")))
            })
            .transpose()?;
        let eas_device_id = q.eas_device_id.map(str::to_ascii_lowercase);
        let policy = self.load_policy().await?;
        let decision: Decision = policy.evaluate(&easgate_policy::Subject {
            user: Some(q.user),
            groups: &groups,
            platform,
            client,
            device_state,
            ip,
            eas_device_id: eas_device_id.as_deref(),
        });
        let (matched, rule) = match &decision.matched {
            easgate_policy::Matched::Override { .. } => ("override", None),
            easgate_policy::Matched::Rule { name } => ("rule", Some(name.clone())),
            easgate_policy::Matched::Default => ("default", None),
        };
        Ok(WhatIfAnswer {
            action: decision.action.to_string(),
            matched: matched.into(),
            rule,
            explanation: decision.to_string(),
            user: q.user.to_string(),
            groups,
            platform: platform.as_str().into(),
            client: client.as_str().into(),
            device_state: device_state.as_str().into(),
        })
    }

    /// `eas allow|block|quarantine`: decide for one DeviceId before any rule. The DeviceId
    /// need not have been seen yet (an admin may approve a device ahead of its first sync).
    pub async fn set_eas_override(
        &self,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
    ) -> Result<Action> {
        check_eas_device_id(eas_device_id)?;
        let action = parse_action(action).map_err(invalid)?;
        self.store
            .set_override(&self.ctx(), eas_device_id, action.as_str(), reason)
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
            .list_bindings()
            .await?
            .into_iter()
            .filter(|b| b.eas_device_id.eq_ignore_ascii_case(eas_device_id))
            .map(|b| b.serial)
            .collect();
        Ok(EasDevice {
            eas_device_id: eas_device_id.to_string(),
            partnerships,
            override_,
            bound_certificates,
        })
    }
}
