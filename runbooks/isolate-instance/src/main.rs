//! isolate-instance: keeps the evidence, then cuts the instance off the network.
//! The steps and their reasons are in `isolate.rs`; this file takes the plan's action,
//! runs the steps in order and reports what changed. The release machine's
//! `{"release": …}` puts an isolated instance back (`release.rs`).

mod isolate;
mod release;
mod service;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_ec2::Client;
use aws_sdk_elasticloadbalancing::Client as ClassicLoadBalancing;
use aws_sdk_elasticloadbalancingv2::Client as LoadBalancing;
use firebreak::error::{InputError, RunbookError};
use firebreak::ids::{InstanceId, SecurityGroupId, VpcId};
use firebreak::outcome::{ActionOutcome, ActionRequest, OutcomeStatus, RunbookOutput};
use firebreak::plan::PlannedAction;
use firebreak::policy::ActionKind;
use firebreak::reach::Reach;
use firebreak::release::ReleasePlan;
use isolate::Run;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The services isolation talks to, all in the finding's account and region.
pub struct Clients {
    pub ec2: Client,
    pub autoscaling: AutoScaling,
    pub elb: LoadBalancing,
    pub classic: ClassicLoadBalancing,
}

/// Every isolation the plan holds (an attack sequence names several instances), one
/// outcome each, in the plan's order. A failure carries the changes already made.
pub async fn isolate_planned(
    req: &ActionRequest,
    clients: &Clients,
) -> Result<RunbookOutput, RunbookError> {
    let ids = req
        .plan
        .actions_of(ActionKind::IsolateInstance)
        .filter_map(|a| match a {
            PlannedAction::IsolateInstance { instance_id, .. } => Some(instance_id),
            _ => None,
        });
    RunbookOutput::each(
        ActionKind::IsolateInstance,
        ids,
        "the plan has no isolate-instance action",
        |id| isolate_one(req, id, clients),
    )
    .await
}

/// The plan's first isolation (a single finding has one).
pub async fn isolate_instance(
    req: ActionRequest,
    clients: &Clients,
) -> Result<ActionOutcome, RunbookError> {
    let mut out = isolate_planned(&req, clients).await?;
    Ok(out.outcomes.remove(0))
}

async fn isolate_one(
    req: &ActionRequest,
    instance_id: &InstanceId,
    clients: &Clients,
) -> Result<ActionOutcome, RunbookError> {
    let ec2 = &clients.ec2;
    let started_at = OffsetDateTime::now_utc();
    let plan = &req.plan;
    let finding_id = plan.finding.security_hub.id.as_str();
    let Some(view) = isolate::describe(ec2, instance_id).await? else {
        return Err(RunbookError::TargetGone {
            error_type: "InstanceNotFound",
            message: format!("instance {instance_id} no longer exists; nothing was changed"),
        });
    };

    let mut run = Run {
        ec2,
        autoscaling: &clients.autoscaling,
        elb: &clients.elb,
        classic: &clients.classic,
        dry_run: plan.dry_run,
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    // Whatever fails part way, the error carries every change made before it.
    if let Err(e) = contain(&mut run, &view, finding_id, req.execution_id.as_deref()).await {
        return Err(e.after_changes(&run.changes));
    }

    let moved = run
        .changes
        .iter()
        .filter(|c| c.what == "security groups")
        .count();
    let snapshots = run.changes.iter().filter(|c| c.what == "snapshot").count();
    let out_of_service = run
        .changes
        .iter()
        .filter(|c| c.after == "Standby" || c.after == "deregistered")
        .map(|c| c.what.as_str())
        .collect::<Vec<_>>();
    let out_of_service = if out_of_service.is_empty() {
        String::new()
    } else {
        format!("; out of service first ({})", out_of_service.join(", "))
    };
    let (status, mut summary) = if plan.dry_run {
        (OutcomeStatus::DryRun, format!(
            "dry run: would isolate {instance_id} ({moved} of {} interfaces, {snapshots} snapshots{out_of_service}); EC2 permissions checked",
            view.interfaces.len()
        ))
    } else if run.changes.is_empty() {
        (
            OutcomeStatus::AlreadyDone,
            format!("{instance_id} was already isolated; nothing changed"),
        )
    } else {
        (OutcomeStatus::Done, format!(
            "isolated {instance_id}: {moved} interfaces into the isolation group, {snapshots} evidence snapshots, termination protection on, volumes kept on termination{out_of_service}"
        ))
    };
    for w in &run.warnings {
        summary.push_str("; ");
        summary.push_str(w);
    }
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id,
        action = "isolate-instance",
        instance_id = %instance_id,
        status = ?status,
        changes = run.changes.len(),
        "{summary}"
    );
    Ok(ActionOutcome {
        action: ActionKind::IsolateInstance,
        status,
        target: instance_id.to_string(),
        summary,
        changes: run.changes,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let reach = Reach::from_env(sdk, "isolate-instance");
    let reach = &reach;
    firebreak::runtime::serve("isolate-instance", |event: Value| async move {
        let out = if event.get("release").is_some() {
            let req: ReleaseEvent = InputError::read(event)?;
            let plan = &req.release;
            let config = reach
                .config_for(&plan.account_id, &plan.region, plan.execution_id.as_deref())
                .await?;
            serde_json::to_value(release::release_planned(plan, &Clients::new(&config)).await?)
        } else {
            let req: ActionRequest = InputError::read(event)?;
            // In the finding's account and region.
            let config = reach
                .for_plan(&req.plan, req.execution_id.as_deref())
                .await?;
            serde_json::to_value(isolate_planned(&req, &Clients::new(&config)).await?)
        };
        out.map_err(|e| RunbookError::Aws {
            operation: "serialise result",
            message: e.to_string(),
            transient: false,
        })
    })
    .await
}

/// What the release machine hands isolate-instance: the plan triage verified.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseEvent {
    release: ReleasePlan,
}

impl Clients {
    fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            ec2: Client::new(config),
            autoscaling: AutoScaling::new(config),
            elb: LoadBalancing::new(config),
            classic: ClassicLoadBalancing::new(config),
        }
    }
}

