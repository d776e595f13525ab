//! revoke-role-sessions: stops stolen credentials. For each role the plan names, puts the
//! inline policy `AWSRevokeOlderSessions` (deny everything to tokens issued before now);
//! for an IAM user's key, deactivates it (never deletes it: the key is evidence and can be
//! re-enabled). The checks and the policy text are in `revoke.rs`.

mod revoke;

use aws_sdk_iam::Client;
use firebreak::error::{InputError, RunbookError};
use firebreak::ids::{AccessKeyId, IamName};
use firebreak::outcome::{ActionOutcome, ActionRequest, Change, OutcomeStatus, RunbookOutput};
use firebreak::plan::PlannedAction;
use firebreak::policy::ActionKind;
use firebreak::reach::Reach;
use firebreak::release::{ReleaseOutcome, ReleaseOutput, ReleasePlan};
use revoke::KeyState;
use serde_json::Value;
use time::OffsetDateTime;

struct Step {
    action: ActionKind,
    target: String,
    started_at: OffsetDateTime,
}

impl Step {
    fn new(action: ActionKind, target: String) -> Step {
        Step {
            action,
            target,
            started_at: OffsetDateTime::now_utc(),
        }
    }
    fn end(self, status: OutcomeStatus, summary: String, changes: Vec<Change>) -> ActionOutcome {
        ActionOutcome {
            action: self.action,
            status,
            target: self.target,
            summary,
            changes,
            started_at: self.started_at,
            finished_at: OffsetDateTime::now_utc(),
        }
    }
}

async fn revoke_role(
    iam: &Client,
    role: &IamName,
    dry_run: bool,
) -> Result<ActionOutcome, RunbookError> {
    let step = Step::new(ActionKind::RevokeRoleSessions, format!("role {role}"));
    let Some(facts) = revoke::read_role(iam, role).await? else {
        return Ok(step.end(
            OutcomeStatus::Refused,
            format!("role {role} does not exist (deleted or in another account); nothing changed"),
            vec![],
        ));
    };
    if facts.service_linked {
        return Ok(step.end(
            OutcomeStatus::Refused,
            format!("role {role} is service-linked: AWS manages it and its sessions; Firebreak never changes it"),
            vec![],
        ));
    }
    let cutoff = revoke::cutoff(OffsetDateTime::now_utc());
    let document = revoke::revocation_document(&cutoff);
    if let Some(why) = revoke::size_refusal(facts.other_policies_chars, &document) {
        return Ok(step.end(
            OutcomeStatus::Refused,
            format!("role {role}: {why}; nothing changed"),
            vec![],
        ));
    }
    let change = Change {
        resource: facts.arn.clone(),
        what: format!("inline policy {}", revoke::POLICY_NAME),
        before: match &facts.current_cutoff {
            Some(c) => format!("denies tokens issued before {c}"),
            None => "absent".into(),
        },
        after: format!("denies tokens issued before {cutoff}"),
    };
    if dry_run {
        return Ok(step.end(
            OutcomeStatus::DryRun,
            format!("dry run: would deny every session of role {role} issued before {cutoff}"),
            vec![change],
        ));
    }
    // A second run is not a no-op on purpose: it moves the cutoff to now, which also
    // revokes sessions started after the first run.
    revoke::put_revocation(iam, role, &document).await?;
    Ok(step.end(
        OutcomeStatus::Done,
        format!("revoked every session of role {role} issued before {cutoff}"),
        vec![change],
    ))
}

