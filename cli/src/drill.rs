//! `firebreak drill` and `firebreak report`: rehearse a response on a deployed suite,
//! follow it live, say what it came to, and write the report page.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::{self, Aws, AwsError};
use crate::exit::{
    AWS as EXIT_AWS, INPUT as EXIT_INPUT, OK as EXIT_OK, UNEXPECTED as EXIT_UNEXPECTED,
};
use crate::history::{self, Status, Summary};
use crate::outcome;
use crate::report::{self, FindingState};
use firebreak::audit::AuditRecord;
use firebreak::resolution::Resolution;

fn parse_resolution(word: &str) -> Result<Resolution, String> {
    Resolution::ALL
        .into_iter()
        .find(|r| r.as_str() == word)
        .ok_or_else(|| {
            format!(
                "expected one of {}",
                Resolution::ALL.map(Resolution::as_str).join(", ")
            )
        })
}

/// `firebreak drill`'s options, as clap reads them.
#[derive(clap::Args)]
pub struct DrillOptions {
    /// A GuardDuty or Security Hub event, a bare finding, or a drill input.
    #[arg(required_unless_present = "sample", conflicts_with = "sample")]
    pub file: Option<PathBuf>,
    /// A bundled sample instead of a file (`firebreak samples` lists them).
    #[arg(long)]
    pub sample: Option<String>,
    /// Plan and check permissions (EC2 DryRun), change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only this playbook's actions (ec2-compromise, credential-compromise,
    /// malicious-remote-ip; repeat for several): the drill input's `playbooks` filter, which
    /// only narrows what triage plans. Actions left out keep the finding from RESOLVED.
    #[arg(long, value_parser = ["ec2-compromise", "credential-compromise", "malicious-remote-ip"])]
    pub playbook: Vec<String>,
    /// Exercise the approval gate: the response waits for `firebreak approve EXECUTION`
    /// (or deny, or the policy's timeout) before anything runs, dry run or not.
    #[arg(long)]
    pub require_approval: bool,
    /// Put the drill on EventBridge (a `firebreak.drill` event, which the response's rule
    /// matches) instead of StartExecution; its dryRun and playbooks travel with it.
    #[arg(long)]
    pub via_eventbridge: bool,
    /// The state machine to start, instead of finding `*-response` by name.
    #[arg(long, value_name = "ARN")]
    pub state_machine: Option<String>,
    /// Exit 0 only if the drill ends this way: contained, partly-contained, not-contained,
    /// nothing-to-do, refused, failed or dry-run.
    #[arg(long, value_parser = parse_resolution)]
    pub expect: Option<Resolution>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also write the drill report (one HTML file).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Where the audit records are.
    #[arg(long, default_value = firebreak::names::AUDIT_LOG_GROUP)]
    pub audit_log_group: String,
}

/// Reads and checks the input (refusing what triage would refuse, before any AWS call),
/// then runs the drill.
pub fn run(options: DrillOptions) -> ExitCode {
    let (text, source) = match (&options.file, &options.sample) {
        (_, Some(name)) => match crate::samples::find(name) {
            Some(s) => (s.text.as_bytes().to_vec(), format!("sample {name}")),
            None => {
                return fail(
                    EXIT_INPUT,
                    &format!("no bundled sample {name:?}; `firebreak samples` lists them"),
                )
            }
        },
        (Some(path), None) => match crate::read(path, firebreak::finding::MAX_INPUT_BYTES) {
            Ok(b) => (b, path.display().to_string()),
            Err(e) => return fail(EXIT_INPUT, &e),
        },
        (None, None) => return fail(EXIT_INPUT, "give a FILE or --sample NAME"),
    };
    if let Err(e) = firebreak::finding::parse_input_bytes(&text) {
        return fail(EXIT_INPUT, &format!("{source}: {e}"));
    }
    let input: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => return fail(EXIT_INPUT, &format!("{source}: {e}")),
    };
    if let Some(arn) = &options.state_machine {
        if firebreak::ids::Arn::parse(arn).is_err() {
            return fail(
                EXIT_INPUT,
                &format!("--state-machine {arn:?} is not an ARN"),
            );
        }
    }
    crate::block_on(run_drill(input, source, options))
}

