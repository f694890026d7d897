//! Every API call in the audit trail, without a database write per call: calls are counted per
//! token, operation and status, and each token's minute becomes one `api.calls` event when the
//! minute closes (or the server stops), e.g. `37 call(s): GET /api/v1/partnerships 200 ×35;
//! POST /api/v1/devices 201 ×2`. The changes a call makes are audited in detail by the
//! operation itself, in its own transaction; this is the record of who called what, reads
//! included.
//!
//! Written by the gateway's flush task (once a second), so no request waits on the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use easgate_store::{Ctx, Store};

/// The audit action of a token's calls in one minute.
pub const CALLS_EVENT: &str = "api.calls";
/// Distinct operations counted per token and minute; more are counted as `other`.
const MAX_KINDS: usize = 64;

struct Minute {
    minute: i64,
    total: u64,
    counts: BTreeMap<String, u64>,
}

/// Calls counted and not yet written.
#[derive(Default)]
pub struct CallLog {
    open: Mutex<HashMap<String, Minute>>,
    closed: Mutex<Vec<(String, Minute)>>,
}

impl CallLog {
    /// Count one call of `token`: `operation` is the method and route template.
    pub fn note(&self, token: &str, operation: &str, status: u16, now: i64) {
        let minute = now.div_euclid(60);
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let entry = open.entry(token.to_string()).or_insert_with(|| Minute {
            minute,
            total: 0,
            counts: BTreeMap::new(),
        });
        if entry.minute != minute {
            let done = std::mem::replace(
                entry,
                Minute {
                    minute,
                    total: 0,
                    counts: BTreeMap::new(),
                },
            );
            if let Ok(mut closed) = self.closed.lock() {
                closed.push((token.to_string(), done));
            }
        }
        entry.total += 1;
        let key = format!("{operation} {status}");
        if entry.counts.len() < MAX_KINDS || entry.counts.contains_key(&key) {
            *entry.counts.entry(key).or_default() += 1;
        } else {
            *entry.counts.entry("other".into()).or_default() += 1;
        }
    }

    /// Write the minutes that have closed by `now` (every open one with `all`, at shutdown).
    /// What cannot be written stays for the next attempt.
    pub async fn flush(&self, store: &dyn Store, now: i64, all: bool) -> easgate_store::Result<()> {
        let minute = now.div_euclid(60);
        let mut due = match self.closed.lock() {
            Ok(mut closed) => std::mem::take(&mut *closed),
            Err(_) => return Ok(()),
        };
        if let Ok(mut open) = self.open.lock() {
            let ended: Vec<String> = open
                .iter()
                .filter(|(_, m)| all || m.minute < minute)
                .map(|(token, _)| token.clone())
                .collect();
            for token in ended {
                if let Some(m) = open.remove(&token) {
                    due.push((token, m));
                }
            }
        }
        while let Some((token, m)) = due.pop() {
            let detail = format!(
                "{} call(s) in the minute from {}: {}",
                m.total,
                easgate_ops::time_fmt::rfc3339(m.minute * 60),
                m.counts
                    .iter()
                    .map(|(op, n)| format!("{op} ×{n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            let ctx = Ctx {
                actor: format!("token:{token}"),
                now,
            };
            if let Err(e) = store
                .record_event(&ctx, CALLS_EVENT, "token", &token, &detail)
                .await
            {
                if let Ok(mut closed) = self.closed.lock() {
                    closed.push((token, m));
                    closed.extend(due);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_closes_when_the_next_begins() {
        let log = CallLog::default();
        log.note("intune", "POST /api/v1/devices", 201, 120);
        log.note("intune", "POST /api/v1/devices", 201, 150);
        log.note("intune", "GET /api/v1/cas", 200, 179);
        log.note("intune", "GET /api/v1/cas", 200, 180);
        let closed = log.closed.lock().unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1.total, 3);
        assert_eq!(closed[0].1.counts["POST /api/v1/devices 201"], 2);
    }
}
