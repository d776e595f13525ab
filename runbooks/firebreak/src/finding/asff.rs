//! Security Hub findings in the AWS Security Finding Format (PascalCase keys), as
//! `Security Hub Findings - Imported` and `- Custom Action` events carry them.

use std::collections::BTreeMap;

use crate::error::InputError;
use crate::ids::*;
use crate::json::{Child, Node};

use super::*;

const GUARDDUTY_PRODUCT_SUFFIX: &str = ":product/aws/guardduty";

pub(crate) fn parse(node: Node<'_>) -> Result<Finding, InputError> {
    node.expect_object()?;
    let id = node.req_parsed("Id", FindingId::parse)?;
    let product_arn = node.req_parsed("ProductArn", Arn::parse)?;
    if product_arn.service() != "securityhub" {
        return Err(node.invalid(
            "ProductArn",
            format!(
                "expected a Security Hub product ARN, found service {:?}",
                product_arn.service()
            ),
        ));
    }
    let product = if product_arn.as_str().ends_with(GUARDDUTY_PRODUCT_SUFFIX) {
        Product::GuardDuty
    } else {
        Product::Other
    };
    let fields = product_fields(node)?;
    // GuardDuty's ProductFields keys carry the prefix `aws/guardduty/service/` since 2020;
    // older findings use the bare keys (`archived`, `action/...`).
    let field = |key: &str| -> Option<&(String, String)> {
        fields
            .get(&format!("aws/guardduty/service/{key}"))
            .or_else(|| fields.get(key))
    };
    let sample = node.bool("Sample")?.unwrap_or(false)
        || field("additionalInfo/sample").is_some_and(|(v, _)| v == "true");
    let mut ctx = Ctx {
        sample,
        ignored: Vec::new(),
    };

    let account_id = node.req_parsed("AwsAccountId", AccountId::parse)?;
    let region = match node.parsed("Region", Region::parse)? {
        Some(r) => r,
        None => Region::parse(product_arn.region()).map_err(|r| node.invalid("ProductArn", r))?,
    };
    let partition =
        Partition::parse(product_arn.partition()).map_err(|r| node.invalid("ProductArn", r))?;

    let types = node.array("Types")?;
    if types.is_empty() {
        return Err(InputError::MissingField {
            path: node.child_path("Types"),
        });
    }
    let mut names = Vec::new();
    for t in &types {
        match t.value.as_str() {
            Some(s) => names.push((s, t.path.clone())),
            None => {
                return Err(InputError::WrongType {
                    path: t.path.clone(),
                    expected: "a string",
                    found: crate::json::kind(t.value),
                })
            }
        }
    }
    // A GuardDuty finding's GuardDuty type is recovered from its ASFF type; any other
    // product keeps its first type, which the policy will not know.
    let (type_name, type_path) = names
        .iter()
        .find_map(|(s, p)| FindingType::guardduty_name_from_asff(s).map(|n| (n, p.clone())))
        .filter(|_| product == Product::GuardDuty)
        .unwrap_or_else(|| (names[0].0.to_owned(), names[0].1.clone()));
    let finding_type =
        FindingType::parse(&type_name).map_err(|reason| InputError::InvalidValue {
            path: type_path,
            reason,
        })?;

    let severity_node = node.req("Severity")?;
    let s = severity_node.node();
    s.expect_object()?;
    let severity = Severity::from_asff(s.str("Label")?, s.number("Normalized")?)
        .map_err(|r| s.invalid("Label", r))?;

    let archived = node.str("RecordState")? == Some("ARCHIVED")
        || field("archived").is_some_and(|(v, _)| v == "true");
    let count = match field("count") {
        Some((v, path)) => v.parse::<u64>().map_err(|_| InputError::InvalidValue {
            path: path.clone(),
            reason: format!("expected a whole number, found {}", crate::error::Shown(v)),
        })?,
        None => 1,
    };

    let mut finding = Finding {
        product,
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
        title: node.text("Title")?,
        first_seen: ctx.info(node.parsed("FirstObservedAt", parse_time))?,
        last_seen: ctx.info(node.parsed("LastObservedAt", parse_time))?,
        count,
        sample,
        archived,
        resource_type: None,
        resource_role: field("resourceRole").map(|(v, _)| v.clone()),
        targets: Targets::default(),
        ignored_fields: Vec::new(),
    };

    if let Some(action) = node.object("Action")? {
        action_ips(&action, &mut ctx, &mut finding.targets.remote_ips)?;
    }
    for (key, (value, path)) in &fields {
        let key = key.strip_prefix("aws/guardduty/service/").unwrap_or(key);
        if let Some((source, want_v4)) = product_field_ip(key) {
            let parsed = parse_ip_of_family(value, want_v4)
                .map(Some)
                .map_err(|reason| InputError::InvalidValue {
                    path: path.clone(),
                    reason,
                });
            if let Some(ip) = ctx.target(parsed)? {
                add_remote_ip(&mut finding.targets.remote_ips, ip, source);
            }
        }
    }

    // An attack sequence (ASFF `Detection.Sequence`): its actors and endpoints; the
    // instances it names are the finding's Resources.
    if let Some(detection) = node.object("Detection")? {
        if let Some(seq) = detection.node().object("Sequence")? {
            super::guardduty::sequence_into(&seq.pascal(), &mut finding, &mut ctx)?;
        }
    }
    let resources = node.array("Resources")?;
    for res in &resources {
        resource(res, &mut ctx, &mut finding)?;
    }
    finding.resource_type = match resources.first() {
        Some(r) => r.node().text("Type")?,
        None => None,
    };
    finding.ignored_fields = ctx.ignored;
    Ok(finding)
}

