//! The one finding model every input shape is normalised into.
//!
//! Data flows one way: input → [`Finding`] → plan → action → audit record. Runbooks after
//! triage never look at the raw event again.

mod asff;
mod guardduty;
mod input;
mod malware_scan;
mod ocsf;
mod severity;
mod types;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::InputError;
use crate::ids::*;

pub use input::{
    parse_input, parse_input_bytes, InputKind, ParsedInput, RefusedFinding, DRILL_DETAIL_TYPE,
    DRILL_SOURCE, MAX_INPUT_BYTES,
};
pub use severity::{Severity, SeverityBand};
pub use types::{FindingType, ParsedType};

/// Where the finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Product {
    GuardDuty,
    /// Any other product that reports to Security Hub; Firebreak plans no action for
    /// these unless the policy names their type.
    Other,
}

/// What Security Hub needs to address the finding: `BatchUpdateFindings` takes the ASFF
/// id and product ARN, `BatchUpdateFindingsV2` the OCSF `metadata.uid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityHubRef {
    /// The ASFF `Id`, or the OCSF `metadata.uid`.
    pub id: FindingId,
    pub product_arn: Arn,
    #[serde(default, skip_serializing_if = "HubFormat::is_asff")]
    pub format: HubFormat,
}

/// Which Security Hub holds the finding: the earlier one (Security Hub CSPM, ASFF), the
/// new one (OCSF), or none: a Malware Protection for S3 scan result is an event only, so
/// its response closes nothing in Security Hub and the audit record is its trail.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HubFormat {
    #[default]
    Asff,
    Ocsf,
    None,
}

impl HubFormat {
    pub fn is_asff(&self) -> bool {
        *self == HubFormat::Asff
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub product: Product,
    pub security_hub: SecurityHubRef,
    pub account_id: AccountId,
    pub region: Region,
    pub partition: Partition,
    pub finding_type: FindingType,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub first_seen: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_seen: Option<OffsetDateTime>,
    /// How many times GuardDuty has seen this activity (1 when not reported).
    pub count: u64,
    /// A generated sample finding (`service.additionalInfo.sample`): never acted on.
    pub sample: bool,
    pub archived: bool,
    /// GuardDuty `resource.resourceType` (`Instance`, `AccessKey`, `S3Bucket`, …) or the
    /// ASFF type of the first resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// `TARGET` or `ACTOR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_role: Option<String>,
    pub targets: Targets,
    /// Fields that failed validation and were dropped, each with the reason. A target
    /// field (`needed`) leaves the actions that would use it unable to run, and the plan
    /// says so; an informational one (a timestamp in an older format) changes nothing.
    /// Only what identifies the finding (id, account, region, type) refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_fields: Vec<IgnoredField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IgnoredField {
    pub path: String,
    pub reason: String,
    /// An action would have used the value (an instance id, an IP, a key id).
    #[serde(default)]
    pub needed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<AccessKeyTarget>,
    /// A role the finding names directly (ASFF `AwsIamRole`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_ips: Vec<RemoteIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3_buckets: Vec<BucketName>,
    /// Objects the finding names as malicious (Malware Protection for S3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3_objects: Vec<S3ObjectTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks_cluster: Option<ClusterName>,
    /// The Lambda function of a Lambda Protection finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionTarget>,
    /// An attack sequence (GuardDuty Extended Threat Detection): every resource and
    /// principal it names. Its endpoints are in `remote_ips`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceTargets>,
}

/// A Lambda function as the finding reports it; triage reads its tags and role again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionTarget {
    pub function_name: FunctionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<Arn>,
    /// The execution role's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<Arn>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// An S3 object a malware scan found threats in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3ObjectTarget {
    pub bucket: BucketName,
    pub key: ObjectKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<ObjectVersionId>,
    /// The threats' names as the scan reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threats: Vec<String>,
}

/// What an attack sequence names, each once, in the order GuardDuty lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SequenceTargets {
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceTarget>,
    /// Roles whose sessions acted in the sequence (assumed-role actors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleTarget>,
    /// IAM users' long-term keys that acted in the sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_keys: Vec<AccessKeyTarget>,
    /// Resources Firebreak has no runbook for (`EKS_CLUSTER prod`, `S3_BUCKET logs`):
    /// named in the note, left to a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_resources: Vec<String>,
}

