//! throttle-function: stops a compromised Lambda function from running (AWS's guidance for
//! Lambda Protection findings) by setting its reserved concurrency to 0: invocations are
//! refused from then on, the code and configuration stay as evidence. The prior setting is
//! kept on a tag before anything changes, so a release can put it back; a re-run changes
//! nothing and never overwrites that record.

use aws_sdk_lambda::Client;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::FunctionName;
use firebreak::outcome::{ActionOutcome, ActionRequest, Change, OutcomeStatus, RunbookOutput};
use firebreak::plan::PlannedAction;
use firebreak::policy::ActionKind;
use firebreak::reach::Reach;
use time::OffsetDateTime;

/// The function's reserved concurrency before Firebreak throttled it (`none` when it had
/// none): what a release restores.
pub const PRIOR_TAG: &str = "firebreak:prior-reserved-concurrency";
/// The finding that throttled it.
pub const FINDING_TAG: &str = "firebreak:throttled-for";

/// What Lambda has of the function.
struct FunctionView {
    arn: String,
    reserved: Option<i32>,
    prior_tag: Option<String>,
}

async fn read(lambda: &Client, name: &FunctionName) -> Result<Option<FunctionView>, RunbookError> {
    let out = match lambda
        .get_function()
        .function_name(name.as_str())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(aws_error("lambda:GetFunction", e)),
    };
    let arn = out
        .configuration()
        .and_then(|c| c.function_arn())
        .unwrap_or_default()
        .to_owned();
    let prior_tag = out.tags().and_then(|t| t.get(PRIOR_TAG)).cloned();
    let reserved = lambda
        .get_function_concurrency()
        .function_name(name.as_str())
        .send()
        .await
        .map_err(|e| aws_error("lambda:GetFunctionConcurrency", e))?
        .reserved_concurrent_executions();
    Ok(Some(FunctionView {
        arn,
        reserved,
        prior_tag,
    }))
}

fn setting(reserved: Option<i32>) -> String {
    reserved.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

async fn throttle_one(
    req: &ActionRequest,
    name: &FunctionName,
    lambda: &Client,
) -> Result<ActionOutcome, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let plan = &req.plan;
    let finding_id = plan.finding.security_hub.id.as_str();
    let Some(view) = read(lambda, name).await? else {
        return Err(RunbookError::TargetGone {
            error_type: "FunctionNotFound",
            message: format!("Lambda function {name} no longer exists; nothing was changed"),
        });
    };
    let mut changes = Vec::new();
    let (status, summary) = if view.reserved == Some(0) {
        let why = match &view.prior_tag {
            Some(prior) => format!("Firebreak throttled it before (prior setting {prior})"),
            None => "its reserved concurrency was already 0, set by someone else".into(),
        };
        (
            OutcomeStatus::AlreadyDone,
            format!("Lambda function {name} cannot run: {why}; nothing changed"),
        )
    } else if plan.dry_run {
        (
            OutcomeStatus::DryRun,
            format!(
                "dry run: would set Lambda function {name}'s reserved concurrency from {} to 0",
                setting(view.reserved)
            ),
        )
    } else {
        // The record first: if it cannot be written, nothing is changed.
        if view.prior_tag.is_none() {
            lambda
                .tag_resource()
                .resource(&view.arn)
                .tags(PRIOR_TAG, setting(view.reserved))
                .tags(
                    FINDING_TAG,
                    finding_id.chars().take(256).collect::<String>(),
                )
                .send()
                .await
                .map_err(|e| aws_error("lambda:TagResource", e))?;
            changes.push(Change {
                resource: view.arn.clone(),
                what: "tag".into(),
                before: "none".into(),
                after: format!("{PRIOR_TAG}={}", setting(view.reserved)),
            });
        }
        lambda
            .put_function_concurrency()
            .function_name(name.as_str())
            .reserved_concurrent_executions(0)
            .send()
            .await
            .map_err(|e| aws_error("lambda:PutFunctionConcurrency", e).after_changes(&changes))?;
        changes.push(Change {
            resource: view.arn.clone(),
            what: "reserved concurrency".into(),
            before: setting(view.reserved),
            after: "0".into(),
        });
        (
            OutcomeStatus::Done,
            format!(
                "throttled Lambda function {name}: reserved concurrency {} -> 0 (the prior setting is on tag {PRIOR_TAG})",
                setting(view.reserved)
            ),
        )
    };
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id,
        action = "throttle-function",
        function = %name,
        status = ?status,
        "{summary}"
    );
    Ok(ActionOutcome {
        action: ActionKind::ThrottleFunction,
        status,
        target: name.to_string(),
        summary,
        changes,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    })
}

