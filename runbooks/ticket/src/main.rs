//! ticket: one Jira Cloud issue per finding. The first response to a finding creates it
//! (the owning team's message as its summary and description, labelled with the finding's
//! hash); every later response comments on it. The key and link go into the note, the
//! finding's fields, the messages and the audit record. Credentials are the secret
//! `firebreak/jira` (`{"baseUrl", "email", "apiToken"}`) in Firebreak's own account; the
//! route (project, issue type) is triage's, from the policy.

mod jira;

use aws_sdk_secretsmanager::Client as SecretsClient;
use firebreak::aws::aws_error;
use firebreak::error::RunbookError;
use firebreak::outcome::{keyed, unkeyed, CloseRequest};
use firebreak::release::ReleaseAuditRequest;
use firebreak::ticket::{self, JiraCredentials, TicketAction, TicketOutput, TicketRoute};

use crate::jira::Jira;

/// What the ticket runbook is asked: a response's close, or (the release machine) a
/// finding's release, chosen by the `releaseNote` key.
#[derive(Debug)]
pub enum TicketRequest {
    Close(Box<CloseRequest>),
    Release(Box<ReleaseAuditRequest>),
}

impl<'de> serde::Deserialize<'de> for TicketRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match keyed(&value, "releaseNote") {
            Some(r) => r.map(|r| TicketRequest::Release(Box::new(r))),
            None => unkeyed(value).map(|c| TicketRequest::Close(Box::new(c))),
        }
    }
}

/// Jira's credentials from Secrets Manager, checked before any call to Jira.
pub async fn credentials(secrets: &SecretsClient) -> Result<JiraCredentials, RunbookError> {
    let out = secrets
        .get_secret_value()
        .secret_id(firebreak::names::JIRA_SECRET)
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:GetSecretValue", e))?;
    let text = out.secret_string().ok_or_else(|| RunbookError::Config {
        message: format!(
            "the secret {} has no string value",
            firebreak::names::JIRA_SECRET
        ),
    })?;
    JiraCredentials::parse(text).map_err(|e| RunbookError::Config {
        message: format!("the secret {}: {e}", firebreak::names::JIRA_SECRET),
    })
}

/// Creates the finding's issue, or comments on the one it has.
pub async fn file(
    req: &CloseRequest,
    route: &TicketRoute,
    jira: &Jira,
) -> Result<TicketOutput, RunbookError> {
    let finding_id = req.plan.finding.security_hub.id.as_str();
    // The owning team's message: what was found, why it matters, what was done, what to
    // do next, how to release.
    let Some(told) = firebreak::notify::messages(req).into_iter().next() else {
        return Err(RunbookError::Config {
            message: "no message to file".into(),
        });
    };
    let label = ticket::label(finding_id);
    let (key, action) = match jira.find(&ticket::search(route, &label)).await? {
        Some(key) => {
            let text = format!("A later response to this finding.\n{}", told.body);
            jira.comment(&key, &ticket::comment(&text)).await?;
            (key, TicketAction::Commented)
        }
        None => {
            let issue = ticket::create_issue(route, &told.subject, &told.body, &label);
            (jira.create(&issue).await?, TicketAction::Created)
        }
    };
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id,
        action = "ticket",
        ticket = %key,
        created = action == TicketAction::Created,
        "{} {key} in {}",
        if action == TicketAction::Created { "created" } else { "commented on" },
        route.project_key
    );
    Ok(TicketOutput {
        url: Some(jira.browse_url(&key)),
        key: Some(key),
        action: Some(action),
        failure: None,
    })
}

