//! How current this instance's in-memory state is: the gateway and the OCSP responder decide
//! from memory, refreshed from the store's change feed. While the database is unreachable that
//! memory may miss a revocation made through another instance, so its age is tracked here and,
//! beyond `--max-staleness`, the gateway refuses managed devices of our CAs (fail closed) until
//! the store answers again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{error, info};

pub struct StoreFreshness {
    origin: Instant,
    /// Milliseconds after `origin` of the last confirmation.
    confirmed_ms: AtomicU64,
    max_staleness: Duration,
    /// Set once the state was found too old (for one loud log line per outage).
    stale: AtomicBool,
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

    /// The in-memory state is current with the store as of now; whether it had gone stale
    /// (then said in the log).
    pub fn confirm(&self) -> bool {
        let was_stale = self.stale.swap(false, Ordering::Relaxed) || self.is_too_old();
        let age = self.age();
        self.confirmed_ms.store(self.now_ms(), Ordering::Relaxed);
        if was_stale {
            info!(
                unreachable_seconds = age.as_secs(),
                "the store answers again: the gateway decides from current state"
            );
        }
        was_stale
    }

    /// Whether the state is older than `--max-staleness`, so decisions that need the store's
    /// truth must refuse. The first time it is in an outage, says so loudly.
    pub fn check_stale(&self) -> bool {
        if !self.is_too_old() {
            return false;
        }
        if !self.stale.swap(true, Ordering::Relaxed) {
            error!(
                age_seconds = self.age().as_secs(),
                "the store has been unreachable beyond --max-staleness ({:?}): the gateway \
                 refuses managed devices of our CAs until it answers again",
                self.max_staleness
            );
        }
        true
    }

    fn is_too_old(&self) -> bool {
        self.age() > self.max_staleness
    }

    /// Time since the last confirmation.
    pub fn age(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.confirmed_ms.load(Ordering::Relaxed)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_stale_past_the_limit_and_recovers_on_confirmation() {
        let f = StoreFreshness::new(Duration::from_millis(30));
        assert!(!f.check_stale());
        assert!(!f.confirm(), "fresh: nothing to recover from");
        std::thread::sleep(Duration::from_millis(60));
        assert!(f.check_stale());
        assert!(f.check_stale(), "stays stale until confirmed");
        assert!(f.confirm());
        assert!(!f.check_stale());
        assert!(!f.confirm());
        // Recovering counts even when nothing checked during the outage.
        std::thread::sleep(Duration::from_millis(60));
        assert!(f.confirm());
    }
}
