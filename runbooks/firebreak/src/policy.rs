//! The response policy: which finding types, at which severity, get which actions; what is
//! exempt; which addresses are never blocked and which principals never revoked.
//!
//! It is a versioned JSON document (`policy/default-policy.json` is the built-in one and
//! its reference). A policy that does not parse or validate is an error: nothing acts on a
//! broken policy.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::finding::SeverityBand;
use crate::ids::{parse_cidr, AccountId, Arn};

/// The built-in policy, compiled into every binary.
pub const DEFAULT_POLICY_JSON: &str = include_str!("../policy/default-policy.json");
/// Policies are SSM parameters (advanced tier: 8 KiB), stored without whitespace; a
/// policy larger than that in its compact form is refused.
pub const MAX_POLICY_BYTES: usize = 8 * 1024;
/// A policy file is read only up to this size (indentation and all).
const MAX_POLICY_FILE_BYTES: usize = 64 * 1024;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    IsolateInstance,
    RevokeRoleSessions,
    DisableAccessKey,
    BlockRemoteIps,
    ThrottleFunction,
    BlockBucketPublicAccess,
    TagS3Object,
    MarkResolved,
}

impl ActionKind {
    pub const ALL: [ActionKind; 8] = [
        ActionKind::IsolateInstance,
        ActionKind::RevokeRoleSessions,
        ActionKind::DisableAccessKey,
        ActionKind::BlockRemoteIps,
        ActionKind::ThrottleFunction,
        ActionKind::BlockBucketPublicAccess,
        ActionKind::TagS3Object,
        ActionKind::MarkResolved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ActionKind::IsolateInstance => "isolate-instance",
            ActionKind::RevokeRoleSessions => "revoke-role-sessions",
            ActionKind::DisableAccessKey => "disable-access-key",
            ActionKind::BlockRemoteIps => "block-remote-ips",
            ActionKind::ThrottleFunction => "throttle-function",
            ActionKind::BlockBucketPublicAccess => "block-bucket-public-access",
            ActionKind::TagS3Object => "tag-s3-object",
            ActionKind::MarkResolved => "mark-resolved",
        }
    }
}

/// A minimum severity: a band name (`"HIGH"`) or a score on GuardDuty's 0–10 scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum MinSeverity {
    Band(SeverityBand),
    Score(f64),
}

impl MinSeverity {
    pub fn score(self) -> f64 {
        match self {
            MinSeverity::Band(b) => b.min_score(),
            MinSeverity::Score(s) => s,
        }
    }
}

impl std::fmt::Display for MinSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinSeverity::Band(b) => write!(f, "{b}"),
            MinSeverity::Score(s) => write!(f, "{s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Patterns over the GuardDuty type name; `*` matches any run of characters.
    pub finding_types: Vec<String>,
    pub min_severity: MinSeverity,
    /// When not empty, the rule applies only to findings whose organisation severity
    /// (`organisationSeverity`, from the account's classification) is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_severities: Vec<SeverityBand>,
    pub actions: Vec<ActionKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountExemption {
    pub account_id: AccountId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountTypeExemption {
    pub account_id: AccountId,
    pub finding_types: Vec<String>,
    pub reason: String,
}

/// Nothing is done when the account's classification matches `classification` (a
/// pattern) and/or the organisation severity is one of `orgSeverities`: every condition
/// given must hold, and at least one must be given. An account that could not be looked
/// up matches none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganisationExemption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_severities: Vec<SeverityBand>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagMatch {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exemptions {
    #[serde(default)]
    pub accounts: Vec<AccountExemption>,
    #[serde(default)]
    pub finding_types_by_account: Vec<AccountTypeExemption>,
    /// By what is known of the finding's account: its classification and the finding's
    /// organisation severity there.
    #[serde(default)]
    pub organisation: Vec<OrganisationExemption>,
    pub resource_tag: TagMatch,
}

/// A CIDR block checked on the way in (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr(#[schemars(with = "String")] pub IpNet);

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        parse_cidr(&value).map(Cidr)
    }
}
impl From<Cidr> for String {
    fn from(value: Cidr) -> String {
        value.0.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeverBlock {
    pub cidr: Cidr,
    pub reason: String,
}

/// Service-linked roles and the root user are always protected; these lists add to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtectedPrincipals {
    #[serde(default)]
    pub role_names: Vec<String>,
    #[serde(default)]
    pub user_names: Vec<String>,
    #[serde(default)]
    pub arns: Vec<Arn>,
}

/// Tag keys, in order of preference, that name a resource's owner, team and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextTags {
    #[serde(default)]
    pub owner: Vec<String>,
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub environment: Vec<String>,
}

