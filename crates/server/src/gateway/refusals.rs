//! Access refusals and possible spoofs in the audit trail, aggregated per device and cause per
//! minute: a phone retrying every second leaves two events a minute (its first refusal at
//! once, the rest counted when the minute closes), not sixty.
//!
//! Written by the partnership flush task, so no request waits on the database.

use std::collections::HashMap;
use std::sync::Mutex;

use easgate_store::{Ctx, Store};

/// The audit action of a refusal (`detail` names the cause).
pub const REFUSE_EVENT: &str = "gateway.refuse";
/// The audit action of a request that named a bound DeviceId without its certificate.
pub const SPOOF_EVENT: &str = "gateway.possible-spoof";

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    device: String,
    user: String,
    cause: &'static str,
}

struct Tally {
    /// The minute (Unix time / 60) this tally counts.
    minute: i64,
    count: u64,
    /// How many of `count` are in the trail already.
    written: u64,
    reason: String,
    event: &'static str,
}

impl Tally {
    /// A minute's first refusal.
    fn first(minute: i64, reason: &dyn std::fmt::Display, spoof: bool) -> Self {
        Tally {
            minute,
            count: 1,
            written: 0,
            reason: reason.to_string(),
            event: event(spoof),
        }
    }
}

/// Refusals seen and not yet (all) written.
#[derive(Default)]
pub struct RefusalLog {
    tallies: Mutex<HashMap<Key, Tally>>,
    /// Refusals per (minute, cause) of the last hour, for the console's dashboard.
    recent: Mutex<HashMap<(i64, &'static str), u64>>,
}

/// How many minutes [`RefusalLog::last_hour`] looks back.
const RECENT_MINUTES: i64 = 60;

/// An audit event waiting to be written.
struct Pending {
    event: &'static str,
    device: String,
    detail: String,
}

impl RefusalLog {
    /// Count one refusal (or, with `spoof`, one possible spoof) of `device` for `cause`.
    pub fn note(
        &self,
        device: &str,
        user: &str,
        cause: &'static str,
        reason: &dyn std::fmt::Display,
        spoof: bool,
        now: i64,
    ) {
        let minute = now.div_euclid(60);
        if !spoof {
            if let Ok(mut recent) = self.recent.lock() {
                *recent.entry((minute, cause)).or_default() += 1;
                if recent.len() > 4 * RECENT_MINUTES as usize {
                    recent.retain(|(m, _), _| *m > minute - RECENT_MINUTES);
                }
            }
        }
        let Ok(mut tallies) = self.tallies.lock() else {
            return;
        };
        let key = Key {
            device: device.to_ascii_lowercase(),
            user: user.to_ascii_lowercase(),
            cause,
        };
        match tallies.get_mut(&key) {
            Some(t) if t.minute == minute => t.count += 1,
            // A tally of an earlier minute not yet written: the flush writes both.
            Some(t) if t.count > t.written => {
                let closed = std::mem::replace(t, Tally::first(minute, reason, spoof));
                // Keep the closed minute under a key of its own until it is written.
                let mut old_key = key.clone();
                old_key.device.push_str(&format!("\n{}", closed.minute));
                tallies.insert(old_key, closed);
            }
            _ => {
                tallies.insert(key, Tally::first(minute, reason, spoof));
            }
        }
    }

    /// Refusals this instance made in the hour before `now`, per cause, most first.
    pub fn last_hour(&self, now: i64) -> Vec<(&'static str, u64)> {
        let minute = now.div_euclid(60);
        let mut by_cause: HashMap<&'static str, u64> = HashMap::new();
        if let Ok(recent) = self.recent.lock() {
            for ((m, cause), n) in recent.iter() {
                if *m > minute - RECENT_MINUTES && *m <= minute {
                    *by_cause.entry(cause).or_default() += n;
                }
            }
        }
        let mut counts: Vec<_> = by_cause.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
    }

