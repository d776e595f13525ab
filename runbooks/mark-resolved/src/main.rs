//! mark-resolved: closes the response on the Security Hub finding. The workflow status is
//! the response's resolution (`firebreak::resolution`): RESOLVED only when every planned
//! action succeeded, NOTIFIED with what is missing and why otherwise, the status kept when
//! there was nothing to do. A dry run writes nothing and returns the note it would write.

mod note;
mod ocsf;

use aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};
use aws_sdk_securityhub::Client;
use firebreak::aws::aws_error;
use firebreak::error::RunbookError;
use firebreak::finding::HubFormat;
#[cfg(test)]
use firebreak::outcome::Failure;
use firebreak::outcome::{
    ActionOutcome, Change, CloseRequest, MarkOutput, MarkRequest, OutcomeStatus,
    TriageFailureNotice,
};
use firebreak::policy::ActionKind;
use firebreak::release::{ReleaseAuditRequest, ReleaseOutcome, ReleaseOutput};
use firebreak::resolution::Resolution;
use firebreak::resolution::Workflow;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Who Security Hub shows as the note's author.
const UPDATED_BY: &str = "firebreak";

/// The first pause while the finding is not in Security Hub yet; it doubles up to a cap.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The pauses while a finding has not reached Security Hub yet: `FIRST_PAUSE` doubling to
/// `MAX_PAUSE`, never past the budget.
pub(crate) struct ImportWait {
    since: Instant,
    pause: Duration,
    budget: Duration,
}

impl ImportWait {
    fn new(budget: Duration) -> Self {
        ImportWait {
            since: Instant::now(),
            pause: FIRST_PAUSE,
            budget,
        }
    }

    /// The next pause, or `None` when taking it would pass the budget.
    pub(crate) fn next(&self) -> Option<Duration> {
        (self.since.elapsed() + self.pause <= self.budget).then_some(self.pause)
    }

    pub(crate) async fn take(&mut self) {
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
    }
}

