//! The messages a response sends: one to the owning team, in plain words (what was found,
//! why it matters, what was done, what to do next, how to release), and an alert to the
//! response team for severe findings and for every response that ends NOTIFIED. Pure:
//! the notify runbook publishes what this composes.

use serde::{Deserialize, Serialize};

use crate::outcome::{CloseRequest, OutcomeStatus};
use crate::plan::PlannedAction;
use crate::policy::ActionKind;
use crate::resolution::{Resolution, Workflow};

/// SNS subjects are at most 100 characters.
const SUBJECT_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// The team that owns the resource (the plan's route, else the owners topic).
    Owners,
    /// The security team on call.
    ResponseTeam,
}

/// One message to publish. `topic` is the plan's route (a topic name) or `None` for the
/// deployment's topic for that audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub audience: Audience,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub subject: String,
    pub body: String,
    /// SNS message attributes, for subscription filter policies.
    pub attributes: Vec<(String, String)>,
}

/// What the notify runbook hands back (and the audit record keeps): each message sent,
/// with where it went and SNS's id for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    pub audience: Audience,
    pub topic_arn: String,
    /// `None` in a dry run: composed, not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutput {
    pub messages: Vec<Sent>,
    /// The notify step's failure, after its retries: nobody was told, and the audit
    /// record says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::outcome::Failure>,
}

/// Why a finding of this type matters, in a sentence, by its threat purpose.
pub fn why_it_matters(finding_type: &str) -> &'static str {
    let purpose = finding_type.split(':').next().unwrap_or("");
    match purpose {
        "Backdoor" => "the resource is likely controlled by someone else and may be used to attack others or to reach your data.",
        "CryptoCurrency" => "the resource is likely mining cryptocurrency for someone else: it is compromised and costs you money.",
        "Trojan" => "malware on the resource is talking to an attacker's infrastructure.",
        "UnauthorizedAccess" => "someone is trying to, or did, get access they should not have.",
        "Recon" | "Discovery" => "someone is mapping your resources before an attack.",
        "Exfiltration" => "data may be leaving your account.",
        "Impact" => "the activity can destroy or deny access to your data or service.",
        "CredentialAccess" => "credentials may have been stolen and can be used from anywhere.",
        "PrivilegeEscalation" => "someone may be gaining more rights than they were given.",
        "Persistence" => "someone may be setting up a way back in.",
        "DefenseEvasion" | "Stealth" => "someone may be hiding their tracks or turning off your defences.",
        "Execution" => "code that should not run is running.",
        "Policy" => "a setting leaves the resource open to people who should not reach it.",
        "Object" => "a file with known malware was stored.",
        "AttackSequence" => "several related signals show an attack in progress across resources.",
        "PenTest" => "a penetration-testing tool is being used against your resources.",
        _ => "GuardDuty or Security Hub considers this activity a threat.",
    }
}

/// What to do next, by how the response ended.
fn next_steps(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::Contained => "Investigate from the evidence kept (snapshots, the audit log), find how it happened, then release when the resource is clean or replace it.",
        Resolution::PartlyContained | Resolution::NotContained | Resolution::Refused | Resolution::Failed => "A person must act now: part of the threat is not contained (see what Firebreak did not do). The finding is NOTIFIED in Security Hub.",
        Resolution::NothingToDo => "Nothing was changed, by the policy's decision; review the finding and close it if it is expected.",
        Resolution::DryRun => "This was a dry run: nothing was changed.",
    }
}

