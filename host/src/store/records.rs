//! The records the service stores. Every field added later gets a serde default, so files
//! written by an older build keep loading.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_rules::{CalendarSpec, Decision, Party, SlaClocks, Ticket, TicketEvent};

use crate::limits::{Limits, RuleLimits, Toolchain, ToolchainLimits};
use crate::store::aggregates::Share;

/// What a key may do on one tenant. Ordered: each role may do what the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Create tickets and post events (and read).
    Intake,
    /// MSP engineer: upload and test rules, tickets, events, read.
    Operator,
    /// Internal IT: approve and activate rules; calendars, config, settings, keys, audit.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Intake, Role::Operator, Role::Admin];

    /// The role's API name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Intake => "intake",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (its API name).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Tenant settings (`PUT …/settings`); every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The decision applied when the rule fails or no rule is active; `None` uses the
    /// built-in fallback (queue `triage`, MSP tier 1, priority from impact × urgency, SLA
    /// targets by priority on `24x7`).
    pub fallback: Option<Decision>,
    /// Statuses in which SLA clocks pause.
    pub paused_statuses: Vec<String>,
    /// Sandbox limits for this tenant's native rules (Rust, and any toolchain not
    /// recognised).
    pub limits: Limits,
    /// Sandbox limits for JavaScript and Python rules, whose runtimes need more room; each
    /// written as changes over that toolchain's defaults.
    pub toolchain_limits: ToolchainLimits,
    /// Four-eyes approval: the uploader of a version may not approve it, and only approved
    /// versions may be activated.
    pub four_eyes: bool,
    /// A running clock is "at risk" from this percentage of its target on (1–100).
    #[schema(minimum = 1, maximum = 100)]
    pub at_risk_percent: u8,
    /// Approval needs a replay: a version that was never replayed over the stored history
    /// (`POST …/rules/{v}/replay`) cannot be approved.
    pub require_replay: bool,
}

impl Settings {
    /// The limits of every toolchain.
    pub fn rule_limits(&self) -> RuleLimits {
        RuleLimits::new(self.limits, self.toolchain_limits)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            fallback: None,
            paused_statuses: vec!["pending_customer".into(), "pending_vendor".into()],
            limits: Limits::default(),
            toolchain_limits: ToolchainLimits::default(),
            four_eyes: true,
            at_risk_percent: 75,
            require_replay: false,
        }
    }
}

/// A tenant and everything its admins configure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant id (URL-safe).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Settings.
    #[serde(default)]
    pub settings: Settings,
    /// Key/value config handed to rules.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Calendars by id (`24x7` is built in and not stored).
    #[serde(default)]
    pub calendars: BTreeMap<String, CalendarSpec>,
    /// The active rule version.
    #[serde(default)]
    pub active: Option<u32>,
    /// Versions active before, oldest first (the rollback stack).
    #[serde(default)]
    pub history: Vec<u32>,
    /// The last rule version number given out.
    #[serde(default)]
    pub last_version: u32,
    /// The last audit sequence number given out.
    #[serde(default)]
    pub last_audit: u64,
    /// The last replay sequence number given out.
    #[serde(default)]
    pub last_replay: u64,
    /// Bumped on every change, so caches keep the newest.
    #[serde(default)]
    pub revision: u64,
    /// The admin key that asked to turn four-eyes approval off, waiting for a second admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub four_eyes_off_requested_by: Option<String>,
}

impl TenantRecord {
    /// A new tenant `id` named `name`, made at `now`: default settings, no config, calendars
    /// or rules yet.
    pub fn new(id: &str, name: &str, now: Timestamp) -> Self {
        TenantRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now,
            settings: Settings::default(),
            config: BTreeMap::new(),
            calendars: BTreeMap::new(),
            active: None,
            history: Vec::new(),
            last_version: 0,
            last_audit: 0,
            last_replay: 0,
            revision: 1,
            four_eyes_off_requested_by: None,
        }
    }
}

