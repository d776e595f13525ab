//! `firebreak plan` as a user runs it: the real binary on the fixtures and the public samples.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn firebreak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        // No credentials, no region: an offline plan must not need them.
        .env("AWS_ACCESS_KEY_ID", "")
        .output()
        .expect("run firebreak")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures/findings")
        .join(name)
        .display()
        .to_string()
}

fn samples() -> PathBuf {
    let dir = std::env::var_os("FIREBREAK_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/fixtures/samples"));
    assert!(dir.is_dir(), "samples not found at {}", dir.display());
    dir
}

#[test]
fn prints_a_readable_plan() {
    let o = firebreak(&["plan", &fixture("ec2-network-backdoor.json")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("Input     EventBridge GuardDuty Finding event"),
        "{out}"
    );
    assert!(
        out.contains("Finding   Backdoor:EC2/C&CActivity.B  (HIGH 8.0)"),
        "{out}"
    );
    assert!(
        out.contains("Context   owner alice@example.com, team payments, environment production"),
        "{out}"
    );
    assert!(out.contains("1. isolate-instance       i-0a1b2c3d4e5f60718 (eni-0a1b2c3d4e5f60711, eni-0a1b2c3d4e5f60712)"), "{out}");
    assert!(out.contains("2. block-remote-ips       203.0.113.50 in the network ACLs of subnet-0a1b2c3d4e5f60721, subnet-0a1b2c3d4e5f60722"), "{out}");
    assert!(out.contains("3. mark-resolved"), "{out}");
    assert!(
        out.contains("Offline plan: EC2 and IAM lookups were skipped"),
        "{out}"
    );
}

#[test]
fn skips_are_listed_with_their_reasons() {
    let o = firebreak(&["plan", &fixture("ec2-port-probe.json")]);
    let (out, _) = text(&o);
    assert!(
        out.contains("block-remote-ips       allow-listed IP: 10.9.8.7 is in 10.0.0.0/8"),
        "{out}"
    );
    let o = firebreak(&["plan", &fixture("root-credential-usage.json")]);
    let (out, _) = text(&o);
    assert!(out.contains("Would do (0):\n  nothing"), "{out}");
    assert!(
        out.contains("protected principal: root credentials are never touched"),
        "{out}"
    );
}

#[test]
fn json_output_is_the_plan_triage_returns() {
    let o = firebreak(&[
        "plan",
        "--json",
        &fixture("securityhub-custom-action-two-findings.json"),
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["inputKind"], "securityHubCustomActionEvent");
    assert_eq!(v["plans"].as_array().unwrap().len(), 2);
    assert_eq!(v["plans"][1]["actions"][0]["action"], "isolate-instance");
    assert_eq!(
        v["plans"][0]["skipped"][0]["reason"],
        "severity-below-threshold"
    );
}

#[test]
fn dry_run_drills_say_so_and_stdin_works() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["plan", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("drill-dry-run.json")).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &bytes).unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("as a drill (dry run: nothing would change)"),
        "{out}"
    );
    assert!(
        out.contains("Reason    quarterly rehearsal of the EC2 playbook"),
        "{out}"
    );
    assert!(out.contains("Would do (dry run) (3):"), "{out}");
}

#[test]
fn every_fixture_and_sample_prints_a_plan_or_one_clear_error() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/findings"))
        .unwrap()
        .chain(std::fs::read_dir(samples()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut plans, mut refused) = (0, 0);
    for f in &files {
        let o = firebreak(&["plan", &f.display().to_string()]);
        let (out, err) = text(&o);
        match o.status.code() {
            Some(0) => {
                plans += 1;
                assert!(out.contains("Would do ("), "{}: {out}", f.display());
                assert!(err.is_empty(), "{}: {err}", f.display());
            }
            Some(2) => {
                refused += 1;
                assert!(out.is_empty());
                assert_eq!(err.lines().count(), 1, "{}: {err}", f.display());
                assert!(err.starts_with("firebreak: "), "{err}");
            }
            other => panic!("{}: exit {other:?}: {err}", f.display()),
        }
    }
    assert_eq!(
        (plans, refused),
        (32, 6),
        "25 fixtures + 7 samples plan; 6 samples are refused"
    );
}

