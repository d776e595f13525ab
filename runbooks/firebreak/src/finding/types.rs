//! GuardDuty's finding-type grammar:
//! `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact`,
//! e.g. `Backdoor:EC2/C&CActivity.B!DNS`.

use serde::{Deserialize, Serialize};

use crate::error::Shown;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingType {
    /// The type as GuardDuty names it (recovered from ASFF `Types` for Security Hub
    /// findings), or the first ASFF type of another product.
    pub name: String,
    /// `None` when the name does not follow GuardDuty's grammar: an unknown type, for which
    /// Firebreak plans no action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<ParsedType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParsedType {
    pub threat_purpose: String,
    pub resource_type: String,
    pub threat_family: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_mechanism: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

const MAX_TYPE_LEN: usize = 256;

/// ASFF names that the grammar rule below cannot turn back into the GuardDuty type (a
/// missing purpose, an `AnomalousBehavior` moved into the path, words split by dashes), as
/// AWS publishes them beside their GuardDuty types; a test walks that published list.
const IRREGULAR_ASFF_NAMES: [(&str, &str); 21] = [
    ("TTPs/Credential Access/IAMUser-AnomalousBehavior", "CredentialAccess:IAMUser/AnomalousBehavior"),
    ("TTPs/AnomalousBehavior/CredentialAccess:Kubernetes-SecretsAccessed", "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"),
    ("TTPs/DefenseEvasion/EC2:Unusual-DNS-Resolver", "DefenseEvasion:EC2/UnusualDNSResolver"),
    ("TTPs/DefenseEvasion/EC2:Unusual-DoH-Activity", "DefenseEvasion:EC2/UnusualDoHActivity"),
    ("TTPs/DefenseEvasion/EC2:Unusual-DoT-Activity", "DefenseEvasion:EC2/UnusualDoTActivity"),
    ("TTPs/Defense Evasion/IAMUser-AnomalousBehavior", "DefenseEvasion:IAMUser/AnomalousBehavior"),
    ("TTPs/Discovery/IAMUser-AnomalousBehavior", "Discovery:IAMUser/AnomalousBehavior"),
    ("TTPs/AnomalousBehavior/Discovery:Kubernetes-PermissionChecked", "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked"),
    ("TTPs/Discovery/RDS-MaliciousIPCaller", "Discovery:RDS/MaliciousIPCaller"),
    ("TTPs/Discovery/RDS-TorIPCaller", "Discovery:RDS/TorIPCaller"),
    ("TTPs/AnomalousBehavior/Execution:Kubernetes-ExecInPod", "Execution:Kubernetes/AnomalousBehavior.ExecInPod"),
    ("TTPs/AnomalousBehavior/Execution:Kubernetes-WorkloadDeployed", "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed"),
    ("TTPs/Exfiltration/IAMUser-AnomalousBehavior", "Exfiltration:IAMUser/AnomalousBehavior"),
    ("TTPs/Impact/IAMUser-AnomalousBehavior", "Impact:IAMUser/AnomalousBehavior"),
    ("TTPs/Initial Access/IAMUser-AnomalousBehavior", "InitialAccess:IAMUser/AnomalousBehavior"),
    ("TTPs/Persistence/IAMUser-AnomalousBehavior", "Persistence:IAMUser/AnomalousBehavior"),
    ("TTPs/AnomalousBehavior/Persistence:Kubernetes-WorkloadDeployed!ContainerWithSensitiveMount", "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount"),
    ("TTPs/Privilege Escalation/IAMUser-AnomalousBehavior", "PrivilegeEscalation:IAMUser/AnomalousBehavior"),
    ("TTPs/AnomalousBehavior/PrivilegeEscalation:Kubernetes-RoleBindingCreated", "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated"),
    ("TTPs/AnomalousBehavior/PrivilegeEscalation:Kubernetes-RoleCreated", "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated"),
    ("TTPs/AnomalousBehavior/PrivilegeEscalation:Kubernetes-WorkloadDeployed!PrivilegedContainer", "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"),
];

fn word_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"&_-".contains(&b))
}

impl FindingType {
    /// Checks the length and alphabet; splits the GuardDuty grammar when it fits.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() || name.len() > MAX_TYPE_LEN {
            return Err(format!(
                "invalid finding type {}: expected 1 to {MAX_TYPE_LEN} characters",
                Shown(name)
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!(
                "invalid finding type {}: contains control characters",
                Shown(name)
            ));
        }
        Ok(FindingType {
            name: name.to_owned(),
            parsed: ParsedType::parse(name),
        })
    }

    /// The GuardDuty type behind an ASFF type: `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce`
    /// becomes `UnauthorizedAccess:EC2/SSHBruteForce`; `TTPs/PenTest:IAMUser/KaliLinux`
    /// keeps its slash. `None` when no part names a `Purpose:Resource`.
    pub fn guardduty_name_from_asff(asff_type: &str) -> Option<String> {
        if let Some((_, gd)) = IRREGULAR_ASFF_NAMES.iter().find(|(a, _)| *a == asff_type) {
            return Some((*gd).to_owned());
        }
        let segments: Vec<&str> = asff_type.split('/').collect();
        let start = segments.iter().position(|s| s.contains(':'))?;
        let rest = segments[start..].join("/");
        if rest.contains('/') {
            return Some(rest);
        }
        let colon = rest.find(':')?;
        let dash = rest[colon..].find('-')? + colon;
        Some(format!("{}/{}", &rest[..dash], &rest[dash + 1..]))
    }
}

