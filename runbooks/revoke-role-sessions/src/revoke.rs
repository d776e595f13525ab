//! The session-revocation policy and the checks before it is put on a role, and the
//! access-key checks. Pure functions first, then thin functions that take the IAM client.

use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::Client;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::{AccessKeyId, IamName};
use time::OffsetDateTime;

/// The name the IAM console's "Revoke active sessions" uses: people recognise it.
pub const POLICY_NAME: &str = "AWSRevokeOlderSessions";

/// IAM's limit on the total size of a role's inline policies (whitespace not counted).
pub const MAX_INLINE_CHARS: usize = 10_240;

/// The cutoff as IAM compares it: ISO 8601 UTC to the second, rounded up so that a token
/// issued earlier in the current second is also denied.
pub fn cutoff(now: OffsetDateTime) -> String {
    let ceil = if now.nanosecond() > 0 {
        now.replace_nanosecond(0).unwrap_or(now) + time::Duration::SECOND
    } else {
        now
    };
    let ceil = ceil.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        ceil.year(),
        u8::from(ceil.month()),
        ceil.day(),
        ceil.hour(),
        ceil.minute(),
        ceil.second()
    )
}

/// Deny everything to any credential of the role issued before `cutoff`: the role's
/// current sessions stop working, new sessions (after the cutoff) are unaffected.
pub fn revocation_document(cutoff: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}
        }]
    })
    .to_string()
}

/// The cutoff an existing revocation policy carries, if it is ours.
pub fn existing_cutoff(document: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(document).ok()?;
    let statement = v.get("Statement")?;
    // IAM accepts one statement as an object or a list of them.
    let statement = statement.get(0).unwrap_or(statement);
    statement
        .pointer("/Condition/DateLessThan/aws:TokenIssueTime")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
}

/// Whether a document is the revocation and nothing else: one statement that denies every
/// action on every resource to tokens issued before a time. A policy of that name saying
/// anything more is not Firebreak's (or was changed), and a release leaves it. Pure.
pub fn is_revocation_only(document: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(document) else {
        return false;
    };
    let statements = match v.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(one) => vec![one.clone()],
        None => return false,
    };
    let everything = |x: Option<&serde_json::Value>| match x {
        Some(serde_json::Value::String(s)) => s == "*",
        Some(serde_json::Value::Array(a)) => a.len() == 1 && a[0] == "*",
        _ => false,
    };
    let [st] = statements.as_slice() else {
        return false;
    };
    let only_cutoff = st
        .get("Condition")
        .and_then(|c| c.as_object())
        .is_some_and(|c| {
            c.len() == 1
                && c.get("DateLessThan")
                    .and_then(|d| d.as_object())
                    .is_some_and(|d| {
                        d.len() == 1 && d.get("aws:TokenIssueTime").is_some_and(|t| t.is_string())
                    })
        });
    st.get("Effect").and_then(|e| e.as_str()) == Some("Deny")
        && everything(st.get("Action"))
        && everything(st.get("Resource"))
        && st.get("NotAction").is_none()
        && st.get("NotResource").is_none()
        && only_cutoff
}

/// The revocation policy's document on the role, decoded; `None` when there is none (or
/// no role).
pub async fn revocation_on(iam: &Client, name: &IamName) -> Result<Option<String>, RunbookError> {
    match iam
        .get_role_policy()
        .role_name(name.as_str())
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => Ok(Some(url_decode(&out.policy_document))),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(aws_error("iam:GetRolePolicy", e)),
    }
}

pub async fn delete_revocation(iam: &Client, name: &IamName) -> Result<(), RunbookError> {
    iam.delete_role_policy()
        .role_name(name.as_str())
        .policy_name(POLICY_NAME)
        .send()
        .await
        .map_err(|e| aws_error("iam:DeleteRolePolicy", e))?;
    Ok(())
}

/// IAM returns policy documents URL-encoded (RFC 3986); decodes `%XX` and leaves the rest.
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Characters IAM counts against the inline-policy quota: whitespace is not counted.
pub fn policy_chars(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// Why a cutoff policy cannot be put on the role, if there is a reason.
pub fn size_refusal(other_policies_chars: usize, new_document: &str) -> Option<String> {
    let total = other_policies_chars + policy_chars(new_document);
    (total > MAX_INLINE_CHARS).then(|| {
        format!(
            "the role's other inline policies hold {other_policies_chars} characters; with {POLICY_NAME} the total would be {total}, over IAM's {MAX_INLINE_CHARS}"
        )
    })
}

/// What IAM says about the role, as far as revocation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFacts {
    pub arn: String,
    pub service_linked: bool,
    /// Characters of the inline policies other than ours.
    pub other_policies_chars: usize,
    /// The cutoff of our policy already on the role.
    pub current_cutoff: Option<String>,
}

/// `None` when the role does not exist.
pub async fn read_role(iam: &Client, name: &IamName) -> Result<Option<RoleFacts>, RunbookError> {
    let role = match iam.get_role().role_name(name.as_str()).send().await {
        Ok(out) => out.role,
        Err(e) if error_code(&e) == Some("NoSuchEntity") => return Ok(None),
        Err(e) => return Err(aws_error("iam:GetRole", e)),
    };
    let Some(role) = role else { return Ok(None) };
    let service_linked = role.path.starts_with("/aws-service-role/");
    let mut facts = RoleFacts {
        arn: role.arn,
        service_linked,
        other_policies_chars: 0,
        current_cutoff: None,
    };
    if service_linked {
        return Ok(Some(facts));
    }
    let mut marker = None;
    loop {
        let page = iam
            .list_role_policies()
            .role_name(name.as_str())
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error("iam:ListRolePolicies", e))?;
        for policy_name in &page.policy_names {
            let doc = iam
                .get_role_policy()
                .role_name(name.as_str())
                .policy_name(policy_name)
                .send()
                .await
                .map_err(|e| aws_error("iam:GetRolePolicy", e))?
                .policy_document;
            let doc = url_decode(&doc);
            if policy_name == POLICY_NAME {
                facts.current_cutoff = existing_cutoff(&doc);
            } else {
                facts.other_policies_chars += policy_chars(&doc);
            }
        }
        if page.is_truncated {
            marker = page.marker;
        }
        if marker.is_none() {
            break;
        }
    }
    Ok(Some(facts))
}

