//! How a response ended, decided once. mark-resolved writes it into the finding's workflow
//! status, audit-log into the execution record, the state machine routes on it and the
//! CLI's verdict is it: one word, one meaning everywhere.

use serde::{Deserialize, Serialize};

use crate::outcome::{ActionOutcome, Failure, OutcomeStatus};
use crate::plan::Plan;
use crate::policy::ActionKind;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// Every planned action succeeded (or was already in place): RESOLVED.
    Contained,
    /// Some planned actions succeeded, others did not run (a drill's filter, a target
    /// that failed validation): NOTIFIED with what is missing.
    PartlyContained,
    /// Actions were planned but none ran: NOTIFIED with why.
    NotContained,
    /// The policy planned nothing (exempt, below threshold, no rule): a note, status kept.
    NothingToDo,
    /// A runbook found it unsafe or impossible to act (a service-linked role, a full rule
    /// band): NOTIFIED, an analyst decides.
    Refused,
    /// A step failed after its retries: NOTIFIED with the reason; the execution fails.
    Failed,
    /// Nothing changed by design; the note says what would have been done.
    DryRun,
}

/// The Security Hub workflow status a resolution sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

impl Resolution {
    pub const ALL: [Resolution; 7] = [
        Resolution::Contained,
        Resolution::PartlyContained,
        Resolution::NotContained,
        Resolution::NothingToDo,
        Resolution::Refused,
        Resolution::Failed,
        Resolution::DryRun,
    ];

