//! Access rules for the EAS gateway, free of I/O: which devices reach the mailbox.
//!
//! Evaluation order (docs/security.md), all of it in [`Policy::evaluate`] so that the gateway
//! and `policy test` cannot disagree:
//!
//! 1. **hard refusals** ([`refusal`]): a certificate that failed a check, `User=` that is not
//!    the certificate's user, a disabled user, a certificate bound to another DeviceId, and in
//!    trusted-header mode any request without a valid certificate. Nothing below can turn
//!    these into allow.
//! 2. a per-device **override** set by an admin (`eas allow|block|quarantine`). An allow
//!    override applies only to requests with a valid certificate, unless the admin made it for
//!    devices without one (`eas allow --unmanaged`); no override applies to a request that
//!    names a DeviceId bound to a certificate it does not present (a possible spoof).
//! 3. the **rules**, by ascending priority (ties by name), first match wins. A rule's empty
//!    condition lists match anything; a rule matches when every non-empty list matches.
//! 4. the **default** action.
//!
//! Every [`Decision`] names what decided it, which is what the decision log and `policy test`
//! (what-if) show. [`analysis`] finds rules that can never match and what lets devices without
//! a certificate in.

pub mod analysis;
mod cidr;
pub mod refusal;
mod words;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use easgate_activesync::{Client, Platform};
use serde::{Deserialize, Serialize};

pub use cidr::{Cidr, CidrError};
pub use refusal::{hard_refusal, Certificate, Facts, HardRefusal};
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

/// Managed: a valid certificate of an enrolled, non-retired device. Unmanaged: no
/// certificate (a certificate that fails a check is a hard refusal, never "unmanaged").
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
    /// The user the certificate (or, without one, the request) names.
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    pub platform: Platform,
    pub client: Client,
    pub ip: Option<IpAddr>,
    /// The EAS DeviceId, lower case, for per-device overrides.
    pub eas_device_id: Option<&'a str>,
    /// What the hard refusals are decided from; the certificate also gives the device state.
    pub facts: Facts,
    /// The DeviceId is bound to a certificate this request does not present: a new, unmanaged
    /// device as far as the policy goes, which inherits no override of that DeviceId.
    pub suspect: bool,
}

impl Subject<'_> {
    pub fn device_state(&self) -> DeviceState {
        self.facts.certificate.device_state()
    }
}

/// An admin's decision for one EAS device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub action: Action,
    pub reason: Option<String>,
    /// An allow that also admits the device without a certificate (`eas allow --unmanaged`).
    pub unmanaged: bool,
}

impl Override {
    /// Whether this override decides `s` (which passed the hard refusals).
    fn applies_to(&self, s: &Subject<'_>) -> bool {
        if s.suspect {
            return false;
        }
        match self.action {
            Action::Allow => self.unmanaged || s.device_state() == DeviceState::Managed,
            Action::Block | Action::Quarantine => true,
        }
    }
}

/// What decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    Refused(HardRefusal),
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

impl Decision {
    /// The hard refusal that decided, if one did.
    pub fn refusal(&self) -> Option<HardRefusal> {
        match self.matched {
            Matched::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matched {
            Matched::Refused(r) => write!(f, "refuse ({r})"),
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
    /// Trusted-header mode: a request without a valid certificate is a hard refusal.
    certificate_required: bool,
}

/// Name of the rule a new install starts with.
pub const ALLOW_MANAGED: &str = "allow-managed";

impl Policy {
    /// `rules` in any order; they are sorted by priority, then name. `overrides` are keyed by
    /// lower-case DeviceId.
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
            certificate_required: false,
        }
    }

    /// Refuse every request without a valid certificate, whatever rules and overrides say
    /// (the upstream trusts the gateway's user header).
    pub fn with_certificate_required(mut self, required: bool) -> Self {
        self.certificate_required = required;
        self
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

    pub fn overrides(&self) -> &HashMap<String, Override> {
        &self.overrides
    }

    /// Decide one request: hard refusals, then overrides, then rules, then the default.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Decision {
        if let Some(refusal) = hard_refusal(&subject.facts, self.certificate_required) {
            return Decision {
                action: Action::Block,
                matched: Matched::Refused(refusal),
            };
        }
        if let Some(id) = subject.eas_device_id {
            if let Some(o) = self.overrides.get(id).filter(|o| o.applies_to(subject)) {
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
            self.device_states.is_empty() || self.device_states.contains(&s.device_state());
        let network_ok = self.networks.is_empty()
            || s.ip
                .is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip)));
        user_ok && group_ok && platform_ok && client_ok && state_ok && network_ok
    }
}

