//! What crosses the boundaries between triage, the runbooks, the closing steps and the
//! CLI: the request every action runbook takes, the one result shape they all return, and
//! the request and answers of the closing steps. Their JSON Schemas are in `schemas/`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::finding::{InputKind, RefusedFinding};
use crate::plan::{Plan, Playbook};
use crate::policy::ActionKind;
use crate::resolution::Resolution;

/// What triage hands the response machine: one plan per finding it could identify, and
/// the findings it refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriageOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    pub input_kind: InputKind,
    pub drill: bool,
    pub dry_run: bool,
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub refused: Vec<RefusedFinding>,
}

/// The request every action runbook takes: the plan triage made, and who is running it.
/// The runbook acts only on its own action in the plan; it never reads the raw event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRequest {
    pub plan: Plan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeStatus {
    /// Changed the account.
    Done,
    /// Everything was already as the action wants it: a re-run changes nothing.
    AlreadyDone,
    /// Dry run: the calls were checked (EC2 `DryRun`), nothing changed.
    DryRun,
    /// The plan did not ask for this action.
    NotPlanned,
    /// Planned, but what the runbook found in AWS makes it unsafe or impossible (a
    /// service-linked role, a key that is not the user's, a full rule band): nothing
    /// changed, the reason is in the summary, and the finding is left for an analyst.
    Refused,
}

impl OutcomeStatus {
    /// The name it has in JSON, the audit record and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Done => "done",
            OutcomeStatus::AlreadyDone => "already-done",
            OutcomeStatus::DryRun => "dry-run",
            OutcomeStatus::NotPlanned => "not-planned",
            OutcomeStatus::Refused => "refused",
        }
    }

    /// The account is as the action wants it (or would be, in a dry run).
    pub fn contained(self) -> bool {
        self.in_place() || self == OutcomeStatus::DryRun
    }

    /// The account really is as the action wants it now.
    pub fn in_place(self) -> bool {
        matches!(self, OutcomeStatus::Done | OutcomeStatus::AlreadyDone)
    }
}

/// What every action runbook returns: one outcome per planned action it handles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunbookOutput {
    pub outcomes: Vec<ActionOutcome>,
}

impl RunbookOutput {
    /// The answer of a runbook that handles one action.
    pub fn one(outcome: ActionOutcome) -> RunbookOutput {
        RunbookOutput {
            outcomes: vec![outcome],
        }
    }

    /// Runs `one` for each target in the plan's order (an attack sequence names several),
    /// one outcome each. A failure carries every change the earlier targets made; no
    /// target at all is a `not-planned` outcome saying `none`.
    pub async fn each<T, F, Fut>(
        kind: ActionKind,
        targets: impl IntoIterator<Item = T>,
        none: &str,
        mut one: F,
    ) -> Result<RunbookOutput, crate::error::RunbookError>
    where
        F: FnMut(T) -> Fut,
        Fut: std::future::Future<Output = Result<ActionOutcome, crate::error::RunbookError>>,
    {
        let mut outcomes: Vec<ActionOutcome> = Vec::new();
        for target in targets {
            match one(target).await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    let made: Vec<Change> =
                        outcomes.iter().flat_map(|o| o.changes.clone()).collect();
                    return Err(e.after_changes(&made));
                }
            }
        }
        if outcomes.is_empty() {
            outcomes.push(ActionOutcome::not_planned(kind, none));
        }
        Ok(RunbookOutput { outcomes })
    }
}

/// One resource before and after, for the audit record and the drill report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub resource: String,
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionOutcome {
    pub action: ActionKind,
    pub status: OutcomeStatus,
    pub target: String,
    /// One line for the finding's note.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub finished_at: OffsetDateTime,
}

impl ActionOutcome {
    /// The answer of a runbook whose action the plan does not name: nothing was called.
    pub fn not_planned(action: ActionKind, summary: &str) -> ActionOutcome {
        let now = OffsetDateTime::now_utc();
        ActionOutcome {
            action,
            status: OutcomeStatus::NotPlanned,
            target: String::new(),
            summary: summary.to_owned(),
            changes: Vec::new(),
            started_at: now,
            finished_at: now,
        }
    }
}

