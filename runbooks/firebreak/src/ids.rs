//! Validated identifiers. A value of one of these types has passed its check, so a
//! runbook that holds an `InstanceId` can pass it to EC2 without looking again. They
//! deserialize through the same check: a plan handed from one Lambda to the next cannot
//! smuggle an unchecked value in.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::Shown;

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value`; the error says what is wrong with it.
            pub fn parse(value: &str) -> Result<Self, String> {
                $check(value)?;
                Ok(Self(value.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                $check(&value)?;
                Ok(Self(value))
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `prefix-` followed by 8 or 17 lowercase hex digits: the EC2 resource id format.
fn check_ec2_id(value: &str, prefix: &str, what: &str) -> Result<(), String> {
    let ok = value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {}: expected {prefix}- followed by 8 or 17 lowercase hex digits",
            Shown(value)
        ))
    }
}

fn check_instance_id(v: &str) -> Result<(), String> {
    check_ec2_id(v, "i", "instance id")
}
fn check_subnet_id(v: &str) -> Result<(), String> {
    check_ec2_id(v, "subnet", "subnet id")
}
fn check_vpc_id(v: &str) -> Result<(), String> {
    check_ec2_id(v, "vpc", "VPC id")
}
fn check_security_group_id(v: &str) -> Result<(), String> {
    check_ec2_id(v, "sg", "security group id")
}
fn check_eni_id(v: &str) -> Result<(), String> {
    check_ec2_id(v, "eni", "network interface id")
}

fn check_account_id(v: &str) -> Result<(), String> {
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "invalid account id {}: expected 12 digits",
            Shown(v)
        ))
    }
}

/// Region names such as `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1`:
/// lowercase words joined by `-`, the last one a number.
fn check_region(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = v.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| {
            !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid region {}: expected a region name such as us-east-1",
            Shown(v)
        ))
    }
}

const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

fn check_partition(v: &str) -> Result<(), String> {
    if PARTITIONS.contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "invalid partition {}: expected one of {}",
            Shown(v),
            PARTITIONS.join(", ")
        ))
    }
}

/// `arn:partition:service:region:account:resource`. Region and account may be empty
/// (IAM and S3 ARNs); account may be `aws` (AWS-managed policies).
fn check_arn(v: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid ARN {}: {why}", Shown(v)));
    if v.len() > 2048 {
        return bad("longer than 2048 characters");
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains whitespace or control characters");
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("expected arn:partition:service:region:account:resource");
    }
    if check_partition(parts[1]).is_err() {
        return bad("unknown partition");
    }
    if parts[2].is_empty()
        || !parts[2]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("service is empty or not lowercase");
    }
    if !parts[3].is_empty() && check_region(parts[3]).is_err() {
        return bad("region is not a region name");
    }
    if !parts[4].is_empty() && parts[4] != "aws" && check_account_id(parts[4]).is_err() {
        return bad("account is not 12 digits");
    }
    if parts[5].is_empty() {
        return bad("resource is empty");
    }
    Ok(())
}

/// IAM user and role names: 1 to 64 of letters, digits and `+=,.@_-`.
fn check_iam_name(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid IAM name {}: expected 1 to 64 letters, digits or +=,.@_-",
            Shown(v)
        ))
    }
}

/// Access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16 uppercase letters or digits.
fn check_access_key_id(v: &str) -> Result<(), String> {
    // IAM's own constraint (API reference, AccessKeyId): 16 to 128 word characters. Keys
    // issued today are AKIA/ASIA + 16, but nothing stricter is documented.
    let ok =
        (16..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid access key id {}: expected 16 to 128 letters, digits or underscores",
            Shown(v)
        ))
    }
}

/// Principal ids (`AIDA…`, `AROA…:session`): shown in notes, never acted on, but still
/// kept to a safe alphabet.
fn check_principal_id(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":+=,.@_-".contains(&b))
    {
        Ok(())
    } else {
        Err(format!("invalid principal id {}", Shown(v)))
    }
}

/// Security Hub finding ids are opaque strings of up to 512 characters.
fn check_finding_id(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 512 {
        Err(format!(
            "invalid finding id {}: expected 1 to 512 characters",
            Shown(v)
        ))
    } else if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err(format!(
            "invalid finding id {}: contains whitespace or control characters",
            Shown(v)
        ))
    } else {
        Ok(())
    }
}

/// S3 bucket names: 3 to 63 of lowercase letters, digits, `.` and `-`.
fn check_bucket_name(v: &str) -> Result<(), String> {
    if (3..=63).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!("invalid S3 bucket name {}", Shown(v)))
    }
}

/// EKS cluster names: 1 to 100 of letters, digits, `_` and `-`, starting alphanumeric.
fn check_cluster_name(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.len() <= 100
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!("invalid EKS cluster name {}", Shown(v)))
    }
}

validated_string!(
    /// An EC2 instance id such as `i-0c10c2c7863d1a356`.
    InstanceId, check_instance_id);
validated_string!(SubnetId, check_subnet_id);
validated_string!(VpcId, check_vpc_id);
validated_string!(SecurityGroupId, check_security_group_id);
validated_string!(NetworkInterfaceId, check_eni_id);
validated_string!(AccountId, check_account_id);
validated_string!(Region, check_region);
validated_string!(Partition, check_partition);
validated_string!(Arn, check_arn);
validated_string!(
    /// An IAM user or role name.
    IamName, check_iam_name);
validated_string!(AccessKeyId, check_access_key_id);
validated_string!(PrincipalId, check_principal_id);
validated_string!(
    /// The Security Hub finding `Id`.
    FindingId, check_finding_id);
validated_string!(BucketName, check_bucket_name);
validated_string!(ClusterName, check_cluster_name);
validated_string!(
    /// A Lambda function's name (the name, not its ARN): 1 to 64 letters, digits, `-`, `_`.
    FunctionName, check_function_name);

validated_string!(
    /// An S3 object key: 1 to 1024 bytes, no control characters (S3 allows them; a key
    /// that carries one is left to a person rather than put in a log line or a request).
    ObjectKey, check_object_key);
validated_string!(
    /// An S3 object version id: 1 to 1024 printable ASCII characters.
    ObjectVersionId, check_object_version_id);

fn check_object_key(v: &str) -> Result<(), String> {
    if !v.is_empty() && v.len() <= 1024 && !v.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("expected an S3 object key: 1 to 1024 bytes without control characters".into())
    }
}

fn check_object_version_id(v: &str) -> Result<(), String> {
    if !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err("expected an S3 version id: 1 to 1024 printable ASCII characters".into())
    }
}

fn check_function_name(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid Lambda function name {}: expected 1 to 64 letters, digits, - or _",
            Shown(v)
        ))
    }
}

impl Arn {
    fn part(&self, index: usize) -> &str {
        self.0.splitn(6, ':').nth(index).unwrap_or("")
    }
    pub fn partition(&self) -> &str {
        self.part(1)
    }
    pub fn service(&self) -> &str {
        self.part(2)
    }
    pub fn region(&self) -> &str {
        self.part(3)
    }
    pub fn account(&self) -> &str {
        self.part(4)
    }
    /// Everything after the fifth colon, e.g. `role/aws-service-role/x/AWSServiceRoleForX`.
    pub fn resource(&self) -> &str {
        self.part(5)
    }
}

/// A single remote address. CIDRs are refused: a finding reports hosts, and blocking
/// `0.0.0.0/0` because a field held it would cut a subnet off the internet.
pub fn parse_ip(value: &str) -> Result<IpAddr, String> {
    if value.contains('/') {
        return Err(format!(
            "invalid IP address {}: a remote IP must be one address, not a CIDR block",
            Shown(value)
        ));
    }
    value
        .parse::<IpAddr>()
        .map_err(|_| format!("invalid IP address {}", Shown(value)))
}

/// A CIDR block whose host bits are zero (`10.0.0.0/8`, not `10.0.0.1/8`), as AWS wants it.
pub fn parse_cidr(value: &str) -> Result<IpNet, String> {
    let net: IpNet = value
        .parse()
        .map_err(|_| format!("invalid CIDR block {}", Shown(value)))?;
    if net.trunc() != net {
        return Err(format!(
            "invalid CIDR block {}: host bits are set; did you mean {}?",
            Shown(value),
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        assert!(InstanceId::parse("i-0c10c2c7863d1a356").is_ok());
        assert!(InstanceId::parse("i-99999999").is_ok());
        for bad in [
            "i-123;rm",
            "i-",
            "i-0C10C2C7863D1A356",
            "i-0c10c2c7863d1a35",
            "sg-12345678",
            " i-12345678",
            "i-12345678\n",
            "",
        ] {
            let err = InstanceId::parse(bad).unwrap_err();
            assert!(err.contains("invalid instance id"), "{bad}: {err}");
        }
    }

    #[test]
    fn arns() {
        let arn = Arn::parse("arn:aws:iam::123456789012:role/aws-service-role/x/Y").unwrap();
        assert_eq!(arn.service(), "iam");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.resource(), "role/aws-service-role/x/Y");
        assert!(Arn::parse("arn:aws:s3:::bucket").is_ok());
        assert!(Arn::parse("arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        // The extra colon the GuardDuty user guide prints in its ASFF example.
        let err = Arn::parse("arn:aws::securityhub:us-east-1::product/aws/guardduty").unwrap_err();
        assert!(err.contains("service is empty"), "{err}");
        assert!(Arn::parse("arn:aws:ec2:us-east-1:12345:instance/i-1").is_err());
        assert!(Arn::parse("arn:aws:ec2:us-east-1:123456789012:").is_err());
        assert!(Arn::parse("arn:aws:ec2:us east:123456789012:x").is_err());
    }

    #[test]
    fn regions_accounts_partitions() {
        for ok in ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1"] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "us-east-1a", "-east-1", "us--1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
        assert!(Partition::parse("aws-us-gov").is_ok());
        assert!(Partition::parse("azure").is_err());
    }

    #[test]
    fn access_keys_and_names() {
        assert!(AccessKeyId::parse("ASIASZ4SI7REEEXAMPLE").is_ok());
        assert!(AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").is_ok());
        // IAM documents 16-128 word characters, so Firebreak accepts what IAM accepts.
        assert!(AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE1").is_ok());
        assert!(AccessKeyId::parse(&"A".repeat(128)).is_ok());
        assert!(AccessKeyId::parse(&"A".repeat(129)).is_err());
        assert!(AccessKeyId::parse("AKIA0123456789A").is_err());
        assert!(AccessKeyId::parse("AKIA-0123456789AB").is_err());
        assert!(IamName::parse("web-role+x=y,z.@_").is_ok());
        assert!(IamName::parse("role name").is_err());
        assert!(IamName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn ips_and_cidrs() {
        assert!(parse_ip("198.51.100.7").is_ok());
        assert!(parse_ip("2001:db8::1").is_ok());
        let err = parse_ip("0.0.0.0/0").unwrap_err();
        assert!(err.contains("not a CIDR"), "{err}");
        assert!(parse_ip("1.2.3.256").is_err());
        assert!(parse_cidr("10.0.0.0/8").is_ok());
        assert!(parse_cidr("fc00::/7").is_ok());
        let err = parse_cidr("10.0.0.1/8").unwrap_err();
        assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");
    }

    #[test]
    fn deserialising_checks_again() {
        let bad: Result<InstanceId, _> = serde_json::from_str("\"i-123;rm\"");
        assert!(bad.is_err());
        let good: InstanceId = serde_json::from_str("\"i-12345678\"").unwrap();
        assert_eq!(good.as_str(), "i-12345678");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let err = InstanceId::parse(&"x".repeat(100_000)).unwrap_err();
        assert!(err.len() < 200, "{}", err.len());
        assert!(err.contains("100000 characters"));
    }
}