#[test]
fn a_broken_policy_is_refused_with_the_field_named() {
    let dir = std::env::temp_dir().join(format!("firebreak-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.json");
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../runbooks/firebreak/policy/default-policy.json"
    ))
    .unwrap();
    v["neverBlock"][0]["cidr"] = "10.0.0.1/8".into();
    std::fs::write(&policy, v.to_string()).unwrap();
    let o = firebreak(&[
        "plan",
        "--policy",
        &policy.display().to_string(),
        &fixture("ec2-network-backdoor.json"),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3));
    assert!(err.contains("$.neverBlock[0].cidr"), "{err}");
    assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");

    // An edited policy is used: exempting the account leaves nothing to do.
    v["neverBlock"][0]["cidr"] = "10.0.0.0/8".into();
    v["exemptions"]["accounts"] =
        serde_json::json!([{"accountId": "111122223333", "reason": "sandbox"}]);
    std::fs::write(&policy, v.to_string()).unwrap();
    let o = firebreak(&[
        "plan",
        "--policy",
        &policy.display().to_string(),
        &fixture("ec2-network-backdoor.json"),
    ]);
    let (out, _) = text(&o);
    assert!(
        out.contains("exempt account: account 111122223333 is exempt: sandbox"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_file_is_one_line_and_exit_2_like_any_refused_input() {
    let o = firebreak(&["plan", "/nonexistent/finding.json"]);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(
        err.contains("cannot read /nonexistent/finding.json"),
        "{err}"
    );
}

#[test]
fn with_a_deployment_a_finding_from_another_account_is_held_and_its_own_is_planned() {
    let f = fixture("ec2-network-backdoor.json");
    let o = firebreak(&[
        "plan",
        &f,
        "--json",
        "--account",
        "444455556666",
        "--region",
        "us-east-1",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let plan = &v["plans"][0];
    assert_eq!(plan["actions"], serde_json::json!([]), "{out}");
    assert!(
        plan["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "outside-deployment"),
        "{out}"
    );
    // In the finding's own account and region, the plan is the usual one.
    let o = firebreak(&[
        "plan",
        &f,
        "--json",
        "--account",
        "111122223333",
        "--region",
        "us-east-1",
    ]);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert!(!v["plans"][0]["actions"].as_array().unwrap().is_empty());
    // A bad account id is refused, naming the flag.
    let o = firebreak(&["plan", &f, "--account", "1234", "--region", "us-east-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--account"));
}

#[test]
fn an_accounts_file_shows_whose_account_it_is_and_the_organisation_severity() {
    let f = fixture("ec2-dns-backdoor.json");
    let accounts = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/accounts.json"
    );
    let o = firebreak(&["plan", &f, "--accounts", accounts]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert!(
        text(&o).0.contains("Org       account 111122223333 (workload-prod), OU Workloads/Production, environment production, data confidential, team payments, owner dana@example.com, organisation severity CRITICAL, security contact Sam Rivera security-prod@example.com"),
        "{}",
        text(&o).0
    );
    let o = firebreak(&["plan", &f, "--json", "--accounts", accounts]);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(v["plans"][0]["account"]["orgSeverity"], "CRITICAL");
    assert_eq!(
        v["plans"][0]["account"]["securityContact"]["email"],
        "security-prod@example.com"
    );
    // A bad file is refused, naming the field.
    let dir = std::env::temp_dir().join(format!("firebreak-accounts-{}", std::process::id()));
    std::fs::write(&dir, r#"[{"accountId": "12"}]"#).unwrap();
    let o = firebreak(&["plan", &f, "--accounts", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("accountId"), "{}", text(&o).1);
}
