//! Whose account a finding is in: Organizations (name, e-mail, OU path, tags) and the
//! Account API (the security contact), cached in DynamoDB for 24 hours so that a burst of
//! findings from one account costs one lookup. A lookup that fails (Firebreak's account
//! is not Organizations' delegated administrator, the account left the organisation) is
//! logged and the plan goes on without it: enrichment never stops a containment.

use aws_sdk_account::Client as AccountClient;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_organizations::types::ParentType;
use aws_sdk_organizations::Client as OrganizationsClient;
use firebreak::account::{AccountInfo, Contact};
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::AccountId;
use time::OffsetDateTime;

/// How long a looked-up account is trusted (the item's TTL attribute says the same).
pub const CACHE_SECONDS: i64 = 24 * 60 * 60;

/// OUs deeper than this are not followed (Organizations allows five levels).
const MAX_OU_DEPTH: usize = 8;

/// How long a claim to look an account up holds: the other triages of a burst wait for
/// the claimer's answer this long at most, then look it up themselves.
const CLAIM_SECONDS: i64 = 10;
/// How often, and how many times, a triage that lost the claim reads the cache again.
const WAIT_MS: u64 = 250;
const WAITS: usize = 24;

/// What the cache holds for an account.
enum Cached {
    Fresh(Box<AccountInfo>),
    /// Another triage has claimed the lookup and not written its answer yet.
    BeingLookedUp,
    Miss,
}

pub struct AccountLookup {
    pub organizations: OrganizationsClient,
    pub contacts: AccountClient,
    pub dynamodb: DynamoDbClient,
    /// The cache table (`FIREBREAK_ACCOUNT_CACHE_TABLE`); without one every finding looks
    /// its account up.
    pub table: Option<String>,
    /// Firebreak's own account: the Account API takes no AccountId for the caller's own.
    pub home: Option<AccountId>,
}

impl AccountLookup {
    /// The account's facts: from the cache when fresh, else from Organizations and the
    /// Account API (and then cached). A burst of findings from one account costs one
    /// lookup: the first triage claims it (a conditional write), the others wait for its
    /// answer. `None` when the facts cannot be read.
    pub async fn info(&self, account: &AccountId) -> Option<AccountInfo> {
        match self.cached(account).await {
            Cached::Fresh(info) => return Some(*info),
            Cached::BeingLookedUp => {
                if let Some(info) = self.wait_for(account).await {
                    return Some(info);
                }
            }
            Cached::Miss => {
                if !self.claim(account).await {
                    if let Some(info) = self.wait_for(account).await {
                        return Some(info);
                    }
                }
            }
        }
        match self.look_up(account).await {
            Ok(info) => {
                self.remember(&info).await;
                Some(info)
            }
            Err(e) => {
                tracing::warn!(account_id = %account, error = %e, "the account could not be looked up; planning without it");
                None
            }
        }
    }

    /// Another triage is looking the account up: its answer, once cached.
    async fn wait_for(&self, account: &AccountId) -> Option<AccountInfo> {
        for _ in 0..WAITS {
            tokio::time::sleep(std::time::Duration::from_millis(WAIT_MS)).await;
            match self.cached(account).await {
                Cached::Fresh(info) => return Some(*info),
                Cached::BeingLookedUp => continue,
                Cached::Miss => return None,
            }
        }
        None
    }