impl SequenceTargets {
    /// Every target the response could act on: instances, roles, keys and the addresses.
    pub fn count(&self, remote_ips: usize) -> usize {
        self.instances.len() + self.roles.len() + self.access_keys.len() + remote_ips
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTarget {
    pub instance_id: InstanceId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile_arn: Option<Arn>,
    /// Tags as reported by the finding; triage replaces them with EC2's current tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl InstanceTarget {
    pub fn subnets(&self) -> Vec<SubnetId> {
        let mut subnets: Vec<SubnetId> = self
            .network_interfaces
            .iter()
            .filter_map(|eni| eni.subnet_id.clone())
            .collect();
        subnets.sort();
        subnets.dedup();
        subnets
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    /// Absent in some findings (GuardDuty's older samples); triage fills it from EC2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<NetworkInterfaceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<SubnetId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<VpcId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroupId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ips: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_addresses: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum UserType {
    #[serde(rename = "IAMUser")]
    IamUser,
    AssumedRole,
    Root,
    FederatedUser,
    Role,
    #[serde(rename = "AWSService")]
    AwsService,
    #[serde(rename = "AWSAccount")]
    AwsAccount,
}

impl UserType {
    /// The name GuardDuty and IAM use.
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::IamUser => "IAMUser",
            UserType::AssumedRole => "AssumedRole",
            UserType::Root => "Root",
            UserType::FederatedUser => "FederatedUser",
            UserType::Role => "Role",
            UserType::AwsService => "AWSService",
            UserType::AwsAccount => "AWSAccount",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "IAMUser" => UserType::IamUser,
            "AssumedRole" => UserType::AssumedRole,
            "Root" => UserType::Root,
            "FederatedUser" => UserType::FederatedUser,
            "Role" => UserType::Role,
            "AWSService" => UserType::AwsService,
            "AWSAccount" => UserType::AwsAccount,
            other => {
                return Err(format!(
                    "unknown user type {}: expected IAMUser, AssumedRole, Root, FederatedUser, Role, AWSService or AWSAccount",
                    crate::error::Shown(other)
                ))
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<AccessKeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<PrincipalId>,
    /// The IAM user name, or for `AssumedRole` the role's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<IamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleTarget {
    pub role_name: IamName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<Arn>,
}

/// Which GuardDuty action an address was reported in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum IpSource {
    NetworkConnectionAction,
    AwsApiCallAction,
    PortProbeAction,
    KubernetesApiCallAction,
    /// A network endpoint of an attack sequence.
    AttackSequence,
}

impl IpSource {
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "networkConnectionAction" | "NetworkConnectionAction" => {
                Some(IpSource::NetworkConnectionAction)
            }
            "awsApiCallAction" | "AwsApiCallAction" => Some(IpSource::AwsApiCallAction),
            "portProbeAction" | "PortProbeAction" => Some(IpSource::PortProbeAction),
            "kubernetesApiCallAction" | "KubernetesApiCallAction" => {
                Some(IpSource::KubernetesApiCallAction)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteIp {
    pub ip: IpAddr,
    pub sources: Vec<IpSource>,
}

/// Adds an address, merging its source into an existing entry: each address once.
pub(crate) fn add_remote_ip(list: &mut Vec<RemoteIp>, ip: IpAddr, source: IpSource) {
    match list.iter_mut().find(|r| r.ip == ip) {
        Some(entry) => {
            if !entry.sources.contains(&source) {
                entry.sources.push(source);
                entry.sources.sort();
            }
        }
        None => list.push(RemoteIp {
            ip,
            sources: vec![source],
        }),
    }
}

/// Parsing state shared by both finding parsers.
pub(crate) struct Ctx {
    /// A generated sample: no action will run, so a dropped value leaves no gap.
    pub sample: bool,
    pub ignored: Vec<IgnoredField>,
}

impl Ctx {
    /// For target fields: a value that fails validation is dropped and recorded, never
    /// acted on; the plan then skips what needed it, and the finding is not RESOLVED.
    pub fn target<T>(
        &mut self,
        result: Result<Option<T>, InputError>,
    ) -> Result<Option<T>, InputError> {
        let needed = !self.sample;
        self.drop_invalid(result, needed)
    }

    /// A target whose `key` names another account or region (`place`) than the finding's
    /// `expected`: recorded as an invalid target, never acted on. True when it is elsewhere.
    pub fn elsewhere(
        &mut self,
        node: &crate::json::Node<'_>,
        key: &str,
        place: &str,
        expected: &str,
    ) -> Result<bool, InputError> {
        match node.str(key)? {
            Some(v) if v != expected => {
                self.target::<()>(Err(node.invalid(
                    key,
                    format!("the target is in {place} {v}, not the finding's {place} {expected}"),
                )))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// For fields no action depends on (timestamps): dropped and recorded.
    pub fn info<T>(
        &mut self,
        result: Result<Option<T>, InputError>,
    ) -> Result<Option<T>, InputError> {
        self.drop_invalid(result, false)
    }

    fn drop_invalid<T>(
        &mut self,
        result: Result<Option<T>, InputError>,
        needed: bool,
    ) -> Result<Option<T>, InputError> {
        match result {
            Err(InputError::InvalidValue { path, reason }) => {
                self.ignored.push(IgnoredField {
                    path,
                    reason,
                    needed,
                });
                Ok(None)
            }
            other => other,
        }
    }
}

pub(crate) fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(|_| {
        format!(
            "invalid timestamp {}: expected RFC 3339 such as 2020-08-22T09:15:57Z",
            crate::error::Shown(value)
        )
    })
}

/// A list of tags `[{<key_field>: …, value: …}]` (GuardDuty's `key`, OCSF's `name`), each
/// within AWS's limits.
pub(crate) fn tag_list(
    node: &crate::json::Node<'_>,
    key_field: &str,
) -> Result<BTreeMap<String, String>, InputError> {
    let mut tags = BTreeMap::new();
    for tag in node.array("tags")? {
        let t = tag.node();
        let key = t.req_str(key_field)?;
        let value = t.str("value")?.unwrap_or("");
        check_tag(key, value).map_err(|r| t.invalid(key_field, r))?;
        tags.insert(key.to_owned(), value.to_owned());
    }
    Ok(tags)
}

/// Tag keys and values within AWS's limits (128 and 256 characters).
pub(crate) fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(format!("invalid tag key {}", crate::error::Shown(key)));
    }
    if value.chars().count() > 256 {
        return Err(format!(
            "invalid value for tag {}: longer than 256 characters",
            crate::error::Shown(key)
        ));
    }
    Ok(())
}

/// An address from a field named for its family (`ipAddressV4`, `IpAddressV6`).
pub(crate) fn parse_ip_of_family(value: &str, want_v4: bool) -> Result<IpAddr, String> {
    let ip = crate::ids::parse_ip(value)?;
    if ip.is_ipv4() == want_v4 {
        Ok(ip)
    } else {
        Err(format!(
            "{} is not an IPv{} address",
            crate::error::Shown(value),
            if want_v4 { 4 } else { 6 }
        ))
    }
}
