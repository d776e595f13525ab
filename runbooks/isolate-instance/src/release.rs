//! Release: an isolated instance put back as Firebreak found it, from what isolation
//! recorded on the instance itself, in the reverse order of isolation: each interface's
//! groups first, then the Auto Scaling group (ExitStandby) and the load balancers, then
//! the record tags last (so a release that fails part way can run again).
//!
//! Only what Firebreak recorded comes back, and only over Firebreak's own isolation: an
//! interface whose groups someone changed since (neither Firebreak's groups nor the recorded
//! ones) is not touched, and the release is refused for a person to look. The evidence
//! stays: snapshots, termination protection and `DeleteOnTermination=false` are kept.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancing::types::Instance as ClassicInstance;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::{FindingId, InstanceId, SecurityGroupId, VpcId};
use firebreak::mutate;
use firebreak::outcome::{Change, OutcomeStatus};
use firebreak::reach::partition_of;
use firebreak::release::{ReleaseOutcome, ReleaseOutput, ReleasePlan};

use crate::isolate::{self, InstanceView, Run, ORIGINAL_GROUPS_TAG};
use crate::service::{self, AUTO_SCALING_GROUP_TAG, LOAD_BALANCERS_TAG, TARGET_GROUPS_TAG};
use crate::Clients;

/// The tags isolation writes besides the recorded groups and service.
const MARKER_TAGS: [&str; 4] = [
    "firebreak:isolated-by",
    "firebreak:isolated-at",
    "firebreak:finding",
    "firebreak:execution",
];

/// What isolation recorded, read back from the instance's tags.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Each interface's groups before isolation.
    pub groups: BTreeMap<String, Vec<SecurityGroupId>>,
    pub auto_scaling_group: Option<String>,
    /// `targetgroup/name/id` and the port, if one was registered.
    pub target_groups: Vec<(String, Option<i32>)>,
    pub load_balancers: Vec<String>,
    /// Every Firebreak tag to delete once the instance is back.
    pub tag_keys: Vec<String>,
}

/// A tag value cut into `key`, `key:2`, `key:3`…, joined again in order.
fn joined(tags: &BTreeMap<String, String>, key: &str, sep: char) -> Option<String> {
    let mut parts: Vec<(usize, &str)> = tags
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(key)?;
            let n = if rest.is_empty() {
                1
            } else {
                rest.strip_prefix(':')?.parse().ok()?
            };
            Some((n, v.as_str()))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    parts.sort();
    Some(
        parts
            .iter()
            .map(|(_, v)| *v)
            .collect::<Vec<_>>()
            .join(&sep.to_string()),
    )
}