/// A finding's release, on its issue: `note` (what it put back) as a comment, when it has
/// an issue; none is opened for a release alone.
pub async fn comment_release(
    req: &ReleaseAuditRequest,
    note: &str,
    route: &TicketRoute,
    jira: &Jira,
) -> Result<TicketOutput, RunbookError> {
    let Some(finding) = &req.release.finding else {
        return Ok(TicketOutput::default());
    };
    let label = ticket::label(finding.as_str());
    let Some(key) = jira.find(&ticket::search(route, &label)).await? else {
        return Ok(TicketOutput::default());
    };
    jira.comment(&key, &ticket::comment(note)).await?;
    tracing::info!(
        execution_id = req.release.execution_id.as_deref().unwrap_or(""),
        finding_id = %finding,
        action = "ticket",
        ticket = %key,
        "commented on {key}: the release"
    );
    Ok(TicketOutput {
        url: Some(jira.browse_url(&key)),
        key: Some(key),
        action: Some(TicketAction::Commented),
        failure: None,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let secrets = SecretsClient::new(&sdk);
    let secrets = &secrets;
    let connector = jira::https_connector();
    let connector = &connector;
    firebreak::runtime::serve("ticket", |req: TicketRequest| async move {
        // No route, or a release that put nothing back (a second one): no ticket, and
        // the secret is not even read.
        let jira = || async {
            Ok::<_, RunbookError>(Jira::new(credentials(secrets).await?, connector.clone()))
        };
        match req {
            TicketRequest::Close(c) => match c.plan.ticket.clone() {
                Some(route) => file(&c, &route, &jira().await?).await,
                None => Ok(TicketOutput::default()),
            },
            TicketRequest::Release(r) => match (r.release.ticket.clone(), r.note()) {
                (Some(route), Some(note)) => {
                    comment_release(&r, &note, &route, &jira().await?).await
                }
                _ => Ok(TicketOutput::default()),
            },
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_runtime_api::client::http::SharedHttpConnector;
    use aws_smithy_types::body::SdkBody;
    use firebreak::outcome::OutcomeStatus;
    use firebreak::ticket::TicketRoute;
    use serde_json::{json, Value};

    fn request() -> CloseRequest {
        firebreak::fixtures::fixture_close("ec2-network-backdoor.json", false, OutcomeStatus::Done)
            .unwrap()
    }

    fn route() -> TicketRoute {
        TicketRoute {
            project_key: "SEC".into(),
            issue_type: "Task".into(),
        }
    }

    fn credentials() -> JiraCredentials {
        JiraCredentials::parse(
            r#"{"baseUrl": "https://acme.atlassian.net", "email": "sec@acme.example", "apiToken": "t"}"#,
        )
        .unwrap()
    }

    fn answer(uri: &str, status: u16, body: Value) -> ReplayEvent {
        ReplayEvent::new(
            http::Request::builder()
                .method("POST")
                .uri(uri)
                .body(SdkBody::empty())
                .unwrap(),
            http::Response::builder()
                .status(status)
                .body(SdkBody::from(body.to_string()))
                .unwrap(),
        )
    }

    fn sent(client: &StaticReplayClient) -> Vec<(String, Value)> {
        client
            .actual_requests()
            .map(|r| {
                let body = r.body().bytes().map(|b| serde_json::from_slice(b).unwrap());
                (r.uri().to_owned(), body.unwrap_or(Value::Null))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_first_response_creates_the_issue_with_the_findings_label() {
        let client = StaticReplayClient::new(vec![
            answer(
                "https://acme.atlassian.net/rest/api/3/search/jql",
                200,
                json!({"issues": []}),
            ),
            answer(
                "https://acme.atlassian.net/rest/api/3/issue",
                201,
                json!({"id": "10001", "key": "SEC-24", "self": "x"}),
            ),
        ]);
        let jira = Jira::new(credentials(), SharedHttpConnector::new(client.clone()));
        let req = request();
        let out = file(&req, &route(), &jira).await.unwrap();
        assert_eq!(out.key.as_deref(), Some("SEC-24"));
        assert_eq!(
            out.url.as_deref(),
            Some("https://acme.atlassian.net/browse/SEC-24")
        );
        assert_eq!(out.action, Some(TicketAction::Created));
        let calls = sent(&client);
        let label = firebreak::ticket::label(req.plan.finding.security_hub.id.as_str());
        assert!(calls[0].1["jql"].as_str().unwrap().contains(&label));
        assert_eq!(calls[1].1["fields"]["labels"], json!(["firebreak", label]));
        assert!(calls[1].1["fields"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Firebreak contained (HIGH)"));
        let auth = client
            .actual_requests()
            .next()
            .unwrap()
            .headers()
            .get("authorization")
            .unwrap()
            .to_owned();
        assert!(auth.starts_with("Basic "));
    }

    #[tokio::test]
    async fn a_later_response_comments_on_the_findings_issue() {
        let client = StaticReplayClient::new(vec![
            answer(
                "https://acme.atlassian.net/rest/api/3/search/jql",
                200,
                json!({"issues": [{"id": "1", "key": "SEC-7"}]}),
            ),
            answer(
                "https://acme.atlassian.net/rest/api/3/issue/SEC-7/comment",
                201,
                json!({"id": "5"}),
            ),
        ]);
        let jira = Jira::new(credentials(), SharedHttpConnector::new(client.clone()));
        let out = file(&request(), &route(), &jira).await.unwrap();
        assert_eq!(
            (out.key.as_deref(), out.action),
            (Some("SEC-7"), Some(TicketAction::Commented))
        );
        let calls = sent(&client);
        assert_eq!(
            calls[1].0,
            "https://acme.atlassian.net/rest/api/3/issue/SEC-7/comment"
        );
        assert_eq!(calls[1].1["body"]["type"], "doc");
    }

    #[tokio::test]
    async fn a_refusal_names_jiras_reason_and_a_bad_key_from_jira_is_not_used() {
        let client = StaticReplayClient::new(vec![
            answer(
                "https://acme.atlassian.net/rest/api/3/search/jql",
                200,
                json!({"issues": []}),
            ),
            answer(
                "https://acme.atlassian.net/rest/api/3/issue",
                400,
                json!({"errorMessages": [], "errors": {"project": "project is required"}}),
            ),
        ]);
        let jira = Jira::new(credentials(), SharedHttpConnector::new(client));
        let e = file(&request(), &route(), &jira)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jira:CreateIssue") && e.contains("project: project is required"),
            "{e}"
        );
        let client = StaticReplayClient::new(vec![answer(
            "https://acme.atlassian.net/rest/api/3/search/jql",
            200,
            json!({"issues": [{"key": "SEC-1/../../admin"}]}),
        )]);
        let jira = Jira::new(credentials(), SharedHttpConnector::new(client.clone()));
        assert!(file(&request(), &route(), &jira).await.is_err());
        assert_eq!(
            client.actual_requests().count(),
            1,
            "no call with a key Jira made up"
        );
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_transient() {
        let client = StaticReplayClient::new(vec![answer(
            "https://acme.atlassian.net/rest/api/3/search/jql",
            429,
            json!({"errorMessages": ["rate limited"]}),
        )]);
        let jira = Jira::new(credentials(), SharedHttpConnector::new(client));
        match file(&request(), &route(), &jira).await.unwrap_err() {
            RunbookError::Aws { transient, .. } => assert!(transient),
            e => panic!("{e}"),
        }
    }
}
