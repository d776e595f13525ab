//! GuardDuty findings as EventBridge delivers them: the event's `detail`, camelCase keys.

use std::collections::BTreeMap;

use crate::error::InputError;
use crate::ids::*;
use crate::json::{Child, Node};

use super::*;

/// What the EventBridge envelope adds when the detail lacks it.
#[derive(Default)]
pub(crate) struct Envelope<'a> {
    pub region: Option<&'a str>,
}

pub(crate) fn parse(node: Node<'_>, envelope: &Envelope<'_>) -> Result<Finding, InputError> {
    node.expect_object()?;
    let service = node.object("service")?;
    let additional = match &service {
        Some(s) => s.node().object("additionalInfo")?,
        None => None,
    };
    let sample = match &additional {
        Some(a) => is_sample(&a.node())?,
        None => false,
    };
    let mut ctx = Ctx {
        sample,
        ignored: Vec::new(),
    };

    let arn = node.req_parsed("arn", Arn::parse)?;
    if arn.service() != "guardduty" {
        return Err(node.invalid(
            "arn",
            format!(
                "expected a GuardDuty finding ARN, found service {:?}",
                arn.service()
            ),
        ));
    }
    let account_id = node.req_parsed("accountId", AccountId::parse)?;
    let region = match node.parsed("region", Region::parse)? {
        Some(r) => r,
        None => match envelope.region {
            Some(r) => Region::parse(r).map_err(|reason| InputError::InvalidValue {
                path: "region".into(),
                reason,
            })?,
            None => {
                return Err(InputError::MissingField {
                    path: node.child_path("region"),
                })
            }
        },
    };
    let partition = match node.parsed("partition", Partition::parse)? {
        Some(p) => p,
        None => Partition::parse(arn.partition()).map_err(|reason| node.invalid("arn", reason))?,
    };
    let finding_type = node.req_parsed("type", FindingType::parse)?;
    let score = node
        .number("severity")?
        .ok_or_else(|| InputError::MissingField {
            path: node.child_path("severity"),
        })?;
    let severity = Severity::from_guardduty(score).map_err(|r| node.invalid("severity", r))?;
    let product_arn = Arn::parse(&format!(
        "arn:{partition}:securityhub:{region}::product/aws/guardduty"
    ))
    .map_err(|r| node.invalid("arn", r))?;
    let id = FindingId::parse(arn.as_str()).map_err(|r| node.invalid("arn", r))?;

    let mut finding = Finding {
        product: Product::GuardDuty,
        security_hub: SecurityHubRef {
            id,
            product_arn,
            format: HubFormat::Asff,
        },
        account_id,
        region,
        partition,
        finding_type,
        severity,
        title: node.text("title")?,
        first_seen: None,
        last_seen: None,
        count: 1,
        sample,
        archived: false,
        resource_type: None,
        resource_role: None,
        targets: Targets::default(),
        ignored_fields: Vec::new(),
    };

    if let Some(service) = &service {
        let s = service.node();
        finding.first_seen = ctx.info(s.parsed("eventFirstSeen", parse_time))?;
        finding.last_seen = ctx.info(s.parsed("eventLastSeen", parse_time))?;
        finding.archived = s.bool("archived")?.unwrap_or(false);
        if let Some(count) = s.number("count")? {
            if count < 0.0 || count.fract() != 0.0 {
                return Err(s.invalid("count", "expected a whole number of at least 0"));
            }
            finding.count = count as u64;
        }
        finding.resource_role = s.text("resourceRole")?;
        if let Some(action) = s.object("action")? {
            remote_ips(&action, &mut ctx, &mut finding.targets.remote_ips)?;
        }
        if let Some(detection) = s.object("detection")? {
            if let Some(seq) = detection.node().object("sequence")? {
                sequence_into(&seq, &mut finding, &mut ctx)?;
            }
        }
    }

    let resource = node.req("resource")?;
    let r = resource.node();
    r.expect_object()?;
    let resource_type = r.text("resourceType")?;
    // Access-key and S3 findings may carry placeholder instance details (i-99999999): only
    // an Instance finding names an instance to act on.
    if resource_type.as_deref() == Some("Instance") {
        if let Some(details) = r.object("instanceDetails")? {
            finding.targets.instance = instance(&details, &mut ctx)?;
        }
    }
    if let Some(details) = r.object("accessKeyDetails")? {
        finding.targets.access_key = Some(access_key(&details, &mut ctx)?);
    }
    let threats = match &service {
        Some(s) => threat_names(&s.node())?,
        None => Vec::new(),
    };
    for bucket in r.array("s3BucketDetails")? {
        let b = bucket.node();
        let Some(name) = ctx.target(b.parsed("name", BucketName::parse))? else {
            continue;
        };
        for object in b.array("s3ObjectDetails")? {
            let o = object.node();
            if let Some(key) = ctx.target(o.parsed("key", ObjectKey::parse))? {
                finding.targets.s3_objects.push(S3ObjectTarget {
                    bucket: name.clone(),
                    key,
                    version_id: ctx.target(o.parsed("versionId", ObjectVersionId::parse))?,
                    threats: threats.clone(),
                });
            }
        }
        if !finding.targets.s3_buckets.contains(&name) {
            finding.targets.s3_buckets.push(name);
        }
    }
    if let Some(details) = r.object("lambdaDetails")? {
        let d = details.node();
        if let Some(function_name) = ctx.target(d.parsed("functionName", FunctionName::parse))? {
            finding.targets.function = Some(FunctionTarget {
                function_name,
                function_arn: ctx.target(d.parsed("functionArn", Arn::parse))?,
                role_arn: ctx.target(d.parsed("role", Arn::parse))?,
                tags: tags(&d)?,
            });
        }
    }
    if let Some(eks) = r.object("eksClusterDetails")? {
        finding.targets.eks_cluster = ctx.target(eks.node().parsed("name", ClusterName::parse))?;
    }
    finding.resource_type = resource_type;
    finding.ignored_fields = ctx.ignored;
    Ok(finding)
}