/// How to undo each kind of action Firebreak took.
fn release_step(action: &PlannedAction) -> Option<String> {
    Some(match action {
        PlannedAction::IsolateInstance { instance_id, .. } => format!(
            "instance {instance_id}: firebreak release {instance_id} (its recorded groups back on every interface, out of Standby, into its target groups and load balancers again; the evidence stays)"
        ),
        PlannedAction::BlockRemoteIps { ips, .. } => format!(
            "IP blocks: {} (or the sweep removes them when they expire)",
            ips.iter()
                .map(|ip| format!("firebreak release {ip}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        PlannedAction::RevokeRoleSessions { role_name, .. } => format!(
            "role {role_name}: firebreak release role/{role_name} lifts the revocation, once the credentials are rotated"
        ),
        PlannedAction::DisableAccessKey { access_key_id, .. } => format!(
            "access key {access_key_id}: do not reactivate it; issue a new key"
        ),
        PlannedAction::ThrottleFunction { function_name, .. } => format!(
            "function {function_name}: put back the reserved concurrency recorded in its firebreak:prior-reserved-concurrency tag"
        ),
        PlannedAction::BlockBucketPublicAccess { bucket } => format!(
            "bucket {bucket}: Block Public Access as recorded in its firebreak:prior-public-access-block tag, only if the exposure was intended"
        ),
        _ => return None,
    })
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// The messages for one closed response: the owners' always, the response team's when
/// the finding is at or above the alert band or the response ends NOTIFIED.
pub fn messages(req: &CloseRequest) -> Vec<Message> {
    let plan = &req.plan;
    let f = &plan.finding;
    let resolution = req.resolution();
    let outcomes = req.all_outcomes();
    let target = plan
        .actions
        .iter()
        .find(|a| a.kind() != ActionKind::MarkResolved)
        // The resource itself (`i-…`), not its interfaces: the subject has 100 characters.
        .map(|a| {
            let t = a.target();
            t.split(" (").next().unwrap_or(&t).to_owned()
        })
        .or_else(|| f.resource_type.clone())
        .unwrap_or_else(|| "the resource".into());
    let account = match plan.account.as_ref().and_then(|a| a.info.name.as_deref()) {
        Some(name) => format!("{} ({name})", f.account_id),
        None => f.account_id.to_string(),
    };
    let verb = match resolution {
        Resolution::Contained => "contained",
        Resolution::PartlyContained => "partly contained",
        Resolution::DryRun => "rehearsed (dry run)",
        Resolution::NothingToDo => "left alone",
        _ => "could not contain",
    };
    let subject = cut(
        &format!(
            "Firebreak {verb} ({}): {} on {target}",
            f.severity.band, f.finding_type.name
        ),
        SUBJECT_MAX,
    );

    let mut body = String::new();
    body.push_str(&format!(
        "What was found: {} (severity {:.1}, {}) in account {account}, {}, on {target}.\n",
        f.finding_type.name, f.severity.score, f.severity.band, f.region
    ));
    if let Some(t) = &f.title {
        body.push_str(&format!("  {t}\n"));
    }
    body.push_str(&format!(
        "Why it matters: {}\n",
        why_it_matters(&f.finding_type.name)
    ));
    let done: Vec<String> = outcomes
        .iter()
        .filter(|o| o.action != ActionKind::MarkResolved)
        .map(|o| format!("  - {} ({})", o.summary, o.status.as_str()))
        .collect();
    body.push_str("What Firebreak did:\n");
    if done.is_empty() {
        body.push_str("  - nothing\n");
    } else {
        for d in &done {
            body.push_str(d);
            body.push('\n');
        }
    }
    let not_done: Vec<String> = plan
        .skipped
        .iter()
        .map(|s| format!("  - {}", s.detail))
        .chain(
            req.all_failures()
                .iter()
                .map(|x| format!("  - failed: {} {}", x.error, x.cause)),
        )
        .collect();
    if !not_done.is_empty() {
        body.push_str("What it did not do:\n");
        for d in &not_done {
            body.push_str(d);
            body.push('\n');
        }
    }
    for line in req
        .approval_line()
        .into_iter()
        .chain(req.ticket.as_ref().and_then(|t| t.line()))
    {
        body.push_str(&line);
        body.push('\n');
    }
    body.push_str(&format!("What to do next: {}\n", next_steps(resolution)));
    let done_kinds: Vec<&PlannedAction> = plan
        .actions
        .iter()
        .filter(|a| {
            outcomes
                .iter()
                .any(|o| o.action == a.kind() && o.status == OutcomeStatus::Done)
        })
        .collect();
    let releases: Vec<String> = done_kinds.into_iter().filter_map(release_step).collect();
    if !releases.is_empty() {
        body.push_str("How to release:\n");
        for r in releases {
            body.push_str(&format!("  - {r}\n"));
        }
        body.push_str(&format!(
            "  - the instances and IP blocks of this finding at once: firebreak release {}\n",
            f.security_hub.id
        ));
    }
    body.push_str(&format!(
        "Finding: {}\nExecution: {}\nResolution: {}\n",
        f.security_hub.id,
        req.execution_id.as_deref().unwrap_or("-"),
        resolution.as_str()
    ));

    let attributes = vec![
        ("kind".to_owned(), "response".to_owned()),
        ("severity".to_owned(), f.severity.band.to_string()),
        ("resolution".to_owned(), resolution.as_str().to_owned()),
        ("accountId".to_owned(), f.account_id.to_string()),
        (
            "team".to_owned(),
            plan.context.team.clone().unwrap_or_else(|| "none".into()),
        ),
    ];
    let mut out = vec![Message {
        audience: Audience::Owners,
        topic: plan.notify.owners_topic.clone(),
        subject: subject.clone(),
        body: body.clone(),
        attributes: attributes.clone(),
    }];
    let severe = f.severity.band >= plan.notify.alert_min_severity;
    let notified = resolution.workflow() == Some(Workflow::Notified);
    if severe || notified {
        let why = match (severe, notified) {
            (_, true) => "a person must act: the response ended NOTIFIED",
            _ => "a severe finding",
        };
        out.push(Message {
            audience: Audience::ResponseTeam,
            topic: None,
            subject: cut(&format!("[alert] {subject}"), SUBJECT_MAX),
            body: format!("Alert for the response team ({why}).\n{body}"),
            attributes,
        });
    }
    out
}

/// What the response machine's approval gate hands notify: the plan waiting, and the
/// task token the machine waits on (the CLI reads it from the execution's history; it is
/// never put in a message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalRequest {
    pub plan: crate::plan::Plan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    pub token: String,
}

/// The ask, to the owning team and the response team: what was found, what Firebreak
/// will do once approved, why a person decides, and how to approve or deny.
pub fn approval_messages(req: &ApprovalRequest, now: time::OffsetDateTime) -> Vec<Message> {
    let plan = &req.plan;
    let f = &plan.finding;
    let Some(gate) = &plan.approval else {
        return Vec::new();
    };
    let execution = req.execution_id.as_deref().unwrap_or("EXECUTION");
    let target = plan
        .actions
        .iter()
        .find(|a| a.kind() != ActionKind::MarkResolved)
        .map(|a| {
            let t = a.target();
            t.split(" (").next().unwrap_or(&t).to_owned()
        })
        .unwrap_or_else(|| "the resource".into());
    let drill = if plan.dry_run { "[drill] " } else { "" };
    let subject = cut(
        &format!(
            "{drill}Firebreak asks for approval ({}): {} on {target}",
            f.severity.band, f.finding_type.name
        ),
        SUBJECT_MAX,
    );
    let deadline = (now + time::Duration::seconds(i64::from(gate.timeout_seconds)))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{} seconds from now", gate.timeout_seconds));
    let mut body = String::new();
    body.push_str(&format!(
        "What was found: {} (severity {:.1}, {}) in account {}, {}, on {target}.\n",
        f.finding_type.name, f.severity.score, f.severity.band, f.account_id, f.region
    ));
    body.push_str(&format!(
        "Why it matters: {}\n",
        why_it_matters(&f.finding_type.name)
    ));
    body.push_str(&format!("Why a person decides: {}.\n", gate.because));
    body.push_str(if plan.dry_run {
        "What Firebreak will rehearse once approved (a dry run: nothing changes):\n"
    } else {
        "What Firebreak will do once approved:\n"
    });
    for a in &gate.actions {
        body.push_str(&format!("  - {a}\n"));
    }
    body.push_str(&format!(
        "How to decide:\n  - approve: firebreak approve {execution}\n  - deny: firebreak deny {execution} --reason \"...\"\n"
    ));
    body.push_str(&format!(
        "Without a decision by {deadline}, nothing is done and the finding is NOTIFIED.\nFinding: {}\nExecution: {execution}\n",
        f.security_hub.id
    ));
    let attributes = vec![
        ("kind".to_owned(), "approval-request".to_owned()),
        ("severity".to_owned(), f.severity.band.to_string()),
        ("accountId".to_owned(), f.account_id.to_string()),
        (
            "team".to_owned(),
            plan.context.team.clone().unwrap_or_else(|| "none".into()),
        ),
    ];
    vec![
        Message {
            audience: Audience::Owners,
            topic: plan.notify.owners_topic.clone(),
            subject: subject.clone(),
            body: body.clone(),
            attributes: attributes.clone(),
        },
        Message {
            audience: Audience::ResponseTeam,
            topic: None,
            subject,
            body,
            attributes,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(fixture: &str, status: OutcomeStatus) -> CloseRequest {
        crate::fixtures::fixture_close(fixture, false, status).unwrap()
    }

    #[test]
    fn a_contained_high_finding_tells_the_owners_and_alerts_the_response_team() {
        let req = close("ec2-network-backdoor.json", OutcomeStatus::Done);
        let m = messages(&req);
        assert_eq!(
            m.iter().map(|x| x.audience).collect::<Vec<_>>(),
            [Audience::Owners, Audience::ResponseTeam]
        );
        let owners = &m[0];
        assert!(
            owners
                .subject
                .starts_with("Firebreak contained (HIGH): Backdoor:EC2/"),
            "{}",
            owners.subject
        );
        assert!(owners.subject.chars().count() <= SUBJECT_MAX);
        for part in [
            "What was found:",
            "Why it matters:",
            "What Firebreak did:",
            "What to do next:",
            "How to release:",
            "Resolution: contained",
        ] {
            assert!(owners.body.contains(part), "{part}: {}", owners.body);
        }
        assert!(
            owners.body.contains("firebreak release i-")
                && owners.body.contains(&format!(
                    "firebreak release {}",
                    req.plan.finding.security_hub.id
                )),
            "{}",
            owners.body
        );
        assert!(m[1].subject.starts_with("[alert] "));
    }

    #[test]
    fn a_low_contained_finding_tells_only_the_owners_and_a_notified_one_alerts_too() {
        let mut req = close("ec2-network-backdoor.json", OutcomeStatus::Done);
        req.plan.finding.severity = crate::finding::Severity::from_guardduty(2.0).unwrap();
        assert_eq!(messages(&req).len(), 1);
        let mut refused = close("ec2-network-backdoor.json", OutcomeStatus::Refused);
        refused.plan.finding.severity = crate::finding::Severity::from_guardduty(2.0).unwrap();
        let m = messages(&refused);
        assert_eq!(m.len(), 2);
        assert!(
            m[1].body
                .starts_with("Alert for the response team (a person must act"),
            "{}",
            m[1].body
        );
        assert!(
            !m[0].body.contains("How to release"),
            "nothing was done, nothing to release"
        );
    }

    #[test]
    fn the_route_names_the_owners_topic() {
        let mut req = close("ec2-network-backdoor.json", OutcomeStatus::Done);
        req.plan.notify.owners_topic = Some("firebreak-payments".into());
        assert_eq!(
            messages(&req)[0].topic.as_deref(),
            Some("firebreak-payments")
        );
        assert_eq!(messages(&req)[1].topic, None);
    }

    #[test]
    fn an_approval_request_says_what_will_run_and_how_to_decide_and_never_carries_the_token() {
        let mut plan = crate::fixtures::fixture_plan("ec2-network-backdoor.json", false).unwrap();
        let policy: crate::approval::ApprovalPolicy = serde_json::from_value(serde_json::json!({
            "rules": [{"name": "prod", "environment": "production"}], "timeoutSeconds": 600
        }))
        .unwrap();
        plan.context.environment = Some("production".into());
        plan.approval = crate::approval::gate(&policy, &plan, false);
        let req = ApprovalRequest {
            plan,
            execution_id: Some(
                "arn:aws:states:us-east-1:123456789012:execution:response:e1".into(),
            ),
            token: "SECRET-TOKEN".into(),
        };
        let now = time::macros::datetime!(2026-12-02 10:00 UTC);
        let m = approval_messages(&req, now);
        assert_eq!(
            m.iter().map(|x| x.audience).collect::<Vec<_>>(),
            [Audience::Owners, Audience::ResponseTeam]
        );
        let body = &m[0].body;
        for part in [
            "Why a person decides: policy rule prod: the resource's environment is production.",
            "  - isolate-instance i-",
            "firebreak approve arn:aws:states:us-east-1:123456789012:execution:response:e1",
            "firebreak deny arn:aws:states:us-east-1:123456789012:execution:response:e1 --reason",
            "Without a decision by 2026-12-02T10:10:00Z, nothing is done",
        ] {
            assert!(body.contains(part), "{part:?} not in\n{body}");
        }
        assert!(
            m[0].subject
                .starts_with("Firebreak asks for approval (HIGH)"),
            "{}",
            m[0].subject
        );
        assert!(m
            .iter()
            .all(|x| !x.body.contains("SECRET-TOKEN") && !x.subject.contains("SECRET-TOKEN")));
        assert!(m[0]
            .attributes
            .contains(&("kind".into(), "approval-request".into())));
    }
}
