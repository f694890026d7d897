//! The EAS host of a profile: a bare host name (optionally with a port). Phones put `https://`
//! and `/Microsoft-Server-ActiveSync` around it themselves, so a URL or path here gives a
//! mail account that never connects — refused at `profile create` instead.

use crate::ProfileError;

/// Check `host` and return it unchanged when it is a bare `name` or `name:port`.
pub fn check_eas_host(host: &str) -> Result<&str, ProfileError> {
    let bad = |why: &str| ProfileError::InvalidHost {
        host: host.to_string(),
        why: why.to_string(),
    };
    let lower = host.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || host.contains("://") {
        return Err(bad(
            "give the host name only, without a scheme: phones always connect with https://",
        ));
    }
    if lower.contains("/microsoft-server-activesync") {
        return Err(bad(
            "give the host name only: phones add /Microsoft-Server-ActiveSync themselves",
        ));
    }
    if host.contains('/') {
        return Err(bad("give the host name only, without a path"));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
    }
    if name.is_empty() || name.len() > 253 {
        return Err(bad("the host name is empty or too long"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !name.split('.').all(label_ok) {
        return Err(bad(
            "not a host name: use letters, digits, hyphens and dots (e.g. mail.example.com)",
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_and_ports_pass() {
        for ok in [
            "mail.example.com",
            "gw",
            "mail.example.com:8443",
            "10.0.0.5",
        ] {
            assert_eq!(check_eas_host(ok).unwrap(), ok);
        }
    }

    #[test]
    fn urls_paths_and_junk_are_refused_with_the_reason() {
        let why = |h: &str| check_eas_host(h).unwrap_err().to_string();
        assert!(why("https://mail.example.com").contains("without a scheme"));
        assert!(why("http://mail.example.com").contains("without a scheme"));
        assert!(why("HTTPS://mail.example.com").contains("without a scheme"));
        assert!(why("mail.example.com/Microsoft-Server-ActiveSync")
            .contains("add /Microsoft-Server-ActiveSync"));
        assert!(why("mail.example.com/owa").contains("without a path"));
        assert!(why("mail.example.com:0").contains("port"));
        assert!(why("mail.example.com:99999").contains("port"));
        assert!(why("mail example.com").contains("not a host name"));
        assert!(why("").contains("empty"));
        assert!(why("-bad.example.com").contains("not a host name"));
    }
}

#[cfg(test)]
mod garbage {
    use super::*;

    /// Every short string over an alphabet of the characters that matter never panics, and
    /// what passes is a bare host with at most a port.
    #[test]
    fn no_input_panics_and_only_bare_hosts_pass() {
        let alphabet = ['a', '.', ':', '/', '-', '9', ' ', 'é', '\0', 'H'];
        let mut count = 0;
        for len in 0..=4 {
            let mut digits = vec![0usize; len];
            loop {
                let text: String = digits.iter().map(|&d| alphabet[d]).collect();
                if let Ok(ok) = check_eas_host(&text) {
                    assert!(
                        !ok.contains('/') && !ok.contains(' ') && ok.is_ascii(),
                        "{ok:?}"
                    );
                }
                count += 1;
                let mut i = 0;
                while i < len {
                    digits[i] += 1;
                    if digits[i] < alphabet.len() {
                        break;
                    }
                    digits[i] = 0;
                    i += 1;
                }
                if i == len {
                    break;
                }
            }
        }
        assert!(count > 10_000);
    }
}
