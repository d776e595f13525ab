//! The new Security Hub's findings (OCSF): status and comment through
//! `BatchUpdateFindingsV2`, addressed by `metadata.uid`. There are no user-defined fields
//! in OCSF, so the comment carries everything.

use aws_sdk_securityhub::Client;
use firebreak::aws::aws_error;
use firebreak::error::RunbookError;
use firebreak::resolution::Workflow;

use crate::ImportWait;

/// What a finding not yet in Security Hub comes back as.
const NOT_FOUND: &str = "ResourceNotFoundException";

/// The OCSF `status_id` a workflow sets: RESOLVED is Resolved (4); NOTIFIED, a person
/// told and the case open, is In Progress (2).
pub fn status_id(workflow: Workflow) -> i32 {
    match workflow {
        Workflow::Resolved => 4,
        Workflow::Notified => 2,
    }
}

/// Updates every finding in `uids` with `comment` and the status; findings the hub does
/// not have yet are waited for within `wait`'s budget. Returns the ones it would not
/// update, each with Security Hub's error code (`ResourceNotFoundException` for the ones
/// still missing when the budget ran out).
pub async fn update(
    hub: &Client,
    uids: &[String],
    comment: &str,
    status: Option<i32>,
    wait: &mut ImportWait,
) -> Result<Vec<(String, String)>, RunbookError> {
    let mut pending: Vec<String> = uids.to_vec();
    let mut refused = Vec::new();
    while !pending.is_empty() {
        let out = hub
            .batch_update_findings_v2()
            .set_metadata_uids(Some(pending.clone()))
            .comment(comment)
            .set_status_id(status)
            .send()
            .await
            .map_err(|e| aws_error("securityhub:BatchUpdateFindingsV2", e))?;
        let mut missing = Vec::new();
        for u in out.unprocessed_findings() {
            let uid = u.metadata_uid().unwrap_or("?").to_owned();
            let code = u
                .error_code()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| "unknown".into());
            if code == NOT_FOUND {
                missing.push(uid);
            } else {
                refused.push((uid, code));
            }
        }
        pending.retain(|p| missing.contains(p));
        if pending.is_empty() || wait.next().is_none() {
            break;
        }
        tracing::info!(
            action = "mark-resolved",
            findings = pending.len(),
            "OCSF findings not in Security Hub yet; waiting"
        );
        wait.take().await;
    }
    refused.extend(pending.into_iter().map(|p| (p, NOT_FOUND.to_owned())));
    Ok(refused)
}