    /// The name it has in JSON, the audit record, the ASL Choice and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Contained => "contained",
            Resolution::PartlyContained => "partly-contained",
            Resolution::NotContained => "not-contained",
            Resolution::NothingToDo => "nothing-to-do",
            Resolution::Refused => "refused",
            Resolution::Failed => "failed",
            Resolution::DryRun => "dry-run",
        }
    }

    /// How far from contained: the order in which [`Resolution::overall`] picks.
    fn rank(self) -> u8 {
        match self {
            Resolution::Failed => 0,
            Resolution::Refused => 1,
            Resolution::NotContained => 2,
            Resolution::PartlyContained => 3,
            Resolution::DryRun => 4,
            Resolution::Contained => 5,
            Resolution::NothingToDo => 6,
        }
    }

    /// One word for several findings' responses: the one furthest from contained.
    pub fn overall(all: impl IntoIterator<Item = Resolution>) -> Option<Resolution> {
        all.into_iter().min_by_key(|r| r.rank())
    }

    /// `None`: the workflow status is left as it is (a note is still written).
    pub fn workflow(self) -> Option<Workflow> {
        match self {
            Resolution::Contained => Some(Workflow::Resolved),
            Resolution::NothingToDo | Resolution::DryRun => None,
            Resolution::PartlyContained
            | Resolution::NotContained
            | Resolution::Refused
            | Resolution::Failed => Some(Workflow::Notified),
        }
    }

    /// How the response for `plan` ended, from what the runbooks returned and what failed.
    /// `outcomes` may include the closing step's own; it is not a containment action.
    pub fn of(plan: &Plan, outcomes: &[ActionOutcome], failures: &[Failure]) -> Resolution {
        let containment = |o: &&ActionOutcome| o.action != ActionKind::MarkResolved;
        if !failures.is_empty() {
            return Resolution::Failed;
        }
        if outcomes
            .iter()
            .filter(containment)
            .any(|o| o.status == OutcomeStatus::Refused)
        {
            return Resolution::Refused;
        }
        let mut planned = 0usize;
        let mut done = 0usize;
        for kind in ActionKind::ALL
            .into_iter()
            .filter(|k| *k != ActionKind::MarkResolved)
        {
            let wanted = plan.actions_of(kind).count();
            let got = outcomes
                .iter()
                .filter(|o| o.action == kind && o.status.in_place())
                .count();
            planned += wanted;
            done += got.min(wanted);
        }
        let gaps = plan
            .skipped
            .iter()
            .filter(|s| s.reason.leaves_gap())
            .count();
        match (planned + gaps, done) {
            (0, _) => Resolution::NothingToDo,
            _ if plan.dry_run => Resolution::DryRun,
            (all, done) if done == all => Resolution::Contained,
            (_, 0) => Resolution::NotContained,
            _ => Resolution::PartlyContained,
        }
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Playbook;
    use time::OffsetDateTime;

    fn plan(dry_run: bool) -> Plan {
        crate::fixtures::fixture_plan("ec2-network-backdoor.json", dry_run).unwrap()
    }

    fn outcome(action: ActionKind, status: OutcomeStatus) -> ActionOutcome {
        ActionOutcome {
            action,
            status,
            target: String::new(),
            summary: String::new(),
            changes: Vec::new(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn all_done(p: &Plan) -> Vec<ActionOutcome> {
        p.actions
            .iter()
            .map(|a| outcome(a.kind(), OutcomeStatus::Done))
            .collect()
    }

    #[test]
    fn resolved_only_when_every_planned_action_succeeded() {
        let p = plan(false);
        assert!(p.actions.len() >= 2, "{:?}", p.actions);
        let done = all_done(&p);
        assert_eq!(Resolution::of(&p, &done, &[]), Resolution::Contained);
        assert_eq!(
            Resolution::of(&p, &done[..1], &[]),
            Resolution::PartlyContained
        );
        assert_eq!(Resolution::of(&p, &[], &[]), Resolution::NotContained);
        let mut already = done.clone();
        already[0].status = OutcomeStatus::AlreadyDone;
        assert_eq!(Resolution::of(&p, &already, &[]), Resolution::Contained);
        let mut not_planned = done.clone();
        not_planned[0].status = OutcomeStatus::NotPlanned;
        assert_eq!(
            Resolution::of(&p, &not_planned, &[]),
            Resolution::PartlyContained
        );
        assert_eq!(Resolution::Contained.workflow(), Some(Workflow::Resolved));
        assert_eq!(
            Resolution::PartlyContained.workflow(),
            Some(Workflow::Notified)
        );
    }

    #[test]
    fn failures_beat_refusals_which_beat_dry_runs() {
        let p = plan(true);
        let mut outs = all_done(&p);
        outs[0].status = OutcomeStatus::Refused;
        let f = Failure {
            error: "AwsCallFailed".into(),
            cause: "x".into(),
        };
        assert_eq!(Resolution::of(&p, &outs, &[f]), Resolution::Failed);
        assert_eq!(Resolution::of(&p, &outs, &[]), Resolution::Refused);
        assert_eq!(Resolution::of(&p, &[], &[]), Resolution::DryRun);
        assert_eq!(Resolution::DryRun.workflow(), None);
        // A dry run with nothing to do says so.
        let exempt = crate::fixtures::fixture_plan("ec2-exempt-instance.json", true).unwrap();
        assert_eq!(Resolution::of(&exempt, &[], &[]), Resolution::NothingToDo);
    }

    #[test]
    fn a_drill_filter_leaves_a_gap_that_is_never_resolved() {
        let mut p = plan(false);
        p.narrow_to(&[Playbook::Ec2Compromise]);
        assert!(p.actions.iter().all(|a| matches!(
            a.kind(),
            ActionKind::IsolateInstance | ActionKind::MarkResolved
        )));
        assert_eq!(p.playbooks, vec![Playbook::Ec2Compromise]);
        let done = all_done(&p);
        assert_eq!(Resolution::of(&p, &done, &[]), Resolution::PartlyContained);
        // Narrowing to a playbook the plan never named runs nothing and says so.
        let mut q = plan(false);
        q.narrow_to(&[Playbook::CredentialCompromise]);
        assert!(q.actions.is_empty());
        assert_eq!(Resolution::of(&q, &[], &[]), Resolution::NotContained);
    }

    #[test]
    fn nothing_planned_is_nothing_to_do() {
        let p = crate::fixtures::fixture_plan("ec2-exempt-instance.json", false).unwrap();
        assert_eq!(Resolution::of(&p, &[], &[]), Resolution::NothingToDo);
        assert_eq!(Resolution::NothingToDo.workflow(), None);
    }

    #[test]
    fn the_overall_word_is_the_one_furthest_from_contained() {
        use Resolution::*;
        assert_eq!(
            Resolution::overall([Contained, NothingToDo]),
            Some(Contained)
        );
        assert_eq!(
            Resolution::overall([Contained, PartlyContained]),
            Some(PartlyContained)
        );
        assert_eq!(
            Resolution::overall([Refused, Failed, Contained]),
            Some(Failed)
        );
        assert_eq!(Resolution::overall([]), None);
    }

    #[test]
    fn names_are_their_json_names() {
        for r in Resolution::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