    /// Claims the lookup: true when this triage may look the account up (no cache, or
    /// the write that claims it won), false when another one holds the claim.
    async fn claim(&self, account: &AccountId) -> bool {
        let Some(table) = self.table.as_deref() else {
            return true;
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let dynamodb = &self.dynamodb;
        match dynamodb
            .put_item()
            .table_name(table)
            .item("accountId", AttributeValue::S(account.to_string()))
            .item(
                "expiresAt",
                AttributeValue::N((now + CLAIM_SECONDS).to_string()),
            )
            // Only where nothing valid is: an expired answer or an abandoned claim.
            .condition_expression("attribute_not_exists(accountId) OR expiresAt < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => false,
            Err(e) => {
                tracing::warn!(account_id = %account, error = %aws_error("dynamodb:PutItem", e), "the account lookup could not be claimed; looking it up");
                true
            }
        }
    }

    async fn cached(&self, account: &AccountId) -> Cached {
        let Some(table) = self.table.as_deref() else {
            return Cached::Miss;
        };
        let dynamodb = &self.dynamodb;
        let out = match dynamodb
            .get_item()
            .table_name(table)
            .key("accountId", AttributeValue::S(account.to_string()))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(account_id = %account, error = %aws_error("dynamodb:GetItem", e), "the account cache could not be read");
                return Cached::Miss;
            }
        };
        let Some(item) = out.item() else {
            return Cached::Miss;
        };
        // DynamoDB deletes expired items late (up to days): the expiry is checked here.
        let expires: Option<i64> = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok());
        if expires.is_none_or(|e| e <= OffsetDateTime::now_utc().unix_timestamp()) {
            return Cached::Miss;
        }
        let Some(text) = item.get("info").and_then(|v| v.as_s().ok()) else {
            return Cached::BeingLookedUp;
        };
        // What comes back from AWS is checked like any input: a bad item is a miss.
        match serde_json::from_str::<AccountInfo>(text) {
            Ok(info) if &info.account_id == account => Cached::Fresh(Box::new(info)),
            _ => Cached::Miss,
        }
    }

    async fn remember(&self, info: &AccountInfo) {
        let Some(table) = self.table.as_deref() else {
            return;
        };
        let Ok(text) = serde_json::to_string(info) else {
            return;
        };
        let expires = OffsetDateTime::now_utc().unix_timestamp() + CACHE_SECONDS;
        let dynamodb = &self.dynamodb;
        if let Err(e) = dynamodb
            .put_item()
            .table_name(table)
            .item("accountId", AttributeValue::S(info.account_id.to_string()))
            .item("info", AttributeValue::S(text))
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            .send()
            .await
        {
            tracing::warn!(account_id = %info.account_id, error = %aws_error("dynamodb:PutItem", e), "the account could not be cached");
        }
    }

    async fn look_up(&self, account: &AccountId) -> Result<AccountInfo, RunbookError> {
        let organizations = &self.organizations;
        let described = organizations
            .describe_account()
            .account_id(account.as_str())
            .send()
            .await
            .map_err(|e| aws_error("organizations:DescribeAccount", e))?;
        let a = described.account();
        let tags = organizations
            .list_tags_for_resource()
            .resource_id(account.as_str())
            .send()
            .await
            .map_err(|e| aws_error("organizations:ListTagsForResource", e))?
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        Ok(AccountInfo {
            account_id: account.clone(),
            name: a.and_then(|a| a.name()).map(str::to_owned),
            email: a.and_then(|a| a.email()).map(str::to_owned),
            ou_path: self.ou_path(account).await?,
            tags,
            security_contact: self.security_contact(account).await?,
        })
    }

    /// The OUs from the root down to the account.
    async fn ou_path(&self, account: &AccountId) -> Result<Vec<String>, RunbookError> {
        let organizations = &self.organizations;
        let mut path = Vec::new();
        let mut child = account.to_string();
        for _ in 0..MAX_OU_DEPTH {
            let parents = organizations
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|e| aws_error("organizations:ListParents", e))?;
            let Some(parent) = parents.parents().first() else {
                break;
            };
            let (Some(id), Some(ParentType::OrganizationalUnit)) = (parent.id(), parent.r#type())
            else {
                break;
            };
            let ou = organizations
                .describe_organizational_unit()
                .organizational_unit_id(id)
                .send()
                .await
                .map_err(|e| aws_error("organizations:DescribeOrganizationalUnit", e))?;
            path.push(
                ou.organizational_unit()
                    .and_then(|u| u.name())
                    .unwrap_or(id)
                    .to_owned(),
            );
            child = id.to_owned();
        }
        path.reverse();
        Ok(path)
    }

    /// The security alternate contact, if the account has one.
    async fn security_contact(&self, account: &AccountId) -> Result<Option<Contact>, RunbookError> {
        let contacts = &self.contacts;
        let mut call = contacts
            .get_alternate_contact()
            .alternate_contact_type(aws_sdk_account::types::AlternateContactType::Security);
        if self.home.as_ref() != Some(account) {
            call = call.account_id(account.as_str());
        }
        match call.send().await {
            Ok(out) => Ok(out.alternate_contact().map(|c| Contact {
                name: c.name().map(str::to_owned),
                email: c.email_address().map(str::to_owned),
                phone: c.phone_number().map(str::to_owned),
                title: c.title().map(str::to_owned),
            })),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error("account:GetAlternateContact", e)),
        }
    }
}
