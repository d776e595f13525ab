//! `firebreak approve EXECUTION` and `firebreak deny EXECUTION --reason …`: answer a
//! response's approval gate. The gate's task token is read from the execution's history
//! (the `TaskScheduled` event of the `.waitForTaskToken` task), never from a message; who
//! decides is the caller STS names. IAM decides who may answer at all
//! (`states:SendTaskSuccess`/`SendTaskFailure`); CloudTrail keeps the caller of each.

use std::process::ExitCode;

use clap::Args;
use firebreak::approval::{Approval, Denial, APPROVED, DENIED_ERROR};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::{self, Aws, AwsError};
use crate::exit::{AWS, INPUT, OK, UNEXPECTED};

#[derive(Args)]
pub struct ApproveOptions {
    /// The response execution's ARN (the approval message names it).
    pub execution: String,
    /// Only the gate of this finding (an execution of a batch may wait on several).
    #[arg(long, value_name = "FINDING_ID")]
    pub finding: Option<String>,
}

#[derive(Args)]
pub struct DenyOptions {
    /// The response execution's ARN (the approval message names it).
    pub execution: String,
    /// Why: it goes into the finding's note, the messages and the audit record.
    #[arg(long)]
    pub reason: String,
    /// Only the gate of this finding.
    #[arg(long, value_name = "FINDING_ID")]
    pub finding: Option<String>,
}

/// One gate the execution waits on (or waited on: the history keeps closed ones too).
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub token: String,
    pub finding_id: String,
    pub actions: Vec<String>,
    pub because: String,
}

/// The gates in a `TaskScheduled` event's parameters: the approval task's payload is
/// `{approvalRequest: {plan, executionId, token}}`; anything else is not a gate.
pub fn gate_of(parameters: &str) -> Option<Gate> {
    let v: Value = serde_json::from_str(parameters).ok()?;
    let ask = &v["Payload"]["approvalRequest"];
    let token = ask["token"].as_str()?.to_owned();
    let plan = &ask["plan"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(Gate {
        token,
        finding_id: plan["finding"]["securityHub"]["Id"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        actions: strings(&plan["approval"]["actions"]),
        because: plan["approval"]["because"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    })
}

/// A Step Functions execution ARN, checked before any call.
pub fn check_execution(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 8
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "states"
        && parts[5] == "execution"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[6].is_empty()
        && !parts[7].is_empty();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "execution: {arn:?} is not a Step Functions execution ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)"
        ))
    }
}

/// A reason is a sentence: printable, 1 to 512 characters.
pub fn check_reason(reason: &str) -> Result<String, String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err("--reason: say why (it goes into the finding's note)".into());
    }
    if r.chars().count() > 512 || r.chars().any(char::is_control) {
        return Err("--reason: at most 512 printable characters".into());
    }
    Ok(r.to_owned())
}

enum Answer {
    Approve,
    Deny(String),
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("firebreak: {message}");
    ExitCode::from(code)
}

pub fn run_approve(o: ApproveOptions) -> ExitCode {
    crate::block_on(answer(o.execution, o.finding, Answer::Approve))
}

pub fn run_deny(o: DenyOptions) -> ExitCode {
    match check_reason(&o.reason) {
        Ok(reason) => crate::block_on(answer(o.execution, o.finding, Answer::Deny(reason))),
        Err(e) => fail(INPUT, &e),
    }
}

async fn answer(execution: String, finding: Option<String>, answer: Answer) -> ExitCode {
    if let Err(e) = check_execution(&execution) {
        return fail(INPUT, &e);
    }
    if let Some(f) = &finding {
        if let Err(e) = firebreak::ids::FindingId::parse(f) {
            return fail(INPUT, &format!("--finding: {e}"));
        }
    }
    let aws = match aws::connect().await {
        Ok(a) => a,
        Err(e) => return fail(AWS, &e.0),
    };
    match decide(&aws, &execution, finding.as_deref(), &answer).await {
        Ok(0) => fail(
            UNEXPECTED,
            &format!("{execution} waits on no approval (decided, timed out, or none asked)"),
        ),
        Ok(_) => ExitCode::from(OK),
        Err(e) => fail(AWS, &e.0),
    }
}

