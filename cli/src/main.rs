//! `firebreak`: see what Firebreak would do with a finding, and rehearse it, before
//! trusting it.
//!
//! - `firebreak plan FILE` prints the plan offline: no AWS call is made.
//! - `firebreak drill FILE | --sample NAME` runs a response on the deployed suite and says
//!   what it came to; `firebreak report EXECUTION_ARN -o FILE.html` draws it.
//! - `firebreak release INSTANCE | IP | FINDING` puts back what a response changed.
//! - `firebreak approve EXECUTION` / `deny EXECUTION --reason …` answer an approval gate.
//! - `firebreak samples` lists the bundled samples; `firebreak validate` checks policy,
//!   state machine and rule files offline.

mod approve;
mod asl;
mod aws;
mod drill;
mod exit;
mod history;
mod outcome;
mod release;
mod render;
mod report;
mod samples;
mod validate;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use firebreak::finding::parse_input_bytes;
use firebreak::outcome::TriageOutput;
use firebreak::plan::{plan, Enrichment};
use firebreak::policy::{Policy, MAX_POLICY_BYTES};

#[derive(Parser)]
#[command(
    name = "firebreak",
    version,
    about = "Firebreak: AWS incident-response runbooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the response plan for a finding, offline (no AWS calls).
    Plan {
        /// A GuardDuty or Security Hub event, a bare finding, or a drill input; `-` reads stdin.
        file: PathBuf,
        /// A policy document to plan with instead of the built-in one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Machine-readable output: the plans as triage returns them.
        #[arg(long)]
        json: bool,
        /// Plan as the deployment in this account would (with --region): a finding from
        /// another account or region is held, as triage holds it.
        #[arg(long, requires = "region")]
        account: Option<String>,
        /// The deployment's region (with --account).
        #[arg(long, requires = "account")]
        region: Option<String>,
        /// Whose accounts findings are in, as triage would read them from Organizations:
        /// a JSON array of {accountId, name, email, ouPath, tags, securityContact}.
        #[arg(long, value_name = "FILE")]
        accounts: Option<PathBuf>,
    },
    /// Rehearse a response on the deployed suite: start it, follow it, say what it came to.
    ///
    /// Uses the standard AWS configuration (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for
    /// the local account). Exit codes: 0 as expected, 1 not as expected (or the execution
    /// failed), 2 bad input, 4 AWS problem (no credentials, no such state machine).
    Drill(drill::DrillOptions),
    /// Put back what a response changed: an isolated instance (its groups, Auto Scaling
    /// group, load balancers), an IP's network-ACL blocks, or all of a finding's.
    ///
    /// Starts the release machine and follows it. Exit codes: 0 released (or nothing to
    /// release), 1 something was refused or failed, 2 bad input or a place Firebreak may
    /// not act in, 4 AWS problem.
    Release(release::ReleaseOptions),
    /// Let a response that waits for approval go on: its planned actions run.
    ///
    /// Reads the gate's task token from the execution's history and answers it as the
    /// caller STS names. Exit codes: 0 approved, 1 nothing waits, 2 bad input, 4 AWS
    /// problem (AccessDenied: your role may not answer approvals).
    Approve(approve::ApproveOptions),
    /// Refuse a response that waits for approval: nothing runs, the finding ends
    /// NOTIFIED with the reason. Exit codes as for approve.
    Deny(approve::DenyOptions),
    /// Write the report of an execution: its graph and path, times, plan, changes, note.
    Report {
        execution_arn: String,
        #[arg(short = 'o', long = "output", value_name = "FILE.html")]
        output: PathBuf,
    },
    /// List the bundled sample findings (for `firebreak drill --sample NAME`).
    Samples,
    /// Check policy files, state machines (*.asl.json) and rule files offline.
    ///
    /// A directory stands for its *.asl.json, rules/*.json and policies. Without
    /// arguments: ./statemachines when there is one, and the built-in policy.
    Validate { paths: Vec<PathBuf> },
}

