//! The sample findings bundled into the binary: Firebreak's own fixtures (one per input
//! shape and target kind) and the public samples it was built against (sources and
//! licences in tests/fixtures/samples/SOURCE.txt; the two that Firebreak refuses as they
//! were published — the docs' ASFF with `arn:aws::`, the waf-acl event cut to region and
//! detail — are not bundled). `firebreak drill --sample NAME` and
//! `firebreak samples` read them.

pub struct Sample {
    pub name: &'static str,
    pub origin: &'static str,
    pub text: &'static str,
}

pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "attack-sequence-ec2-instance-group",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/attack-sequence-ec2-instance-group.json"),
    },
    Sample {
        name: "malware-scan-result-threats-found",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/malware-scan-result-threats-found.json"),
    },
    Sample {
        name: "s3-bucket-anonymous-access",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/s3-bucket-anonymous-access.json"),
    },
    Sample {
        name: "lambda-backdoor-c2",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/lambda-backdoor-c2.json"),
    },
    Sample {
        name: "securityhub-v2-ocsf-ssh-brute-force",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/securityhub-v2-ocsf-ssh-brute-force.json"),
    },
    Sample {
        name: "asff-finding-ssh-brute-force",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/asff-finding-ssh-brute-force.json"),
    },
    Sample {
        name: "ocsf-finding-ssh-brute-force",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ocsf-finding-ssh-brute-force.json"),
    },
    Sample {
        name: "finding-array-guardduty-and-asff",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/finding-array-guardduty-and-asff.json"),
    },
    Sample {
        name: "securityhub-get-findings-output",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/securityhub-get-findings-output.json"),
    },
    Sample {
        name: "securityhub-get-findings-v2-output",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/securityhub-get-findings-v2-output.json"),
    },
    Sample {
        name: "sample-guardduty-get-findings",
        origin: "public sample (awscli example: guardduty get-findings)",
        text: include_str!("../../tests/fixtures/samples/guardduty-GetFindings-cli-output__Recon_IAMUser_UserPermissions__awscli-example.json"),
    },
    Sample {
        name: "assumed-role-credential-exfiltration",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/assumed-role-credential-exfiltration.json"),
    },
    Sample {
        name: "drill-dry-run",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/drill-dry-run.json"),
    },
    Sample {
        name: "ec2-dns-backdoor",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ec2-dns-backdoor.json"),
    },
    Sample {
        name: "ec2-exempt-instance",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ec2-exempt-instance.json"),
    },
    Sample {
        name: "ec2-network-backdoor",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ec2-network-backdoor.json"),
    },
    Sample {
        name: "ec2-port-probe",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ec2-port-probe.json"),
    },
    Sample {
        name: "ec2-ssh-brute-force-ipv6",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/ec2-ssh-brute-force-ipv6.json"),
    },
    Sample {
        name: "eks-kubernetes-malicious-caller",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/eks-kubernetes-malicious-caller.json"),
    },
    Sample {
        name: "iam-user-malicious-caller",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/iam-user-malicious-caller.json"),
    },
    Sample {
        name: "root-credential-usage",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/root-credential-usage.json"),
    },
    Sample {
        name: "s3-malicious-ip-caller",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/s3-malicious-ip-caller.json"),
    },
    Sample {
        name: "securityhub-custom-action-two-findings",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/securityhub-custom-action-two-findings.json"),
    },
    Sample {
        name: "securityhub-imported-guardduty-ssh",
        origin: "firebreak fixture",
        text: include_str!("../../tests/fixtures/findings/securityhub-imported-guardduty-ssh.json"),
    },
    Sample {
        name: "sample-ec2-canary",
        origin: "public sample (aws-samples-automated-response)",
        text: include_str!("../../tests/fixtures/samples/guardduty-detail__Canary_EC2_Stateless.IntegTest__aws-samples-automated-response.json"),
    },
    Sample {
        name: "sample-s3-pentest-parrot",
        origin: "public sample (aws-samples-automated-response)",
        text: include_str!("../../tests/fixtures/samples/guardduty-detail__PenTest_S3_ParrotLinux__aws-samples-automated-response.json"),
    },
    Sample {
        name: "sample-iam-user-malicious-caller",
        origin: "public sample (aws-samples-automated-response)",
        text: include_str!("../../tests/fixtures/samples/guardduty-detail__Recon_IAMUser_MaliciousIPCaller.Custom__aws-samples-automated-response.json"),
    },
    Sample {
        name: "sample-hub-cis-cloudtrail",
        origin: "public sample (custodian-event-securityhub-cloudtrail-finding-action)",
        text: include_str!("../../tests/fixtures/samples/securityhub-custom-action__custodian-event-securityhub-cloudtrail-finding-action.json"),
    },
    Sample {
        name: "sample-hub-console-login",
        origin: "public sample (custodian-event-securityhub-iamkey-finding-action)",
        text: include_str!("../../tests/fixtures/samples/securityhub-custom-action__custodian-event-securityhub-iamkey-finding-action.json"),
    },
    Sample {
        name: "sample-hub-custodian-lambda",
        origin: "public sample (custodian-event-securityhub-lambda-cross)",
        text: include_str!("../../tests/fixtures/samples/securityhub-custom-action__custodian-event-securityhub-lambda-cross.json"),
    },
];

pub fn find(name: &str) -> Option<&'static Sample> {
    SAMPLES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_sample_is_an_input_firebreak_reads() {
        for s in SAMPLES {
            let input = firebreak::finding::parse_input_bytes(s.text.as_bytes());
            assert!(input.is_ok(), "{}: {:?}", s.name, input.err());
        }
        let mut names: Vec<&str> = SAMPLES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SAMPLES.len(), "names are unique");
        assert!(find("ec2-network-backdoor").is_some());
    }

    /// One sample of every input shape the library reads.
    #[test]
    fn every_input_shape_has_a_sample() {
        use firebreak::finding::InputKind::*;
        let kinds: std::collections::BTreeSet<String> = SAMPLES
            .iter()
            .filter_map(|s| firebreak::finding::parse_input_bytes(s.text.as_bytes()).ok())
            .map(|i| format!("{:?}", i.kind))
            .collect();
        for k in [
            GuardDutyEvent,
            SecurityHubImportedEvent,
            SecurityHubCustomActionEvent,
            SecurityHubV2ImportedEvent,
            GuardDutyFinding,
            AsffFinding,
            OcsfFinding,
            FindingArray,
            GuardDutyGetFindings,
            SecurityHubGetFindings,
            SecurityHubGetFindingsV2,
        ] {
            assert!(
                kinds.contains(&format!("{k:?}")),
                "no sample of {k:?}: {kinds:?}"
            );
        }
    }
}