/// Account tag keys, in order of preference, for what the note and the organisation
/// severity use (Organizations tags of the finding's account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountTags {
    /// The account's classification (production, development, …).
    #[serde(default)]
    pub environment: Vec<String>,
    #[serde(default)]
    pub data_classification: Vec<String>,
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub owner: Vec<String>,
    #[serde(default)]
    pub cost_centre: Vec<String>,
}

/// One row of the organisation severity table: for an account whose classification
/// matches `classification` (a pattern; `*` also matches an account without one) and a
/// GuardDuty severity of at least `minSeverity`, the organisation's severity is
/// `severity`. The first matching row wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgSeverityRow {
    pub classification: String,
    pub min_severity: f64,
    pub severity: SeverityBand,
}

/// The network-ACL rule numbers Firebreak may write, lowest first. NACLs evaluate the
/// lowest number first, so the band must sit below the subnet's allow rules (the default
/// NACL allows at 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleBand {
    pub first: u16,
    pub last: u16,
}

impl RuleBand {
    pub fn contains(self, n: i32) -> bool {
        n >= i32::from(self.first) && n <= i32::from(self.last)
    }
    pub fn numbers(self) -> impl Iterator<Item = i32> {
        i32::from(self.first)..=i32::from(self.last)
    }
}

/// How block-remote-ip writes network ACL entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpBlocking {
    pub rule_numbers: RuleBand,
    /// The account's quota of rules per direction (20 by default, 40 at most); IPv4 and
    /// IPv6 are counted separately, as AWS does.
    pub rules_per_direction: u16,
    /// A block is removed by the sweep this long after it was last confirmed.
    pub block_hours: u32,
}

impl Default for IpBlocking {
    fn default() -> Self {
        IpBlocking {
            rule_numbers: RuleBand {
                first: 80,
                last: 99,
            },
            rules_per_direction: 20,
            block_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub policy_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    pub exemptions: Exemptions,
    pub never_block: Vec<NeverBlock>,
    #[serde(default)]
    pub protected_principals: ProtectedPrincipals,
    #[serde(default)]
    pub context_tags: ContextTags,
    #[serde(default)]
    pub ip_blocking: IpBlocking,
    #[serde(default)]
    pub enrolment: Enrolment,
    #[serde(default)]
    pub account_tags: AccountTags,
    #[serde(default)]
    pub organisation_severity: Vec<OrgSeverityRow>,
    /// Finding types Firebreak recognises but has no containment for: the finding is
    /// NOTIFIED with the reason, so a person looks at it.
    #[serde(default)]
    pub notify_only: Vec<NotifyOnly>,
    #[serde(default)]
    pub attack_sequences: AttackSequences,
    #[serde(default)]
    pub notifications: Notifications,
    /// Which responses wait for a person's yes before acting.
    #[serde(default)]
    pub approval: crate::approval::ApprovalPolicy,
    /// Whether responses open Jira tickets, and where.
    #[serde(default)]
    pub tickets: crate::ticket::TicketPolicy,
}

/// Who is told of a response: the owning team's topic (the first route that matches the
/// resource's and the account's tags, else the deployment's owners topic), and the
/// response team's topic for severe findings and every NOTIFIED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notifications {
    #[serde(default)]
    pub routes: Vec<NotificationRoute>,
    /// The response team is alerted from this band up (and for every NOTIFIED).
    #[serde(default = "alert_band")]
    pub alert_min_severity: crate::finding::SeverityBand,
}

fn alert_band() -> crate::finding::SeverityBand {
    crate::finding::SeverityBand::High
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            routes: Vec::new(),
            alert_min_severity: alert_band(),
        }
    }
}

