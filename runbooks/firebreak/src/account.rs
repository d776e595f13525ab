//! Whose account a finding is in: what Organizations and the Account API say about it
//! (name, e-mail, OU path, tags, the security contact), the fields the policy picks from
//! its tags, and the organisation's own severity for the finding (GuardDuty's severity ×
//! the account's classification, the policy's `organisationSeverity` table).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::SeverityBand;
use crate::ids::AccountId;
use crate::policy::{glob_match, Policy};

/// The account's security alternate contact (Account API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Contact {
    /// The parts given, `name email phone`, space-separated; `None` when none is.
    pub fn reached_by(&self, with_phone: bool) -> Option<String> {
        let phone = self.phone.as_deref().filter(|_| with_phone);
        let who = [self.name.as_deref(), self.email.as_deref(), phone]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!who.is_empty()).then_some(who)
    }
}

/// What AWS says about an account: cached as it is (24 h), and the shape of an entry of
/// `firebreak plan --accounts FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Organisational units from the root down (`["Workloads", "Production"]`).
    #[serde(default)]
    pub ou_path: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_contact: Option<Contact>,
}

/// An accounts file: a JSON array of `AccountInfo`.
pub fn parse_accounts_file(text: &str) -> Result<Vec<AccountInfo>, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| format!("$.{}: {}", e.path(), e.inner()))
}

/// The account as the plan sees it: what AWS said, the tags the policy names, and the
/// organisation severity of this finding there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountContext {
    #[serde(flatten)]
    pub info: AccountInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_centre: Option<String>,
    /// From the policy's `organisationSeverity` table; `None` when no row matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_severity: Option<SeverityBand>,
}

impl AccountContext {
    pub fn new(info: AccountInfo, policy: &Policy, gd_severity: f64) -> AccountContext {
        let pick = |keys: &[String]| {
            keys.iter()
                .find_map(|k| info.tags.get(k))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let t = &policy.account_tags;
        let environment = pick(&t.environment);
        let org_severity = org_severity(policy, environment.as_deref(), gd_severity);
        AccountContext {
            environment,
            data_classification: pick(&t.data_classification),
            team: pick(&t.team),
            owner: pick(&t.owner),
            cost_centre: pick(&t.cost_centre),
            org_severity,
            info,
        }
    }

    /// One line for the finding's note: who the account is and whom to call.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("account {}", self.info.account_id)];
        if let Some(n) = &self.info.name {
            parts[0].push_str(&format!(" ({n})"));
        }
        if !self.info.ou_path.is_empty() {
            parts.push(format!("OU {}", self.info.ou_path.join("/")));
        }
        for (what, v) in [
            ("environment", &self.environment),
            ("data", &self.data_classification),
            ("team", &self.team),
            ("owner", &self.owner),
        ] {
            if let Some(v) = v {
                parts.push(format!("{what} {v}"));
            }
        }
        if let Some(s) = self.org_severity {
            parts.push(format!("organisation severity {s}"));
        }
        if let Some(who) = self.contact() {
            parts.push(format!("security contact {who}"));
        }
        parts.join(", ")
    }

    /// The security contact's name and e-mail, if the account has one.
    fn contact(&self) -> Option<String> {
        self.info
            .security_contact
            .as_ref()
            .and_then(|c| c.reached_by(false))
    }

    /// The short form for a finding's note (Security Hub keeps 512 characters): the
    /// account, its OU, classification and organisation severity, and whom to call.
    pub fn brief(&self) -> String {
        let mut what: Vec<String> = Vec::new();
        what.extend(self.info.name.clone());
        if !self.info.ou_path.is_empty() {
            what.push(self.info.ou_path.join("/"));
        }
        what.extend(self.environment.clone());
        if let Some(s) = self.org_severity {
            what.push(format!("org severity {s}"));
        }
        let mut line = format!("Account {}", self.info.account_id);
        if !what.is_empty() {
            line.push_str(&format!(" ({})", what.join(", ")));
        }
        if let Some(who) = self.contact() {
            line.push_str(&format!("; security contact {who}"));
        }
        line
    }
}

/// The first row of the table whose classification pattern matches the account's
/// (`*` matches any, an account without one too) and whose minimum the score reaches.
pub fn org_severity(
    policy: &Policy,
    classification: Option<&str>,
    gd_severity: f64,
) -> Option<SeverityBand> {
    policy
        .organisation_severity
        .iter()
        .find(|row| {
            let class_ok = match classification {
                Some(c) => glob_match(&row.classification, c),
                None => row.classification == "*",
            };
            class_ok && gd_severity >= row.min_severity
        })
        .map(|row| row.severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(tags: &[(&str, &str)]) -> AccountInfo {
        AccountInfo {
            account_id: AccountId::parse("111122223333").unwrap(),
            name: Some("workload-prod".into()),
            email: Some("aws+prod@example.com".into()),
            ou_path: vec!["Workloads".into(), "Production".into()],
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            security_contact: Some(Contact {
                name: Some("Sam Rivera".into()),
                email: Some("security-prod@example.com".into()),
                phone: None,
                title: None,
            }),
        }
    }

    #[test]
    fn the_same_guardduty_severity_is_more_severe_in_production() {
        let policy = Policy::built_in().unwrap();
        let prod = AccountContext::new(info(&[("environment", "production")]), &policy, 7.5);
        let dev = AccountContext::new(info(&[("environment", "development")]), &policy, 7.5);
        let unknown = AccountContext::new(info(&[]), &policy, 7.5);
        assert_eq!(prod.org_severity, Some(SeverityBand::Critical));
        assert_eq!(dev.org_severity, Some(SeverityBand::Medium));
        assert_eq!(unknown.org_severity, Some(SeverityBand::High));
    }

    #[test]
    fn the_policy_picks_the_tags_and_the_note_names_the_account_and_its_contact() {
        let policy = Policy::built_in().unwrap();
        let c = AccountContext::new(
            info(&[
                ("environment", "production"),
                ("data-classification", "confidential"),
                ("team", "payments"),
                ("owner", "dana@example.com"),
                ("cost-centre", "CC-1234"),
            ]),
            &policy,
            8.0,
        );
        assert_eq!(c.data_classification.as_deref(), Some("confidential"));
        assert_eq!(c.cost_centre.as_deref(), Some("CC-1234"));
        assert_eq!(
            c.summary(),
            "account 111122223333 (workload-prod), OU Workloads/Production, environment production, data confidential, team payments, owner dana@example.com, organisation severity CRITICAL, security contact Sam Rivera security-prod@example.com"
        );
    }

    #[test]
    fn an_accounts_file_names_the_field_that_is_wrong() {
        let ok = parse_accounts_file(r#"[{"accountId": "111122223333", "name": "prod"}]"#).unwrap();
        assert_eq!(ok[0].name.as_deref(), Some("prod"));
        let err = parse_accounts_file(r#"[{"accountId": "1111"}]"#).unwrap_err();
        assert!(err.starts_with("$.[0].accountId"), "{err}");
    }
}