/// The drill input with the sample's account id and region replaced by `account` and
/// `region` everywhere they appear (its ARNs included), so the sample is a finding of that
/// account. Unchanged when the sample cannot be read or either value is empty.
pub fn place_in(input: &Value, account: &str, region: &str) -> Value {
    let Ok(parsed) = firebreak::finding::parse_input(input) else {
        return input.clone();
    };
    let Some(f) = parsed.findings.first() else {
        return input.clone();
    };
    if account.is_empty() || region.is_empty() {
        return input.clone();
    }
    let text = input
        .to_string()
        .replace(f.account_id.as_str(), account)
        .replace(f.region.as_str(), region);
    serde_json::from_str(&text).unwrap_or_else(|_| input.clone())
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("firebreak: {message}");
    ExitCode::from(code)
}

/// The drill input the response takes (`{"event"|"finding", "dryRun", "reason",
/// "playbooks", "requireApproval"}`) from a finding, an event or a drill input, as the
/// library reads it. The options only add restraint: `--dry-run` sets dryRun,
/// `--playbook` narrows (a file's own filter stays), `--require-approval` adds a wait.
pub fn drill_input(
    doc: &Value,
    dry_run: bool,
    playbooks: &[String],
    require_approval: bool,
    source: &str,
) -> Result<Value, firebreak::error::InputError> {
    let parsed = firebreak::finding::parse_input(doc)?;
    let reason = format!("firebreak drill of {source}");
    let mut d = if parsed.drill {
        doc.clone()
    } else if parsed.kind.is_event() {
        json!({"event": doc})
    } else {
        json!({"finding": doc})
    };
    if let Some(o) = d.as_object_mut() {
        if dry_run {
            o.insert("dryRun".into(), json!(true));
        }
        o.entry("reason").or_insert(json!(reason));
        if !playbooks.is_empty() {
            o.entry("playbooks").or_insert(json!(playbooks));
        }
        if require_approval {
            o.insert("requireApproval".into(), json!(true));
        }
    }
    Ok(d)
}

