//! What a drill or an execution came to: the plans triage made, what each runbook did,
//! and one word for the whole — the library's resolution, read from the audit records the
//! execution wrote, never decided again here.

use std::collections::BTreeSet;

use firebreak::audit::AuditRecord;
use firebreak::outcome::ActionOutcome;
use firebreak::plan::Plan;
use firebreak::policy::ActionKind;
use firebreak::resolution::Resolution;
use serde_json::Value;

fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            out.push(v);
            for x in m.values() {
                walk(x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                walk(x, out);
            }
        }
        _ => {}
    }
}

/// Every plan and every outcome found in the documents (the execution's output and its
/// states' outputs), each once, in the order first seen.
pub fn collect(docs: &[Value]) -> (Vec<Plan>, Vec<ActionOutcome>) {
    let mut objects = Vec::new();
    for d in docs {
        walk(d, &mut objects);
    }
    let mut plans: Vec<Plan> = Vec::new();
    let mut outcomes: Vec<ActionOutcome> = Vec::new();
    let mut seen_outcomes = BTreeSet::new();
    for o in objects {
        let Some(m) = o.as_object() else { continue };
        if m.contains_key("finding") && m.contains_key("actions") && m.contains_key("skipped") {
            if let Ok(p) = serde_json::from_value::<Plan>(o.clone()) {
                if !plans
                    .iter()
                    .any(|q| q.finding.security_hub.id == p.finding.security_hub.id)
                {
                    plans.push(p);
                }
            }
        } else if m.contains_key("action")
            && m.contains_key("status")
            && m.contains_key("startedAt")
        {
            if let Ok(a) = serde_json::from_value::<ActionOutcome>(o.clone()) {
                let key = (
                    a.action.name(),
                    a.target.clone(),
                    a.summary.clone(),
                    a.started_at,
                );
                if seen_outcomes.insert(key) {
                    outcomes.push(a);
                }
            }
        }
    }
    // The closing note last, whatever order the documents had.
    outcomes.sort_by_key(|o| o.action == ActionKind::MarkResolved);
    (plans, outcomes)
}

/// The containment actions (not the closing note) and their targets, as a drill compares
/// a dry run with the real run.
pub fn planned_actions(plans: &[Plan]) -> Vec<(String, String)> {
    plans
        .iter()
        .flat_map(|p| p.actions.iter())
        .filter(|a| a.kind() != ActionKind::MarkResolved)
        .map(|a| (a.kind().name().to_owned(), a.target()))
        .collect()
}

/// The drill's word: the resolution of each finding's response as audit-log recorded it,
/// the one furthest from contained; `failed` when the execution failed without one.
pub fn verdict(execution_failed: bool, records: &[AuditRecord]) -> Resolution {
    let recorded = records.iter().filter_map(|r| match r {
        AuditRecord::Execution(e) => Some(e.resolution),
        AuditRecord::Refused(_) => Some(Resolution::Failed),
        AuditRecord::Action(_) | AuditRecord::Release(_) => None,
    });
    let failed = execution_failed.then_some(Resolution::Failed);
    Resolution::overall(recorded.chain(failed)).unwrap_or(Resolution::NothingToDo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(action: &str, status: &str) -> Value {
        json!({"action": action, "status": status, "target": "t", "summary": format!("{action} {status}"),
               "startedAt": "2026-11-29T10:00:00Z", "finishedAt": "2026-11-29T10:00:01Z"})
    }

    #[test]
    fn outcomes_are_found_anywhere_once() {
        let out = json!({"responses": [{"results": [{"playbook": "ec2-compromise", "outcomes": [outcome("isolate-instance", "done")]}],
                                        "mark": {"outcome": outcome("mark-resolved", "done")}}]});
        let exited = json!({"step": {"outcomes": [outcome("isolate-instance", "done")]}});
        let (plans, outcomes) = collect(&[out, exited]);
        assert!(plans.is_empty());
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[1].action, ActionKind::MarkResolved);
    }

    fn execution_record(resolution: &str) -> AuditRecord {
        serde_json::from_value(json!({
            "record": "execution", "executionId": "e", "findingId": "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f",
            "findingType": "X", "severity": 8.0, "accountId": "111122223333", "region": "us-east-1", "dryRun": false,
            "resolution": resolution, "playbooks": [], "policyVersion": "1", "actions": [], "skipped": [], "failures": [],
            "finishedAt": "2026-11-29T10:00:00Z", "Resolution": resolution, "ActionsTaken": 0, "ActionsFailed": 0,
            "_aws": {"Timestamp": 0, "CloudWatchMetrics": []}
        }))
        .unwrap()
    }

    #[test]
    fn the_verdict_is_the_recorded_resolution() {
        let contained = execution_record("contained");
        let partly = execution_record("partly-contained");
        assert_eq!(
            verdict(false, std::slice::from_ref(&contained)),
            Resolution::Contained
        );
        assert_eq!(
            verdict(false, &[contained.clone(), partly]),
            Resolution::PartlyContained
        );
        assert_eq!(verdict(true, &[contained]), Resolution::Failed);
        assert_eq!(verdict(true, &[]), Resolution::Failed);
        assert_eq!(verdict(false, &[]), Resolution::NothingToDo);
    }
}
