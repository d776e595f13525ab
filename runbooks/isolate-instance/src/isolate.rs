//! Isolating an instance, the way AWS's own containment runbook does it:
//!
//! 1. evidence first: a snapshot of every EBS volume, tagged with the finding;
//!    termination protection on; shutdown from inside the instance stops it (never
//!    terminates it); every volume kept on termination (`DeleteOnTermination=false`);
//!    then out of service (`service.rs`): Standby in its Auto Scaling group, out of its
//!    target groups, where it served recorded for release;
//! 2. the original security groups of every interface recorded on the instance as tags,
//!    once, so that a release can put them back;
//! 3. per interface, first into an allow-all group — that turns tracked connections into
//!    untracked ones — then into the VPC's isolation group, which has no rules at all
//!    (IPv4 and IPv6 egress revoked), so the untracked connections drop;
//! 4. tags that say who isolated it, when and why.
//!
//! Every step checks first and changes only what differs, so a second run changes nothing.
//! In a dry run every change is an EC2 `DryRun` call: permissions are checked, nothing moves.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    AttributeBooleanValue, AttributeValue, EbsInstanceBlockDeviceSpecification, Filter,
    InstanceAttributeName, InstanceBlockDeviceMappingSpecification, IpPermission, IpRange,
    Ipv6Range, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use firebreak::aws::{aws_error, done_if, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::{InstanceId, NetworkInterfaceId, SecurityGroupId, VpcId};
use firebreak::mutate;
use firebreak::outcome::Change;

pub const ORIGINAL_GROUPS_TAG: &str = "firebreak:original-groups";
pub const ISOLATION_GROUP_PREFIX: &str = "firebreak-isolation-";
pub const ALLOW_ALL_GROUP_PREFIX: &str = "firebreak-allow-all-";
const TAG_VALUE_MAX: usize = 256;

/// The instance as EC2 reports it now.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub instance_id: InstanceId,
    pub interfaces: Vec<InterfaceView>,
    pub volumes: Vec<String>,
    /// EBS devices the instance's termination would delete (`DeleteOnTermination`).
    pub deleted_on_termination: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceView {
    pub id: NetworkInterfaceId,
    pub vpc_id: VpcId,
    pub groups: Vec<SecurityGroupId>,
}

/// What to do and what was found, for the outcome.
pub struct Run<'a> {
    pub ec2: &'a Client,
    pub autoscaling: &'a aws_sdk_autoscaling::Client,
    pub elb: &'a aws_sdk_elasticloadbalancingv2::Client,
    pub classic: &'a aws_sdk_elasticloadbalancing::Client,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// What could not be done and why, for the outcome's summary.
    pub warnings: Vec<String>,
}

// ---- pure helpers -------------------------------------------------------------------------

/// Tags that record each interface's groups: `firebreak:original-groups:eni-…` =
/// `sg-a,sg-b`, cut into `…:2`, `…:3` when longer than a tag value may be.
pub fn original_group_tags(interfaces: &[InterfaceView]) -> Vec<(String, String)> {
    interfaces
        .iter()
        .flat_map(|iface| {
            chunked_tags(
                &format!("{ORIGINAL_GROUPS_TAG}:{}", iface.id),
                iface.groups.iter().map(SecurityGroupId::as_str),
                ',',
            )
        })
        .collect()
}

/// `key` = the items joined by `sep`, cut into `key:2`, `key:3`, … where a tag value would
/// be longer than EC2 allows.
pub fn chunked_tags<'a>(
    key: &str,
    items: impl IntoIterator<Item = &'a str>,
    sep: char,
) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    let mut chunk = String::new();
    let mut part = 1;
    for item in items {
        if !chunk.is_empty() && chunk.len() + 1 + item.len() > TAG_VALUE_MAX {
            tags.push((part_key(key, part), std::mem::take(&mut chunk)));
            part += 1;
        }
        if !chunk.is_empty() {
            chunk.push(sep);
        }
        chunk.push_str(item);
    }
    tags.push((part_key(key, part), chunk));
    tags
}

