//! Triage: any finding input in, one response plan per finding out.
//!
//! Validates and normalises the input (see `firebreak::finding`), reads the policy (SSM
//! when `FIREBREAK_POLICY_PARAMETER` is set, the built-in one otherwise), looks the
//! instance up in EC2 and IAM for tags, interfaces and role, and plans. It changes nothing.
//!
//! For the release machine it checks an operator's release request into a release plan
//! (`{"release": …}`, see `firebreak::release`): the only thing the release runbooks act on.

mod accounts;
mod enrich;

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_iam::Client as IamClient;
use aws_sdk_lambda::Client as LambdaClient;
use aws_sdk_s3::Client as S3Client;
use aws_sdk_ssm::Client as SsmClient;
use firebreak::error::{InputError, RunbookError};
#[cfg(test)]
use firebreak::finding::InputKind;
use firebreak::finding::{parse_input, Finding};
use firebreak::ids::{AccountId, InstanceId, Region};
use firebreak::outcome::TriageOutput;
use firebreak::plan::{plan_in, Deployment, Enrichment};
use firebreak::policy::{Enrolment, Policy};
use firebreak::reach::Reach;
use firebreak::release::{ReleasePlan, ReleaseRequest};
use serde_json::Value;

/// The state machine passes `{"input": <raw input>, "executionId": "..."}`; a direct
/// invocation may pass the raw input alone.
fn unwrap_execution(mut event: Value) -> (Value, Option<String>) {
    let wrapped = event.as_object().is_some_and(|m| {
        m.len() == 2
            && m.contains_key("input")
            && m.get("executionId").is_some_and(Value::is_string)
    });
    if !wrapped {
        return (event, None);
    }
    let id = event["executionId"].as_str().map(str::to_owned);
    (event["input"].take(), id)
}

pub struct Config {
    pub policy_parameter: Option<String>,
    /// Deployment-wide dry-run: every plan is a dry run whatever the input says.
    pub force_dry_run: bool,
    /// The account and region Firebreak runs in (`FIREBREAK_ACCOUNT_ID`, `AWS_REGION`):
    /// the only place it acts. `None` when they are not set or invalid: then it acts
    /// nowhere, and every finding's note says why.
    pub deployment: Option<Deployment>,
}

impl Config {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        Config {
            policy_parameter: var("FIREBREAK_POLICY_PARAMETER"),
            force_dry_run: std::env::var("FIREBREAK_DRY_RUN").is_ok_and(|v| v == "true"),
            deployment: Deployment::from_env(),
        }
    }

    /// Why this finding may not be acted on, if it may not.
    fn refuses(&self, finding: &Finding, enrolment: &Enrolment) -> Option<String> {
        match &self.deployment {
            Some(d) => d.refuses(finding, enrolment),
            None => Some("FIREBREAK_ACCOUNT_ID or AWS_REGION is not set (or not valid): Firebreak cannot tell whether the finding is from its own account and region, so it acts nowhere".into()),
        }
    }

    fn is_home(&self, finding: &Finding) -> bool {
        self.deployment
            .as_ref()
            .is_some_and(|d| d.account_id == finding.account_id && d.region == finding.region)
    }
}

pub struct Clients {
    pub ec2: Ec2Client,
    pub iam: IamClient,
    pub lambda: LambdaClient,
    pub s3: S3Client,
    pub ssm: SsmClient,
    /// How triage reads a member account or another region (through the member role
    /// there). `None` in the unit tests, whose mocked clients answer for every account.
    pub reach: Option<Reach>,
    /// Whose account a finding is in (Organizations, the Account API, the cache); `None`
    /// in the unit tests.
    pub accounts: Option<accounts::AccountLookup>,
}

/// The readers of one account and region: EC2, IAM, Lambda and S3.
type Readers = (Ec2Client, IamClient, LambdaClient, S3Client);
/// The readers of the accounts and regions one invocation has read.
type Elsewhere = BTreeMap<(AccountId, Region), Readers>;