async fn disable_key(
    iam: &Client,
    user: &IamName,
    key: &AccessKeyId,
    dry_run: bool,
) -> Result<ActionOutcome, RunbookError> {
    let step = Step::new(
        ActionKind::DisableAccessKey,
        format!("access key {key} of user {user}"),
    );
    let change = |before: &str| Change {
        resource: format!("user/{user}/access-key/{key}"),
        what: "access key status".into(),
        before: before.into(),
        after: "Inactive".into(),
    };
    Ok(match revoke::key_state(iam, user, key).await? {
        KeyState::UserGone => step.end(
            OutcomeStatus::Refused,
            format!("user {user} does not exist; nothing changed"),
            vec![],
        ),
        KeyState::NotTheUsers => step.end(
            OutcomeStatus::Refused,
            format!("access key {key} is not one of user {user}'s keys; nothing changed"),
            vec![],
        ),
        KeyState::Inactive => step.end(
            OutcomeStatus::AlreadyDone,
            format!("access key {key} of user {user} was already inactive"),
            vec![],
        ),
        KeyState::Active if dry_run => step.end(
            OutcomeStatus::DryRun,
            format!("dry run: would deactivate access key {key} of user {user}"),
            vec![change("Active")],
        ),
        KeyState::Active => {
            revoke::deactivate_key(iam, user, key).await?;
            step.end(
                OutcomeStatus::Done,
                format!("deactivated access key {key} of user {user} (not deleted)"),
                vec![change("Active")],
            )
        }
    })
}

pub async fn revoke_credentials(
    req: ActionRequest,
    iam: &Client,
) -> Result<RunbookOutput, RunbookError> {
    let plan = &req.plan;
    let mut outcomes = Vec::new();
    for action in &plan.actions {
        let done = match action {
            PlannedAction::RevokeRoleSessions { role_name, .. } => {
                revoke_role(iam, role_name, plan.dry_run).await
            }
            PlannedAction::DisableAccessKey {
                user_name,
                access_key_id,
            } => disable_key(iam, user_name, access_key_id, plan.dry_run).await,
            _ => continue,
        };
        // A failure after an earlier action changed something reports that change too.
        let outcome = done.map_err(|e| {
            let made: Vec<Change> = outcomes
                .iter()
                .flat_map(|o: &ActionOutcome| o.changes.iter().cloned())
                .collect();
            e.after_changes(&made)
        })?;
        tracing::info!(
            execution_id = req.execution_id.as_deref().unwrap_or(""),
            finding_id = %plan.finding.security_hub.id,
            action = outcome.action.name(),
            target = %outcome.target,
            status = ?outcome.status,
            "{}",
            outcome.summary
        );
        outcomes.push(outcome);
    }
    if outcomes.is_empty() {
        outcomes.push(ActionOutcome::not_planned(
            ActionKind::RevokeRoleSessions,
            "the plan has no credential action",
        ));
    }
    Ok(RunbookOutput { outcomes })
}

/// The release machine's lift of a revocation: the role's `AWSRevokeOlderSessions` goes,
/// only if it is the bare revocation (anything more in it is someone else's, and stays).
/// Never a key: a deactivated key is replaced, never reactivated.
pub async fn lift_revocation(
    plan: &ReleasePlan,
    iam: &Client,
) -> Result<ReleaseOutput, RunbookError> {
    let Some(role) = &plan.role else {
        return Ok(ReleaseOutput::default());
    };
    let outcome = |status: OutcomeStatus, summary: String, changes: Vec<Change>| ReleaseOutcome {
        release: "session-revocation".into(),
        status,
        target: format!("role {role}"),
        summary,
        changes,
    };
    let out = match revoke::revocation_on(iam, role).await? {
        None => outcome(
            OutcomeStatus::AlreadyDone,
            format!("role {role} has no {} policy: nothing to lift", revoke::POLICY_NAME),
            vec![],
        ),
        Some(doc) if !revoke::is_revocation_only(&doc) => outcome(
            OutcomeStatus::Refused,
            format!("role {role}'s {} says more than a revocation: it is not Firebreak's as written, so it stays; lift it by hand", revoke::POLICY_NAME),
            vec![],
        ),
        Some(doc) => {
            let change = Change {
                resource: format!("role {role}"),
                what: format!("inline policy {}", revoke::POLICY_NAME),
                before: match revoke::existing_cutoff(&doc) {
                    Some(c) => format!("denies tokens issued before {c}"),
                    None => "present".into(),
                },
                after: "deleted".into(),
            };
            if plan.dry_run {
                outcome(OutcomeStatus::DryRun, format!("dry run: would lift the session revocation of role {role}"), vec![change])
            } else {
                revoke::delete_revocation(iam, role).await?;
                outcome(OutcomeStatus::Done, format!("lifted the session revocation of role {role}: its older sessions work again"), vec![change])
            }
        }
    };
    tracing::info!(
        execution_id = plan.execution_id.as_deref().unwrap_or(""),
        action = "release-session-revocation",
        role = %role,
        status = out.status.as_str(),
        "{}",
        out.summary
    );
    Ok(ReleaseOutput {
        outcomes: vec![out],
    })
}