impl ParsedType {
    pub fn parse(name: &str) -> Option<Self> {
        let (purpose, rest) = name.split_once(':')?;
        let (resource, rest) = rest.split_once('/')?;
        let (rest, artifact) = match rest.split_once('!') {
            Some((r, a)) => (r, Some(a)),
            None => (rest, None),
        };
        let (family, mechanism) = match rest.split_once('.') {
            Some((f, m)) => (f, Some(m)),
            None => (rest, None),
        };
        let mechanism_ok = mechanism.is_none_or(|m| m.split('.').all(word_ok));
        if !(word_ok(purpose)
            && word_ok(resource)
            && word_ok(family)
            && mechanism_ok
            && artifact.is_none_or(word_ok))
        {
            return None;
        }
        Some(ParsedType {
            threat_purpose: purpose.to_owned(),
            resource_type: resource.to_owned(),
            threat_family: family.to_owned(),
            detection_mechanism: mechanism.map(str::to_owned),
            artifact: artifact.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_grammar() {
        let t = ParsedType::parse("Backdoor:EC2/C&CActivity.B!DNS").unwrap();
        assert_eq!(t.threat_purpose, "Backdoor");
        assert_eq!(t.resource_type, "EC2");
        assert_eq!(t.threat_family, "C&CActivity");
        assert_eq!(t.detection_mechanism.as_deref(), Some("B"));
        assert_eq!(t.artifact.as_deref(), Some("DNS"));

        let t = ParsedType::parse("UnauthorizedAccess:EC2/SSHBruteForce").unwrap();
        assert_eq!(t.threat_family, "SSHBruteForce");
        assert_eq!(t.detection_mechanism, None);
        assert_eq!(t.artifact, None);

        let t = ParsedType::parse(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        )
        .unwrap();
        assert_eq!(t.resource_type, "IAMUser");
        assert_eq!(t.detection_mechanism.as_deref(), Some("OutsideAWS"));

        assert!(ParsedType::parse("Software and Configuration Checks/CIS").is_none());
        assert!(ParsedType::parse("Recon:EC2").is_none());
        assert!(ParsedType::parse("Recon:EC2/").is_none());
    }

    #[test]
    fn recovers_guardduty_names_from_asff() {
        let cases = [
            (
                "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
                "UnauthorizedAccess:EC2/SSHBruteForce",
            ),
            (
                "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS",
                "Backdoor:EC2/C&CActivity.B!DNS",
            ),
            (
                "TTPs/PenTest:IAMUser/KaliLinux",
                "PenTest:IAMUser/KaliLinux",
            ),
            (
                "Unusual Behaviors/User/UnauthorizedAccess:IAMUser-ConsoleLogin",
                "UnauthorizedAccess:IAMUser/ConsoleLogin",
            ),
        ];
        for (asff, gd) in cases {
            assert_eq!(
                FindingType::guardduty_name_from_asff(asff).as_deref(),
                Some(gd),
                "{asff}"
            );
        }
        assert_eq!(
            FindingType::guardduty_name_from_asff(
                "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
            ),
            None
        );
    }

    /// Every GuardDuty type in AWS's published list (tests/fixtures, with its source)
    /// follows the grammar, and its ASFF name as Security Hub shows it leads back to it.
    #[test]
    fn every_published_type_parses_and_round_trips_from_asff() {
        let list: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/guardduty-finding-types.json"
        ))
        .unwrap();
        let types = list["types"].as_array().unwrap();
        assert!(types.len() >= 200, "{}", types.len());
        for t in types {
            let name = t["type"].as_str().unwrap();
            let parsed = FindingType::parse(name).unwrap();
            assert!(parsed.parsed.is_some(), "{name} does not fit the grammar");
            if let Some(asff) = t["asff"].as_str() {
                assert_eq!(
                    FindingType::guardduty_name_from_asff(asff).as_deref(),
                    Some(name),
                    "{asff}"
                );
            }
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert!(FindingType::parse("").is_err());
        assert!(FindingType::parse(&"A".repeat(300)).is_err());
        assert!(FindingType::parse("Recon:EC2/Port\u{0}scan").is_err());
        // Unknown but well-formed text is kept, unparsed.
        let t = FindingType::parse("Something else").unwrap();
        assert!(t.parsed.is_none());
    }
}