fn part_key(key: &str, part: usize) -> String {
    if part == 1 {
        key.to_owned()
    } else {
        format!("{key}:{part}")
    }
}

/// Whether the originals were recorded by an earlier run: never overwrite them with the
/// isolation group.
pub fn originals_recorded(tags: &BTreeMap<String, String>) -> bool {
    tags.keys().any(|k| k.starts_with(ORIGINAL_GROUPS_TAG))
}

/// Tag values are at most 256 characters; finding ids may be 512.
pub fn tag_value(value: &str) -> String {
    value.chars().take(TAG_VALUE_MAX).collect()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(tag_value(value)).build()
}

// ---- AWS reads ----------------------------------------------------------------------------

pub async fn describe(ec2: &Client, id: &InstanceId) -> Result<Option<InstanceView>, RunbookError> {
    let out = match ec2
        .describe_instances()
        .instance_ids(id.as_str())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
            return Ok(None)
        }
        Err(e) => return Err(aws_error("ec2:DescribeInstances", e)),
    };
    let Some(inst) = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id.as_str()))
    else {
        return Ok(None);
    };
    let mut interfaces = Vec::new();
    for eni in inst.network_interfaces() {
        // Values from AWS are checked too; an interface we cannot name is not touched.
        let (Some(eid), Some(vpc)) = (
            eni.network_interface_id()
                .and_then(|v| NetworkInterfaceId::parse(v).ok()),
            eni.vpc_id().and_then(|v| VpcId::parse(v).ok()),
        ) else {
            tracing::warn!(instance_id = %id, "interface without a valid id or VPC skipped");
            continue;
        };
        let groups = eni
            .groups()
            .iter()
            .filter_map(|g| g.group_id().and_then(|v| SecurityGroupId::parse(v).ok()))
            .collect();
        interfaces.push(InterfaceView {
            id: eid,
            vpc_id: vpc,
            groups,
        });
    }
    Ok(Some(InstanceView {
        instance_id: id.clone(),
        interfaces,
        volumes: inst
            .block_device_mappings()
            .iter()
            .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(str::to_owned))
            .collect(),
        deleted_on_termination: inst
            .block_device_mappings()
            .iter()
            .filter(|b| b.ebs().and_then(|e| e.delete_on_termination()) == Some(true))
            .filter_map(|b| b.device_name().map(str::to_owned))
            .collect(),
        tags: inst
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
            .collect(),
    }))
}

/// A Firebreak group of the VPC as EC2 reports it, with its rules.
struct FoundGroup {
    id: SecurityGroupId,
    ingress: Vec<IpPermission>,
    egress: Vec<IpPermission>,
}

