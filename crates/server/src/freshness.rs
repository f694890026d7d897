//! How current this instance's in-memory state is: the gateway and the OCSP responder decide
//! from memory, refreshed from the store's change feed. While the database is unreachable that
//! memory may miss a revocation made through another instance, so its age is tracked here and,
//! beyond `--max-staleness`, the gateway refuses managed devices of our CAs (fail closed) until
//! the store answers again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct StoreFreshness {
    origin: Instant,
    /// Milliseconds after `origin` of the last confirmation.
    confirmed_ms: AtomicU64,
    max_staleness: Duration,
    /// Set while the state is known to be too old (for one loud log line per outage).
    stale: AtomicBool,
}

/// What changed with a confirmation or a failed refresh, for the caller to log once.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// The snapshot just went past `--max-staleness`.
    BecameStale,
    /// The store answered again after the snapshot had gone stale.
    Recovered,
}

impl StoreFreshness {
    /// Fresh as of now (the state was just loaded from the store).
    pub fn new(max_staleness: Duration) -> Self {
        StoreFreshness {
            origin: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            max_staleness,
            stale: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The in-memory state is current with the store as of now.
    pub fn confirm(&self) -> Transition {
        self.confirmed_ms.store(self.now_ms(), Ordering::Relaxed);
        if self.stale.swap(false, Ordering::Relaxed) {
            Transition::Recovered
        } else {
            Transition::None
        }
    }

    /// A refresh failed: whether that made the state stale just now.
    pub fn refresh_failed(&self) -> Transition {
        if self.is_stale() && !self.stale.swap(true, Ordering::Relaxed) {
            Transition::BecameStale
        } else {
            Transition::None
        }
    }

    /// Time since the last confirmation.
    pub fn age(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.confirmed_ms.load(Ordering::Relaxed)),
        )
    }

    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// Older than `--max-staleness`: decisions that need the store's truth must refuse.
    pub fn is_stale(&self) -> bool {
        self.age() > self.max_staleness
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_stale_past_the_limit_and_recovers_on_confirmation() {
        let f = StoreFreshness::new(Duration::from_millis(30));
        assert!(!f.is_stale());
        assert_eq!(f.refresh_failed(), Transition::None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(f.is_stale());
        assert_eq!(f.refresh_failed(), Transition::BecameStale);
        assert_eq!(f.refresh_failed(), Transition::None, "reported once");
        assert_eq!(f.confirm(), Transition::Recovered);
        assert!(!f.is_stale());
        assert_eq!(f.confirm(), Transition::None);
    }
}