/// The isolation itself, in order: the VPCs' groups, evidence, termination protection, the
/// tags, then each interface. Every step records its changes in `run`.
async fn contain(
    run: &mut Run<'_>,
    view: &isolate::InstanceView,
    finding_id: &str,
    execution_id: Option<&str>,
) -> Result<(), RunbookError> {
    let instance_id = &view.instance_id;
    // The VPCs' groups first (one read each): whether anything must move is known before
    // the instance is touched, so a re-run of a contained instance changes nothing.
    let mut groups: BTreeMap<VpcId, Option<(SecurityGroupId, SecurityGroupId)>> = BTreeMap::new();
    for iface in &view.interfaces {
        if !groups.contains_key(&iface.vpc_id) {
            let pair = isolate::ensure_groups(run, &iface.vpc_id).await?;
            groups.insert(iface.vpc_id.clone(), pair);
        }
    }
    let pair_of =
        |iface: &isolate::InterfaceView| groups.get(&iface.vpc_id).and_then(|p| p.as_ref());
    isolate::snapshot_volumes(run, view, finding_id).await?;
    isolate::protect(run, view).await?;
    // Out of service before any interface moves: recorded first, with the groups.
    let vpcs: Vec<VpcId> = groups.keys().cloned().collect();
    let serving = service::read(run, instance_id, &vpcs).await?;
    let record = service::service_tags(&serving, &view.tags);
    let must_move = view
        .interfaces
        .iter()
        .any(|iface| isolate::needs_move(iface, pair_of(iface)));
    let must_leave = serving.must_leave();
    if must_move || must_leave || !run.changes.is_empty() {
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        isolate::tag_instance(run, view, finding_id, execution_id, &now, &record).await?;
    }
    let warnings = service::leave(run, instance_id, &serving).await?;
    run.warnings.extend(warnings);
    for iface in &view.interfaces {
        isolate::move_interface(run, iface, pair_of(iface)).await?;
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    //! The step sequence against mocked EC2 answers. The behaviour against the local
    //! account (groups really moved, snapshots really tagged) is in the end-to-end tests.
    use super::*;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
    use aws_sdk_autoscaling::operation::enter_standby::EnterStandbyOutput;
    use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
    use aws_sdk_ec2::operation::authorize_security_group_egress::AuthorizeSecurityGroupEgressOutput;
    use aws_sdk_ec2::operation::authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput;
    use aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupOutput;
    use aws_sdk_ec2::operation::create_snapshot::CreateSnapshotOutput;
    use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
    use aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput;
    use aws_sdk_ec2::operation::describe_instances::{
        DescribeInstancesError, DescribeInstancesOutput,
    };
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
    use aws_sdk_ec2::operation::modify_instance_attribute::{
        ModifyInstanceAttributeError, ModifyInstanceAttributeOutput,
    };
    use aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput;
    use aws_sdk_ec2::operation::revoke_security_group_egress::RevokeSecurityGroupEgressOutput;
    use aws_sdk_ec2::types::{
        AttributeBooleanValue, AttributeValue, EbsInstanceBlockDevice, GroupIdentifier, Instance,
        InstanceBlockDeviceMapping, InstanceNetworkInterface, IpPermission, IpRange, Reservation,
        SecurityGroup, Snapshot, Tag,
    };
    use aws_sdk_elasticloadbalancing::operation::deregister_instances_from_load_balancer::DeregisterInstancesFromLoadBalancerOutput as DeregisterEndPointsOutput;
    use aws_sdk_elasticloadbalancing::operation::describe_load_balancers::DescribeLoadBalancersOutput as DescribeAccessPointsOutput;
    use aws_sdk_elasticloadbalancing::types::{
        Instance as ClassicInstance, LoadBalancerDescription,
    };
    use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
    use aws_sdk_elasticloadbalancingv2::types::{
        TargetDescription, TargetGroup, TargetHealth, TargetHealthDescription,
        TargetHealthStateEnum, TargetTypeEnum,
    };
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
    const ENI: &str = "eni-0a1b2c3d4e5f60711";
    const VPC: &str = "vpc-0a1b2c3d4e5f60731";
    const WEB_SG: &str = "sg-0a1b2c3d4e5f60741";
    const ALLOW_SG: &str = "sg-0aaaaaaaaaaaaaaa1";
    const ISOLATION_SG: &str = "sg-0bbbbbbbbbbbbbbb1";

    fn request(dry_run: bool) -> ActionRequest {
        ActionRequest {
            plan: firebreak::fixtures::fixture_plan("ec2-network-backdoor.json", dry_run).unwrap(),
            execution_id: Some("exec-1".into()),
        }
    }

    fn instance(groups: &[&str], tags: &[(&str, &str)]) -> Instance {
        Instance::builder()
            .instance_id(INSTANCE)
            .network_interfaces(
                InstanceNetworkInterface::builder()
                    .network_interface_id(ENI)
                    .vpc_id(VPC)
                    .set_groups(Some(
                        groups
                            .iter()
                            .map(|g| GroupIdentifier::builder().group_id(*g).build())
                            .collect(),
                    ))
                    .build(),
            )
            .block_device_mappings(
                InstanceBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        EbsInstanceBlockDevice::builder()
                            .volume_id("vol-0123456789abcdef0")
                            .build(),
                    )
                    .build(),
            )
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    }

    struct Mocks {
        rules: Vec<Rule>,
        /// Auto Scaling, then ELB: by default the instance serves nowhere.
        autoscaling: Vec<Rule>,
        elb: Vec<Rule>,
        classic: Vec<Rule>,
    }

    impl Mocks {
        fn client(&self) -> Clients {
            let refs: Vec<&Rule> = self.rules.iter().collect();
            let asg: Vec<&Rule> = self.autoscaling.iter().collect();
            let elb: Vec<&Rule> = self.elb.iter().collect();
            let classic: Vec<&Rule> = self.classic.iter().collect();
            Clients {
                ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, refs.as_slice()),
                autoscaling: mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg.as_slice()),
                elb: mock_client!(
                    aws_sdk_elasticloadbalancingv2,
                    RuleMode::MatchAny,
                    elb.as_slice()
                ),
                classic: mock_client!(
                    aws_sdk_elasticloadbalancing,
                    RuleMode::MatchAny,
                    classic.as_slice()
                ),
            }
        }
        fn calls(&self, i: usize) -> usize {
            self.rules[i].num_calls()
        }
    }

    /// Index of each rule, for counting calls.
    const DESCRIBE: usize = 0;
    const SNAPSHOTS: usize = 1;
    const CREATE_SNAPSHOT: usize = 2;
    const MODIFY_ATTR: usize = 5;
    const CREATE_TAGS: usize = 6;
    const CREATE_GROUP: usize = 8;
    const MODIFY_ENI: usize = 12;

    /// All traffic, IPv4 and IPv6: what the allow-all group holds.
    fn everything() -> IpPermission {
        IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .ipv6_ranges(
                aws_sdk_ec2::types::Ipv6Range::builder()
                    .cidr_ipv6("::/0")
                    .build(),
            )
            .build()
    }

    fn mocks(inst: Instance, already: bool) -> Mocks {
        let snapshot_exists = already;
        let group_exists = already;
        let rules = vec![
            mock!(Client::describe_instances).then_output(move || {
                DescribeInstancesOutput::builder()
                    .reservations(Reservation::builder().instances(inst.clone()).build())
                    .build()
            }),
            mock!(Client::describe_snapshots).then_output(move || {
                let b = DescribeSnapshotsOutput::builder();
                if snapshot_exists {
                    b.snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-0123456789abcdef0")
                            .volume_id("vol-0123456789abcdef0")
                            .build(),
                    )
                    .build()
                } else {
                    b.build()
                }
            }),
            mock!(Client::create_snapshot).then_output(|| {
                CreateSnapshotOutput::builder()
                    .snapshot_id("snap-0fedcba9876543210")
                    .build()
            }),
            mock!(Client::describe_instance_attribute)
                .match_requests(|r| {
                    r.attribute()
                        == Some(&aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
                })
                .then_output(move || {
                    DescribeInstanceAttributeOutput::builder()
                        .disable_api_termination(
                            AttributeBooleanValue::builder().value(already).build(),
                        )
                        .build()
                }),
            mock!(Client::describe_instance_attribute).then_output(move || {
                DescribeInstanceAttributeOutput::builder()
                    .instance_initiated_shutdown_behavior(
                        AttributeValue::builder()
                            .value(if already { "stop" } else { "terminate" })
                            .build(),
                    )
                    .build()
            }),
            mock!(Client::modify_instance_attribute)
                .then_output(|| ModifyInstanceAttributeOutput::builder().build()),
            mock!(Client::create_tags).then_output(|| CreateTagsOutput::builder().build()),
            mock!(Client::describe_security_groups)
                .match_requests(|r| !r.filters().is_empty())
                .then_output(move || {
                    let b = DescribeSecurityGroupsOutput::builder();
                    if group_exists {
                        // Both groups, found by name in one read; the isolation group has
                        // no rules.
                        b.security_groups(
                            SecurityGroup::builder()
                                .group_id(ALLOW_SG)
                                .group_name(format!("{}{VPC}", isolate::ALLOW_ALL_GROUP_PREFIX))
                                .ip_permissions(everything())
                                .ip_permissions_egress(everything())
                                .build(),
                        )
                        .security_groups(
                            SecurityGroup::builder()
                                .group_id(ISOLATION_SG)
                                .group_name(format!("{}{VPC}", isolate::ISOLATION_GROUP_PREFIX))
                                .build(),
                        )
                        .build()
                    } else {
                        b.build()
                    }
                }),
            mock!(Client::create_security_group).then_output(|| {
                CreateSecurityGroupOutput::builder()
                    .group_id(ISOLATION_SG)
                    .build()
            }),
            mock!(Client::describe_security_groups).then_output(move || {
                let g = SecurityGroup::builder().group_id(ISOLATION_SG);
                let g = if already {
                    g
                } else {
                    g.ip_permissions_egress(
                        IpPermission::builder()
                            .ip_protocol("-1")
                            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                            .build(),
                    )
                };
                DescribeSecurityGroupsOutput::builder()
                    .security_groups(g.build())
                    .build()
            }),
            mock!(Client::authorize_security_group_ingress)
                .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().build()),
            mock!(Client::authorize_security_group_egress)
                .then_output(|| AuthorizeSecurityGroupEgressOutput::builder().build()),
            mock!(Client::modify_network_interface_attribute)
                .then_output(|| ModifyNetworkInterfaceAttributeOutput::builder().build()),
            mock!(Client::revoke_security_group_egress)
                .then_output(|| RevokeSecurityGroupEgressOutput::builder().build()),
        ];
        Mocks {
            rules,
            autoscaling: vec![mock!(AutoScaling::describe_auto_scaling_instances)
                .then_output(|| DescribeAutoScalingInstancesOutput::builder().build())],
            elb: vec![mock!(LoadBalancing::describe_target_groups)
                .then_output(|| DescribeTargetGroupsOutput::builder().build())],
            classic: vec![mock!(ClassicLoadBalancing::describe_load_balancers)
                .then_output(|| DescribeAccessPointsOutput::builder().build())],
        }
    }

    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067";

    /// Auto Scaling's answer to DescribeAutoScalingInstances: the instance in `web-fleet`,
    /// in `state`.
    fn in_fleet_as(
        state: &'static str,
    ) -> impl Fn() -> DescribeAutoScalingInstancesOutput + Send + Sync + 'static {
        move || {
            DescribeAutoScalingInstancesOutput::builder()
                .auto_scaling_instances(
                    AutoScalingInstanceDetails::builder()
                        .instance_id(INSTANCE)
                        .auto_scaling_group_name("web-fleet")
                        .lifecycle_state(state)
                        .build(),
                )
                .build()
        }
    }

    /// The instance in Auto Scaling group `web-fleet` (in `state`) and registered with one
    /// target group on port 8080 (in `health`).
    fn in_a_fleet(m: &mut Mocks, state: &'static str, health: &'static str) {
        m.autoscaling = vec![
            mock!(AutoScaling::describe_auto_scaling_instances).then_output(in_fleet_as(state)),
            mock!(AutoScaling::enter_standby).then_output(|| EnterStandbyOutput::builder().build()),
        ];
        m.elb = vec![
            mock!(LoadBalancing::describe_target_groups).then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(TG)
                            .vpc_id(VPC)
                            .target_type(TargetTypeEnum::Instance)
                            .build(),
                    )
                    .build()
            }),
            mock!(LoadBalancing::describe_target_health).then_output(move || {
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(
                        TargetHealthDescription::builder()
                            .target(TargetDescription::builder().id(INSTANCE).port(8080).build())
                            .target_health(
                                TargetHealth::builder()
                                    .state(TargetHealthStateEnum::from(health))
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
            mock!(LoadBalancing::deregister_targets)
                .then_output(|| DeregisterTargetsOutput::builder().build()),
        ];
        // Registered with a Classic Load Balancer too, unless already out of service.
        let registered = health != "unused";
        m.classic = vec![
            mock!(ClassicLoadBalancing::describe_load_balancers).then_output(move || {
                let lb = LoadBalancerDescription::builder().load_balancer_name("web-classic");
                let lb = if registered {
                    lb.instances(ClassicInstance::builder().instance_id(INSTANCE).build())
                } else {
                    lb
                };
                DescribeAccessPointsOutput::builder()
                    .load_balancer_descriptions(lb.build())
                    .build()
            }),
            mock!(ClassicLoadBalancing::deregister_instances_from_load_balancer)
                .then_output(|| DeregisterEndPointsOutput::builder().build()),
        ];
    }

    #[tokio::test]
    async fn a_fleet_instance_leaves_service_recorded_before_an_interface_moves() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "InService", "healthy");
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Done);
        let what: Vec<&str> = out.changes.iter().map(|c| c.what.as_str()).collect();
        let at = |w: &str| what.iter().position(|x| x.starts_with(w)).unwrap();
        assert!(at("where it served recorded") < at("Auto Scaling group web-fleet"));
        assert!(at("Auto Scaling group web-fleet") < at("security groups"));
        assert!(at("target group targetgroup/web/73e2d6bc24d8a067:8080") < at("security groups"));
        let record = out
            .changes
            .iter()
            .find(|c| c.what == "where it served recorded")
            .unwrap();
        assert_eq!(
            record.after,
            "firebreak:auto-scaling-group=web-fleet; firebreak:target-groups=targetgroup/web/73e2d6bc24d8a067:8080; firebreak:load-balancers=web-classic"
        );
        assert_eq!(m.autoscaling[1].num_calls(), 1, "EnterStandby");
        assert_eq!(m.elb[2].num_calls(), 1, "DeregisterTargets");
        assert_eq!(
            m.classic[1].num_calls(),
            1,
            "DeregisterInstancesFromLoadBalancer"
        );
        assert!(out.summary.contains("out of service first (Auto Scaling group web-fleet, target group targetgroup/web/73e2d6bc24d8a067:8080, load balancer web-classic)"), "{}", out.summary);
    }

    /// Two responses for one instance at once: both read it InService, the other one puts
    /// it in Standby first, and Auto Scaling refuses this one's EnterStandby. This run
    /// reads again, finds it in Standby, and goes on without claiming the change.
    #[tokio::test]
    async fn an_instance_another_response_put_in_standby_meanwhile_is_not_an_error() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "InService", "healthy");
        m.autoscaling = vec![
            mock!(AutoScaling::describe_auto_scaling_instances)
                .sequence()
                .output(in_fleet_as("InService"))
                .output(in_fleet_as("Standby"))
                .build(),
            mock!(AutoScaling::enter_standby).then_error(|| {
                aws_sdk_autoscaling::operation::enter_standby::EnterStandbyError::generic(
                    ErrorMetadata::builder()
                        .code("ValidationError")
                        .message("The instance i-0a1b2c3d4e5f60718 is not in InService.")
                        .build(),
                )
            }),
        ];
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Done);
        assert_eq!(
            m.autoscaling[0].num_calls(),
            2,
            "read again after the refusal"
        );
        assert!(!out
            .changes
            .iter()
            .any(|c| c.what == "Auto Scaling group web-fleet"));
        assert!(out.changes.iter().any(|c| c.what == "security groups"));
    }

    /// The same race at the target group: the other response deregistered it first, ELB
    /// refuses this one's DeregisterTargets (InvalidTarget), a second read finds it gone.
    #[tokio::test]
    async fn a_target_another_response_deregistered_meanwhile_is_not_an_error() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "InService", "healthy");
        let health = |state: &'static str| {
            move || {
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(
                        TargetHealthDescription::builder()
                            .target(TargetDescription::builder().id(INSTANCE).port(8080).build())
                            .target_health(
                                TargetHealth::builder()
                                    .state(TargetHealthStateEnum::from(state))
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }
        };
        m.elb[1] = mock!(LoadBalancing::describe_target_health)
            .sequence()
            .output(health("healthy"))
            .output(health("draining"))
            .build();
        m.elb[2] = mock!(LoadBalancing::deregister_targets).then_error(|| {
            aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsError::generic(
                ErrorMetadata::builder()
                    .code("InvalidTarget")
                    .message("The specified target does not exist")
                    .build(),
            )
        });
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Done);
        assert_eq!(m.elb[1].num_calls(), 2, "read again after the refusal");
        assert!(!out
            .changes
            .iter()
            .any(|c| c.what.starts_with("target group")));
        assert!(out.changes.iter().any(|c| c.what == "security groups"));
    }

    /// Refused and still registered: a real failure.
    #[tokio::test]
    async fn a_refused_deregistration_of_a_target_still_registered_fails() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "InService", "healthy");
        m.elb[2] = mock!(LoadBalancing::deregister_targets).then_error(|| {
            aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsError::generic(
                ErrorMetadata::builder().code("InvalidTarget").build(),
            )
        });
        let err = isolate_instance(request(false), &m.client())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("DeregisterTargets failed: InvalidTarget"),
            "{err}"
        );
        assert_eq!(m.calls(MODIFY_ENI), 0, "no interface moved");
    }

    /// Refused and still InService: a real failure, never taken for done.
    #[tokio::test]
    async fn a_refused_standby_of_an_instance_still_in_service_fails() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "InService", "healthy");
        m.autoscaling[1] = mock!(AutoScaling::enter_standby).then_error(|| {
            aws_sdk_autoscaling::operation::enter_standby::EnterStandbyError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("AutoScalingGroup name not found")
                    .build(),
            )
        });
        let err = isolate_instance(request(false), &m.client())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("autoscaling:EnterStandby failed: ValidationError"),
            "{err}"
        );
        assert_eq!(m.calls(MODIFY_ENI), 0, "no interface moved");
    }

    #[tokio::test]
    async fn an_instance_out_of_service_already_is_left_as_it_is() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "Standby", "unused");
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(m.autoscaling[1].num_calls(), 0, "EnterStandby");
        assert_eq!(m.elb[2].num_calls(), 0, "DeregisterTargets");
        assert!(!out
            .changes
            .iter()
            .any(|c| c.what == "where it served recorded"));
    }

    #[tokio::test]
    async fn an_instance_still_launching_is_isolated_and_the_summary_says_the_group_may_replace_it()
    {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        in_a_fleet(&mut m, "Pending", "unused");
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Done);
        assert_eq!(m.autoscaling[1].num_calls(), 0);
        assert!(
            out.summary.contains(
                "is Pending in Auto Scaling group web-fleet, so it could not enter Standby"
            ),
            "{}",
            out.summary
        );
    }

    #[tokio::test]
    async fn a_dry_run_reads_where_it_serves_and_calls_no_write() {
        let dry = || {
            ErrorMetadata::builder()
                .code("DryRunOperation")
                .message("Request would have succeeded, but DryRun flag is set.")
                .build()
        };
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        m.rules[MODIFY_ATTR] = mock!(Client::modify_instance_attribute)
            .then_error(move || ModifyInstanceAttributeError::generic(dry()));
        m.rules[CREATE_SNAPSHOT] = mock!(Client::create_snapshot).then_error(move || {
            aws_sdk_ec2::operation::create_snapshot::CreateSnapshotError::generic(dry())
        });
        m.rules[CREATE_TAGS] = mock!(Client::create_tags).then_error(move || {
            aws_sdk_ec2::operation::create_tags::CreateTagsError::generic(dry())
        });
        m.rules[CREATE_GROUP] = mock!(Client::create_security_group).then_error(move || {
            aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupError::generic(dry())
        });
        m.rules[MODIFY_ENI] = mock!(Client::modify_network_interface_attribute).then_error(move || {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeError::generic(dry())
        });
        in_a_fleet(&mut m, "InService", "healthy");
        let out = isolate_instance(request(true), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::DryRun);
        assert_eq!(m.autoscaling[1].num_calls(), 0, "EnterStandby");
        assert_eq!(m.elb[2].num_calls(), 0, "DeregisterTargets");
        assert!(
            out.summary.contains("out of service first"),
            "{}",
            out.summary
        );
    }

    #[tokio::test]
    async fn isolates_with_evidence_first() {
        let m = mocks(instance(&[WEB_SG], &[]), false);
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Done);
        assert_eq!(out.target, INSTANCE);
        // The VPC's groups are made ready first (they touch no instance); then evidence,
        // then the original groups recorded, and only then does an interface move.
        let what: Vec<&str> = out
            .changes
            .iter()
            .map(|c| c.what.as_str())
            .filter(|w| {
                !w.starts_with("security group ")
                    && !w.starts_with("allow-all group ")
                    && *w != "isolation group rules"
            })
            .collect();
        assert_eq!(
            what,
            [
                "snapshot",
                "termination protection",
                "shutdown behaviour",
                "original security groups recorded",
                "security groups"
            ]
        );
        let moved = out
            .changes
            .iter()
            .find(|c| c.what == "security groups")
            .unwrap();
        assert_eq!(
            (
                moved.resource.as_str(),
                moved.before.as_str(),
                moved.after.as_str()
            ),
            (ENI, WEB_SG, ISOLATION_SG)
        );
        assert_eq!(m.calls(CREATE_SNAPSHOT), 1);
        assert_eq!(
            m.calls(MODIFY_ATTR),
            2,
            "termination protection and shutdown behaviour"
        );
        assert_eq!(m.calls(CREATE_GROUP), 2, "allow-all and isolation groups");
        assert_eq!(
            m.calls(MODIFY_ENI),
            2,
            "through allow-all, then into isolation"
        );
        assert_eq!(
            m.calls(CREATE_TAGS),
            1,
            "one tag call: the original groups and who/when/why"
        );
        assert_eq!(m.calls(SNAPSHOTS), 1, "one read for every volume");
    }

    #[tokio::test]
    async fn an_interface_that_cannot_reach_isolation_is_put_back_not_left_open() {
        use aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeError;
        // The VPC's groups exist; the instance is not isolated yet.
        let mut m = mocks(instance(&[WEB_SG], &[]), true);
        let into_isolation = mock!(Client::modify_network_interface_attribute)
            .match_requests(|r| r.groups() == [ISOLATION_SG.to_owned()])
            .then_error(|| {
                ModifyNetworkInterfaceAttributeError::generic(
                    ErrorMetadata::builder()
                        .code("UnauthorizedOperation")
                        .message("denied")
                        .build(),
                )
            });
        let back = mock!(Client::modify_network_interface_attribute)
            .match_requests(|r| r.groups() == [WEB_SG.to_owned()])
            .then_output(|| ModifyNetworkInterfaceAttributeOutput::builder().build());
        m.rules.insert(MODIFY_ENI, back);
        m.rules.insert(MODIFY_ENI, into_isolation);
        let err = isolate_instance(request(false), &m.client())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("put back into its original groups"),
            "{err}"
        );
        assert!(err.to_string().contains("NOT isolated"), "{err}");
        assert_eq!(m.calls(MODIFY_ENI), 2, "two tries into isolation");
        assert_eq!(m.calls(MODIFY_ENI + 1), 1, "one move back");
        assert_eq!(m.calls(MODIFY_ENI + 2), 1, "one move into allow-all");
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing() {
        let tags = [("firebreak:original-groups:eni-0a1b2c3d4e5f60711", WEB_SG)];
        let m = mocks(instance(&[ISOLATION_SG], &tags), true);
        let out = isolate_instance(request(false), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::AlreadyDone, "{:?}", out.changes);
        assert!(out.changes.is_empty());
        for i in [
            CREATE_SNAPSHOT,
            MODIFY_ATTR,
            CREATE_TAGS,
            CREATE_GROUP,
            MODIFY_ENI,
        ] {
            assert_eq!(m.calls(i), 0, "rule {i}");
        }
        assert_eq!(m.calls(DESCRIBE), 1);
        assert_eq!(m.calls(SNAPSHOTS), 1);
    }

    #[tokio::test]
    async fn a_dry_run_checks_every_change_and_makes_none() {
        let dry = |code: &'static str| {
            ErrorMetadata::builder()
                .code(code)
                .message("Request would have succeeded, but DryRun flag is set.")
                .build()
        };
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        m.rules[MODIFY_ATTR] = mock!(Client::modify_instance_attribute)
            .then_error(move || ModifyInstanceAttributeError::generic(dry("DryRunOperation")));
        m.rules[CREATE_SNAPSHOT] = mock!(Client::create_snapshot).then_error(move || {
            aws_sdk_ec2::operation::create_snapshot::CreateSnapshotError::generic(dry(
                "DryRunOperation",
            ))
        });
        m.rules[CREATE_TAGS] = mock!(Client::create_tags).then_error(move || {
            aws_sdk_ec2::operation::create_tags::CreateTagsError::generic(dry("DryRunOperation"))
        });
        m.rules[CREATE_GROUP] = mock!(Client::create_security_group).then_error(move || {
            aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupError::generic(dry(
                "DryRunOperation",
            ))
        });
        m.rules[MODIFY_ENI] = mock!(Client::modify_network_interface_attribute).then_error(move || {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeError::generic(dry("DryRunOperation"))
        });
        let out = isolate_instance(request(true), &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::DryRun);
        assert!(
            out.summary
                .starts_with("dry run: would isolate i-0a1b2c3d4e5f60718"),
            "{}",
            out.summary
        );
        assert!(out
            .changes
            .iter()
            .any(|c| c.what == "security groups" && c.after.contains("to be created")));
    }

    #[tokio::test]
    async fn a_dry_run_the_service_ignores_is_an_error() {
        let m = mocks(instance(&[WEB_SG], &[]), false);
        let err = isolate_instance(request(true), &m.client())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ignored DryRun"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_permission_fails_with_the_call_named() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        m.rules[MODIFY_ATTR] = mock!(Client::modify_instance_attribute).then_error(|| {
            ModifyInstanceAttributeError::generic(
                ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("not allowed")
                    .build(),
            )
        });
        let err = isolate_instance(request(false), &m.client())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "AwsCallFailed");
        assert!(
            err.to_string()
                .starts_with("ec2:ModifyInstanceAttribute failed: UnauthorizedOperation"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_terminated_instance_is_instance_not_found() {
        let mut m = mocks(instance(&[WEB_SG], &[]), false);
        m.rules[DESCRIBE] = mock!(Client::describe_instances).then_error(|| {
            DescribeInstancesError::generic(
                ErrorMetadata::builder()
                    .code("InvalidInstanceID.NotFound")
                    .build(),
            )
        });
        let err = isolate_instance(request(false), &m.client())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InstanceNotFound");
        assert_eq!(m.calls(CREATE_SNAPSHOT), 0);
    }

    #[tokio::test]
    async fn nothing_happens_when_the_plan_does_not_isolate() {
        let mut req = request(false);
        req.plan
            .actions
            .retain(|a| a.kind() != ActionKind::IsolateInstance);
        let m = mocks(instance(&[WEB_SG], &[]), false);
        let out = isolate_instance(req, &m.client()).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::NotPlanned);
        assert_eq!(m.calls(DESCRIBE), 0);
    }

    /// A fleet instance as isolation left it: in the isolation group, its web group and
    /// its Auto Scaling group recorded; the group's answers `Standby`, then `after`.
    fn isolated_in_a_fleet(after: &'static str) -> Mocks {
        let recorded = format!("{}:{ENI}", isolate::ORIGINAL_GROUPS_TAG);
        let mut m = mocks(
            instance(
                &[ISOLATION_SG],
                &[
                    (recorded.as_str(), WEB_SG),
                    (service::AUTO_SCALING_GROUP_TAG, "web-fleet"),
                    ("firebreak:isolated-by", "firebreak"),
                ],
            ),
            true,
        );
        m.rules.push(mock!(Client::delete_tags).then_output(|| {
            aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput::builder().build()
        }));
        m.autoscaling = vec![
            mock!(AutoScaling::describe_auto_scaling_instances)
                .sequence()
                .output(in_fleet_as("Standby"))
                .output(in_fleet_as(after))
                .build(),
            mock!(AutoScaling::exit_standby).then_error(|| {
                aws_sdk_autoscaling::operation::exit_standby::ExitStandbyError::generic(
                    ErrorMetadata::builder()
                        .code("ValidationError")
                        .message("The instance i-0a1b2c3d4e5f60718 is not in Standby.")
                        .build(),
                )
            }),
        ];
        m
    }

    fn release_plan() -> ReleasePlan {
        serde_json::from_value(serde_json::json!({
            "instance": INSTANCE, "accountId": "123456789012", "region": "us-east-1",
            "dryRun": false, "releasesInstances": true, "releasesBlocks": false,
            "executionId": "exec-release-2"
        }))
        .unwrap()
    }

    /// Two releases of one fleet instance at once: both read it in Standby, the other one
    /// takes it out first, and Auto Scaling refuses this one's ExitStandby. This run reads
    /// again, finds it on its way back (`Pending`), and finishes without claiming it.
    #[tokio::test]
    async fn an_instance_another_release_took_out_of_standby_meanwhile_is_not_an_error() {
        let m = isolated_in_a_fleet("Pending");
        let out = release::release_planned(&release_plan(), &m.client())
            .await
            .unwrap();
        let [o] = out.outcomes.as_slice() else {
            panic!("one outcome: {out:?}")
        };
        assert_eq!(o.status, OutcomeStatus::Done, "{}", o.summary);
        assert_eq!(
            m.autoscaling[0].num_calls(),
            2,
            "read again after the refusal"
        );
        let what: Vec<&str> = o.changes.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(
            what,
            ["security groups", "Firebreak isolation record"],
            "{o:?}"
        );
        assert!(!o.summary.contains("not in Standby"), "{}", o.summary);
    }

    /// Refused and still in Standby: a real failure, and the record stays for a re-run.
    #[tokio::test]
    async fn a_refused_exit_of_an_instance_still_in_standby_fails_and_keeps_the_record() {
        let m = isolated_in_a_fleet("Standby");
        let err = release::release_planned(&release_plan(), &m.client())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("autoscaling:ExitStandby failed: ValidationError"),
            "{err}"
        );
        assert_eq!(m.rules.last().map(|r| r.num_calls()), Some(0), "DeleteTags");
    }
}