/// The names of the threats a malware scan found (`service.malwareScanDetails.threats`).
pub(crate) fn threat_names(service: &Node<'_>) -> Result<Vec<String>, InputError> {
    let mut out = Vec::new();
    if let Some(scan) = service.object("malwareScanDetails")? {
        for t in scan.node().array("threats")? {
            if let Some(name) = t.node().text("name")? {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    Ok(out)
}

/// `additionalInfo.sample` as EventBridge carries it, or inside `additionalInfo.value`, the
/// JSON text the API (`GetFindings`) returns: a sample misread as real would be acted on.
fn is_sample(additional: &Node<'_>) -> Result<bool, InputError> {
    if let Some(sample) = additional.bool("sample")? {
        return Ok(sample);
    }
    let Some(text) = additional.str("value")? else {
        return Ok(false);
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => Ok(v.get("sample").and_then(serde_json::Value::as_bool) == Some(true)),
        // Not JSON: nothing in it says sample; the text is only shown.
        Err(_) => Ok(text.contains("\"sample\":true")),
    }
}

/// The finding's attack sequence, read from `seq` (GuardDuty's camelCase, or ASFF's
/// `Detection.Sequence` in PascalCase mode); its endpoints join the remote addresses.
pub(crate) fn sequence_into(
    seq: &Child<'_>,
    finding: &mut Finding,
    ctx: &mut Ctx,
) -> Result<(), InputError> {
    let targets = sequence(
        seq,
        &finding.account_id,
        &finding.region,
        ctx,
        &mut finding.targets.remote_ips,
        &mut finding.targets.s3_buckets,
    )?;
    finding.targets.sequence = Some(targets);
    Ok(())
}

/// An attack sequence: its resources, actors and endpoints. Anything in another account
/// or region than the finding's is dropped as an invalid target (never acted on there).
fn sequence(
    seq: &Child<'_>,
    account: &AccountId,
    region: &Region,
    ctx: &mut Ctx,
    remote: &mut Vec<RemoteIp>,
    buckets: &mut Vec<BucketName>,
) -> Result<SequenceTargets, InputError> {
    let s = seq.node();
    let mut out = SequenceTargets {
        uid: s.text("uid")?.unwrap_or_default(),
        ..Default::default()
    };
    for res in s.array("resources")? {
        let r = res.node();
        r.expect_object()?;
        if !same_place(&r, account, region, ctx)? {
            continue;
        }
        let kind = r.str("resourceType")?.unwrap_or("unknown");
        let uid = r.str("uid")?;
        let name = r.str("name")?;
        match kind {
            "EC2_INSTANCE" => {
                let id = uid
                    .map(|u| u.rsplit('/').next().unwrap_or(u))
                    .map(InstanceId::parse)
                    .transpose()
                    .map_err(|reason| r.invalid("uid", reason));
                if let Some(instance_id) = ctx.target(id)? {
                    if out.instances.iter().all(|i| i.instance_id != instance_id) {
                        out.instances.push(InstanceTarget {
                            instance_id,
                            network_interfaces: Vec::new(),
                            instance_profile_arn: None,
                            tags: tags(&r)?,
                        });
                    }
                }
            }
            "S3_BUCKET" => {
                let bucket = name
                    .or(uid)
                    .map(|b| b.rsplit(':').next().unwrap_or(b))
                    .map(BucketName::parse)
                    .transpose()
                    .map_err(|reason| r.invalid("name", reason));
                if let Some(b) = ctx.target(bucket)? {
                    if !buckets.contains(&b) {
                        out.other_resources.push(format!("S3_BUCKET {b}"));
                        buckets.push(b);
                    }
                }
            }
            // The key's user acts as an actor too; the actor carries what deactivation needs.
            "ACCESS_KEY" => {}
            // Context, not a threat in itself: the role behind a profile is revoked through
            // the instances, and a VPC, image, template or stack is not contained.
            "IAM_INSTANCE_PROFILE"
            | "EC2_VPC"
            | "EC2_IMAGE"
            | "LAUNCH_TEMPLATE"
            | "CLOUDFORMATION_STACK"
            | "EC2_NETWORK_INTERFACE"
            | "AUTOSCALING_AUTO_SCALING_GROUP" => {}
            other => {
                let what = name.or(uid).unwrap_or("(unnamed)");
                out.other_resources.push(format!(
                    "{other} {}",
                    what.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    for actor in s.array("actors")? {
        let a = actor.node();
        a.expect_object()?;
        let Some(user) = a.object("user")? else {
            continue;
        };
        let u = user.node();
        if let Some(acct) = u.object("account")? {
            if ctx.elsewhere(&acct.node(), "uid", "account", account.as_str())? {
                continue;
            }
        }
        let user_type = ctx.target(u.parsed("type", UserType::parse))?;
        let user_name = ctx.target(u.parsed("name", IamName::parse))?;
        match (user_type, user_name) {
            (Some(UserType::AssumedRole), Some(role_name))
                if out.roles.iter().all(|r| r.role_name != role_name) =>
            {
                out.roles.push(RoleTarget {
                    role_name,
                    role_arn: None,
                });
            }
            (Some(t @ (UserType::IamUser | UserType::Root)), name) => {
                let key = ctx.target(u.parsed("credentialUid", AccessKeyId::parse))?;
                let known = out
                    .access_keys
                    .iter()
                    .any(|k| k.access_key_id.is_some() && k.access_key_id == key);
                if !known {
                    out.access_keys.push(AccessKeyTarget {
                        access_key_id: key,
                        principal_id: ctx.target(u.parsed("uid", PrincipalId::parse))?,
                        user_name: name,
                        user_type: Some(t),
                    });
                }
            }
            _ => {}
        }
    }
    for endpoint in s.array("endpoints")? {
        let e = endpoint.node();
        if let Some(ip) = ctx.target(e.parsed("ip", crate::ids::parse_ip))? {
            add_remote_ip(remote, ip, IpSource::AttackSequence);
        }
    }
    Ok(out)
}

/// A sequence's resource in the finding's account and region; one elsewhere is recorded
/// as an invalid target and left alone.
fn same_place(
    r: &Node<'_>,
    account: &AccountId,
    region: &Region,
    ctx: &mut Ctx,
) -> Result<bool, InputError> {
    Ok(!ctx.elsewhere(r, "accountId", "account", account.as_str())?
        && !ctx.elsewhere(r, "region", "region", region.as_str())?)
}

fn tags(node: &Node<'_>) -> Result<BTreeMap<String, String>, InputError> {
    tag_list(node, "key")
}

fn instance(details: &Child<'_>, ctx: &mut Ctx) -> Result<Option<InstanceTarget>, InputError> {
    let d = details.node();
    let Some(instance_id) = ctx.target(d.parsed("instanceId", InstanceId::parse))? else {
        return Ok(None);
    };
    let instance_profile_arn = match d.object("iamInstanceProfile")? {
        Some(p) => ctx.target(p.node().parsed("arn", Arn::parse))?,
        None => None,
    };
    let mut network_interfaces = Vec::new();
    for eni in d.array("networkInterfaces")? {
        let e = eni.node();
        e.expect_object()?;
        let mut iface = NetworkInterface {
            network_interface_id: ctx
                .target(e.parsed("networkInterfaceId", NetworkInterfaceId::parse))?,
            subnet_id: ctx.target(e.parsed("subnetId", SubnetId::parse))?,
            vpc_id: ctx.target(e.parsed("vpcId", VpcId::parse))?,
            public_ip: ctx.target(e.parsed("publicIp", crate::ids::parse_ip))?,
            ..Default::default()
        };
        for sg in e.array("securityGroups")? {
            if let Some(id) = ctx.target(sg.node().parsed("groupId", SecurityGroupId::parse))? {
                iface.security_groups.push(id);
            }
        }
        if let Some(ip) = ctx.target(e.parsed("privateIpAddress", crate::ids::parse_ip))? {
            iface.private_ips.push(ip);
        }
        for p in e.array("privateIpAddresses")? {
            if let Some(ip) =
                ctx.target(p.node().parsed("privateIpAddress", crate::ids::parse_ip))?
            {
                if !iface.private_ips.contains(&ip) {
                    iface.private_ips.push(ip);
                }
            }
        }
        for (i, v6) in e.array("ipv6Addresses")?.iter().enumerate() {
            let parsed =
                match v6.value.as_str() {
                    Some(s) => crate::ids::parse_ip(s).map(Some).map_err(|reason| {
                        InputError::InvalidValue {
                            path: v6.path.clone(),
                            reason,
                        }
                    }),
                    None => Err(e.invalid(&format!("ipv6Addresses[{i}]"), "expected a string")),
                };
            if let Some(ip) = ctx.target(parsed)? {
                iface.ipv6_addresses.push(ip);
            }
        }
        network_interfaces.push(iface);
    }
    Ok(Some(InstanceTarget {
        instance_id,
        network_interfaces,
        instance_profile_arn,
        tags: tags(&d)?,
    }))
}

fn access_key(details: &Child<'_>, ctx: &mut Ctx) -> Result<AccessKeyTarget, InputError> {
    let d = details.node();
    Ok(AccessKeyTarget {
        access_key_id: ctx.target(d.parsed("accessKeyId", AccessKeyId::parse))?,
        principal_id: ctx.target(d.parsed("principalId", PrincipalId::parse))?,
        user_name: ctx.target(d.parsed("userName", IamName::parse))?,
        user_type: ctx.target(d.parsed("userType", UserType::parse))?,
    })
}

/// Every remote address in the action, v4 and v6, each once with the actions that named it.
fn remote_ips(
    action: &Child<'_>,
    ctx: &mut Ctx,
    out: &mut Vec<RemoteIp>,
) -> Result<(), InputError> {
    let a = action.node();
    for key in [
        "networkConnectionAction",
        "awsApiCallAction",
        "kubernetesApiCallAction",
    ] {
        let Some(source) = IpSource::from_key(key) else {
            continue;
        };
        if let Some(act) = a.object(key)? {
            if let Some(details) = act.node().object("remoteIpDetails")? {
                addresses(&details, source, ctx, out)?;
            }
        }
    }
    if let Some(probe) = a.object("portProbeAction")? {
        for entry in probe.node().array("portProbeDetails")? {
            if let Some(details) = entry.node().object("remoteIpDetails")? {
                addresses(&details, IpSource::PortProbeAction, ctx, out)?;
            }
        }
    }
    Ok(())
}

fn addresses(
    details: &Child<'_>,
    source: IpSource,
    ctx: &mut Ctx,
    out: &mut Vec<RemoteIp>,
) -> Result<(), InputError> {
    let d = details.node();
    for (key, want_v4) in [("ipAddressV4", true), ("ipAddressV6", false)] {
        if let Some(ip) = ctx.target(d.parsed(key, |s| parse_ip_of_family(s, want_v4)))? {
            add_remote_ip(out, ip, source);
        }
    }
    Ok(())
}