/// What the release machine hands revoke-role-sessions: the plan triage verified.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseEvent {
    release: ReleasePlan,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let reach = Reach::from_env(sdk, "revoke-role-sessions");
    let reach = &reach;
    firebreak::runtime::serve("revoke-role-sessions", |event: Value| async move {
        let out = if event.get("release").is_some() {
            let req: ReleaseEvent = InputError::read(event)?;
            let plan = &req.release;
            let iam = Client::new(
                &reach
                    .config_for(&plan.account_id, &plan.region, plan.execution_id.as_deref())
                    .await?,
            );
            serde_json::to_value(lift_revocation(plan, &iam).await?)
        } else {
            let req: ActionRequest = InputError::read(event)?;
            // IAM of the finding's account: a member's role, never a same-named one here.
            let iam = Client::new(
                &reach
                    .for_plan(&req.plan, req.execution_id.as_deref())
                    .await?,
            );
            serde_json::to_value(revoke_credentials(req, &iam).await?)
        };
        out.map_err(|e| RunbookError::Aws {
            operation: "serialise result",
            message: e.to_string(),
            transient: false,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    //! Against mocked IAM answers. The policy really landing on a role, and the key really
    //! going Inactive, is checked against the local account in the end-to-end tests.
    use super::*;
    use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
    use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
    use aws_sdk_iam::operation::update_access_key::UpdateAccessKeyOutput;
    use aws_sdk_iam::types::{AccessKeyMetadata, Role, StatusType};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    fn request(fixture: &str, dry_run: bool) -> ActionRequest {
        ActionRequest {
            plan: firebreak::fixtures::fixture_plan(fixture, dry_run).unwrap(),
            execution_id: Some("exec-1".into()),
        }
    }

    fn role(path: &str) -> Role {
        Role::builder()
            .path(path)
            .role_name("r")
            .role_id("AROAEXAMPLE")
            .arn("arn:aws:iam::123456789012:role/r")
            .create_date(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn role_rules(path: &'static str, other_policy: String) -> Vec<Rule> {
        vec![
            mock!(Client::get_role)
                .then_output(move || GetRoleOutput::builder().role(role(path)).build()),
            mock!(Client::list_role_policies).then_output(|| {
                ListRolePoliciesOutput::builder()
                    .policy_names("app")
                    .build()
                    .unwrap()
            }),
            mock!(Client::get_role_policy).then_output(move || {
                GetRolePolicyOutput::builder()
                    .role_name("r")
                    .policy_name("app")
                    .policy_document(other_policy.clone())
                    .build()
                    .unwrap()
            }),
            mock!(Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build()),
        ]
    }

    fn client(rules: &[Rule]) -> Client {
        let refs: Vec<&Rule> = rules.iter().collect();
        mock_client!(aws_sdk_iam, RuleMode::MatchAny, refs.as_slice())
    }

    const EXFIL: &str = "assumed-role-credential-exfiltration.json";

    #[tokio::test]
    async fn puts_the_cutoff_policy_on_the_role() {
        let rules = role_rules("/", "%7B%22Version%22%3A%222012-10-17%22%7D".into());
        let out = revoke_credentials(request(EXFIL, false), &client(&rules))
            .await
            .unwrap();
        assert_eq!(out.outcomes.len(), 1);
        let o = &out.outcomes[0];
        assert_eq!(o.status, OutcomeStatus::Done, "{o:?}");
        assert!(o.summary.starts_with("revoked every session of role"));
        assert_eq!(o.changes[0].before, "absent");
        assert_eq!(rules[3].num_calls(), 1);
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_writes_nothing() {
        let rules = role_rules("/", "{}".into());
        let out = revoke_credentials(request(EXFIL, true), &client(&rules))
            .await
            .unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::DryRun);
        assert_eq!(rules[0].num_calls(), 1, "the role was read");
        assert_eq!(rules[3].num_calls(), 0, "nothing was put");
    }

    #[tokio::test]
    async fn service_linked_roles_are_refused() {
        let rules = role_rules("/aws-service-role/ec2.amazonaws.com/", "{}".into());
        let out = revoke_credentials(request(EXFIL, false), &client(&rules))
            .await
            .unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::Refused);
        assert!(out.outcomes[0].summary.contains("service-linked"));
        assert_eq!(rules[3].num_calls(), 0);
    }

    #[tokio::test]
    async fn a_role_without_room_for_the_policy_is_refused() {
        let big = format!("{{\"Sid\":\"{}\"}}", "x".repeat(10_100));
        let rules = role_rules("/", big);
        let out = revoke_credentials(request(EXFIL, false), &client(&rules))
            .await
            .unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::Refused);
        assert!(
            out.outcomes[0].summary.contains("10240"),
            "{:?}",
            out.outcomes[0]
        );
        assert_eq!(rules[3].num_calls(), 0);
    }

    #[tokio::test]
    async fn a_missing_role_is_refused_not_an_error() {
        let rules = vec![mock!(Client::get_role).then_error(|| {
            GetRoleError::generic(ErrorMetadata::builder().code("NoSuchEntity").build())
        })];
        let out = revoke_credentials(request(EXFIL, false), &client(&rules))
            .await
            .unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::Refused);
    }

    fn key_rules(key: String, status: StatusType) -> Vec<Rule> {
        vec![
            mock!(Client::list_access_keys).then_output(move || {
                ListAccessKeysOutput::builder()
                    .access_key_metadata(
                        AccessKeyMetadata::builder()
                            .access_key_id(key.clone())
                            .status(status.clone())
                            .build(),
                    )
                    .build()
                    .unwrap()
            }),
            mock!(Client::update_access_key)
                .then_output(|| UpdateAccessKeyOutput::builder().build()),
        ]
    }

    #[tokio::test]
    async fn deactivates_the_users_key() {
        let req = request("iam-user-malicious-caller.json", false);
        let Some(PlannedAction::DisableAccessKey { access_key_id, .. }) =
            req.plan.action(ActionKind::DisableAccessKey).cloned()
        else {
            panic!(
                "the fixture plans a key deactivation: {:?}",
                req.plan.actions
            );
        };
        let rules = key_rules(access_key_id.to_string(), StatusType::Active);
        let out = revoke_credentials(req, &client(&rules)).await.unwrap();
        let o = &out.outcomes[0];
        assert_eq!(o.status, OutcomeStatus::Done, "{o:?}");
        assert_eq!(o.changes[0].after, "Inactive");
        assert_eq!(rules[1].num_calls(), 1);
    }

    #[tokio::test]
    async fn an_inactive_key_is_already_done() {
        let req = request("iam-user-malicious-caller.json", false);
        let Some(PlannedAction::DisableAccessKey { access_key_id, .. }) =
            req.plan.action(ActionKind::DisableAccessKey).cloned()
        else {
            panic!("the fixture plans a key deactivation");
        };
        let rules = key_rules(access_key_id.to_string(), StatusType::Inactive);
        let out = revoke_credentials(req, &client(&rules)).await.unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::AlreadyDone);
        assert_eq!(rules[1].num_calls(), 0);
    }

    #[tokio::test]
    async fn a_key_that_is_not_the_users_is_refused() {
        let rules = key_rules("AKIAOTHERKEY00000000".into(), StatusType::Active);
        let out = revoke_credentials(
            request("iam-user-malicious-caller.json", false),
            &client(&rules),
        )
        .await
        .unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::Refused);
        assert!(out.outcomes[0].summary.contains("is not one of user"));
        assert_eq!(rules[1].num_calls(), 0);
    }
}
