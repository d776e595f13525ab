//! contain-s3: AWS's guidance for S3 findings, as far as it is safe to automate.
//!
//! - `block-bucket-public-access`: all four S3 Block Public Access settings on the bucket.
//!   The prior settings go on a bucket tag first, so a release can put them back; a re-run
//!   changes nothing and never overwrites that record.
//! - `tag-s3-object`: a tag on the malicious object naming the threats, which lifecycle
//!   rules, bucket policies (`s3:ExistingObjectTag`) and people can act on. The object is
//!   kept: it is the evidence.
//!
//! Bucket names are global: every call names the finding's account as the expected bucket
//! owner, so a finding that names another account's bucket changes nothing there (S3
//! answers 403).

use aws_sdk_s3::types::{PublicAccessBlockConfiguration, Tag, Tagging};
use aws_sdk_s3::Client;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::{AccountId, BucketName, ObjectKey, ObjectVersionId};
use firebreak::outcome::{ActionOutcome, ActionRequest, Change, OutcomeStatus, RunbookOutput};
use firebreak::plan::PlannedAction;
use firebreak::policy::ActionKind;
use firebreak::reach::Reach;
use time::OffsetDateTime;

/// The bucket's Block Public Access settings before Firebreak changed them (`none` when
/// it had no configuration): what a release restores.
pub const PRIOR_TAG: &str = "firebreak:prior-public-access-block";
/// The finding that closed the bucket.
pub const FINDING_TAG: &str = "firebreak:contained-for";
/// On a malicious object: the threats found in it.
pub const MALWARE_TAG: &str = "firebreak:malware";
/// S3's limits on tags: 50 per bucket, 10 per object, values of 256 characters.
const BUCKET_TAG_LIMIT: usize = 50;
const OBJECT_TAG_LIMIT: usize = 10;
const TAG_VALUE_MAX: usize = 256;

/// The four settings, in S3's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    block_public_acls: bool,
    ignore_public_acls: bool,
    block_public_policy: bool,
    restrict_public_buckets: bool,
}

impl Settings {
    const ALL_ON: Settings = Settings {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    fn of(c: &PublicAccessBlockConfiguration) -> Settings {
        Settings {
            block_public_acls: c.block_public_acls() == Some(true),
            ignore_public_acls: c.ignore_public_acls() == Some(true),
            block_public_policy: c.block_public_policy() == Some(true),
            restrict_public_buckets: c.restrict_public_buckets() == Some(true),
        }
    }

    /// As the tag keeps it: `BlockPublicAcls=false IgnorePublicAcls=false …`.
    fn record(self) -> String {
        format!(
            "BlockPublicAcls={} IgnorePublicAcls={} BlockPublicPolicy={} RestrictPublicBuckets={}",
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets
        )
    }
}

/// A tag value S3 accepts: letters, digits, spaces and `+ - = . _ : / @`; anything else
/// becomes a space, runs of spaces one, cut to 256 characters.
pub fn tag_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " +-=._:/@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = mapped.split_whitespace().collect();
    words.join(" ").chars().take(TAG_VALUE_MAX).collect()
}

/// A request S3's model refuses to build (a tag without key or value): never sent.
fn unbuilt(operation: &'static str, e: impl std::fmt::Display) -> RunbookError {
    RunbookError::Aws {
        operation,
        message: format!("the request could not be built: {e}"),
        transient: false,
    }
}

fn tag(operation: &'static str, key: &str, value: &str) -> Result<Tag, RunbookError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| unbuilt(operation, e))
}

fn tagging(operation: &'static str, tags: Vec<Tag>) -> Result<Tagging, RunbookError> {
    Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|e| unbuilt(operation, e))
}

/// A limit of S3's that leaves the record unwritable: refused before any change.
fn over_limit(operation: &'static str, message: String) -> RunbookError {
    RunbookError::Aws {
        operation,
        message,
        transient: false,
    }
}

fn gone(what: String) -> RunbookError {
    RunbookError::TargetGone {
        error_type: "S3TargetNotFound",
        message: format!("{what} no longer exists; nothing was changed"),
    }
}