/// One row of the routing table: every condition given must match (patterns, case
/// ignored); `topic` is an SNS topic name in Firebreak's own account and region, starting
/// `firebreak-` (the notify role may publish to no other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRoute {
    /// The resource's team tag (`contextTags.team`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The resource's environment tag (`contextTags.environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The account's team tag (`accountTags.team`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_team: Option<String>,
    /// The account's classification (`accountTags.environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_classification: Option<String>,
    pub topic: String,
}

/// The prefix every notification topic's name has: the notify role's `sns:Publish` is
/// scoped to it.
pub const TOPIC_PREFIX: &str = "firebreak-";

/// SNS topic names: 1 to 256 letters, digits, hyphens and underscores.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if !name.starts_with(TOPIC_PREFIX) {
        return Err(format!(
            "topic {name:?} must start with {TOPIC_PREFIX:?}: Firebreak may publish to no other"
        ));
    }
    if name.len() > 256
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "topic {name:?} is not an SNS topic name (at most 256 letters, digits, - and _)"
        ));
    }
    Ok(())
}

/// Types that are known and deliberately left to a person, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyOnly {
    pub name: String,
    pub finding_types: Vec<String>,
    pub reason: String,
}

/// GuardDuty attack sequences name many resources and principals at once; the response
/// fans out to each, up to a cap beyond which a person decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttackSequences {
    /// The most targets (instances, principals, keys, addresses) one sequence may act on.
    pub max_targets: u16,
}

impl Default for AttackSequences {
    fn default() -> Self {
        AttackSequences { max_targets: 10 }
    }
}

/// Where Firebreak may act beside its own account and region. A finding from anywhere
/// else is held, with the reason, and nothing is looked up or changed there.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enrolment {
    /// Member accounts whose findings Firebreak contains, through the member roles the
    /// member stack deploys there.
    #[serde(default)]
    pub accounts: Vec<crate::ids::AccountId>,
    /// Regions beside Firebreak's own, for its own account and the enrolled ones.
    #[serde(default)]
    pub regions: Vec<crate::ids::Region>,
}

/// Where the policy in force came from, for the plan and the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    pub version: String,
    pub source: String,
}

impl Policy {
    /// The first notify-only entry covering `type_name`.
    pub fn notify_only_for(&self, type_name: &str) -> Option<&NotifyOnly> {
        self.notify_only
            .iter()
            .find(|n| n.finding_types.iter().any(|p| glob_match(p, type_name)))
    }

    pub fn built_in() -> Result<Policy, PolicyError> {
        Policy::from_json(DEFAULT_POLICY_JSON, "built-in")
    }

    /// The policy in the SSM parameter `name`, whose value (from `ssm:GetParameter`) is
    /// `value`; with where it came from (`ssm:<name>`), for the plan and the audit.
    pub fn from_parameter(
        name: &str,
        value: Option<&str>,
    ) -> Result<(Policy, String), PolicyError> {
        let source = format!("ssm:{name}");
        let text = value.ok_or_else(|| PolicyError {
            source_name: source.clone(),
            path: "$".into(),
            reason: "the parameter has no value".into(),
        })?;
        Ok((Policy::from_json(text, &source)?, source))
    }