impl Clients {
    /// EC2 and IAM where the finding is: Firebreak's own, or the member role's in the
    /// finding's account and region (assumed once per account and region).
    async fn where_found(
        &self,
        finding: &Finding,
        config: &Config,
        execution_id: Option<&str>,
        elsewhere: &mut Elsewhere,
    ) -> Result<Readers, RunbookError> {
        let Some(reach) = self.reach.as_ref().filter(|_| !config.is_home(finding)) else {
            return Ok((
                self.ec2.clone(),
                self.iam.clone(),
                self.lambda.clone(),
                self.s3.clone(),
            ));
        };
        let key = (finding.account_id.clone(), finding.region.clone());
        if let Some(found) = elsewhere.get(&key) {
            return Ok(found.clone());
        }
        let conf = reach
            .config_for(&finding.account_id, &finding.region, execution_id)
            .await?;
        let found = (
            Ec2Client::new(&conf),
            IamClient::new(&conf),
            LambdaClient::new(&conf),
            s3_client(&conf),
        );
        elsewhere.insert(key, found.clone());
        Ok(found)
    }
}

/// Instances read in one invocation, by account, region and id: several findings of one
/// batch often name the same instance.
type Seen = BTreeMap<(AccountId, Region, InstanceId), Enrichment>;

impl Clients {
    /// The instance as EC2 and IAM have it where the finding is, read once per invocation.
    async fn instance_once(
        &self,
        finding: &Finding,
        id: &InstanceId,
        config: &Config,
        execution_id: Option<&str>,
        seen: &mut Seen,
        elsewhere: &mut Elsewhere,
    ) -> Result<Enrichment, RunbookError> {
        let key = (
            finding.account_id.clone(),
            finding.region.clone(),
            id.clone(),
        );
        if let Some(known) = seen.get(&key) {
            return Ok(known.clone());
        }
        let (ec2, iam, _, _) = self
            .where_found(finding, config, execution_id, elsewhere)
            .await?;
        let read = enrich::instance(&ec2, &iam, id).await?;
        seen.insert(key, read.clone());
        Ok(read)
    }
}

