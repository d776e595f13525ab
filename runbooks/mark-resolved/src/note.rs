//! The finding's note and workflow status, from the plan and what the runbooks did. Pure.

use firebreak::outcome::{ActionOutcome, Failure, OutcomeStatus};
use firebreak::plan::{Plan, Playbook};
use firebreak::policy::ActionKind;
use serde::{Deserialize, Serialize};

/// Security Hub's limit on `Note.Text`.
pub const MAX_NOTE_CHARS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Workflow {
    Resolved,
    Notified,
}

impl Workflow {
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::Resolved => "RESOLVED",
            Workflow::Notified => "NOTIFIED",
        }
    }
}

/// Cuts to Security Hub's limit on a character boundary, marking the cut.
pub fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_NOTE_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_NOTE_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn skipped(plan: &Plan) -> Vec<String> {
    plan.skipped
        .iter()
        .map(|s| match s.action {
            Some(a) => format!("{}: {}", a.name(), s.detail),
            None => s.detail.clone(),
        })
        .collect()
}

/// The workflow status to set (`None`: leave it) and the note.
///
/// RESOLVED only when something was contained and nothing failed or was refused: a
/// refusal (a service-linked role, a full rule band) leaves a threat live, so the finding
/// goes to NOTIFIED for an analyst, with the reason.
pub fn compose(
    plan: &Plan,
    outcomes: &[ActionOutcome],
    failures: &[Failure],
    ran: &[Playbook],
) -> (Option<Workflow>, String) {
    let done: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.action != ActionKind::MarkResolved && o.status.contained())
        .map(|o| o.summary.as_str())
        .collect();
    let refused: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Refused)
        .map(|o| format!("{}: {}", o.action.name(), o.summary))
        .collect();
    let skips = skipped(plan);
    let mut parts = Vec::new();
    let status = if !failures.is_empty() {
        let why: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {}", f.error, f.reason()))
            .collect();
        parts.push(format!(
            "Firebreak could not complete the response: {}.",
            why.join("; ")
        ));
        if !done.is_empty() {
            parts.push(format!("Done before the failure: {}.", done.join("; ")));
        }
        Some(Workflow::Notified)
    } else if plan.dry_run {
        parts.push(format!(
            "Firebreak dry run, nothing changed. Would do: {}.",
            if done.is_empty() {
                "nothing".to_owned()
            } else {
                done.join("; ")
            }
        ));
        None
    } else if !refused.is_empty() {
        parts.push(format!(
            "Firebreak refused part of the response, needs an analyst: {}.",
            refused.join("; ")
        ));
        if !done.is_empty() {
            parts.push(format!("Done: {}.", done.join("; ")));
        }
        Some(Workflow::Notified)
    } else if done.is_empty() {
        parts.push("Firebreak took no action.".to_owned());
        None
    } else {
        parts.push(format!(
            "Firebreak contained this finding: {}.",
            done.join("; ")
        ));
        Some(Workflow::Resolved)
    };
    // A plan may name actions the running playbook does not perform: say so, never imply them.
    let not_run: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| {
            // What a failed or refused step did not do is said above; this line is for
            // actions no playbook of this run was meant to perform.
            failures.is_empty()
                && Playbook::running(a.kind()).is_some_and(|p| !ran.contains(&p))
                && !outcomes.iter().any(|o| o.action == a.kind())
        })
        .map(|a| format!("{} {}", a.kind().name(), a.target()))
        .collect();
    if !not_run.is_empty() {
        parts.push(format!(
            "Planned but not run by this playbook: {}.",
            not_run.join("; ")
        ));
    }
    if !skips.is_empty() {
        parts.push(format!("Skipped: {}.", skips.join("; ")));
    }
    (status, fit(&parts.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn plan_for(fixture: &str, dry_run: bool) -> Plan {
        firebreak::fixtures::fixture_plan(fixture, dry_run).unwrap()
    }

    fn outcome(action: ActionKind, status: OutcomeStatus, summary: &str) -> ActionOutcome {
        ActionOutcome {
            action,
            status,
            target: String::new(),
            summary: summary.into(),
            changes: Vec::new(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn contained_findings_are_resolved_with_what_was_done_and_skipped() {
        let p = plan_for("ec2-dns-backdoor.json", false);
        let (status, note) = compose(
            &p,
            &[outcome(
                ActionKind::IsolateInstance,
                OutcomeStatus::Done,
                "isolated i-0a1b2c3d4e5f60718",
            )],
            &[],
            &[],
        );
        assert_eq!(status, Some(Workflow::Resolved));
        assert_eq!(
            note,
            "Firebreak contained this finding: isolated i-0a1b2c3d4e5f60718. Skipped: block-remote-ips: the finding reports no remote IP."
        );
    }

    #[test]
    fn a_failure_notifies_with_the_reason_and_what_was_done_before() {
        let p = plan_for("ec2-network-backdoor.json", false);
        let failure = Failure {
            error: "AwsCallFailed".into(),
            cause: "ec2:ModifyNetworkInterfaceAttribute failed: UnauthorizedOperation".into(),
        };
        let (status, note) = compose(
            &p,
            &[outcome(
                ActionKind::IsolateInstance,
                OutcomeStatus::Done,
                "isolated i-1",
            )],
            &[failure],
            &[],
        );
        assert_eq!(status, Some(Workflow::Notified));
        assert!(note.starts_with("Firebreak could not complete the response: AwsCallFailed: ec2:ModifyNetworkInterfaceAttribute failed"), "{note}");
        assert!(
            note.contains("Done before the failure: isolated i-1."),
            "{note}"
        );
    }

    #[test]
    fn a_refusal_notifies_even_when_something_else_was_done() {
        let p = plan_for("ec2-network-backdoor.json", false);
        let (status, note) = compose(
            &p,
            &[
                outcome(
                    ActionKind::IsolateInstance,
                    OutcomeStatus::Done,
                    "isolated i-1",
                ),
                outcome(
                    ActionKind::BlockRemoteIps,
                    OutcomeStatus::Refused,
                    "the rule band of acl-1 holds only rules Firebreak did not write",
                ),
            ],
            &[],
            &[],
        );
        assert_eq!(status, Some(Workflow::Notified));
        assert!(note.starts_with("Firebreak refused part of the response, needs an analyst: block-remote-ips: the rule band of acl-1"), "{note}");
        assert!(note.contains("Done: isolated i-1."), "{note}");
    }

    #[test]
    fn every_failed_playbook_is_named() {
        let p = plan_for("ec2-network-backdoor.json", false);
        let failures = [
            Failure {
                error: "malicious-remote-ip playbook: AwsCallFailed".into(),
                cause: "ec2:CreateNetworkAclEntry failed".into(),
            },
            Failure {
                error: "ec2-compromise playbook: InstanceNotFound".into(),
                cause: "gone".into(),
            },
        ];
        let (status, note) = compose(&p, &[], &failures, &[]);
        assert_eq!(status, Some(Workflow::Notified));
        assert!(note.contains("malicious-remote-ip playbook: AwsCallFailed: ec2:CreateNetworkAclEntry failed; ec2-compromise playbook: InstanceNotFound: gone."), "{note}");
    }

    #[test]
    fn exempt_findings_get_a_note_and_keep_their_status() {
        let p = plan_for("ec2-exempt-instance.json", false);
        let (status, note) = compose(&p, &[], &[], &[]);
        assert_eq!(status, None);
        assert!(note.starts_with("Firebreak took no action. Skipped: isolate-instance: instance i-0b1b2c3d4e5f60718 is tagged firebreak:exempt=true"), "{note}");
    }

    #[test]
    fn dry_runs_change_no_status() {
        let p = plan_for("ec2-network-backdoor.json", true);
        let (status, note) = compose(
            &p,
            &[outcome(
                ActionKind::IsolateInstance,
                OutcomeStatus::DryRun,
                "dry run: would isolate i-1",
            )],
            &[],
            &[],
        );
        assert_eq!(status, None);
        assert!(
            note.starts_with(
                "Firebreak dry run, nothing changed. Would do: dry run: would isolate i-1."
            ),
            "{note}"
        );
    }

    #[test]
    fn notes_fit_security_hubs_limit() {
        let p = plan_for("ec2-network-backdoor.json", false);
        let long = "é".repeat(2000);
        let (_, note) = compose(
            &p,
            &[outcome(
                ActionKind::IsolateInstance,
                OutcomeStatus::Done,
                &long,
            )],
            &[],
            &[],
        );
        assert_eq!(note.chars().count(), MAX_NOTE_CHARS);
        assert!(note.ends_with('…'));
        assert_eq!(fit("short"), "short");
    }
}
