//! The JSON Schemas of every shape that crosses a boundary, generated from the types. They
//! live in `schemas/` at the top of the repository, where the Python tests and anyone
//! writing a consumer read them; a test fails when the files are stale
//! (`make schemas` rewrites them).

use schemars::{schema_for, Schema};

use crate::approval::{Approval, Denial};
use crate::audit::AuditRecord;
use crate::notify::ApprovalRequest;
use crate::outcome::{
    ActionRequest, AuditOutput, CloseRequest, MarkOutput, MarkRequest, RunbookOutput, TriageOutput,
};
use crate::release::{ReleaseOutput, ReleasePlan, ReleaseRequest};
use crate::ticket::TicketOutput;

/// `(file stem, schema)` for each boundary, in the order a response crosses them.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("triage-output", schema_for!(TriageOutput)),
        ("approval-request", schema_for!(ApprovalRequest)),
        ("approval-answer", schema_for!(Approval)),
        ("denial-cause", schema_for!(Denial)),
        ("action-request", schema_for!(ActionRequest)),
        ("runbook-output", schema_for!(RunbookOutput)),
        ("ticket-output", schema_for!(TicketOutput)),
        ("close-request", schema_for!(CloseRequest)),
        ("mark-request", schema_for!(MarkRequest)),
        ("mark-output", schema_for!(MarkOutput)),
        ("audit-output", schema_for!(AuditOutput)),
        ("audit-record", schema_for!(AuditRecord)),
        ("release-request", schema_for!(ReleaseRequest)),
        ("release-plan", schema_for!(ReleasePlan)),
        ("release-output", schema_for!(ReleaseOutput)),
    ]
}

/// A schema as its file holds it.
pub fn text(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}
