//! What a drill or an execution came to: the plans triage made, what each runbook did,
//! and one word for the whole (`contained`, `skipped`, `notified`). Pure: it reads the
//! execution's output and the outputs of its states, whatever the machine.

use std::collections::BTreeSet;

use firebreak::outcome::{ActionOutcome, OutcomeStatus};
use firebreak::plan::Plan;
use firebreak::policy::ActionKind;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every planned action done (or, in a dry run, checked and ready to do).
    Contained,
    /// Nothing was planned: every action was skipped, each with its reason.
    Skipped,
    /// Something failed or was refused: the finding is NOTIFIED for an analyst.
    Notified,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Contained => "contained",
            Verdict::Skipped => "skipped",
            Verdict::Notified => "notified",
        }
    }
}

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

pub fn verdict(
    execution_failed: bool,
    outcomes: &[ActionOutcome],
    workflows: &[String],
) -> Verdict {
    if execution_failed
        || outcomes.iter().any(|o| o.status == OutcomeStatus::Refused)
        || workflows.iter().any(|w| w == "NOTIFIED")
    {
        Verdict::Notified
    } else if outcomes
        .iter()
        .any(|o| o.action != ActionKind::MarkResolved && o.status.contained())
    {
        Verdict::Contained
    } else {
        Verdict::Skipped
    }
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
        let exited = json!({"step": {"outcome": outcome("isolate-instance", "done")}});
        let (plans, outcomes) = collect(&[out, exited]);
        assert!(plans.is_empty());
        assert_eq!(outcomes.len(), 2);
        assert_eq!(
            verdict(false, &outcomes, &["RESOLVED".into()]),
            Verdict::Contained
        );
    }

    #[test]
    fn the_verdict_says_notified_for_any_failure_or_refusal() {
        let (_, refused) = collect(&[outcome("block-remote-ips", "refused")]);
        assert_eq!(verdict(false, &refused, &[]), Verdict::Notified);
        assert_eq!(verdict(true, &[], &[]), Verdict::Notified);
        assert_eq!(verdict(false, &[], &["NOTIFIED".into()]), Verdict::Notified);
        let (_, dry) = collect(&[outcome("isolate-instance", "dry-run")]);
        assert_eq!(verdict(false, &dry, &[]), Verdict::Contained);
        let (_, only_note) = collect(&[outcome("mark-resolved", "done")]);
        assert_eq!(verdict(false, &only_note, &[]), Verdict::Skipped);
    }
}