/// Exit codes: the same meaning for every command (`exit.rs`).
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan {
            file,
            policy,
            json,
            account,
            region,
            accounts,
        } => run_plan(
            &file,
            policy.as_deref(),
            json,
            (account.as_deref(), region.as_deref()),
            accounts.as_deref(),
        ),
        Command::Drill(options) => drill::run(options),
        Command::Release(options) => release::run(options),
        Command::Approve(options) => approve::run_approve(options),
        Command::Deny(options) => approve::run_deny(options),
        Command::Report {
            execution_arn,
            output,
        } => block_on(drill::run_report(&execution_arn, &output)),
        Command::Samples => run_samples(),
        Command::Validate { paths } => run_validate(paths),
    }
}

pub(crate) fn block_on(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => fail(
            exit::INTERNAL,
            &format!("cannot start the async runtime: {e}"),
        ),
    }
}

fn run_samples() -> ExitCode {
    let Ok(policy) = Policy::built_in() else {
        return fail(exit::POLICY, "the built-in policy does not parse");
    };
    println!(
        "{:<36} {:<28} {:<46} {:<40} FROM",
        "NAME", "SHAPE", "FINDING", "OFFLINE PLAN (built-in policy)"
    );
    for s in samples::SAMPLES {
        let Ok(input) = parse_input_bytes(s.text.as_bytes()) else {
            continue;
        };
        for f in &input.findings {
            let p = plan(f, &policy, "built-in", Enrichment::Offline, input.dry_run);
            let actions: Vec<&str> = p
                .actions
                .iter()
                .map(|a| a.kind().name())
                .filter(|a| *a != "mark-resolved")
                .collect();
            let what = if actions.is_empty() {
                format!("nothing ({} skipped)", p.skipped.len())
            } else {
                actions.join(", ")
            };
            let kind = format!("{} ({})", f.finding_type.name, f.severity.band);
            let shape = serde_json::to_value(input.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            println!(
                "{:<36} {shape:<28} {:<46} {what:<40} {}",
                s.name, kind, s.origin
            );
        }
    }
    println!(
        "
Sources: Firebreak's fixtures, and public samples (see tests/fixtures/samples/SOURCE.txt)."
    );
    println!("Drill one: firebreak drill --sample NAME --dry-run");
    ExitCode::SUCCESS
}

fn run_validate(paths: Vec<PathBuf>) -> ExitCode {
    let mut files: Vec<PathBuf> = Vec::new();
    let defaults = paths.is_empty();
    if defaults {
        let here = PathBuf::from("statemachines");
        if here.is_dir() {
            files.extend(validate::expand(&here));
        }
    }
    for p in &paths {
        if !p.exists() {
            return fail(
                exit::INPUT,
                &format!("{}: no such file or directory", p.display()),
            );
        }
        files.extend(validate::expand(p));
    }
    let machines = validate::machines_near(&files);
    let mut bad = 0;
    if defaults {
        match Policy::built_in() {
            Ok(_) => println!("ok       policy         (built-in)"),
            Err(e) => {
                bad += 1;
                println!("FAILED   policy         (built-in): {e}");
            }
        }
    }
    for f in &files {
        let c = validate::check_file(f, &machines);
        if c.problems.is_empty() {
            println!("ok       {:<14} {}", c.kind, f.display());
        } else {
            bad += 1;
            for p in &c.problems {
                println!("FAILED   {:<14} {}: {p}", c.kind, f.display());
            }
        }
    }
    if files.is_empty() && !defaults {
        return fail(exit::INPUT, "no files to check");
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "firebreak: {bad} of {} files have problems",
            files.len() + usize::from(defaults)
        );
        ExitCode::from(exit::UNEXPECTED)
    }
}

pub(crate) fn read(path: &std::path::Path, limit: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let taken = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut buf))
    };
    taken.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(buf)
}

