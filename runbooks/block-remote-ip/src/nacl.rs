//! The EC2 side: read network ACLs into the pure model, write the planned operations.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, NetworkAcl, RuleAction, Tag};
use aws_sdk_ec2::Client;
use firebreak::error::RunbookError;
use firebreak::ids::SubnetId;
use firebreak::mutate;
use firebreak::outcome::Change;

use crate::allocate::{Entry, Nacl, Op};
use crate::ledger::{tag_key, LedgerEntry};

/// The model of one NACL, and the subnets it serves.
pub fn model(acl: &NetworkAcl) -> Option<(Nacl, Vec<String>)> {
    let id = acl.network_acl_id.clone()?;
    let entries = acl
        .entries()
        .iter()
        .filter_map(|e| {
            let cidr = e
                .cidr_block
                .as_deref()
                .or(e.ipv6_cidr_block.as_deref())?
                .parse()
                .ok()?;
            Some(Entry {
                number: e.rule_number?,
                egress: e.egress.unwrap_or(false),
                allow: e.rule_action == Some(RuleAction::Allow),
                cidr,
            })
        })
        .collect();
    let ledger: BTreeMap<i32, LedgerEntry> = acl
        .tags()
        .iter()
        .filter_map(|t| LedgerEntry::from_tag(t.key.as_deref()?, t.value.as_deref()?))
        .map(|l| (l.number, l))
        .collect();
    let subnets = acl
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id.clone())
        .collect();
    Some((
        Nacl {
            id,
            entries,
            ledger,
        },
        subnets,
    ))
}

/// The NACLs that serve the subnets (several subnets often share one).
pub async fn for_subnets(
    ec2: &Client,
    subnets: &[SubnetId],
) -> Result<Vec<NetworkAcl>, RunbookError> {
    let ids: Vec<String> = subnets.iter().map(|s| s.to_string()).collect();
    let out = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .set_values(Some(ids))
                .build(),
        )
        .send()
        .await
        .map_err(|e| firebreak::aws::aws_error("ec2:DescribeNetworkAcls", e))?;
    Ok(out.network_acls.unwrap_or_default())
}

/// Every NACL in the region, for the sweep.
pub async fn all(ec2: &Client) -> Result<Vec<NetworkAcl>, RunbookError> {
    let mut acls = Vec::new();
    let mut token = None;
    loop {
        let out = ec2
            .describe_network_acls()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| firebreak::aws::aws_error("ec2:DescribeNetworkAcls", e))?;
        acls.extend(out.network_acls.unwrap_or_default());
        token = out.next_token;
        if token.is_none() {
            return Ok(acls);
        }
    }
}

fn describe(op: &Op, nacl: &Nacl) -> Change {
    let entry = |number: &i32, egress: &bool| {
        format!(
            "rule {number} {}",
            if *egress { "outbound" } else { "inbound" }
        )
    };
    let was = |number: &i32, egress: &bool| {
        nacl.entries
            .iter()
            .find(|e| e.number == *number && e.egress == *egress)
            .map(|e| format!("{} {}", if e.allow { "allow" } else { "deny" }, e.cidr))
            .unwrap_or_else(|| "none".into())
    };
    let (what, before, after) = match op {
        Op::PutTag { number, value } => (
            format!("ledger tag {}", tag_key(*number)),
            nacl.ledger
                .get(number)
                .map(|l| l.tag_value())
                .unwrap_or_else(|| "none".into()),
            value.clone(),
        ),
        Op::DeleteTag { number } => (
            format!("ledger tag {}", tag_key(*number)),
            nacl.ledger
                .get(number)
                .map(|l| l.tag_value())
                .unwrap_or_else(|| "stale".into()),
            "none".into(),
        ),
        Op::CreateEntry {
            number,
            egress,
            cidr,
        } => (
            entry(number, egress),
            was(number, egress),
            format!("deny {cidr}"),
        ),
        Op::DeleteEntry { number, egress } => {
            (entry(number, egress), was(number, egress), "none".into())
        }
    };
    Change {
        resource: nacl.id.clone(),
        what,
        before,
        after,
    }
}

/// Runs the operations in order (the order is part of the plan: tag before entry when
/// adding, entries before tag when removing). In a dry run every call is made with
/// `DryRun` and EC2 checks permissions and parameters without changing anything.
pub async fn apply(
    ec2: &Client,
    nacl: &Nacl,
    ops: &[Op],
    dry_run: bool,
) -> Result<Vec<Change>, RunbookError> {
    let mut changes = Vec::new();
    // The before of each change is read from the NACL as the earlier operations left it.
    let mut now = nacl.clone();
    for op in ops {
        match op {
            Op::PutTag { number, value } => {
                mutate!(
                    dry_run,
                    "ec2:CreateTags",
                    ec2.create_tags()
                        .resources(&nacl.id)
                        .tags(Tag::builder().key(tag_key(*number)).value(value).build())
                )?;
            }
            Op::DeleteTag { number } => {
                mutate!(
                    dry_run,
                    "ec2:DeleteTags",
                    ec2.delete_tags()
                        .resources(&nacl.id)
                        .tags(Tag::builder().key(tag_key(*number)).build())
                )?;
            }
            Op::CreateEntry {
                number,
                egress,
                cidr,
            } => {
                let call = ec2
                    .create_network_acl_entry()
                    .network_acl_id(&nacl.id)
                    .rule_number(*number)
                    .egress(*egress)
                    .rule_action(RuleAction::Deny)
                    .protocol("-1");
                let call = if cidr.contains(':') {
                    call.ipv6_cidr_block(cidr)
                } else {
                    call.cidr_block(cidr)
                };
                mutate!(dry_run, "ec2:CreateNetworkAclEntry", call)?;
            }
            Op::DeleteEntry { number, egress } => {
                mutate!(
                    dry_run,
                    "ec2:DeleteNetworkAclEntry",
                    ec2.delete_network_acl_entry()
                        .network_acl_id(&nacl.id)
                        .rule_number(*number)
                        .egress(*egress)
                )?;
            }
        }
        changes.push(describe(op, &now));
        let ledger = match op {
            Op::PutTag { number, value } => LedgerEntry::from_tag(&tag_key(*number), value),
            _ => None,
        };
        now.apply(op, ledger);
    }
    Ok(changes)
}
