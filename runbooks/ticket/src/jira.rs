//! Jira Cloud's REST API (v3): the three calls Firebreak makes, over the AWS SDK's own
//! HTTPS stack (rustls with ring), so the Lambda carries no second TLS library.

use std::time::Duration;

use aws_smithy_http_client::{tls, Connector};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::http::Request;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use firebreak::error::RunbookError;
use firebreak::ticket::{check_issue_key, JiraCredentials};
use serde_json::Value;

/// One call to Jira, connection and answer, at most this long; the state machine retries.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Jira's answers to these calls are small; a larger one is not Jira's.
const MAX_ANSWER: usize = 1024 * 1024;

pub struct Jira {
    credentials: JiraCredentials,
    connector: SharedHttpConnector,
}

/// The SDK's connector, as every AWS client of the runbooks has it.
pub fn https_connector() -> SharedHttpConnector {
    SharedHttpConnector::new(
        Connector::builder()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build(),
    )
}

fn failed(operation: &'static str, message: String, transient: bool) -> RunbookError {
    RunbookError::Aws {
        operation,
        message,
        transient,
    }
}

/// Jira's own words for a refusal: `errorMessages` and `errors` (field: reason).
fn jira_reason(answer: &Value) -> String {
    let mut parts: Vec<String> = answer["errorMessages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = answer["errors"].as_object() {
        for (field, why) in errors {
            parts.push(format!("{field}: {}", why.as_str().unwrap_or("refused")));
        }
    }
    let joined = parts.join("; ");
    joined.chars().take(500).collect()
}

impl Jira {
    pub fn new(credentials: JiraCredentials, connector: SharedHttpConnector) -> Jira {
        Jira {
            credentials,
            connector,
        }
    }

    pub fn browse_url(&self, key: &str) -> String {
        self.credentials.browse_url(key)
    }

    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<Value, RunbookError> {
        let mut request = Request::new(SdkBody::from(body.to_string()));
        request
            .set_method("POST")
            .map_err(|e| failed(operation, e.to_string(), false))?;
        request
            .set_uri(format!("{}{path}", self.credentials.base_url))
            .map_err(|e| failed(operation, e.to_string(), false))?;
        let headers = request.headers_mut();
        headers.insert("authorization", self.credentials.authorization());
        headers.insert("content-type", "application/json");
        headers.insert("accept", "application/json");
        headers.insert("user-agent", "firebreak-ticket");
        let call = async {
            let response = self
                .connector
                .call(request)
                .await
                .map_err(|e| failed(operation, format!("Jira did not answer: {e}"), true))?;
            let status = response.status().as_u16();
            let bytes = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|e| failed(operation, format!("Jira's answer broke off: {e}"), true))?
                .into_bytes();
            Ok::<_, RunbookError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                failed(
                    operation,
                    format!("no answer within {CALL_TIMEOUT:?}"),
                    true,
                )
            })??;
        if bytes.len() > MAX_ANSWER {
            return Err(failed(
                operation,
                format!("HTTP {status}: an answer of {} bytes", bytes.len()),
                false,
            ));
        }
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(answer),
            401 | 403 => Err(failed(
                operation,
                format!("HTTP {status}: Jira refused the credentials in the secret (check the email and API token, and the account's access to the project)"),
                false,
            )),
            429 | 500..=599 => Err(failed(
                operation,
                format!("HTTP {status}: {}", jira_reason(&answer)),
                true,
            )),
            _ => Err(failed(
                operation,
                format!("HTTP {status}: {}", jira_reason(&answer)),
                false,
            )),
        }
    }

    /// The key of the oldest issue the search finds, checked.
    pub async fn find(&self, search: &Value) -> Result<Option<String>, RunbookError> {
        let answer = self
            .post("jira:SearchIssues", "/rest/api/3/search/jql", search)
            .await?;
        match answer["issues"][0]["key"].as_str() {
            None => Ok(None),
            Some(key) => check_issue_key(key)
                .map(|()| Some(key.to_owned()))
                .map_err(|e| failed("jira:SearchIssues", e, false)),
        }
    }

    pub async fn create(&self, issue: &Value) -> Result<String, RunbookError> {
        let answer = self
            .post("jira:CreateIssue", "/rest/api/3/issue", issue)
            .await?;
        let key = answer["key"].as_str().unwrap_or_default();
        check_issue_key(key).map_err(|e| failed("jira:CreateIssue", e, false))?;
        Ok(key.to_owned())
    }

    /// `key` was checked ([`check_issue_key`]) before it goes into the path.
    pub async fn comment(&self, key: &str, comment: &Value) -> Result<(), RunbookError> {
        check_issue_key(key).map_err(|e| failed("jira:AddComment", e, false))?;
        self.post(
            "jira:AddComment",
            &format!("/rest/api/3/issue/{key}/comment"),
            comment,
        )
        .await
        .map(|_| ())
    }
}