    /// The events due at `now`: each tally's first refusal, and what a closed minute counted
    /// since. Closed, fully written tallies are forgotten.
    fn due(&self, now: i64) -> Vec<Pending> {
        let minute = now.div_euclid(60);
        let Ok(mut tallies) = self.tallies.lock() else {
            return Vec::new();
        };
        let mut due = Vec::new();
        for (key, t) in tallies.iter_mut() {
            let closed = t.minute < minute;
            if t.count > t.written && (t.written == 0 || closed) {
                let n = t.count - t.written;
                let device = key
                    .device
                    .split('\n')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let when = easgate_ops::time_fmt::rfc3339(t.minute * 60);
                let detail = if t.written == 0 {
                    format!(
                        "user {}, {}: {} ({n} in the minute from {when}{})",
                        key.user,
                        key.cause,
                        t.reason,
                        if closed {
                            ""
                        } else {
                            "; more this minute are counted and written when it ends"
                        }
                    )
                } else {
                    format!(
                        "user {}, {}: {n} more in the minute from {when}: {}",
                        key.user, key.cause, t.reason
                    )
                };
                due.push(Pending {
                    event: t.event,
                    device,
                    detail,
                });
                t.written = t.count;
            }
        }
        tallies.retain(|_, t| t.minute >= minute || t.count > t.written);
        due
    }

    /// Write what is due to the audit trail. On a failure the events are dropped with a
    /// warning (the log and metrics still have every refusal).
    pub async fn flush(&self, store: &dyn Store, now: i64) -> easgate_store::Result<()> {
        let ctx = Ctx {
            actor: "gateway".into(),
            now,
        };
        for p in self.due(now) {
            store
                .record_event(&ctx, p.event, "eas_device", &p.device, &p.detail)
                .await?;
        }
        Ok(())
    }
}

fn event(spoof: bool) -> &'static str {
    if spoof {
        SPOOF_EVENT
    } else {
        REFUSE_EVENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hour_counts_refusals_by_cause() {
        let log = RefusalLog::default();
        let start: i64 = 30_000_000 * 60;
        for i in 0..5 {
            log.note("A", "u", "certificate-revoked", &"r", false, start + i);
        }
        log.note("B", "u", "user-disabled", &"d", false, start + 30);
        // A possible spoof is not a refusal by cause.
        log.note("C", "u", "spoof", &"s", true, start + 30);
        log.note("D", "u", "user-disabled", &"d", false, start + 61 * 60);
        assert_eq!(
            log.last_hour(start + 59 * 60),
            vec![("certificate-revoked", 5), ("user-disabled", 1)]
        );
        // An hour later only the newest is left.
        assert_eq!(log.last_hour(start + 61 * 60), vec![("user-disabled", 1)]);
    }

    #[test]
    fn a_device_retrying_every_second_leaves_two_events_a_minute() {
        let log = RefusalLog::default();
        let start: i64 = 30_000_000 * 60;
        let mut events = Vec::new();
        for second in 0..180 {
            log.note(
                "PHONE1",
                "alice@corp.example",
                "certificate-revoked",
                &"revoked",
                false,
                start + second,
            );
            events.extend(log.due(start + second));
        }
        events.extend(log.due(start + 180));
        assert_eq!(
            events.len(),
            6,
            "{:?}",
            events.iter().map(|e| &e.detail).collect::<Vec<_>>()
        );
        // Each minute: its first refusal at once, the other 59 when it closes.
        let firsts = events
            .iter()
            .filter(|e| e.detail.contains("(1 in the minute"));
        let rests = events
            .iter()
            .filter(|e| e.detail.contains(": 59 more in the minute"));
        assert_eq!((firsts.count(), rests.count()), (3, 3));
        assert!(events
            .iter()
            .all(|e| e.device == "phone1" && e.event == REFUSE_EVENT));
        // Every refusal is counted once.
        let counted: u64 = events
            .iter()
            .map(|e| {
                let d = &e.detail;
                let n = if let Some(i) = d.find(" more in") {
                    d[..i].rsplit(' ').next().unwrap()
                } else {
                    d[d.find("(").unwrap() + 1..].split(' ').next().unwrap()
                };
                n.parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(counted, 180);
        // Another cause of the same device is its own tally.
        log.note(
            "PHONE1",
            "alice@corp.example",
            "user-disabled",
            &"disabled",
            false,
            start + 200,
        );
        log.note(
            "PHONE1",
            "alice@corp.example",
            "possible-spoof",
            &"spoof",
            true,
            start + 200,
        );
        let due = log.due(start + 200);
        assert_eq!(due.len(), 2);
        assert!(due.iter().any(|e| e.event == SPOOF_EVENT));
        assert!(log.due(start + 400).is_empty());
    }
}
