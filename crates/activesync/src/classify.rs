//! Which platform and which mail client a request comes from, from its DeviceType and
//! User-Agent — one documented classifier, so platform rules do not misfire.
//!
//! Rules, in order:
//! - client `outlook` when the User-Agent starts with `Outlook-` or DeviceType is `Outlook`;
//!   Outlook names its platforms in the User-Agent (`Outlook-iOS/2.0`, `Outlook-Android/2.0`,
//!   and `Outlook-iOS-Android/1.0` from the shared code base);
//! - platform from every hint found: iOS (`iPhone`, `iPad`, `iPod`, `Apple-`, `iOS`), Android
//!   (`Android`, `SAMSUNG`, `SM-`), Windows (`WindowsMail`, `WindowsPhone`, `MSFT-WIN`,
//!   `Windows`). Exactly one platform named → that platform; none or more than one → `other`
//!   (so Outlook's `iOS-Android` header is `other`, never half a match);
//! - client `native` for the platform's own mail app: iOS Mail (`Apple-…`), Samsung Email
//!   (`SAMSUNG-…`), Gmail and the stock Android app (`Android-Mail/…`, `Android/…`), Windows Mail
//!   (`MSFT-WIN-…`); anything else (Nine, BlueMail, TouchDown, …) is `other`.

/// Device platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Ios,
    Android,
    Windows,
    Other,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Windows => "windows",
            Platform::Other => "other",
        }
    }
}

/// Mail client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    Native,
    Outlook,
    Other,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::Native => "native",
            Client::Outlook => "outlook",
            Client::Other => "other",
        }
    }
}

/// Classify a request by its DeviceType and User-Agent.
pub fn classify(device_type: Option<&str>, user_agent: Option<&str>) -> (Platform, Client) {
    // Case-insensitive throughout, without allocating: this runs on every gateway request.
    let dt = device_type.unwrap_or("");
    let ua = user_agent.unwrap_or("");
    let mentions = |hints: &[&str]| {
        hints
            .iter()
            .any(|h| contains_ignore_case(dt, h) || contains_ignore_case(ua, h))
    };
    let outlook = starts_with_ignore_case(ua, "outlook-") || dt.eq_ignore_ascii_case("outlook");
    let ios = mentions(&["iphone", "ipad", "ipod", "apple-", "ios"]);
    let android = mentions(&["android", "samsung", "sm-"]);
    let windows = mentions(&["windowsmail", "windowsphone", "msft-win", "windows"]);
    let platform = match (ios, android, windows) {
        (true, false, false) => Platform::Ios,
        (false, true, false) => Platform::Android,
        (false, false, true) => Platform::Windows,
        _ => Platform::Other,
    };
    let client = if outlook {
        Client::Outlook
    } else if [
        "apple-",
        "samsung-",
        "android-mail/",
        "android/",
        "msft-win",
    ]
    .iter()
    .any(|p| starts_with_ignore_case(ua, p))
    {
        Client::Native
    } else {
        Client::Other
    };
    (platform, client)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `needle` is lower-case ASCII.
fn contains_ignore_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real-shaped DeviceType / User-Agent pairs.
    const CASES: &[(&str, &str, Platform, Client)] = &[
        (
            "iPhone",
            "Apple-iPhone14C2/2104.96",
            Platform::Ios,
            Client::Native,
        ),
        (
            "iPad",
            "Apple-iPad13C1/2008.131",
            Platform::Ios,
            Client::Native,
        ),
        (
            "iPhone",
            "Apple-iPhone16C1/2201.212",
            Platform::Ios,
            Client::Native,
        ),
        ("Outlook", "Outlook-iOS/2.0", Platform::Ios, Client::Outlook),
        (
            "Outlook",
            "Outlook-Android/2.0",
            Platform::Android,
            Client::Outlook,
        ),
        (
            "Outlook",
            "Outlook-iOS-Android/1.0",
            Platform::Other,
            Client::Outlook,
        ),
        (
            "Android",
            "Android-Mail/2023.10.29.578437003.Release",
            Platform::Android,
            Client::Native,
        ),
        (
            "SAMSUNGSMS911B",
            "SAMSUNG-SM-S911B/101.5001",
            Platform::Android,
            Client::Native,
        ),
        (
            "SamsungDevice",
            "SAMSUNG-SM-G991B/100.1001",
            Platform::Android,
            Client::Native,
        ),
        (
            "Android",
            "Android/13-EAS-2.0",
            Platform::Android,
            Client::Native,
        ),
        ("Android", "Nine/4.9.4b", Platform::Android, Client::Other),
        (
            "WindowsMail",
            "MSFT-WIN-4/10.0.19045",
            Platform::Windows,
            Client::Native,
        ),
        (
            "WindowsPhone",
            "MSFT-WP/8.10.15148",
            Platform::Windows,
            Client::Other,
        ),
        ("pyactivesync", "", Platform::Other, Client::Other),
        ("", "", Platform::Other, Client::Other),
    ];

    #[test]
    fn real_user_agents() {
        for (dt, ua, platform, client) in CASES {
            assert_eq!(
                classify(Some(dt), Some(ua)),
                (*platform, *client),
                "{dt} / {ua}"
            );
        }
    }
}
