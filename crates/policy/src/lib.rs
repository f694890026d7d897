//! Access rules for the EAS gateway, free of I/O: which devices reach the mailbox.
//!
//! Evaluation order, as DESIGN §2 says: a per-device override set by an admin
//! (`eas allow|block|quarantine`) decides first; then the rules, by ascending priority (ties by
//! name), first match wins; then the default action. A rule's empty condition lists match
//! anything; a rule matches when every non-empty list matches. Every [`Decision`] names what
//! decided it, which is what the decision log and `policy test` (what-if) show.

mod cidr;
mod words;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use easgate_activesync::{Client, Platform};
use serde::{Deserialize, Serialize};

pub use cidr::{Cidr, CidrError};
pub use words::{
    parse_action, parse_client, parse_device_state, parse_platform, RuleError, RuleWords, WordError,
};

/// What happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Block,
    Quarantine,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
            Action::Quarantine => "quarantine",
        }
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "allow" => Ok(Action::Allow),
            "block" => Ok(Action::Block),
            "quarantine" => Ok(Action::Quarantine),
            other => Err(format!(
                "unknown action `{other}` (allow, block or quarantine)"
            )),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Managed: a valid certificate of an enrolled, non-retired device. Anything else is unmanaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Managed,
    Unmanaged,
}

/// One access rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Lower runs first.
    pub priority: i32,
    /// UPNs, compared without regard to case.
    pub users: Vec<String>,
    /// Group names, compared without regard to case; any one shared group matches.
    pub groups: Vec<String>,
    pub platforms: Vec<Platform>,
    pub clients: Vec<Client>,
    pub device_states: Vec<DeviceState>,
    pub networks: Vec<Cidr>,
    pub action: Action,
}

/// What is known about the request being decided.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// The user the certificate (or, unmanaged, the request) names.
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    pub platform: Platform,
    pub client: Client,
    pub device_state: DeviceState,
    pub ip: Option<IpAddr>,
    /// The EAS DeviceId, for per-device overrides.
    pub eas_device_id: Option<&'a str>,
}

/// An admin's decision for one EAS device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub action: Action,
    pub reason: Option<String>,
}

/// What decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    Override { eas_device_id: String },
    Rule { name: String },
    Default,
}

/// A decision and its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub matched: Matched,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matched {
            Matched::Override { eas_device_id } => {
                write!(f, "{} (override for device {eas_device_id})", self.action)
            }
            Matched::Rule { name } => write!(f, "{} (rule `{name}`)", self.action),
            Matched::Default => write!(f, "{} (default)", self.action),
        }
    }
}

/// Rules, overrides and the default, ready to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    default: Action,
    overrides: HashMap<String, Override>,
}

/// Name of the rule a new install starts with.
pub const ALLOW_MANAGED: &str = "allow-managed";

impl Policy {
    /// `rules` in any order; they are sorted by priority, then name.
    pub fn new(
        mut rules: Vec<Rule>,
        default: Action,
        overrides: HashMap<String, Override>,
    ) -> Self {
        rules.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        Policy {
            rules,
            default,
            overrides,
        }
    }

