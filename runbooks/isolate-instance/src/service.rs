//! Out of service before the interfaces move. An instance an Auto Scaling group manages
//! fails its health checks once isolated, and the group terminates it — termination
//! protection does not stop Auto Scaling — taking every volume marked
//! `DeleteOnTermination` with it; a load balancer goes on sending it users' requests. So,
//! before isolation:
//!
//! 1. the group and the target groups it serves are read, and recorded on the instance
//!    (once, never overwritten) so that a release can put it back;
//! 2. the instance enters Standby (`ShouldDecrementDesiredCapacity=false`: the group
//!    launches a replacement, the service keeps its capacity, and a Standby instance is
//!    never health-checked or terminated by the group);
//! 3. it is deregistered from every target group it is registered with, and from every
//!    Classic Load Balancer.
//!
//! Auto Scaling and ELB have no `DryRun`: in a dry run these steps only read and say what
//! they would do.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_elasticloadbalancing::types::Instance as ClassicInstance;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::ids::{InstanceId, VpcId};
use firebreak::outcome::Change;

use crate::isolate::{chunked_tags, Run};

pub const AUTO_SCALING_GROUP_TAG: &str = "firebreak:auto-scaling-group";
pub const TARGET_GROUPS_TAG: &str = "firebreak:target-groups";
pub const LOAD_BALANCERS_TAG: &str = "firebreak:load-balancers";

/// The instance's place in its Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    pub lifecycle_state: String,
}

/// One registration of the instance with a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub target_group_arn: String,
    pub port: Option<i32>,
}

impl Registration {
    /// `targetgroup/web/73e2d6bc24d8a067:80`: the ARN's resource part (the partition,
    /// region and account are the instance's own) and the port.
    pub fn record(&self) -> String {
        let resource = self
            .target_group_arn
            .splitn(6, ':')
            .nth(5)
            .unwrap_or(&self.target_group_arn);
        match self.port {
            Some(p) => format!("{resource}:{p}"),
            None => resource.to_owned(),
        }
    }
}

/// Where the instance serves, as Auto Scaling and ELB report it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InService {
    pub membership: Option<Membership>,
    pub registrations: Vec<Registration>,
    /// Classic Load Balancers (by name) the instance is registered with.
    pub load_balancers: Vec<String>,
}

impl InService {
    /// Whether anything must change to take the instance out of service.
    pub fn must_leave(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.lifecycle_state == "InService")
            || !self.registrations.is_empty()
            || !self.load_balancers.is_empty()
    }
}

/// Whether an earlier run recorded where the instance served: a re-run, when it is out
/// of service already, must not overwrite that with "nowhere".
pub fn service_recorded(tags: &BTreeMap<String, String>) -> bool {
    tags.keys().any(|k| {
        k.starts_with(AUTO_SCALING_GROUP_TAG)
            || k.starts_with(TARGET_GROUPS_TAG)
            || k.starts_with(LOAD_BALANCERS_TAG)
    })
}

/// The tags that record where the instance served, for release; none when it served
/// nowhere or a run recorded it already.
pub fn service_tags(s: &InService, existing: &BTreeMap<String, String>) -> Vec<(String, String)> {
    if service_recorded(existing) {
        return Vec::new();
    }
    let mut tags = Vec::new();
    // Only what Firebreak changes: an instance someone else put in Standby stays theirs to
    // bring back.
    if let Some(m) = s
        .membership
        .as_ref()
        .filter(|m| m.lifecycle_state == "InService")
    {
        tags.push((AUTO_SCALING_GROUP_TAG.to_owned(), m.group.clone()));
    }
    if !s.registrations.is_empty() {
        let records: Vec<String> = s.registrations.iter().map(Registration::record).collect();
        tags.extend(chunked_tags(
            TARGET_GROUPS_TAG,
            records.iter().map(String::as_str),
            ' ',
        ));
    }
    if !s.load_balancers.is_empty() {
        tags.extend(chunked_tags(
            LOAD_BALANCERS_TAG,
            s.load_balancers.iter().map(String::as_str),
            ' ',
        ));
    }
    tags
}

/// The instance's place in its Auto Scaling group, if it has one.
pub(crate) async fn membership(
    autoscaling: &AutoScaling,
    id: &InstanceId,
) -> Result<Option<Membership>, RunbookError> {
    let out = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(id.as_str())
        .send()
        .await
        .map_err(|e| aws_error("autoscaling:DescribeAutoScalingInstances", e))?;
    Ok(out
        .auto_scaling_instances()
        .iter()
        .find(|i| i.instance_id() == Some(id.as_str()))
        .and_then(|i| {
            Some(Membership {
                group: i.auto_scaling_group_name()?.to_owned(),
                lifecycle_state: i.lifecycle_state().unwrap_or("").to_owned(),
            })
        }))
}