/// ProductFields as key → (value, JSON path). Values must be strings (ASFF says so).
fn product_fields(node: Node<'_>) -> Result<BTreeMap<String, (String, String)>, InputError> {
    let mut out = BTreeMap::new();
    let Some(pf) = node.object("ProductFields")? else {
        return Ok(out);
    };
    if let Some(map) = pf.value.as_object() {
        for (k, v) in map {
            let path = format!("{}[{k:?}]", pf.path);
            match v.as_str() {
                Some(s) => {
                    out.insert(k.clone(), (s.to_owned(), path));
                }
                None => {
                    return Err(InputError::WrongType {
                        path,
                        expected: "a string",
                        found: crate::json::kind(v),
                    })
                }
            }
        }
    }
    Ok(out)
}

/// `action/portProbeAction/portProbeDetails.0_/remoteIpDetails/ipAddressV4` and the like.
fn product_field_ip(key: &str) -> Option<(IpSource, bool)> {
    let rest = key.strip_prefix("action/")?;
    let want_v4 = if rest.ends_with("remoteIpDetails/ipAddressV4") {
        true
    } else if rest.ends_with("remoteIpDetails/ipAddressV6") {
        false
    } else {
        return None;
    };
    let action = rest.split('/').next()?;
    Some((IpSource::from_key(action)?, want_v4))
}

fn action_ips(
    action: &Child<'_>,
    ctx: &mut Ctx,
    out: &mut Vec<RemoteIp>,
) -> Result<(), InputError> {
    let a = action.node();
    for key in ["NetworkConnectionAction", "AwsApiCallAction"] {
        let Some(source) = IpSource::from_key(key) else {
            continue;
        };
        if let Some(act) = a.object(key)? {
            if let Some(d) = act.node().object("RemoteIpDetails")? {
                ip_details(&d, source, ctx, out)?;
            }
        }
    }
    if let Some(probe) = a.object("PortProbeAction")? {
        for entry in probe.node().array("PortProbeDetails")? {
            if let Some(d) = entry.node().object("RemoteIpDetails")? {
                ip_details(&d, IpSource::PortProbeAction, ctx, out)?;
            }
        }
    }
    Ok(())
}

fn ip_details(
    details: &Child<'_>,
    source: IpSource,
    ctx: &mut Ctx,
    out: &mut Vec<RemoteIp>,
) -> Result<(), InputError> {
    let d = details.node();
    for (key, v4) in [("IpAddressV4", true), ("IpAddressV6", false)] {
        if let Some(ip) = ctx.target(d.parsed(key, |s| parse_ip_of_family(s, v4)))? {
            add_remote_ip(out, ip, source);
        }
    }
    Ok(())
}

