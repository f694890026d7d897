//! The contract's words for rule conditions (`ios`, `outlook`, `managed`, …), parsed with an
//! error that lists what is accepted, and a stored rule turned into an evaluable [`Rule`].

use easgate_activesync::{Client, Platform};
use thiserror::Error;

use crate::{Action, Cidr, DeviceState, Rule};

/// A condition or action word that is not one of the accepted ones.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown {what} `{word}` (expected {expected})")]
pub struct WordError {
    pub what: &'static str,
    pub word: String,
    pub expected: &'static str,
}

fn word_error(what: &'static str, word: &str, expected: &'static str) -> WordError {
    WordError {
        what,
        word: word.to_string(),
        expected,
    }
}

pub fn parse_platform(word: &str) -> Result<Platform, WordError> {
    match word.trim().to_ascii_lowercase().as_str() {
        "ios" => Ok(Platform::Ios),
        "android" => Ok(Platform::Android),
        "windows" => Ok(Platform::Windows),
        "other" => Ok(Platform::Other),
        _ => Err(word_error(
            "platform",
            word,
            "ios, android, windows or other",
        )),
    }
}

pub fn parse_client(word: &str) -> Result<Client, WordError> {
    match word.trim().to_ascii_lowercase().as_str() {
        "native" => Ok(Client::Native),
        "outlook" => Ok(Client::Outlook),
        "other" => Ok(Client::Other),
        _ => Err(word_error("client", word, "native, outlook or other")),
    }
}

pub fn parse_device_state(word: &str) -> Result<DeviceState, WordError> {
    match word.trim().to_ascii_lowercase().as_str() {
        "managed" => Ok(DeviceState::Managed),
        "unmanaged" => Ok(DeviceState::Unmanaged),
        _ => Err(word_error("device state", word, "managed or unmanaged")),
    }
}

pub fn parse_action(word: &str) -> Result<Action, WordError> {
    word.parse()
        .map_err(|_| word_error("action", word, "allow, block or quarantine"))
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Managed => "managed",
            DeviceState::Unmanaged => "unmanaged",
        }
    }
}

/// A rule from its stored words.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("rule `{rule}`: {source}")]
    Word {
        rule: String,
        #[source]
        source: WordError,
    },
    #[error("rule `{rule}`: {source}")]
    Network {
        rule: String,
        #[source]
        source: crate::CidrError,
    },
}

/// The stored form of a rule's conditions, as words.
pub struct RuleWords<'a> {
    pub name: &'a str,
    pub priority: i32,
    pub users: &'a [String],
    pub groups: &'a [String],
    pub platforms: &'a [String],
    pub clients: &'a [String],
    pub device_states: &'a [String],
    pub networks: &'a [String],
    pub action: &'a str,
}

impl Rule {
    /// Parse a rule from its words; every word is checked.
    pub fn from_words(w: &RuleWords<'_>) -> Result<Rule, RuleError> {
        let word = |source| RuleError::Word {
            rule: w.name.to_string(),
            source,
        };
        Ok(Rule {
            name: w.name.to_string(),
            priority: w.priority,
            users: w.users.to_vec(),
            groups: w.groups.to_vec(),
            platforms: w
                .platforms
                .iter()
                .map(|p| parse_platform(p))
                .collect::<Result<_, _>>()
                .map_err(word)?,
            clients: w
                .clients
                .iter()
                .map(|c| parse_client(c))
                .collect::<Result<_, _>>()
                .map_err(word)?,
            device_states: w
                .device_states
                .iter()
                .map(|s| parse_device_state(s))
                .collect::<Result<_, _>>()
                .map_err(word)?,
            networks: w
                .networks
                .iter()
                .map(|n| n.parse::<Cidr>())
                .collect::<Result<_, _>>()
                .map_err(|source| RuleError::Network {
                    rule: w.name.to_string(),
                    source,
                })?,
            action: parse_action(w.action).map_err(word)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_and_unknown_words_say_what_is_accepted() {
        assert_eq!(parse_platform("iOS"), Ok(Platform::Ios));
        assert_eq!(parse_client("outlook"), Ok(Client::Outlook));
        assert_eq!(parse_device_state("unmanaged"), Ok(DeviceState::Unmanaged));
        let e = parse_platform("blackberry").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown platform `blackberry` (expected ios, android, windows or other)"
        );
        let none: Vec<String> = vec![];
        let bad_net = vec!["10.0.0.0/33".to_string()];
        let words = RuleWords {
            name: "r",
            priority: 1,
            users: &none,
            groups: &none,
            platforms: &none,
            clients: &none,
            device_states: &none,
            networks: &bad_net,
            action: "allow",
        };
        assert!(matches!(
            Rule::from_words(&words),
            Err(RuleError::Network { .. })
        ));
    }
}
