//! audit-log: one structured record per action and one per execution in the audit log
//! group, the execution record carrying CloudWatch embedded-metric-format metrics:
//! time from the finding's first sighting to containment, actions taken, actions failed.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
#[cfg(test)]
use firebreak::outcome::{ActionOutcome, Failure};
use firebreak::outcome::{Change, CloseRequest, OutcomeStatus};
use firebreak::policy::ActionKind;
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const DEFAULT_LOG_GROUP: &str = "/firebreak/audit";
pub const METRIC_NAMESPACE: &str = "Firebreak";

/// mark-resolved and audit-log take the same request.
pub type AuditRequest = CloseRequest;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// How the response ended, in one word.
pub fn result(req: &AuditRequest) -> &'static str {
    let outcomes = req.all_outcomes();
    let contained = outcomes.iter().any(|o| {
        o.action != ActionKind::MarkResolved
            && matches!(o.status, OutcomeStatus::Done | OutcomeStatus::AlreadyDone)
    });
    if !req.all_failures().is_empty() {
        "failed"
    } else if req.plan.dry_run {
        "dry-run"
    } else if outcomes.iter().any(|o| o.status == OutcomeStatus::Refused) {
        "refused"
    } else if contained {
        "contained"
    } else {
        "no-action"
    }
}

/// The records, action records first, the execution record last. Pure.
pub fn records(req: &AuditRequest, now: OffsetDateTime) -> Vec<Value> {
    let f = &req.plan.finding;
    let outcomes = req.all_outcomes();
    let failures = req.all_failures();
    let execution = req.execution_id.clone().unwrap_or_default();
    let common = json!({
        "executionId": execution,
        "findingId": f.security_hub.id,
        "findingType": f.finding_type.name,
        "severity": f.severity.score,
        "accountId": f.account_id,
        "region": f.region,
        "dryRun": req.plan.dry_run,
    });
    let with = |extra: Value| {
        let mut v = common.clone();
        if let (Some(base), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in more {
                base.insert(k.clone(), x.clone());
            }
        }
        v
    };
    let mut out: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            with(json!({
                "record": "action",
                "action": o.action.name(),
                "status": o.status,
                "target": o.target,
                "summary": o.summary,
                "changes": o.changes.iter().map(|c: &Change| json!(c)).collect::<Vec<_>>(),
                "startedAt": rfc3339(o.started_at),
                "finishedAt": rfc3339(o.finished_at),
            }))
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
    let result = result(req);
    // Containment time counts from GuardDuty's first sighting to now, for real containments only.
    let containment = match (result, f.first_seen) {
        ("contained", Some(first)) => Some((now - first).as_seconds_f64().max(0.0)),
        _ => None,
    };
    let mut metrics = vec![
        json!({"Name": "ActionsTaken", "Unit": "Count"}),
        json!({"Name": "ActionsFailed", "Unit": "Count"}),
    ];
    if containment.is_some() {
        metrics.push(json!({"Name": "ContainmentSeconds", "Unit": "Seconds"}));
    }
    let mut record = with(json!({
        "record": "execution",
        "result": result,
        "playbooks": req.plan.playbooks,
        "policyVersion": req.plan.policy.version,
        "owner": req.plan.context.owner,
        "team": req.plan.context.team,
        "environment": req.plan.context.environment,
        "actions": outcomes.iter().map(|o| json!({"action": o.action.name(), "status": o.status, "target": o.target})).collect::<Vec<_>>(),
        "skipped": req.plan.skipped,
        "failures": failures,
        "firstSeen": f.first_seen.map(rfc3339),
        "finishedAt": rfc3339(now),
        "Result": result,
        "ActionsTaken": taken,
        "ActionsFailed": failed,
        "_aws": {
            "Timestamp": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["Result"]],
                "Metrics": metrics,
            }],
        },
    }));
    if let (Some(secs), Some(obj)) = (containment, record.as_object_mut()) {
        obj.insert("ContainmentSeconds".into(), json!(secs));
    }
    out.push(record);
    out
}

