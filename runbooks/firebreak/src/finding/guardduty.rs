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
        Some(a) => a.node().bool("sample")?.unwrap_or(false),
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
        security_hub: SecurityHubRef { id, product_arn },
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
    for bucket in r.array("s3BucketDetails")? {
        let b = bucket.node();
        if let Some(name) = ctx.target(b.parsed("name", BucketName::parse))? {
            finding.targets.s3_buckets.push(name);
        }
    }
    if let Some(eks) = r.object("eksClusterDetails")? {
        finding.targets.eks_cluster = ctx.target(eks.node().parsed("name", ClusterName::parse))?;
    }
    finding.resource_type = resource_type;
    finding.ignored_fields = ctx.ignored;
    Ok(finding)
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
    let mut tags = BTreeMap::new();
    for tag in d.array("tags")? {
        let t = tag.node();
        let key = t.req_str("key")?;
        let value = t.str("value")?.unwrap_or("");
        check_tag(key, value).map_err(|r| t.invalid("key", r))?;
        tags.insert(key.to_owned(), value.to_owned());
    }
    Ok(Some(InstanceTarget {
        instance_id,
        network_interfaces,
        instance_profile_arn,
        tags,
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
