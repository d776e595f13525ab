//! Findings of the new AWS Security Hub (2025) in OCSF 1.x (`Detection Finding`, snake_case
//! keys), as `Findings Imported V2` events and `GetFindingsV2` carry them. They are
//! updated with `BatchUpdateFindingsV2`, addressed by `metadata.uid`.

use crate::error::{InputError, Shown};
use crate::ids::*;
use crate::json::Node;

use super::*;

/// An OCSF finding: has `metadata` and `finding_info`.
pub(crate) fn looks_like(node: &Node<'_>) -> bool {
    node.has("metadata") && node.has("finding_info")
}

/// OCSF `severity_id` on GuardDuty's scale: the lowest score of the band, so a policy's
/// `minSeverity: "HIGH"` means the same for both formats.
fn score_of(severity_id: f64) -> Option<f64> {
    Some(match severity_id as i64 {
        1 => 0.0,
        2 => 1.0,
        3 => 4.0,
        4 => 7.0,
        5 | 6 => 9.0,
        _ => return None,
    })
}

fn score_of_label(label: &str) -> Option<f64> {
    Some(match label.to_ascii_lowercase().as_str() {
        "informational" => 0.0,
        "low" => 1.0,
        "medium" => 4.0,
        "high" => 7.0,
        "critical" | "fatal" => 9.0,
        _ => return None,
    })
}

pub(crate) fn parse(node: Node<'_>) -> Result<Finding, InputError> {
    node.expect_object()?;
    let metadata = node.req("metadata")?;
    let m = metadata.node();
    m.expect_object()?;
    let id = m.req_parsed("uid", FindingId::parse)?;
    let product = m.object("product")?;
    let product_name = match &product {
        Some(p) => p.node().str("name")?,
        None => None,
    };
    let info = node.req("finding_info")?;
    let fi = info.node();
    fi.expect_object()?;
    let cloud = node.req("cloud")?;
    let c = cloud.node();
    c.expect_object()?;
    let account = c.req("account")?;
    let account_id = account.node().req_parsed("uid", AccountId::parse)?;
    let region = c.req_parsed("region", Region::parse)?;

    let resources = node.array("resources")?;
    let partition = match resources.first() {
        Some(r) => r.node().parsed("cloud_partition", Partition::parse)?,
        None => None,
    };
    let partition = match partition {
        Some(p) => p,
        None => Partition::parse("aws").map_err(|r| c.invalid("region", r))?,
    };
    let product_arn = match &product {
        Some(p) => p
            .node()
            .str("uid")?
            .and_then(|u| Arn::parse(u).ok())
            .filter(|a| a.service() == "securityhub"),
        None => None,
    };
    let guardduty = product_name.is_some_and(|n| n.eq_ignore_ascii_case("guardduty"));
    let product_arn = match product_arn {
        Some(a) => a,
        None => {
            let name = if guardduty { "guardduty" } else { "unknown" };
            Arn::parse(&format!(
                "arn:{partition}:securityhub:{region}::productv2/aws/{name}"
            ))
            .map_err(|r| m.invalid("product", r))?
        }
    };

    // The GuardDuty type is one of `finding_info.types` (beside words like `Threats`).
    let types = fi.array("types")?;
    let mut type_name = None;
    for t in &types {
        let s = t.value.as_str().ok_or_else(|| InputError::WrongType {
            path: t.path.clone(),
            expected: "a string",
            found: crate::json::kind(t.value),
        })?;
        if ParsedType::parse(s).is_some() {
            type_name = Some((s, t.path.clone()));
            break;
        }
        type_name.get_or_insert((s, t.path.clone()));
    }
    let (type_name, type_path) = type_name.ok_or_else(|| InputError::MissingField {
        path: fi.child_path("types[0]"),
    })?;
    let finding_type =
        FindingType::parse(type_name).map_err(|reason| InputError::InvalidValue {
            path: type_path,
            reason,
        })?;

    let score = match node.number("severity_id")? {
        Some(id) => score_of(id).ok_or_else(|| {
            node.invalid(
                "severity_id",
                format!("{id} is not an OCSF severity (1 informational to 6 fatal)"),
            )
        })?,
        None => {
            let label = node.req_str("severity")?;
            score_of_label(label).ok_or_else(|| {
                node.invalid("severity", format!("unknown severity {}", Shown(label)))
            })?
        }
    };
    let severity = Severity::from_guardduty(score).map_err(|r| node.invalid("severity_id", r))?;
    // Suppressed (3), archived (5) and deleted (6) findings are closed in Security Hub.
    let archived = matches!(node.number("status_id")?.map(|s| s as i64), Some(3 | 5 | 6));
    let mut ctx = Ctx {
        sample: false,
        ignored: Vec::new(),
    };

    let mut finding = Finding {
        product: if guardduty {
            Product::GuardDuty
        } else {
            Product::Other
        },
        security_hub: SecurityHubRef {
            id,
            product_arn,
            format: HubFormat::Ocsf,
        },
        account_id,
        region,
        partition,
        finding_type,
        severity,
        title: fi.text("title")?,
        first_seen: ctx.info(fi.parsed("first_seen_time_dt", parse_time))?,
        last_seen: ctx.info(fi.parsed("last_seen_time_dt", parse_time))?,
        count: 1,
        sample: false,
        archived,
        resource_type: None,
        resource_role: None,
        targets: Targets::default(),
        ignored_fields: Vec::new(),
    };
    for res in &resources {
        resource(&res.node(), &mut ctx, &mut finding)?;
    }
    finding.resource_type = match resources.first() {
        Some(r) => r.node().text("type")?,
        None => None,
    };
    // Remote addresses: the evidences' endpoints. The instance's own addresses are never
    // blocked (the planner drops them), so both ends can be read.
    for ev in node.array("evidences")? {
        let e = ev.node();
        for end in ["src_endpoint", "dst_endpoint"] {
            if let Some(ep) = e.object(end)? {
                if let Some(ip) = ctx.target(ep.node().parsed("ip", crate::ids::parse_ip))? {
                    add_remote_ip(
                        &mut finding.targets.remote_ips,
                        ip,
                        IpSource::NetworkConnectionAction,
                    );
                }
            }
        }
    }
    finding.ignored_fields = ctx.ignored;
    Ok(finding)
}