fn run_plan(
    file: &std::path::Path,
    policy_file: Option<&std::path::Path>,
    json: bool,
    deployment: (Option<&str>, Option<&str>),
    accounts_file: Option<&std::path::Path>,
) -> ExitCode {
    let accounts = match accounts_file {
        None => Vec::new(),
        Some(path) => match read(path, MAX_POLICY_BYTES * 64).map(String::from_utf8) {
            Ok(Ok(t)) => match firebreak::account::parse_accounts_file(&t) {
                Ok(a) => a,
                Err(e) => return fail(exit::INPUT, &format!("{}: {e}", path.display())),
            },
            Ok(Err(_)) => return fail(exit::INPUT, &format!("{}: not UTF-8", path.display())),
            Err(e) => return fail(exit::INPUT, &e),
        },
    };
    let deployment = match deployment {
        (Some(a), Some(r)) => match (
            firebreak::ids::AccountId::parse(a),
            firebreak::ids::Region::parse(r),
        ) {
            (Ok(account_id), Ok(region)) => {
                Some(firebreak::plan::Deployment { account_id, region })
            }
            (Err(e), _) => return fail(exit::INPUT, &format!("--account: {e}")),
            (_, Err(e)) => return fail(exit::INPUT, &format!("--region: {e}")),
        },
        _ => None,
    };
    let (policy, source) = match policy_file {
        None => match Policy::built_in() {
            Ok(p) => (p, "built-in".to_owned()),
            Err(e) => return fail(exit::POLICY, &e.to_string()),
        },
        Some(path) => {
            // The file may be indented; the limit applies to the policy without whitespace.
            let text = match read(path, MAX_POLICY_BYTES * 8).map(String::from_utf8) {
                Ok(Ok(t)) => t,
                Ok(Err(_)) => return fail(exit::POLICY, &format!("{}: not UTF-8", path.display())),
                Err(e) => return fail(exit::INPUT, &e),
            };
            let source = path.display().to_string();
            match Policy::from_json(&text, &source) {
                Ok(p) => (p, source),
                Err(e) => return fail(exit::POLICY, &e.to_string()),
            }
        }
    };
    let bytes = match read(file, firebreak::finding::MAX_INPUT_BYTES) {
        Ok(b) => b,
        Err(e) => return fail(exit::INPUT, &e),
    };
    let input = match parse_input_bytes(&bytes) {
        Ok(i) => i,
        Err(e) => return fail(exit::INPUT, &format!("{}: {e}", file.display())),
    };
    let plans: Vec<_> = input
        .findings
        .iter()
        .map(|f| {
            let account = accounts
                .iter()
                .find(|a| a.account_id == f.account_id)
                .cloned();
            let mut p = firebreak::plan::plan_in(
                f,
                &policy,
                &source,
                Enrichment::Offline,
                account,
                input.dry_run,
            );
            if let Some(selected) = &input.playbooks {
                p.narrow_to(selected);
            }
            if let Some(why) = deployment
                .as_ref()
                .and_then(|d| d.refuses(f, &policy.enrolment))
            {
                p.hold_outside(&why);
            }
            p
        })
        .collect();
    if json {
        // Exactly what triage returns to the response machine, offline.
        let out = TriageOutput {
            execution_id: None,
            input_kind: input.kind,
            drill: input.drill,
            dry_run: input.dry_run,
            plans,
            refused: input.refused.clone(),
        };
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(exit::INTERNAL, &e.to_string()),
        }
    } else {
        print!("{}", render::input_header(&input));
        for (i, p) in plans.iter().enumerate() {
            if plans.len() > 1 {
                println!("\n── finding {} of {} ──", i + 1, plans.len());
            }
            print!("{}", render::plan(p));
        }
    }
    ExitCode::SUCCESS
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("firebreak: {message}");
    ExitCode::from(code)
}