/// Log stream names may not hold `:` or `*`; execution ARNs hold `:`.
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
) -> Result<AuditResponse, RunbookError> {
    let now = OffsetDateTime::now_utc();
    let ended = result(&req);
    let stream = stream_name(req.execution_id.as_deref(), now);
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
    let records = records(&req, now);
    let millis = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(&stream);
    for r in &records {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(millis)
                .message(r.to_string())
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
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id = %req.plan.finding.security_hub.id,
        action = "audit-log",
        records = records.len(),
        result = ended,
        "audit records written to {group}"
    );
    Ok(AuditResponse {
        records: records.len(),
        log_group: group.to_owned(),
        result: ended,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditResponse {
    pub records: usize,
    pub log_group: String,
    /// How the response ended; the state machine fails the execution on `failed`.
    pub result: &'static str,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let logs = Client::new(&sdk);
    let group =
        std::env::var("FIREBREAK_AUDIT_LOG_GROUP").unwrap_or_else(|_| DEFAULT_LOG_GROUP.to_owned());
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

    fn request(failure: Option<Failure>) -> AuditRequest {
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
        AuditRequest {
            plan: p,
            outcomes: vec![
                o(ActionKind::IsolateInstance, "isolated"),
                o(ActionKind::MarkResolved, "finding marked RESOLVED"),
            ],
            failure,
            results: vec![],
            execution_id: Some(
                "arn:aws:states:us-east-1:111122223333:execution:Firebreak-ec2-compromise:run-1"
                    .into(),
            ),
        }
    }

    #[test]
    fn one_record_per_action_and_one_per_execution_with_metrics() {
        let req = request(None);
        let first = req.plan.finding.first_seen.unwrap();
        let now = first + time::Duration::seconds(90);
        let r = records(&req, now);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0]["record"], "action");
        assert_eq!(r[0]["action"], "isolate-instance");
        assert_eq!(r[0]["changes"][0]["after"], "sg-b");
        assert_eq!(r[0]["executionId"], req.execution_id.clone().unwrap());
        assert_eq!(r[0]["findingId"], req.plan.finding.security_hub.id.as_str());
        let e = &r[2];
        assert_eq!(e["record"], "execution");
        assert_eq!(e["result"], "contained");
        assert_eq!(
            e["ActionsTaken"], 1,
            "mark-resolved is not a containment action"
        );
        assert_eq!(e["ActionsFailed"], 0);
        assert_eq!(e["ContainmentSeconds"], 90.0);
        assert_eq!(e["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Firebreak");
        assert_eq!(
            e["_aws"]["CloudWatchMetrics"][0]["Metrics"][2]["Name"],
            "ContainmentSeconds"
        );
        assert_eq!(e["skipped"][0]["action"], "block-remote-ips");
    }

    #[test]
    fn a_failed_response_is_audited_with_its_reason() {
        let req = request(Some(Failure {
            error: "AwsCallFailed".into(),
            cause: "denied".into(),
        }));
        let r = records(&req, OffsetDateTime::now_utc());
        let e = r.last().unwrap();
        assert_eq!(e["result"], "failed");
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
        let out = audit(request(None), &logs, "/firebreak/audit")
            .await
            .unwrap();
        assert_eq!((out.records, out.result), (3, "contained"));
        assert_eq!(put.num_calls(), 1);
        let _ = CreateLogStreamOutput::builder().build();
    }
}

#[cfg(test)]
mod declared_permissions {
    use firebreak::permissions::{declared_actions, sdk_calls_in_source};

    /// permissions.json lists exactly the SDK calls this crate makes.
    #[test]
    fn permissions_file_matches_the_calls_in_the_code() {
        let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
        let used = sdk_calls_in_source(src, &["logs"]).unwrap();
        assert_eq!(used.len(), 2, "found {used:?}");
        assert_eq!(
            declared_actions(include_str!("../permissions.json")).unwrap(),
            used
        );
    }
}