pub async fn put_revocation(
    iam: &Client,
    name: &IamName,
    document: &str,
) -> Result<(), RunbookError> {
    iam.put_role_policy()
        .role_name(name.as_str())
        .policy_name(POLICY_NAME)
        .policy_document(document)
        .send()
        .await
        .map_err(|e| aws_error("iam:PutRolePolicy", e))?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    UserGone,
    NotTheUsers,
    Active,
    Inactive,
}

/// The key's state, checked against the user's own list of keys: a key is only ever
/// deactivated on the user the finding names, and only if it is theirs.
pub async fn key_state(
    iam: &Client,
    user: &IamName,
    key: &AccessKeyId,
) -> Result<KeyState, RunbookError> {
    let mut marker = None;
    loop {
        let page = match iam
            .list_access_keys()
            .user_name(user.as_str())
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if error_code(&e) == Some("NoSuchEntity") => return Ok(KeyState::UserGone),
            Err(e) => return Err(aws_error("iam:ListAccessKeys", e)),
        };
        if let Some(k) = page
            .access_key_metadata
            .iter()
            .find(|k| k.access_key_id.as_deref() == Some(key.as_str()))
        {
            return Ok(match k.status {
                Some(StatusType::Active) => KeyState::Active,
                _ => KeyState::Inactive,
            });
        }
        if page.is_truncated {
            marker = page.marker;
        }
        if marker.is_none() {
            return Ok(KeyState::NotTheUsers);
        }
    }
}

pub async fn deactivate_key(
    iam: &Client,
    user: &IamName,
    key: &AccessKeyId,
) -> Result<(), RunbookError> {
    iam.update_access_key()
        .user_name(user.as_str())
        .access_key_id(key.as_str())
        .status(StatusType::Inactive)
        .send()
        .await
        .map_err(|e| aws_error("iam:UpdateAccessKey", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bare_revocation_is_lifted() {
        assert!(is_revocation_only(&revocation_document(
            "2026-12-02T10:00:00Z"
        )));
        let console = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-02T10:00:00Z"}}}}"#;
        assert!(is_revocation_only(console), "the IAM console's form");
        for other in [
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"t"}}},{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"t"}}}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"t"}}}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"t"},"Bool":{"aws:SecureTransport":"false"}}}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#,
            "not json",
        ] {
            assert!(!is_revocation_only(other), "{other}");
        }
    }
    use time::macros::datetime;

    #[test]
    fn the_cutoff_is_utc_to_the_second_rounded_up() {
        assert_eq!(
            cutoff(datetime!(2026-11-29 10:00:00.25 UTC)),
            "2026-11-29T10:00:01Z"
        );
        assert_eq!(
            cutoff(datetime!(2026-11-29 10:00:00 UTC)),
            "2026-11-29T10:00:00Z"
        );
        assert_eq!(
            cutoff(datetime!(2026-11-29 12:00:00.5 +02:00)),
            "2026-11-29T10:00:01Z"
        );
    }

    #[test]
    fn the_document_denies_everything_before_the_cutoff() {
        let doc = revocation_document("2026-11-29T10:00:01Z");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["Statement"][0]["Effect"], "Deny");
        assert_eq!(v["Statement"][0]["Action"][0], "*");
        assert_eq!(v["Statement"][0]["Resource"][0], "*");
        assert_eq!(
            existing_cutoff(&doc).as_deref(),
            Some("2026-11-29T10:00:01Z")
        );
        assert_eq!(existing_cutoff("{\"Statement\": []}"), None);
        assert_eq!(existing_cutoff("not json"), None);
    }

    #[test]
    fn the_public_equivalent_policy_has_the_same_shape() {
        let sample = include_str!(
            "../../../tests/fixtures/samples/iam-policy__AWSRevokeOlderSessions-equivalent__awsdocs-example.json"
        );
        assert!(existing_cutoff(sample).is_some(), "{sample}");
    }

    #[test]
    fn url_decoding_handles_iam_documents() {
        assert_eq!(
            url_decode("%7B%22Version%22%3A%222012-10-17%22%7D"),
            "{\"Version\":\"2012-10-17\"}"
        );
        assert_eq!(url_decode("plain {} text"), "plain {} text");
        assert_eq!(url_decode("bad %zz and %4"), "bad %zz and %4");
        assert_eq!(url_decode("%"), "%");
        assert_eq!(url_decode("caf%C3%A9"), "café");
    }

    #[test]
    fn whitespace_does_not_count_against_the_quota() {
        assert_eq!(policy_chars("{ \"a\" :\n 1 }"), 7);
        let doc = revocation_document("2026-11-29T10:00:01Z");
        assert_eq!(size_refusal(0, &doc), None);
        assert_eq!(
            size_refusal(MAX_INLINE_CHARS - policy_chars(&doc), &doc),
            None
        );
        let why = size_refusal(MAX_INLINE_CHARS - policy_chars(&doc) + 1, &doc).unwrap();
        assert!(why.contains("over IAM's 10240"), "{why}");
    }
}
