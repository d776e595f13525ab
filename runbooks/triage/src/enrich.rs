//! The AWS reads triage makes: the policy from SSM, the instance from EC2, the role
//! behind its instance profile from IAM. Thin functions over the SDK clients; all the
//! deciding happens in `firebreak::plan`.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_iam::Client as IamClient;
use aws_sdk_ssm::Client as SsmClient;
use firebreak::aws::{aws_error, error_code};
use firebreak::error::RunbookError;
use firebreak::finding::{NetworkInterface, RoleTarget};
use firebreak::ids::*;
use firebreak::plan::{BucketFacts, Enrichment, FunctionFacts, InstanceFacts};
use firebreak::policy::Policy;

pub async fn policy_from_ssm(
    ssm: &SsmClient,
    name: &str,
) -> Result<(Policy, String), RunbookError> {
    let out = ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .map_err(|e| aws_error("ssm:GetParameter", e))?;
    Ok(Policy::from_parameter(
        name,
        out.parameter().and_then(|p| p.value()),
    )?)
}

/// Values from AWS are checked like any other input; one that fails is left out and
/// logged rather than trusted.
fn checked<T>(what: &str, value: Option<&str>, parse: fn(&str) -> Result<T, String>) -> Option<T> {
    let v = value?;
    match parse(v) {
        Ok(t) => Some(t),
        Err(reason) => {
            tracing::warn!(
                field = what,
                reason,
                "value from AWS failed validation; ignored"
            );
            None
        }
    }
}

pub async fn instance(
    ec2: &Ec2Client,
    iam: &IamClient,
    id: &InstanceId,
) -> Result<Enrichment, RunbookError> {
    let out = match ec2
        .describe_instances()
        .instance_ids(id.as_str())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
            return Ok(Enrichment::InstanceNotFound {
                instance_id: id.clone(),
            })
        }
        Err(e) => return Err(aws_error("ec2:DescribeInstances", e)),
    };
    let Some(inst) = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id.as_str()))
    else {
        return Ok(Enrichment::InstanceNotFound {
            instance_id: id.clone(),
        });
    };

    let tags: BTreeMap<String, String> = inst
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect();
    let network_interfaces = inst
        .network_interfaces()
        .iter()
        .map(|eni| NetworkInterface {
            network_interface_id: checked(
                "networkInterfaceId",
                eni.network_interface_id(),
                NetworkInterfaceId::parse,
            ),
            subnet_id: checked("subnetId", eni.subnet_id(), SubnetId::parse),
            vpc_id: checked("vpcId", eni.vpc_id(), VpcId::parse),
            security_groups: eni
                .groups()
                .iter()
                .filter_map(|g| checked("groupId", g.group_id(), SecurityGroupId::parse))
                .collect(),
            private_ips: eni
                .private_ip_addresses()
                .iter()
                .filter_map(|p| checked("privateIpAddress", p.private_ip_address(), parse_ip))
                .collect(),
            ipv6_addresses: eni
                .ipv6_addresses()
                .iter()
                .filter_map(|a| checked("ipv6Address", a.ipv6_address(), parse_ip))
                .collect(),
            public_ip: eni
                .association()
                .and_then(|a| checked("publicIp", a.public_ip(), parse_ip)),
        })
        .collect();
    let instance_profile_arn = inst
        .iam_instance_profile()
        .and_then(|p| checked("iamInstanceProfile.arn", p.arn(), Arn::parse));
    let role = match &instance_profile_arn {
        Some(arn) => profile_role(iam, arn).await?,
        None => None,
    };
    Ok(Enrichment::Instance(InstanceFacts {
        instance_id: id.clone(),
        state: inst
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned()),
        tags,
        network_interfaces,
        instance_profile_arn,
        role,
    }))
}

/// `arn:aws:iam::123456789012:instance-profile/path/name` → the profile's role.
async fn profile_role(iam: &IamClient, arn: &Arn) -> Result<Option<RoleTarget>, RunbookError> {
    let Some(name) = arn
        .resource()
        .rsplit('/')
        .next()
        .filter(|n| IamName::parse(n).is_ok())
    else {
        return Ok(None);
    };
    let out = match iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("NoSuchEntity") => return Ok(None),
        Err(e) => return Err(aws_error("iam:GetInstanceProfile", e)),
    };
    Ok(out
        .instance_profile()
        .and_then(|p| p.roles().first())
        .and_then(|r| {
            Some(RoleTarget {
                role_name: checked("roleName", Some(r.role_name()), IamName::parse)?,
                role_arn: checked("roleArn", Some(r.arn()), Arn::parse),
            })
        }))
}

/// The Lambda function of a Lambda Protection finding: its tags (the exemption tag is
/// honoured on functions too) and its execution role, as Lambda has them.
pub async fn function(
    lambda: &aws_sdk_lambda::Client,
    name: &FunctionName,
) -> Result<Enrichment, RunbookError> {
    let out = match lambda
        .get_function()
        .function_name(name.as_str())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
            return Ok(Enrichment::FunctionNotFound {
                function_name: name.clone(),
            })
        }
        Err(e) => return Err(aws_error("lambda:GetFunction", e)),
    };
    let config = out.configuration();
    let role = checked(
        "Configuration.Role",
        config.and_then(|c| c.role()),
        Arn::parse,
    )
    .and_then(|arn| {
        let role_name = arn.resource().strip_prefix("role/")?.rsplit('/').next()?;
        Some(RoleTarget {
            role_name: IamName::parse(role_name).ok()?,
            role_arn: Some(arn.clone()),
        })
    });
    let tags: BTreeMap<String, String> = out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Enrichment::Function(FunctionFacts {
        function_name: name.clone(),
        function_arn: checked(
            "Configuration.FunctionArn",
            config.and_then(|c| c.function_arn()),
            Arn::parse,
        ),
        tags,
        role,
    }))
}

/// The buckets of an S3 finding as S3 has them: their tags (the exemption tag works on
/// buckets too). A bucket that is gone is `missing`; one S3 refuses as the finding
/// account's (403 to the expected-owner check, or its policy denies Firebreak) is
/// `refused`: bucket names are global, and another account's bucket is never acted on.
pub async fn buckets(
    s3: &aws_sdk_s3::Client,
    names: &[BucketName],
    owner: &AccountId,
) -> Result<Enrichment, RunbookError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut refused = Vec::new();
    for name in names {
        match s3
            .get_bucket_tagging()
            .bucket(name.as_str())
            .expected_bucket_owner(owner.as_str())
            .send()
            .await
        {
            Ok(out) => found.push(BucketFacts {
                name: name.clone(),
                tags: out
                    .tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            }),
            Err(e) if error_code(&e) == Some("NoSuchTagSet") => found.push(BucketFacts {
                name: name.clone(),
                tags: BTreeMap::new(),
            }),
            Err(e) if error_code(&e) == Some("NoSuchBucket") => {
                tracing::info!(bucket = %name, "bucket gone: nothing to act on");
                missing.push(name.clone());
            }
            // Not the expected owner's, or denied by the bucket's policy: S3 says only
            // AccessDenied, and either way Firebreak must not act on it.
            Err(e) if error_code(&e) == Some("AccessDenied") => {
                tracing::warn!(bucket = %name, owner = %owner, "S3 refused the bucket as the finding account's: never acted on");
                refused.push(name.clone());
            }
            Err(e) => return Err(aws_error("s3:GetBucketTagging", e)),
        }
    }
    Ok(Enrichment::Buckets {
        found,
        missing,
        refused,
    })
}
