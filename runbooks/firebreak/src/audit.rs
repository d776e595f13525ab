//! The audit record: what audit-log writes to the audit log group, one per action and one
//! per execution, and what the CLI and the end-to-end tests read back
//! (`schemas/audit-record.json`).

use serde::{Deserialize, Serialize};

use crate::finding::RefusedFinding;
use crate::ids::{AccountId, FindingId, Region};
use crate::outcome::{Change, Failure, OutcomeStatus};
use crate::plan::{Playbook, ResourceContext, Skip};
use crate::policy::ActionKind;
use crate::resolution::Resolution;

/// What every record says: which execution, which finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordHeader {
    pub execution_id: String,
    pub finding_id: FindingId,
    pub finding_type: String,
    pub severity: f64,
    pub account_id: AccountId,
    pub region: Region,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum AuditRecord {
    /// One action a runbook took (or checked, or refused).
    Action(ActionRecord),
    /// How the response to one finding ended, with CloudWatch embedded metrics.
    Execution(Box<ExecutionRecord>),
    /// Findings of an input that could not be identified, so have no response of their own.
    Refused(RefusedRecord),
    /// A release an operator asked for: what was put back, or why not.
    Release(Box<ReleaseRecord>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    pub execution_id: String,
    /// What was released, where, as triage verified it.
    pub release: crate::release::ReleasePlan,
    pub outcomes: Vec<crate::release::ReleaseOutcome>,
    pub failures: Vec<Failure>,
    /// How many resources were changed back.
    pub changed: usize,
    /// The comment on the finding's Jira issue, when tickets are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<crate::ticket::TicketOutput>,
    pub finished_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub action: ActionKind,
    pub status: OutcomeStatus,
    pub target: String,
    pub summary: String,
    #[serde(default)]
    pub changes: Vec<Change>,
    pub started_at: String,
    pub finished_at: String,
}

/// One action of the execution record, in short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionSummary {
    pub action: ActionKind,
    pub status: OutcomeStatus,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub resolution: Resolution,
    pub playbooks: Vec<Playbook>,
    pub policy_version: String,
    /// The owner, team and environment of the affected resource.
    #[serde(flatten)]
    pub context: ResourceContext,
    pub actions: Vec<ActionSummary>,
    pub skipped: Vec<Skip>,
    pub failures: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    pub finished_at: String,
    /// The metric values (embedded metric format reads them by these names).
    #[serde(rename = "Resolution")]
    pub metric_resolution: Resolution,
    #[serde(rename = "ActionsTaken")]
    pub actions_taken: usize,
    #[serde(rename = "ActionsFailed")]
    pub actions_failed: usize,
    /// Always 1: by its `Resolution` dimension, how many responses ended each way (the
    /// CDK app alarms on `refused`).
    #[serde(rename = "Responses", default = "one")]
    pub responses: u8,
    /// From GuardDuty's first sighting to containment; only for real containments.
    #[serde(
        rename = "ContainmentSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub containment_seconds: Option<f64>,
    /// Who was told: each message notify sent, with its topic and SNS id.
    #[serde(default)]
    pub notifications: Vec<crate::notify::Sent>,
    /// Why nobody could be told, when notify failed after its retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_failure: Option<String>,
    /// 1 when nobody could be told (a metric without dimensions, which the CDK app alarms
    /// on), else 0.
    #[serde(rename = "NotificationsFailed", default)]
    pub notifications_failed: u8,
    /// The approval gate, when the plan had one: why it asked, and who decided what, when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalAudit>,
    /// The response's Jira issue (key, URL, created or commented), or why none was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<crate::ticket::TicketOutput>,
    #[serde(rename = "_aws")]
    pub emf: Emf,
}

/// The gate and its decision, as the execution record keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalAudit {
    pub rule: String,
    pub because: String,
    pub timeout_seconds: u32,
    /// `None` only when the closing steps got no word of the gate (a defect, recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::approval::Decision>,
}

/// Records written before `Responses` existed were one response each too.
fn one() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRecord {
    pub execution_id: String,
    pub refused: Vec<RefusedFinding>,
    pub finished_at: String,
}

/// CloudWatch embedded metric format: the `_aws` member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Emf {
    pub timestamp: i64,
    pub cloud_watch_metrics: Vec<MetricDirective>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDirective {
    pub namespace: String,
    pub dimensions: Vec<Vec<String>>,
    pub metrics: Vec<MetricDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDefinition {
    pub name: String,
    pub unit: String,
}

impl AuditRecord {
    /// The execution that wrote the record.
    pub fn execution_id(&self) -> &str {
        match self {
            AuditRecord::Action(a) => &a.header.execution_id,
            AuditRecord::Execution(e) => &e.header.execution_id,
            AuditRecord::Refused(r) => &r.execution_id,
            AuditRecord::Release(r) => &r.execution_id,
        }
    }
}
