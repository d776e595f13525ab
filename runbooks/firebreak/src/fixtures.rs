//! For the runbooks' unit tests: the offline plan of one of the repository's finding
//! fixtures (`tests/fixtures/findings/NAME`) under the built-in policy. Not used by any
//! Lambda at run time; the path is fixed at compile time.

use crate::finding::parse_input_bytes;
use crate::plan::{plan, Enrichment, Plan};
use crate::policy::Policy;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/findings/"
);

/// The plan for the first finding of fixture `name`, offline, with the built-in policy.
pub fn fixture_plan(name: &str, dry_run: bool) -> Result<Plan, String> {
    let bytes = std::fs::read(format!("{FIXTURES}{name}")).map_err(|e| format!("{name}: {e}"))?;
    let input = parse_input_bytes(&bytes).map_err(|e| format!("{name}: {e}"))?;
    let finding = input
        .findings
        .first()
        .ok_or_else(|| format!("{name}: no finding"))?;
    let policy = Policy::built_in().map_err(|e| e.to_string())?;
    Ok(plan(
        finding,
        &policy,
        "built-in",
        Enrichment::Offline,
        dry_run,
    ))
}

/// A closed response for the fixture's plan: its first playbook ran, and every planned
/// containment action ended `status`.
pub fn fixture_close(
    name: &str,
    dry_run: bool,
    status: crate::outcome::OutcomeStatus,
) -> Result<crate::outcome::CloseRequest, String> {
    use crate::outcome::{ActionOutcome, CloseRequest, PlaybookResult};
    use crate::policy::ActionKind;
    let plan = fixture_plan(name, dry_run)?;
    let outcomes = plan
        .actions
        .iter()
        .filter(|a| a.kind() != ActionKind::MarkResolved)
        .map(|a| ActionOutcome {
            action: a.kind(),
            status,
            target: a.target(),
            summary: format!("did {}", a.kind().name()),
            changes: vec![],
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            finished_at: time::OffsetDateTime::UNIX_EPOCH,
        })
        .collect();
    let playbook = *plan
        .playbooks
        .first()
        .ok_or("the fixture's plan runs no playbook")?;
    Ok(CloseRequest {
        results: vec![PlaybookResult {
            playbook,
            outcomes,
            failure: None,
        }],
        plan,
        mark: None,
        failure: None,
        execution_id: Some("exec-1".into()),
        notifications: None,
        approval: None,
        ticket: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_plan_and_missing_ones_say_so() {
        let p = super::fixture_plan("ec2-network-backdoor.json", true).unwrap();
        assert!(p.dry_run && !p.actions.is_empty());
        assert!(super::fixture_plan("nope.json", false)
            .unwrap_err()
            .starts_with("nope.json: "));
    }
}