/// How long to wait for GuardDuty's copy of a finding to reach Security Hub, which can lag
/// the EventBridge event by minutes: `FIREBREAK_FINDING_WAIT_SECONDS` (lambda.json sets it,
/// within the function's timeout).
pub fn finding_wait_from_env() -> Duration {
    std::env::var("FIREBREAK_FINDING_WAIT_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::ZERO)
}

pub async fn mark(
    req: CloseRequest,
    hub: &Client,
    finding_wait: Duration,
) -> Result<MarkOutput, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let finding = &req.plan.finding.security_hub;
    let resolution = req.resolution();
    let workflow = resolution.workflow();
    let text = note::compose(
        &req.plan,
        resolution,
        &req.all_outcomes(),
        &req.all_failures(),
        &req.approval_line()
            .into_iter()
            .chain(req.ticket.as_ref().and_then(|t| t.line()))
            .collect::<Vec<_>>(),
    );
    let target = finding.id.to_string();
    let after = format!(
        "{} — {text}",
        workflow
            .map(Workflow::as_str)
            .unwrap_or("(status unchanged)")
    );

    let status = if finding.format == HubFormat::None {
        // A Malware Protection for S3 scan result reaches no Security Hub: there is
        // nothing to mark; the audit record (and this log line) carry the note.
        OutcomeStatus::NotPlanned
    } else if req.plan.dry_run {
        OutcomeStatus::DryRun
    } else if finding.format == HubFormat::Ocsf {
        // The new Security Hub: status and comment by metadata.uid.
        let mut wait = ImportWait::new(finding_wait);
        let refused = ocsf::update(
            hub,
            &[finding.id.to_string()],
            &text,
            workflow.map(ocsf::status_id),
            &mut wait,
        )
        .await?;
        if let Some((_, code)) = refused.first() {
            return Err(RunbookError::TargetGone {
                error_type: if code == "ResourceNotFoundException" {
                    "FindingNotImported"
                } else {
                    "FindingNotUpdated"
                },
                message: format!(
                    "Security Hub did not update OCSF finding {} ({code}) within {:.0} s; no comment or status could be written",
                    finding.id,
                    finding_wait.as_secs_f64()
                ),
            });
        }
        OutcomeStatus::Done
    } else {
        let mut call = note_call(
            hub,
            finding.id.as_str(),
            finding.product_arn.as_str(),
            &text,
        )
        .user_defined_fields("firebreak:resolution", resolution.as_str());
        if let Some(w) = workflow {
            call = call.workflow(
                WorkflowUpdate::builder()
                    .status(WorkflowStatus::from(w.as_str()))
                    .build(),
            );
        }
        if let Some(exec) = &req.execution_id {
            call = call.user_defined_fields("firebreak:execution", field_value(exec));
        }
        // Whose account it is, as fields an analyst can filter and sort on.
        for (key, value) in account_fields(&req.plan)
            .into_iter()
            .chain(approval_fields(&req))
            .chain(ticket_fields(&req))
        {
            call = call.user_defined_fields(key, field_value(&value));
        }
        // Until the finding has reached Security Hub it comes back unprocessed as
        // FindingNotFound: wait with backoff, within the budget, then say so.
        let mut wait = ImportWait::new(finding_wait);
        loop {
            let out = call
                .clone()
                .send()
                .await
                .map_err(|e| aws_error("securityhub:BatchUpdateFindings", e))?;
            let Some(u) = out.unprocessed_findings().first() else {
                break;
            };
            let code = u.error_code().unwrap_or("unknown");
            if code == "FindingNotFound" {
                if let Some(pause) = wait.next() {
                    tracing::info!(
                        execution_id = req.execution_id.as_deref().unwrap_or(""),
                        finding_id = %finding.id,
                        action = "mark-resolved",
                        pause_ms = pause.as_millis() as u64,
                        "the finding is not in Security Hub yet; waiting"
                    );
                    wait.take().await;
                    continue;
                }
                return Err(RunbookError::TargetGone {
                    error_type: "FindingNotImported",
                    message: format!(
                        "Security Hub has not imported finding {} within {:.0} s of waiting (FindingNotFound); no note or status could be written",
                        finding.id,
                        finding_wait.as_secs_f64()
                    ),
                });
            }
            return Err(RunbookError::TargetGone {
                error_type: "FindingNotUpdated",
                message: format!(
                    "Security Hub did not update finding {}: {code} {}",
                    finding.id,
                    u.error_message().unwrap_or("")
                ),
            });
        }
        OutcomeStatus::Done
    };
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id = %finding.id,
        action = "mark-resolved",
        resolution = resolution.as_str(),
        workflow = workflow.map(Workflow::as_str).unwrap_or("unchanged"),
        status = status.as_str(),
        "{text}"
    );
    Ok(MarkOutput {
        resolution,
        outcome: ActionOutcome {
            action: ActionKind::MarkResolved,
            status,
            target: target.clone(),
            summary: match (status, workflow) {
                (OutcomeStatus::NotPlanned, _) => format!(
                    "no Security Hub finding to mark (a malware scan result is an event only); {}: the audit record keeps the note",
                    workflow.map(Workflow::as_str).unwrap_or("note only")
                ),
                (OutcomeStatus::DryRun, _) => "dry run: would write the note".into(),
                (_, Some(w)) => format!("finding marked {}", w.as_str()),
                (_, None) => "note written on the finding".into(),
            },
            changes: if status == OutcomeStatus::NotPlanned {
                Vec::new()
            } else {
                vec![Change {
                    resource: target,
                    what: "workflow and note".into(),
                    before: "as found".into(),
                    after,
                }]
            },
            started_at,
            finished_at: OffsetDateTime::now_utc(),
        },
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let hub = Client::new(&sdk);
    let finding_wait = finding_wait_from_env();
    // The deployment-wide dry run (triage forces it on every plan; here there is none).
    let force_dry_run = std::env::var("FIREBREAK_DRY_RUN").is_ok_and(|v| v == "true");
    firebreak::runtime::serve("mark-resolved", |req: MarkRequest| {
        let hub = &hub;
        async move {
            match req {
                MarkRequest::Close(req) => mark(*req, hub, finding_wait).await.map(Answer::Mark),
                MarkRequest::TriageFailed { triage_failed } => {
                    notify_triage_failure(triage_failed, hub, finding_wait, force_dry_run)
                        .await
                        .map(Answer::Mark)
                }
                MarkRequest::ReleaseNote { release_note } => {
                    note_release(&release_note, hub).await.map(Answer::Release)
                }
            }
        }
    })
    .await
}

/// A response's close, or a release's note.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Mark(MarkOutput),
    Release(ReleaseOutput),
}

