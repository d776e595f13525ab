//! One test for every runbook: the IAM actions its `permissions.json` declares are exactly
//! the SDK calls in its source, so the role the CDK app and the local account build from
//! that file cannot drift from the code. (The end-to-end tests check the calls each
//! function really made against the same file.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use firebreak::permissions::{declared_actions, iam_actions, sdk_calls_in_source};

/// The client variable names the runbooks use, and the IAM service prefix of each.
const CLIENTS: [(&str, &str); 15] = [
    ("ec2", "ec2"),
    ("iam", "iam"),
    ("ssm", "ssm"),
    ("hub", "securityhub"),
    ("logs", "logs"),
    ("organizations", "organizations"),
    ("contacts", "account"),
    ("dynamodb", "dynamodb"),
    ("lambda", "lambda"),
    ("s3", "s3"),
    ("autoscaling", "autoscaling"),
    ("elb", "elasticloadbalancing"),
    ("sns", "sns"),
    ("classic", "elasticloadbalancing"),
    ("secrets", "secretsmanager"),
];

#[test]
fn every_runbook_declares_exactly_the_calls_its_code_makes() {
    let runbooks = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&runbooks).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("permissions.json")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let vars: Vec<&str> = CLIENTS.iter().map(|(v, _)| *v).collect();
        let used: BTreeSet<String> = sdk_calls_in_source(&dir.join("src"), &vars)
            .unwrap()
            .into_iter()
            .flat_map(|call| {
                let (var, op) = call.split_once(':').unwrap();
                let service = CLIENTS.iter().find(|(v, _)| *v == var).unwrap().1;
                iam_actions(service, op)
            })
            .collect();
        assert!(!used.is_empty(), "{name}: no SDK call found in its source");
        assert_eq!(
            declared_actions(&text).unwrap(),
            used,
            "runbooks/{name}/permissions.json and the calls in runbooks/{name}/src"
        );
        checked.push(name);
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "audit-log",
            "block-remote-ip",
            "contain-s3",
            "isolate-instance",
            "mark-resolved",
            "notify",
            "revoke-role-sessions",
            "throttle-function",
            "ticket",
            "triage"
        ]
    );
}