    /// Parses and validates. `source` names where the text came from, for the error.
    pub fn from_json(text: &str, source: &str) -> Result<Policy, PolicyError> {
        let err = |path: String, reason: String| PolicyError {
            source_name: source.to_owned(),
            path,
            reason,
        };
        if text.len() > MAX_POLICY_FILE_BYTES {
            return Err(err(
                "$".into(),
                format!(
                    "{} bytes; the limit is {MAX_POLICY_BYTES} without whitespace",
                    text.len()
                ),
            ));
        }
        if text.len() > MAX_POLICY_BYTES {
            let compact = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| serde_json::to_string(&v).ok())
                .map_or(text.len(), |c| c.len());
            if compact > MAX_POLICY_BYTES {
                return Err(err(
                    "$".into(),
                    format!("{compact} bytes without whitespace; the limit is {MAX_POLICY_BYTES} (SSM's advanced tier)"),
                ));
            }
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let policy: Policy = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "$".to_owned()
            } else {
                format!("$.{path}")
            };
            err(path, e.into_inner().to_string())
        })?;
        policy
            .validate()
            .map_err(|(path, reason)| err(path, reason))?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        if self.policy_version.trim().is_empty() {
            return Err(("$.policyVersion".into(), "must not be empty".into()));
        }
        self.approval.check()?;
        self.tickets.check()?;
        for (i, r) in self.approval.rules.iter().enumerate() {
            for (field, c) in [
                ("environment", &r.environment),
                ("accountClassification", &r.account_classification),
            ] {
                if let Some(p) = c {
                    check_pattern(p).map_err(|e| (format!("$.approval.rules[{i}].{field}"), e))?;
                }
            }
        }
        for (i, r) in self.notifications.routes.iter().enumerate() {
            let at = |field: &str| format!("$.notifications.routes[{i}].{field}");
            let conditions = [
                &r.team,
                &r.environment,
                &r.account_team,
                &r.account_classification,
            ];
            if conditions.iter().all(|c| c.is_none()) {
                return Err((
                    format!("$.notifications.routes[{i}]"),
                    "names no condition (team, environment, accountTeam, accountClassification): it would route every finding".into(),
                ));
            }
            for (field, c) in [
                "team",
                "environment",
                "accountTeam",
                "accountClassification",
            ]
            .iter()
            .zip(conditions)
            {
                if let Some(p) = c {
                    check_pattern(p).map_err(|e| (at(field), e))?;
                }
            }
            check_topic_name(&r.topic).map_err(|e| (at("topic"), e))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("$.rules[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err((at("name"), "must not be empty".into()));
            }
            if !names.insert(rule.name.as_str()) {
                return Err((
                    at("name"),
                    format!("rule name {:?} is used twice", rule.name),
                ));
            }
            if rule.finding_types.is_empty() {
                return Err((at("findingTypes"), "must list at least one pattern".into()));
            }
            for (j, p) in rule.finding_types.iter().enumerate() {
                check_pattern(p).map_err(|r| (format!("$.rules[{i}].findingTypes[{j}]"), r))?;
            }
            if let MinSeverity::Score(s) = rule.min_severity {
                if !(0.0..=10.0).contains(&s) {
                    return Err((at("minSeverity"), format!("{s} is outside 0 to 10")));
                }
            }
            if rule.actions.is_empty() {
                return Err((at("actions"), "must list at least one action".into()));
            }
        }
        for (i, n) in self.notify_only.iter().enumerate() {
            let at = |field: &str| format!("$.notifyOnly[{i}].{field}");
            if n.name.trim().is_empty() {
                return Err((at("name"), "must not be empty".into()));
            }
            if n.reason.trim().is_empty() {
                return Err((
                    at("reason"),
                    "say why these types are left to a person".into(),
                ));
            }
            if n.finding_types.is_empty() {
                return Err((at("findingTypes"), "must list at least one pattern".into()));
            }
            for (j, p) in n.finding_types.iter().enumerate() {
                check_pattern(p)
                    .map_err(|r| (format!("$.notifyOnly[{i}].findingTypes[{j}]"), r))?;
            }
        }
        if !(1..=100).contains(&self.attack_sequences.max_targets) {
            return Err((
                "$.attackSequences.maxTargets".into(),
                format!("{} is outside 1 to 100", self.attack_sequences.max_targets),
            ));
        }
        for (i, e) in self.exemptions.organisation.iter().enumerate() {
            let at = |f: &str| format!("$.exemptions.organisation[{i}].{f}");
            if e.classification.is_none() && e.org_severities.is_empty() {
                return Err((
                    format!("$.exemptions.organisation[{i}]"),
                    "give a classification, orgSeverities or both".into(),
                ));
            }
            if let Some(c) = &e.classification {
                check_pattern(c).map_err(|r| (at("classification"), r))?;
            }
        }
        for (i, row) in self.organisation_severity.iter().enumerate() {
            if !(0.0..=10.0).contains(&row.min_severity) {
                return Err((
                    format!("$.organisationSeverity[{i}].minSeverity"),
                    format!("{} is outside 0 to 10", row.min_severity),
                ));
            }
            check_pattern(&row.classification)
                .map_err(|r| (format!("$.organisationSeverity[{i}].classification"), r))?;
        }
        for (i, e) in self.exemptions.finding_types_by_account.iter().enumerate() {
            if e.finding_types.is_empty() {
                return Err((
                    format!("$.exemptions.findingTypesByAccount[{i}].findingTypes"),
                    "must list at least one pattern".into(),
                ));
            }
            for (j, p) in e.finding_types.iter().enumerate() {
                check_pattern(p).map_err(|r| {
                    (
                        format!("$.exemptions.findingTypesByAccount[{i}].findingTypes[{j}]"),
                        r,
                    )
                })?;
            }
        }
        let tag = &self.exemptions.resource_tag;
        if tag.key.is_empty() || tag.key.len() > 128 || tag.value.len() > 256 {
            return Err((
                "$.exemptions.resourceTag".into(),
                "key must be 1 to 128 characters and value at most 256".into(),
            ));
        }
        let b = &self.ip_blocking;
        if b.rule_numbers.first < 1
            || b.rule_numbers.last > 32766
            || b.rule_numbers.first > b.rule_numbers.last
        {
            return Err((
                "$.ipBlocking.ruleNumbers".into(),
                format!(
                    "{}..{} is not a band within 1..32766 with first <= last",
                    b.rule_numbers.first, b.rule_numbers.last
                ),
            ));
        }
        if !(1..=40).contains(&b.rules_per_direction) {
            return Err((
                "$.ipBlocking.rulesPerDirection".into(),
                format!(
                    "{} is outside 1 to 40 (AWS allows at most 40)",
                    b.rules_per_direction
                ),
            ));
        }
        if !(1..=8760).contains(&b.block_hours) {
            return Err((
                "$.ipBlocking.blockHours".into(),
                format!("{} is outside 1 to 8760 (a year)", b.block_hours),
            ));
        }
        for (i, p) in self.protected_principals.role_names.iter().enumerate() {
            check_name_pattern(p)
                .map_err(|r| (format!("$.protectedPrincipals.roleNames[{i}]"), r))?;
        }
        for (i, p) in self.protected_principals.user_names.iter().enumerate() {
            check_name_pattern(p)
                .map_err(|r| (format!("$.protectedPrincipals.userNames[{i}]"), r))?;
        }
        Ok(())
    }

    /// The first never-block entry that contains `ip`.
    pub fn never_block_entry(&self, ip: IpAddr) -> Option<&NeverBlock> {
        self.never_block.iter().find(|n| n.cidr.0.contains(&ip))
    }

    pub fn role_protected(&self, name: &str, arn: Option<&Arn>) -> Option<String> {
        // Service-linked roles live under /aws-service-role/ and are AWS's to manage.
        if name.starts_with("AWSServiceRoleFor")
            || arn.is_some_and(|a| a.resource().starts_with("role/aws-service-role/"))
        {
            return Some(
                "service-linked role: AWS manages it; revoking it breaks the service".into(),
            );
        }
        if let Some(a) = arn {
            if self.protected_principals.arns.contains(a) {
                return Some(format!("{a} is listed in protectedPrincipals.arns"));
            }
        }
        self.protected_principals
            .role_names
            .iter()
            .find(|p| glob_match_ignore_case(p, name))
            .map(|p| format!("role {name} matches protected pattern {p:?}"))
    }

    pub fn user_protected(&self, name: &str) -> Option<String> {
        self.protected_principals
            .user_names
            .iter()
            .find(|p| glob_match_ignore_case(p, name))
            .map(|p| format!("user {name} matches protected pattern {p:?}"))
    }
}

fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 256 {
        return Err("a finding-type pattern must be 1 to 256 characters".into());
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":/.!&_-*".contains(&b))
    {
        return Err(format!(
            "pattern {p:?} may only hold letters, digits, :/.!&_- and *"
        ));
    }
    Ok(())
}

fn check_name_pattern(p: &str) -> Result<(), String> {
    if p.is_empty()
        || p.len() > 64
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-*".contains(&b))
    {
        return Err(format!("{p:?} is not an IAM name pattern"));
    }
    Ok(())
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// IAM names are unique regardless of case, so protection must not depend on it; tag
/// values are matched the same way in the notification routes.
pub fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    glob_match(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_policy_is_valid() {
        let p = Policy::built_in().unwrap();
        assert!(p.rules.len() >= 5);
        assert_eq!(p.exemptions.resource_tag.key, "firebreak:exempt");
        assert_eq!(p.exemptions.resource_tag.value, "true");
        for ip in [
            "10.1.2.3",
            "172.31.43.6",
            "192.168.0.1",
            "100.64.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "0.0.0.0",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(p.never_block_entry(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["198.51.100.7", "8.8.8.8", "2001:db8::1"] {
            assert!(p.never_block_entry(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "Backdoor:EC2/*",
            "Backdoor:EC2/C&CActivity.B!DNS"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match(
            "Backdoor:EC2/*",
            "Backdoor:Runtime/C&CActivity.B"
        ));
        assert!(glob_match(
            "UnauthorizedAccess:EC2/SSHBruteForce",
            "UnauthorizedAccess:EC2/SSHBruteForce"
        ));
        assert!(glob_match_ignore_case("BreakGlass*", "breakglass-admin"));
    }

    #[test]
    fn protected_principals() {
        let p = Policy::built_in().unwrap();
        assert!(p
            .role_protected("AWSServiceRoleForAmazonGuardDuty", None)
            .is_some());
        let slr = Arn::parse(
            "arn:aws:iam::123456789012:role/aws-service-role/guardduty.amazonaws.com/Custom",
        )
        .unwrap();
        assert!(p.role_protected("Custom", Some(&slr)).is_some());
        assert!(p.role_protected("BreakGlassAdmin", None).is_some());
        assert!(p.role_protected("web-instance-role", None).is_none());
        assert!(p.user_protected("break-glass-1").is_some());
        assert!(p.user_protected("alice").is_none());
    }

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Policy, PolicyError> {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
        edit(&mut v);
        Policy::from_json(&v.to_string(), "test")
    }

    #[test]
    fn broken_policies_name_the_field() {
        let e = with(|v| v["rules"][0]["actions"][0] = "reboot-instance".into()).unwrap_err();
        assert_eq!(e.path, "$.rules[0].actions[0]");
        assert!(e.reason.contains("unknown variant"), "{e}");

        let e = with(|v| v["neverBlock"][0]["cidr"] = "10.0.0.1/8".into()).unwrap_err();
        assert_eq!(e.path, "$.neverBlock[0].cidr");
        assert!(e.reason.contains("did you mean 10.0.0.0/8"), "{e}");

        let e = with(|v| {
            v["exemptions"]["accounts"] = serde_json::json!([{"accountId": "12", "reason": "x"}])
        })
        .unwrap_err();
        assert_eq!(e.path, "$.exemptions.accounts[0].accountId");

        let e = with(|v| v["rules"][1]["name"] = v["rules"][0]["name"].clone()).unwrap_err();
        assert_eq!(e.path, "$.rules[1].name");

        let e = with(|v| v["rules"][0]["minSeverity"] = 11.into()).unwrap_err();
        assert_eq!(e.path, "$.rules[0].minSeverity");

        let e = with(|v| v["rules"][0]["findingTypes"][0] = "Backdoor EC2; rm".into()).unwrap_err();
        assert_eq!(e.path, "$.rules[0].findingTypes[0]");

        let e = with(|v| v["dryRun"] = true.into()).unwrap_err();
        assert!(e.reason.contains("unknown field"), "{e}");

        let e = Policy::from_json("{", "test").unwrap_err();
        assert!(e.reason.contains("EOF"), "{e}");
        let e = Policy::from_json(&" ".repeat(MAX_POLICY_BYTES + 1), "test").unwrap_err();
        assert!(e.reason.contains("limit"), "{e}");
        // The limit is SSM's, on the stored (compact) form: indentation does not count.
        let v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
        let mut wide = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"        ");
        let mut ser = serde_json::Serializer::with_formatter(&mut wide, fmt);
        serde::Serialize::serialize(&v, &mut ser).unwrap();
        assert!(wide.len() > MAX_POLICY_BYTES, "{}", wide.len());
        Policy::from_json(std::str::from_utf8(&wide).unwrap(), "test").unwrap();
        let mut big = v.clone();
        big["description"] = "x".repeat(MAX_POLICY_BYTES).into();
        let e = Policy::from_json(&big.to_string(), "test").unwrap_err();
        assert!(e.reason.contains("without whitespace"), "{e}");
    }
}