/// An API key. The secret is never stored, only its sha256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public key id (the part of the key before the dot).
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Hex sha256 of the secret part.
    pub secret_sha256: String,
    /// Role per tenant.
    pub grants: BTreeMap<String, Role>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Bumped on every change.
    #[serde(default)]
    pub revision: u64,
}

/// Where a rule version is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Accepted by the checks that need no compiling; being compiled and started on a sample
    /// ticket. It cannot be approved, tested or activated yet.
    Compiling,
    /// Compiled, but it could not start within its limits (or failed to compile); `error`
    /// says why. It can never be approved.
    Failed,
    /// Compiled and ready; with four-eyes on it waits for another admin's approval.
    Uploaded,
    /// Approved by an admin other than the uploader.
    Approved,
    /// The version that routes tickets now.
    Active,
    /// Was active; kept for rollback.
    Retired,
}

/// Why a version failed after upload: the same code and message an upload refused at once
/// would have had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadFailure {
    /// Machine-readable code, e.g. `cannot_start`, `compile_budget`.
    pub code: String,
    /// What went wrong, in words.
    pub message: String,
}

/// One uploaded rule version.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleRecord {
    /// Version number, from 1.
    pub version: u32,
    /// Hex sha256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: usize,
    /// Contract version it implements.
    pub contract: String,
    /// Lifecycle status.
    pub status: RuleStatus,
    /// The toolchain that built it, which chooses its limits.
    #[serde(default)]
    pub toolchain: Toolchain,
    /// Why it `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LoadFailure>,
    /// When it finished compiling (`uploaded` or `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ready_at: Option<Timestamp>,
    /// Key id that uploaded it.
    pub uploaded_by: String,
    /// Upload time.
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: Timestamp,
    /// Key id that approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// Approval time.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub approved_at: Option<Timestamp>,
    /// Last activation time.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<Timestamp>,
    /// The latest replay of this version over the stored history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_replay: Option<ReplayBrief>,
}

/// What a rule version's latest replay found, kept on the version for its approvers; the
/// whole summary is `GET …/replays/{replay_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayBrief {
    /// The replay's id.
    pub replay_id: String,
    /// When it ran.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Key id that ran it.
    pub by: String,
    /// What it was compared with: `active` (then the version number), `stored`, or a
    /// version.
    pub against: String,
    /// Tickets evaluated.
    pub evaluated: u64,
    /// Tickets that would have been routed differently.
    pub changed: u64,
    /// Tickets on which the candidate failed (and the fallback would have applied).
    pub failed: u64,
    /// Whether it ran to its `limit` or the end of the history (not stopped by its time
    /// budget).
    #[serde(default)]
    pub complete: bool,
    /// Whether it was limited to named tickets.
    #[serde(default)]
    pub named: bool,
}

impl ReplayBrief {
    /// Whether it satisfies the tenant setting `require_replay`: run to its end over the
    /// history, not limited to named tickets.
    pub fn counts_for_approval(&self) -> bool {
        self.complete && !self.named
    }
}

/// How a ticket's decision came about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleOutcome {
    /// Rule version evaluated (`None`: no active rule).
    pub version: Option<u32>,
    /// Fuel used.
    pub fuel: u64,
    /// Whether the fallback decision applies.
    pub fallback: bool,
    /// Why the rule failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RuleFailure>,
}

/// A rule failure as stored on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleFailure {
    /// Stable kind (`fuel_exhausted`, `rule_error`, …).
    pub kind: String,
    /// What happened, with tenant, version, ticket and the numbers.
    pub message: String,
}