/// What a state machine's `Catch` hands on: `{"Error": …, "Cause": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// What one playbook hands back to the response that started it: its outcomes, or the
/// failure its `Catch` caught (with whatever it had done before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookResult {
    pub playbook: Playbook,
    #[serde(default)]
    pub outcomes: Vec<ActionOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Failure {
    /// The reason without the list of changes a runbook made before it failed (that list
    /// is in the audit record): what a 512-character note has room for.
    pub fn reason_in_brief(&self) -> String {
        let reason = self.reason();
        match reason.split_once(" made before the failure: ") {
            Some((head, _)) => {
                format!("{head} made before the failure (listed in the audit record)")
            }
            None => reason,
        }
    }

    /// The reason in one line. A Lambda's `Cause` is its error as JSON
    /// (`{"errorType", "errorMessage"}`), a failed child execution's is its description
    /// (`{"Error", "Cause", …}`): the message inside is what a reader needs.
    pub fn reason(&self) -> String {
        let cause = self.cause.trim();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(cause) {
            if let Some(m) = v.get("errorMessage").and_then(|m| m.as_str()) {
                return m.to_owned();
            }
            if let Some(c) = v.get("Cause").and_then(|c| c.as_str()) {
                let inner = Failure {
                    error: String::new(),
                    cause: c.to_owned(),
                };
                let error = v.get("Error").and_then(|e| e.as_str()).unwrap_or("failed");
                return format!("{error}: {}", inner.reason());
            }
        }
        cause.to_owned()
    }
}

/// The request of the steps that close a response (mark-resolved, audit-log): the plan,
/// what each playbook's runbook returned or how it failed, and for audit-log the closing
/// note's outcome or the failure of writing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseRequest {
    pub plan: Plan,
    /// One per playbook the response ran, in the order they ran.
    #[serde(default)]
    pub results: Vec<PlaybookResult>,
    /// mark-resolved's outcome, handed to audit-log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<ActionOutcome>,
    /// A failure of the closing step itself (mark-resolved after its retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// Who was told (notify's output, or why nobody could be), handed to audit-log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<crate::notify::NotifyOutput>,
    /// How the approval gate ended, when the plan had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::GateRecord>,
    /// The ticket runbook's output (or why it failed), when the plan has a ticket route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<crate::ticket::TicketOutput>,
}

impl CloseRequest {
    /// The gate's line for the note and the message, when the plan had a gate.
    pub fn approval_line(&self) -> Option<String> {
        self.plan
            .approval
            .as_ref()
            .map(|g| crate::approval::describe(g, self.approval.as_ref()))
    }

    /// Who decided, when, and what, for the audit record.
    pub fn approval_decision(&self) -> Option<crate::approval::Decision> {
        self.approval.as_ref().map(|r| r.decision())
    }

    /// Every outcome: each playbook's, in the order they ran, then the closing note's.
    pub fn all_outcomes(&self) -> Vec<ActionOutcome> {
        self.results
            .iter()
            .flat_map(|r| r.outcomes.iter())
            .chain(self.mark.iter())
            .cloned()
            .collect()
    }

    /// The playbooks that ran (whether they succeeded or not).
    pub fn playbooks_run(&self) -> Vec<Playbook> {
        self.results.iter().map(|r| r.playbook).collect()
    }

    /// Every failure: each failed playbook's, named, then the closing step's own.
    pub fn all_failures(&self) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &self.results {
            if let Some(f) = &r.failure {
                out.push(Failure {
                    error: format!("{} playbook: {}", r.playbook.name(), f.error),
                    cause: f.cause.clone(),
                });
            }
        }
        out.extend(self.failure.iter().cloned());
        out
    }

    /// How the response ended: the one answer everyone reads.
    pub fn resolution(&self) -> Resolution {
        Resolution::of(&self.plan, &self.all_outcomes(), &self.all_failures())
    }
}

/// What the response machine hands mark-resolved when triage itself failed (AccessDenied,
/// a broken policy, a timeout): the execution's raw input and the failure. Every finding
/// that can be identified in the input is marked NOTIFIED with the reason; nothing else
/// is done, because nothing was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriageFailureNotice {
    /// The execution's input, exactly as it was started.
    pub input: serde_json::Value,
    pub failure: Failure,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// What mark-resolved is asked: close a response, or tell the findings of an input that
/// triage could not handle. Chosen by the `triageFailed` key, so a malformed close
/// request is refused naming its own missing field.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum MarkRequest {
    TriageFailed {
        #[serde(rename = "triageFailed")]
        triage_failed: TriageFailureNotice,
    },
    /// The release machine's: write on a finding's note what its release put back.
    ReleaseNote {
        #[serde(rename = "releaseNote")]
        release_note: Box<crate::release::ReleaseAuditRequest>,
    },
    Close(Box<CloseRequest>),
}

