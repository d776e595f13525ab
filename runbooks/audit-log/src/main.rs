//! audit-log: one structured record per action and one per execution in the audit log
//! group, the execution record carrying CloudWatch embedded-metric-format metrics:
//! time from the finding's first sighting to containment, actions taken, actions failed,
//! by resolution. The record's shape is `firebreak::audit::AuditRecord`.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use firebreak::audit::{
    ActionRecord, ActionSummary, AuditRecord, Emf, ExecutionRecord, MetricDefinition,
    MetricDirective, RecordHeader, RefusedRecord, ReleaseRecord,
};
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::finding::RefusedFinding;
use firebreak::names::{AUDIT_LOG_GROUP, METRIC_NAMESPACE};
#[cfg(test)]
use firebreak::outcome::{ActionOutcome, Change, Failure};
use firebreak::outcome::{AuditOutput, CloseRequest, OutcomeStatus};
use firebreak::policy::ActionKind;
use firebreak::release::ReleaseAuditRequest;
use firebreak::resolution::Resolution;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the response machine hands audit-log: a finding's closed response, or the
/// findings of the input that triage refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditRequest {
    Close(Box<CloseRequest>),
    Refused(RefusedRequest),
    Release(Box<ReleaseAuditRequest>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefusedRequest {
    pub refused: Vec<RefusedFinding>,
    #[serde(default)]
    pub execution_id: Option<String>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The records, action records first, the execution record last. Pure.
pub fn records(req: &CloseRequest, now: OffsetDateTime) -> Vec<AuditRecord> {
    let f = &req.plan.finding;
    let outcomes = req.all_outcomes();
    let failures = req.all_failures();
    let resolution = req.resolution();
    let header = RecordHeader {
        execution_id: req.execution_id.clone().unwrap_or_default(),
        finding_id: f.security_hub.id.clone(),
        finding_type: f.finding_type.name.clone(),
        severity: f.severity.score,
        account_id: f.account_id.clone(),
        region: f.region.clone(),
        dry_run: req.plan.dry_run,
    };
    let mut out: Vec<AuditRecord> = outcomes
        .iter()
        .map(|o| {
            AuditRecord::Action(ActionRecord {
                header: header.clone(),
                action: o.action,
                status: o.status,
                target: o.target.clone(),
                summary: o.summary.clone(),
                changes: o.changes.clone(),
                started_at: rfc3339(o.started_at),
                finished_at: rfc3339(o.finished_at),
            })
        })
        .collect();

    let taken = outcomes
        .iter()
        .filter(|o| o.action != ActionKind::MarkResolved && o.status == OutcomeStatus::Done)
        .count();
    let failed = failures.len()
        + outcomes
            .iter()
            .filter(|o| o.status == OutcomeStatus::Refused)
            .count();
    // Containment time counts from GuardDuty's first sighting to now, for real containments only.
    let containment = match (resolution, f.first_seen) {
        (Resolution::Contained, Some(first)) => Some((now - first).as_seconds_f64().max(0.0)),
        _ => None,
    };
    let metric = |name: &str, unit: &str| MetricDefinition {
        name: name.into(),
        unit: unit.into(),
    };
    let mut metrics = vec![
        metric("Responses", "Count"),
        metric("ActionsTaken", "Count"),
        metric("ActionsFailed", "Count"),
    ];
    if containment.is_some() {
        metrics.push(metric("ContainmentSeconds", "Seconds"));
    }
    out.push(AuditRecord::Execution(Box::new(ExecutionRecord {
        header,
        resolution,
        playbooks: req.plan.playbooks.clone(),
        policy_version: req.plan.policy.version.clone(),
        context: req.plan.context.clone(),
        actions: outcomes
            .iter()
            .map(|o| ActionSummary {
                action: o.action,
                status: o.status,
                target: o.target.clone(),
            })
            .collect(),
        skipped: req.plan.skipped.clone(),
        failures,
        first_seen: f.first_seen.map(rfc3339),
        finished_at: rfc3339(now),
        metric_resolution: resolution,
        actions_taken: taken,
        actions_failed: failed,
        responses: 1,
        containment_seconds: containment,
        notifications: req
            .notifications
            .as_ref()
            .map(|n| n.messages.clone())
            .unwrap_or_default(),
        notification_failure: req
            .notifications
            .as_ref()
            .and_then(|n| n.failure.as_ref())
            .map(|f| format!("{}: {}", f.error, f.cause)),
        notifications_failed: u8::from(
            req.notifications
                .as_ref()
                .is_some_and(|n| n.failure.is_some()),
        ),
        approval: req
            .plan
            .approval
            .as_ref()
            .map(|g| firebreak::audit::ApprovalAudit {
                rule: g.rule.clone(),
                because: g.because.clone(),
                timeout_seconds: g.timeout_seconds,
                decision: req.approval_decision(),
            }),
        ticket: req.ticket.clone(),
        emf: Emf {
            timestamp: (now.unix_timestamp_nanos() / 1_000_000) as i64,
            cloud_watch_metrics: vec![
                MetricDirective {
                    namespace: METRIC_NAMESPACE.into(),
                    dimensions: vec![vec!["Resolution".into()]],
                    metrics,
                },
                // However the response ended: one metric for the alarm to watch.
                MetricDirective {
                    namespace: METRIC_NAMESPACE.into(),
                    dimensions: vec![vec![]],
                    metrics: vec![metric("NotificationsFailed", "Count")],
                },
            ],
        },
    })));
    out
}

/// Log stream names may not hold `:` or `*`; execution ARNs hold `:`.
/// The one record of a release. Pure.
pub fn release_record(r: &ReleaseAuditRequest, now: OffsetDateTime) -> AuditRecord {
    AuditRecord::Release(Box::new(ReleaseRecord {
        execution_id: r.release.execution_id.clone().unwrap_or_default(),
        release: r.release.clone(),
        outcomes: r.outcomes(),
        failures: r.failure.iter().cloned().collect(),
        changed: r.changed(),
        ticket: r.ticket.clone(),
        finished_at: rfc3339(now),
    }))
}

pub fn stream_name(execution_id: Option<&str>, now: OffsetDateTime) -> String {
    match execution_id {
        // `arn:…:execution:<machine>:<run>` → `<machine>/<run>`.
        Some(id) if !id.is_empty() => {
            let mut parts = id.rsplitn(3, ':');
            let run = parts.next().unwrap_or("");
            match parts.next() {
                Some(machine) => format!("{machine}/{run}"),
                None => run.to_owned(),
            }
            .replace('*', "_")
        }
        _ => format!("direct/{}", now.date()),
    }
    .chars()
    .take(512)
    .collect()
}

pub async fn audit(
    req: AuditRequest,
    logs: &Client,
    group: &str,
) -> Result<AuditOutput, RunbookError> {
    let now = OffsetDateTime::now_utc();
    let (records, resolution, execution_id, finding_id) = match &req {
        AuditRequest::Close(close) => (
            records(close, now),
            close.resolution(),
            close.execution_id.clone(),
            close.plan.finding.security_hub.id.to_string(),
        ),
        AuditRequest::Refused(r) => (
            vec![AuditRecord::Refused(RefusedRecord {
                execution_id: r.execution_id.clone().unwrap_or_default(),
                refused: r.refused.clone(),
                finished_at: rfc3339(now),
            })],
            Resolution::Failed,
            r.execution_id.clone(),
            String::new(),
        ),
        AuditRequest::Release(r) => (
            vec![release_record(r, now)],
            // A release is not a response and its record has no resolution: this only
            // says whether it failed, was refused or was a dry run.
            if r.failure.is_some() {
                Resolution::Failed
            } else if r
                .outcomes()
                .iter()
                .any(|o| o.status == OutcomeStatus::Refused)
            {
                Resolution::Refused
            } else if r.release.dry_run {
                Resolution::DryRun
            } else {
                Resolution::NothingToDo
            },
            r.release.execution_id.clone(),
            r.release
                .finding
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default(),
        ),
    };
    let stream = stream_name(execution_id.as_deref(), now);
    match logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(&stream)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => {}
        Err(e) => return Err(aws_error("logs:CreateLogStream", e)),
    }
    let millis = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(&stream);
    for r in &records {
        let message = serde_json::to_string(r).map_err(|e| RunbookError::Aws {
            operation: "logs:PutLogEvents",
            message: format!("audit record not serialisable: {e}"),
            transient: false,
        })?;
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(millis)
                .message(message)
                .build()
                .map_err(|e| RunbookError::Aws {
                    operation: "logs:PutLogEvents",
                    message: e.to_string(),
                    transient: false,
                })?,
        );
    }
    put.send()
        .await
        .map_err(|e| aws_error("logs:PutLogEvents", e))?;
    tracing::info!(
        execution_id = execution_id.as_deref().unwrap_or(""),
        finding_id,
        action = "audit-log",
        records = records.len(),
        resolution = resolution.as_str(),
        "audit records written to {group}"
    );
    Ok(AuditOutput {
        resolution,
        records: records.len(),
        log_group: group.to_owned(),
        log_stream: stream,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let logs = Client::new(&sdk);
    let group =
        std::env::var("FIREBREAK_AUDIT_LOG_GROUP").unwrap_or_else(|_| AUDIT_LOG_GROUP.to_owned());
    firebreak::runtime::serve("audit-log", |req: AuditRequest| audit(req, &logs, &group)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::create_log_stream::{
        CreateLogStreamError, CreateLogStreamOutput,
    };
    use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    fn request(failure: Option<Failure>) -> CloseRequest {
        let p = firebreak::fixtures::fixture_plan("ec2-dns-backdoor.json", false).unwrap();
        let o = |action, summary: &str| ActionOutcome {
            action,
            status: OutcomeStatus::Done,
            target: "i-0a1b2c3d4e5f60718".into(),
            summary: summary.into(),
            changes: vec![Change {
                resource: "eni-1".into(),
                what: "security groups".into(),
                before: "sg-a".into(),
                after: "sg-b".into(),
            }],
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        };
        CloseRequest {
            plan: p,
            results: vec![firebreak::outcome::PlaybookResult {
                playbook: firebreak::plan::Playbook::Ec2Compromise,
                outcomes: vec![o(ActionKind::IsolateInstance, "isolated")],
                failure: None,
            }],
            mark: Some(o(ActionKind::MarkResolved, "finding marked RESOLVED")),
            failure,
            execution_id: Some(
                "arn:aws:states:us-east-1:111122223333:execution:Firebreak-ec2-compromise:run-1"
                    .into(),
            ),
            notifications: Some(firebreak::notify::NotifyOutput {
                messages: vec![firebreak::notify::Sent {
                    audience: firebreak::notify::Audience::Owners,
                    topic_arn: "arn:aws:sns:us-east-1:111122223333:firebreak-owners".into(),
                    message_id: Some("m-1".into()),
                }],
                failure: None,
            }),
            approval: None,
            ticket: None,
        }
    }

    #[test]
    fn one_record_per_action_and_one_per_execution_with_metrics() {
        let req = request(None);
        let first = req.plan.finding.first_seen.unwrap();
        let now = first + time::Duration::seconds(90);
        let r: Vec<serde_json::Value> = records(&req, now)
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0]["record"], "action");
        assert_eq!(r[0]["action"], "isolate-instance");
        assert_eq!(r[0]["changes"][0]["after"], "sg-b");
        assert_eq!(r[0]["executionId"], req.execution_id.clone().unwrap());
        assert_eq!(r[0]["findingId"], req.plan.finding.security_hub.id.as_str());
        let e = &r[2];
        assert_eq!(e["record"], "execution");
        assert_eq!(e["resolution"], "contained");
        assert_eq!(e["Resolution"], "contained");
        assert_eq!(
            e["ActionsTaken"], 1,
            "mark-resolved is not a containment action"
        );
        assert_eq!(e["ActionsFailed"], 0);
        assert_eq!(e["Responses"], 1);
        assert_eq!(
            e["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Resolution"
        );
        assert_eq!(e["ContainmentSeconds"], 90.0);
        assert_eq!(e["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Firebreak");
        assert_eq!(
            e["_aws"]["CloudWatchMetrics"][0]["Metrics"][3]["Name"],
            "ContainmentSeconds"
        );
        assert_eq!(e["skipped"][0]["action"], "block-remote-ips");
        assert_eq!(e["notifications"][0]["audience"], "owners");
        assert_eq!(e["notifications"][0]["messageId"], "m-1");
        assert_eq!(e["NotificationsFailed"], 0);
    }

    #[test]
    fn a_notification_that_failed_is_audited_with_its_reason() {
        let mut req = request(None);
        req.notifications = Some(firebreak::notify::NotifyOutput {
            messages: vec![],
            failure: Some(Failure {
                error: "AwsCallFailed".into(),
                cause: "sns:Publish failed: AuthorizationError".into(),
            }),
        });
        let e =
            serde_json::to_value(records(&req, OffsetDateTime::now_utc()).pop().unwrap()).unwrap();
        assert_eq!(
            e["resolution"], "contained",
            "telling people is not containing"
        );
        assert_eq!(
            e["notificationFailure"],
            "AwsCallFailed: sns:Publish failed: AuthorizationError"
        );
        assert_eq!(e["NotificationsFailed"], 1);
        let alarmed = &e["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(alarmed["Dimensions"], serde_json::json!([[]]));
        assert_eq!(alarmed["Metrics"][0]["Name"], "NotificationsFailed");
    }

    #[test]
    fn the_gate_is_audited_with_who_denied_it_when_and_why() {
        let mut req = request(None);
        req.results.clear();
        req.mark = None;
        req.plan.approval = Some(firebreak::approval::Gate {
            rule: "production".into(),
            because: "policy rule production: the resource's environment is production".into(),
            actions: vec!["isolate-instance i-0a1b2c3d4e5f60718".into()],
            timeout_seconds: 600,
        });
        let cause = serde_json::json!({"by": "arn:aws:iam::111122223333:user/ana",
            "at": "2026-12-02T10:00:00Z", "reason": "change freeze"});
        req.approval = Some(firebreak::approval::GateRecord {
            outcome: firebreak::approval::GateOutcome::Denied,
            answer: None,
            error: Some(
                serde_json::json!({"Error": "Firebreak.Denied", "Cause": cause.to_string()}),
            ),
        });
        let r = records(&req, OffsetDateTime::UNIX_EPOCH);
        let e = serde_json::to_value(r.last().unwrap()).unwrap();
        assert_eq!(e["resolution"], "not-contained");
        assert_eq!(e["approval"]["rule"], "production");
        assert_eq!(e["approval"]["timeoutSeconds"], 600);
        assert_eq!(e["approval"]["decision"]["outcome"], "denied");
        assert_eq!(
            e["approval"]["decision"]["by"],
            "arn:aws:iam::111122223333:user/ana"
        );
        assert_eq!(e["approval"]["decision"]["at"], "2026-12-02T10:00:00Z");
        assert_eq!(e["approval"]["decision"]["reason"], "change freeze");
        // Without a gate there is no approval field at all.
        let plain = serde_json::to_value(
            records(&request(None), OffsetDateTime::UNIX_EPOCH)
                .pop()
                .unwrap(),
        )
        .unwrap();
        assert!(plain.get("approval").is_none());
    }

    #[test]
    fn a_failed_response_is_audited_with_its_reason() {
        let req = request(Some(Failure {
            error: "AwsCallFailed".into(),
            cause: "denied".into(),
        }));
        let r = records(&req, OffsetDateTime::now_utc());
        let e = serde_json::to_value(r.last().unwrap()).unwrap();
        assert_eq!(e["resolution"], "failed");
        assert_eq!(e["ActionsFailed"], 1);
        assert_eq!(e["failures"][0]["Error"], "AwsCallFailed");
        assert!(e.get("ContainmentSeconds").is_none());
    }

    #[test]
    fn stream_names_have_no_colons() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            stream_name(
                Some("arn:aws:states:us-east-1:1:execution:Firebreak-ec2:run-1"),
                now
            ),
            "Firebreak-ec2/run-1"
        );
        assert_eq!(stream_name(None, now), "direct/1970-01-01");
    }

    #[tokio::test]
    async fn writes_to_the_audit_group_reusing_the_stream() {
        let create = mock!(Client::create_log_stream).then_error(|| {
            CreateLogStreamError::generic(
                ErrorMetadata::builder()
                    .code("ResourceAlreadyExistsException")
                    .build(),
            )
        });
        let put = mock!(Client::put_log_events)
            .match_requests(|r| {
                r.log_group_name() == Some("/firebreak/audit") && r.log_events().len() == 3
            })
            .then_output(|| PutLogEventsOutput::builder().build());
        let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, &[&create, &put]);
        let out = audit(
            AuditRequest::Close(Box::new(request(None))),
            &logs,
            "/firebreak/audit",
        )
        .await
        .unwrap();
        assert_eq!((out.records, out.resolution), (3, Resolution::Contained));
        assert_eq!(put.num_calls(), 1);
        let _ = CreateLogStreamOutput::builder().build();
    }
}
