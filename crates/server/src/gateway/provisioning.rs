//! What the gateway provisions with, held in memory like the rules: the EAS policies with
//! their keys (`--provision gateway`), and the remote wipes on record (either mode). Swapped
//! whole when the change feed reports an `eas_policy` or `wipe` change.
//!
//! Deciding whether a command's policy key is current, or whether a DeviceId has a wipe to
//! receive, is a lookup here: no request waits on the database for it. Only a Provision that
//! hands out or acknowledges a wipe writes (rare, and it must be recorded before the device is
//! told anything).

use std::collections::BTreeMap;
use std::sync::Arc;

use easgate_ops::eas_policies::{policy_keys, NO_POLICY};
use easgate_store::{EasPolicy, EasWipe};

/// A policy as the gateway hands it out: the stored policy and its two keys.
#[derive(Debug)]
pub struct ActivePolicy {
    pub policy: EasPolicy,
    /// What a device sends with every command once it has acknowledged the policy.
    pub key: u32,
    /// What the device acknowledges the download with.
    pub temporary_key: u32,
}

impl ActivePolicy {
    fn new(policy: EasPolicy) -> Self {
        let (key, temporary_key) = policy_keys(&policy.name, &policy.settings);
        ActivePolicy {
            policy,
            key,
            temporary_key,
        }
    }

    pub fn name(&self) -> &str {
        &self.policy.name
    }

    /// The `EASProvisionDoc` settings by element name.
    pub fn settings(&self) -> Vec<(&str, &str)> {
        self.policy
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A wipe as the gateway acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WipeState {
    /// To be handed to the device (pending or already sent, not yet acknowledged).
    Due { account_only: bool },
    /// Acknowledged (succeeded or failed): the DeviceId is refused.
    Done,
}

pub struct Provisioning {
    /// By name, as the store lists them.
    policies: Vec<Arc<ActivePolicy>>,
    /// For users no policy applies to: an empty one, so that provisioning still completes.
    none: Arc<ActivePolicy>,
    /// Wipes by lower-case DeviceId.
    wipes: foldhash::HashMap<String, WipeState>,
}

impl Provisioning {
    pub fn new(policies: Vec<EasPolicy>, wipes: &[EasWipe]) -> Self {
        let none = EasPolicy {
            name: NO_POLICY.to_string(),
            settings: BTreeMap::from([("DevicePasswordEnabled".to_string(), "0".to_string())]),
            groups: Vec::new(),
            is_default: false,
            created_at: 0,
            updated_at: 0,
        };
        Provisioning {
            policies: policies
                .into_iter()
                .map(|p| Arc::new(ActivePolicy::new(p)))
                .collect(),
            none: Arc::new(ActivePolicy::new(none)),
            wipes: wipes
                .iter()
                .map(|w| (w.eas_device_id.to_ascii_lowercase(), state_of(w)))
                .collect(),
        }
    }

    /// The policy of a user in `groups`: the first by name assigned to one of them, else the
    /// default, else the built-in empty one.
    pub fn policy_for(&self, groups: &[String]) -> Arc<ActivePolicy> {
        let assigned = |a: &&Arc<ActivePolicy>| {
            a.policy
                .groups
                .iter()
                .any(|g| groups.iter().any(|u| u.eq_ignore_ascii_case(g)))
        };
        self.policies
            .iter()
            .find(assigned)
            .or_else(|| self.policies.iter().find(|a| a.policy.is_default))
            .unwrap_or(&self.none)
            .clone()
    }

    /// The wipe of a DeviceId (lower case), if any.
    pub fn wipe(&self, lower_device_id: &str) -> Option<WipeState> {
        if self.wipes.is_empty() {
            return None;
        }
        self.wipes.get(lower_device_id).copied()
    }

    /// The same, with one wipe's state as this gateway just recorded it (the change feed
    /// brings it too, a moment later).
    pub fn with_wipe(&self, wipe: &EasWipe) -> Self {
        let mut wipes = self.wipes.clone();
        wipes.insert(wipe.eas_device_id.to_ascii_lowercase(), state_of(wipe));
        Provisioning {
            policies: self.policies.clone(),
            none: Arc::clone(&self.none),
            wipes,
        }
    }
}

fn state_of(wipe: &EasWipe) -> WipeState {
    if wipe.is_acknowledged() {
        WipeState::Done
    } else {
        WipeState::Due {
            account_only: wipe.account_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, groups: &[&str], is_default: bool) -> EasPolicy {
        EasPolicy {
            name: name.into(),
            settings: BTreeMap::from([("DevicePasswordEnabled".into(), "1".into())]),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            is_default,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_group_policy_beats_the_default_and_the_builtin_is_last() {
        let policies = vec![
            policy("a-sales", &["sales"], false),
            policy("b-default", &[], true),
        ];
        let p = Provisioning::new(policies, &[]);
        assert_eq!(p.policy_for(&["Sales".to_string()]).name(), "a-sales");
        assert_eq!(p.policy_for(&["staff".to_string()]).name(), "b-default");
        assert_eq!(p.policy_for(&[]).name(), "b-default");
        let none = Provisioning::new(vec![policy("x", &["sales"], false)], &[]);
        assert_eq!(none.policy_for(&[]).name(), NO_POLICY);
        assert_ne!(p.policy_for(&[]).key, none.policy_for(&[]).key);
    }
}
