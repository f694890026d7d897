//! Reading the audit trail: the CLI's `audit` and the API's `GET /api/v1/audit` share the
//! store's filtered, paged query.

use easgate_store::{AuditEvent, AuditFilter, PageQuery};

use crate::{Easgate, Result};

/// Events fetched per store query when reading the whole filtered trail.
const BATCH: u32 = 1000;

impl Easgate {
    /// Every event that passes `filter`, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .page_audit(
                    filter,
                    &PageQuery {
                        after,
                        limit: BATCH,
                    },
                )
                .await?;
            let full = page.len() == BATCH as usize;
            after = page.last().map(|ev| ev.id);
            events.extend(page);
            if !full {
                return Ok(events);
            }
        }
    }
}