/// The record on the instance's tags, or why it cannot be trusted. Pure.
pub fn recorded(tags: &BTreeMap<String, String>) -> Result<Recorded, String> {
    let mut r = Recorded::default();
    let enis: BTreeSet<&str> = tags
        .keys()
        .filter_map(|k| k.strip_prefix(&format!("{ORIGINAL_GROUPS_TAG}:")))
        .filter_map(|rest| rest.split(':').next())
        .collect();
    for eni in enis {
        let key = format!("{ORIGINAL_GROUPS_TAG}:{eni}");
        let value = joined(tags, &key, ',').unwrap_or_default();
        let groups = value
            .split(',')
            .filter(|g| !g.is_empty())
            .map(SecurityGroupId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("tag {key}: {e}"))?;
        r.groups.insert(eni.to_owned(), groups);
    }
    r.auto_scaling_group = tags.get(AUTO_SCALING_GROUP_TAG).cloned();
    if let Some(g) = &r.auto_scaling_group {
        let ok = !g.is_empty() && g.len() <= 255 && !g.chars().any(|c| c.is_control() || c == ':');
        if !ok {
            return Err(format!(
                "tag {AUTO_SCALING_GROUP_TAG}: {g:?} is not an Auto Scaling group name"
            ));
        }
    }
    for record in joined(tags, TARGET_GROUPS_TAG, ' ')
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        let (resource, port) = match record.rsplit_once(':') {
            Some((res, p)) => (
                res,
                Some(p.parse::<i32>().map_err(|_| {
                    format!("tag {TARGET_GROUPS_TAG}: {record:?} has no valid port")
                })?),
            ),
            None => (record, None),
        };
        let parts: Vec<&str> = resource.split('/').collect();
        let ok = parts.len() == 3
            && parts[0] == "targetgroup"
            && parts[1..].iter().all(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(format!(
                "tag {TARGET_GROUPS_TAG}: {record:?} is not a target group"
            ));
        }
        r.target_groups.push((resource.to_owned(), port));
    }
    for name in joined(tags, LOAD_BALANCERS_TAG, ' ')
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !(name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
            return Err(format!(
                "tag {LOAD_BALANCERS_TAG}: {name:?} is not a load balancer name"
            ));
        }
        r.load_balancers.push(name.to_owned());
    }
    r.tag_keys = tags
        .keys()
        .filter(|k| {
            k.starts_with(ORIGINAL_GROUPS_TAG)
                || k.starts_with(AUTO_SCALING_GROUP_TAG)
                || k.starts_with(TARGET_GROUPS_TAG)
                || k.starts_with(LOAD_BALANCERS_TAG)
                || MARKER_TAGS.contains(&k.as_str())
        })
        .cloned()
        .collect();
    Ok(r)
}

/// What to do with one interface.
#[derive(Debug, PartialEq, Eq)]
pub enum InterfaceRelease {
    /// Already in its recorded groups.
    AsRecorded,
    /// In Firebreak's groups only: put back into the recorded ones.
    Restore(Vec<SecurityGroupId>),
    /// Nothing was recorded for it (attached after isolation): left as it is.
    NotRecorded,
    /// Someone changed it since isolation: left for a person.
    ChangedSince(Vec<SecurityGroupId>),
}

/// One interface's release, from its groups now, the record and the VPC's Firebreak
/// groups. Pure.
pub fn interface_release(
    current: &[SecurityGroupId],
    recorded: Option<&Vec<SecurityGroupId>>,
    firebreaks: &BTreeSet<SecurityGroupId>,
) -> InterfaceRelease {
    let Some(recorded) = recorded else {
        return InterfaceRelease::NotRecorded;
    };
    let now: BTreeSet<&SecurityGroupId> = current.iter().collect();
    if now == recorded.iter().collect::<BTreeSet<_>>() {
        return InterfaceRelease::AsRecorded;
    }
    if !current.is_empty() && current.iter().all(|g| firebreaks.contains(g)) {
        InterfaceRelease::Restore(recorded.clone())
    } else {
        InterfaceRelease::ChangedSince(current.to_vec())
    }
}

fn ids(groups: &[SecurityGroupId]) -> String {
    groups
        .iter()
        .map(SecurityGroupId::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Instances Firebreak isolated for this finding, in the plan's account and region (the
/// `firebreak:finding` tag isolation wrote; cut to a tag value's length as it was).
async fn isolated_for(
    ec2: &aws_sdk_ec2::Client,
    finding: &FindingId,
) -> Result<Vec<InstanceId>, RunbookError> {
    let mut found = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:firebreak:finding")
                .values(isolate::tag_value(finding.as_str()))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("ec2:DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            if let Some(id) = i.instance_id().and_then(|v| InstanceId::parse(v).ok()) {
                found.push(id);
            }
        }
    }
    Ok(found)
}

/// Every instance the plan releases: the one it names, or each isolated for its finding.
pub async fn release_planned(
    plan: &ReleasePlan,
    clients: &Clients,
) -> Result<ReleaseOutput, RunbookError> {
    let targets = match (&plan.instance, &plan.finding) {
        (Some(id), _) => vec![id.clone()],
        (None, Some(f)) => isolated_for(&clients.ec2, f).await?,
        (None, None) => Vec::new(),
    };
    let mut out = ReleaseOutput::default();
    for id in targets {
        match release_one(plan, &id, clients).await {
            Ok(o) => out.outcomes.push(o),
            Err(e) => {
                let done: Vec<Change> = out
                    .outcomes
                    .iter()
                    .flat_map(|o| o.changes.clone())
                    .collect();
                return Err(e.after_changes(&done));
            }
        }
    }
    Ok(out)
}