/// Every throttle the plan holds, one outcome each; a failure carries what was changed.
pub async fn throttle_planned(
    req: &ActionRequest,
    lambda: &Client,
) -> Result<RunbookOutput, RunbookError> {
    let names = req
        .plan
        .actions_of(ActionKind::ThrottleFunction)
        .filter_map(|a| match a {
            PlannedAction::ThrottleFunction { function_name, .. } => Some(function_name),
            _ => None,
        });
    RunbookOutput::each(
        ActionKind::ThrottleFunction,
        names,
        "the plan has no throttle-function action",
        |name| throttle_one(req, name, lambda),
    )
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let reach = Reach::from_env(sdk, "throttle-function");
    let reach = &reach;
    firebreak::runtime::serve("throttle-function", |req: ActionRequest| async move {
        // Lambda of the finding's account and region.
        let lambda = Client::new(
            &reach
                .for_plan(&req.plan, req.execution_id.as_deref())
                .await?,
        );
        throttle_planned(&req, &lambda).await
    })
    .await
}

#[cfg(test)]
mod tests {
    //! Against mocked Lambda answers; the local account's behaviour is in the e2e tests.
    use super::*;
    use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
    use aws_sdk_lambda::operation::get_function_concurrency::GetFunctionConcurrencyOutput;
    use aws_sdk_lambda::operation::put_function_concurrency::PutFunctionConcurrencyOutput;
    use aws_sdk_lambda::operation::tag_resource::TagResourceOutput;
    use aws_sdk_lambda::types::FunctionConfiguration;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

    const ARN: &str = "arn:aws:lambda:us-east-1:111122223333:function:report-generator";

    fn request(dry_run: bool) -> ActionRequest {
        ActionRequest {
            plan: firebreak::fixtures::fixture_plan("lambda-backdoor-c2.json", dry_run).unwrap(),
            execution_id: Some("exec-1".into()),
        }
    }

    fn function(prior: Option<&'static str>) -> Rule {
        mock!(Client::get_function).then_output(move || {
            let mut out = GetFunctionOutput::builder()
                .configuration(FunctionConfiguration::builder().function_arn(ARN).build());
            if let Some(p) = prior {
                out = out.tags(PRIOR_TAG, p);
            }
            out.build()
        })
    }

    fn concurrency(n: Option<i32>) -> Rule {
        mock!(Client::get_function_concurrency).then_output(move || {
            GetFunctionConcurrencyOutput::builder()
                .set_reserved_concurrent_executions(n)
                .build()
        })
    }

    #[tokio::test]
    async fn records_the_prior_setting_then_throttles_to_zero() {
        let tag = mock!(Client::tag_resource)
            .match_requests(|r| {
                r.resource() == Some(ARN)
                    && r.tags().and_then(|t| t.get(PRIOR_TAG)).map(String::as_str) == Some("5")
            })
            .then_output(|| TagResourceOutput::builder().build());
        let put = mock!(Client::put_function_concurrency)
            .match_requests(|r| r.reserved_concurrent_executions() == Some(0))
            .then_output(|| PutFunctionConcurrencyOutput::builder().build());
        let rules = [function(None), concurrency(Some(5)), tag, put];
        let client = mock_client!(
            aws_sdk_lambda,
            RuleMode::MatchAny,
            &rules.iter().collect::<Vec<_>>()
        );
        let out = throttle_planned(&request(false), &client).await.unwrap();
        let o = &out.outcomes[0];
        assert_eq!(o.status, OutcomeStatus::Done, "{o:?}");
        assert_eq!(
            (o.changes[1].before.as_str(), o.changes[1].after.as_str()),
            ("5", "0")
        );
        assert_eq!((rules[2].num_calls(), rules[3].num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_throttled_function_is_already_done_and_its_record_kept() {
        let tag = mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build());
        let put = mock!(Client::put_function_concurrency)
            .then_output(|| PutFunctionConcurrencyOutput::builder().build());
        let rules = [function(Some("none")), concurrency(Some(0)), tag, put];
        let client = mock_client!(
            aws_sdk_lambda,
            RuleMode::MatchAny,
            &rules.iter().collect::<Vec<_>>()
        );
        let out = throttle_planned(&request(false), &client).await.unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::AlreadyDone);
        assert!(out.outcomes[0].changes.is_empty());
        assert_eq!((rules[2].num_calls(), rules[3].num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_changes_nothing() {
        let tag = mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build());
        let put = mock!(Client::put_function_concurrency)
            .then_output(|| PutFunctionConcurrencyOutput::builder().build());
        let rules = [function(None), concurrency(None), tag, put];
        let client = mock_client!(
            aws_sdk_lambda,
            RuleMode::MatchAny,
            &rules.iter().collect::<Vec<_>>()
        );
        let out = throttle_planned(&request(true), &client).await.unwrap();
        assert_eq!(out.outcomes[0].status, OutcomeStatus::DryRun);
        assert!(out.outcomes[0].summary.contains("from none to 0"));
        assert_eq!((rules[2].num_calls(), rules[3].num_calls()), (0, 0));
    }
}
