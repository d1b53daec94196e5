//! The export: a tenant's stored routing inputs as NDJSON, so that `switchboard rules replay`
//! runs the service's replay on a laptop over production history.

use std::ops::ControlFlow;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_rules::{Decision, TicketEvent};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::Replays;
use super::history::{self, Order, Period};
use crate::refusal::Refusal;
use crate::store::StoreError;
use crate::store::records::{RuleOutcome, TicketRecord};
use crate::tenants::TenantView;

/// Exports streaming at once, across tenants: each holds a blocking thread while its client
/// reads.
pub const MAX_EXPORTS: usize = 4;

/// One line of `GET …/tickets/export`: what a replay needs of one stored ticket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportLine {
    /// Ticket id.
    pub id: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The input its decision in force was made on.
    pub routed_on: TicketEvent,
    /// The decision in force.
    pub decision: Decision,
    /// How that decision was made (version, fuel, fallback, error).
    pub rule: RuleOutcome,
}

impl ExportLine {
    /// The line for `record`, if it keeps its routing input.
    pub fn of(record: TicketRecord) -> Option<ExportLine> {
        Some(ExportLine {
            id: record.ticket.id,
            created_at: record.ticket.created_at,
            routed_on: record.routed_on?,
            decision: record.decision,
            rule: record.rule,
        })
    }
}

impl Replays {
    /// Streams the tenant's stored routing inputs created in `period`, oldest first, as
    /// NDJSON ([`ExportLine`]) in chunks of about 64 KiB, read a batch per read transaction
    /// on a blocking thread. Tickets stored before routing inputs were kept are left out. The
    /// stream ends early (with an error item) if the store fails, and the reading stops when
    /// the receiver is dropped. At most [`MAX_EXPORTS`] run at once (`409 export_busy`).
    pub fn export(
        &self,
        view: &TenantView,
        period: Period,
    ) -> Result<mpsc::Receiver<Result<Bytes, StoreError>>, Refusal> {
        const CHUNK: usize = 64 << 10;
        let permit = self.exports.clone().try_acquire_owned().map_err(|_| {
            Refusal::conflict(
                "export_busy",
                format!("{MAX_EXPORTS} exports are running; retry when one finishes"),
            )
        })?;
        let (tx, rx) = mpsc::channel(4);
        let (store, tenant) = (self.store.clone(), view.record.id.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buf = Vec::with_capacity(CHUNK + 4096);
            let mut gone = false;
            let read = history::for_each(&store, &tenant, period, Order::OldestFirst, |record| {
                let Some(line) = ExportLine::of(record) else {
                    return ControlFlow::Continue(());
                };
                serde_json::to_writer(&mut buf, &line).expect("export lines serialize");
                buf.push(b'\n');
                if buf.len() >= CHUNK {
                    let chunk = Bytes::from(std::mem::take(&mut buf));
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        gone = true;
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            if gone {
                return;
            }
            let last = match read {
                Ok(()) => Ok(Bytes::from(buf)),
                Err(e) => {
                    tracing::error!(error = %e, "the export failed");
                    Err(e)
                }
            };
            let _ = tx.blocking_send(last);
        });
        Ok(rx)
    }
}