/// The bucket's current settings; `None` when it has no configuration (all off).
async fn read_settings(
    s3: &Client,
    bucket: &BucketName,
    owner: &AccountId,
) -> Result<Option<Settings>, RunbookError> {
    match s3
        .get_public_access_block()
        .bucket(bucket.as_str())
        .expected_bucket_owner(owner.as_str())
        .send()
        .await
    {
        Ok(out) => Ok(out.public_access_block_configuration().map(Settings::of)),
        Err(e) if error_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
        Err(e) if error_code(&e) == Some("NoSuchBucket") => {
            Err(gone(format!("S3 bucket {bucket}")))
        }
        Err(e) => Err(aws_error("s3:GetBucketPublicAccessBlock", e)),
    }
}

async fn read_bucket_tags(
    s3: &Client,
    bucket: &BucketName,
    owner: &AccountId,
) -> Result<Vec<Tag>, RunbookError> {
    match s3
        .get_bucket_tagging()
        .bucket(bucket.as_str())
        .expected_bucket_owner(owner.as_str())
        .send()
        .await
    {
        Ok(out) => Ok(out.tag_set().to_vec()),
        Err(e) if error_code(&e) == Some("NoSuchTagSet") => Ok(Vec::new()),
        Err(e) => Err(aws_error("s3:GetBucketTagging", e)),
    }
}

async fn block_bucket(
    req: &ActionRequest,
    bucket: &BucketName,
    s3: &Client,
) -> Result<ActionOutcome, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let plan = &req.plan;
    let owner = &plan.finding.account_id;
    let finding_id = plan.finding.security_hub.id.as_str();
    let prior = read_settings(s3, bucket, owner).await?;
    let prior_record = prior.map_or_else(|| "none".to_owned(), Settings::record);
    let tags = read_bucket_tags(s3, bucket, owner).await?;
    let recorded = tags
        .iter()
        .find(|t| t.key() == PRIOR_TAG)
        .map(|t| t.value().to_owned());
    let mut changes = Vec::new();
    let (status, summary) = if prior == Some(Settings::ALL_ON) {
        let why = match &recorded {
            Some(r) => format!("Firebreak closed it before (prior settings {r})"),
            None => "all four settings were already on".into(),
        };
        (
            OutcomeStatus::AlreadyDone,
            format!("S3 bucket {bucket} blocks all public access: {why}; nothing changed"),
        )
    } else if plan.dry_run {
        (
            OutcomeStatus::DryRun,
            format!("dry run: would turn on all four Block Public Access settings of S3 bucket {bucket} (now {prior_record})"),
        )
    } else {
        // The record first: if it cannot be written, nothing is changed. PutBucketTagging
        // replaces the whole set, so the bucket's own tags go back with ours.
        if recorded.is_none() {
            if tags.len() + 2 > BUCKET_TAG_LIMIT {
                return Err(over_limit(
                    "s3:PutBucketTagging",
                    format!("S3 bucket {bucket} has {} tags; S3 allows {BUCKET_TAG_LIMIT}, so the prior settings cannot be recorded and nothing was changed", tags.len()),
                ));
            }
            let mut set: Vec<Tag> = tags
                .iter()
                .filter(|t| t.key() != FINDING_TAG)
                .cloned()
                .collect();
            set.push(tag("s3:PutBucketTagging", PRIOR_TAG, &prior_record)?);
            set.push(tag(
                "s3:PutBucketTagging",
                FINDING_TAG,
                &tag_value(finding_id),
            )?);
            s3.put_bucket_tagging()
                .bucket(bucket.as_str())
                .expected_bucket_owner(owner.as_str())
                .tagging(tagging("s3:PutBucketTagging", set)?)
                .send()
                .await
                .map_err(|e| aws_error("s3:PutBucketTagging", e))?;
            changes.push(Change {
                resource: format!("arn:{}:s3:::{bucket}", plan.finding.partition),
                what: "tag".into(),
                before: "none".into(),
                after: format!("{PRIOR_TAG}={prior_record}"),
            });
        }
        let all_on = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        s3.put_public_access_block()
            .bucket(bucket.as_str())
            .expected_bucket_owner(owner.as_str())
            .public_access_block_configuration(all_on)
            .send()
            .await
            .map_err(|e| aws_error("s3:PutBucketPublicAccessBlock", e).after_changes(&changes))?;
        changes.push(Change {
            resource: format!("arn:{}:s3:::{bucket}", plan.finding.partition),
            what: "block public access".into(),
            before: prior_record.clone(),
            after: Settings::ALL_ON.record(),
        });
        (
            OutcomeStatus::Done,
            format!("blocked all public access to S3 bucket {bucket} (before: {prior_record}; kept on tag {PRIOR_TAG})"),
        )
    };
    log(
        req,
        "block-bucket-public-access",
        &format!("s3://{bucket}"),
        status,
        &summary,
    );
    Ok(ActionOutcome {
        action: ActionKind::BlockBucketPublicAccess,
        status,
        target: bucket.to_string(),
        summary,
        changes,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    })
}

