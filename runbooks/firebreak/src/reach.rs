//! Acting where the finding is. Firebreak runs in one account (an organisation's
//! security account, usually GuardDuty's and Security Hub's delegated administrator) and
//! acts in the finding's own account and region: in its own account with its own role,
//! in a member account through that account's role for the runbook
//! (`Firebreak-member-<runbook>`, deployed by the member stack), assumed once per
//! invocation with a session name that names the execution.

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::error::RunbookError;
use crate::ids::{AccountId, Region};
use crate::names::MEMBER_ROLE_PREFIX;
use crate::plan::Deployment;

/// `aws`, `aws-cn` or `aws-us-gov`: the partition a region belongs to.
pub fn partition_of(region: &Region) -> &'static str {
    let r = region.as_str();
    if r.starts_with("cn-") {
        "aws-cn"
    } else if r.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The role a runbook assumes in a member account.
pub fn member_role_arn(account: &AccountId, region: &Region, runbook: &str) -> String {
    format!(
        "arn:{}:iam::{account}:role/{MEMBER_ROLE_PREFIX}{runbook}",
        partition_of(region)
    )
}

/// The session name the member account's CloudTrail shows: `firebreak-` and the
/// execution's name (the last part of its ARN), in STS's alphabet (`[\w+=,.@-]`, 2–64
/// characters). Without an execution (a direct invocation), the runbook's name.
pub fn session_name(execution_id: Option<&str>, runbook: &str) -> String {
    let tail = execution_id
        .and_then(|id| id.rsplit(':').next())
        .filter(|t| !t.is_empty())
        .unwrap_or(runbook);
    let clean: String = tail
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("firebreak-{clean}").chars().take(64).collect()
}

/// How a runbook reaches the accounts it acts in: its own configuration and where it
/// is deployed.
pub struct Reach {
    pub base: SdkConfig,
    /// `None` when `FIREBREAK_ACCOUNT_ID` or `AWS_REGION` is missing or invalid: then the
    /// runbook cannot tell its own account from a member's, and acts nowhere.
    pub home: Option<Deployment>,
    pub runbook: &'static str,
}

impl Reach {
    pub fn from_env(base: SdkConfig, runbook: &'static str) -> Reach {
        Reach {
            base,
            home: Deployment::from_env(),
            runbook,
        }
    }

    /// The configuration for acting on the plan's finding, in its account and region.
    pub async fn for_plan(
        &self,
        plan: &crate::plan::Plan,
        execution_id: Option<&str>,
    ) -> Result<SdkConfig, RunbookError> {
        self.config_for(&plan.finding.account_id, &plan.finding.region, execution_id)
            .await
    }

    /// The SDK configuration for acting in `account` and `region`: the runbook's own in
    /// its own account (with the region set), the member role's otherwise, assumed here
    /// and now so that a refusal is one clear error before anything is read or changed.
    pub async fn config_for(
        &self,
        account: &AccountId,
        region: &Region,
        execution_id: Option<&str>,
    ) -> Result<SdkConfig, RunbookError> {
        let Some(home) = &self.home else {
            return Err(RunbookError::Aws {
                operation: "sts:AssumeRole",
                message: format!("FIREBREAK_ACCOUNT_ID or AWS_REGION is not set (or not valid): {} cannot tell whether account {account} is its own, so it acts nowhere", self.runbook),
                transient: false,
            });
        };
        let in_region = aws_config::Region::new(region.as_str().to_owned());
        if account == &home.account_id {
            return Ok(self.base.to_builder().region(in_region).build());
        }
        let role_arn = member_role_arn(account, region, self.runbook);
        let session = session_name(execution_id, self.runbook);
        // STS in Firebreak's own region: the member's region may not be enabled for it.
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn.clone())
            .session_name(session.clone())
            .region(aws_config::Region::new(home.region.as_str().to_owned()))
            .configure(&self.base)
            .build()
            .await;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| RunbookError::Aws {
                operation: "sts:AssumeRole",
                message: format!(
                    "cannot act in account {account}: assuming {role_arn} failed: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
                transient: false,
            })?;
        tracing::info!(
            runbook = self.runbook,
            account_id = %account,
            region = %region,
            role_arn = %role_arn,
            session_name = %session,
            "acting in the finding's account through its member role"
        );
        Ok(self
            .base
            .to_builder()
            .region(in_region)
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_role_is_named_after_the_runbook_in_the_regions_partition() {
        let a = AccountId::parse("111122223333").unwrap();
        assert_eq!(
            member_role_arn(&a, &Region::parse("eu-west-1").unwrap(), "isolate-instance"),
            "arn:aws:iam::111122223333:role/Firebreak-member-isolate-instance"
        );
        assert_eq!(
            member_role_arn(&a, &Region::parse("cn-north-1").unwrap(), "triage"),
            "arn:aws-cn:iam::111122223333:role/Firebreak-member-triage"
        );
    }

    #[test]
    fn the_session_name_names_the_execution_within_stss_limits() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:Firebreak-response:9f1c2d3e-4b5a-6789-abcd-ef0123456789";
        assert_eq!(
            session_name(Some(arn), "triage"),
            "firebreak-9f1c2d3e-4b5a-6789-abcd-ef0123456789"
        );
        assert_eq!(session_name(None, "triage"), "firebreak-triage");
        let long = format!("{}:{}", arn, "x/y z".repeat(30));
        let s = session_name(Some(&long), "triage");
        assert_eq!(s.len(), 64);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)));
    }
}
