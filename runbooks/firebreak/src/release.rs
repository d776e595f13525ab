//! Release: undoing a response on an operator's word (`firebreak release`, the release
//! machine).
//!
//! What the operator hands the machine (`ReleaseRequest`) is checked once, by triage, into
//! a `ReleasePlan`: one target (an instance, an IP, or a finding's every change), the
//! account and region it is in (a finding's own ARN decides them; anything else must be
//! Firebreak's own or enrolled), and whether it is a dry run (a deployment-wide dry run
//! wins). The runbooks then act only on the plan, and only on what Firebreak itself
//! recorded when it contained the target: a release can put back what was there before,
//! never more.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::ids::{parse_ip, AccountId, Arn, FindingId, IamName, InstanceId, Region};
use crate::outcome::{Change, Failure, OutcomeStatus};
use crate::plan::Deployment;
use crate::policy::Policy;

/// What an operator starts the release machine with. Strings, so that each error names
/// its field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRequest {
    /// An instance Firebreak isolated: its groups, Auto Scaling group and load balancers
    /// come back.
    #[serde(default)]
    pub instance: Option<String>,
    /// An IP Firebreak blocked: its network-ACL entries and ledger tags go.
    #[serde(default)]
    pub ip: Option<String>,
    /// A finding: every instance still isolated for it and every block it made.
    #[serde(default)]
    pub finding: Option<String>,
    /// A role whose sessions Firebreak revoked: its `AWSRevokeOlderSessions` policy goes,
    /// so that tokens issued before the cutoff work again. Only ever on this word: a
    /// finding's release leaves revocations in place (rotating is the fix).
    #[serde(default)]
    pub role: Option<String>,
    /// Where the target is; Firebreak's own account and region when not given (a
    /// finding's ARN names its own).
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// A release request as triage verified it: what the release runbooks act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<IamName>,
    pub account_id: AccountId,
    pub region: Region,
    pub dry_run: bool,
    /// Whether isolate-instance has anything to release (an instance or a finding), and
    /// block-remote-ip (an IP or a finding): the machine's choices read these.
    pub releases_instances: bool,
    pub releases_blocks: bool,
    /// Whether revoke-role-sessions lifts a revocation (a role, named).
    #[serde(default)]
    pub releases_sessions: bool,
    /// The finding's Security Hub product, when the release is a GuardDuty finding's and
    /// not a dry run: mark-resolved writes the release on its note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_product: Option<String>,
    /// The policy's Jira project, for a finding's release that is not a dry run: the
    /// ticket runbook comments on the finding's issue, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<crate::ticket::TicketRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

impl ReleasePlan {
    /// What is released, in words: `instance i-…`, `IP 203.0.113.7`, `finding …`.
    pub fn target(&self) -> String {
        match (&self.instance, &self.ip, &self.finding, &self.role) {
            (Some(i), _, _, _) => format!("instance {i}"),
            (_, Some(ip), _, _) => format!("IP {ip}"),
            (_, _, Some(f), _) => format!("finding {f}"),
            (_, _, _, Some(r)) => format!("role {r}"),
            _ => "nothing".into(),
        }
    }
}

/// What one release runbook hands on: what it put back, target by target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseOutcome {
    /// `instance` or `ip-block`.
    pub release: String,
    /// `done`, `already-done` (nothing of Firebreak's was left), `dry-run` or `refused`
    /// (what is there is not what Firebreak left, so it is left to a person).
    pub status: OutcomeStatus,
    pub target: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseOutput {
    pub outcomes: Vec<ReleaseOutcome>,
}