/// One planned object: what `tag_object` needs.
struct ObjectRef<'a> {
    bucket: &'a BucketName,
    key: &'a ObjectKey,
    version_id: Option<&'a ObjectVersionId>,
    threats: &'a [String],
}

impl ObjectRef<'_> {
    fn uri(&self) -> String {
        match self.version_id {
            Some(v) => format!("s3://{}/{} (version {v})", self.bucket, self.key),
            None => format!("s3://{}/{}", self.bucket, self.key),
        }
    }
}

async fn tag_object(
    req: &ActionRequest,
    o: &ObjectRef<'_>,
    s3: &Client,
) -> Result<ActionOutcome, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let plan = &req.plan;
    let owner = &plan.finding.account_id;
    let uri = o.uri();
    let threats = if o.threats.is_empty() {
        "malware".to_owned()
    } else {
        tag_value(&o.threats.join(" / "))
    };
    let tags = match s3
        .get_object_tagging()
        .bucket(o.bucket.as_str())
        .key(o.key.as_str())
        .set_version_id(o.version_id.map(|v| v.to_string()))
        .expected_bucket_owner(owner.as_str())
        .send()
        .await
    {
        Ok(out) => out.tag_set().to_vec(),
        Err(e)
            if matches!(
                error_code(&e),
                Some("NoSuchKey" | "NoSuchVersion" | "NoSuchBucket")
            ) =>
        {
            return Err(gone(format!("S3 object {uri}")))
        }
        Err(e) => return Err(aws_error("s3:GetObjectTagging", e)),
    };
    let mut changes = Vec::new();
    let (status, summary) = if let Some(t) = tags.iter().find(|t| t.key() == MALWARE_TAG) {
        (
            OutcomeStatus::AlreadyDone,
            format!(
                "S3 object {uri} is already tagged {MALWARE_TAG}={}; nothing changed",
                t.value()
            ),
        )
    } else if plan.dry_run {
        (
            OutcomeStatus::DryRun,
            format!("dry run: would tag S3 object {uri} {MALWARE_TAG}={threats}"),
        )
    } else if tags.len() >= OBJECT_TAG_LIMIT {
        return Err(over_limit(
            "s3:PutObjectTagging",
            format!("S3 object {uri} has {} tags, S3's limit: it cannot be tagged {MALWARE_TAG} and nothing was changed", tags.len()),
        ));
    } else {
        let mut set = tags.clone();
        set.push(tag("s3:PutObjectTagging", MALWARE_TAG, &threats)?);
        s3.put_object_tagging()
            .bucket(o.bucket.as_str())
            .key(o.key.as_str())
            .set_version_id(o.version_id.map(|v| v.to_string()))
            .expected_bucket_owner(owner.as_str())
            .tagging(tagging("s3:PutObjectTagging", set)?)
            .send()
            .await
            .map_err(|e| aws_error("s3:PutObjectTagging", e))?;
        changes.push(Change {
            resource: format!("arn:{}:s3:::{}/{}", plan.finding.partition, o.bucket, o.key),
            what: "tag".into(),
            before: "none".into(),
            after: format!("{MALWARE_TAG}={threats}"),
        });
        (
            OutcomeStatus::Done,
            format!(
                "tagged S3 object {uri} {MALWARE_TAG}={threats}; the object is kept as evidence"
            ),
        )
    };
    log(req, "tag-s3-object", &uri, status, &summary);
    Ok(ActionOutcome {
        action: ActionKind::TagS3Object,
        status,
        target: uri,
        summary,
        changes,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    })
}

fn log(req: &ActionRequest, action: &str, target: &str, status: OutcomeStatus, summary: &str) {
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id = req.plan.finding.security_hub.id.as_str(),
        action,
        target,
        status = ?status,
        "{summary}"
    );
}