/// A rule with no conditions, for the tests of this crate.
#[cfg(test)]
pub(crate) fn test_rule(name: &str, priority: i32, action: Action) -> Rule {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(groups: &'a [String]) -> Subject<'a> {
        Subject {
            user: Some("Alice@Corp.Example"),
            groups,
            platform: Platform::Ios,
            client: Client::Native,
            ip: Some("10.1.2.3".parse().unwrap()),
            eas_device_id: Some("abc"),
            facts: valid(),
            suspect: false,
        }
    }

    fn valid() -> Facts {
        Facts {
            certificate: Certificate::Valid,
            identity_mismatch: false,
            user_disabled: false,
            bound_elsewhere: false,
            device_wiped: false,
        }
    }

    fn overrides(action: Action, unmanaged: bool) -> HashMap<String, Override> {
        let mut o = HashMap::new();
        o.insert(
            "abc".to_string(),
            Override {
                action,
                reason: None,
                unmanaged,
            },
        );
        o
    }

    use crate::test_rule as rule;

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
        s.facts.certificate = Certificate::Absent;
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
        let p = Policy::new(
            vec![allow_all],
            Action::Allow,
            overrides(Action::Block, false),
        );
        let d = p.evaluate(&s);
        assert_eq!(
            (d.action, d.to_string()),
            (Action::Block, "block (override for device abc)".to_string())
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

    #[test]
    fn a_hard_refusal_beats_every_override_rule_and_default() {
        let groups = vec![];
        let allow_all = rule("allow-all", 1, Action::Allow);
        let p = Policy::new(
            vec![allow_all],
            Action::Allow,
            overrides(Action::Allow, true),
        );
        let cases = [
            (
                Certificate::Failed("revoked"),
                false,
                false,
                false,
                "certificate-revoked",
            ),
            (
                Certificate::Failed("expired"),
                false,
                false,
                false,
                "certificate-expired",
            ),
            (Certificate::Valid, true, false, false, "identity-mismatch"),
            (Certificate::Valid, false, true, false, "user-disabled"),
            (Certificate::Absent, false, true, false, "user-disabled"),
            (
                Certificate::Valid,
                false,
                false,
                true,
                "certificate-bound-elsewhere",
            ),
        ];
        for (certificate, identity_mismatch, user_disabled, bound_elsewhere, cause) in cases {
            let mut s = subject(&groups);
            s.facts = Facts {
                certificate,
                identity_mismatch,
                user_disabled,
                bound_elsewhere,
                device_wiped: false,
            };
            let d = p.evaluate(&s);
            assert_eq!(d.action, Action::Block, "{cause}");
            assert_eq!(d.refusal().map(HardRefusal::cause), Some(cause));
        }
        // A wiped DeviceId, with or without a valid certificate, whatever the allow override.
        for certificate in [Certificate::Valid, Certificate::Absent] {
            let mut s = subject(&groups);
            s.facts = Facts {
                certificate,
                device_wiped: true,
                ..valid()
            };
            let d = p.evaluate(&s);
            assert_eq!(d.action, Action::Block);
            assert_eq!(d.refusal().map(HardRefusal::cause), Some("device-wiped"));
        }
    }

    #[test]
    fn an_allow_override_needs_a_valid_certificate_unless_made_for_unmanaged_devices() {
        let groups = vec![];
        let mut s = subject(&groups);
        s.facts.certificate = Certificate::Absent;
        let p = Policy::new(vec![], Action::Block, overrides(Action::Allow, false));
        let d = p.evaluate(&s);
        assert_eq!((d.action, d.matched), (Action::Block, Matched::Default));
        let p = Policy::new(vec![], Action::Block, overrides(Action::Allow, true));
        assert_eq!(p.evaluate(&s).action, Action::Allow);
        // A request naming a DeviceId bound to a certificate it does not present inherits
        // nothing, not even a block.
        s.suspect = true;
        assert_eq!(p.evaluate(&s).matched, Matched::Default);
        let p = Policy::new(vec![], Action::Allow, overrides(Action::Block, false));
        assert_eq!(p.evaluate(&s).matched, Matched::Default);
        // Block and quarantine overrides hold for the device with or without a certificate.
        s.suspect = false;
        assert_eq!(p.evaluate(&s).action, Action::Block);
    }

    #[test]
    fn trusted_header_mode_refuses_every_request_without_a_valid_certificate() {
        let groups = vec![];
        let mut s = subject(&groups);
        s.facts.certificate = Certificate::Absent;
        let p = Policy::new(
            vec![rule("allow-all", 1, Action::Allow)],
            Action::Allow,
            overrides(Action::Allow, true),
        )
        .with_certificate_required(true);
        assert_eq!(
            p.evaluate(&s).refusal(),
            Some(HardRefusal::CertificateRequired)
        );
        s.facts.certificate = Certificate::Valid;
        assert_eq!(p.evaluate(&s).action, Action::Allow);
    }
}

#[cfg(test)]
mod properties {
    //! For any rules, overrides and default, a request with a hard refusal never evaluates to
    //! allow, and neither does a request without a valid certificate in trusted-header mode.

    use super::*;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Allow),
            Just(Action::Block),
            Just(Action::Quarantine)
        ]
    }

    fn platform() -> impl Strategy<Value = Platform> {
        prop_oneof![
            Just(Platform::Ios),
            Just(Platform::Android),
            Just(Platform::Windows),
            Just(Platform::Other)
        ]
    }

    fn client() -> impl Strategy<Value = Client> {
        prop_oneof![
            Just(Client::Native),
            Just(Client::Outlook),
            Just(Client::Other)
        ]
    }

    fn state() -> impl Strategy<Value = DeviceState> {
        prop_oneof![Just(DeviceState::Managed), Just(DeviceState::Unmanaged)]
    }

    fn network() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            Just("0.0.0.0/0"),
            Just("127.0.0.0/8"),
            Just("10.0.0.0/8"),
            Just("::/0")
        ]
        .prop_map(|n| n.parse().unwrap())
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            prop_oneof![
                Just("alice@corp.example"),
                Just("sales"),
                Just("bob@corp.example")
            ]
            .prop_map(String::from),
            0..3,
        )
    }

    fn rule() -> impl Strategy<Value = Rule> {
        (
            0..5i32,
            names(),
            names(),
            proptest::collection::vec(platform(), 0..3),
            proptest::collection::vec(client(), 0..3),
            proptest::collection::vec(state(), 0..3),
            proptest::collection::vec(network(), 0..3),
            action(),
            0..1000u32,
        )
            .prop_map(
                |(
                    priority,
                    users,
                    groups,
                    platforms,
                    clients,
                    device_states,
                    networks,
                    action,
                    n,
                )| {
                    Rule {
                        name: format!("r{n}"),
                        priority,
                        users,
                        groups,
                        platforms,
                        clients,
                        device_states,
                        networks,
                        action,
                    }
                },
            )
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (
            proptest::collection::vec(rule(), 0..6),
            action(),
            proptest::collection::vec((action(), any::<bool>()), 0..2),
        )
            .prop_map(|(rules, default, overrides)| {
                let overrides = overrides
                    .into_iter()
                    .enumerate()
                    .map(|(i, (action, unmanaged))| {
                        let id = if i == 0 { "abc" } else { "other" };
                        (
                            id.to_string(),
                            Override {
                                action,
                                reason: None,
                                unmanaged,
                            },
                        )
                    })
                    .collect();
                Policy::new(rules, default, overrides)
            })
    }

    fn certificate() -> impl Strategy<Value = Certificate> {
        prop_oneof![
            Just(Certificate::Valid),
            Just(Certificate::Absent),
            Just(Certificate::Failed("revoked")),
            Just(Certificate::Failed("expired")),
            Just(Certificate::Failed("untrusted")),
        ]
    }

    fn facts() -> impl Strategy<Value = Facts> {
        (
            certificate(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(certificate, identity_mismatch, user_disabled, bound_elsewhere, device_wiped)| {
                    Facts {
                        certificate,
                        identity_mismatch,
                        user_disabled,
                        bound_elsewhere,
                        device_wiped,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn a_hard_refusal_never_evaluates_to_allow(
            policy in policy(),
            facts in facts(),
            required in any::<bool>(),
            suspect in any::<bool>(),
            platform in platform(),
            client in client(),
            user in prop_oneof![Just("alice@corp.example"), Just("bob@corp.example")],
            in_sales in any::<bool>(),
            loopback in any::<bool>(),
        ) {
            let groups = if in_sales { vec!["sales".to_string()] } else { vec![] };
            let ip: IpAddr = if loopback { "127.0.0.1" } else { "192.0.2.7" }.parse().unwrap();
            let subject = Subject {
                user: Some(user),
                groups: &groups,
                platform,
                client,
                ip: Some(ip),
                eas_device_id: Some("abc"),
                facts,
                suspect,
            };
            let policy = policy.with_certificate_required(required);
            let decision = policy.evaluate(&subject);
            let refused = hard_refusal(&facts, required).is_some();
            if refused {
                prop_assert_ne!(decision.action, Action::Allow);
                prop_assert!(decision.refusal().is_some());
            } else {
                prop_assert!(decision.refusal().is_none());
            }
            if required && facts.certificate != Certificate::Valid {
                prop_assert_ne!(decision.action, Action::Allow);
            }
            if matches!(facts.certificate, Certificate::Failed(_)) {
                prop_assert_ne!(decision.action, Action::Allow);
            }
            if suspect {
                let from_override = matches!(decision.matched, Matched::Override { .. });
                prop_assert!(!from_override);
            }
        }
    }
}