fn outcome(
    id: &InstanceId,
    status: OutcomeStatus,
    summary: String,
    changes: Vec<Change>,
) -> ReleaseOutcome {
    ReleaseOutcome {
        release: "instance".into(),
        status,
        target: id.to_string(),
        summary,
        changes,
    }
}

async fn release_one(
    plan: &ReleasePlan,
    id: &InstanceId,
    clients: &Clients,
) -> Result<ReleaseOutcome, RunbookError> {
    let ec2 = &clients.ec2;
    let Some(view) = isolate::describe(ec2, id).await? else {
        return Ok(outcome(
            id,
            OutcomeStatus::Refused,
            format!(
                "{id} does not exist in account {} region {}: nothing was released",
                plan.account_id, plan.region
            ),
            Vec::new(),
        ));
    };
    let record = match recorded(&view.tags) {
        Ok(r) => r,
        Err(why) => {
            return Ok(outcome(id, OutcomeStatus::Refused, format!(
                "{id} was not released: its Firebreak record cannot be trusted ({why}); release it by hand"
            ), Vec::new()))
        }
    };
    if record.tag_keys.is_empty() {
        return Ok(outcome(
            id,
            OutcomeStatus::AlreadyDone,
            format!("{id} carries no Firebreak isolation record: nothing to release"),
            Vec::new(),
        ));
    }
    let mut run = Run {
        ec2,
        autoscaling: &clients.autoscaling,
        elb: &clients.elb,
        classic: &clients.classic,
        dry_run: plan.dry_run,
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    let refused = match put_back(&mut run, &view, &record, plan).await {
        Ok(refused) => refused,
        Err(e) => return Err(e.after_changes(&run.changes)),
    };
    let status = if refused {
        OutcomeStatus::Refused
    } else if plan.dry_run {
        OutcomeStatus::DryRun
    } else if run.changes.is_empty() {
        OutcomeStatus::AlreadyDone
    } else {
        OutcomeStatus::Done
    };
    let mut summary = match status {
        OutcomeStatus::Refused => format!("{id} was not released"),
        OutcomeStatus::DryRun => format!("dry run: would release {id} ({} changes)", run.changes.len()),
        OutcomeStatus::AlreadyDone => format!("{id} was already released; nothing changed"),
        _ => format!("released {id}: original groups back on every interface, back in service where it served; evidence kept"),
    };
    for w in &run.warnings {
        summary.push_str("; ");
        summary.push_str(w);
    }
    tracing::info!(
        execution_id = plan.execution_id.as_deref().unwrap_or(""),
        finding_id = plan.finding.as_ref().map(|f| f.as_str()).unwrap_or(""),
        action = "release-instance",
        instance_id = %id,
        status = status.as_str(),
        changes = run.changes.len(),
        "{summary}"
    );
    Ok(outcome(id, status, summary, run.changes))
}

/// The release itself, in order; every step records its changes in `run`. `true` when it
/// was refused before any change (an interface changed since isolation).
async fn put_back(
    run: &mut Run<'_>,
    view: &InstanceView,
    record: &Recorded,
    plan: &ReleasePlan,
) -> Result<bool, RunbookError> {
    let id = &view.instance_id;
    // Every interface is decided before any moves: a changed one stops the whole release.
    let mut firebreaks: BTreeMap<VpcId, BTreeSet<SecurityGroupId>> = BTreeMap::new();
    let mut decisions = Vec::new();
    for iface in &view.interfaces {
        if !firebreaks.contains_key(&iface.vpc_id) {
            let found = isolate::firebreak_groups(run.ec2, &iface.vpc_id).await?;
            firebreaks.insert(iface.vpc_id.clone(), found);
        }
        let ours = &firebreaks[&iface.vpc_id];
        decisions.push((
            iface,
            interface_release(&iface.groups, record.groups.get(iface.id.as_str()), ours),
        ));
    }
    for (iface, d) in &decisions {
        if let InterfaceRelease::ChangedSince(now) = d {
            run.warnings.push(format!(
                "{} is in {} now, neither Firebreak's isolation groups nor its recorded groups: it was changed since isolation, so nothing was released; release it by hand",
                iface.id,
                ids(now)
            ));
        }
    }
    if !run.warnings.is_empty() {
        return Ok(true);
    }
    for (iface, d) in &decisions {
        match d {
            InterfaceRelease::Restore(groups) => {
                mutate!(
                    run.dry_run,
                    "ec2:ModifyNetworkInterfaceAttribute",
                    run.ec2
                        .modify_network_interface_attribute()
                        .network_interface_id(iface.id.as_str())
                        .set_groups(Some(groups.iter().map(|g| g.to_string()).collect()))
                )?;
                run.changes.push(Change {
                    resource: iface.id.to_string(),
                    what: "security groups".into(),
                    before: ids(&iface.groups),
                    after: ids(groups),
                });
            }
            InterfaceRelease::NotRecorded => run.warnings.push(format!(
                "{} has no recorded groups (attached after isolation?): left in {}",
                iface.id,
                ids(&iface.groups)
            )),
            InterfaceRelease::AsRecorded | InterfaceRelease::ChangedSince(_) => {}
        }
    }
    back_in_service(run, id, record, plan).await?;
    if !record.tag_keys.is_empty() {
        let mut call = run.ec2.delete_tags().resources(id.as_str());
        for k in &record.tag_keys {
            call = call.tags(aws_sdk_ec2::types::Tag::builder().key(k).build());
        }
        mutate!(run.dry_run, "ec2:DeleteTags", call)?;
        run.changes.push(Change {
            resource: id.to_string(),
            what: "Firebreak isolation record".into(),
            before: record.tag_keys.join(", "),
            after: "deleted".into(),
        });
    }
    Ok(false)
}

/// In service, or on its way there: ExitStandby moves an instance through `Pending` (and
/// `Pending:Wait` / `Pending:Proceed` with a launch lifecycle hook) to `InService`.
fn on_its_way_back(lifecycle_state: &str) -> bool {
    matches!(
        lifecycle_state,
        "InService" | "Pending" | "Pending:Wait" | "Pending:Proceed"
    )
}

/// Whether this run took the instance out of Standby. Another release of the same
/// instance may have done it since the read: Auto Scaling then refuses (`ValidationError`,
/// only a Standby instance can exit it), and a second read tells which it was.
async fn exit_standby(run: &Run<'_>, id: &InstanceId, group: &str) -> Result<bool, RunbookError> {
    if run.dry_run {
        return Ok(true);
    }
    let refused = match run
        .autoscaling
        .exit_standby()
        .auto_scaling_group_name(group)
        .instance_ids(id.as_str())
        .send()
        .await
    {
        Ok(_) => return Ok(true),
        Err(e) if error_code(&e) == Some("ValidationError") => e,
        Err(e) => return Err(aws_error("autoscaling:ExitStandby", e)),
    };
    match service::membership(run.autoscaling, id).await? {
        Some(m) if m.group == group && on_its_way_back(&m.lifecycle_state) => {
            tracing::info!(instance_id = %id, group, "out of Standby already: another release put it back");
            Ok(false)
        }
        _ => Err(aws_error("autoscaling:ExitStandby", refused)),
    }
}

/// The Auto Scaling group, the target groups and the Classic Load Balancers, as recorded.
/// Auto Scaling and ELB have no DryRun: a dry run only reads.
async fn back_in_service(
    run: &mut Run<'_>,
    id: &InstanceId,
    record: &Recorded,
    plan: &ReleasePlan,
) -> Result<(), RunbookError> {
    if let Some(group) = &record.auto_scaling_group {
        match service::membership(run.autoscaling, id).await? {
            Some(m) if &m.group == group && m.lifecycle_state == "Standby" => {
                if exit_standby(run, id, group).await? {
                    run.changes.push(Change {
                        resource: id.to_string(),
                        what: format!("Auto Scaling group {group}"),
                        before: "Standby".into(),
                        after: "InService".into(),
                    });
                }
            }
            Some(m) if &m.group == group && on_its_way_back(&m.lifecycle_state) => {}
            other => run.warnings.push(format!(
                "{id} is {} in Auto Scaling group {group}, not in Standby: left as it is",
                other
                    .map(|m| m.lifecycle_state)
                    .unwrap_or_else(|| "no longer".into())
            )),
        }
    }
    let partition = partition_of(&plan.region);
    for (resource, port) in &record.target_groups {
        let arn = format!(
            "arn:{partition}:elasticloadbalancing:{}:{}:{resource}",
            plan.region, plan.account_id
        );
        let target = TargetDescription::builder()
            .id(id.as_str())
            .set_port(*port)
            .build();
        let health = match run
            .elb
            .describe_target_health()
            .target_group_arn(&arn)
            .send()
            .await
        {
            Ok(h) => h,
            Err(e) if error_code(&e) == Some("TargetGroupNotFound") => {
                run.warnings
                    .push(format!("target group {resource} no longer exists"));
                continue;
            }
            Err(e) => return Err(aws_error("elasticloadbalancing:DescribeTargetHealth", e)),
        };
        let registered = health.target_health_descriptions().iter().any(|d| {
            let state = d
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str())
                .unwrap_or("");
            d.target().is_some_and(|t| {
                t.id() == Some(id.as_str()) && (port.is_none() || t.port() == *port)
            }) && !matches!(state, "draining" | "unused")
        });
        if registered {
            continue;
        }
        if !run.dry_run {
            run.elb
                .register_targets()
                .target_group_arn(&arn)
                .targets(target)
                .send()
                .await
                .map_err(|e| aws_error("elasticloadbalancing:RegisterTargets", e))?;
        }
        let with_port = port.map(|p| format!(":{p}")).unwrap_or_default();
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!("target group {resource}{with_port}"),
            before: "deregistered".into(),
            after: "registered".into(),
        });
    }
    for name in &record.load_balancers {
        let lbs = match run
            .classic
            .describe_load_balancers()
            .load_balancer_names(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    error_code(&e),
                    Some("LoadBalancerNotFound") | Some("AccessPointNotFound")
                ) =>
            {
                run.warnings
                    .push(format!("load balancer {name} no longer exists"));
                continue;
            }
            Err(e) => return Err(aws_error("elasticloadbalancing:DescribeLoadBalancers", e)),
        };
        let registered = lbs
            .load_balancer_descriptions()
            .iter()
            .flat_map(|lb| lb.instances())
            .any(|i| i.instance_id() == Some(id.as_str()));
        if registered {
            continue;
        }
        if !run.dry_run {
            run.classic
                .register_instances_with_load_balancer()
                .load_balancer_name(name)
                .instances(ClassicInstance::builder().instance_id(id.as_str()).build())
                .send()
                .await
                .map_err(|e| {
                    aws_error("elasticloadbalancing:RegisterInstancesWithLoadBalancer", e)
                })?;
        }
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!("load balancer {name}"),
            before: "deregistered".into(),
            after: "registered".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sg(s: &str) -> SecurityGroupId {
        SecurityGroupId::parse(s).unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_record_is_read_back_whole_from_its_parts() {
        let r = recorded(&tags(&[
            (
                "firebreak:original-groups:eni-0a1b2c3d4e5f60711",
                "sg-0a1b2c3d4e5f60741,sg-0a1b2c3d4e5f60742",
            ),
            (
                "firebreak:original-groups:eni-0a1b2c3d4e5f60711:2",
                "sg-0a1b2c3d4e5f60743",
            ),
            (
                "firebreak:original-groups:eni-0a1b2c3d4e5f60712",
                "sg-0a1b2c3d4e5f60744",
            ),
            ("firebreak:auto-scaling-group", "web-fleet"),
            (
                "firebreak:target-groups",
                "targetgroup/web/73e2d6bc24d8a067:8080 targetgroup/api/73e2d6bc24d8a068",
            ),
            ("firebreak:load-balancers", "web-classic"),
            ("firebreak:isolated-by", "firebreak"),
            ("firebreak:finding", "f-1"),
            ("Name", "web-1"),
        ]))
        .unwrap();
        assert_eq!(
            r.groups["eni-0a1b2c3d4e5f60711"],
            vec![
                sg("sg-0a1b2c3d4e5f60741"),
                sg("sg-0a1b2c3d4e5f60742"),
                sg("sg-0a1b2c3d4e5f60743")
            ]
        );
        assert_eq!(
            r.groups["eni-0a1b2c3d4e5f60712"],
            vec![sg("sg-0a1b2c3d4e5f60744")]
        );
        assert_eq!(r.auto_scaling_group.as_deref(), Some("web-fleet"));
        assert_eq!(
            r.target_groups,
            vec![
                ("targetgroup/web/73e2d6bc24d8a067".to_owned(), Some(8080)),
                ("targetgroup/api/73e2d6bc24d8a068".to_owned(), None)
            ]
        );
        assert_eq!(r.load_balancers, vec!["web-classic".to_owned()]);
        assert_eq!(r.tag_keys.len(), 8, "{:?}", r.tag_keys);
        assert!(!r.tag_keys.contains(&"Name".to_owned()));
    }

    #[test]
    fn a_record_that_names_anything_but_groups_and_target_groups_is_refused() {
        for bad in [
            (
                "firebreak:original-groups:eni-0a1b2c3d4e5f60711",
                "sg-0a1b2c3d4e5f60741,0.0.0.0/0",
            ),
            ("firebreak:target-groups", "loadbalancer/app/x/1:80"),
            (
                "firebreak:target-groups",
                "targetgroup/web/73e2d6bc24d8a067:http",
            ),
            ("firebreak:load-balancers", "web classic;rm"),
        ] {
            assert!(recorded(&tags(&[bad])).is_err(), "{bad:?}");
        }
        assert!(recorded(&tags(&[("Name", "web")]))
            .unwrap()
            .tag_keys
            .is_empty());
    }

    #[test]
    fn an_interface_is_restored_only_from_firebreaks_own_isolation() {
        let isolation = sg("sg-0bbbbbbbbbbbbbbb1");
        let allow = sg("sg-0aaaaaaaaaaaaaaa1");
        let ours: BTreeSet<_> = [isolation.clone(), allow.clone()].into();
        let web = vec![sg("sg-0a1b2c3d4e5f60741")];
        assert_eq!(
            interface_release(std::slice::from_ref(&isolation), Some(&web), &ours),
            InterfaceRelease::Restore(web.clone())
        );
        // Half way through isolation (allow-all) is Firebreak's too.
        assert_eq!(
            interface_release(std::slice::from_ref(&allow), Some(&web), &ours),
            InterfaceRelease::Restore(web.clone())
        );
        assert_eq!(
            interface_release(&web, Some(&web), &ours),
            InterfaceRelease::AsRecorded
        );
        let forensic = vec![isolation.clone(), sg("sg-0cccccccccccccccc")];
        assert_eq!(
            interface_release(&forensic, Some(&web), &ours),
            InterfaceRelease::ChangedSince(forensic.clone())
        );
        assert_eq!(
            interface_release(&web, None, &ours),
            InterfaceRelease::NotRecorded
        );
    }
}