/// Both of the VPC's Firebreak groups in one read, by name.
async fn find_groups(
    ec2: &Client,
    vpc: &VpcId,
    names: [&str; 2],
) -> Result<BTreeMap<String, FoundGroup>, RunbookError> {
    let out = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(vpc.as_str())
                .build(),
        )
        .filters(
            Filter::builder()
                .name("group-name")
                .set_values(Some(names.iter().map(|n| n.to_string()).collect()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("ec2:DescribeSecurityGroups", e))?;
    Ok(out
        .security_groups()
        .iter()
        .filter_map(|g| {
            let id = g.group_id().and_then(|v| SecurityGroupId::parse(v).ok())?;
            Some((
                g.group_name()?.to_owned(),
                FoundGroup {
                    id,
                    ingress: g.ip_permissions().to_vec(),
                    egress: g.ip_permissions_egress().to_vec(),
                },
            ))
        })
        .collect())
}

/// The ids of the VPC's Firebreak groups (isolation and allow-all), in one read.
pub async fn firebreak_groups(
    ec2: &Client,
    vpc: &VpcId,
) -> Result<std::collections::BTreeSet<SecurityGroupId>, RunbookError> {
    let allow_name = format!("{ALLOW_ALL_GROUP_PREFIX}{vpc}");
    let isolation_name = format!("{ISOLATION_GROUP_PREFIX}{vpc}");
    Ok(find_groups(ec2, vpc, [&allow_name, &isolation_name])
        .await?
        .into_values()
        .map(|g| g.id)
        .collect())
}

// ---- the steps ----------------------------------------------------------------------------

/// Step 1: a snapshot of each volume, unless this finding's snapshot of it exists. One
/// read for all volumes; each snapshot is tagged as it is created.
pub async fn snapshot_volumes(
    run: &mut Run<'_>,
    view: &InstanceView,
    finding_id: &str,
) -> Result<(), RunbookError> {
    if view.volumes.is_empty() {
        return Ok(());
    }
    let existing = run
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("volume-id")
                .set_values(Some(view.volumes.clone()))
                .build(),
        )
        .filters(
            Filter::builder()
                .name("tag:firebreak:finding")
                .values(tag_value(finding_id))
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("ec2:DescribeSnapshots", e))?;
    let taken: BTreeSet<&str> = existing
        .snapshots()
        .iter()
        .filter_map(|s| s.volume_id())
        .collect();
    for volume in &view.volumes {
        if taken.contains(volume.as_str()) {
            tracing::info!(volume, "evidence snapshot already taken");
            continue;
        }
        let created = mutate!(
            run.dry_run,
            "ec2:CreateSnapshot",
            run.ec2
                .create_snapshot()
                .volume_id(volume)
                .description(
                    format!(
                        "Firebreak evidence of {} for finding {}",
                        view.instance_id,
                        tag_value(finding_id)
                    )
                    .chars()
                    .take(255)
                    .collect::<String>()
                )
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .tags(tag("firebreak:finding", finding_id))
                        .tags(tag("firebreak:instance", view.instance_id.as_str()))
                        .build(),
                )
        )?;
        let after = created
            .and_then(|c| c.snapshot_id().map(str::to_owned))
            .unwrap_or_else(|| "(dry run)".into());
        tracing::info!(volume, snapshot = after, "evidence snapshot");
        run.changes.push(Change {
            resource: volume.clone(),
            what: "snapshot".into(),
            before: "none".into(),
            after,
        });
    }
    Ok(())
}

/// Step 1: termination protection on, and shutdown stops rather than terminates.
pub async fn protect(run: &mut Run<'_>, view: &InstanceView) -> Result<(), RunbookError> {
    let id = &view.instance_id;
    let termination = run
        .ec2
        .describe_instance_attribute()
        .instance_id(id.as_str())
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .map_err(|e| aws_error("ec2:DescribeInstanceAttribute", e))?;
    if termination
        .disable_api_termination()
        .and_then(|v| v.value())
        != Some(true)
    {
        mutate!(
            run.dry_run,
            "ec2:ModifyInstanceAttribute",
            run.ec2
                .modify_instance_attribute()
                .instance_id(id.as_str())
                .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
        )?;
        run.changes.push(Change {
            resource: id.to_string(),
            what: "termination protection".into(),
            before: "off".into(),
            after: "on".into(),
        });
    }
    let shutdown = run
        .ec2
        .describe_instance_attribute()
        .instance_id(id.as_str())
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .map_err(|e| aws_error("ec2:DescribeInstanceAttribute", e))?;
    let current = shutdown
        .instance_initiated_shutdown_behavior()
        .and_then(|v| v.value())
        .unwrap_or("stop")
        .to_owned();
    if current != "stop" {
        mutate!(
            run.dry_run,
            "ec2:ModifyInstanceAttribute",
            run.ec2
                .modify_instance_attribute()
                .instance_id(id.as_str())
                .instance_initiated_shutdown_behavior(
                    AttributeValue::builder().value("stop").build()
                )
        )?;
        run.changes.push(Change {
            resource: id.to_string(),
            what: "shutdown behaviour".into(),
            before: current,
            after: "stop".into(),
        });
    }
    // The volumes outlive the instance, whatever ends it (Auto Scaling, a person).
    for device in &view.deleted_on_termination {
        mutate!(
            run.dry_run,
            "ec2:ModifyInstanceAttribute",
            run.ec2
                .modify_instance_attribute()
                .instance_id(id.as_str())
                .block_device_mappings(
                    InstanceBlockDeviceMappingSpecification::builder()
                        .device_name(device)
                        .ebs(
                            EbsInstanceBlockDeviceSpecification::builder()
                                .delete_on_termination(false)
                                .build()
                        )
                        .build()
                )
        )?;
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!("volume {device} on termination"),
            before: "deleted".into(),
            after: "kept".into(),
        });
    }
    Ok(())
}