/// One event applied to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who posted it (key id).
    pub by: String,
    /// Details (new status, new priority, changed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// A ticket with its routing and SLA clocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRecord {
    /// The ticket.
    pub ticket: Ticket,
    /// The decision in force.
    pub decision: Decision,
    /// How the decision was made.
    pub rule: RuleOutcome,
    /// SLA clocks.
    pub sla: SlaClocks,
    /// Events applied, oldest first.
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// Keys of this ticket's pending timers in the timers table.
    #[serde(default)]
    pub timers: Vec<String>,
    /// The key of its row in the open-clock index, while it has an open clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// Escalations and breaches already fired.
    #[serde(default)]
    pub fired: Vec<FiredRecord>,
    /// Who held it before each change of holder (an `assigned` event, or a re-route that
    /// moved the party or queue), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoffs: Vec<Handoff>,
    /// The input the decision in force was made on (the creation, or the latest event that
    /// re-ran the rule), so the ticket can be evaluated again by a replay. Tickets stored
    /// before it was kept have none and are not replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_on: Option<TicketEvent>,
    /// What it adds to the report aggregates (see `reports`), so that its next change
    /// subtracts exactly that. Tickets stored before reports had none until the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Share>,
}

impl TicketRecord {
    /// Who held it at `at`: the holder after the last handoff at or before `at`, else the
    /// first holder.
    pub fn holder_at(&self, at: Timestamp) -> Holder {
        match self.handoffs.iter().rev().find(|h| h.at <= at) {
            Some(h) => h.to.clone(),
            None => self
                .handoffs
                .first()
                .map_or_else(|| Holder::of(&self.decision), |h| h.from.clone()),
        }
    }
}

/// Who holds a ticket: a party and its queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holder {
    /// The party.
    pub party: Party,
    /// The queue.
    pub queue: String,
}

impl Holder {
    /// Who `decision` gives the ticket to.
    pub fn of(decision: &Decision) -> Holder {
        Holder {
            party: decision.party,
            queue: decision.queue.clone(),
        }
    }
}

/// A change of who holds a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Handoff {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who held it.
    pub from: Holder,
    /// Who holds it since.
    pub to: Holder,
    /// Who moved it: the key id of an `assigned` event, or `rule` for a re-route.
    pub by: String,
}

/// An escalation or breach that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredRecord {
    /// Which timer (`escalation/<step fingerprint>/<run>` or `breach/<metric>/<run>`).
    pub name: String,
    /// When it was due.
    pub due: Timestamp,
    /// When it fired.
    pub at: Timestamp,
}

/// One administrative action.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Sequence number within the tenant, from 1.
    pub seq: u64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who: key id (`platform-admin` for the platform token).
    pub key_id: String,
    /// What, e.g. `rule.approve`.
    pub action: String,
    /// On what, e.g. `rules/3`.
    pub target: String,
    /// Module sha256, for rule actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Figures of the action, e.g. a replay's id and counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// A signing secret of a webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    /// `whsec_…`.
    pub secret: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// After a rotation, when the old secret stops signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// Endpoint id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Event types it receives.
    pub events: Vec<String>,
    /// Signing secrets, newest first.
    pub secrets: Vec<SecretRecord>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A tenant's cron schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Schedule id.
    pub id: String,
    /// The cron expression as written.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// What it produces: `sla.digest` or `heartbeat`.
    pub event: String,
    /// Off: kept, but never fires.
    pub enabled: bool,
    /// The next fire; `None` when it will not fire again (or is disabled).
    pub next: Option<Timestamp>,
    /// The scheduled instant of the last fire.
    #[serde(default)]
    pub last_scheduled_for: Option<Timestamp>,
    /// When the last fire happened.
    #[serde(default)]
    pub last_fired_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change by an admin.
    pub updated_at: Timestamp,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; only a manual retry sends it again.
    Dead,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// HTTP status, when the receiver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// One message to one endpoint, from the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    /// Standard Webhooks `webhook-id`, stable across retries.
    pub id: String,
    /// Endpoint id.
    pub endpoint: String,
    /// Event type.
    pub event: String,
    /// The exact body sent (signed as is).
    pub body: String,
    /// When the event happened.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// State.
    pub state: DeliveryState,
    /// Attempts so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    /// When the next attempt is due (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
}
