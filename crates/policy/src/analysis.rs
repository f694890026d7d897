//! What an admin should be told about a policy before a request shows it: rules that can never
//! match because an earlier rule covers them, and everything that lets a device without a
//! certificate reach the mailbox (which trusted-header mode cannot allow).

use std::fmt;

use crate::{Action, DeviceState, Policy, Rule};

/// A rule that can never match: an earlier rule matches every request it would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadowed {
    pub rule: String,
    pub by: String,
}

impl fmt::Display for Shadowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule `{}` can never match: rule `{}` comes first and matches every request it would",
            self.rule, self.by
        )
    }
}

/// Something that allows a request without a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnmanagedAllowance {
    Rule(String),
    Default,
    Override(String),
}

impl fmt::Display for UnmanagedAllowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnmanagedAllowance::Rule(name) => write!(
                f,
                "rule `{name}` allows unmanaged devices (give it --device-state managed, or `easgate policy remove {name}`)"
            ),
            UnmanagedAllowance::Default => f.write_str(
                "the default action allows unmanaged devices (`easgate policy default block`)",
            ),
            UnmanagedAllowance::Override(id) => write!(
                f,
                "device {id} is allowed without a certificate (`easgate eas clear {id}` or `easgate eas allow {id}`)"
            ),
        }
    }
}

/// Whether `list` matches at least everything `narrower` does: empty matches anything; a
/// non-empty list covers only a non-empty list whose every item it has.
fn covers_list<T>(list: &[T], narrower: &[T], same: impl Fn(&T, &T) -> bool) -> bool {
    list.is_empty()
        || (!narrower.is_empty() && narrower.iter().all(|n| list.iter().any(|l| same(l, n))))
}

impl Rule {
    /// Whether this rule matches every request `other` matches (so `other`, if later, never
    /// decides anything).
    pub fn covers(&self, other: &Rule) -> bool {
        let text = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
        covers_list(&self.users, &other.users, text)
            && covers_list(&self.groups, &other.groups, text)
            && covers_list(&self.platforms, &other.platforms, PartialEq::eq)
            && covers_list(&self.clients, &other.clients, PartialEq::eq)
            && covers_list(&self.device_states, &other.device_states, PartialEq::eq)
            && covers_list(&self.networks, &other.networks, |a, b| a.covers(b))
    }

    /// Whether some request without a certificate can match.
    fn can_match_unmanaged(&self) -> bool {
        self.device_states.is_empty() || self.device_states.contains(&DeviceState::Unmanaged)
    }

    /// Whether every request without a certificate matches (no other condition).
    fn matches_every_unmanaged(&self) -> bool {
        self.can_match_unmanaged()
            && self.users.is_empty()
            && self.groups.is_empty()
            && self.platforms.is_empty()
            && self.clients.is_empty()
            && self.networks.is_empty()
    }
}

impl Policy {
    /// Rules that can never match, each with the first earlier rule that covers it.
    pub fn shadowed(&self) -> Vec<Shadowed> {
        let rules = self.rules();
        rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                rules[..i]
                    .iter()
                    .find(|e| e.covers(rule))
                    .map(|by| Shadowed {
                        rule: rule.name.clone(),
                        by: by.name.clone(),
                    })
            })
            .collect()
    }

    /// What lets a request without a certificate through (rules that can match one and are
    /// not shadowed, the default if such a request can reach it, `--unmanaged` overrides), in
    /// evaluation order.
    pub fn unmanaged_allowances(&self) -> Vec<UnmanagedAllowance> {
        let shadowed = self.shadowed();
        let mut found: Vec<UnmanagedAllowance> = self
            .rules()
            .iter()
            .filter(|r| r.action == Action::Allow && r.can_match_unmanaged())
            .filter(|r| !shadowed.iter().any(|s| s.rule == r.name))
            .map(|r| UnmanagedAllowance::Rule(r.name.clone()))
            .collect();
        if self.default_action() == Action::Allow
            && !self.rules().iter().any(Rule::matches_every_unmanaged)
        {
            found.push(UnmanagedAllowance::Default);
        }
        let mut ids: Vec<&String> = self
            .overrides()
            .iter()
            .filter(|(_, o)| o.action == Action::Allow && o.unmanaged)
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        found.extend(
            ids.into_iter()
                .map(|id| UnmanagedAllowance::Override(id.clone())),
        );
        found
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Override;
    use easgate_activesync::Platform;

    use crate::test_rule as rule;

    #[test]
    fn a_rule_behind_a_broader_one_is_reported_as_never_matching() {
        let mut broad = rule("lan", 10, Action::Allow);
        broad.networks = vec!["10.0.0.0/8".parse().unwrap()];
        let mut narrow = rule("office", 20, Action::Block);
        narrow.networks = vec!["10.1.0.0/16".parse().unwrap()];
        narrow.platforms = vec![Platform::Android];
        let mut elsewhere = rule("guest", 30, Action::Block);
        elsewhere.networks = vec!["192.0.2.0/24".parse().unwrap()];
        // Any platform is not covered by a rule for one platform.
        let mut android = rule("android", 5, Action::Quarantine);
        android.platforms = vec![Platform::Android];
        let p = Policy::new(
            vec![narrow, broad, elsewhere, android],
            Action::Block,
            HashMap::new(),
        );
        assert_eq!(
            p.shadowed(),
            vec![Shadowed {
                rule: "office".into(),
                by: "android".into()
            }]
        );
        let p = Policy::initial();
        assert!(p.shadowed().is_empty());
    }

    #[test]
    fn allowances_for_devices_without_a_certificate_are_listed() {
        assert!(Policy::initial().unmanaged_allowances().is_empty());
        let mut lan = rule("lan", 10, Action::Allow);
        lan.networks = vec!["127.0.0.0/8".parse().unwrap()];
        let mut managed = rule("managed-only", 20, Action::Allow);
        managed.device_states = vec![DeviceState::Managed];
        let mut overrides = HashMap::new();
        for (id, unmanaged) in [("b-dev", true), ("a-dev", true), ("c-dev", false)] {
            overrides.insert(
                id.to_string(),
                Override {
                    action: Action::Allow,
                    reason: None,
                    unmanaged,
                },
            );
        }
        let p = Policy::new(vec![lan, managed], Action::Allow, overrides);
        assert_eq!(
            p.unmanaged_allowances(),
            vec![
                UnmanagedAllowance::Rule("lan".into()),
                UnmanagedAllowance::Default,
                UnmanagedAllowance::Override("a-dev".into()),
                UnmanagedAllowance::Override("b-dev".into()),
            ]
        );
        // A rule that takes every unmanaged request first keeps them from the default.
        let mut refuse = rule("refuse-unmanaged", 1, Action::Block);
        refuse.device_states = vec![DeviceState::Unmanaged];
        let p = Policy::new(vec![refuse], Action::Allow, HashMap::new());
        assert!(p.unmanaged_allowances().is_empty());
    }
}