/// Answers every open gate of the execution (or the one finding's); how many it answered.
async fn decide(
    aws: &Aws,
    execution: &str,
    finding: Option<&str>,
    answer: &Answer,
) -> Result<usize, AwsError> {
    let status = aws::describe_execution(aws, execution).await?.status;
    if status != "RUNNING" {
        return Ok(0);
    }
    let by = aws::caller_arn(aws).await?;
    let at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let gates = aws::scheduled_parameters(aws, execution).await?;
    let mut answered = 0;
    for gate in gates.iter().filter_map(|p| gate_of(p)) {
        if finding.is_some_and(|f| f != gate.finding_id) {
            continue;
        }
        let sent = match answer {
            Answer::Approve => {
                let output = Approval {
                    decision: APPROVED.into(),
                    by: by.clone(),
                    at: at.clone(),
                };
                let output = serde_json::to_string(&output).unwrap_or_default();
                aws::send_task_success(aws, &gate.token, &output).await?
            }
            Answer::Deny(reason) => {
                let cause = Denial {
                    by: by.clone(),
                    at: at.clone(),
                    reason: reason.clone(),
                };
                let cause = serde_json::to_string(&cause).unwrap_or_default();
                aws::send_task_failure(aws, &gate.token, DENIED_ERROR, &cause).await?
            }
        };
        // A gate of the history that is closed already (answered, timed out, retried).
        if !sent {
            continue;
        }
        answered += 1;
        let verb = match answer {
            Answer::Approve => "Approved",
            Answer::Deny(_) => "Denied",
        };
        println!("{verb} finding {} as {by}", gate.finding_id);
        if !gate.because.is_empty() {
            println!("  asked because {}", gate.because);
        }
        for a in &gate.actions {
            match answer {
                Answer::Approve => println!("  runs now: {a}"),
                Answer::Deny(_) => println!("  will not run: {a}"),
            }
        }
    }
    if answered > 0 {
        println!("The response goes on: firebreak report {execution} -o report.html");
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_gate_is_read_from_the_approval_tasks_parameters_only() {
        let p = json!({
            "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:notify",
            "Payload": {"approvalRequest": {"token": "T1", "executionId": "x",
                "plan": {"finding": {"securityHub": {"Id": "arn:aws:guardduty:f1"}},
                         "approval": {"actions": ["isolate-instance i-1"], "because": "policy rule prod"}}}}
        });
        let g = gate_of(&p.to_string()).unwrap();
        assert_eq!(g.token, "T1");
        assert_eq!(g.finding_id, "arn:aws:guardduty:f1");
        assert_eq!(g.actions, ["isolate-instance i-1"]);
        let other = json!({"FunctionName": "f", "Payload": {"plan": {}, "executionId": "x"}});
        assert_eq!(gate_of(&other.to_string()), None);
        assert_eq!(gate_of("not json"), None);
    }

    #[test]
    fn a_bad_execution_arn_or_reason_is_refused_before_any_call() {
        assert!(check_execution(
            "arn:aws:states:us-east-1:123456789012:execution:firebreak-response:run-1"
        )
        .is_ok());
        for bad in [
            "run-1",
            "arn:aws:states:us-east-1:123456789012:stateMachine:firebreak-response",
            "arn:aws:states:us-east-1:12345:execution:m:n",
        ] {
            assert!(check_execution(bad).is_err(), "{bad}");
        }
        assert!(check_reason("  ").is_err());
        assert!(check_reason("a\u{7}b").is_err());
        assert_eq!(check_reason(" change freeze ").unwrap(), "change freeze");
    }
}
