//! Approval: which responses wait for a person's yes before anything acts, and how that
//! person's answer is read.
//!
//! Triage decides the gate from the policy and the plan it made in this execution; no
//! input can lift it (a drill may only ask for one). The response machine waits on a
//! Step Functions task token (`.waitForTaskToken`, with the gate's timeout); `firebreak
//! approve` answers with `SendTaskSuccess`, `firebreak deny` with `SendTaskFailure`
//! (error [`DENIED_ERROR`]). Whatever comes back is read here, strictly: anything but a
//! well-formed approval is a no, so nothing acts on an answer that could not be read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::Plan;
use crate::policy::{glob_match_ignore_case, ActionKind, MinSeverity};

/// The error `firebreak deny` fails the task with; the machine's Catch routes on it.
pub const DENIED_ERROR: &str = "Firebreak.Denied";
/// The decision an approval carries, exactly.
pub const APPROVED: &str = "approved";
/// A response waits at most a week: a yes later than that is for a new response.
pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;
/// Who decided is an IAM ARN; a reason is a sentence, not a document.
const MAX_BY: usize = 2048;
const MAX_REASON: usize = 512;

/// The policy's `approval` section: rules, any one of which makes a response wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalPolicy {
    #[serde(default)]
    pub rules: Vec<ApprovalRule>,
    /// How long a response waits for a decision; then it ends NOTIFIED, nothing done.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

fn default_timeout() -> u32 {
    3600
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            rules: Vec::new(),
            timeout_seconds: default_timeout(),
        }
    }
}

/// One row: every condition given must match (patterns, case ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalRule {
    pub name: String,
    /// The resource's environment tag (`contextTags.environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The account's classification (`accountTags.environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_classification: Option<String>,
    /// The rule applies when the plan has one of these actions; empty: any containment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionKind>,
    /// The rule applies from this severity up; absent: any severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<MinSeverity>,
}