impl<'de> Deserialize<'de> for MarkRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if let Some(r) = keyed(&value, "releaseNote") {
            return r.map(|r| MarkRequest::ReleaseNote {
                release_note: Box::new(r),
            });
        }
        if let Some(r) = keyed(&value, "triageFailed") {
            return r.map(|triage_failed| MarkRequest::TriageFailed { triage_failed });
        }
        unkeyed(value).map(|c| MarkRequest::Close(Box::new(c)))
    }
}

/// A Lambda's request that is chosen by a key (`{"releaseNote": {…}}`): its body, read as
/// `T`, with an error that names the key; `None` when the key is absent. Choosing by key,
/// not by trying each shape, keeps a malformed request's error about its own field.
pub fn keyed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: &serde_json::Value,
    key: &str,
) -> Option<Result<T, E>> {
    value
        .get(key)
        .map(|body| T::deserialize(body).map_err(|e| E::custom(format!("{key}: {e}"))))
}

/// The request no key chose (a response's close), read whole.
pub fn unkeyed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}

/// mark-resolved's answer: how the response ended, and the note's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkOutput {
    pub resolution: Resolution,
    pub outcome: ActionOutcome,
}

/// audit-log's answer: how the response ended (the state machine routes on it) and how
/// many records were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditOutput {
    pub resolution: Resolution,
    pub records: usize,
    pub log_group: String,
    pub log_stream: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(cause: &str) -> Failure {
        Failure {
            error: "AwsCallFailed".into(),
            cause: cause.into(),
        }
    }

    /// The futures here are ready at once: polled once with a no-op waker.
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("not ready"),
        }
    }

    #[test]
    fn each_target_gets_an_outcome_and_a_failure_carries_the_earlier_changes() {
        let done = |n: u32| ActionOutcome {
            action: ActionKind::IsolateInstance,
            status: OutcomeStatus::Done,
            target: format!("i-{n}"),
            summary: String::new(),
            changes: vec![Change {
                resource: format!("i-{n}"),
                what: "security groups".into(),
                before: "web".into(),
                after: "isolation".into(),
            }],
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        };
        let out = ready(RunbookOutput::each(
            ActionKind::IsolateInstance,
            [1, 2],
            "none",
            |n| async move { Ok(done(n)) },
        ))
        .unwrap();
        assert_eq!(out.outcomes.len(), 2);
        let err = ready(RunbookOutput::each(
            ActionKind::IsolateInstance,
            [1, 2, 3],
            "none",
            |n| async move {
                if n == 3 {
                    Err(crate::error::RunbookError::TargetGone {
                        error_type: "InstanceNotFound",
                        message: "gone".into(),
                    })
                } else {
                    Ok(done(n))
                }
            },
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("2 made before the failure"),
            "{err}"
        );
        let none = ready(RunbookOutput::each(
            ActionKind::IsolateInstance,
            Vec::<u32>::new(),
            "no isolation",
            |n| async move { Ok(done(n)) },
        ))
        .unwrap();
        assert_eq!(none.outcomes[0].status, OutcomeStatus::NotPlanned);
    }

    #[test]
    fn status_names_are_their_json_names() {
        for s in [
            OutcomeStatus::Done,
            OutcomeStatus::AlreadyDone,
            OutcomeStatus::DryRun,
            OutcomeStatus::NotPlanned,
            OutcomeStatus::Refused,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn the_reason_is_the_message_inside_the_cause() {
        assert_eq!(
            failure(r#"{"errorType":"AwsCallFailed","errorMessage":"ec2:X failed: Denied"}"#)
                .reason(),
            "ec2:X failed: Denied"
        );
        let child = serde_json::json!({
            "ExecutionArn": "arn:…",
            "Error": "ResponseFailed",
            "Cause": r#"{"errorType":"InstanceNotFound","errorMessage":"gone"}"#,
        });
        assert_eq!(failure(&child.to_string()).reason(), "ResponseFailed: gone");
        assert_eq!(failure("  plain words ").reason(), "plain words");
        let partly = failure(
            r#"{"errorType":"AwsCallFailed","errorMessage":"ec2:X failed: Denied; 2 made before the failure: vol-1 snapshot: none -> snap-1; i-1 tags: a -> b"}"#,
        );
        assert_eq!(
            partly.reason_in_brief(),
            "ec2:X failed: Denied; 2 made before the failure (listed in the audit record)"
        );
    }
}