    /// A new install: allow managed devices, block everything else.
    pub fn initial() -> Self {
        Policy::new(
            vec![Rule {
                name: ALLOW_MANAGED.into(),
                priority: 100,
                users: Vec::new(),
                groups: Vec::new(),
                platforms: Vec::new(),
                clients: Vec::new(),
                device_states: vec![DeviceState::Managed],
                networks: Vec::new(),
                action: Action::Allow,
            }],
            Action::Block,
            HashMap::new(),
        )
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Decide one request.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Decision {
        if let Some(id) = subject.eas_device_id {
            if let Some(o) = self.overrides.get(id) {
                return Decision {
                    action: o.action,
                    matched: Matched::Override {
                        eas_device_id: id.to_string(),
                    },
                };
            }
        }
        for rule in &self.rules {
            if rule.matches(subject) {
                return Decision {
                    action: rule.action,
                    matched: Matched::Rule {
                        name: rule.name.clone(),
                    },
                };
            }
        }
        Decision {
            action: self.default,
            matched: Matched::Default,
        }
    }
}

impl Rule {
    /// Whether every non-empty condition of the rule holds for `s`.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let user_ok = self.users.is_empty()
            || s.user
                .is_some_and(|u| self.users.iter().any(|r| r.eq_ignore_ascii_case(u)));
        let group_ok = self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| s.groups.iter().any(|h| h.eq_ignore_ascii_case(g)));
        let platform_ok = self.platforms.is_empty() || self.platforms.contains(&s.platform);
        let client_ok = self.clients.is_empty() || self.clients.contains(&s.client);
        let state_ok =
            self.device_states.is_empty() || self.device_states.contains(&s.device_state);
        let network_ok = self.networks.is_empty()
            || s.ip
                .is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip)));
        user_ok && group_ok && platform_ok && client_ok && state_ok && network_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(groups: &'a [String]) -> Subject<'a> {
        Subject {
            user: Some("Alice@Corp.Example"),
            groups,
            platform: Platform::Ios,
            client: Client::Native,
            device_state: DeviceState::Managed,
            ip: Some("10.1.2.3".parse().unwrap()),
            eas_device_id: Some("ABC"),
        }
    }

    fn rule(name: &str, priority: i32, action: Action) -> Rule {
        Rule {
            name: name.into(),
            priority,
            users: vec![],
            groups: vec![],
            platforms: vec![],
            clients: vec![],
            device_states: vec![],
            networks: vec![],
            action,
        }
    }

    #[test]
    fn a_new_install_allows_managed_and_blocks_the_rest() {
        let p = Policy::initial();
        let groups = vec![];
        let mut s = subject(&groups);
        assert_eq!(p.evaluate(&s).action, Action::Allow);
        assert_eq!(
            p.evaluate(&s).matched,
            Matched::Rule {
                name: ALLOW_MANAGED.into()
            }
        );
        s.device_state = DeviceState::Unmanaged;
        let d = p.evaluate(&s);
        assert_eq!((d.action, d.matched), (Action::Block, Matched::Default));
    }

    #[test]
    fn first_match_by_priority_then_name_and_overrides_first() {
        let groups = vec!["Sales".to_string()];
        let s = subject(&groups);
        let mut block_android = rule("block-android", 10, Action::Block);
        block_android.platforms = vec![Platform::Android];
        let mut quarantine_sales = rule("b-quarantine-sales", 20, Action::Quarantine);
        quarantine_sales.groups = vec!["sales".into()];
        let allow_all = rule("a-allow", 20, Action::Allow);
        let p = Policy::new(
            vec![allow_all.clone(), quarantine_sales.clone(), block_android],
            Action::Block,
            HashMap::new(),
        );
        // Same priority: name order, so `a-allow` wins over `b-quarantine-sales`.
        assert_eq!(
            p.evaluate(&s).matched,
            Matched::Rule {
                name: "a-allow".into()
            }
        );
        let p = Policy::new(vec![quarantine_sales], Action::Allow, HashMap::new());
        assert_eq!(p.evaluate(&s).action, Action::Quarantine);
        let mut overrides = HashMap::new();
        overrides.insert(
            "ABC".to_string(),
            Override {
                action: Action::Block,
                reason: Some("lost".into()),
            },
        );
        let p = Policy::new(vec![allow_all], Action::Allow, overrides);
        let d = p.evaluate(&s);
        assert_eq!(
            (d.action, d.to_string()),
            (Action::Block, "block (override for device ABC)".to_string())
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let groups = vec![];
        let mut s = subject(&groups);
        let mut r = rule("r", 1, Action::Allow);
        r.users = vec!["alice@corp.example".into()];
        r.clients = vec![Client::Native, Client::Outlook];
        r.networks = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(r.matches(&s));
        s.client = Client::Other;
        assert!(!r.matches(&s));
        s.client = Client::Outlook;
        s.ip = Some("192.0.2.1".parse().unwrap());
        assert!(!r.matches(&s));
        s.ip = None;
        assert!(!r.matches(&s), "a network condition needs an address");
        s.ip = Some("10.9.9.9".parse().unwrap());
        s.user = None;
        assert!(!r.matches(&s));
        s.user = Some("bob@corp.example");
        assert!(!r.matches(&s));
    }
}