/// What one planned S3 action acts on.
enum S3Target<'a> {
    Bucket(&'a BucketName),
    Object(ObjectRef<'a>),
}

fn targets(plan: &firebreak::plan::Plan) -> Vec<S3Target<'_>> {
    let buckets = plan
        .actions_of(ActionKind::BlockBucketPublicAccess)
        .filter_map(|a| match a {
            PlannedAction::BlockBucketPublicAccess { bucket } => Some(S3Target::Bucket(bucket)),
            _ => None,
        });
    let objects = plan
        .actions_of(ActionKind::TagS3Object)
        .filter_map(|a| match a {
            PlannedAction::TagS3Object {
                bucket,
                key,
                version_id,
                threats,
            } => Some(S3Target::Object(ObjectRef {
                bucket,
                key,
                version_id: version_id.as_ref(),
                threats,
            })),
            _ => None,
        });
    buckets.chain(objects).collect()
}

async fn contain_one(
    req: &ActionRequest,
    target: S3Target<'_>,
    s3: &Client,
) -> Result<ActionOutcome, RunbookError> {
    match target {
        S3Target::Bucket(bucket) => block_bucket(req, bucket, s3).await,
        S3Target::Object(o) => tag_object(req, &o, s3).await,
    }
}

/// Every S3 action the plan holds, buckets first (closing a bucket matters more than
/// labelling one object in it), one outcome each; a failure carries what was changed.
pub async fn contain_planned(
    req: &ActionRequest,
    s3: &Client,
) -> Result<RunbookOutput, RunbookError> {
    RunbookOutput::each(
        ActionKind::BlockBucketPublicAccess,
        targets(&req.plan),
        "the plan has no S3 action",
        |t| contain_one(req, t, s3),
    )
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let reach = Reach::from_env(sdk, "contain-s3");
    let reach = &reach;
    firebreak::runtime::serve("contain-s3", |req: ActionRequest| async move {
        // S3 of the finding's account and region.
        let config = reach
            .for_plan(&req.plan, req.execution_id.as_deref())
            .await?;
        let s3 = Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(firebreak::aws::s3_path_style())
                .build(),
        );
        contain_planned(&req, &s3).await
    })
    .await
}

#[cfg(test)]
mod tests {
    //! Against mocked S3 answers; the local account's behaviour is in the e2e tests.
    use super::*;
    use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput;
    use aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput;
    use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;
    use aws_sdk_s3::operation::put_bucket_tagging::PutBucketTaggingOutput;
    use aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingOutput;
    use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

    fn request(dry_run: bool) -> ActionRequest {
        ActionRequest {
            plan: firebreak::fixtures::fixture_plan("s3-malicious-object.json", dry_run).unwrap(),
            execution_id: Some("exec-1".into()),
        }
    }

    fn t(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build().unwrap()
    }

    fn settings(all_on: bool) -> Rule {
        mock!(Client::get_public_access_block)
            .match_requests(|r| r.expected_bucket_owner() == Some("111122223333"))
            .then_output(move || {
                let c = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(all_on)
                    .ignore_public_acls(all_on)
                    .block_public_policy(all_on)
                    .restrict_public_buckets(all_on)
                    .build();
                GetPublicAccessBlockOutput::builder()
                    .public_access_block_configuration(c)
                    .build()
            })
    }

    fn bucket_tags(recorded: bool) -> Rule {
        mock!(Client::get_bucket_tagging).then_output(move || {
            let mut out = GetBucketTaggingOutput::builder().tag_set(t("team", "uploads"));
            if recorded {
                out = out.tag_set(t(PRIOR_TAG, "none"));
            }
            out.build().unwrap()
        })
    }

    fn object_tags(tagged: bool) -> Rule {
        mock!(Client::get_object_tagging)
            .match_requests(|r| r.version_id() == Some("3HL4kqtJvjVBH40Nrjfkd"))
            .then_output(move || {
                let mut out = GetObjectTaggingOutput::builder().tag_set(t("source", "web"));
                if tagged {
                    out = out.tag_set(t(MALWARE_TAG, "EICAR-Test-File not a virus"));
                }
                out.build().unwrap()
            })
    }