/// `arn:aws:ec2:…:instance/i-…` or the bare id: the last part.
fn last_part(uid: &str) -> &str {
    uid.rsplit(['/', ':']).next().unwrap_or(uid)
}

fn resource(r: &Node<'_>, ctx: &mut Ctx, finding: &mut Finding) -> Result<(), InputError> {
    r.expect_object()?;
    let kind = r.str("type")?.unwrap_or("");
    let Some(uid) = r.str("uid")? else {
        return Ok(());
    };
    if let Some(owner) = r.object("owner")? {
        if let Some(acct) = owner.node().object("account")? {
            if ctx.elsewhere(&acct.node(), "uid", "account", finding.account_id.as_str())? {
                return Ok(());
            }
        }
    }
    match kind {
        "AWS::EC2::Instance" => {
            let parsed = InstanceId::parse(last_part(uid))
                .map(Some)
                .map_err(|reason| r.invalid("uid", reason));
            if let Some(instance_id) = ctx.target(parsed)? {
                if finding.targets.instance.is_none() {
                    finding.targets.instance = Some(InstanceTarget {
                        instance_id,
                        network_interfaces: Vec::new(),
                        instance_profile_arn: None,
                        // OCSF's key_value_object: {name, value}.
                        tags: tag_list(r, "name")?,
                    });
                }
            }
        }
        "AWS::IAM::Role" => {
            let parsed = IamName::parse(last_part(uid))
                .map(Some)
                .map_err(|reason| r.invalid("uid", reason));
            if let Some(role_name) = ctx.target(parsed)? {
                finding.targets.role = Some(RoleTarget {
                    role_name,
                    role_arn: Arn::parse(uid).ok(),
                });
            }
        }
        "AWS::IAM::AccessKey" => {
            let parsed = AccessKeyId::parse(last_part(uid))
                .map(Some)
                .map_err(|reason| r.invalid("uid", reason));
            let access_key_id = ctx.target(parsed)?;
            let user_name = ctx.target(r.parsed("name", IamName::parse))?;
            finding.targets.access_key = Some(AccessKeyTarget {
                access_key_id,
                principal_id: None,
                user_name,
                user_type: Some(UserType::IamUser),
            });
        }
        "AWS::S3::Bucket" => {
            let parsed = BucketName::parse(last_part(uid))
                .map(Some)
                .map_err(|reason| r.invalid("uid", reason));
            if let Some(b) = ctx.target(parsed)? {
                finding.targets.s3_buckets.push(b);
            }
        }
        "AWS::EKS::Cluster" => {
            let parsed = ClusterName::parse(last_part(uid))
                .map(Some)
                .map_err(|reason| r.invalid("uid", reason));
            finding.targets.eks_cluster = ctx.target(parsed)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ids_map_to_the_lowest_score_of_their_band() {
        assert_eq!(score_of(4.0), Some(7.0));
        assert_eq!(score_of(5.0), Some(9.0));
        assert_eq!(score_of(0.0), None);
        assert_eq!(score_of(99.0), None);
        assert_eq!(score_of_label("High"), Some(7.0));
        assert_eq!(
            last_part("arn:aws:ec2:us-east-1:1:instance/i-0abc"),
            "i-0abc"
        );
        assert_eq!(last_part("i-0abc"), "i-0abc");
    }
}