/// A user-defined field's value as Security Hub takes it: at most 1024 characters.
fn field_value(value: &str) -> String {
    value.chars().take(1024).collect()
}

/// A BatchUpdateFindings call that writes `text` on one ASFF finding's note, as Firebreak.
fn note_call(
    hub: &Client,
    id: &str,
    product: &str,
    text: &str,
) -> BatchUpdateFindingsFluentBuilder {
    hub.batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(id)
                .product_arn(product)
                .build(),
        )
        .note(
            NoteUpdate::builder()
                .text(text)
                .updated_by(UPDATED_BY)
                .build(),
        )
}

/// Writes on a finding's note what its release put back; the workflow status stays (a
/// person decides whether it is closed). Only for the finding triage verified, with the
/// product triage derived from its ARN.
pub async fn note_release(
    req: &ReleaseAuditRequest,
    hub: &Client,
) -> Result<ReleaseOutput, RunbookError> {
    let plan = &req.release;
    let (Some(finding), Some(product)) = (&plan.finding, &plan.note_product) else {
        return Ok(ReleaseOutput::default());
    };
    // A second release put nothing back: the note stays as the first one wrote it.
    let Some(text) = req.note() else {
        return Ok(ReleaseOutput::default());
    };
    let text = note::fit(&text);
    let mut call = note_call(hub, finding.as_str(), product, &text).user_defined_fields(
        "firebreak:released-at",
        OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    if let Some(e) = &plan.execution_id {
        call = call.user_defined_fields("firebreak:release-execution", field_value(e));
    }
    let out = call
        .send()
        .await
        .map_err(|e| aws_error("securityhub:BatchUpdateFindings", e))?;
    if let Some(u) = out.unprocessed_findings().first() {
        return Err(RunbookError::TargetGone {
            error_type: "FindingNotUpdated",
            message: format!(
                "Security Hub did not write the release on finding {finding}: {} {}",
                u.error_code().unwrap_or("unknown"),
                u.error_message().unwrap_or("")
            ),
        });
    }
    tracing::info!(
        execution_id = plan.execution_id.as_deref().unwrap_or(""),
        finding_id = %finding,
        action = "note-release",
        "{text}"
    );
    Ok(ReleaseOutput {
        outcomes: vec![ReleaseOutcome {
            release: "finding-note".into(),
            status: OutcomeStatus::Done,
            target: finding.to_string(),
            summary: "the release written on the finding's note".into(),
            changes: vec![Change {
                resource: finding.to_string(),
                what: "note".into(),
                before: "the response's note".into(),
                after: text,
            }],
        }],
    })
}

/// How the approval gate ended and who decided, for a filter on the finding.
fn approval_fields(req: &CloseRequest) -> Vec<(&'static str, String)> {
    let Some(d) = req.approval_decision() else {
        return Vec::new();
    };
    let outcome = serde_json::to_value(d.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = vec![("firebreak:approval", outcome)];
    if let Some(by) = d.by {
        out.push(("firebreak:decided-by", by));
    }
    out
}

/// The response's Jira issue, for a filter on the finding and a link from it.
fn ticket_fields(req: &CloseRequest) -> Vec<(&'static str, String)> {
    let Some(t) = &req.ticket else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(key) = &t.key {
        out.push(("firebreak:ticket", key.clone()));
    }
    if let Some(url) = &t.url {
        out.push(("firebreak:ticket-url", url.clone()));
    }
    out
}

/// The account's facts as Security Hub user-defined fields (`firebreak:account-name`, …).
fn account_fields(plan: &firebreak::plan::Plan) -> Vec<(&'static str, String)> {
    let Some(a) = &plan.account else {
        return Vec::new();
    };
    let contact = a
        .info
        .security_contact
        .as_ref()
        .and_then(|c| c.reached_by(true));
    [
        ("firebreak:account-name", a.info.name.clone()),
        ("firebreak:account-email", a.info.email.clone()),
        (
            "firebreak:ou-path",
            (!a.info.ou_path.is_empty()).then(|| a.info.ou_path.join("/")),
        ),
        ("firebreak:environment", a.environment.clone()),
        (
            "firebreak:data-classification",
            a.data_classification.clone(),
        ),
        ("firebreak:team", a.team.clone()),
        ("firebreak:owner", a.owner.clone()),
        ("firebreak:cost-centre", a.cost_centre.clone()),
        (
            "firebreak:org-severity",
            a.org_severity.map(|s| s.to_string()),
        ),
        (
            "firebreak:security-contact",
            contact.filter(|c| !c.is_empty()),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect()
}

/// The longest part of triage's error that goes into a note.
const CAUSE_IN_NOTE: usize = 300;

/// Triage failed, so nothing was decided and nothing done: every finding the raw input
/// names (parsed here as triage would, without any AWS call) is marked NOTIFIED with the
/// reason, in one call. A dry run (the drill's, or the deployment's) writes nothing.
/// Findings Security Hub does not have yet are waited for as the close waits; the
/// execution fails anyway, for the alarm.
pub async fn notify_triage_failure(
    req: TriageFailureNotice,
    hub: &Client,
    finding_wait: Duration,
    force_dry_run: bool,
) -> Result<MarkOutput, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let execution_id = req.execution_id.as_deref().unwrap_or("");
    let outcome = |status, target: String, summary: String| MarkOutput {
        resolution: Resolution::Failed,
        outcome: ActionOutcome {
            action: ActionKind::MarkResolved,
            status,
            target,
            summary,
            changes: vec![],
            started_at,
            finished_at: OffsetDateTime::now_utc(),
        },
    };
    let parsed = match firebreak::finding::parse_input(&req.input) {
        Ok(p) if !p.findings.is_empty() => p,
        _ => return Ok(outcome(
            OutcomeStatus::NotPlanned,
            String::new(),
            "triage failed and the input names no finding that can be identified: nothing to mark"
                .into(),
        )),
    };
    let cause: String = req.failure.reason().chars().take(CAUSE_IN_NOTE).collect();
    let text = format!(
        "Firebreak could not triage this finding ({}: {cause}). Nothing was changed; a person should look, or start the response again once the cause is fixed.",
        req.failure.error
    );
    let ids: Vec<String> = parsed
        .findings
        .iter()
        .map(|f| f.security_hub.id.to_string())
        .collect();
    if parsed.dry_run || force_dry_run {
        return Ok(outcome(
            OutcomeStatus::DryRun,
            ids.join(", "),
            format!("dry run: would mark NOTIFIED: {text}"),
        ));
    }
    // GuardDuty's copy may not be in Security Hub yet: the ones not found are tried again,
    // with growing pauses, within the same budget the close waits.
    let (ocsf_findings, mut pending): (Vec<_>, Vec<_>) = parsed
        .findings
        .iter()
        .map(|f| &f.security_hub)
        .filter(|f| f.format != HubFormat::None)
        .partition(|f| f.format == HubFormat::Ocsf);
    let mut wait = ImportWait::new(finding_wait);
    // Findings Security Hub refused for good (not merely "not there yet"), with the code.
    let mut missing: Vec<String> = Vec::new();
    if !ocsf_findings.is_empty() {
        let uids: Vec<String> = ocsf_findings.iter().map(|f| f.id.to_string()).collect();
        let refused = ocsf::update(
            hub,
            &uids,
            &text,
            Some(ocsf::status_id(Workflow::Notified)),
            &mut wait,
        )
        .await?;
        missing.extend(
            refused
                .into_iter()
                .map(|(uid, code)| format!("{uid} ({code})")),
        );
    }
    while !pending.is_empty() {
        let mut call = hub
            .batch_update_findings()
            .note(
                NoteUpdate::builder()
                    .text(&text)
                    .updated_by(UPDATED_BY)
                    .build(),
            )
            .workflow(
                WorkflowUpdate::builder()
                    .status(WorkflowStatus::Notified)
                    .build(),
            );
        for f in &pending {
            call = call.finding_identifiers(
                AwsSecurityFindingIdentifier::builder()
                    .id(f.id.as_str())
                    .product_arn(f.product_arn.as_str())
                    .build(),
            );
        }
        let out = call
            .send()
            .await
            .map_err(|e| aws_error("securityhub:BatchUpdateFindings", e))?;
        let not_found: Vec<&str> = out
            .unprocessed_findings()
            .iter()
            .filter(|u| u.error_code() == Some("FindingNotFound"))
            .filter_map(|u| u.finding_identifier().and_then(|i| i.id()))
            .collect();
        missing.extend(
            out.unprocessed_findings()
                .iter()
                .filter(|u| u.error_code() != Some("FindingNotFound"))
                .map(|u| {
                    let id = u.finding_identifier().and_then(|i| i.id()).unwrap_or("?");
                    format!("{id} ({})", u.error_code().unwrap_or("unknown"))
                }),
        );
        pending.retain(|f| not_found.contains(&f.id.as_str()));
        if pending.is_empty() || wait.next().is_none() {
            break;
        }
        wait.take().await;
    }
    // Still not in Security Hub when the budget ran out.
    missing.extend(
        pending
            .iter()
            .map(|f| format!("{} (FindingNotFound)", f.id)),
    );
    tracing::info!(
        execution_id,
        action = "mark-resolved",
        findings = ids.len(),
        unprocessed = missing.len(),
        error_type = %req.failure.error,
        "triage failed: the findings are marked NOTIFIED with the reason"
    );
    let summary = if missing.is_empty() {
        format!("marked {} finding(s) NOTIFIED: {text}", ids.len())
    } else {
        format!(
            "marked {} of {} finding(s) NOTIFIED (Security Hub could not update {}): {text}",
            ids.len() - missing.len(),
            ids.len(),
            missing.join(", ")
        )
    };
    Ok(outcome(OutcomeStatus::Done, ids.join(", "), summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsOutput;
    use aws_sdk_securityhub::types::BatchUpdateFindingsUnprocessedFinding;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use firebreak::outcome::PlaybookResult;
    use firebreak::plan::Playbook;
    use firebreak::resolution::Resolution;

    fn request(dry_run: bool, failure: Option<Failure>) -> CloseRequest {
        let p = firebreak::fixtures::fixture_plan("ec2-dns-backdoor.json", dry_run).unwrap();
        let outcome = ActionOutcome {
            action: ActionKind::IsolateInstance,
            status: OutcomeStatus::Done,
            target: "i-0a1b2c3d4e5f60718".into(),
            summary: "isolated i-0a1b2c3d4e5f60718".into(),
            changes: vec![],
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        };
        CloseRequest {
            plan: p,
            results: vec![PlaybookResult {
                playbook: Playbook::Ec2Compromise,
                outcomes: vec![outcome],
                failure,
            }],
            mark: None,
            failure: None,
            execution_id: Some("exec-9".into()),
            notifications: None,
            approval: None,
            ticket: None,
        }
    }

    #[tokio::test]
    async fn resolves_with_the_note_and_the_execution() {
        let update = mock!(Client::batch_update_findings)
            .match_requests(|r| {
                r.workflow().and_then(|w| w.status()) == Some(&WorkflowStatus::Resolved)
                    && r.note().and_then(|n| n.text()) == Some("Firebreak contained this finding: isolated i-0a1b2c3d4e5f60718. Skipped: block-remote-ips: the finding reports no remote IP.")
                    && r.note().and_then(|n| n.updated_by()) == Some("firebreak")
                    && r.user_defined_fields().and_then(|u| u.get("firebreak:execution")).map(String::as_str) == Some("exec-9")
                    && r.finding_identifiers()[0].product_arn() == Some("arn:aws:securityhub:us-east-1::product/aws/guardduty")
            })
            .then_output(|| BatchUpdateFindingsOutput::builder().set_processed_findings(Some(vec![])).set_unprocessed_findings(Some(vec![])).build());
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let out = mark(request(false, None), &hub, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(out.resolution, Resolution::Contained);
        assert_eq!(out.outcome.status, OutcomeStatus::Done);
        assert_eq!(out.outcome.summary, "finding marked RESOLVED");
        assert_eq!(update.num_calls(), 1);
    }

    /// The new Security Hub's finding: status and comment through BatchUpdateFindingsV2,
    /// by metadata.uid, the CSPM call never made; a finding not there yet is waited for.
    #[tokio::test]
    async fn an_ocsf_finding_is_closed_with_batch_update_findings_v2() {
        use aws_sdk_securityhub::operation::batch_update_findings_v2::BatchUpdateFindingsV2Output;
        use aws_sdk_securityhub::types::{
            BatchUpdateFindingsV2UnprocessedFinding,
            BatchUpdateFindingsV2UnprocessedFindingErrorCode,
        };
        let mut req = request(false, None);
        req.plan =
            firebreak::fixtures::fixture_plan("securityhub-v2-ocsf-ssh-brute-force.json", false)
                .unwrap();
        req.results[0].outcomes = vec![];
        let uid = "b8f3c2a1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";
        let missing = mock!(Client::batch_update_findings_v2).then_output(move || {
            BatchUpdateFindingsV2Output::builder()
                .unprocessed_findings(
                    BatchUpdateFindingsV2UnprocessedFinding::builder()
                        .metadata_uid(uid)
                        .error_code(BatchUpdateFindingsV2UnprocessedFindingErrorCode::ResourceNotFoundException)
                        .build(),
                )
                .build()
        });
        let arrived = mock!(Client::batch_update_findings_v2)
            .match_requests(move |r| {
                r.metadata_uids() == [uid.to_owned()]
                    && r.status_id() == Some(2)
                    && r.comment().is_some_and(|c| c.starts_with("Firebreak"))
                    && r.finding_identifiers().is_empty()
            })
            .then_output(|| BatchUpdateFindingsV2Output::builder().build());
        let cspm = mock!(Client::batch_update_findings).then_output(processed);
        let hub = mock_client!(
            aws_sdk_securityhub,
            RuleMode::Sequential,
            &[&missing, &arrived, &cspm]
        );
        let out = mark(req, &hub, Duration::from_secs(5)).await.unwrap();
        // Planned isolation and block did not run here: NOTIFIED, In Progress (2).
        assert_eq!(out.outcome.summary, "finding marked NOTIFIED");
        assert_eq!(
            (missing.num_calls(), arrived.num_calls(), cspm.num_calls()),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn the_failure_path_notifies() {
        let update = mock!(Client::batch_update_findings)
            .match_requests(|r| {
                r.workflow().and_then(|w| w.status()) == Some(&WorkflowStatus::Notified)
            })
            .then_output(processed);
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let failure = Failure {
            error: "InstanceNotFound".into(),
            cause: "instance i-1 no longer exists".into(),
        };
        let out = mark(request(false, Some(failure)), &hub, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(out.resolution, Resolution::Failed);
        assert_eq!(out.outcome.summary, "finding marked NOTIFIED");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn unprocessed_findings_other_than_not_yet_imported_are_an_error() {
        let update = mock!(Client::batch_update_findings)
            .then_output(|| unprocessed("InvalidInput", "Note.Text is too long"));
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let err = mark(request(false, None), &hub, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "FindingNotUpdated");
        assert!(err.to_string().contains("InvalidInput"), "{err}");
    }

    /// Security Hub's answer when every finding was updated.
    fn processed() -> BatchUpdateFindingsOutput {
        BatchUpdateFindingsOutput::builder()
            .set_processed_findings(Some(vec![]))
            .set_unprocessed_findings(Some(vec![]))
            .build()
    }

    /// Security Hub's answer when it could not update the finding.
    fn unprocessed(code: &str, message: &str) -> BatchUpdateFindingsOutput {
        let u = BatchUpdateFindingsUnprocessedFinding::builder()
            .error_code(code)
            .error_message(message)
            .finding_identifier(
                AwsSecurityFindingIdentifier::builder()
                    .id("x")
                    .product_arn("y")
                    .build(),
            )
            .build();
        BatchUpdateFindingsOutput::builder()
            .set_processed_findings(Some(vec![]))
            .unprocessed_findings(u)
            .build()
    }

    fn not_found() -> BatchUpdateFindingsOutput {
        unprocessed("FindingNotFound", "Finding Not Found")
    }

    #[tokio::test]
    async fn a_finding_not_yet_in_security_hub_is_waited_for() {
        let missing = mock!(Client::batch_update_findings).then_output(not_found);
        let arrived = mock!(Client::batch_update_findings).then_output(|| {
            BatchUpdateFindingsOutput::builder()
                .set_processed_findings(Some(vec![]))
                .set_unprocessed_findings(Some(vec![]))
                .build()
        });
        let hub = mock_client!(
            aws_sdk_securityhub,
            RuleMode::Sequential,
            &[&missing, &arrived]
        );
        let out = mark(request(false, None), &hub, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.outcome.status, OutcomeStatus::Done);
        assert_eq!((missing.num_calls(), arrived.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_finding_that_never_arrives_fails_with_the_reason_after_the_budget() {
        let missing = mock!(Client::batch_update_findings)
            .sequence()
            .output(not_found)
            .times(10)
            .build();
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::Sequential, &[&missing]);
        let err = mark(request(false, None), &hub, Duration::from_millis(600))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "FindingNotImported");
        assert!(
            err.to_string().contains("has not imported finding"),
            "{err}"
        );
        assert_eq!(
            missing.num_calls(),
            2,
            "one try, one pause of 500 ms, one more try"
        );
    }

    fn triage_failure(input: serde_json::Value) -> TriageFailureNotice {
        TriageFailureNotice {
            input,
            failure: Failure {
                error: "AwsCallFailed".into(),
                cause: r#"{"errorType":"AwsCallFailed","errorMessage":"ssm:GetParameter failed: AccessDeniedException: not authorized"}"#.into(),
            },
            execution_id: Some("exec-3".into()),
        }
    }

    fn ssh_sample() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/samples/asff-finding__guardduty_UnauthorizedAccess_EC2_SSHBruteForce__awsdocs-guardduty-ug.json"
        );
        // The published sample's product ARN lacks its service (`arn:aws::securityhub`).
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("arn:aws::", "arn:aws:");
        serde_json::from_str(&text).unwrap()
    }

    #[tokio::test]
    async fn a_triage_failure_marks_the_identifiable_findings_notified_with_the_reason() {
        let update = mock!(Client::batch_update_findings)
            .match_requests(|r| {
                r.workflow().and_then(|w| w.status()) == Some(&WorkflowStatus::Notified)
                    && r.finding_identifiers().len() == 1
                    && r.note().and_then(|n| n.text()).is_some_and(|t| {
                        t.starts_with("Firebreak could not triage this finding (AwsCallFailed: ssm:GetParameter failed")
                            && t.contains("Nothing was changed")
                    })
            })
            .then_output(processed);
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let out = notify_triage_failure(triage_failure(ssh_sample()), &hub, Duration::ZERO, false)
            .await
            .unwrap();
        assert_eq!(update.num_calls(), 1);
        assert_eq!(out.resolution, Resolution::Failed);
        assert_eq!(out.outcome.status, OutcomeStatus::Done);
        // The deployment-wide dry run writes nothing.
        let out = notify_triage_failure(triage_failure(ssh_sample()), &hub, Duration::ZERO, true)
            .await
            .unwrap();
        assert_eq!(out.outcome.status, OutcomeStatus::DryRun);
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_triage_failure_keeps_a_refused_finding_in_its_summary_while_it_waits_for_another() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/findings/securityhub-custom-action-two-findings.json"
        );
        let input: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ids: Vec<String> = firebreak::finding::parse_input(&input)
            .unwrap()
            .findings
            .iter()
            .map(|f| f.security_hub.id.to_string())
            .collect();
        let answer = |code: &str, id: &str| {
            BatchUpdateFindingsUnprocessedFinding::builder()
                .error_code(code)
                .finding_identifier(
                    AwsSecurityFindingIdentifier::builder()
                        .id(id)
                        .product_arn("p")
                        .build(),
                )
                .build()
        };
        let (refused, late) = (ids[0].clone(), ids[1].clone());
        // The first finding is refused for good, the second is not there yet; then it is.
        let first = mock!(Client::batch_update_findings).then_output(move || {
            BatchUpdateFindingsOutput::builder()
                .unprocessed_findings(answer("InvalidInput", &refused))
                .unprocessed_findings(answer("FindingNotFound", &late))
                .build()
        });
        let second = mock!(Client::batch_update_findings)
            .match_requests(|r| r.finding_identifiers().len() == 1)
            .then_output(processed);
        let hub = mock_client!(
            aws_sdk_securityhub,
            RuleMode::Sequential,
            &[&first, &second]
        );
        let out = notify_triage_failure(triage_failure(input), &hub, Duration::from_secs(2), false)
            .await
            .unwrap();
        assert_eq!(
            second.num_calls(),
            1,
            "only the finding not there yet is tried again"
        );
        let summary = &out.outcome.summary;
        assert!(
            summary.starts_with("marked 1 of 2 finding(s) NOTIFIED"),
            "{summary}"
        );
        assert!(
            summary.contains(&format!("{} (InvalidInput)", ids[0])),
            "{summary}"
        );
    }

    #[tokio::test]
    async fn a_triage_failure_on_input_that_names_no_finding_marks_nothing() {
        let update = mock!(Client::batch_update_findings)
            .then_output(|| BatchUpdateFindingsOutput::builder().build());
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let out = notify_triage_failure(
            triage_failure(serde_json::json!({"not": "a finding"})),
            &hub,
            Duration::ZERO,
            false,
        )
        .await
        .unwrap();
        assert_eq!(out.outcome.status, OutcomeStatus::NotPlanned);
        assert_eq!(update.num_calls(), 0);
    }

    #[test]
    fn a_request_is_a_close_or_a_triage_failure_and_a_bad_one_names_its_field() {
        let notice = serde_json::json!({"triageFailed": {"input": {}, "failure": {"Error": "E", "Cause": "c"}}});
        assert!(matches!(
            serde_json::from_value::<MarkRequest>(notice),
            Ok(MarkRequest::TriageFailed { .. })
        ));
        let bad = serde_json::json!({"triageFailed": {"input": {}}});
        let e = serde_json::from_value::<MarkRequest>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("triageFailed") && e.contains("failure"), "{e}");
        let e = serde_json::from_value::<MarkRequest>(serde_json::json!({"results": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("plan"), "{e}");
    }

    fn release_request(status: OutcomeStatus) -> ReleaseAuditRequest {
        let release: firebreak::release::ReleasePlan = serde_json::from_value(serde_json::json!({
            "finding": "arn:aws:guardduty:eu-west-1:222233334444:detector/d1/finding/f1",
            "accountId": "222233334444",
            "region": "eu-west-1",
            "dryRun": false,
            "releasesInstances": true,
            "releasesBlocks": true,
            "noteProduct": "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
            "executionId": "release-1"
        }))
        .unwrap();
        serde_json::from_value(serde_json::json!({
            "release": release,
            "instances": [{"release": "instance", "status": status, "target": "i-0123456789abcdef0",
                           "summary": "groups restored on eni-1"}]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_release_writes_what_it_put_back_on_the_note_once() {
        let update = mock!(Client::batch_update_findings)
            .match_requests(|r| {
                r.workflow().is_none()
                    && r.note().and_then(|n| n.text())
                        == Some("Firebreak released this finding's containment: groups restored on eni-1. Release execution release-1.")
                    && r.user_defined_fields().and_then(|u| u.get("firebreak:release-execution")).map(String::as_str) == Some("release-1")
                    && r.finding_identifiers()[0].product_arn() == Some("arn:aws:securityhub:eu-west-1::product/aws/guardduty")
            })
            .then_output(processed);
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let out = note_release(&release_request(OutcomeStatus::Done), &hub)
            .await
            .unwrap();
        assert_eq!(update.num_calls(), 1);
        assert_eq!(out.outcomes.len(), 1);
        assert_eq!(out.outcomes[0].release, "finding-note");
        let again = note_release(&release_request(OutcomeStatus::AlreadyDone), &hub)
            .await
            .unwrap();
        assert_eq!(update.num_calls(), 1, "a second release leaves the note be");
        assert!(again.outcomes.is_empty());
    }

    #[tokio::test]
    async fn a_dry_run_writes_nothing() {
        let update = mock!(Client::batch_update_findings).then_output(processed);
        let hub = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, &[&update]);
        let out = mark(request(true, None), &hub, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(out.resolution, Resolution::DryRun);
        assert_eq!(out.outcome.status, OutcomeStatus::DryRun);
        assert_eq!(update.num_calls(), 0);
    }
}