    fn client_of(rules: &[Rule]) -> Client {
        mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            &rules.iter().collect::<Vec<_>>()
        )
    }

    /// The calls of the three writes (bucket tags, public access block, object tags) when
    /// they sit after the three reads.
    fn writes_made(rules: &[Rule; 6]) -> (usize, usize, usize) {
        (
            rules[3].num_calls(),
            rules[4].num_calls(),
            rules[5].num_calls(),
        )
    }

    fn writes() -> [Rule; 3] {
        [
            mock!(Client::put_bucket_tagging)
                .match_requests(|r| {
                    let set = r.tagging().map(|t| t.tag_set()).unwrap_or_default();
                    // The bucket's own tag goes back with the record.
                    set.iter().any(|t| t.key() == "team")
                        && set.iter().any(|t| {
                            t.key() == PRIOR_TAG
                                && t.value() == "BlockPublicAcls=false IgnorePublicAcls=false BlockPublicPolicy=false RestrictPublicBuckets=false"
                        })
                })
                .then_output(|| PutBucketTaggingOutput::builder().build()),
            mock!(Client::put_public_access_block)
                .match_requests(|r| {
                    r.public_access_block_configuration()
                        .map(Settings::of)
                        == Some(Settings::ALL_ON)
                        && r.expected_bucket_owner() == Some("111122223333")
                })
                .then_output(|| PutPublicAccessBlockOutput::builder().build()),
            mock!(Client::put_object_tagging)
                .match_requests(|r| {
                    let set = r.tagging().map(|t| t.tag_set()).unwrap_or_default();
                    set.len() == 2
                        && set.iter().any(|t| {
                            t.key() == MALWARE_TAG && t.value() == "EICAR-Test-File not a virus"
                        })
                })
                .then_output(|| PutObjectTaggingOutput::builder().build()),
        ]
    }

    #[tokio::test]
    async fn records_the_prior_settings_blocks_the_bucket_and_tags_the_object() {
        let [tag_bucket, block, tag_object] = writes();
        let rules = [
            settings(false),
            bucket_tags(false),
            object_tags(false),
            tag_bucket,
            block,
            tag_object,
        ];
        let client = client_of(&rules);
        let out = contain_planned(&request(false), &client).await.unwrap();
        let statuses: Vec<_> = out.outcomes.iter().map(|o| (o.action, o.status)).collect();
        assert_eq!(
            statuses,
            vec![
                (ActionKind::BlockBucketPublicAccess, OutcomeStatus::Done),
                (ActionKind::TagS3Object, OutcomeStatus::Done)
            ],
            "{out:?}"
        );
        assert_eq!(out.outcomes[0].changes.len(), 2);
        assert_eq!(writes_made(&rules), (1, 1, 1));
    }

    #[tokio::test]
    async fn a_closed_bucket_and_a_tagged_object_are_already_done() {
        let [tag_bucket, block, tag_object] = writes();
        let rules = [
            settings(true),
            bucket_tags(true),
            object_tags(true),
            tag_bucket,
            block,
            tag_object,
        ];
        let client = client_of(&rules);
        let out = contain_planned(&request(false), &client).await.unwrap();
        assert!(
            out.outcomes
                .iter()
                .all(|o| o.status == OutcomeStatus::AlreadyDone && o.changes.is_empty()),
            "{out:?}"
        );
        assert!(out.outcomes[0]
            .summary
            .contains("Firebreak closed it before"));
        assert_eq!(writes_made(&rules), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_changes_nothing() {
        let [tag_bucket, block, tag_object] = writes();
        let rules = [
            settings(false),
            bucket_tags(false),
            object_tags(false),
            tag_bucket,
            block,
            tag_object,
        ];
        let client = client_of(&rules);
        let out = contain_planned(&request(true), &client).await.unwrap();
        assert!(
            out.outcomes
                .iter()
                .all(|o| o.status == OutcomeStatus::DryRun),
            "{out:?}"
        );
        assert_eq!(writes_made(&rules), (0, 0, 0));
    }

    #[test]
    fn tag_values_keep_to_the_characters_s3_accepts() {
        assert_eq!(
            tag_value("EICAR-Test-File (not a virus)"),
            "EICAR-Test-File not a virus"
        );
        assert_eq!(tag_value("a,b;c"), "a b c");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }
}
