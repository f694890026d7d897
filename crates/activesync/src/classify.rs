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
    let dt = device_type.unwrap_or("").to_ascii_lowercase();
    let ua = user_agent.unwrap_or("").to_ascii_lowercase();
    let both = format!("{dt} {ua}");
    let outlook = ua.starts_with("outlook-") || dt == "outlook";
    let ios = ["iphone", "ipad", "ipod", "apple-", "ios"]
        .iter()
        .any(|h| both.contains(h));
    let android = ["android", "samsung", "sm-"]
        .iter()
        .any(|h| both.contains(h));
    let windows = ["windowsmail", "windowsphone", "msft-win", "windows"]
        .iter()
        .any(|h| both.contains(h));
    let platform = match (ios, android, windows) {
        (true, false, false) => Platform::Ios,
        (false, true, false) => Platform::Android,
        (false, false, true) => Platform::Windows,
        _ => Platform::Other,
    };
    let client = if outlook {
        Client::Outlook
    } else if ua.starts_with("apple-")
        || ua.starts_with("samsung-")
        || ua.starts_with("android-mail/")
        || ua.starts_with("android/")
        || ua.starts_with("msft-win")
    {
        Client::Native
    } else {
        Client::Other
    };
    (platform, client)
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