/// The EventBridge event that carries a drill input to the response's rule.
pub fn drill_event(input: &Value) -> Value {
    json!({
        "source": firebreak::finding::DRILL_SOURCE,
        "detail-type": firebreak::finding::DRILL_DETAIL_TYPE,
        "resources": [],
        "detail": input,
    })
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn execution_name() -> String {
    let t = OffsetDateTime::now_utc();
    format!(
        "drill-{:04}{:02}{:02}T{:02}{:02}{:02}-{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Prints each state as it is entered and left while the execution runs; on a terminal a
/// status line shows the time and the current state.
async fn follow(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    let tty = std::io::stderr().is_terminal();
    let mut err = std::io::stderr();
    let spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut printed = 0usize;
    let mut entered: Vec<(String, i64)> = Vec::new();
    let started = std::time::Instant::now();
    for tick in 0usize.. {
        let exec = aws::describe_execution(aws, arn).await?;
        let (events, _) = aws::history(aws, arn).await?;
        if tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        for e in &events[printed.min(events.len())..] {
            let kind = e.kind.as_str();
            if let (true, Some(name)) = (kind.ends_with("StateEntered"), &e.name) {
                entered.push((name.clone(), e.at_ms));
                let _ = writeln!(err, "  → {name}");
            } else if let (true, Some(name)) = (kind.ends_with("StateExited"), &e.name) {
                let at = entered
                    .iter()
                    .rposition(|(n, _)| n == name)
                    .map(|i| entered.remove(i).1)
                    .unwrap_or(e.at_ms);
                let _ = writeln!(err, "  ✓ {name:<22} {:>7} ms", e.at_ms - at);
            } else if (kind.ends_with("Failed") || kind.ends_with("TimedOut")) && e.error.is_some()
            {
                let _ = writeln!(
                    err,
                    "  ✗ {kind}: {} {}",
                    e.error.as_deref().unwrap_or(""),
                    e.cause
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(160)
                        .collect::<String>()
                );
            }
        }
        printed = events.len();
        if exec.status != "RUNNING" {
            return Ok(());
        }
        if tty {
            let current = entered.last().map(|e| e.0.as_str()).unwrap_or("starting");
            let _ = write!(
                err,
                "{} {:5.1} s · {current}",
                spinner[tick % spinner.len()],
                started.elapsed().as_secs_f64()
            );
            let _ = err.flush();
        }
        if started.elapsed() > Duration::from_secs(900) {
            return Err(AwsError(format!(
                "{arn} still running after 15 minutes; it goes on without us"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Everything the outcome and the report say about one execution.
pub struct Gathered {
    pub machine_name: String,
    pub definition: Option<crate::asl::Scope>,
    pub status: String,
    pub started: String,
    pub summary: Summary,
    pub plans: Vec<firebreak::plan::Plan>,
    pub outcomes: Vec<firebreak::outcome::ActionOutcome>,
    pub findings: Vec<FindingState>,
    pub audit: Vec<AuditRecord>,
    pub resolution: Resolution,
}

pub async fn gather(aws: &Aws, arn: &str, audit_group: &str) -> Result<Gathered, AwsError> {
    let exec = aws::describe_execution(aws, arn).await?;
    let machine = aws::describe_machine(aws, &exec.machine_arn).await?;
    let (events, outputs) = aws::history(aws, arn).await?;
    let summary = history::summarise(&events);
    let mut docs: Vec<Value> = exec
        .output
        .iter()
        .filter_map(|o| serde_json::from_str(o).ok())
        .collect();
    docs.extend(
        outputs
            .iter()
            .filter_map(|o| serde_json::from_str::<Value>(o).ok()),
    );
    let (plans, outcomes) = outcome::collect(&docs);
    let mut findings = Vec::new();
    for p in &plans {
        findings.push(aws::finding_state(aws, p.finding.security_hub.id.as_str()).await?);
    }
    let failed = exec.status != "SUCCEEDED" && exec.status != "RUNNING";
    let started_ms = exec.started.to_millis().unwrap_or(0);
    let audit = match aws::audit_records(aws, audit_group, arn, started_ms).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("firebreak: warning: {e}");
            Vec::new()
        }
    };
    let resolution = outcome::verdict(failed, &audit);
    let (definition, _) = crate::asl::parse(&machine.definition);
    let started = OffsetDateTime::from_unix_timestamp(exec.started.secs())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    Ok(Gathered {
        machine_name: machine.name,
        definition,
        status: exec.status,
        started,
        summary,
        plans,
        outcomes,
        findings,
        audit,
        resolution,
    })
}

pub fn write_report(g: &Gathered, arn: &str, path: &Path) -> Result<(), String> {
    let html = report::render(&report::Report {
        machine_name: &g.machine_name,
        execution_arn: arn,
        execution_status: &g.status,
        started: &g.started,
        definition: g.definition.as_ref(),
        summary: &g.summary,
        resolution: g.resolution,
        plans: &g.plans,
        outcomes: &g.outcomes,
        findings: &g.findings,
        generated: &now(),
    });
    std::fs::write(path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn print_outcome(g: &Gathered, arn: &str, expect: Option<Resolution>, report: Option<&Path>) {
    let expected = expect
        .map(|e| format!(" (expected {})", e.as_str()))
        .unwrap_or_default();
    println!("Outcome    {}{expected}", g.resolution.as_str());
    println!(
        "Execution  {arn}\n           {} in {:.1} s",
        g.status,
        g.summary.duration_ms as f64 / 1000.0
    );
    for (i, p) in g.plans.iter().enumerate() {
        let f = &p.finding;
        println!(
            "\nFinding {}  {} ({} {})\n           {}",
            i + 1,
            f.finding_type.name,
            f.severity.band,
            f.severity.score,
            f.security_hub.id
        );
        for o in g.outcomes.iter().filter(|o| {
            p.actions.iter().any(|a| a.kind() == o.action)
                || o.action == firebreak::policy::ActionKind::MarkResolved
        }) {
            println!(
                "  {:<13} {:<21} {}",
                o.status.as_str(),
                o.action.name(),
                o.summary
            );
        }
        for s in &p.skipped {
            println!(
                "  {:<13} {:<21} {}",
                "skipped",
                s.action.map(|a| a.name()).unwrap_or("the finding"),
                s.detail
            );
        }
        if let Some(state) = g
            .findings
            .iter()
            .find(|s| s.id == f.security_hub.id.as_str())
        {
            println!(
                "  workflow   {}",
                state.workflow.as_deref().unwrap_or("unknown")
            );
            println!("  note       {}", state.note.as_deref().unwrap_or("(none)"));
        }
    }
    let actions = g
        .audit
        .iter()
        .filter(|r| matches!(r, AuditRecord::Action(_)))
        .count();
    let executions: Vec<_> = g
        .audit
        .iter()
        .filter_map(|r| match r {
            AuditRecord::Execution(e) => Some(e),
            _ => None,
        })
        .collect();
    println!(
        "\nAudit      {actions} action records, {} execution records",
        executions.len()
    );
    for e in executions {
        println!(
            "           {} {}: actions taken {}, failed {}",
            e.header.finding_id, e.resolution, e.actions_taken, e.actions_failed
        );
    }
    if let Some(path) = report {
        println!("Report     {}", path.display());
    }
}

pub async fn run_drill(input: Value, source: String, args: DrillOptions) -> ExitCode {
    // What triage will read: the same checks before any AWS call.
    let input = match drill_input(
        &input,
        args.dry_run,
        &args.playbook,
        args.require_approval,
        &source,
    ) {
        Ok(i) => i,
        Err(e) => return fail(EXIT_INPUT, &format!("{source}: {e}")),
    };
    let dry_run = match firebreak::finding::parse_input(&input) {
        Ok(parsed) => parsed.dry_run,
        Err(e) => return fail(EXIT_INPUT, &format!("{source}: {e}")),
    };
    let aws = match aws::connect().await {
        Ok(a) => a,
        Err(e) => return fail(EXIT_AWS, &e.0),
    };
    let machine = match &args.state_machine {
        Some(arn) => arn.clone(),
        None => match aws::find_machine(&aws, firebreak::names::RESPONSE_MACHINE).await {
            Ok(m) => m,
            Err(e) => return fail(EXIT_AWS, &e.0),
        },
    };
    // Fails at once, with the reason, when the machine does not exist.
    if let Err(e) = aws::describe_machine(&aws, &machine).await {
        return fail(EXIT_AWS, &e.0);
    }
    // A bundled sample names a placeholder account: it is rehearsed in the machine's own
    // account and region (Firebreak acts nowhere else). A finding from a file is sent as
    // it is: its account is the finding's truth.
    let input = if args.sample.is_some() {
        match firebreak::ids::Arn::parse(&machine) {
            Ok(arn) => place_in(&input, arn.account(), arn.region()),
            Err(_) => input,
        }
    } else {
        input
    };
    let what = if dry_run {
        "a dry-run drill"
    } else {
        "a drill"
    };
    let started = if args.via_eventbridge {
        eprintln!("Putting {what} of {source} on EventBridge; following the execution it starts on {machine}");
        aws::put_and_wait(&aws, &machine, &drill_event(&input)).await
    } else {
        eprintln!("Starting {what} of {source} on {machine}");
        aws::start(&aws, &machine, &input, &execution_name()).await
    };
    let arn = match started {
        Ok(a) => a,
        Err(e) => return fail(EXIT_AWS, &e.0),
    };
    eprintln!("execution {arn}");
    if args.require_approval {
        eprintln!("it waits for approval: firebreak approve {arn} (or deny {arn} --reason ...)");
    }
    if let Err(e) = follow(&aws, &arn).await {
        return fail(EXIT_AWS, &e.0);
    }
    let g = match gather(&aws, &arn, &args.audit_log_group).await {
        Ok(g) => g,
        Err(e) => return fail(EXIT_AWS, &e.0),
    };
    if let Some(path) = &args.report {
        if let Err(e) = write_report(&g, &arn, path) {
            return fail(EXIT_AWS, &e);
        }
    }
    let met = match args.expect {
        Some(e) => e == g.resolution,
        None => g.status == "SUCCEEDED",
    };
    if args.json {
        let out = json!({
            "executionArn": arn,
            "stateMachine": g.machine_name,
            "status": g.status,
            "resolution": g.resolution,
            "expected": args.expect,
            "expectationMet": met,
            "dryRun": dry_run,
            "durationMs": g.summary.duration_ms,
            "states": g.summary.states,
            "plannedActions": outcome::planned_actions(&g.plans).iter().map(|(a, t)| json!({"action": a, "target": t})).collect::<Vec<_>>(),
            "plans": g.plans,
            "outcomes": g.outcomes,
            "findings": g.findings,
            "auditRecords": g.audit,
            "report": args.report,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_outcome(&g, &arn, args.expect, args.report.as_deref());
    }
    if met {
        ExitCode::from(EXIT_OK)
    } else {
        if let Some(e) = args.expect {
            eprintln!(
                "firebreak: expected {}, the drill ended {}",
                e.as_str(),
                g.resolution.as_str()
            );
        }
        ExitCode::from(EXIT_UNEXPECTED)
    }
}

pub async fn run_report(arn: &str, out: &Path) -> ExitCode {
    if firebreak::ids::Arn::parse(arn).is_err() {
        return fail(EXIT_INPUT, &format!("{arn:?} is not an execution ARN"));
    }
    let aws = match aws::connect().await {
        Ok(a) => a,
        Err(e) => return fail(EXIT_AWS, &e.0),
    };
    let g = match gather(&aws, arn, firebreak::names::AUDIT_LOG_GROUP).await {
        Ok(g) => g,
        Err(e) => return fail(EXIT_AWS, &e.0),
    };
    if let Err(e) = write_report(&g, arn, out) {
        return fail(EXIT_AWS, &e);
    }
    let reached = g
        .definition
        .as_ref()
        .map(|d| {
            d.all_states()
                .iter()
                .filter(|s| g.summary.status(&s.name) != Status::NotReached)
                .count()
        })
        .unwrap_or(0);
    println!(
        "{}: {} ({}), {} states reached; written to {}",
        g.machine_name,
        g.status,
        g.resolution.as_str(),
        reached,
        out.display()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundled_sample_is_placed_in_the_machines_account_and_region() {
        let sample = crate::samples::find("ec2-network-backdoor").unwrap();
        let doc: Value = serde_json::from_str(sample.text).unwrap();
        let input = drill_input(&doc, true, &[], false, "sample").unwrap();
        let placed = place_in(&input, "123456789012", "eu-west-1");
        let f = &firebreak::finding::parse_input(&placed).unwrap().findings[0];
        assert_eq!(f.account_id.as_str(), "123456789012");
        assert_eq!(f.region.as_str(), "eu-west-1");
        assert!(!placed.to_string().contains("111122223333"));
        assert_eq!(
            placed["dryRun"],
            json!(true),
            "the drill's restraint is kept"
        );
    }

    #[test]
    fn drill_inputs_from_each_kind_of_file() {
        let fixture = |name: &str| -> Value {
            let path = format!(
                "{}/../tests/fixtures/findings/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let event = fixture("ec2-network-backdoor.json");
        let input = drill_input(&event, true, &[], false, "f.json").unwrap();
        assert_eq!(input["dryRun"], true);
        assert_eq!(input["event"], event);
        assert!(input.get("playbooks").is_none());

        let finding = event["detail"].clone();
        let input =
            drill_input(&finding, false, &["ec2-compromise".into()], false, "f.json").unwrap();
        assert_eq!(input["finding"], finding);
        assert!(input.get("dryRun").is_none(), "no option, no override");
        assert_eq!(input["playbooks"], json!(["ec2-compromise"]));

        // A drill file's own dryRun and filter are kept: options only add restraint.
        let drill = json!({"event": event, "reason": "quarterly", "dryRun": true, "playbooks": ["malicious-remote-ip"]});
        let input = drill_input(&drill, false, &["ec2-compromise".into()], false, "f").unwrap();
        assert_eq!(input["reason"], "quarterly");
        assert_eq!(input["dryRun"], true);
        assert_eq!(input["playbooks"], json!(["malicious-remote-ip"]));

        let ev = drill_event(&input);
        assert_eq!(ev["source"], "firebreak.drill");
        assert_eq!(
            ev["detail"]["dryRun"], true,
            "the file's dryRun travels with the event"
        );
        assert_eq!(
            firebreak::finding::parse_input(&ev).unwrap().playbooks,
            Some(vec![firebreak::plan::Playbook::MaliciousRemoteIp])
        );

        // What the library refuses is refused here too, before any AWS call.
        assert!(drill_input(&json!({"hello": 1}), false, &[], false, "f").is_err());
    }
}