pub async fn triage(
    event: Value,
    config: &Config,
    clients: &Clients,
) -> Result<TriageOutput, RunbookError> {
    let (input, execution_id) = unwrap_execution(event);
    let parsed = parse_input(&input)?;
    let (policy, policy_source) = match &config.policy_parameter {
        Some(name) => enrich::policy_from_ssm(&clients.ssm, name).await?,
        None => (Policy::built_in()?, "built-in".to_owned()),
    };
    let dry_run = parsed.dry_run || config.force_dry_run;
    let mut plans = Vec::with_capacity(parsed.findings.len());
    // Several findings of one custom action often name the same instance: read it once.
    let mut seen: Seen = BTreeMap::new();
    let mut elsewhere = Elsewhere::new();
    // One lookup per account per invocation (and, through the cache, per day).
    let mut known_accounts: BTreeMap<AccountId, Option<firebreak::account::AccountInfo>> =
        BTreeMap::new();
    for finding in &parsed.findings {
        // Outside this account and region and the enrolled ones: nothing is looked up
        // (a same-named resource of this account would be read), and every action is
        // held with the reason.
        let outside = config.refuses(finding, &policy.enrolment);
        let over_cap = finding.targets.sequence.as_ref().is_some_and(|seq| {
            seq.count(finding.targets.remote_ips.len())
                > usize::from(policy.attack_sequences.max_targets)
        });
        let enrichment = if outside.is_some() || over_cap {
            Enrichment::NotNeeded
        } else if let Some(seq) = &finding.targets.sequence {
            // An attack sequence: each instance it names, read where the finding is.
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for target in &seq.instances {
                let read = clients
                    .instance_once(
                        finding,
                        &target.instance_id,
                        config,
                        execution_id.as_deref(),
                        &mut seen,
                        &mut elsewhere,
                    )
                    .await?;
                match read {
                    Enrichment::Instance(facts) => found.push(facts),
                    _ => missing.push(target.instance_id.clone()),
                }
            }
            Enrichment::Instances { found, missing }
        } else if let Some(target) = &finding.targets.instance {
            clients
                .instance_once(
                    finding,
                    &target.instance_id,
                    config,
                    execution_id.as_deref(),
                    &mut seen,
                    &mut elsewhere,
                )
                .await?
        } else if let Some(f) = &finding.targets.function {
            // A Lambda Protection finding: the function's tags (exemption) and role.
            let (_, _, lambda, _) = clients
                .where_found(finding, config, execution_id.as_deref(), &mut elsewhere)
                .await?;
            enrich::function(&lambda, &f.function_name).await?
        } else if !finding.targets.s3_buckets.is_empty() {
            // An S3 finding: each bucket's tags (exemption), and whether the finding's
            // account owns it at all.
            let (_, _, _, s3) = clients
                .where_found(finding, config, execution_id.as_deref(), &mut elsewhere)
                .await?;
            enrich::buckets(&s3, &finding.targets.s3_buckets, &finding.account_id).await?
        } else {
            Enrichment::NotNeeded
        };
        let account = match (&clients.accounts, &outside) {
            (Some(lookup), None) => match known_accounts.get(&finding.account_id) {
                Some(known) => known.clone(),
                None => {
                    let info = lookup.info(&finding.account_id).await;
                    known_accounts.insert(finding.account_id.clone(), info.clone());
                    info
                }
            },
            _ => None,
        };
        let mut p = plan_in(
            finding,
            &policy,
            &policy_source,
            enrichment,
            account,
            dry_run,
        );
        if let Some(selected) = &parsed.playbooks {
            p.narrow_to(selected);
        }
        if let Some(why) = &outside {
            p.hold_outside(why);
        }
        // Decided last, on the actions that will run: a filter or a hold can only take
        // actions away, and the gate names exactly what a yes lets run.
        p.approval = firebreak::approval::gate(&policy.approval, &p, parsed.require_approval);
        p.ticket = firebreak::ticket::route(&policy.tickets, &p);
        tracing::info!(
            execution_id = execution_id.as_deref().unwrap_or(""),
            finding_id = %finding.security_hub.id,
            finding_type = %finding.finding_type.name,
            severity = finding.severity.score,
            dry_run,
            actions = ?p.actions.iter().map(|a| a.kind().name()).collect::<Vec<_>>(),
            skipped = p.skipped.len(),
            approval = p.approval.as_ref().map_or("", |g| g.rule.as_str()),
            "planned"
        );
        plans.push(p);
    }
    for r in &parsed.refused {
        tracing::warn!(
            execution_id = execution_id.as_deref().unwrap_or(""),
            path = %r.path,
            error_type = %r.error_type,
            "finding refused: {}",
            r.error
        );
    }
    Ok(TriageOutput {
        execution_id,
        input_kind: parsed.kind,
        drill: parsed.drill,
        dry_run,
        plans,
        refused: parsed.refused,
    })
}

/// What the release machine hands triage: the operator's request as given.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReleaseEvent {
    release: ReleaseRequest,
    #[serde(default)]
    execution_id: Option<String>,
}

/// A release request checked against the deployment and the policy's enrolment in force.
/// Nothing is looked up but the policy: the runbooks read what Firebreak recorded.
pub async fn verify_release(
    event: Value,
    config: &Config,
    clients: &Clients,
) -> Result<ReleasePlan, RunbookError> {
    let ev: ReleaseEvent = InputError::read(event)?;
    let policy = match &config.policy_parameter {
        Some(name) => enrich::policy_from_ssm(&clients.ssm, name).await?.0,
        None => Policy::built_in()?,
    };
    let plan = firebreak::release::verify(
        &ev.release,
        config.deployment.as_ref(),
        &policy,
        config.force_dry_run,
        ev.execution_id,
    )?;
    tracing::info!(
        execution_id = plan.execution_id.as_deref().unwrap_or(""),
        action = "release",
        account_id = %plan.account_id,
        region = %plan.region,
        dry_run = plan.dry_run,
        "release of {} verified",
        plan.target()
    );
    Ok(plan)
}

/// A response's triage, or a release's check.
pub async fn handle(
    event: Value,
    config: &Config,
    clients: &Clients,
) -> Result<Value, RunbookError> {
    let out = if event.get("release").is_some() {
        serde_json::to_value(verify_release(event, config, clients).await?)
    } else {
        serde_json::to_value(triage(event, config, clients).await?)
    };
    out.map_err(|e| RunbookError::Aws {
        operation: "serialise result",
        message: e.to_string(),
        transient: false,
    })
}

