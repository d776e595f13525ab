//! Triage: any finding input in, one response plan per finding out.
//!
//! Validates and normalises the input (see `firebreak::finding`), reads the policy (SSM
//! when `FIREBREAK_POLICY_PARAMETER` is set, the built-in one otherwise), looks the
//! instance up in EC2 and IAM for tags, interfaces and role, and plans. It changes nothing.

mod enrich;

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_iam::Client as IamClient;
use aws_sdk_ssm::Client as SsmClient;
use firebreak::error::RunbookError;
use firebreak::finding::{parse_input, InputKind};
use firebreak::plan::{plan, Enrichment, Plan};
use firebreak::policy::Policy;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state machine passes the raw input with the execution's identity beside it; a
/// direct invocation may pass the raw input alone.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wrapped {
    input: Value,
    execution_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    pub input_kind: InputKind,
    pub drill: bool,
    pub dry_run: bool,
    pub plans: Vec<Plan>,
}

pub struct Config {
    pub policy_parameter: Option<String>,
    /// Deployment-wide dry-run: every plan is a dry run whatever the input says.
    pub force_dry_run: bool,
}

impl Config {
    fn from_env() -> Self {
        Config {
            policy_parameter: std::env::var("FIREBREAK_POLICY_PARAMETER").ok().filter(|s| !s.is_empty()),
            force_dry_run: std::env::var("FIREBREAK_DRY_RUN").is_ok_and(|v| v == "true"),
        }
    }
}

pub struct Clients {
    pub ec2: Ec2Client,
    pub iam: IamClient,
    pub ssm: SsmClient,
}

pub async fn triage(event: Value, config: &Config, clients: &Clients) -> Result<TriageOutput, RunbookError> {
    let (input, execution_id) = match serde_json::from_value::<Wrapped>(event.clone()) {
        Ok(w) => (w.input, Some(w.execution_id)),
        Err(_) => (event, None),
    };
    let parsed = parse_input(&input)?;
    let (policy, policy_source) = match &config.policy_parameter {
        Some(name) => enrich::policy_from_ssm(&clients.ssm, name).await?,
        None => (Policy::built_in()?, "built-in".to_owned()),
    };
    let dry_run = parsed.dry_run || config.force_dry_run;
    let mut plans = Vec::with_capacity(parsed.findings.len());
    for finding in &parsed.findings {
        let enrichment = match &finding.targets.instance {
            Some(target) => enrich::instance(&clients.ec2, &clients.iam, &target.instance_id).await?,
            None => Enrichment::NotNeeded,
        };
        let p = plan(finding, &policy, &policy_source, enrichment, dry_run);
        tracing::info!(
            execution_id = execution_id.as_deref().unwrap_or(""),
            finding_id = %finding.security_hub.id,
            finding_type = %finding.finding_type.name,
            severity = finding.severity.score,
            dry_run,
            actions = ?p.actions.iter().map(|a| a.kind().name()).collect::<Vec<_>>(),
            skipped = p.skipped.len(),
            "planned"
        );
        plans.push(p);
    }
    Ok(TriageOutput {
        execution_id,
        input_kind: parsed.kind,
        drill: parsed.drill,
        dry_run,
        plans,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    firebreak::logging::init();
    let sdk = firebreak::aws::load_config().await;
    let clients = Clients {
        ec2: Ec2Client::new(&sdk),
        iam: IamClient::new(&sdk),
        ssm: SsmClient::new(&sdk),
    };
    let config = Config::from_env();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (clients, config) = (&clients, &config);
        async move {
            triage(event.payload, config, clients).await.map_err(|e| {
                tracing::error!(error_type = e.error_type(), error = %e, "triage refused the input");
                e
            })
        }
    }))
    .await
}
