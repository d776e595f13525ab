//! `firebreak release TARGET`: starts the release machine for an instance, an IP or a
//! finding, follows it and says what was put back. The machine checks the request again
//! (triage) and acts only on what Firebreak recorded; this only starts it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use firebreak::release::ReleaseOutcome;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::aws;
use crate::exit::{AWS, INPUT, OK, UNEXPECTED};

#[derive(Args)]
pub struct ReleaseOptions {
    /// An instance id (i-…), an IP address, a finding id (its ARN names its account and
    /// region), or role/NAME (lifts AWSRevokeOlderSessions): what to put back as it was
    /// before Firebreak contained it.
    pub target: String,
    /// The account the instance or IP is in (default: Firebreak's own).
    #[arg(long)]
    pub account: Option<String>,
    /// The region it is in (default: Firebreak's own).
    #[arg(long)]
    pub region: Option<String>,
    /// Say what would be put back; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The release machine's ARN (default: the deployed `*-release`).
    #[arg(long, value_name = "ARN")]
    pub state_machine: Option<String>,
    /// Print the execution's output as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The machine's input for a target as typed: an instance id, an IP, else a finding id.
/// Checked here as the machine will check it, so a typo costs no AWS call.
pub fn request(o: &ReleaseOptions) -> Result<Value, String> {
    let t = o.target.trim();
    let (key, value) = if t.starts_with("i-") {
        firebreak::ids::InstanceId::parse(t)?;
        ("instance", t)
    } else if let Some(role) = t.strip_prefix("role/") {
        firebreak::ids::IamName::parse(role)?;
        ("role", role)
    } else if firebreak::ids::parse_ip(t).is_ok() {
        ("ip", t)
    } else {
        firebreak::ids::FindingId::parse(t)?;
        ("finding", t)
    };
    let mut req = json!({ key: value });
    if let Some(a) = &o.account {
        firebreak::ids::AccountId::parse(a)?;
        req["account"] = json!(a);
    }
    if let Some(r) = &o.region {
        firebreak::ids::Region::parse(r)?;
        req["region"] = json!(r);
    }
    if o.dry_run {
        req["dryRun"] = json!(true);
    }
    Ok(req)
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("firebreak: {message}");
    ExitCode::from(code)
}

fn execution_name() -> String {
    let t = OffsetDateTime::now_utc();
    format!(
        "release-{:04}{:02}{:02}T{:02}{:02}{:02}-{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The lines an operator reads: one per outcome, one per change under it.
pub fn render(output: &Value) -> String {
    let mut out = String::new();
    let plan = &output["plan"];
    let place = format!(
        "account {} region {}",
        plan["accountId"].as_str().unwrap_or("?"),
        plan["region"].as_str().unwrap_or("?")
    );
    let outcomes: Vec<ReleaseOutcome> = ["instances", "blocks", "sessions", "notes"]
        .iter()
        .filter_map(|k| output[*k]["outcomes"].as_array())
        .flatten()
        .filter_map(|o| serde_json::from_value(o.clone()).ok())
        .collect();
    out.push_str(&format!(
        "Release in {place}{}:\n",
        if plan["dryRun"] == true {
            " (dry run)"
        } else {
            ""
        }
    ));
    if outcomes.is_empty() {
        out.push_str("  nothing of Firebreak's was found to release\n");
    }
    for o in &outcomes {
        out.push_str(&format!("  {:<13} {}\n", o.status.as_str(), o.summary));
        for c in &o.changes {
            out.push_str(&format!(
                "      {}: {}: {} → {}\n",
                c.resource, c.what, c.before, c.after
            ));
        }
    }
    if let Some(stream) = output["audit"]["logStream"].as_str() {
        out.push_str(&format!(
            "Audited in {} (stream {stream}).\n",
            firebreak::names::AUDIT_LOG_GROUP
        ));
    }
    out
}

pub fn run(o: ReleaseOptions) -> ExitCode {
    crate::block_on(release(o))
}

async fn release(o: ReleaseOptions) -> ExitCode {
    let input = match request(&o) {
        Ok(i) => i,
        Err(e) => return fail(INPUT, &e),
    };
    let aws = match aws::connect().await {
        Ok(a) => a,
        Err(e) => return fail(AWS, &e.0),
    };
    let machine = match &o.state_machine {
        Some(arn) => arn.clone(),
        None => match aws::find_machine(&aws, firebreak::names::RELEASE_MACHINE).await {
            Ok(m) => m,
            Err(e) => return fail(AWS, &e.0),
        },
    };
    let arn = match aws::start(&aws, &machine, &input, &execution_name()).await {
        Ok(a) => a,
        Err(e) => return fail(AWS, &e.0),
    };
    eprintln!("Started {arn}");
    let started = Instant::now();
    let exec = loop {
        let exec = match aws::describe_execution(&aws, &arn).await {
            Ok(e) => e,
            Err(e) => return fail(AWS, &e.0),
        };
        if exec.status != "RUNNING" {
            break exec;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return fail(
                UNEXPECTED,
                &format!("{arn} still running after 10 minutes; it goes on without us"),
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if exec.status != "SUCCEEDED" {
        let error = exec.error.unwrap_or_default();
        let cause = exec.cause.unwrap_or_default();
        // Refused before anything was read or changed: the request itself was wrong.
        let code = match error.as_str() {
            "InvalidInput" => INPUT,
            "AwsCallFailed" | "AwsTransientError" => AWS,
            _ => UNEXPECTED,
        };
        return fail(code, &format!("release {}: {error}: {cause}", exec.status));
    }
    let output: Value = exec
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or(Value::Null);
    if o.json {
        println!("{output}");
    } else {
        print!("{}", render(&output));
    }
    let refused = ["instances", "blocks", "sessions"].iter().any(|k| {
        output[*k]["outcomes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o["status"] == "refused"))
    });
    ExitCode::from(if refused { UNEXPECTED } else { OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(target: &str) -> ReleaseOptions {
        ReleaseOptions {
            target: target.into(),
            account: None,
            region: None,
            dry_run: false,
            state_machine: None,
            json: false,
        }
    }

    #[test]
    fn the_target_is_told_apart_and_checked_before_any_call() {
        assert_eq!(
            request(&opts("i-0a1b2c3d4e5f60718")).unwrap(),
            json!({"instance": "i-0a1b2c3d4e5f60718"})
        );
        assert_eq!(
            request(&opts("203.0.113.7")).unwrap(),
            json!({"ip": "203.0.113.7"})
        );
        let gd = "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f";
        assert_eq!(request(&opts(gd)).unwrap(), json!({"finding": gd}));
        assert_eq!(
            request(&opts("role/web-instance-role")).unwrap(),
            json!({"role": "web-instance-role"})
        );
        assert!(request(&opts("role/")).is_err());
        assert!(request(&opts("i-nothex")).is_err());
        let mut o = opts("203.0.113.7");
        o.account = Some("12".into());
        assert!(request(&o).unwrap_err().contains("account"));
        o.account = Some("111122223333".into());
        o.dry_run = true;
        assert_eq!(request(&o).unwrap()["dryRun"], true);
    }

    #[test]
    fn what_was_put_back_is_one_line_per_outcome_and_change() {
        let out = json!({
            "plan": {"accountId": "111122223333", "region": "us-east-1", "dryRun": false},
            "instances": {"outcomes": [{"release": "instance", "status": "done", "target": "i-1", "summary": "released i-1",
                "changes": [{"resource": "eni-1", "what": "security groups", "before": "sg-iso", "after": "sg-web"}]}]},
            "blocks": {"outcomes": []},
            "audit": {"logStream": "s1"}
        });
        let text = render(&out);
        assert!(text.contains("done          released i-1"), "{text}");
        assert!(
            text.contains("eni-1: security groups: sg-iso → sg-web"),
            "{text}"
        );
        assert!(text.contains("stream s1"), "{text}");
    }
}