/// What the release machine hands audit-log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseAuditRequest {
    pub release: ReleasePlan,
    /// isolate-instance's outcomes, then block-remote-ip's (ASL cannot join arrays).
    #[serde(default)]
    pub instances: Vec<ReleaseOutcome>,
    #[serde(default)]
    pub blocks: Vec<ReleaseOutcome>,
    /// revoke-role-sessions' (a role named).
    #[serde(default)]
    pub sessions: Vec<ReleaseOutcome>,
    /// mark-resolved's note on the finding (a finding's release).
    #[serde(default)]
    pub notes: Vec<ReleaseOutcome>,
    #[serde(default)]
    pub failure: Option<Failure>,
    /// The comment on the finding's Jira issue (or why none could be written).
    #[serde(default)]
    pub ticket: Option<crate::ticket::TicketOutput>,
}

impl ReleaseAuditRequest {
    pub fn outcomes(&self) -> Vec<ReleaseOutcome> {
        self.instances
            .iter()
            .chain(&self.blocks)
            .chain(&self.sessions)
            .chain(&self.notes)
            .cloned()
            .collect()
    }

    /// What the release runbooks reported (not the note about it).
    fn releases(&self) -> impl Iterator<Item = &ReleaseOutcome> {
        self.instances
            .iter()
            .chain(&self.blocks)
            .chain(&self.sessions)
    }

    /// The note a finding's release writes: what was put back, in the words of each
    /// outcome. `None` when nothing was put back (a second release): then neither the
    /// note nor the ticket is written again. The workflow status stays: a person decides
    /// whether the finding is closed.
    pub fn note(&self) -> Option<String> {
        let summaries = |status: OutcomeStatus| -> Vec<&str> {
            self.releases()
                .filter(|o| o.status == status)
                .map(|o| o.summary.as_str())
                .collect()
        };
        let done = summaries(OutcomeStatus::Done);
        if done.is_empty() {
            return None;
        }
        let refused = summaries(OutcomeStatus::Refused);
        let mut parts = vec![format!(
            "Firebreak released this finding's containment: {}.",
            done.join("; ")
        )];
        if !refused.is_empty() {
            parts.push(format!("Left to a person: {}.", refused.join("; ")));
        }
        if let Some(e) = &self.release.execution_id {
            parts.push(format!("Release execution {e}."));
        }
        Some(parts.join(" "))
    }

    pub fn changed(&self) -> usize {
        self.outcomes().iter().map(|o| o.changes.len()).sum()
    }
}

/// The Security Hub product of a GuardDuty finding's ARN
/// (`arn:aws:securityhub:REGION::product/aws/guardduty`); `None` for any other id.
pub fn guardduty_product(id: &FindingId) -> Option<String> {
    let arn = Arn::parse(id.as_str()).ok()?;
    (arn.service() == "guardduty" && id.as_str().contains(":detector/")).then(|| {
        format!(
            "arn:{}:securityhub:{}::product/aws/guardduty",
            arn.partition(),
            arn.region()
        )
    })
}

