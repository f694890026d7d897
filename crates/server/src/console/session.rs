//! The web console's sign-in sessions: a random session id in an HttpOnly, SameSite=Strict
//! cookie (Secure when the admin listener serves TLS), and a CSRF token of the session's own
//! that every change must echo in `X-CSRF-Token`.
//!
//! A session stands for an API token: it keeps the token's stored hash (never the token) and
//! every request authenticates that hash anew, so a revoked or expired token ends its sessions
//! on their next request, exactly as it ends bearer calls. Sessions live in the memory of the
//! instance that made them (a restart signs everyone out, which is the safe direction); the
//! map holds SHA-256 digests of the session ids, so a memory dump yields no usable cookie.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue, Method};

/// The cookie's name.
pub const COOKIE: &str = "easgate_session";
/// The header every change made with a session cookie must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends this long after its last request.
pub const IDLE_SECS: i64 = 30 * 60;
/// And at the latest this long after sign-in.
pub const MAX_SECS: i64 = 12 * 60 * 60;
/// Sessions one instance keeps at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The stored hash of the API token the session signed in with.
    pub token_hash: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// Every live session of this instance, by the SHA-256 hex of its id.
#[derive(Default)]
pub struct Sessions {
    by_id_hash: Mutex<HashMap<String, Session>>,
}

fn digest(id: &str) -> String {
    easgate_ops::devices::secret_hash(id)
}

fn random_token() -> Option<String> {
    easgate_ops::devices::random_hex(32).ok()
}

impl Sessions {
    /// Start a session for the token with `token_hash`: (session id for the cookie, CSRF token).
    pub fn start(&self, token_hash: String, now: i64) -> Option<(String, String)> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut map = self.by_id_hash.lock().ok()?;
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            digest(&id),
            Session {
                token_hash,
                csrf: csrf.clone(),
                created_at: now,
                last_seen: now,
            },
        );
        Some((id, csrf))
    }

    /// The live session of `id`, its idle clock restarted.
    pub fn touch(&self, id: &str, now: i64) -> Option<Session> {
        let mut map = self.by_id_hash.lock().ok()?;
        let key = digest(id);
        let session = map.get_mut(&key)?;
        if !alive(session, now) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.by_id_hash.lock() {
            map.remove(&digest(id));
        }
    }
}

fn alive(s: &Session, now: i64) -> bool {
    now - s.last_seen < IDLE_SECS && now - s.created_at < MAX_SECS
}

/// Whether a method changes something (and so needs the CSRF token).
pub fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request carries the session's CSRF token (compared in constant time).
pub fn csrf_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(given.trim().as_bytes(), expected.as_bytes())
        .is_ok()
}

/// The session id of the request's `Cookie` header, if it has one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` for a new session (`secure` when served over TLS), or to end one (`None`).
pub fn set_cookie(id: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match id {
        Some(id) => {
            format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={MAX_SECS}{secure}")
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_change_needs_the_sessions_csrf_token() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.start("hash".into(), 1000).unwrap();
        let cookie_header = format!("other=1; {COOKIE}={id}");
        let plain = headers(&[("cookie", &cookie_header)]);
        assert_eq!(cookie(&plain).as_deref(), Some(id.as_str()));
        let session = sessions.touch(&id, 1001).unwrap();
        assert_eq!(session.token_hash, "hash");
        assert!(!csrf_matches(&plain, &session.csrf));
        let wrong = headers(&[("cookie", &cookie_header), (CSRF_HEADER, "nope")]);
        assert!(!csrf_matches(&wrong, &session.csrf));
        let right = headers(&[("cookie", &cookie_header), (CSRF_HEADER, &csrf)]);
        assert!(csrf_matches(&right, &session.csrf));
        assert!(changes(&Method::POST) && changes(&Method::DELETE) && !changes(&Method::GET));
        assert!(cookie(&HeaderMap::new()).is_none());
        // Another session's id opens nothing.
        assert!(sessions.touch("0123", 1001).is_none());
    }

    #[test]
    fn sessions_end_when_idle_at_the_latest_and_on_sign_out() {
        let sessions = Sessions::default();
        let (id, _) = sessions.start("hash".into(), 0).unwrap();
        assert!(sessions.touch(&id, IDLE_SECS - 1).is_some());
        // Kept alive by use, still ended at the maximum age.
        let mut now = IDLE_SECS - 1;
        while now + IDLE_SECS / 2 < MAX_SECS {
            now += IDLE_SECS / 2;
            assert!(sessions.touch(&id, now).is_some());
        }
        assert!(sessions.touch(&id, MAX_SECS).is_none());
        let (id, _) = sessions.start("hash".into(), 0).unwrap();
        assert!(sessions.touch(&id, IDLE_SECS).is_none(), "idle too long");
        let (id, _) = sessions.start("hash".into(), 0).unwrap();
        sessions.end(&id);
        assert!(sessions.touch(&id, 1).is_none());
    }

    #[test]
    fn cookie_attributes() {
        let set = set_cookie(Some("abc"), true);
        let text = set.to_str().unwrap();
        for part in [
            "easgate_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!set_cookie(Some("abc"), false)
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(set_cookie(None, false)
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    proptest! {
        #[test]
        fn any_cookie_header_is_handled(value in "[ -~]{0,200}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(header::COOKIE, v);
            }
            let sessions = Sessions::default();
            if let Some(id) = cookie(&h) {
                prop_assert!(sessions.touch(&id, 0).is_none());
            }
        }
    }
}