impl ApprovalPolicy {
    /// `(path, reason)` of the first thing wrong, for the policy's error.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.timeout_seconds == 0 || self.timeout_seconds > MAX_TIMEOUT_SECONDS {
            return Err((
                "$.approval.timeoutSeconds".into(),
                format!("must be 1 to {MAX_TIMEOUT_SECONDS} seconds"),
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err((
                    format!("$.approval.rules[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if r.actions.contains(&ActionKind::MarkResolved) {
                return Err((
                    format!("$.approval.rules[{i}].actions"),
                    "mark-resolved changes only the finding; approval is for containment".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Decided by triage: this response waits for a person's yes before any action runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// The rule that asked (`drill` when a drill asked for the gate).
    pub rule: String,
    /// Why, in words, for the message and the note.
    pub because: String,
    /// The actions the yes lets run.
    pub actions: Vec<String>,
    pub timeout_seconds: u32,
}

/// The gate for `plan`, if any. Nothing acts in a dry run, so a rehearsal passes without
/// one, unless the drill asked to exercise it.
pub fn gate(policy: &ApprovalPolicy, plan: &Plan, drill_asks: bool) -> Option<Gate> {
    let containment: Vec<ActionKind> = plan
        .actions
        .iter()
        .map(|a| a.kind())
        .filter(|k| *k != ActionKind::MarkResolved)
        .collect();
    if containment.is_empty() {
        return None;
    }
    let actions = plan
        .actions
        .iter()
        .filter(|a| a.kind() != ActionKind::MarkResolved)
        .map(|a| format!("{} {}", a.kind().name(), a.target()))
        .collect();
    let gate = |rule: &str, because: String| Gate {
        rule: rule.to_owned(),
        because,
        actions,
        timeout_seconds: policy.timeout_seconds,
    };
    if drill_asks {
        return Some(gate(
            "drill",
            "the drill asked to exercise the approval gate".into(),
        ));
    }
    if plan.dry_run {
        return None;
    }
    let matches = |pattern: &Option<String>, value: Option<&String>| match pattern {
        None => true,
        Some(p) => value.is_some_and(|v| glob_match_ignore_case(p, v)),
    };
    let environment = plan.context.environment.as_ref();
    let classification = plan.account.as_ref().and_then(|a| a.environment.as_ref());
    let score = plan.finding.severity.score;
    let rule = policy.rules.iter().find(|r| {
        matches(&r.environment, environment)
            && matches(&r.account_classification, classification)
            && r.min_severity.is_none_or(|m| score >= m.score())
            && (r.actions.is_empty() || r.actions.iter().any(|k| containment.contains(k)))
    })?;
    let mut why = Vec::new();
    if let (Some(_), Some(e)) = (&rule.environment, environment) {
        why.push(format!("the resource's environment is {e}"));
    }
    if let (Some(_), Some(c)) = (&rule.account_classification, classification) {
        why.push(format!("the account is classified {c}"));
    }
    if let Some(m) = rule.min_severity {
        why.push(format!("severity {score} is at least {m}"));
    }
    if !rule.actions.is_empty() {
        let named: Vec<&str> = rule
            .actions
            .iter()
            .filter(|k| containment.contains(k))
            .map(|k| k.name())
            .collect();
        why.push(format!("the plan has {}", named.join(", ")));
    }
    if why.is_empty() {
        why.push("it applies to every response".into());
    }
    Some(gate(
        &rule.name,
        format!("policy rule {}: {}", rule.name, why.join(", ")),
    ))
}

/// What `firebreak approve` sends as the task's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Always [`APPROVED`]; the machine goes on only when it is.
    pub decision: String,
    /// The approver's identity as STS told the CLI (CloudTrail's `SendTaskSuccess`
    /// event is the authoritative record of the caller).
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// What `firebreak deny` sends as the task failure's cause (JSON in a string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub by: String,
    pub at: String,
    pub reason: String,
}

/// How the gate ended, as the response machine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GateOutcome {
    Approved,
    Denied,
    TimedOut,
    /// An answer came that is not a well-formed approval: a no.
    Unreadable,
    /// Nobody could be asked (the request failed after its retries).
    Failed,
}

/// What the response machine hands the closing steps about the gate: how it ended and the
/// raw answer (the task's output, or the `{Error, Cause}` it failed with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateRecord {
    pub outcome: GateOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// Who decided what, and when, as read from the answer: for the note, the message and
/// the audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub outcome: GateOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Printable, bounded, or nothing.
fn clean(s: &str, max: usize) -> Option<String> {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(s.chars().take(max).collect())
}

fn identity(s: &str) -> Option<String> {
    clean(s, MAX_BY).filter(|b| b.starts_with("arn:") && !b.contains(' '))
}

fn timestamp(s: &str) -> Option<String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|_| s.to_owned())
}

impl GateRecord {
    pub fn decision(&self) -> Decision {
        let mut d = Decision {
            outcome: self.outcome,
            by: None,
            at: None,
            reason: None,
        };
        match self.outcome {
            GateOutcome::Approved => {
                let read = self
                    .answer
                    .clone()
                    .and_then(|v| serde_json::from_value::<Approval>(v).ok())
                    .filter(|a| a.decision == APPROVED);
                match read
                    .as_ref()
                    .and_then(|a| identity(&a.by).map(|by| (a, by)))
                {
                    Some((a, by)) => {
                        d.by = Some(by);
                        d.at = timestamp(&a.at);
                    }
                    // The machine checked the shape; the library checks the values: an
                    // approval without a readable approver is not one.
                    None => {
                        d.outcome = GateOutcome::Unreadable;
                        d.reason = Some("the approval names no approver".into());
                    }
                }
            }
            GateOutcome::Denied => {
                let cause = self
                    .error
                    .as_ref()
                    .and_then(|e| e.get("Cause"))
                    .and_then(Value::as_str)
                    .and_then(|c| serde_json::from_str::<Denial>(c).ok());
                match cause {
                    Some(c) => {
                        d.by = identity(&c.by);
                        d.at = timestamp(&c.at);
                        d.reason = clean(&c.reason, MAX_REASON);
                    }
                    None => d.reason = Some("denied, with no reason that could be read".into()),
                }
            }
            GateOutcome::Unreadable => {
                d.reason = Some("the answer was not an approval Firebreak could read".into());
            }
            GateOutcome::TimedOut => {}
            GateOutcome::Failed => {
                let error = self
                    .error
                    .as_ref()
                    .and_then(|e| e.get("Error"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                d.reason = clean(&format!("nobody could be asked: {error}"), MAX_REASON);
            }
        }
        d
    }
}

/// One line for the note and the message: what the gate asked and how it ended.
pub fn describe(gate: &Gate, record: Option<&GateRecord>) -> String {
    let asked = format!("Approval was required ({})", gate.because);
    let Some(record) = record else {
        return format!("{asked}.");
    };
    let d = record.decision();
    let by = d.by.as_deref().unwrap_or("an unnamed caller");
    let at =
        d.at.as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
    match d.outcome {
        GateOutcome::Approved => format!("{asked}: approved by {by}{at}."),
        GateOutcome::Denied => format!(
            "{asked}: denied by {by}{at}: {}. Nothing was done.",
            d.reason.as_deref().unwrap_or("no reason given")
        ),
        GateOutcome::TimedOut => format!(
            "{asked}: no decision within {} seconds. Nothing was done.",
            gate.timeout_seconds
        ),
        GateOutcome::Unreadable => format!(
            "{asked}: {}. Nothing was done.",
            d.reason
                .as_deref()
                .unwrap_or("the answer could not be read")
        ),
        GateOutcome::Failed => format!(
            "{asked}: {}. Nothing was done.",
            d.reason.as_deref().unwrap_or("nobody could be asked")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(dry_run: bool, environment: Option<&str>) -> Plan {
        let mut p = crate::fixtures::fixture_plan("ec2-network-backdoor.json", dry_run).unwrap();
        p.context.environment = environment.map(str::to_owned);
        p
    }

    fn production() -> ApprovalPolicy {
        serde_json::from_value(json!({
            "rules": [{"name": "production-isolation", "environment": "prod*",
                       "actions": ["isolate-instance"], "minSeverity": "MEDIUM"}],
            "timeoutSeconds": 900
        }))
        .unwrap()
    }

    #[test]
    fn a_production_instance_waits_and_others_do_not() {
        let g = gate(&production(), &plan(false, Some("Production")), false).unwrap();
        assert_eq!(g.rule, "production-isolation");
        assert_eq!(g.timeout_seconds, 900);
        assert!(
            g.because.contains("environment is Production"),
            "{}",
            g.because
        );
        assert!(
            g.actions
                .iter()
                .any(|a| a.starts_with("isolate-instance i-")),
            "{:?}",
            g.actions
        );
        assert!(!g.actions.iter().any(|a| a.starts_with("mark-resolved")));
        assert_eq!(
            gate(&production(), &plan(false, Some("staging")), false),
            None
        );
        // No tag: the rule names an environment, so it does not match.
        assert_eq!(gate(&production(), &plan(false, None), false), None);
    }

    #[test]
    fn a_rehearsal_passes_unless_the_drill_asks_for_the_gate() {
        assert_eq!(
            gate(&production(), &plan(true, Some("production")), false),
            None
        );
        let g = gate(&ApprovalPolicy::default(), &plan(true, None), true).unwrap();
        assert_eq!(g.rule, "drill");
    }

    #[test]
    fn nothing_to_contain_needs_no_yes() {
        let mut p = plan(false, Some("production"));
        p.actions.retain(|a| a.kind() == ActionKind::MarkResolved);
        assert_eq!(gate(&production(), &p, true), None);
    }

    #[test]
    fn a_rule_for_another_action_or_a_higher_severity_does_not_apply() {
        let mut pol = production();
        pol.rules[0].actions = vec![ActionKind::ThrottleFunction];
        assert_eq!(gate(&pol, &plan(false, Some("production")), false), None);
        let mut pol = production();
        pol.rules[0].min_severity = Some(MinSeverity::Score(9.9));
        assert_eq!(gate(&pol, &plan(false, Some("production")), false), None);
    }

    #[test]
    fn the_policy_refuses_a_zero_timeout_and_an_unnamed_rule() {
        let mut pol = production();
        pol.timeout_seconds = 0;
        assert_eq!(pol.check().unwrap_err().0, "$.approval.timeoutSeconds");
        let mut pol = production();
        pol.rules[0].name = " ".into();
        assert_eq!(pol.check().unwrap_err().0, "$.approval.rules[0].name");
    }

    #[test]
    fn an_approval_is_read_with_its_approver_and_time() {
        let r = GateRecord {
            outcome: GateOutcome::Approved,
            answer: Some(
                json!({"decision": "approved", "by": "arn:aws:iam::111122223333:user/ana",
                                "at": "2026-12-02T10:00:00Z"}),
            ),
            error: None,
        };
        let d = r.decision();
        assert_eq!(d.outcome, GateOutcome::Approved);
        assert_eq!(d.by.as_deref(), Some("arn:aws:iam::111122223333:user/ana"));
        assert_eq!(d.at.as_deref(), Some("2026-12-02T10:00:00Z"));
    }

    #[test]
    fn an_approval_without_a_readable_approver_is_a_no() {
        for answer in [
            json!({"decision": "approved", "by": "ana", "at": "2026-12-02T10:00:00Z"}),
            json!({"decision": "approved"}),
            json!("approved"),
            json!({"decision": "APPROVED", "by": "arn:aws:iam::1:user/a", "at": "x"}),
        ] {
            let r = GateRecord {
                outcome: GateOutcome::Approved,
                answer: Some(answer.clone()),
                error: None,
            };
            assert_eq!(r.decision().outcome, GateOutcome::Unreadable, "{answer}");
        }
    }

    #[test]
    fn a_denial_keeps_who_and_why_and_a_garbled_one_is_still_a_denial() {
        let cause =
            json!({"by": "arn:aws:iam::111122223333:user/ana", "at": "2026-12-02T10:00:00Z",
                           "reason": "change freeze\n\u{7}tonight"})
            .to_string();
        let r = GateRecord {
            outcome: GateOutcome::Denied,
            answer: None,
            error: Some(json!({"Error": DENIED_ERROR, "Cause": cause})),
        };
        let d = r.decision();
        assert_eq!(d.reason.as_deref(), Some("change freeze  tonight"));
        let g = gate(&production(), &plan(false, Some("production")), false).unwrap();
        let line = describe(&g, Some(&r));
        assert!(line.contains("denied by arn:aws:iam::111122223333:user/ana at 2026-12-02T10:00:00Z: change freeze"), "{line}");
        let garbled = GateRecord {
            outcome: GateOutcome::Denied,
            answer: None,
            error: Some(json!({"Error": DENIED_ERROR, "Cause": "{not json"})),
        };
        assert_eq!(garbled.decision().outcome, GateOutcome::Denied);
        assert!(describe(&g, Some(&garbled)).contains("Nothing was done"));
    }

    #[test]
    fn a_timeout_says_how_long_it_waited() {
        let g = gate(&production(), &plan(false, Some("production")), false).unwrap();
        let r = GateRecord {
            outcome: GateOutcome::TimedOut,
            answer: None,
            error: Some(json!({"Error": "States.Timeout"})),
        };
        assert!(describe(&g, Some(&r)).contains("no decision within 900 seconds"));
    }
}