/// The instance's Auto Scaling group and every instance-type target group of its VPCs it
/// is registered with. ELB has no lookup by target: each target group is asked.
pub async fn read(
    run: &Run<'_>,
    id: &InstanceId,
    vpcs: &[VpcId],
) -> Result<InService, RunbookError> {
    let (elb, classic) = (run.elb, run.classic);
    let membership = membership(run.autoscaling, id).await?;

    let mut target_groups = Vec::new();
    let mut pages = elb.describe_target_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("elasticloadbalancing:DescribeTargetGroups", e))?;
        for tg in page.target_groups() {
            let instance_type = matches!(tg.target_type(), None | Some(TargetTypeEnum::Instance));
            let ours = tg
                .vpc_id()
                .is_some_and(|v| vpcs.iter().any(|x| x.as_str() == v));
            if let (true, true, Some(arn)) = (instance_type, ours, tg.target_group_arn()) {
                target_groups.push(arn.to_owned());
            }
        }
    }
    let mut registrations = Vec::new();
    for arn in target_groups {
        let health = elb
            .describe_target_health()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(|e| aws_error("elasticloadbalancing:DescribeTargetHealth", e))?;
        for d in health.target_health_descriptions() {
            let Some(target) = d.target() else { continue };
            // Draining or unused: on its way out already, or never in.
            let state = d
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str())
                .unwrap_or("");
            if target.id() == Some(id.as_str()) && !matches!(state, "draining" | "unused") {
                registrations.push(Registration {
                    target_group_arn: arn.clone(),
                    port: target.port(),
                });
            }
        }
    }
    let mut load_balancers = Vec::new();
    let mut pages = classic.describe_load_balancers().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("elasticloadbalancing:DescribeLoadBalancers", e))?;
        for lb in page.load_balancer_descriptions() {
            let registered = lb
                .instances()
                .iter()
                .any(|i| i.instance_id() == Some(id.as_str()));
            if let (true, Some(name)) = (registered, lb.load_balancer_name()) {
                load_balancers.push(name.to_owned());
            }
        }
    }
    Ok(InService {
        membership,
        registrations,
        load_balancers,
    })
}

/// Whether this run put the instance in Standby. Another response for the same instance
/// may have done it since the read: Auto Scaling then refuses (`ValidationError`, only an
/// InService instance can enter Standby), and a second read tells which it was.
async fn enter_standby(run: &Run<'_>, id: &InstanceId, group: &str) -> Result<bool, RunbookError> {
    if run.dry_run {
        return Ok(true);
    }
    let refused = match run
        .autoscaling
        .enter_standby()
        .auto_scaling_group_name(group)
        .instance_ids(id.as_str())
        .should_decrement_desired_capacity(false)
        .send()
        .await
    {
        Ok(_) => return Ok(true),
        Err(e) if error_code(&e) == Some("ValidationError") => e,
        Err(e) => return Err(aws_error("autoscaling:EnterStandby", e)),
    };
    match membership(run.autoscaling, id).await? {
        Some(m) if matches!(m.lifecycle_state.as_str(), "Standby" | "EnteringStandby") => {
            tracing::info!(instance_id = %id, group, "in Standby already: another response took it out of service");
            Ok(false)
        }
        _ => Err(aws_error("autoscaling:EnterStandby", refused)),
    }
}

/// Whether the target is still registered with the group (not draining or unused).
async fn still_registered(
    run: &Run<'_>,
    id: &InstanceId,
    r: &Registration,
) -> Result<bool, RunbookError> {
    let health = run
        .elb
        .describe_target_health()
        .target_group_arn(&r.target_group_arn)
        .send()
        .await
        .map_err(|e| aws_error("elasticloadbalancing:DescribeTargetHealth", e))?;
    Ok(health.target_health_descriptions().iter().any(|d| {
        let state = d
            .target_health()
            .and_then(|h| h.state())
            .map(|s| s.as_str())
            .unwrap_or("");
        d.target()
            .is_some_and(|t| t.id() == Some(id.as_str()) && t.port() == r.port)
            && !matches!(state, "draining" | "unused")
    }))
}

