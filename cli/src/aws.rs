//! The AWS side of `firebreak drill` and `firebreak report`: the standard configuration
//! chain (profile, region, `AWS_ENDPOINT_URL`), so the same command drills the local
//! account and a real one. Thin functions over the SDK clients; the reading of what they
//! return is in `history`, `outcome` and `report`.

use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_cloudwatchlogs::Client as LogsClient;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client as EventsClient;
use aws_sdk_securityhub::types::{AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
use aws_sdk_securityhub::Client as HubClient;
use aws_sdk_sfn::Client as SfnClient;
use aws_sdk_sts::Client as StsClient;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;

use crate::history::Event;
use crate::report::FindingState;

/// What went wrong on the AWS side, in one line for a person.
#[derive(Debug)]
pub struct AwsError(pub String);

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn sdk<E: std::error::Error + 'static>(what: &str, e: E) -> AwsError {
    // The SDK's context chain is long; its last line is the reason.
    let full = format!("{}", DisplayErrorContext(&e));
    let reason = full.rsplit(": ").next().unwrap_or(&full).trim().to_owned();
    AwsError(format!("{what}: {reason}"))
}

pub struct Aws {
    pub sfn: SfnClient,
    pub events: EventsClient,
    pub hub: HubClient,
    pub logs: LogsClient,
    pub sts: StsClient,
    pub region: String,
}

/// The clients, after checking that there is a region and there are credentials: without
/// them every call would fail with a long chain of errors; this says it in one line.
pub async fn connect() -> Result<Aws, AwsError> {
    let conf = firebreak::aws::load_config().await;
    let region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
        AwsError("no AWS region: set AWS_REGION, or a region in your AWS profile".into())
    })?;
    let provider = conf.credentials_provider().ok_or_else(|| {
        AwsError(
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
        )
    })?;
    if let Err(e) = provider.provide_credentials().await {
        return Err(AwsError(format!(
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({})",
            DisplayErrorContext(&e).to_string().rsplit(": ").next().unwrap_or("")
        )));
    }
    Ok(Aws {
        sfn: SfnClient::new(&conf),
        events: EventsClient::new(&conf),
        hub: HubClient::new(&conf),
        logs: LogsClient::new(&conf),
        sts: StsClient::new(&conf),
        region,
    })
}

