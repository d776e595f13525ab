//! `firebreak`: see what Firebreak would do with a finding before trusting it.
//!
//! `firebreak plan FILE [--policy FILE] [--json]` reads a finding or event (`-` for
//! stdin), and prints the plan offline: no AWS call is made.

mod render;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use firebreak::finding::parse_input_bytes;
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
    },
}

/// Exit codes: 0 plan printed, 2 input refused, 3 policy refused, 1 anything else.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan { file, policy, json } => run_plan(&file, policy.as_deref(), json),
    }
}

fn read(path: &std::path::Path, limit: usize) -> Result<Vec<u8>, String> {
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

fn run_plan(file: &std::path::Path, policy_file: Option<&std::path::Path>, json: bool) -> ExitCode {
    let (policy, source) = match policy_file {
        None => match Policy::built_in() {
            Ok(p) => (p, "built-in".to_owned()),
            Err(e) => return fail(3, &e.to_string()),
        },
        Some(path) => {
            let text = match read(path, MAX_POLICY_BYTES).map(String::from_utf8) {
                Ok(Ok(t)) => t,
                Ok(Err(_)) => return fail(3, &format!("{}: not UTF-8", path.display())),
                Err(e) => return fail(1, &e),
            };
            let source = path.display().to_string();
            match Policy::from_json(&text, &source) {
                Ok(p) => (p, source),
                Err(e) => return fail(3, &e.to_string()),
            }
        }
    };
    let bytes = match read(file, firebreak::finding::MAX_INPUT_BYTES) {
        Ok(b) => b,
        Err(e) => return fail(1, &e),
    };
    let input = match parse_input_bytes(&bytes) {
        Ok(i) => i,
        Err(e) => return fail(2, &format!("{}: {e}", file.display())),
    };
    let plans: Vec<_> = input
        .findings
        .iter()
        .map(|f| plan(f, &policy, &source, Enrichment::Offline, input.dry_run))
        .collect();
    if json {
        let out = serde_json::json!({
            "inputKind": input.kind,
            "drill": input.drill,
            "dryRun": input.dry_run,
            "plans": plans,
        });
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(1, &e.to_string()),
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
