//! Tickets: one Jira Cloud issue per finding, created by its first response and commented
//! on by every later one. The policy turns them on (`tickets.jira`); triage puts the route
//! in the plan; the ticket runbook reads Jira's credentials from Secrets Manager and calls
//! Jira's REST API (v3). This file is the pure part: the route, the request bodies Jira's
//! contract asks for (Atlassian Document Format), the label that finds a finding's issue
//! again, and the checks on what Jira and the secret hand back.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::plan::Plan;
use crate::policy::MinSeverity;

/// Jira's summary is one line of at most 255 characters.
const SUMMARY_MAX: usize = 255;
/// A comment or description stays well under Jira's 32 767-character field limit.
const TEXT_MAX: usize = 30_000;

/// The policy's `tickets` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira: Option<JiraPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JiraPolicy {
    /// The Jira project's key (`SEC`).
    pub project_key: String,
    /// The issue type's name in that project.
    #[serde(default = "task")]
    pub issue_type: String,
    /// Only responses to findings from this severity up get a ticket; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<MinSeverity>,
}

fn task() -> String {
    "Task".into()
}

/// Jira project keys: an upper-case letter, then upper-case letters, digits or `_`.
pub fn check_project_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && key.len() >= 2
        && key.len() <= 10
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a Jira project key (2 to 10 of A-Z, 0-9 and _, starting with a letter)"
        ))
    }
}