/// Step 2, before any interface moves: one tag call with the original groups (recorded
/// once, never overwritten, so that release can restore them) and who is isolating the
/// instance, when and for which finding.
pub async fn tag_instance(
    run: &mut Run<'_>,
    view: &InstanceView,
    finding_id: &str,
    execution_id: Option<&str>,
    now: &str,
    service_record: &[(String, String)],
) -> Result<(), RunbookError> {
    let mut call = run
        .ec2
        .create_tags()
        .resources(view.instance_id.as_str())
        .tags(tag("firebreak:isolated-by", "firebreak"))
        .tags(tag("firebreak:isolated-at", now))
        .tags(tag("firebreak:finding", finding_id));
    if let Some(exec) = execution_id {
        call = call.tags(tag("firebreak:execution", exec));
    }
    let originals = if originals_recorded(&view.tags) {
        Vec::new()
    } else {
        original_group_tags(&view.interfaces)
    };
    for (k, v) in originals.iter().chain(service_record) {
        call = call.tags(tag(k, v));
    }
    mutate!(run.dry_run, "ec2:CreateTags", call)?;
    if !service_record.is_empty() {
        run.changes.push(Change {
            resource: view.instance_id.to_string(),
            what: "where it served recorded".into(),
            before: "none".into(),
            after: service_record
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    if !originals.is_empty() {
        run.changes.push(Change {
            resource: view.instance_id.to_string(),
            what: "original security groups recorded".into(),
            before: "none".into(),
            after: originals
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}={v}",
                        k.trim_start_matches(&format!("{ORIGINAL_GROUPS_TAG}:"))
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(())
}

/// The VPC's allow-all and isolation groups, created once and reused, found in one read.
/// The isolation group is checked on every run: if anyone added a rule to it, the rule goes.
pub async fn ensure_groups(
    run: &mut Run<'_>,
    vpc: &VpcId,
) -> Result<Option<(SecurityGroupId, SecurityGroupId)>, RunbookError> {
    let allow_name = format!("{ALLOW_ALL_GROUP_PREFIX}{vpc}");
    let isolation_name = format!("{ISOLATION_GROUP_PREFIX}{vpc}");
    let mut found = find_groups(run.ec2, vpc, [&allow_name, &isolation_name]).await?;
    let allow = match found.remove(&allow_name) {
        // Found by name: it must really allow everything (someone may have narrowed it,
        // or another response created it a moment ago and is opening it now).
        Some(g) => {
            open_everything(run, &g.id, &g.ingress, &g.egress).await?;
            Some(g.id)
        }
        None => {
            let created = create_group(
                run,
                vpc,
                &allow_name,
                "Firebreak: first isolation step, turns tracked connections into untracked ones",
                "allow-all",
            )
            .await?;
            if let Some(id) = &created {
                // A new group allows all IPv4 egress and nothing else.
                let default_egress = [all_traffic(false)];
                open_everything(run, id, &[], &default_egress).await?;
            }
            created
        }
    };
    let isolation = match found.remove(&isolation_name) {
        Some(g) => {
            strip_rules(run, &g.id, g.ingress, g.egress).await?;
            Some(g.id)
        }
        None => {
            let created = create_group(
                run,
                vpc,
                &isolation_name,
                "Firebreak: isolated instances, no traffic in or out",
                "isolation",
            )
            .await?;
            if let Some(id) = &created {
                // A new group allows all egress (IPv4, and IPv6 in an IPv6 VPC): read what
                // EC2 gave it, then take it away.
                let fresh = run
                    .ec2
                    .describe_security_groups()
                    .group_ids(id.as_str())
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2:DescribeSecurityGroups", e))?;
                if let Some(g) = fresh.security_groups().first() {
                    let (ingress, egress) = (
                        g.ip_permissions().to_vec(),
                        g.ip_permissions_egress().to_vec(),
                    );
                    strip_rules(run, id, ingress, egress).await?;
                }
            }
            created
        }
    };
    Ok(allow.zip(isolation))
}

async fn create_group(
    run: &mut Run<'_>,
    vpc: &VpcId,
    name: &str,
    description: &str,
    role: &str,
) -> Result<Option<SecurityGroupId>, RunbookError> {
    let created = match mutate!(
        run.dry_run,
        "ec2:CreateSecurityGroup",
        run.ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc.as_str())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(tag("firebreak:group", role))
                    .build(),
            )
    ) {
        Ok(created) => created,
        // Another response isolating an instance in this VPC created it between our read
        // and our create: one group per VPC, theirs; the caller checks its rules.
        Err(e) if e.aws_code() == Some("InvalidGroup.Duplicate") => {
            let found = find_groups(run.ec2, vpc, [name, name]).await?;
            return Ok(found.get(name).map(|g| g.id.clone()));
        }
        Err(e) => return Err(e),
    };
    run.changes.push(Change {
        resource: vpc.to_string(),
        what: format!("security group {name}"),
        before: "none".into(),
        after: "created".into(),
    });
    Ok(created.and_then(|c| c.group_id().and_then(|v| SecurityGroupId::parse(v).ok())))
}

/// Traffic of every protocol to or from everywhere, in one address family.
fn all_traffic(v6: bool) -> IpPermission {
    let p = IpPermission::builder().ip_protocol("-1");
    if v6 {
        p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
    }
    .build()
}

/// Whether `rules` hold all traffic in that family.
fn allows_all(rules: &[IpPermission], v6: bool) -> bool {
    rules.iter().any(|r| {
        r.ip_protocol() == Some("-1")
            && if v6 {
                r.ipv6_ranges()
                    .iter()
                    .any(|x| x.cidr_ipv6() == Some("::/0"))
            } else {
                r.ip_ranges()
                    .iter()
                    .any(|x| x.cidr_ip() == Some("0.0.0.0/0"))
            }
    })
}

/// All traffic in and out, IPv4 and IPv6: connections through it are untracked. Adds only
/// what `ingress`/`egress` (the group's rules as read) lack; a rule another response added
/// meanwhile (`InvalidPermission.Duplicate`) is as good as ours.
async fn open_everything(
    run: &mut Run<'_>,
    id: &SecurityGroupId,
    ingress: &[IpPermission],
    egress: &[IpPermission],
) -> Result<(), RunbookError> {
    for (outbound, have) in [(false, ingress), (true, egress)] {
        let missing: Vec<IpPermission> = [false, true]
            .into_iter()
            .filter(|v6| !allows_all(have, *v6))
            .map(all_traffic)
            .collect();
        if missing.is_empty() {
            continue;
        }
        let result = if outbound {
            mutate!(
                run.dry_run,
                "ec2:AuthorizeSecurityGroupEgress",
                run.ec2
                    .authorize_security_group_egress()
                    .group_id(id.as_str())
                    .set_ip_permissions(Some(missing.clone()))
            )
            .map(|_| ())
        } else {
            mutate!(
                run.dry_run,
                "ec2:AuthorizeSecurityGroupIngress",
                run.ec2
                    .authorize_security_group_ingress()
                    .group_id(id.as_str())
                    .set_ip_permissions(Some(missing.clone()))
            )
            .map(|_| ())
        };
        done_if("InvalidPermission.Duplicate", result)?;
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!(
                "allow-all group {} rules",
                if outbound { "outbound" } else { "inbound" }
            ),
            before: format!("{} rules", have.len()),
            after: "all traffic, IPv4 and IPv6".into(),
        });
    }
    Ok(())
}

/// No rules at all: a new group allows all egress, and someone may have added rules to
/// an existing one.
async fn strip_rules(
    run: &mut Run<'_>,
    id: &SecurityGroupId,
    ingress: Vec<IpPermission>,
    egress: Vec<IpPermission>,
) -> Result<(), RunbookError> {
    // Another response stripping the same group a moment earlier leaves nothing to
    // revoke (InvalidPermission.NotFound): the group has no rules, as wanted.
    if !egress.is_empty() {
        done_if(
            "InvalidPermission.NotFound",
            mutate!(
                run.dry_run,
                "ec2:RevokeSecurityGroupEgress",
                run.ec2
                    .revoke_security_group_egress()
                    .group_id(id.as_str())
                    .set_ip_permissions(Some(egress.clone()))
            ),
        )?;
    }
    if !ingress.is_empty() {
        done_if(
            "InvalidPermission.NotFound",
            mutate!(
                run.dry_run,
                "ec2:RevokeSecurityGroupIngress",
                run.ec2
                    .revoke_security_group_ingress()
                    .group_id(id.as_str())
                    .set_ip_permissions(Some(ingress.clone()))
            ),
        )?;
    }
    if !egress.is_empty() || !ingress.is_empty() {
        run.changes.push(Change {
            resource: id.to_string(),
            what: "isolation group rules".into(),
            before: format!("{} inbound, {} outbound", ingress.len(), egress.len()),
            after: "none".into(),
        });
    }
    Ok(())
}

/// One interface's security groups, set in one call.
async fn set_groups(
    run: &mut Run<'_>,
    iface: &InterfaceView,
    groups: &[SecurityGroupId],
) -> Result<(), RunbookError> {
    mutate!(
        run.dry_run,
        "ec2:ModifyNetworkInterfaceAttribute",
        run.ec2
            .modify_network_interface_attribute()
            .network_interface_id(iface.id.as_str())
            .set_groups(Some(groups.iter().map(|g| g.to_string()).collect()))
    )?;
    Ok(())
}

/// Whether an interface still has to move: it is not in the isolation group alone.
pub fn needs_move(
    iface: &InterfaceView,
    groups: Option<&(SecurityGroupId, SecurityGroupId)>,
) -> bool {
    groups.is_none_or(|(_, isolation)| iface.groups != [isolation.clone()])
}

/// Step 3: each interface through the allow-all group into the isolation group.
pub async fn move_interface(
    run: &mut Run<'_>,
    iface: &InterfaceView,
    groups: Option<&(SecurityGroupId, SecurityGroupId)>,
) -> Result<(), RunbookError> {
    let before = iface
        .groups
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if !needs_move(iface, groups) {
        return Ok(());
    }
    let after = match groups {
        Some((allow, isolation)) => {
            set_groups(run, iface, std::slice::from_ref(allow)).await?;
            // The interface now allows everything, untracked: it must not stay so. One more
            // try of the second move, else back to its original groups, and say so.
            let second = match set_groups(run, iface, std::slice::from_ref(isolation)).await {
                Ok(()) => Ok(()),
                Err(first) => {
                    tracing::warn!(eni = %iface.id, error = %first, "second isolation move failed; trying once more");
                    set_groups(run, iface, std::slice::from_ref(isolation)).await
                }
            };
            if let Err(e) = second {
                let restored = set_groups(run, iface, &iface.groups).await;
                return Err(RunbookError::Aws {
                    operation: "ec2:ModifyNetworkInterfaceAttribute",
                    message: format!(
                        "{} could not be moved into the isolation group ({e}); {}",
                        iface.id,
                        match restored {
                            Ok(()) => format!("it was put back into its original groups {before}, so it is NOT isolated"),
                            Err(r) => format!("putting it back into its original groups {before} failed too ({r}): it is in the allow-all group {allow}, fix by hand"),
                        }
                    ),
                    transient: false,
                });
            }
            isolation.to_string()
        }
        None => {
            // Dry run with groups not yet created: check the permission against the
            // interface's current group instead.
            if let Some(current) = iface.groups.first() {
                mutate!(
                    run.dry_run,
                    "ec2:ModifyNetworkInterfaceAttribute",
                    run.ec2
                        .modify_network_interface_attribute()
                        .network_interface_id(iface.id.as_str())
                        .groups(current.as_str())
                )?;
            }
            format!("{ISOLATION_GROUP_PREFIX}{} (to be created)", iface.vpc_id)
        }
    };
    tracing::info!(eni = %iface.id, before, after, "interface isolated");
    run.changes.push(Change {
        resource: iface.id.to_string(),
        what: "security groups".into(),
        before,
        after,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(id: &str, groups: &[&str]) -> InterfaceView {
        InterfaceView {
            id: NetworkInterfaceId::parse(id).unwrap(),
            vpc_id: VpcId::parse("vpc-0a1b2c3d4e5f60731").unwrap(),
            groups: groups
                .iter()
                .map(|g| SecurityGroupId::parse(g).unwrap())
                .collect(),
        }
    }

    #[test]
    fn original_groups_are_one_tag_per_interface() {
        let tags = original_group_tags(&[
            iface("eni-0a1b2c3d4e5f60711", &["sg-0a1b2c3d4e5f60741"]),
            iface(
                "eni-0a1b2c3d4e5f60712",
                &["sg-0a1b2c3d4e5f60741", "sg-0a1b2c3d4e5f60742"],
            ),
        ]);
        assert_eq!(
            tags,
            vec![
                (
                    "firebreak:original-groups:eni-0a1b2c3d4e5f60711".into(),
                    "sg-0a1b2c3d4e5f60741".into()
                ),
                (
                    "firebreak:original-groups:eni-0a1b2c3d4e5f60712".into(),
                    "sg-0a1b2c3d4e5f60741,sg-0a1b2c3d4e5f60742".into()
                ),
            ]
        );
    }

    #[test]
    fn many_groups_are_cut_into_tag_sized_parts() {
        let groups: Vec<String> = (0..16)
            .map(|i| format!("sg-0a1b2c3d4e5f607{i:02}"))
            .collect();
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let tags = original_group_tags(&[iface("eni-0a1b2c3d4e5f60711", &refs)]);
        assert_eq!(tags.len(), 2);
        assert!(tags.iter().all(|(_, v)| v.len() <= 256));
        assert_eq!(
            tags[1].0,
            "firebreak:original-groups:eni-0a1b2c3d4e5f60711:2"
        );
        let joined = format!("{},{}", tags[0].1, tags[1].1);
        assert_eq!(joined, groups.join(","));
    }

    #[test]
    fn an_interface_without_groups_still_records_that() {
        let tags = original_group_tags(&[iface("eni-0a1b2c3d4e5f60711", &[])]);
        assert_eq!(
            tags,
            vec![(
                "firebreak:original-groups:eni-0a1b2c3d4e5f60711".into(),
                String::new()
            )]
        );
    }

    #[test]
    fn originals_are_never_overwritten() {
        let mut tags = BTreeMap::new();
        assert!(!originals_recorded(&tags));
        tags.insert(
            "firebreak:original-groups:eni-0a1b2c3d4e5f60711".to_owned(),
            "sg-1".to_owned(),
        );
        assert!(originals_recorded(&tags));
    }

    #[test]
    fn tag_values_are_cut_to_256() {
        assert_eq!(tag_value(&"x".repeat(512)).len(), 256);
        assert_eq!(tag_value("short"), "short");
    }
}