/// S3 by path on a local endpoint (no DNS name per bucket), by virtual host on AWS.
fn s3_client(conf: &aws_config::SdkConfig) -> S3Client {
    S3Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(firebreak::aws::s3_path_style())
            .build(),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let clients = Clients {
        ec2: Ec2Client::new(&sdk),
        iam: IamClient::new(&sdk),
        lambda: LambdaClient::new(&sdk),
        s3: s3_client(&sdk),
        ssm: SsmClient::new(&sdk),
        reach: Some(Reach::from_env(sdk.clone(), "triage")),
        accounts: Some(accounts::AccountLookup {
            organizations: aws_sdk_organizations::Client::new(&sdk),
            contacts: aws_sdk_account::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            table: std::env::var("FIREBREAK_ACCOUNT_CACHE_TABLE")
                .ok()
                .filter(|t| !t.is_empty()),
            home: Deployment::from_env().map(|d| d.account_id),
        }),
    };
    let config = Config::from_env();
    firebreak::runtime::serve("triage", |input: Value| handle(input, &config, &clients)).await
}

#[cfg(test)]
mod tests {
    //! Triage against mocked AWS answers (aws-smithy-mocks): the enrichment decisions and
    //! the error types. The whole runbook against the local account is in tests/.
    use super::*;
    use aws_sdk_ec2::operation::describe_instances::{
        DescribeInstancesError, DescribeInstancesOutput,
    };
    use aws_sdk_ec2::types::{
        GroupIdentifier, IamInstanceProfile, Instance, InstanceNetworkInterface, Reservation, Tag,
    };
    use aws_sdk_iam::operation::get_instance_profile::GetInstanceProfileOutput;
    use aws_sdk_iam::types::{InstanceProfile, Role};
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use firebreak::plan::{PlannedAction, SkipReason};
    use firebreak::policy::{ActionKind, DEFAULT_POLICY_JSON};

    const INSTANCE: &str = "i-0a1b2c3d4e5f60718";

    fn event() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/findings/ec2-network-backdoor.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn instance(tags: &[(&str, &str)]) -> Instance {
        Instance::builder()
            .instance_id(INSTANCE)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .network_interfaces(
                InstanceNetworkInterface::builder()
                    .network_interface_id("eni-0f0f0f0f0f0f0f0f0")
                    .subnet_id("subnet-0e0e0e0e0e0e0e0e0")
                    .vpc_id("vpc-0d0d0d0d0d0d0d0d0")
                    .groups(
                        GroupIdentifier::builder()
                            .group_id("sg-0c0c0c0c0c0c0c0c0")
                            .build(),
                    )
                    .build(),
            )
            .iam_instance_profile(
                IamInstanceProfile::builder()
                    .arn("arn:aws:iam::111122223333:instance-profile/web-profile")
                    .build(),
            )
            .build()
    }

