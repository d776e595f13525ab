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
    /// Account API (and then cached). `None` when they cannot be read.
    pub async fn info(&self, account: &AccountId) -> Option<AccountInfo> {
        if let Some(cached) = self.cached(account).await {
            return Some(cached);
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

    async fn cached(&self, account: &AccountId) -> Option<AccountInfo> {
        let table = self.table.as_deref()?;
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
                return None;
            }
        };
        let item = out.item()?;
        // DynamoDB deletes expired items late (up to days): the expiry is checked here.
        let expires: i64 = item.get("expiresAt")?.as_n().ok()?.parse().ok()?;
        if expires <= OffsetDateTime::now_utc().unix_timestamp() {
            return None;
        }
        let text = item.get("info")?.as_s().ok()?;
        // What comes back from AWS is checked like any input: a bad item is a miss.
        serde_json::from_str::<AccountInfo>(text)
            .ok()
            .filter(|i| &i.account_id == account)
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