/// Deregisters the target; `false` when another response did it first (ELB refuses a
/// target that is no longer registered: read again, and go on without claiming it).
async fn deregister(
    run: &Run<'_>,
    id: &InstanceId,
    r: &Registration,
) -> Result<bool, RunbookError> {
    let target = TargetDescription::builder()
        .id(id.as_str())
        .set_port(r.port)
        .build();
    let refused = match run
        .elb
        .deregister_targets()
        .target_group_arn(&r.target_group_arn)
        .targets(target)
        .send()
        .await
    {
        Ok(_) => return Ok(true),
        Err(e) if error_code(&e) == Some("InvalidTarget") => e,
        Err(e) => return Err(aws_error("elasticloadbalancing:DeregisterTargets", e)),
    };
    if still_registered(run, id, r).await? {
        return Err(aws_error("elasticloadbalancing:DeregisterTargets", refused));
    }
    tracing::info!(instance_id = %id, target_group = %r.record(), "deregistered already: another response took it out of the target group");
    Ok(false)
}

/// Standby, then out of every target group. Returns what could not be done and why (an
/// instance still launching cannot enter Standby): isolation goes on, the outcome says it.
pub async fn leave(
    run: &mut Run<'_>,
    id: &InstanceId,
    s: &InService,
) -> Result<Vec<String>, RunbookError> {
    let (classic, dry_run) = (run.classic, run.dry_run);
    let mut warnings = Vec::new();
    if let Some(m) = &s.membership {
        match m.lifecycle_state.as_str() {
            "InService" => {
                if enter_standby(run, id, &m.group).await? {
                    run.changes.push(Change {
                        resource: id.to_string(),
                        what: format!("Auto Scaling group {}", m.group),
                        before: "InService".into(),
                        after: "Standby".into(),
                    });
                }
            }
            "Standby" | "EnteringStandby" => {}
            other => {
                tracing::warn!(instance_id = %id, group = %m.group, state = other, "not InService: cannot enter Standby");
                warnings.push(format!(
                    "{id} is {other} in Auto Scaling group {}, so it could not enter Standby: the group may still replace it",
                    m.group
                ));
            }
        }
    }
    for r in &s.registrations {
        if !dry_run && !deregister(run, id, r).await? {
            continue;
        }
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!("target group {}", r.record()),
            before: "registered".into(),
            after: "deregistered".into(),
        });
    }
    for name in &s.load_balancers {
        if !dry_run {
            classic
                .deregister_instances_from_load_balancer()
                .load_balancer_name(name)
                .instances(ClassicInstance::builder().instance_id(id.as_str()).build())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
                        e,
                    )
                })?;
        }
        run.changes.push(Change {
            resource: id.to_string(),
            what: format!("load balancer {name}"),
            before: "registered".into(),
            after: "deregistered".into(),
        });
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(port: Option<i32>) -> Registration {
        Registration {
            target_group_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067"
                    .into(),
            port,
        }
    }

    #[test]
    fn a_registration_is_recorded_as_its_resource_and_port() {
        assert_eq!(
            registration(Some(80)).record(),
            "targetgroup/web/73e2d6bc24d8a067:80"
        );
        assert_eq!(
            registration(None).record(),
            "targetgroup/web/73e2d6bc24d8a067"
        );
    }

    #[test]
    fn where_it_served_is_recorded_once() {
        let s = InService {
            membership: Some(Membership {
                group: "web-asg".into(),
                lifecycle_state: "InService".into(),
            }),
            registrations: vec![registration(Some(80)), registration(Some(8080))],
            load_balancers: vec!["web-classic".into()],
        };
        let tags = service_tags(&s, &BTreeMap::new());
        assert_eq!(
            tags,
            vec![
                (AUTO_SCALING_GROUP_TAG.into(), "web-asg".into()),
                (
                    TARGET_GROUPS_TAG.into(),
                    "targetgroup/web/73e2d6bc24d8a067:80 targetgroup/web/73e2d6bc24d8a067:8080"
                        .into()
                ),
                (LOAD_BALANCERS_TAG.into(), "web-classic".into()),
            ]
        );
        let recorded: BTreeMap<String, String> = tags.into_iter().collect();
        assert!(service_tags(&InService::default(), &recorded).is_empty());
        assert!(service_tags(&InService::default(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn many_target_groups_are_cut_into_tag_sized_parts() {
        let s = InService {
            membership: None,
            registrations: (0..12).map(|p| registration(Some(8000 + p))).collect(),
            load_balancers: vec![],
        };
        let tags = service_tags(&s, &BTreeMap::new());
        assert!(tags.len() > 1, "{tags:?}");
        assert!(tags.iter().all(|(_, v)| v.len() <= 256), "{tags:?}");
        assert_eq!(tags[1].0, format!("{TARGET_GROUPS_TAG}:2"));
        let all: Vec<&str> = tags.iter().flat_map(|(_, v)| v.split(' ')).collect();
        assert_eq!(all.len(), 12);
    }
}