fn resource(res: &Child<'_>, ctx: &mut Ctx, finding: &mut Finding) -> Result<(), InputError> {
    let r = res.node();
    r.expect_object()?;
    let kind = r.req_str("Type")?;
    let id = r.req_str("Id")?;
    let details = r.object("Details")?;
    let detail = |key: &str| -> Result<Option<Child<'_>>, InputError> {
        match &details {
            Some(d) => d.node().object(key),
            None => Ok(None),
        }
    };
    match kind {
        "AwsEc2Instance" => {
            let instance_part = id.rsplit('/').next().unwrap_or(id);
            let parsed = InstanceId::parse(instance_part)
                .map(Some)
                .map_err(|reason| r.invalid("Id", reason));
            let Some(instance_id) = ctx.target(parsed)? else {
                return Ok(());
            };
            let mut target = InstanceTarget {
                instance_id,
                network_interfaces: Vec::new(),
                instance_profile_arn: None,
                tags: tags(&r)?,
            };
            if let Some(d) = detail("AwsEc2Instance")? {
                let d = d.node();
                target.instance_profile_arn =
                    ctx.target(d.parsed("IamInstanceProfileArn", Arn::parse))?;
                let subnet_id = ctx.target(d.parsed("SubnetId", SubnetId::parse))?;
                let vpc_id = ctx.target(d.parsed("VpcId", VpcId::parse))?;
                let enis = d.array("NetworkInterfaces")?;
                for eni in &enis {
                    target.network_interfaces.push(NetworkInterface {
                        network_interface_id: ctx.target(
                            eni.node()
                                .parsed("NetworkInterfaceId", NetworkInterfaceId::parse),
                        )?,
                        subnet_id: subnet_id.clone(),
                        vpc_id: vpc_id.clone(),
                        ..Default::default()
                    });
                }
                // ASFF names the primary subnet and VPC, not each interface's: keep them on
                // one interface entry so block-remote-ip knows the subnet; triage replaces
                // the list with EC2's.
                if enis.is_empty() && (subnet_id.is_some() || vpc_id.is_some()) {
                    target.network_interfaces.push(NetworkInterface {
                        subnet_id,
                        vpc_id,
                        ..Default::default()
                    });
                }
            }
            match finding.targets.sequence.as_mut() {
                Some(seq) => {
                    if seq
                        .instances
                        .iter()
                        .all(|i| i.instance_id != target.instance_id)
                    {
                        seq.instances.push(target);
                    }
                }
                None => finding.targets.instance = Some(target),
            }
        }
        "AwsIamAccessKey" => {
            let mut key = AccessKeyTarget {
                access_key_id: None,
                principal_id: None,
                user_name: None,
                user_type: None,
            };
            // `AWS::IAM::AccessKey:ASIA…`; GuardDuty sometimes reports `…:null`.
            if let Some(suffix) = id.strip_prefix("AWS::IAM::AccessKey:") {
                if suffix != "null" {
                    let parsed = AccessKeyId::parse(suffix)
                        .map(Some)
                        .map_err(|reason| r.invalid("Id", reason));
                    key.access_key_id = ctx.target(parsed)?;
                }
            }
            if let Some(d) = detail("AwsIamAccessKey")? {
                let d = d.node();
                if key.access_key_id.is_none() {
                    key.access_key_id = ctx.target(d.parsed("AccessKeyId", AccessKeyId::parse))?;
                }
                key.principal_id = ctx.target(d.parsed("PrincipalId", PrincipalId::parse))?;
                key.user_name = match ctx.target(d.parsed("PrincipalName", IamName::parse))? {
                    Some(n) => Some(n),
                    None => ctx.target(d.parsed("UserName", IamName::parse))?,
                };
                key.user_type = ctx.target(d.parsed("PrincipalType", UserType::parse))?;
            }
            finding.targets.access_key = Some(key);
        }
        "AwsIamRole" => {
            let parsed = Arn::parse(id)
                .map(Some)
                .map_err(|reason| r.invalid("Id", reason));
            if let Some(arn) = ctx.target(parsed)? {
                let name = arn.resource().rsplit('/').next().unwrap_or("").to_owned();
                let parsed = IamName::parse(&name)
                    .map(Some)
                    .map_err(|reason| r.invalid("Id", reason));
                if let Some(role_name) = ctx.target(parsed)? {
                    finding.targets.role = Some(RoleTarget {
                        role_name,
                        role_arn: Some(arn),
                    });
                }
            }
        }
        "AwsS3Bucket" => {
            let name = id.strip_prefix("arn:aws:s3:::").unwrap_or(id);
            let parsed = BucketName::parse(name)
                .map(Some)
                .map_err(|reason| r.invalid("Id", reason));
            if let Some(bucket) = ctx.target(parsed)? {
                finding.targets.s3_buckets.push(bucket);
            }
        }
        "AwsEksCluster" => {
            let name = id.rsplit('/').next().unwrap_or(id);
            let parsed = ClusterName::parse(name)
                .map(Some)
                .map_err(|reason| r.invalid("Id", reason));
            finding.targets.eks_cluster = ctx.target(parsed)?;
        }
        // Other resource types are reported but not acted on.
        _ => {}
    }
    Ok(())
}

fn tags(r: &Node<'_>) -> Result<BTreeMap<String, String>, InputError> {
    let mut out = BTreeMap::new();
    if let Some(t) = r.object("Tags")? {
        if let Some(map) = t.value.as_object() {
            for (k, v) in map {
                let value = v.as_str().ok_or_else(|| InputError::WrongType {
                    path: format!("{}.{k}", t.path),
                    expected: "a string",
                    found: crate::json::kind(v),
                })?;
                check_tag(k, value).map_err(|reason| InputError::InvalidValue {
                    path: format!("{}.{k}", t.path),
                    reason,
                })?;
                out.insert(k.clone(), value.to_owned());
            }
        }
    }
    Ok(out)
}