fn invalid(path: &str, reason: impl Into<String>) -> InputError {
    InputError::InvalidValue {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The account and region a finding id names, when it is an ARN that names both
/// (GuardDuty's and Security Hub's are).
pub fn place_of_finding(id: &FindingId) -> Option<(AccountId, Region)> {
    let arn = Arn::parse(id.as_str()).ok()?;
    Some((
        AccountId::parse(arn.account()).ok()?,
        Region::parse(arn.region()).ok()?,
    ))
}

/// The request checked into a plan, or the first field that is wrong. Pure.
pub fn verify(
    req: &ReleaseRequest,
    home: Option<&Deployment>,
    policy: &Policy,
    force_dry_run: bool,
    execution_id: Option<String>,
) -> Result<ReleasePlan, InputError> {
    let given = [&req.instance, &req.ip, &req.finding, &req.role]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given != 1 {
        return Err(invalid(
            "$.release",
            "give exactly one of instance, ip, finding and role",
        ));
    }
    let instance = req
        .instance
        .as_deref()
        .map(InstanceId::parse)
        .transpose()
        .map_err(|e| invalid("$.release.instance", e))?;
    let ip = req
        .ip
        .as_deref()
        .map(parse_ip)
        .transpose()
        .map_err(|e| invalid("$.release.ip", e))?;
    let finding = req
        .finding
        .as_deref()
        .map(FindingId::parse)
        .transpose()
        .map_err(|e| invalid("$.release.finding", e))?;
    let role = req
        .role
        .as_deref()
        .map(IamName::parse)
        .transpose()
        .map_err(|e| invalid("$.release.role", e))?;
    // The guardrails would refuse the call anyway; say so before anything is read.
    if let Some(why) = role
        .as_ref()
        .and_then(|r| policy.role_protected(r.as_str(), None))
    {
        return Err(invalid(
            "$.release.role",
            format!("{why}: Firebreak never changes a protected principal"),
        ));
    }
    let enrolment = &policy.enrolment;
    let account = req
        .account
        .as_deref()
        .map(AccountId::parse)
        .transpose()
        .map_err(|e| invalid("$.release.account", e))?;
    let region = req
        .region
        .as_deref()
        .map(Region::parse)
        .transpose()
        .map_err(|e| invalid("$.release.region", e))?;
    let Some(home) = home else {
        return Err(invalid(
            "FIREBREAK_ACCOUNT_ID",
            "FIREBREAK_ACCOUNT_ID or AWS_REGION is not set (or not valid): Firebreak cannot tell its own account from a member's, so it releases nothing",
        ));
    };
    // A finding's ARN says where it is; a place given beside it must agree.
    let from_finding = finding.as_ref().and_then(place_of_finding);
    if let (Some((fa, fr)), Some(a)) = (&from_finding, &account) {
        if fa != a {
            return Err(invalid(
                "$.release.account",
                format!("the finding is in account {fa}, not {a}"),
            ));
        }
        if let Some(r) = &region {
            if fr != r {
                return Err(invalid(
                    "$.release.region",
                    format!("the finding is in region {fr}, not {r}"),
                ));
            }
        }
    }
    let (account_id, region) = match from_finding {
        Some((a, r)) => (a, r),
        None => (
            account.unwrap_or_else(|| home.account_id.clone()),
            region.unwrap_or_else(|| home.region.clone()),
        ),
    };
    if let Some(why) = home.refuses_place(&account_id, &region, enrolment) {
        let path = if account_id != home.account_id && !enrolment.accounts.contains(&account_id) {
            "$.release.account"
        } else {
            "$.release.region"
        };
        return Err(invalid(path, why));
    }
    Ok(ReleasePlan {
        releases_instances: instance.is_some() || finding.is_some(),
        releases_blocks: ip.is_some() || finding.is_some(),
        releases_sessions: role.is_some(),
        note_product: finding
            .as_ref()
            .filter(|_| !(req.dry_run || force_dry_run))
            .and_then(guardduty_product),
        ticket: policy
            .tickets
            .jira
            .as_ref()
            .filter(|_| finding.is_some() && !(req.dry_run || force_dry_run))
            .map(|j| crate::ticket::TicketRoute {
                project_key: j.project_key.clone(),
                issue_type: j.issue_type.clone(),
            }),
        instance,
        role,
        ip,
        finding,
        account_id,
        region,
        dry_run: req.dry_run || force_dry_run,
        execution_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Enrolment;

    const GD: &str = "arn:aws:guardduty:eu-west-1:222233334444:detector/d1/finding/f1";

    fn home() -> Deployment {
        Deployment {
            account_id: AccountId::parse("111122223333").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
        }
    }

    fn policy(enrolment: Enrolment) -> Policy {
        let mut p = Policy::built_in().unwrap();
        p.enrolment = enrolment;
        p
    }

    fn enrolled() -> Policy {
        policy(Enrolment {
            accounts: vec![AccountId::parse("222233334444").unwrap()],
            regions: vec![Region::parse("eu-west-1").unwrap()],
        })
    }

    fn none() -> Policy {
        policy(Enrolment::default())
    }

    fn req(f: impl FnOnce(&mut ReleaseRequest)) -> ReleaseRequest {
        let mut r = ReleaseRequest::default();
        f(&mut r);
        r
    }

    fn path_of(e: InputError) -> String {
        e.path().unwrap_or("").to_owned()
    }

    fn outcome(status: OutcomeStatus, summary: &str) -> ReleaseOutcome {
        ReleaseOutcome {
            release: "instance".into(),
            status,
            target: "i-0123456789abcdef0".into(),
            summary: summary.into(),
            changes: vec![],
        }
    }

    #[test]
    fn the_release_note_says_what_was_put_back_and_what_was_left() {
        let plan = verify(
            &req(|r| r.finding = Some(GD.into())),
            Some(&home()),
            &enrolled(),
            false,
            None,
        )
        .unwrap();
        let mut audit = ReleaseAuditRequest {
            release: ReleasePlan {
                execution_id: Some("exec-1".into()),
                ..plan
            },
            instances: vec![outcome(OutcomeStatus::Done, "groups restored on eni-1")],
            blocks: vec![outcome(
                OutcomeStatus::Refused,
                "rule 90 on acl-1 is not Firebreak's",
            )],
            sessions: vec![],
            notes: vec![],
            failure: None,
            ticket: None,
        };
        assert_eq!(
            audit.note().as_deref(),
            Some(
                "Firebreak released this finding's containment: groups restored on eni-1. \
             Left to a person: rule 90 on acl-1 is not Firebreak's. Release execution exec-1."
            )
        );
        audit.instances = vec![outcome(OutcomeStatus::AlreadyDone, "nothing left")];
        audit.blocks = vec![];
        assert_eq!(audit.note(), None, "a second release puts nothing back");
        // The note's own outcome is not something the release put back.
        audit.notes = vec![outcome(OutcomeStatus::Done, "the note")];
        assert_eq!(audit.note(), None);
    }

    #[test]
    fn only_a_guardduty_finding_has_a_note_product() {
        let gd = FindingId::parse(GD).unwrap();
        assert_eq!(
            guardduty_product(&gd).as_deref(),
            Some("arn:aws:securityhub:eu-west-1::product/aws/guardduty")
        );
        let other = FindingId::parse(
            "arn:aws:securityhub:eu-west-1:222233334444:subscription/cis/v/1.2.0/1.1/finding/x",
        )
        .unwrap();
        assert_eq!(guardduty_product(&other), None);
    }

    #[test]
    fn an_instance_is_released_in_firebreaks_own_place_by_default() {
        let r = req(|r| r.instance = Some("i-0a1b2c3d4e5f60718".into()));
        let p = verify(&r, Some(&home()), &none(), false, None).unwrap();
        assert_eq!(p.account_id.as_str(), "111122223333");
        assert_eq!(p.region.as_str(), "us-east-1");
        assert!(p.releases_instances && !p.releases_blocks && !p.releases_sessions && !p.dry_run);
        assert_eq!(p.target(), "instance i-0a1b2c3d4e5f60718");
    }

    #[test]
    fn a_finding_releases_both_where_its_arn_says() {
        let r = req(|r| r.finding = Some(GD.into()));
        let p = verify(&r, Some(&home()), &enrolled(), false, None).unwrap();
        assert_eq!(
            (p.account_id.as_str(), p.region.as_str()),
            ("222233334444", "eu-west-1")
        );
        assert!(p.releases_instances && p.releases_blocks);
        assert!(
            !p.releases_sessions,
            "a finding's release never lifts a revocation"
        );
        assert_eq!(
            p.note_product.as_deref(),
            Some("arn:aws:securityhub:eu-west-1::product/aws/guardduty"),
            "the finding's note says it was released"
        );
        let mut dry = r.clone();
        dry.dry_run = true;
        let p = verify(&dry, Some(&home()), &enrolled(), false, None).unwrap();
        assert_eq!(p.note_product, None, "a dry run writes no note");
        let role = req(|r| r.role = Some("web-instance-role".into()));
        let p = verify(&role, Some(&home()), &enrolled(), false, None).unwrap();
        assert!(p.releases_sessions && !p.releases_instances && !p.releases_blocks);
        assert_eq!(p.target(), "role web-instance-role");
        let protected = req(|r| r.role = Some("BreakGlassAdmin".into()));
        let e = verify(&protected, Some(&home()), &enrolled(), false, None).unwrap_err();
        assert_eq!(e.path(), Some("$.release.role"));
        assert!(e.to_string().contains("protected"), "{e}");
    }

    #[test]
    fn exactly_one_target_and_every_value_checked_with_its_field() {
        assert_eq!(
            path_of(verify(&req(|_| {}), Some(&home()), &enrolled(), false, None).unwrap_err()),
            "$.release"
        );
        let two = req(|r| {
            r.ip = Some("203.0.113.7".into());
            r.instance = Some("i-0a1b2c3d4e5f60718".into());
        });
        assert_eq!(
            path_of(verify(&two, Some(&home()), &enrolled(), false, None).unwrap_err()),
            "$.release"
        );
        for (r, path) in [
            (
                req(|r| r.instance = Some("i-nope".into())),
                "$.release.instance",
            ),
            (req(|r| r.ip = Some("0.0.0.0/0".into())), "$.release.ip"),
            (
                req(|r| r.finding = Some(String::new())),
                "$.release.finding",
            ),
            (
                req(|r| {
                    r.ip = Some("203.0.113.7".into());
                    r.account = Some("12".into());
                }),
                "$.release.account",
            ),
            (
                req(|r| {
                    r.ip = Some("203.0.113.7".into());
                    r.region = Some("Mars".into());
                }),
                "$.release.region",
            ),
        ] {
            assert_eq!(
                path_of(verify(&r, Some(&home()), &enrolled(), false, None).unwrap_err()),
                path
            );
        }
    }

    #[test]
    fn a_place_that_is_not_enrolled_or_disagrees_with_the_finding_is_refused() {
        let elsewhere = req(|r| {
            r.instance = Some("i-0a1b2c3d4e5f60718".into());
            r.account = Some("999988887777".into());
        });
        let e = verify(&elsewhere, Some(&home()), &enrolled(), false, None).unwrap_err();
        assert_eq!(e.path(), Some("$.release.account"));
        assert!(e.to_string().contains("not enrolled"), "{e}");
        let region = req(|r| {
            r.instance = Some("i-0a1b2c3d4e5f60718".into());
            r.region = Some("ap-south-1".into());
        });
        assert_eq!(
            path_of(verify(&region, Some(&home()), &enrolled(), false, None).unwrap_err()),
            "$.release.region"
        );
        let lying = req(|r| {
            r.finding = Some(GD.into());
            r.account = Some("111122223333".into());
        });
        let e = verify(&lying, Some(&home()), &enrolled(), false, None).unwrap_err();
        assert!(e.to_string().contains("in account 222233334444"), "{e}");
        // A member's finding is not released when the member is not enrolled.
        let gd = req(|r| r.finding = Some(GD.into()));
        assert!(verify(&gd, Some(&home()), &none(), false, None).is_err());
        // Without its own place, Firebreak releases nowhere.
        assert!(verify(&gd, None, &enrolled(), false, None).is_err());
    }

    #[test]
    fn a_deployment_wide_dry_run_wins() {
        let r = req(|r| r.ip = Some("203.0.113.7".into()));
        assert!(
            verify(&r, Some(&home()), &enrolled(), true, None)
                .unwrap()
                .dry_run
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<ReleaseRequest>(
            serde_json::json!({"ip": "203.0.113.7", "reactivateKeys": true}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("reactivateKeys"), "{e}");
    }
}
