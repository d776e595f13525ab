//! The finding's note, from the plan, the resolution and what the runbooks did. Pure.
//! The workflow status is the resolution's (`firebreak::resolution`), decided there once.

use firebreak::outcome::{ActionOutcome, Failure, OutcomeStatus};
use firebreak::plan::Plan;
use firebreak::policy::ActionKind;
use firebreak::resolution::Resolution;

/// Security Hub's limit on `Note.Text`.
pub const MAX_NOTE_CHARS: usize = 512;

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

/// Planned containment actions that have no outcome saying they are in place.
fn not_done(plan: &Plan, outcomes: &[ActionOutcome]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ActionKind::ALL {
        if kind == ActionKind::MarkResolved {
            continue;
        }
        let in_place = outcomes
            .iter()
            .filter(|o| o.action == kind && o.status.in_place())
            .count();
        out.extend(
            plan.actions_of(kind)
                .skip(in_place)
                .map(|a| format!("{} {}", kind.name(), a.target())),
        );
    }
    out
}

fn list(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join("; ")
    }
}

/// The note for a response that ended as `resolution`.
pub fn compose(
    plan: &Plan,
    resolution: Resolution,
    outcomes: &[ActionOutcome],
    failures: &[Failure],
    extra: &[String],
) -> String {
    let done: Vec<String> = outcomes
        .iter()
        .filter(|o| o.action != ActionKind::MarkResolved && o.status.contained())
        .map(|o| o.summary.clone())
        .collect();
    let refused: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Refused)
        .map(|o| format!("{}: {}", o.action.name(), o.summary))
        .collect();
    let missing = not_done(plan, outcomes);
    let mut parts = Vec::new();
    match resolution {
        Resolution::Failed => {
            let why: Vec<String> = failures
                .iter()
                .map(|f| format!("{}: {}", f.error, f.reason_in_brief()))
                .collect();
            parts.push(format!(
                "Firebreak could not complete the response: {}.",
                why.join("; ")
            ));
            if !done.is_empty() {
                parts.push(format!("Done before the failure: {}.", done.join("; ")));
            }
        }
        Resolution::Refused => {
            parts.push(format!(
                "Firebreak refused part of the response, needs an analyst: {}.",
                refused.join("; ")
            ));
            if !done.is_empty() {
                parts.push(format!("Done: {}.", done.join("; ")));
            }
        }
        Resolution::DryRun => parts.push(format!(
            "Firebreak dry run, nothing changed. Would do: {}.",
            list(&done, "nothing")
        )),
        Resolution::Contained => parts.push(format!(
            "Firebreak contained this finding: {}.",
            done.join("; ")
        )),
        Resolution::PartlyContained => {
            parts.push(format!(
                "Firebreak contained this finding only in part, needs an analyst. Done: {}.",
                done.join("; ")
            ));
            if !missing.is_empty() {
                parts.push(format!("Not done: {}.", missing.join("; ")));
            }
        }
        Resolution::NotContained => parts.push(format!(
            "Firebreak did not contain this finding, needs an analyst. Not done: {}.",
            list(&missing, "see skipped")
        )),
        Resolution::NothingToDo => parts.push("Firebreak took no action.".to_owned()),
    }
    // The approval and the ticket right after what was done: a long note is cut at its
    // end, and the ticket key must survive.
    parts.extend(extra.iter().cloned());
    let skips = skipped(plan);
    if !skips.is_empty() {
        parts.push(format!("Skipped: {}.", skips.join("; ")));
    }
    // Whose account it is and whom to call, last: a long note is cut at its end, and the
    // finding's user-defined fields carry all of it anyway.
    if let Some(account) = &plan.account {
        parts.push(format!("{}.", account.brief()));
    }
    fit(&parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebreak::resolution::Workflow;
    use time::OffsetDateTime;

    /// The resolution's workflow status and the note, as mark-resolved writes them.
    fn close(
        plan: &Plan,
        outcomes: &[ActionOutcome],
        failures: &[Failure],
        _ran: &[()],
    ) -> (Option<Workflow>, String) {
        let r = Resolution::of(plan, outcomes, failures);
        (r.workflow(), compose(plan, r, outcomes, failures, &[]))
    }

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
    fn the_note_names_the_account_and_its_security_contact() {
        let mut p = plan_for("ec2-dns-backdoor.json", false);
        let policy = firebreak::policy::Policy::built_in().unwrap();
        p.account = Some(firebreak::account::AccountContext::new(
            firebreak::account::AccountInfo {
                account_id: p.finding.account_id.clone(),
                name: Some("workload-prod".into()),
                email: None,
                ou_path: vec!["Workloads".into()],
                tags: [("environment".to_owned(), "production".to_owned())].into(),
                security_contact: Some(firebreak::account::Contact {
                    name: Some("Sam Rivera".into()),
                    email: Some("security-prod@example.com".into()),
                    phone: None,
                    title: None,
                }),
            },
            &policy,
            p.finding.severity.score,
        ));
        let (_, note) = close(
            &p,
            &[outcome(
                ActionKind::IsolateInstance,
                OutcomeStatus::Done,
                "isolated i-0a1b2c3d4e5f60718",
            )],
            &[],
            &[],
        );
        assert!(
            note.ends_with("Account 111122223333 (workload-prod, Workloads, production, org severity CRITICAL); security contact Sam Rivera security-prod@example.com."),
            "{note}"
        );
    }

    #[test]
    fn contained_findings_are_resolved_with_what_was_done_and_skipped() {
        let p = plan_for("ec2-dns-backdoor.json", false);
        let (status, note) = close(
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
        let (status, note) = close(
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
        let (status, note) = close(
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
        let (status, note) = close(&p, &[], &failures, &[]);
        assert_eq!(status, Some(Workflow::Notified));
        assert!(note.contains("malicious-remote-ip playbook: AwsCallFailed: ec2:CreateNetworkAclEntry failed; ec2-compromise playbook: InstanceNotFound: gone."), "{note}");
    }

    #[test]
    fn exempt_findings_get_a_note_and_keep_their_status() {
        let p = plan_for("ec2-exempt-instance.json", false);
        let (status, note) = close(&p, &[], &[], &[]);
        assert_eq!(status, None);
        assert!(note.starts_with("Firebreak took no action. Skipped: isolate-instance: instance i-0b1b2c3d4e5f60718 is tagged firebreak:exempt=true"), "{note}");
    }

    #[test]
    fn dry_runs_change_no_status() {
        let p = plan_for("ec2-network-backdoor.json", true);
        let (status, note) = close(
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
        let (_, note) = close(
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