impl TicketPolicy {
    pub fn check(&self) -> Result<(), (String, String)> {
        if let Some(j) = &self.jira {
            check_project_key(&j.project_key)
                .map_err(|e| ("$.tickets.jira.projectKey".to_owned(), e))?;
            let t = j.issue_type.trim();
            if t.is_empty() || t.len() > 60 || t.chars().any(char::is_control) {
                return Err((
                    "$.tickets.jira.issueType".into(),
                    "must be an issue type's name (1 to 60 printable characters)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Decided by triage: this response's ticket goes to this project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketRoute {
    pub project_key: String,
    pub issue_type: String,
}

/// The route for `plan`: none in a dry run (a ticket is an effect outside the account a
/// rehearsal must not have), none below the policy's severity.
pub fn route(policy: &TicketPolicy, plan: &Plan) -> Option<TicketRoute> {
    let j = policy.jira.as_ref()?;
    if plan.dry_run {
        return None;
    }
    if j.min_severity
        .is_some_and(|m| plan.finding.severity.score < m.score())
    {
        return None;
    }
    Some(TicketRoute {
        project_key: j.project_key.clone(),
        issue_type: j.issue_type.clone(),
    })
}

/// The label that finds a finding's issue again: a hash of its id (Jira labels have no
/// spaces and JQL quotes would have to be escaped in an ARN).
pub fn label(finding_id: &str) -> String {
    let digest = Sha256::digest(finding_id.as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("firebreak-{hex}")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// A plain text as an Atlassian Document Format document: one paragraph per non-empty
/// line (ADF refuses empty text nodes).
pub fn adf(text: &str) -> Value {
    let text = cut(text, TEXT_MAX);
    let content: Vec<Value> = text
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

/// `POST /rest/api/3/issue`.
pub fn create_issue(route: &TicketRoute, summary: &str, text: &str, label: &str) -> Value {
    let summary: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    json!({
        "fields": {
            "project": {"key": route.project_key},
            "issuetype": {"name": route.issue_type},
            "summary": cut(summary.trim(), SUMMARY_MAX),
            "description": adf(text),
            "labels": ["firebreak", label],
        }
    })
}

/// `POST /rest/api/3/issue/{key}/comment`.
pub fn comment(text: &str) -> Value {
    json!({"body": adf(text)})
}

/// `POST /rest/api/3/search/jql`: the oldest issue with the finding's label.
pub fn search(route: &TicketRoute, label: &str) -> Value {
    json!({
        "jql": format!("project = {} AND labels = {label} ORDER BY created ASC", route.project_key),
        "maxResults": 1,
        "fields": ["key"],
    })
}

/// A Jira issue key (`SEC-24`), checked before it goes into a URL, a note or a field.
pub fn check_issue_key(key: &str) -> Result<(), String> {
    let ok = key.split_once('-').is_some_and(|(p, n)| {
        check_project_key(p).is_ok()
            && !n.is_empty()
            && n.len() <= 12
            && n.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{:?} is not a Jira issue key", cut(key, 40)))
    }
}

/// Jira's credentials, as the secret `firebreak/jira` holds them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JiraCredentials {
    /// `https://your-domain.atlassian.net`.
    pub base_url: String,
    pub email: String,
    pub api_token: String,
}

impl std::fmt::Debug for JiraCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraCredentials")
            .field("base_url", &self.base_url)
            .field("email", &self.email)
            .field("api_token", &"…")
            .finish()
    }
}

impl JiraCredentials {
    /// The secret's value, checked: an `https://` site with no path (plain `http://` only
    /// to a loopback address, for a stand-in on the same machine), an email and a token.
    /// The error never repeats the value.
    pub fn parse(secret: &str) -> Result<JiraCredentials, String> {
        let mut c: JiraCredentials = serde_json::from_str(secret).map_err(|e| {
            format!(
                "the secret is not {{\"baseUrl\", \"email\", \"apiToken\"}} (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        c.base_url = c.base_url.trim_end_matches('/').to_owned();
        let host = c
            .base_url
            .strip_prefix("https://")
            .or_else(|| {
                c.base_url
                    .strip_prefix("http://")
                    .filter(|h| is_loopback(h))
            })
            .ok_or("baseUrl must be https:// (http:// only to 127.0.0.1 or localhost)")?;
        if host.is_empty()
            || host.contains(['/', '?', '#', '@', ' '])
            || !host
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'))
        {
            return Err(
                "baseUrl must be the site alone (https://your-domain.atlassian.net)".into(),
            );
        }
        if !c.email.contains('@') || c.email.chars().any(|ch| ch.is_control() || ch == ' ') {
            return Err("email must be the Atlassian account's email".into());
        }
        if c.api_token.trim().is_empty() || c.api_token.chars().any(char::is_control) {
            return Err("apiToken must not be empty".into());
        }
        Ok(c)
    }

    /// `Authorization: Basic base64(email:token)`, as Jira Cloud's API tokens are used.
    pub fn authorization(&self) -> String {
        let raw = format!("{}:{}", self.email, self.api_token);
        format!("Basic {}", aws_smithy_types::base64::encode(raw.as_bytes()))
    }

    pub fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{key}", self.base_url)
    }
}

fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// What the ticket runbook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TicketAction {
    /// The finding's first response: a new issue.
    Created,
    /// A later response: a comment on the finding's issue.
    Commented,
}

/// The ticket runbook's output, which the note, the messages and the audit record carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketOutput {
    // Always present (null when none): the machine's ResultSelector reads each, and a
    // missing path would be a runtime error no Catch catches.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub action: Option<TicketAction>,
    /// Why no ticket could be written (the step failed after its retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::outcome::Failure>,
}

impl TicketOutput {
    /// One sentence for the note and the message.
    pub fn line(&self) -> Option<String> {
        match (&self.key, &self.failure) {
            (Some(key), _) => Some(match &self.url {
                Some(url) => format!("Ticket: {key} ({url})."),
                None => format!("Ticket: {key}."),
            }),
            (None, Some(f)) => Some(format!(
                "No ticket could be written: {}: {}.",
                f.error,
                cut(&f.cause, 200)
            )),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> TicketRoute {
        TicketRoute {
            project_key: "SEC".into(),
            issue_type: "Task".into(),
        }
    }

    #[test]
    fn the_create_issue_body_is_what_jiras_contract_asks() {
        let body = create_issue(
            &route(),
            "Firebreak contained (HIGH):\nx",
            "line one\n\n  - line two\n",
            "firebreak-ab",
        );
        let f = &body["fields"];
        assert_eq!(f["project"]["key"], "SEC");
        assert_eq!(f["issuetype"]["name"], "Task");
        assert_eq!(f["summary"], "Firebreak contained (HIGH): x", "one line");
        assert_eq!(f["labels"], json!(["firebreak", "firebreak-ab"]));
        assert_eq!(f["description"]["type"], "doc");
        assert_eq!(f["description"]["version"], 1);
        let paragraphs = f["description"]["content"].as_array().unwrap();
        assert_eq!(paragraphs.len(), 2, "no empty paragraph");
        assert_eq!(
            paragraphs[1]["content"][0],
            json!({"type": "text", "text": "  - line two"})
        );
        let long = create_issue(&route(), &"x".repeat(400), "t", "l");
        assert_eq!(
            long["fields"]["summary"].as_str().unwrap().chars().count(),
            255
        );
    }

    #[test]
    fn a_findings_label_is_stable_short_and_has_no_spaces() {
        let a = label("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f");
        assert_eq!(
            a,
            label("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f")
        );
        assert_ne!(
            a,
            label("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/g")
        );
        assert_eq!(a.len(), "firebreak-".len() + 20);
        assert!(!a.contains(' '));
        assert!(search(&route(), &a)["jql"]
            .as_str()
            .unwrap()
            .contains(&format!("labels = {a}")));
    }

    #[test]
    fn the_secret_is_checked_and_never_repeated() {
        let ok = JiraCredentials::parse(r#"{"baseUrl": "https://acme.atlassian.net/", "email": "sec@acme.example", "apiToken": "t0k"}"#).unwrap();
        assert_eq!(ok.base_url, "https://acme.atlassian.net");
        assert_eq!(
            ok.browse_url("SEC-1"),
            "https://acme.atlassian.net/browse/SEC-1"
        );
        assert_eq!(
            ok.authorization(),
            format!(
                "Basic {}",
                aws_smithy_types::base64::encode("sec@acme.example:t0k")
            )
        );
        assert!(!format!("{ok:?}").contains("t0k"));
        assert!(JiraCredentials::parse(
            r#"{"baseUrl": "http://127.0.0.1:8080", "email": "a@b", "apiToken": "t"}"#
        )
        .is_ok());
        for bad in [
            r#"{"baseUrl": "http://acme.atlassian.net", "email": "a@b", "apiToken": "t"}"#,
            r#"{"baseUrl": "https://acme.atlassian.net/rest", "email": "a@b", "apiToken": "t"}"#,
            r#"{"baseUrl": "https://user@evil", "email": "a@b", "apiToken": "t"}"#,
            r#"{"baseUrl": "https://acme.atlassian.net", "email": "nobody", "apiToken": "t"}"#,
            r#"{"baseUrl": "https://acme.atlassian.net", "email": "a@b", "apiToken": " "}"#,
            r#"{"baseUrl": "https://acme.atlassian.net", "email": "a@b", "apiToken": "SECRET", "x": 1}"#,
            "SECRET",
        ] {
            let e = JiraCredentials::parse(bad).unwrap_err();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn issue_and_project_keys_are_checked() {
        assert!(check_issue_key("SEC-24").is_ok());
        for bad in ["sec-1", "SEC-", "SEC-1/../x", "S-1", "SEC_1"] {
            assert!(check_issue_key(bad).is_err(), "{bad}");
        }
        assert!(check_project_key("SEC").is_ok());
        assert!(check_project_key("S").is_err());
    }

    #[test]
    fn no_ticket_in_a_dry_run_or_below_the_severity() {
        let policy = TicketPolicy {
            jira: Some(JiraPolicy {
                project_key: "SEC".into(),
                issue_type: "Task".into(),
                min_severity: Some(MinSeverity::Score(9.0)),
            }),
        };
        let plan = crate::fixtures::fixture_plan("ec2-network-backdoor.json", false).unwrap();
        assert_eq!(super::route(&policy, &plan), None, "below 9.0");
        let mut all = policy.clone();
        all.jira.as_mut().unwrap().min_severity = None;
        assert_eq!(super::route(&all, &plan).unwrap().project_key, "SEC");
        let dry = crate::fixtures::fixture_plan("ec2-network-backdoor.json", true).unwrap();
        assert_eq!(super::route(&all, &dry), None);
        assert_eq!(super::route(&TicketPolicy::default(), &plan), None);
    }
}