/// The deployed machine called `name` or `<stack>-name`; exactly one must match.
pub async fn find_machine(aws: &Aws, name: &str) -> Result<String, AwsError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .sfn
            .list_state_machines()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk("states:ListStateMachines", e))?;
        for m in page.state_machines() {
            if m.name() == name || m.name().ends_with(&format!("-{name}")) {
                found.push((m.name().to_owned(), m.state_machine_arn().to_owned()));
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    match found.len() {
        1 => Ok(found.remove(0).1),
        0 => Err(AwsError(format!(
            "no state machine named {name} or *-{name} in {} (is Firebreak deployed there? or pass --state-machine ARN)",
            aws.region
        ))),
        _ => Err(AwsError(format!(
            "{} state machines match {name}: {}; pass --state-machine ARN",
            found.len(),
            found.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub struct Machine {
    pub name: String,
    pub definition: String,
}

pub async fn describe_machine(aws: &Aws, arn: &str) -> Result<Machine, AwsError> {
    let out = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
        .map_err(|e| sdk(&format!("state machine {arn}"), e))?;
    Ok(Machine {
        name: out.name,
        definition: out.definition,
    })
}

pub async fn start(
    aws: &Aws,
    machine: &str,
    input: &Value,
    name: &str,
) -> Result<String, AwsError> {
    let out = aws
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| sdk("states:StartExecution", e))?;
    Ok(out.execution_arn)
}

/// Puts the event on the default bus, then waits for the execution it starts.
pub async fn put_and_wait(aws: &Aws, machine: &str, event: &Value) -> Result<String, AwsError> {
    let since = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let before: Vec<String> = executions(aws, machine)
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    let s = |k: &str| {
        event
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let resources: Vec<String> = event
        .get("resources")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let entry = PutEventsRequestEntry::builder()
        .source(s("source"))
        .detail_type(s("detail-type"))
        .detail(
            event
                .get("detail")
                .map(Value::to_string)
                .unwrap_or_default(),
        )
        .set_resources(Some(resources))
        .build();
    let out = aws
        .events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| sdk("events:PutEvents", e))?;
    if out.failed_entry_count > 0 {
        let why = out
            .entries()
            .iter()
            .filter_map(|e| e.error_message())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AwsError(format!("EventBridge refused the event: {why}")));
    }
    for _ in 0..150 {
        for (arn, started) in executions(aws, machine).await? {
            if !before.contains(&arn) && started.secs() >= since.secs() - 1 {
                return Ok(arn);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(AwsError(
        "the event was put on EventBridge but started no execution within 30 s: is the rule enabled, and does its pattern match?".into(),
    ))
}

async fn executions(
    aws: &Aws,
    machine: &str,
) -> Result<Vec<(String, aws_smithy_types::DateTime)>, AwsError> {
    let out = aws
        .sfn
        .list_executions()
        .state_machine_arn(machine)
        .send()
        .await
        .map_err(|e| sdk("states:ListExecutions", e))?;
    Ok(out
        .executions()
        .iter()
        .map(|e| (e.execution_arn().to_owned(), *e.start_date()))
        .collect())
}

pub struct Execution {
    pub status: String,
    pub machine_arn: String,
    pub started: aws_smithy_types::DateTime,
    pub output: Option<String>,
    /// The Fail state's error and cause, for a failed execution.
    pub error: Option<String>,
    pub cause: Option<String>,
}

pub async fn describe_execution(aws: &Aws, arn: &str) -> Result<Execution, AwsError> {
    let out = aws
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| sdk(&format!("execution {arn}"), e))?;
    Ok(Execution {
        status: out.status.as_str().to_owned(),
        machine_arn: out.state_machine_arn,
        started: out.start_date,
        output: out.output,
        error: out.error,
        cause: out.cause,
    })
}

/// Who is calling, as STS says: the approver or denier the audit names.
pub async fn caller_arn(aws: &Aws) -> Result<String, AwsError> {
    let me = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| sdk("sts:GetCallerIdentity", e))?;
    me.arn()
        .map(str::to_owned)
        .ok_or_else(|| AwsError("sts:GetCallerIdentity: no ARN in the answer".into()))
}

/// The parameters of every `.waitForTaskToken` task the execution scheduled, oldest first.
pub async fn scheduled_parameters(aws: &Aws, arn: &str) -> Result<Vec<String>, AwsError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk("states:GetExecutionHistory", e))?;
        for e in page.events() {
            if let Some(d) = e.task_scheduled_event_details() {
                if d.resource().ends_with(".waitForTaskToken") {
                    out.push(d.parameters().to_owned());
                }
            }
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// A refusal in the service's words (`AccessDeniedException: …`), else the SDK's chain.
fn refused<E>(what: &str, e: aws_sdk_sfn::error::SdkError<E>) -> AwsError
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
{
    match e.as_service_error().and_then(|s| {
        s.code()
            .map(|c| (c.to_owned(), s.message().unwrap_or("").to_owned()))
    }) {
        Some((code, message)) => AwsError(format!("{what}: {code}: {message}")),
        None => sdk(what, e),
    }
}

/// `false`: the token's task is closed already (answered, timed out, or a retry's).
fn closed_token<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist")
    )
}

pub async fn send_task_success(aws: &Aws, token: &str, output: &str) -> Result<bool, AwsError> {
    match aws
        .sfn
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(closed_token) => Ok(false),
        Err(e) => Err(refused("states:SendTaskSuccess", e)),
    }
}

pub async fn send_task_failure(
    aws: &Aws,
    token: &str,
    error: &str,
    cause: &str,
) -> Result<bool, AwsError> {
    match aws
        .sfn
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(closed_token) => Ok(false),
        Err(e) => Err(refused("states:SendTaskFailure", e)),
    }
}

/// Every history event (with the outputs of the states, for the plans and outcomes).
pub async fn history(aws: &Aws, arn: &str) -> Result<(Vec<Event>, Vec<String>), AwsError> {
    let mut events = Vec::new();
    let mut outputs = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk("states:GetExecutionHistory", e))?;
        for e in page.events() {
            let kind = e.r#type().as_str().to_owned();
            let at_ms = e.timestamp().to_millis().unwrap_or(0);
            let name = e
                .state_entered_event_details()
                .map(|d| d.name().to_owned())
                .or_else(|| e.state_exited_event_details().map(|d| d.name().to_owned()));
            if let Some(out) = e.state_exited_event_details().and_then(|d| d.output()) {
                outputs.push(out.to_owned());
            }
            let (error, cause) = if let Some(d) = e.execution_failed_event_details() {
                (d.error().map(str::to_owned), d.cause().map(str::to_owned))
            } else if let Some(d) = e.task_failed_event_details() {
                (d.error().map(str::to_owned), d.cause().map(str::to_owned))
            } else if let Some(d) = e.lambda_function_failed_event_details() {
                (d.error().map(str::to_owned), d.cause().map(str::to_owned))
            } else {
                (None, None)
            };
            events.push(Event {
                kind,
                at_ms,
                name,
                error,
                cause,
            });
        }
        token = page.next_token;
        if token.is_none() {
            return Ok((events, outputs));
        }
    }
}

/// The finding as Security Hub shows it now: workflow status and note.
pub async fn finding_state(aws: &Aws, id: &str) -> Result<FindingState, AwsError> {
    let out = aws
        .hub
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .id(StringFilter::builder()
                    .value(id)
                    .comparison(StringFilterComparison::Equals)
                    .build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk("securityhub:GetFindings", e))?;
    let f = out.findings().first();
    Ok(FindingState {
        id: id.to_owned(),
        workflow: f
            .and_then(|f| f.workflow())
            .and_then(|w| w.status())
            .map(|s| s.as_str().to_owned()),
        note: f
            .and_then(|f| f.note())
            .and_then(|n| n.text())
            .map(str::to_owned),
    })
}

/// The audit records the execution wrote (`executionId` equal to its ARN).
pub async fn audit_records(
    aws: &Aws,
    group: &str,
    execution: &str,
    since_ms: i64,
) -> Result<Vec<firebreak::audit::AuditRecord>, AwsError> {
    let mut records = Vec::new();
    let mut token = None;
    loop {
        let page = match aws
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(since_ms - 60_000)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) => return Err(sdk(&format!("audit log group {group}"), e)),
        };
        for e in page.events() {
            // Read through the record's type: a line of another shape is not ours.
            let record = e
                .message()
                .map(serde_json::from_str::<firebreak::audit::AuditRecord>);
            if let Some(Ok(r)) = record {
                if r.execution_id() == execution {
                    records.push(r);
                }
            }
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(records);
        }
    }
}