    fn describe_ok(i: Instance) -> Rule {
        mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|r| r.instance_ids() == [INSTANCE.to_owned()])
            .then_output(move || {
                DescribeInstancesOutput::builder()
                    .reservations(Reservation::builder().instances(i.clone()).build())
                    .build()
            })
    }

    fn describe_err(code: &'static str) -> Rule {
        mock!(aws_sdk_ec2::Client::describe_instances).then_error(move || {
            DescribeInstancesError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("mocked")
                    .build(),
            )
        })
    }

    fn profile_role(role: &'static str) -> Rule {
        mock!(aws_sdk_iam::Client::get_instance_profile)
            .match_requests(|r| r.instance_profile_name() == Some("web-profile"))
            .then_output(move || {
                let when = aws_smithy_types::DateTime::from_secs(0);
                GetInstanceProfileOutput::builder()
                    .instance_profile(
                        InstanceProfile::builder()
                            .path("/")
                            .instance_profile_name("web-profile")
                            .instance_profile_id("AIPAEXAMPLE")
                            .arn("arn:aws:iam::111122223333:instance-profile/web-profile")
                            .create_date(when)
                            .roles(
                                Role::builder()
                                    .path("/")
                                    .role_name(role)
                                    .role_id("AROAEXAMPLE")
                                    .arn(format!("arn:aws:iam::111122223333:role/{role}"))
                                    .create_date(when)
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
    }

    fn ssm_policy(text: String) -> Rule {
        mock!(aws_sdk_ssm::Client::get_parameter)
            .match_requests(|r| r.name() == Some("/firebreak/policy"))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name("/firebreak/policy")
                            .value(text.clone())
                            .build(),
                    )
                    .build()
            })
    }

    fn clients(ec2: &[&Rule], iam: &[&Rule], ssm: &[&Rule]) -> Clients {
        Clients {
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2),
            iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, iam),
            lambda: mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &[]),
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, ssm),
            reach: None,
            accounts: None,
        }
    }

    /// Deployed in the fixtures' account and region.
    fn here() -> Option<Deployment> {
        deployed_in("111122223333", "us-east-1").deployment
    }

    /// The built-in policy, deployed in that account and region.
    fn deployed_in(account: &str, region: &str) -> Config {
        Config {
            policy_parameter: None,
            force_dry_run: false,
            deployment: Some(Deployment {
                account_id: AccountId::parse(account).unwrap(),
                region: Region::parse(region).unwrap(),
            }),
        }
    }

    fn built_in() -> Config {
        Config {
            policy_parameter: None,
            force_dry_run: false,
            deployment: here(),
        }
    }

    #[tokio::test]
    async fn interfaces_and_tags_come_from_ec2() {
        let describe = describe_ok(instance(&[("owner", "dana"), ("team", "web")]));
        let role = profile_role("web-instance-role");
        let out = triage(event(), &built_in(), &clients(&[&describe], &[&role], &[]))
            .await
            .unwrap();
        let plan = &out.plans[0];
        match &plan.actions[0] {
            PlannedAction::IsolateInstance {
                network_interfaces,
                vpc_ids,
                ..
            } => {
                assert_eq!(network_interfaces[0].as_str(), "eni-0f0f0f0f0f0f0f0f0");
                assert_eq!(vpc_ids[0].as_str(), "vpc-0d0d0d0d0d0d0d0d0");
            }
            other => panic!("{other:?}"),
        }
        match &plan.actions[1] {
            PlannedAction::BlockRemoteIps { subnet_ids, .. } => {
                assert_eq!(subnet_ids[0].as_str(), "subnet-0e0e0e0e0e0e0e0e0")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.context.owner.as_deref(), Some("dana"));
        assert_eq!(describe.num_calls(), 1);
        assert_eq!(role.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_finding_from_another_account_looks_nothing_up_and_holds_every_action() {
        // No mock answers: any AWS call would fail the test.
        let config = deployed_in("444455556666", "us-east-1");
        let out = triage(event(), &config, &clients(&[], &[], &[]))
            .await
            .unwrap();
        let p = &out.plans[0];
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p.playbooks.is_empty());
        let held: Vec<_> = p
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::OutsideDeployment)
            .collect();
        assert!(!held.is_empty());
        assert!(
            held[0].detail.contains(
                "from account 111122223333, which is not enrolled (Firebreak runs in account 444455556666"
            ),
            "{}",
            held[0].detail
        );
    }

    #[tokio::test]
    async fn another_region_or_an_unknown_deployment_holds_every_action_too() {
        let config = deployed_in("111122223333", "eu-west-1");
        let out = triage(event(), &config, &clients(&[], &[], &[]))
            .await
            .unwrap();
        assert!(out.plans[0].actions.is_empty());
        assert!(out.plans[0]
            .skipped
            .iter()
            .any(|s| s.detail.contains("from region us-east-1")));
        let unknown = Config {
            deployment: None,
            ..built_in()
        };
        let out = triage(event(), &unknown, &clients(&[], &[], &[]))
            .await
            .unwrap();
        assert!(out.plans[0].actions.is_empty());
        assert!(out.plans[0]
            .skipped
            .iter()
            .any(|s| s.detail.contains("FIREBREAK_ACCOUNT_ID")));
    }

    #[tokio::test]
    async fn an_instance_tagged_exempt_in_ec2_is_left_alone() {
        let describe = describe_ok(instance(&[("firebreak:exempt", "true")]));
        let role = profile_role("web-instance-role");
        let out = triage(event(), &built_in(), &clients(&[&describe], &[&role], &[]))
            .await
            .unwrap();
        assert!(out.plans[0].actions.is_empty());
        assert_eq!(out.plans[0].skipped[0].reason, SkipReason::ExemptTag);
    }

    #[tokio::test]
    async fn two_findings_on_one_instance_read_it_once() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/findings/securityhub-custom-action-two-findings.json"
        );
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let describe = mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|r| r.instance_ids() == ["i-0c10c2c7863d1a356".to_owned()])
            .then_output(|| {
                let i = Instance::builder()
                    .instance_id("i-0c10c2c7863d1a356")
                    .build();
                DescribeInstancesOutput::builder()
                    .reservations(Reservation::builder().instances(i).build())
                    .build()
            });
        let config = deployed_in("193043430472", "us-east-1");
        let out = triage(event, &config, &clients(&[&describe], &[], &[]))
            .await
            .unwrap();
        assert_eq!(out.plans.len(), 2);
        assert_eq!(describe.num_calls(), 1);
        // EC2 reports no interfaces now, so there is no subnet to block at.
        assert_eq!(out.plans[1].action(ActionKind::BlockRemoteIps), None);
    }

    #[tokio::test]
    async fn an_unknown_instance_is_not_acted_on() {
        let describe = describe_err("InvalidInstanceID.NotFound");
        let out = triage(event(), &built_in(), &clients(&[&describe], &[], &[]))
            .await
            .unwrap();
        assert!(out.plans[0].actions.is_empty());
        assert_eq!(out.plans[0].skipped[0].reason, SkipReason::TargetNotFound);
    }

    #[tokio::test]
    async fn access_denied_fails_with_the_operation_named() {
        let describe = describe_err("UnauthorizedOperation");
        let err = triage(event(), &built_in(), &clients(&[&describe], &[], &[]))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "AwsCallFailed");
        assert!(
            err.to_string()
                .contains("ec2:DescribeInstances failed: UnauthorizedOperation"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_sdk_retries_is_transient() {
        let describe = describe_err("RequestLimitExceeded");
        let err = triage(event(), &built_in(), &clients(&[&describe], &[], &[]))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "AwsTransientError");
    }

    #[tokio::test]
    async fn the_policy_comes_from_ssm_and_drives_the_plan() {
        let mut v: Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
        v["policyVersion"] = "custom-7".into();
        v["rules"][0]["actions"] =
            serde_json::json!(["isolate-instance", "revoke-role-sessions", "mark-resolved"]);
        let ssm = ssm_policy(v.to_string());
        let describe = describe_ok(instance(&[]));
        let role = profile_role("web-instance-role");
        let config = Config {
            policy_parameter: Some("/firebreak/policy".into()),
            force_dry_run: false,
            deployment: here(),
        };
        let out = triage(event(), &config, &clients(&[&describe], &[&role], &[&ssm]))
            .await
            .unwrap();
        let plan = &out.plans[0];
        assert_eq!(plan.policy.version, "custom-7");
        assert_eq!(plan.policy.source, "ssm:/firebreak/policy");
        match plan.action(ActionKind::RevokeRoleSessions) {
            Some(PlannedAction::RevokeRoleSessions {
                role_name,
                role_arn,
                ..
            }) => {
                assert_eq!(role_name.as_str(), "web-instance-role");
                assert_eq!(
                    role_arn.as_ref().unwrap().as_str(),
                    "arn:aws:iam::111122223333:role/web-instance-role"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_broken_policy_fails_the_execution_before_any_other_call() {
        let ssm = ssm_policy("{\"policyVersion\": \"x\", \"rules\": [{\"name\": 1}]}".into());
        let describe = describe_ok(instance(&[]));
        let config = Config {
            policy_parameter: Some("/firebreak/policy".into()),
            force_dry_run: false,
            deployment: here(),
        };
        let err = triage(event(), &config, &clients(&[&describe], &[], &[&ssm]))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidPolicy");
        assert!(
            err.to_string()
                .contains("ssm:/firebreak/policy: $.rules[0].name"),
            "{err}"
        );
        assert_eq!(describe.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_finding_that_cannot_be_identified_is_refused_before_any_aws_call() {
        let mut bad = event();
        bad["detail"]["accountId"] = "1234;rm".into();
        let describe = describe_ok(instance(&[]));
        let ssm = ssm_policy(DEFAULT_POLICY_JSON.into());
        let config = Config {
            policy_parameter: Some("/firebreak/policy".into()),
            force_dry_run: false,
            deployment: here(),
        };
        let err = triage(bad, &config, &clients(&[&describe], &[], &[&ssm]))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
        assert!(err.to_string().starts_with("$.detail.accountId:"), "{err}");
        assert_eq!(describe.num_calls() + ssm.num_calls(), 0);
        let diagnostic: lambda_runtime::Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "InvalidInput");
    }

    #[tokio::test]
    async fn an_invalid_instance_id_is_never_looked_up_or_acted_on_and_leaves_a_gap() {
        let mut bad = event();
        bad["detail"]["resource"]["instanceDetails"]["instanceId"] = "i-123;rm".into();
        let describe = describe_ok(instance(&[]));
        let out = triage(bad, &built_in(), &clients(&[&describe], &[], &[]))
            .await
            .unwrap();
        assert_eq!(describe.num_calls(), 0, "EC2 never sees the bad value");
        let plan = &out.plans[0];
        assert_eq!(plan.action(ActionKind::IsolateInstance), None);
        let gap = plan
            .skipped
            .iter()
            .find(|s| s.reason == SkipReason::InvalidTarget)
            .expect("the invalid target is reported");
        assert_eq!(
            gap.target.as_deref(),
            Some("$.detail.resource.instanceDetails.instanceId")
        );
        assert!(gap.detail.contains("invalid instance id"), "{}", gap.detail);
    }

    #[tokio::test]
    async fn the_state_machine_wrapper_carries_the_execution_id_and_dry_run_is_forced_by_config() {
        let describe = describe_ok(instance(&[]));
        let role = profile_role("web-instance-role");
        let wrapped = serde_json::json!({"input": event(), "executionId": "arn:aws:states:us-east-1:111122223333:execution:ec2:1"});
        let config = Config {
            policy_parameter: None,
            force_dry_run: true,
            deployment: here(),
        };
        let out = triage(wrapped, &config, &clients(&[&describe], &[&role], &[]))
            .await
            .unwrap();
        assert_eq!(
            out.execution_id.as_deref(),
            Some("arn:aws:states:us-east-1:111122223333:execution:ec2:1")
        );
        assert!(out.dry_run && out.plans[0].dry_run);
        assert_eq!(out.input_kind, InputKind::GuardDutyEvent);
    }

    #[tokio::test]
    async fn a_release_is_checked_into_a_plan_and_nothing_is_read_but_the_policy() {
        let config = deployed_in("111122223333", "us-east-1");
        let none = clients(&[], &[], &[]);
        let ev = serde_json::json!({"release": {"ip": "203.0.113.7", "dryRun": true}, "executionId": "exec-r"});
        let out = handle(ev, &config, &none).await.unwrap();
        assert_eq!(out["ip"], "203.0.113.7");
        assert_eq!(out["accountId"], "111122223333");
        assert_eq!(out["releasesBlocks"], true);
        assert_eq!(out["releasesInstances"], false);
        assert_eq!(out["dryRun"], true);
        assert_eq!(out["executionId"], "exec-r");
        // An account the built-in policy does not enrol is refused with the field.
        let ev = serde_json::json!({"release": {"instance": "i-0a1b2c3d4e5f60718", "account": "999988887777"}});
        let err = handle(ev, &config, &none).await.unwrap_err();
        assert!(err.to_string().contains("$.release.account"), "{err}");
        let ev = serde_json::json!({"release": {"ip": "203.0.113.7", "reactivate": true}});
        let err = handle(ev, &config, &none).await.unwrap_err();
        assert!(err.to_string().contains("reactivate"), "{err}");
    }
}
