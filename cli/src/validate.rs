//! `firebreak validate`: checks policy files, state machines and rule files offline and
//! says precisely what is wrong: the file, the JSON path, the reason.

use std::path::{Path, PathBuf};

use firebreak::policy::{Policy, MAX_POLICY_BYTES};
use serde_json::Value;

/// What a file was taken for, and what is wrong with it (empty: nothing).
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub file: PathBuf,
    pub kind: &'static str,
    pub problems: Vec<String>,
}

fn check_rule(v: &Value, machines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match v.get("stateMachine").and_then(Value::as_str) {
        None => out.push("$.stateMachine: required: the state machine file it starts".into()),
        Some(m) if !machines.is_empty() && !machines.iter().any(|x| x == m) => out.push(format!(
            "$.stateMachine: no statemachines/{m}.asl.json beside it (there are: {})",
            machines.join(", ")
        )),
        Some(_) => {}
    }
    match (v.get("eventPattern"), v.get("schedule")) {
        (Some(p), None) if p.is_object() => {}
        (Some(_), None) => out.push("$.eventPattern: must be an object".into()),
        (None, Some(s)) => {
            let ok = s.as_str().is_some_and(|s| {
                (s.starts_with("rate(") || s.starts_with("cron(")) && s.ends_with(')')
            });
            if !ok {
                out.push("$.schedule: must be rate(...) or cron(...)".into());
            }
        }
        _ => out.push("$: give exactly one of eventPattern and schedule".into()),
    }
    if let Some(e) = v.get("enabled") {
        if !e.is_boolean() {
            out.push("$.enabled: must be true or false".into());
        }
    }
    out
}

pub fn check_file(path: &Path, machines: &[String]) -> Checked {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let text = match std::fs::read(path) {
        Ok(b) if b.len() > MAX_POLICY_BYTES * 64 => {
            return Checked {
                file: path.into(),
                kind: "file",
                problems: vec![format!("{} bytes: too large", b.len())],
            }
        }
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            return Checked {
                file: path.into(),
                kind: "file",
                problems: vec![format!("cannot read: {e}")],
            }
        }
    };
    if name.ends_with(".asl.json") {
        let (_, problems) = crate::asl::parse(&text);
        return Checked {
            file: path.into(),
            kind: "state machine",
            problems: problems.iter().map(|p| p.to_string()).collect(),
        };
    }
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return Checked {
                file: path.into(),
                kind: "file",
                problems: vec![format!(
                    "line {} column {}: not JSON: {e}",
                    e.line(),
                    e.column()
                )],
            }
        }
    };
    if value.get("policyVersion").is_some() || value.get("rules").is_some() {
        let problems = match Policy::from_json(&text, &path.display().to_string()) {
            Ok(_) => vec![],
            Err(e) => vec![format!("{}: {}", e.path, e.reason)],
        };
        return Checked {
            file: path.into(),
            kind: "policy",
            problems,
        };
    }
    if value.get("stateMachine").is_some()
        || value.get("eventPattern").is_some()
        || value.get("schedule").is_some()
    {
        return Checked {
            file: path.into(),
            kind: "rule",
            problems: check_rule(&value, machines),
        };
    }
    Checked {
        file: path.into(),
        kind: "file",
        problems: vec!["neither a policy (policyVersion), a state machine (*.asl.json) nor a rule (stateMachine)".into()],
    }
}

/// The files a path stands for: a file itself; a directory's `*.asl.json`, its `rules/*.json`
/// and any `*.json` policy in it.
pub fn expand(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_owned()];
    }
    let mut out = Vec::new();
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort();
        v.into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    };
    out.extend(list(path));
    out.extend(list(&path.join("rules")));
    out
}

/// Machine names next to the rules (`statemachines/*.asl.json`), for the rule check.
pub fn machines_near(paths: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".asl.json")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
    }

    #[test]
    fn the_repository_validates() {
        let files = expand(&repo("statemachines"));
        let machines = machines_near(&files);
        assert!(machines.contains(&"response".to_owned()));
        for f in &files {
            let c = check_file(f, &machines);
            assert_eq!(c.problems, Vec::<String>::new(), "{}", f.display());
        }
        let c = check_file(&repo("runbooks/firebreak/policy/default-policy.json"), &[]);
        assert_eq!((c.kind, c.problems.len()), ("policy", 0));
    }

    #[test]
    fn broken_files_say_where_and_why() {
        let dir = std::env::temp_dir().join(format!("firebreak-validate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.json");
        let text = include_str!("../../runbooks/firebreak/policy/default-policy.json")
            .replace("\"first\": 80", "\"first\": 0");
        std::fs::write(&policy, text).unwrap();
        let c = check_file(&policy, &[]);
        assert_eq!(c.kind, "policy");
        assert!(
            c.problems[0].starts_with("$.ipBlocking.ruleNumbers: 0..99 is not a band"),
            "{:?}",
            c.problems
        );

        let rule = dir.join("rule.json");
        std::fs::write(&rule, r#"{"stateMachine": "nope", "schedule": "hourly"}"#).unwrap();
        let c = check_file(&rule, &["response".into()]);
        assert_eq!(
            c.problems,
            vec![
                "$.stateMachine: no statemachines/nope.asl.json beside it (there are: response)"
                    .to_owned(),
                "$.schedule: must be rate(...) or cron(...)".to_owned(),
            ]
        );
        let asl = dir.join("x.asl.json");
        std::fs::write(
            &asl,
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}"#,
        )
        .unwrap();
        let c = check_file(&asl, &[]);
        assert_eq!(
            c.problems,
            vec!["$.States.A: needs exactly one of Next and \"End\": true".to_owned()]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
