//! Planning: finding + policy + what triage learned from AWS → the actions to run with
//! their exact targets, and every action skipped with its reason. Pure: no AWS calls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::finding::{
    AccessKeyTarget, Finding, InstanceTarget, NetworkInterface, RoleTarget, UserType,
};
use crate::ids::*;
use crate::policy::{glob_match, ActionKind, Enrolment, IpBlocking, Policy, PolicyRef};

/// What triage read from AWS about the finding's instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Enrichment {
    /// No AWS calls were made (`firebreak plan`): the finding's own data is used.
    Offline,
    /// The finding names no instance, so there was nothing to look up.
    NotNeeded,
    /// EC2 has no such instance (terminated, another account, or a placeholder).
    InstanceNotFound {
        instance_id: InstanceId,
    },
    Instance(InstanceFacts),
    /// The instances an attack sequence names, as EC2 has them, and the ids it has not.
    #[serde(rename_all = "camelCase")]
    Instances {
        found: Vec<InstanceFacts>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<InstanceId>,
    },
    /// The Lambda function as Lambda has it: its tags and execution role.
    Function(FunctionFacts),
    /// Lambda has no such function (deleted, or a placeholder).
    FunctionNotFound {
        function_name: FunctionName,
    },
    /// The finding's buckets as S3 has them (their tags), those S3 has not (deleted),
    /// and those S3 refused to show Firebreak in the finding's account (another
    /// account's, or denied by the bucket's policy).
    #[serde(rename_all = "camelCase")]
    Buckets {
        found: Vec<BucketFacts>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<BucketName>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refused: Vec<BucketName>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketFacts {
    pub name: BucketName,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionFacts {
    pub function_name: FunctionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<Arn>,
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFacts {
    pub instance_id: InstanceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile_arn: Option<Arn>,
    /// The role behind the instance profile, from IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum PlannedAction {
    #[serde(rename = "isolate-instance", rename_all = "camelCase")]
    IsolateInstance {
        instance_id: InstanceId,
        /// Known interfaces; the runbook reads the current list from EC2 again.
        network_interfaces: Vec<NetworkInterfaceId>,
        vpc_ids: Vec<VpcId>,
    },
    #[serde(rename = "revoke-role-sessions", rename_all = "camelCase")]
    RevokeRoleSessions {
        role_name: IamName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<Arn>,
        /// Where the role came from: the access key, the instance profile, the finding.
        via: String,
    },
    #[serde(rename = "disable-access-key", rename_all = "camelCase")]
    DisableAccessKey {
        user_name: IamName,
        access_key_id: AccessKeyId,
    },
    #[serde(rename = "block-remote-ips", rename_all = "camelCase")]
    BlockRemoteIps {
        ips: Vec<IpAddr>,
        subnet_ids: Vec<SubnetId>,
        /// The policy's rule band, quota and block lifetime, fixed at plan time so the
        /// plan says exactly what will be written.
        #[serde(default)]
        settings: IpBlocking,
    },
    /// Reserved concurrency 0: the function stops running; the prior setting is kept on a
    /// tag so that a release can put it back.
    #[serde(rename = "throttle-function", rename_all = "camelCase")]
    ThrottleFunction {
        function_name: FunctionName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function_arn: Option<Arn>,
    },
    /// All four S3 Block Public Access settings on the bucket; the prior ones are kept on
    /// a tag so that a release can put them back.
    #[serde(rename = "block-bucket-public-access", rename_all = "camelCase")]
    BlockBucketPublicAccess { bucket: BucketName },
    /// A tag on the malicious object naming the threats, for lifecycle rules, bucket
    /// policies and people to act on; the object itself is kept as evidence.
    #[serde(rename = "tag-s3-object", rename_all = "camelCase")]
    TagS3Object {
        bucket: BucketName,
        key: ObjectKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<ObjectVersionId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        threats: Vec<String>,
    },
    #[serde(rename = "mark-resolved", rename_all = "camelCase")]
    MarkResolved {
        finding_id: FindingId,
        product_arn: Arn,
    },
}

impl PlannedAction {
    pub fn kind(&self) -> ActionKind {
        match self {
            PlannedAction::IsolateInstance { .. } => ActionKind::IsolateInstance,
            PlannedAction::RevokeRoleSessions { .. } => ActionKind::RevokeRoleSessions,
            PlannedAction::DisableAccessKey { .. } => ActionKind::DisableAccessKey,
            PlannedAction::BlockRemoteIps { .. } => ActionKind::BlockRemoteIps,
            PlannedAction::ThrottleFunction { .. } => ActionKind::ThrottleFunction,
            PlannedAction::BlockBucketPublicAccess { .. } => ActionKind::BlockBucketPublicAccess,
            PlannedAction::TagS3Object { .. } => ActionKind::TagS3Object,
            PlannedAction::MarkResolved { .. } => ActionKind::MarkResolved,
        }
    }

    /// One line naming the target, for notes and the CLI.
    pub fn target(&self) -> String {
        match self {
            PlannedAction::IsolateInstance {
                instance_id,
                network_interfaces,
                ..
            } => {
                if network_interfaces.is_empty() {
                    instance_id.to_string()
                } else {
                    let enis: Vec<&str> = network_interfaces.iter().map(|e| e.as_str()).collect();
                    format!("{instance_id} ({})", enis.join(", "))
                }
            }
            PlannedAction::RevokeRoleSessions { role_name, via, .. } => {
                format!("role {role_name} (from {via})")
            }
            PlannedAction::DisableAccessKey {
                user_name,
                access_key_id,
            } => format!("access key {access_key_id} of user {user_name}"),
            PlannedAction::BlockRemoteIps {
                ips, subnet_ids, ..
            } => {
                let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
                let subnets: Vec<&str> = subnet_ids.iter().map(|s| s.as_str()).collect();
                format!(
                    "{} in the network ACLs of {}",
                    ips.join(", "),
                    subnets.join(", ")
                )
            }
            PlannedAction::ThrottleFunction { function_name, .. } => {
                format!("Lambda function {function_name}")
            }
            PlannedAction::BlockBucketPublicAccess { bucket } => format!("S3 bucket {bucket}"),
            PlannedAction::TagS3Object {
                bucket,
                key,
                version_id,
                ..
            } => match version_id {
                Some(v) => format!("S3 object s3://{bucket}/{key} (version {v})"),
                None => format!("S3 object s3://{bucket}/{key}"),
            },
            PlannedAction::MarkResolved { finding_id, .. } => format!("finding {finding_id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    UnknownFindingType,
    NoPolicyRule,
    SeverityBelowThreshold,
    SampleFinding,
    ArchivedFinding,
    ExemptAccount,
    ExemptFindingType,
    ExemptTag,
    AllowListedIp,
    ProtectedPrincipal,
    NoTarget,
    TargetNotFound,
    EnrichmentSkipped,
    NothingContained,
    /// A drill's `playbooks` filter left this action out: planned, but not run.
    NotSelected,
    /// A value the action needs failed validation: the action cannot run safely.
    InvalidTarget,
    /// The finding is from another account or region than the one Firebreak is deployed
    /// in, and acting there is not set up: acting here would touch a same-named resource
    /// of the wrong account.
    OutsideDeployment,
    /// The policy knows the type and leaves it to a person (no containment runbook for
    /// it, or acting on it alone would do harm): NOTIFIED with the reason.
    NotifyOnly,
    /// An attack sequence names more targets than the policy's cap: nothing is done and
    /// a person decides.
    OverCap,
    /// AWS refused Firebreak's read of the target in the finding's account (a bucket of
    /// another account, or one whose policy denies Firebreak): it may still be exposed,
    /// and Firebreak cannot tell or act, so a person must.
    TargetRefused,
}

impl SkipReason {
    /// A skip that leaves part of the threat live although the policy wanted it handled:
    /// the finding cannot be RESOLVED. Exemptions, allow-lists and protected principals are
    /// the policy's own decisions and leave no gap.
    pub fn leaves_gap(self) -> bool {
        matches!(
            self,
            SkipReason::NotSelected
                | SkipReason::InvalidTarget
                | SkipReason::OutsideDeployment
                | SkipReason::NotifyOnly
                | SkipReason::OverCap
                | SkipReason::TargetRefused
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skip {
    /// `None` when the skip concerns the whole finding (no rule, unknown type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub reason: SkipReason,
    pub detail: String,
}

/// The owner, team and environment of the affected resource, from its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Which playbooks the plan needs; the response state machine routes on these.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Playbook {
    Ec2Compromise,
    CredentialCompromise,
    MaliciousRemoteIp,
    FunctionCompromise,
    S3Exposure,
}

impl Playbook {
    pub const ALL: [Playbook; 5] = [
        Playbook::Ec2Compromise,
        Playbook::CredentialCompromise,
        Playbook::MaliciousRemoteIp,
        Playbook::FunctionCompromise,
        Playbook::S3Exposure,
    ];

    pub fn parse(name: &str) -> Option<Playbook> {
        Playbook::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The playbook that runs an action; `None` for the closing step.
    pub fn running(action: ActionKind) -> Option<Playbook> {
        match action {
            ActionKind::IsolateInstance => Some(Playbook::Ec2Compromise),
            ActionKind::RevokeRoleSessions | ActionKind::DisableAccessKey => {
                Some(Playbook::CredentialCompromise)
            }
            ActionKind::BlockRemoteIps => Some(Playbook::MaliciousRemoteIp),
            ActionKind::ThrottleFunction => Some(Playbook::FunctionCompromise),
            ActionKind::BlockBucketPublicAccess | ActionKind::TagS3Object => {
                Some(Playbook::S3Exposure)
            }
            ActionKind::MarkResolved => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Playbook::Ec2Compromise => "ec2-compromise",
            Playbook::CredentialCompromise => "credential-compromise",
            Playbook::MaliciousRemoteIp => "malicious-remote-ip",
            Playbook::FunctionCompromise => "function-compromise",
            Playbook::S3Exposure => "s3-exposure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub finding: Finding,
    pub dry_run: bool,
    pub policy: PolicyRef,
    pub matched_rules: Vec<String>,
    pub context: ResourceContext,
    pub enrichment: Enrichment,
    /// Whose account the finding is in (Organizations, the Account API or an accounts
    /// file), with the organisation severity; `None` when nothing is known of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<crate::account::AccountContext>,
    pub playbooks: Vec<Playbook>,
    pub actions: Vec<PlannedAction>,
    pub skipped: Vec<Skip>,
    /// Who is told, decided here from the policy's routing table.
    #[serde(default)]
    pub notify: NotifyRoute,
    /// Set by triage when the policy (or a drill) wants a person's yes before any action
    /// runs; the response machine waits on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::Gate>,
    /// Set by triage when the policy opens tickets: the Jira project this response's goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<crate::ticket::TicketRoute>,
}

/// The owning team's topic (a name in Firebreak's account; `None`: the deployment's
/// owners topic) and the band from which the response team is alerted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners_topic: Option<String>,
    pub alert_min_severity: crate::finding::SeverityBand,
}

impl Default for NotifyRoute {
    fn default() -> Self {
        NotifyRoute {
            owners_topic: None,
            alert_min_severity: crate::finding::SeverityBand::High,
        }
    }
}

/// The first route whose every condition matches the resource's and the account's tags.
pub fn notify_route(
    policy: &Policy,
    context: &ResourceContext,
    account: Option<&crate::account::AccountContext>,
) -> NotifyRoute {
    let matches = |pattern: &Option<String>, value: Option<&String>| match pattern {
        None => true,
        Some(p) => value.is_some_and(|v| crate::policy::glob_match_ignore_case(p, v)),
    };
    let owners_topic = policy
        .notifications
        .routes
        .iter()
        .find(|r| {
            matches(&r.team, context.team.as_ref())
                && matches(&r.environment, context.environment.as_ref())
                && matches(&r.account_team, account.and_then(|a| a.team.as_ref()))
                && matches(
                    &r.account_classification,
                    account.and_then(|a| a.environment.as_ref()),
                )
        })
        .map(|r| r.topic.clone());
    NotifyRoute {
        owners_topic,
        alert_min_severity: policy.notifications.alert_min_severity,
    }
}

impl Plan {
    pub fn action(&self, kind: ActionKind) -> Option<&PlannedAction> {
        self.actions.iter().find(|a| a.kind() == kind)
    }

    /// Every planned action of one kind (a finding may name several roles).
    pub fn actions_of(&self, kind: ActionKind) -> impl Iterator<Item = &PlannedAction> {
        self.actions.iter().filter(move |a| a.kind() == kind)
    }

    /// A drill's `playbooks` filter: keeps only the actions of the named playbooks. It can
    /// only take away: every action it removes becomes a `NotSelected` skip, so the
    /// finding cannot end RESOLVED while a planned action did not run.
    pub fn narrow_to(&mut self, selected: &[Playbook]) {
        let (kept, dropped): (Vec<PlannedAction>, Vec<PlannedAction>) =
            std::mem::take(&mut self.actions)
                .into_iter()
                .partition(|a| Playbook::running(a.kind()).is_none_or(|p| selected.contains(&p)));
        for a in &dropped {
            let playbook = Playbook::running(a.kind())
                .map(Playbook::name)
                .unwrap_or("");
            self.skipped.push(Skip {
                action: Some(a.kind()),
                target: Some(a.target()),
                reason: SkipReason::NotSelected,
                detail: format!(
                    "planned, but the drill ran only {} (not {playbook})",
                    selected
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        self.actions = kept;
        if self
            .actions
            .iter()
            .all(|a| a.kind() == ActionKind::MarkResolved)
        {
            self.actions.clear();
        }
        self.playbooks.retain(|p| selected.contains(p));
    }

    /// Holds every action: the finding is outside where Firebreak may act. Each becomes an
    /// `outside-deployment` skip with the reason, so the finding ends NOTIFIED.
    pub fn hold_outside(&mut self, why: &str) {
        for a in std::mem::take(&mut self.actions) {
            if a.kind() == ActionKind::MarkResolved {
                continue;
            }
            self.skipped.push(Skip {
                action: Some(a.kind()),
                target: Some(a.target()),
                reason: SkipReason::OutsideDeployment,
                detail: why.to_owned(),
            });
        }
        if !self
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::OutsideDeployment)
        {
            self.skipped.push(Skip {
                action: None,
                target: None,
                reason: SkipReason::OutsideDeployment,
                detail: why.to_owned(),
            });
        }
        self.playbooks.clear();
    }
}

/// Where this deployment of Firebreak runs. It acts there, and in the accounts and
/// regions its policy enrols (`enrolment`), nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub account_id: AccountId,
    pub region: Region,
}

impl Deployment {
    /// `FIREBREAK_ACCOUNT_ID` and `AWS_REGION`, as the CDK app sets them; `None` when
    /// either is missing or invalid.
    pub fn from_env() -> Option<Deployment> {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        Some(Deployment {
            account_id: AccountId::parse(&var("FIREBREAK_ACCOUNT_ID")?).ok()?,
            region: Region::parse(&var("AWS_REGION")?).ok()?,
        })
    }

    /// Why Firebreak may not act on this finding, if it may not: it is from an account or
    /// a region that is neither this deployment's nor enrolled.
    pub fn refuses(&self, finding: &Finding, enrolment: &Enrolment) -> Option<String> {
        self.refuses_place(&finding.account_id, &finding.region, enrolment)
    }

    /// Why Firebreak may not act in this account and region, if it may not.
    pub fn refuses_place(
        &self,
        account: &AccountId,
        region: &Region,
        enrolment: &Enrolment,
    ) -> Option<String> {
        if account != &self.account_id && !enrolment.accounts.contains(account) {
            return Some(format!(
                "the finding is from account {account}, which is not enrolled (Firebreak runs in account {} and acts there and in the accounts its policy's enrolment.accounts lists): nothing was looked up or changed in {account}; contain it there by hand, or enrol the account and deploy the member stack to it",
                self.account_id
            ));
        }
        if region != &self.region && !enrolment.regions.contains(region) {
            return Some(format!(
                "the finding is from region {region}, which is not enrolled (Firebreak runs in {} and acts there and in the regions its policy's enrolment.regions lists): nothing was looked up or changed in {region}; contain it there by hand, or enrol the region",
                self.region
            ));
        }
        None
    }
}

struct Planner<'a> {
    finding: &'a Finding,
    policy: &'a Policy,
    /// What is known of the finding's account, for the organisation exemptions.
    account: Option<&'a crate::account::AccountContext>,
    skipped: Vec<Skip>,
}

impl Planner<'_> {
    fn skip(
        &mut self,
        action: Option<ActionKind>,
        target: Option<String>,
        reason: SkipReason,
        detail: String,
    ) {
        self.skipped.push(Skip {
            action,
            target,
            reason,
            detail,
        });
    }

    /// Reasons that stop every action of the finding, first match wins.
    fn finding_level_block(&self) -> Option<(SkipReason, String)> {
        let f = self.finding;
        if f.sample {
            return Some((
                SkipReason::SampleFinding,
                "generated sample finding: never acted on".into(),
            ));
        }
        if f.archived {
            return Some((
                SkipReason::ArchivedFinding,
                "the finding is archived (suppressed or closed in GuardDuty)".into(),
            ));
        }
        let ex = &self.policy.exemptions;
        if let Some(e) = ex.accounts.iter().find(|e| e.account_id == f.account_id) {
            return Some((
                SkipReason::ExemptAccount,
                format!("account {} is exempt: {}", f.account_id, e.reason),
            ));
        }
        if let Some((e, p)) = ex
            .finding_types_by_account
            .iter()
            .filter(|e| e.account_id == f.account_id)
            .find_map(|e| {
                e.finding_types
                    .iter()
                    .find(|p| glob_match(p, &f.finding_type.name))
                    .map(|p| (e, p))
            })
        {
            return Some((
                SkipReason::ExemptFindingType,
                format!(
                    "{} in account {} is exempt (pattern {p:?}): {}",
                    f.finding_type.name, f.account_id, e.reason
                ),
            ));
        }
        if let Some(a) = self.account {
            let matches = |e: &&crate::policy::OrganisationExemption| {
                let class_ok = e
                    .classification
                    .as_deref()
                    .is_none_or(|pat| a.environment.as_deref().is_some_and(|c| glob_match(pat, c)));
                let sev_ok = e.org_severities.is_empty()
                    || a.org_severity
                        .is_some_and(|s| e.org_severities.contains(&s));
                class_ok && sev_ok
            };
            if let Some(e) = ex.organisation.iter().find(matches) {
                let class = a.environment.as_deref().unwrap_or("none");
                let sev = a.org_severity.map_or("unknown".into(), |s| s.to_string());
                return Some((
                    SkipReason::ExemptAccount,
                    format!(
                        "account {} (classification {class}, organisation severity {sev}) is exempt: {}",
                        f.account_id, e.reason
                    ),
                ));
            }
        }
        None
    }
}

/// Makes the plan. `enrichment` is what triage read from AWS, or `Offline`.
pub fn plan(
    finding: &Finding,
    policy: &Policy,
    policy_source: &str,
    enrichment: Enrichment,
    dry_run: bool,
) -> Plan {
    plan_in(finding, policy, policy_source, enrichment, None, dry_run)
}

/// `plan`, knowing whose account the finding is in: its organisation severity decides
/// the rules that name `orgSeverities`, and the plan carries the account for the note.
pub fn plan_in(
    finding: &Finding,
    policy: &Policy,
    policy_source: &str,
    enrichment: Enrichment,
    account: Option<crate::account::AccountInfo>,
    dry_run: bool,
) -> Plan {
    let account = account
        .filter(|a| a.account_id == finding.account_id)
        .map(|a| crate::account::AccountContext::new(a, policy, finding.severity.score));
    let org_severity = account.as_ref().and_then(|a| a.org_severity);
    let mut p = Planner {
        finding,
        policy,
        account: account.as_ref(),
        skipped: Vec::new(),
    };
    let type_name = finding.finding_type.name.as_str();

    // Which actions the matching rules ask for, and which rules missed on severity only.
    let mut wanted: BTreeMap<ActionKind, Vec<String>> = BTreeMap::new();
    let mut below: BTreeMap<ActionKind, String> = BTreeMap::new();
    let mut matched_rules = Vec::new();
    for rule in &policy.rules {
        if !rule
            .finding_types
            .iter()
            .any(|pat| glob_match(pat, type_name))
        {
            continue;
        }
        let org_ok = rule.org_severities.is_empty()
            || org_severity.is_some_and(|s| rule.org_severities.contains(&s));
        if !org_ok {
            let wanted_bands = rule
                .org_severities
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(" or ");
            let is = org_severity.map_or("unknown".to_owned(), |s| s.to_string());
            for a in &rule.actions {
                below.entry(*a).or_insert_with(|| {
                    format!(
                        "the organisation severity is {is}, rule {}'s requires {wanted_bands}",
                        rule.name
                    )
                });
            }
            continue;
        }
        if finding.severity.score >= rule.min_severity.score() {
            matched_rules.push(rule.name.clone());
            for a in &rule.actions {
                wanted.entry(*a).or_default().push(rule.name.clone());
            }
        } else {
            for a in &rule.actions {
                below.entry(*a).or_insert_with(|| {
                    format!(
                        "severity {} ({}) is below {}, rule {}'s minimum",
                        finding.severity.score, finding.severity.band, rule.min_severity, rule.name
                    )
                });
            }
        }
    }
    for (action, detail) in &below {
        if !wanted.contains_key(action) {
            p.skip(
                Some(*action),
                None,
                SkipReason::SeverityBelowThreshold,
                detail.clone(),
            );
        }
    }
    if wanted.is_empty() && below.is_empty() {
        if let Some(n) = policy.notify_only_for(type_name) {
            p.skip(
                None,
                None,
                SkipReason::NotifyOnly,
                format!("{type_name} is left to a person ({}): {}", n.name, n.reason),
            );
        } else if finding.finding_type.parsed.is_none() {
            p.skip(
                None,
                None,
                SkipReason::UnknownFindingType,
                format!("{type_name:?} is not a GuardDuty finding type; Firebreak plans no action for it"),
            );
        } else {
            p.skip(
                None,
                None,
                SkipReason::NoPolicyRule,
                format!("no policy rule covers {type_name}"),
            );
        }
    }

    // The instance as triage saw it in EC2, else as the finding reports it.
    let mut instance: Option<InstanceTarget> = finding.targets.instance.clone();
    let mut instance_role: Option<RoleTarget> = None;
    let mut instance_missing = None;
    match &enrichment {
        Enrichment::Instance(facts) => {
            if let Some(i) = instance.as_mut() {
                i.tags = facts.tags.clone();
                i.network_interfaces = facts.network_interfaces.clone();
                i.instance_profile_arn = facts.instance_profile_arn.clone();
            }
            instance_role = facts.role.clone();
        }
        Enrichment::InstanceNotFound { instance_id } => {
            instance_missing = Some(instance_id.clone());
            instance = None;
        }
        Enrichment::Offline
        | Enrichment::NotNeeded
        | Enrichment::Instances { .. }
        | Enrichment::Function(_)
        | Enrichment::FunctionNotFound { .. }
        | Enrichment::Buckets { .. } => {}
    }
    // The function as triage read it from Lambda, else as the finding reports it (an
    // offline plan). Once Lambda has answered, its role is the one: a role the finding
    // names is never revoked for a function Lambda does not have, or has with another.
    let mut function = finding.targets.function.clone();
    let mut function_role: Option<RoleTarget> = function
        .as_ref()
        .and_then(|f| f.role_arn.as_ref())
        .and_then(role_of_arn);
    let mut function_missing = None;
    match &enrichment {
        Enrichment::Function(facts) => {
            if let Some(f) = function.as_mut() {
                f.tags = facts.tags.clone();
                f.function_arn = facts.function_arn.clone().or(f.function_arn.take());
            }
            function_role = facts.role.clone();
        }
        Enrichment::FunctionNotFound { function_name } => {
            function_missing = Some(function_name.clone());
            function = None;
            function_role = None;
        }
        _ => {}
    }
    let context = instance
        .as_ref()
        .map(|i| context_from_tags(policy, &i.tags))
        .unwrap_or_default();

    let mut actions = Vec::new();
    let block = p.finding_level_block();
    let tag = &policy.exemptions.resource_tag;
    // The exempt resource: (its id, what it is).
    let exempt_tag: Option<(String, String)> = instance
        .as_ref()
        .filter(|i| i.tags.get(&tag.key) == Some(&tag.value))
        .map(|i| {
            (
                i.instance_id.to_string(),
                format!("instance {}", i.instance_id),
            )
        })
        .or_else(|| {
            function
                .as_ref()
                .filter(|f| f.tags.get(&tag.key) == Some(&tag.value))
                .map(|f| {
                    (
                        f.function_name.to_string(),
                        format!("Lambda function {}", f.function_name),
                    )
                })
        });

    let kinds: Vec<ActionKind> = wanted
        .keys()
        .copied()
        .filter(|k| *k != ActionKind::MarkResolved)
        .collect();
    let sequence = finding.targets.sequence.as_ref();
    for &kind in kinds.iter().filter(|_| sequence.is_none()) {
        if let Some((reason, detail)) = &block {
            p.skip(Some(kind), None, *reason, detail.clone());
            continue;
        }
        if let Some((id, what)) = &exempt_tag {
            p.skip(
                Some(kind),
                Some(id.clone()),
                SkipReason::ExemptTag,
                format!("{what} is tagged {}={}", tag.key, tag.value),
            );
            continue;
        }
        match kind {
            ActionKind::IsolateInstance => plan_isolation(
                &mut p,
                instance.as_ref(),
                instance_missing.as_ref(),
                &mut actions,
            ),
            ActionKind::RevokeRoleSessions => plan_revocation(
                &mut p,
                instance.as_ref(),
                instance_role.as_ref(),
                function_role.as_ref(),
                &enrichment,
                &mut actions,
            ),
            ActionKind::ThrottleFunction => plan_throttle(
                &mut p,
                function.as_ref(),
                function_missing.as_ref(),
                &mut actions,
            ),
            ActionKind::DisableAccessKey => {
                plan_key(&mut p, finding.targets.access_key.as_ref(), &mut actions)
            }
            ActionKind::BlockBucketPublicAccess | ActionKind::TagS3Object => {
                plan_s3(&mut p, kind, &enrichment, &mut actions)
            }
            ActionKind::BlockRemoteIps => plan_block(
                &mut p,
                instance.as_ref(),
                instance_missing.as_ref(),
                &mut actions,
            ),
            ActionKind::MarkResolved => {}
        }
    }
    if let Some(seq) = sequence {
        match &block {
            Some((reason, detail)) => {
                for &kind in &kinds {
                    p.skip(Some(kind), None, *reason, detail.clone());
                }
            }
            None => plan_sequence(&mut p, seq, &enrichment, &kinds, &mut actions),
        }
    }
    // A runtime finding on a container, a Lambda or S3 finding a rule matched: nothing
    // here can contain it, which the note must say rather than stay silent.
    if actions.is_empty() && block.is_none() && !kinds.is_empty() {
        if let Some(why) = uncontainable(finding.resource_type.as_deref()) {
            p.skip(None, None, SkipReason::NotifyOnly, why);
        }
    }
    if wanted.contains_key(&ActionKind::MarkResolved) {
        if actions.is_empty() {
            p.skip(
                Some(ActionKind::MarkResolved),
                None,
                SkipReason::NothingContained,
                "no containment action will run, so the finding stays open for an analyst".into(),
            );
        } else {
            actions.push(PlannedAction::MarkResolved {
                finding_id: finding.security_hub.id.clone(),
                product_arn: finding.security_hub.product_arn.clone(),
            });
        }
    }

    // A target value that failed validation was dropped at parsing: the actions that
    // needed it cannot run, which the finding's note must say (and it cannot be RESOLVED).
    if block.is_none() && exempt_tag.is_none() && !wanted.is_empty() {
        for f in finding.ignored_fields.iter().filter(|f| f.needed) {
            p.skip(
                None,
                Some(f.path.clone()),
                SkipReason::InvalidTarget,
                format!(
                    "{}: {}; nothing acts on a value that failed validation",
                    f.path, f.reason
                ),
            );
        }
    }

    let playbooks: BTreeSet<Playbook> = actions
        .iter()
        .filter_map(|a| Playbook::running(a.kind()))
        .collect();

    // The planner borrows the account; it is done with it here.
    let skipped = p.skipped;
    let notify = notify_route(policy, &context, account.as_ref());
    Plan {
        finding: finding.clone(),
        dry_run,
        policy: PolicyRef {
            version: policy.policy_version.clone(),
            source: policy_source.to_owned(),
        },
        matched_rules,
        context,
        enrichment,
        playbooks: playbooks.into_iter().collect(),
        actions,
        skipped,
        account,
        notify,
        approval: None,
        ticket: None,
    }
}

fn context_from_tags(policy: &Policy, tags: &BTreeMap<String, String>) -> ResourceContext {
    let pick = |keys: &[String]| keys.iter().find_map(|k| tags.get(k).cloned());
    ResourceContext {
        owner: pick(&policy.context_tags.owner),
        team: pick(&policy.context_tags.team),
        environment: pick(&policy.context_tags.environment),
    }
}

fn not_found(p: &mut Planner<'_>, kind: ActionKind, id: &InstanceId) {
    p.skip(
        Some(kind),
        Some(id.to_string()),
        SkipReason::TargetNotFound,
        format!("EC2 has no instance {id} in this account and region (terminated, in another account, or a placeholder)"),
    );
}

fn plan_isolation(
    p: &mut Planner<'_>,
    instance: Option<&InstanceTarget>,
    missing: Option<&InstanceId>,
    out: &mut Vec<PlannedAction>,
) {
    let kind = ActionKind::IsolateInstance;
    let Some(i) = instance else {
        match missing {
            Some(id) => not_found(p, kind, id),
            None => p.skip(
                Some(kind),
                None,
                SkipReason::NoTarget,
                format!(
                    "the finding names no instance to isolate (resource type {})",
                    p.finding.resource_type.as_deref().unwrap_or("unknown")
                ),
            ),
        }
        return;
    };
    let mut vpc_ids: Vec<VpcId> = i
        .network_interfaces
        .iter()
        .filter_map(|e| e.vpc_id.clone())
        .collect();
    vpc_ids.sort();
    vpc_ids.dedup();
    out.push(PlannedAction::IsolateInstance {
        instance_id: i.instance_id.clone(),
        network_interfaces: i
            .network_interfaces
            .iter()
            .filter_map(|e| e.network_interface_id.clone())
            .collect(),
        vpc_ids,
    });
}

fn plan_revocation(
    p: &mut Planner<'_>,
    instance: Option<&InstanceTarget>,
    instance_role: Option<&RoleTarget>,
    function_role: Option<&RoleTarget>,
    enrichment: &Enrichment,
    out: &mut Vec<PlannedAction>,
) {
    let kind = ActionKind::RevokeRoleSessions;
    let mut roles: Vec<(RoleTarget, String)> = Vec::new();
    if let Some(key) = &p.finding.targets.access_key {
        match (key.user_type, &key.user_name) {
            (Some(UserType::AssumedRole), Some(name)) => roles.push((
                RoleTarget {
                    role_name: name.clone(),
                    role_arn: None,
                },
                "the access key's assumed-role session".into(),
            )),
            (Some(UserType::Root), _) => {
                p.skip(
                    Some(kind),
                    Some("root".into()),
                    SkipReason::ProtectedPrincipal,
                    "root credentials are never touched by automation".into(),
                );
                return;
            }
            _ => {}
        }
    }
    if let Some(role) = &p.finding.targets.role {
        roles.push((role.clone(), "the finding's role resource".into()));
    }
    if let Some(role) = instance_role {
        let profile = instance
            .and_then(|i| i.instance_profile_arn.as_ref())
            .map(|a| a.to_string())
            .unwrap_or_else(|| "the instance profile".into());
        roles.push((role.clone(), format!("instance profile {profile}")));
    }
    if let Some(role) = function_role {
        let name = p
            .finding
            .targets
            .function
            .as_ref()
            .map(|f| f.function_name.to_string())
            .unwrap_or_default();
        roles.push((
            role.clone(),
            format!("the execution role of function {name}"),
        ));
    }
    roles.dedup_by(|a, b| a.0.role_name == b.0.role_name);
    if roles.is_empty() {
        let profile = instance.and_then(|i| i.instance_profile_arn.as_ref());
        match (profile, enrichment) {
            (Some(arn), Enrichment::Offline) => p.skip(Some(kind), Some(arn.to_string()), SkipReason::EnrichmentSkipped,
                format!("the role behind instance profile {arn} is read from IAM at run time; an offline plan cannot name it")),
            _ => p.skip(Some(kind), None, SkipReason::NoTarget,
                "the finding names no role: no assumed-role key, role resource or instance-profile role".into()),
        }
        return;
    }
    push_roles(p, roles, out);
}

/// One revocation per role, each checked: the finding's account, not protected.
fn push_roles(p: &mut Planner<'_>, roles: Vec<(RoleTarget, String)>, out: &mut Vec<PlannedAction>) {
    let kind = ActionKind::RevokeRoleSessions;
    for (role, via) in roles {
        if let Some(arn) = role
            .role_arn
            .as_ref()
            .filter(|a| a.account() != p.finding.account_id.as_str())
        {
            p.skip(
                Some(kind),
                Some(format!("role {}", role.role_name)),
                SkipReason::InvalidTarget,
                format!(
                    "role ARN {arn} names account {}, not the finding's account {}: never acted on",
                    arn.account(),
                    p.finding.account_id
                ),
            );
            continue;
        }
        if let Some(why) = p
            .policy
            .role_protected(role.role_name.as_str(), role.role_arn.as_ref())
        {
            p.skip(
                Some(kind),
                Some(format!("role {}", role.role_name)),
                SkipReason::ProtectedPrincipal,
                why,
            );
            continue;
        }
        out.push(PlannedAction::RevokeRoleSessions {
            role_name: role.role_name,
            role_arn: role.role_arn,
            via,
        });
    }
}

fn plan_key(p: &mut Planner<'_>, key: Option<&AccessKeyTarget>, out: &mut Vec<PlannedAction>) {
    let kind = ActionKind::DisableAccessKey;
    let Some(key) = key else {
        p.skip(
            Some(kind),
            None,
            SkipReason::NoTarget,
            "the finding names no access key".into(),
        );
        return;
    };
    match key.user_type {
        Some(UserType::IamUser) => {}
        Some(UserType::Root) => {
            p.skip(
                Some(kind),
                Some("root".into()),
                SkipReason::ProtectedPrincipal,
                "root credentials are never touched by automation".into(),
            );
            return;
        }
        Some(UserType::AssumedRole) => {
            p.skip(Some(kind), key.access_key_id.as_ref().map(|k| k.to_string()), SkipReason::NoTarget,
                "temporary credentials of an assumed role cannot be deactivated; revoke-role-sessions covers them".into());
            return;
        }
        other => {
            let t = other
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "unknown".into());
            p.skip(
                Some(kind),
                None,
                SkipReason::NoTarget,
                format!("only an IAM user's long-term key can be deactivated; user type is {t}"),
            );
            return;
        }
    }
    let (Some(user), Some(key_id)) = (&key.user_name, &key.access_key_id) else {
        p.skip(
            Some(kind),
            None,
            SkipReason::NoTarget,
            "the finding does not name both the user and the access key id".into(),
        );
        return;
    };
    if let Some(why) = p.policy.user_protected(user.as_str()) {
        p.skip(
            Some(kind),
            Some(format!("user {user}")),
            SkipReason::ProtectedPrincipal,
            why,
        );
        return;
    }
    out.push(PlannedAction::DisableAccessKey {
        user_name: user.clone(),
        access_key_id: key_id.clone(),
    });
}

fn plan_block(
    p: &mut Planner<'_>,
    instance: Option<&InstanceTarget>,
    missing: Option<&InstanceId>,
    out: &mut Vec<PlannedAction>,
) {
    let kind = ActionKind::BlockRemoteIps;
    if p.finding.targets.remote_ips.is_empty() {
        p.skip(
            Some(kind),
            None,
            SkipReason::NoTarget,
            "the finding reports no remote IP".into(),
        );
        return;
    }
    let own: Vec<IpAddr> = instance
        .map(|i| {
            i.network_interfaces
                .iter()
                .flat_map(|e| {
                    e.private_ips
                        .iter()
                        .chain(e.ipv6_addresses.iter())
                        .chain(e.public_ip.iter())
                        .copied()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ips = Vec::new();
    for remote in &p.finding.targets.remote_ips {
        if own.contains(&remote.ip) {
            p.skip(
                Some(kind),
                Some(remote.ip.to_string()),
                SkipReason::AllowListedIp,
                format!(
                    "{} is an address of the instance itself, which is never blocked",
                    remote.ip
                ),
            );
            continue;
        }
        match p.policy.never_block_entry(remote.ip) {
            Some(entry) => {
                let detail = format!(
                    "{} is in {} ({}), which is never blocked",
                    remote.ip, entry.cidr.0, entry.reason
                );
                p.skip(
                    Some(kind),
                    Some(remote.ip.to_string()),
                    SkipReason::AllowListedIp,
                    detail,
                );
            }
            None => ips.push(remote.ip),
        }
    }
    if ips.is_empty() {
        return;
    }
    let subnets = instance.map(|i| i.subnets()).unwrap_or_default();
    if subnets.is_empty() {
        let detail = match missing {
            Some(id) => format!("instance {id} was not found in EC2, so there is no subnet whose network ACL could block"),
            None => "network ACLs guard subnets, and the finding names no instance subnet".into(),
        };
        let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        p.skip(
            Some(kind),
            Some(ips.join(", ")),
            SkipReason::NoTarget,
            detail,
        );
        return;
    }
    out.push(PlannedAction::BlockRemoteIps {
        ips,
        subnet_ids: subnets,
        settings: p.policy.ip_blocking,
    });
}

/// `arn:aws:iam::111122223333:role/path/name` → the role `name`, with its ARN.
fn role_of_arn(arn: &Arn) -> Option<RoleTarget> {
    let name = arn.resource().strip_prefix("role/")?.rsplit('/').next()?;
    Some(RoleTarget {
        role_name: IamName::parse(name).ok()?,
        role_arn: Some(arn.clone()),
    })
}

fn plan_throttle(
    p: &mut Planner<'_>,
    function: Option<&crate::finding::FunctionTarget>,
    missing: Option<&FunctionName>,
    out: &mut Vec<PlannedAction>,
) {
    let kind = ActionKind::ThrottleFunction;
    let Some(f) = function else {
        match missing {
            Some(name) => p.skip(
                Some(kind),
                Some(name.to_string()),
                SkipReason::TargetNotFound,
                format!("Lambda has no function {name} in this account and region"),
            ),
            None => p.skip(
                Some(kind),
                None,
                SkipReason::NoTarget,
                "the finding names no Lambda function".into(),
            ),
        }
        return;
    };
    if f.function_arn
        .as_ref()
        .is_some_and(|a| a.account() != p.finding.account_id.as_str())
    {
        p.skip(
            Some(kind),
            Some(f.function_name.to_string()),
            SkipReason::InvalidTarget,
            format!(
                "function {}'s ARN names another account than the finding's {}: never acted on",
                f.function_name, p.finding.account_id
            ),
        );
        return;
    }
    // Firebreak's own functions are never throttled by a finding about them.
    if f.function_name.as_str().starts_with(crate::names::STACK) {
        p.skip(
            Some(kind),
            Some(f.function_name.to_string()),
            SkipReason::ProtectedPrincipal,
            format!(
                "function {} is one of Firebreak's own ({}*): a person decides",
                f.function_name,
                crate::names::STACK
            ),
        );
        return;
    }
    out.push(PlannedAction::ThrottleFunction {
        function_name: f.function_name.clone(),
        function_arn: f.function_arn.clone(),
    });
}

/// The finding's buckets (as S3 has them once triage has read them, else as the finding
/// names them) and their objects: each bucket's public access blocked, each object
/// tagged, unless the bucket carries the exemption tag. A bucket S3 does not have in the
/// finding's account is never acted on: bucket names are global, so a finding that names
/// another account's bucket must not reach it.
fn plan_s3(
    p: &mut Planner<'_>,
    kind: ActionKind,
    enrichment: &Enrichment,
    out: &mut Vec<PlannedAction>,
) {
    let targets = &p.finding.targets;
    // Without triage's read (offline `firebreak plan`), the finding's own names stand in,
    // untagged.
    let (buckets, missing, refused): (Vec<BucketFacts>, Vec<BucketName>, Vec<BucketName>) =
        match enrichment {
            Enrichment::Buckets {
                found,
                missing,
                refused,
            } => (found.clone(), missing.clone(), refused.clone()),
            _ => (
                targets
                    .s3_buckets
                    .iter()
                    .map(|b| BucketFacts {
                        name: b.clone(),
                        tags: BTreeMap::new(),
                    })
                    .collect(),
                Vec::new(),
                Vec::new(),
            ),
        };
    let objects = targets.s3_objects.clone();
    for b in &missing {
        p.skip(
            Some(kind),
            Some(b.to_string()),
            SkipReason::TargetNotFound,
            format!("S3 has no bucket {b} (deleted): nothing to act on",),
        );
    }
    for b in &refused {
        p.skip(
            Some(kind),
            Some(b.to_string()),
            SkipReason::TargetRefused,
            format!(
                "S3 refused to show bucket {b} as account {}'s (another account's, or its policy denies Firebreak): never acted on; a person must check it",
                p.finding.account_id
            ),
        );
    }
    let tag = &p.policy.exemptions.resource_tag;
    let mut planned = 0;
    for BucketFacts { name: bucket, tags } in &buckets {
        if tags.get(&tag.key) == Some(&tag.value) {
            p.skip(
                Some(kind),
                Some(bucket.to_string()),
                SkipReason::ExemptTag,
                format!("S3 bucket {bucket} is tagged {}={}", tag.key, tag.value),
            );
            continue;
        }
        match kind {
            ActionKind::BlockBucketPublicAccess => {
                out.push(PlannedAction::BlockBucketPublicAccess {
                    bucket: bucket.clone(),
                });
                planned += 1;
            }
            _ => {
                for o in objects.iter().filter(|o| &o.bucket == bucket) {
                    out.push(PlannedAction::TagS3Object {
                        bucket: o.bucket.clone(),
                        key: o.key.clone(),
                        version_id: o.version_id.clone(),
                        threats: o.threats.clone(),
                    });
                    planned += 1;
                }
            }
        }
    }
    if planned == 0 && buckets.is_empty() && missing.is_empty() && refused.is_empty() {
        p.skip(
            Some(kind),
            None,
            SkipReason::NoTarget,
            "the finding names no S3 bucket".into(),
        );
    } else if planned == 0 && kind == ActionKind::TagS3Object && objects.is_empty() {
        p.skip(
            Some(kind),
            None,
            SkipReason::NoTarget,
            "the finding names no S3 object".into(),
        );
    }
}

/// Resource types Firebreak has no runbook for, with what a person should do.
fn uncontainable(resource_type: Option<&str>) -> Option<String> {
    let t = resource_type?;
    let what = match t {
        "EKSCluster" | "AwsEksCluster" | "AWS::EKS::Cluster" | "KubernetesCluster" => {
            "an EKS cluster: cordon the node and isolate the pod"
        }
        "ECSCluster" | "AwsEcsCluster" | "AWS::ECS::Cluster" | "Container" | "AwsEcsTask" => {
            "an ECS task or container: stop the task and keep its image"
        }
        "RDSDBInstance" | "RDSLimitlessDB" | "AwsRdsDbInstance" => {
            "an RDS database: rotate the database user's password"
        }
        _ => return None,
    };
    Some(format!(
        "the affected resource ({t}) is {what}; Firebreak has no runbook for it yet, so a person acts"
    ))
}

/// An attack sequence: one action per target it names (instances isolated, roles'
/// sessions revoked, users' keys deactivated, endpoints blocked at every named
/// instance's subnets), each checked as for a single finding, within the policy's cap.
fn plan_sequence(
    p: &mut Planner<'_>,
    seq: &crate::finding::SequenceTargets,
    enrichment: &Enrichment,
    kinds: &[ActionKind],
    out: &mut Vec<PlannedAction>,
) {
    let ips = p.finding.targets.remote_ips.len();
    let total = seq.count(ips);
    let cap = usize::from(p.policy.attack_sequences.max_targets);
    if total > cap {
        let detail = format!(
            "the attack sequence names {total} targets ({} instances, {} roles, {} access keys, {ips} addresses), more than attackSequences.maxTargets ({cap}); nothing was changed: a person must decide what to contain",
            seq.instances.len(),
            seq.roles.len(),
            seq.access_keys.len()
        );
        for &kind in kinds {
            p.skip(Some(kind), None, SkipReason::OverCap, detail.clone());
        }
        return;
    }
    // The instances as triage read them from EC2 (tags, interfaces, role), else as the
    // sequence reports them (an offline plan).
    let mut instances: Vec<(InstanceTarget, Option<RoleTarget>)> = Vec::new();
    let mut missing: Vec<InstanceId> = Vec::new();
    match enrichment {
        Enrichment::Instances { found, missing: m } => {
            for f in found {
                instances.push((
                    InstanceTarget {
                        instance_id: f.instance_id.clone(),
                        network_interfaces: f.network_interfaces.clone(),
                        instance_profile_arn: f.instance_profile_arn.clone(),
                        tags: f.tags.clone(),
                    },
                    f.role.clone(),
                ));
            }
            missing = m.clone();
        }
        _ => instances = seq.instances.iter().map(|i| (i.clone(), None)).collect(),
    }
    let tag = &p.policy.exemptions.resource_tag;
    let (exempt, acting): (Vec<_>, Vec<_>) = instances
        .into_iter()
        .partition(|(i, _)| i.tags.get(&tag.key) == Some(&tag.value));
    for &kind in kinds {
        for (i, _) in &exempt {
            p.skip(
                Some(kind),
                Some(i.instance_id.to_string()),
                SkipReason::ExemptTag,
                format!(
                    "instance {} is tagged {}={}: nothing is done to it or with it",
                    i.instance_id, tag.key, tag.value
                ),
            );
        }
        match kind {
            ActionKind::IsolateInstance => {
                for id in &missing {
                    not_found(p, kind, id);
                }
                for (i, _) in &acting {
                    plan_isolation(p, Some(i), None, out);
                }
                if acting.is_empty() && missing.is_empty() && exempt.is_empty() {
                    p.skip(
                        Some(kind),
                        None,
                        SkipReason::NoTarget,
                        "the attack sequence names no instance".into(),
                    );
                }
            }
            ActionKind::RevokeRoleSessions => {
                let mut roles: Vec<(RoleTarget, String)> = seq
                    .roles
                    .iter()
                    .map(|r| (r.clone(), "an actor of the attack sequence".to_owned()))
                    .collect();
                for (i, role) in &acting {
                    if let Some(role) = role {
                        roles.push((
                            role.clone(),
                            format!("the instance profile of {}", i.instance_id),
                        ));
                    }
                }
                let mut seen = BTreeSet::new();
                roles.retain(|(r, _)| seen.insert(r.role_name.clone()));
                if roles.is_empty() {
                    p.skip(
                        Some(kind),
                        None,
                        SkipReason::NoTarget,
                        "the attack sequence names no role".into(),
                    );
                } else {
                    push_roles(p, roles, out);
                }
            }
            ActionKind::DisableAccessKey => {
                if seq.access_keys.is_empty() {
                    p.skip(
                        Some(kind),
                        None,
                        SkipReason::NoTarget,
                        "the attack sequence names no IAM user's access key".into(),
                    );
                }
                for key in &seq.access_keys {
                    plan_key(p, Some(key), out);
                }
            }
            // Sequences name no Lambda function (GuardDuty's resource types have none);
            // their buckets are named in the note for a person (`other_resources`).
            ActionKind::ThrottleFunction
            | ActionKind::BlockBucketPublicAccess
            | ActionKind::TagS3Object => {}
            ActionKind::BlockRemoteIps => {
                // Every acting instance's subnets guard against the endpoints.
                let combined = InstanceTarget {
                    instance_id: match acting.first() {
                        Some((i, _)) => i.instance_id.clone(),
                        None => match seq.instances.first() {
                            Some(i) => i.instance_id.clone(),
                            None => {
                                plan_block(p, None, None, out);
                                continue;
                            }
                        },
                    },
                    network_interfaces: acting
                        .iter()
                        .flat_map(|(i, _)| i.network_interfaces.iter().cloned())
                        .collect(),
                    instance_profile_arn: None,
                    tags: BTreeMap::new(),
                };
                let target = (!acting.is_empty()).then_some(&combined);
                plan_block(p, target, None, out);
            }
            ActionKind::MarkResolved => {}
        }
    }
    if !seq.other_resources.is_empty() {
        p.skip(
            None,
            Some(seq.other_resources.join(", ")),
            SkipReason::NotifyOnly,
            format!(
                "the attack sequence also names {}, for which Firebreak has no runbook; a person reviews them",
                seq.other_resources.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod enrolment_tests {
    use super::*;

    fn deployment(account: &str, region: &str) -> Deployment {
        Deployment {
            account_id: AccountId::parse(account).unwrap(),
            region: Region::parse(region).unwrap(),
        }
    }

    #[test]
    fn an_enrolled_account_and_region_are_acted_in_anything_else_is_refused_with_why() {
        // The fixture's finding: account 111122223333, us-east-1.
        let finding = crate::fixtures::fixture_plan("ec2-dns-backdoor.json", false)
            .unwrap()
            .finding;
        let home = deployment("123456789012", "eu-west-1");
        let none = Enrolment::default();
        let why = home.refuses(&finding, &none).unwrap();
        assert!(
            why.contains("from account 111122223333, which is not enrolled"),
            "{why}"
        );
        let account_only = Enrolment {
            accounts: vec![AccountId::parse("111122223333").unwrap()],
            regions: vec![],
        };
        let why = home.refuses(&finding, &account_only).unwrap();
        assert!(
            why.contains("from region us-east-1, which is not enrolled"),
            "{why}"
        );
        let both = Enrolment {
            regions: vec![Region::parse("us-east-1").unwrap()],
            ..account_only
        };
        assert_eq!(home.refuses(&finding, &both), None);
        // Its own account and region need no enrolment.
        assert_eq!(
            deployment("111122223333", "us-east-1").refuses(&finding, &none),
            None
        );
    }
}

#[cfg(test)]
mod org_severity_tests {
    use super::*;
    use crate::account::AccountInfo;
    use crate::finding::SeverityBand;

    /// The fixture's finding (account 111122223333) under a policy whose only rule acts
    /// on CRITICAL organisation severity, in an account of the given classification.
    fn planned(environment: Option<&str>) -> Plan {
        let base = crate::fixtures::fixture_plan("ec2-dns-backdoor.json", false).unwrap();
        let mut policy = Policy::built_in().unwrap();
        policy.rules.retain(|r| !r.actions.is_empty());
        for r in &mut policy.rules {
            r.org_severities = vec![SeverityBand::Critical];
            r.min_severity = crate::policy::MinSeverity::Score(0.0);
        }
        let info = environment.map(|e| classified(&base.finding.account_id, e));
        plan_in(
            &base.finding,
            &policy,
            "test",
            Enrichment::Offline,
            info,
            false,
        )
    }

    /// An account known only by its classification tag.
    fn classified(account: &AccountId, environment: &str) -> AccountInfo {
        AccountInfo {
            account_id: account.clone(),
            name: None,
            email: None,
            ou_path: vec![],
            tags: [("environment".to_owned(), environment.to_owned())].into(),
            security_contact: None,
        }
    }

    #[test]
    fn an_organisation_exemption_holds_a_sandbox_account_and_only_it() {
        let base = crate::fixtures::fixture_plan("ec2-dns-backdoor.json", false).unwrap();
        let mut policy = Policy::built_in().unwrap();
        policy.exemptions.organisation = vec![crate::policy::OrganisationExemption {
            classification: Some("sandbox*".into()),
            org_severities: vec![SeverityBand::Low],
            reason: "sandboxes are rebuilt, not contained".into(),
        }];
        let plan_for = |env: &str| {
            let info = classified(&base.finding.account_id, env);
            plan_in(
                &base.finding,
                &policy,
                "test",
                Enrichment::Offline,
                Some(info),
                false,
            )
        };
        let sandbox = plan_for("sandbox-7");
        assert!(sandbox.actions.is_empty());
        assert!(sandbox
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::ExemptAccount
                && s.detail
                    .contains("classification sandbox-7, organisation severity LOW")
                && s.detail.ends_with("sandboxes are rebuilt, not contained")));
        assert!(!plan_for("production").actions.is_empty());
        // Nothing known of the account: no organisation exemption applies.
        let unknown = plan_in(
            &base.finding,
            &policy,
            "test",
            Enrichment::Offline,
            None,
            false,
        );
        assert!(!unknown.actions.is_empty());
        // An exemption with no condition is refused when the policy is read.
        let mut text: serde_json::Value =
            serde_json::from_str(crate::policy::DEFAULT_POLICY_JSON).unwrap();
        text["exemptions"]["organisation"] = serde_json::json!([{"reason": "all"}]);
        let err = Policy::from_json(&text.to_string(), "test").unwrap_err();
        assert_eq!(err.path, "$.exemptions.organisation[0]");
    }

    #[test]
    fn a_rule_on_organisation_severity_acts_in_production_and_says_why_not_elsewhere() {
        let base = crate::fixtures::fixture_plan("ec2-dns-backdoor.json", false).unwrap();
        assert!(base.finding.severity.score >= 7.0, "a HIGH fixture");
        let prod = planned(Some("production"));
        assert_eq!(
            prod.account.as_ref().and_then(|a| a.org_severity),
            Some(SeverityBand::Critical)
        );
        assert!(!prod.actions.is_empty(), "{:?}", prod.skipped);
        let dev = planned(Some("development"));
        assert!(dev.actions.is_empty());
        assert!(
            dev.skipped
                .iter()
                .any(|s| s.detail.contains("the organisation severity is MEDIUM")
                    && s.detail.contains("requires CRITICAL")),
            "{:?}",
            dev.skipped
        );
        let unknown = planned(None);
        assert!(unknown.actions.is_empty() && unknown.account.is_none());
        assert!(unknown
            .skipped
            .iter()
            .any(|s| s.detail.contains("the organisation severity is unknown")));
    }
}
