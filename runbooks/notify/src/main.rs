//! notify: tells people. The owning team gets one message per response (the plan's route,
//! decided by triage from the policy's routing table, else the deployment's owners topic);
//! the response team gets an alert for a finding at or above the alert band and for every
//! response that ends NOTIFIED. The words are composed in `firebreak::notify`; this file
//! publishes them to SNS, in Firebreak's own account and region.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use firebreak::aws::aws_error;
use firebreak::error::RunbookError;
use firebreak::notify::{
    approval_messages, messages, ApprovalRequest, Audience, Message, NotifyOutput, Sent,
};
use firebreak::outcome::{keyed, unkeyed, CloseRequest};

/// What notify is asked: to tell of a closed response, or (the approval gate, whose task
/// waits on the token) to ask for a yes. Chosen by the `approvalRequest` key, so a
/// malformed request is refused naming its own field.
#[derive(Debug)]
pub enum NotifyRequest {
    Approval(Box<ApprovalRequest>),
    Close(Box<CloseRequest>),
}

impl<'de> serde::Deserialize<'de> for NotifyRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match keyed(&value, "approvalRequest") {
            Some(r) => r.map(|r| NotifyRequest::Approval(Box::new(r))),
            None => unkeyed(value).map(|c| NotifyRequest::Close(Box::new(c))),
        }
    }
}

/// Where each audience's messages go: the deployment's two topics. A route names a topic
/// of the same account and region, so its ARN is the owners topic's with its name.
pub struct Topics {
    pub owners: String,
    pub response_team: String,
}

impl Topics {
    pub fn from_env() -> Result<Topics, RunbookError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| v.starts_with("arn:") && v.split(':').count() == 6)
                .ok_or_else(|| RunbookError::Config {
                    message: format!("{name} must be an SNS topic ARN"),
                })
        };
        Ok(Topics {
            owners: var("FIREBREAK_OWNERS_TOPIC_ARN")?,
            response_team: var("FIREBREAK_RESPONSE_TOPIC_ARN")?,
        })
    }

    pub fn arn_for(&self, m: &Message) -> String {
        match (m.audience, &m.topic) {
            (Audience::ResponseTeam, _) => self.response_team.clone(),
            (Audience::Owners, None) => self.owners.clone(),
            (Audience::Owners, Some(name)) => match self.owners.rsplit_once(':') {
                Some((prefix, _)) => format!("{prefix}:{name}"),
                None => self.owners.clone(),
            },
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, RunbookError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| RunbookError::Aws {
            operation: "sns:Publish",
            message: e.to_string(),
            transient: false,
        })
}

/// Composes and publishes; in a dry run composes only (a message is an effect outside
/// the account a rehearsal must not have).
pub async fn notify(
    req: &CloseRequest,
    sns: &Client,
    topics: &Topics,
) -> Result<NotifyOutput, RunbookError> {
    let ids = Ids {
        execution_id: req.execution_id.as_deref().unwrap_or(""),
        finding_id: req.plan.finding.security_hub.id.as_str(),
    };
    publish(messages(req), !req.plan.dry_run, ids, sns, topics).await
}

/// Asks for a yes. Sent in a drill's dry run too: the drill asked to exercise the gate,
/// and a person must answer it. The token stays out of every message and log line.
pub async fn ask_approval(
    req: &ApprovalRequest,
    sns: &Client,
    topics: &Topics,
) -> Result<NotifyOutput, RunbookError> {
    let ids = Ids {
        execution_id: req.execution_id.as_deref().unwrap_or(""),
        finding_id: req.plan.finding.security_hub.id.as_str(),
    };
    let now = time::OffsetDateTime::now_utc();
    publish(approval_messages(req, now), true, ids, sns, topics).await
}

#[derive(Clone, Copy)]
struct Ids<'a> {
    execution_id: &'a str,
    finding_id: &'a str,
}

async fn publish(
    all: Vec<Message>,
    send: bool,
    ids: Ids<'_>,
    sns: &Client,
    topics: &Topics,
) -> Result<NotifyOutput, RunbookError> {
    let mut sent = Vec::new();
    for m in all {
        let topic_arn = topics.arn_for(&m);
        let message_id = if !send {
            None
        } else {
            let mut call = sns
                .publish()
                .topic_arn(&topic_arn)
                .subject(&m.subject)
                .message(&m.body);
            for (k, v) in &m.attributes {
                call = call.message_attributes(k, attribute(v)?);
            }
            let out = call.send().await.map_err(|e| aws_error("sns:Publish", e))?;
            out.message_id().map(str::to_owned)
        };
        tracing::info!(
            execution_id = ids.execution_id,
            finding_id = ids.finding_id,
            action = "notify",
            audience = ?m.audience,
            topic_arn = %topic_arn,
            sent = message_id.is_some(),
            "{}",
            m.subject
        );
        sent.push(Sent {
            audience: m.audience,
            topic_arn,
            message_id,
        });
    }
    Ok(NotifyOutput {
        messages: sent,
        failure: None,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let sns = Client::new(&sdk);
    let sns = &sns;
    firebreak::runtime::serve("notify", |req: NotifyRequest| async move {
        let topics = Topics::from_env()?;
        match req {
            NotifyRequest::Approval(ask) => ask_approval(&ask, sns, &topics).await,
            NotifyRequest::Close(req) => notify(&req, sns, &topics).await,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use firebreak::outcome::OutcomeStatus;

    fn topics() -> Topics {
        Topics {
            owners: "arn:aws:sns:us-east-1:123456789012:firebreak-owners".into(),
            response_team: "arn:aws:sns:us-east-1:123456789012:firebreak-response".into(),
        }
    }

    fn request(dry_run: bool) -> CloseRequest {
        let status = if dry_run {
            OutcomeStatus::DryRun
        } else {
            OutcomeStatus::Done
        };
        firebreak::fixtures::fixture_close("ec2-network-backdoor.json", dry_run, status).unwrap()
    }

    #[tokio::test]
    async fn each_message_goes_to_its_audiences_topic() {
        let publish = mock!(Client::publish)
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
        let mut req = request(false);
        req.plan.notify.owners_topic = Some("firebreak-payments".into());
        let out = notify(&req, &sns, &topics()).await.unwrap();
        let arns: Vec<&str> = out.messages.iter().map(|m| m.topic_arn.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:sns:us-east-1:123456789012:firebreak-payments",
                "arn:aws:sns:us-east-1:123456789012:firebreak-response"
            ]
        );
        assert_eq!(publish.num_calls(), 2);
        assert!(out
            .messages
            .iter()
            .all(|m| m.message_id.as_deref() == Some("m-1")));
    }

    #[tokio::test]
    async fn a_dry_run_composes_and_sends_nothing() {
        let publish = mock!(Client::publish).then_output(|| PublishOutput::builder().build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
        let out = notify(&request(true), &sns, &topics()).await.unwrap();
        assert_eq!(publish.num_calls(), 0);
        assert!(!out.messages.is_empty());
        assert!(out.messages.iter().all(|m| m.message_id.is_none()));
    }
}
