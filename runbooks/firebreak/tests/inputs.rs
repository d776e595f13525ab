//! Every input shape into the finding model, field by field; every bad input refused with
//! the error that names what is wrong.

mod common;

use std::net::IpAddr;

use common::*;
use firebreak::error::InputError;
use firebreak::finding::*;
use serde_json::{json, Value};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn one(name: &str) -> Finding {
    let parsed = fixture(name);
    assert_eq!(parsed.findings.len(), 1, "{name}");
    parsed.findings.into_iter().next().unwrap()
}

#[test]
fn guardduty_event_ec2_network_finding() {
    let input = fixture("ec2-network-backdoor.json");
    assert_eq!(input.kind, InputKind::GuardDutyEvent);
    assert!(!input.drill && !input.dry_run);
    assert_eq!(
        input.event_id.as_deref(),
        Some("7bf73129-1428-4cd3-a780-95db273d1602")
    );
    let f = &input.findings[0];
    assert_eq!(f.product, Product::GuardDuty);
    assert_eq!(
        f.security_hub.id.as_str(),
        "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1f0c3e5b7d9e1f3a5c7e9b1d3f5a7c1"
    );
    assert_eq!(
        f.security_hub.product_arn.as_str(),
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );
    assert_eq!(f.account_id.as_str(), "111122223333");
    assert_eq!(f.region.as_str(), "us-east-1");
    assert_eq!(f.partition.as_str(), "aws");
    assert_eq!(f.finding_type.name, "Backdoor:EC2/C&CActivity.B");
    let t = f.finding_type.parsed.as_ref().unwrap();
    assert_eq!(
        (
            t.threat_purpose.as_str(),
            t.resource_type.as_str(),
            t.threat_family.as_str()
        ),
        ("Backdoor", "EC2", "C&CActivity")
    );
    assert_eq!(t.detection_mechanism.as_deref(), Some("B"));
    assert_eq!(t.artifact, None);
    assert_eq!(f.severity.score, 8.0);
    assert_eq!(f.severity.band, SeverityBand::High);
    assert_eq!(f.count, 12);
    assert!(!f.sample && !f.archived);
    assert_eq!(f.first_seen.unwrap().unix_timestamp(), 1_795_857_357);
    assert_eq!(f.last_seen.unwrap().unix_timestamp(), 1_795_867_009);
    assert_eq!(f.resource_type.as_deref(), Some("Instance"));
    assert_eq!(f.resource_role.as_deref(), Some("TARGET"));

    let i = f.targets.instance.as_ref().unwrap();
    assert_eq!(i.instance_id.as_str(), "i-0a1b2c3d4e5f60718");
    assert_eq!(
        i.instance_profile_arn.as_ref().unwrap().as_str(),
        "arn:aws:iam::111122223333:instance-profile/web-instance-profile"
    );
    assert_eq!(
        i.tags.get("owner").map(String::as_str),
        Some("alice@example.com")
    );
    assert_eq!(i.network_interfaces.len(), 2);
    let e0 = &i.network_interfaces[0];
    assert_eq!(
        e0.network_interface_id.as_ref().unwrap().as_str(),
        "eni-0a1b2c3d4e5f60711"
    );
    assert_eq!(
        e0.subnet_id.as_ref().unwrap().as_str(),
        "subnet-0a1b2c3d4e5f60721"
    );
    assert_eq!(
        e0.vpc_id.as_ref().unwrap().as_str(),
        "vpc-0a1b2c3d4e5f60731"
    );
    assert_eq!(e0.security_groups.len(), 1);
    assert_eq!(e0.private_ips, vec![ip("10.0.1.10")]);
    assert_eq!(e0.public_ip, Some(ip("54.240.197.10")));
    let e1 = &i.network_interfaces[1];
    assert_eq!(e1.security_groups.len(), 2);
    assert_eq!(e1.ipv6_addresses, vec![ip("2600:1f18:abc:de01::10")]);
    assert_eq!(i.subnets().len(), 2);

    assert_eq!(
        f.targets.remote_ips,
        vec![RemoteIp {
            ip: ip("203.0.113.50"),
            sources: vec![IpSource::NetworkConnectionAction]
        }]
    );
    assert!(f.targets.access_key.is_none());
    assert!(f.ignored_fields.is_empty());
}

#[test]
fn dns_finding_has_no_remote_ip_and_keeps_the_artifact() {
    let f = one("ec2-dns-backdoor.json");
    assert_eq!(
        f.finding_type.parsed.unwrap().artifact.as_deref(),
        Some("DNS")
    );
    assert!(f.targets.remote_ips.is_empty());
    assert!(f.targets.instance.is_some());
}

#[test]
fn port_probe_collects_each_distinct_address_once() {
    let f = one("ec2-port-probe.json");
    let ips: Vec<IpAddr> = f.targets.remote_ips.iter().map(|r| r.ip).collect();
    assert_eq!(
        ips,
        vec![ip("198.51.100.23"), ip("203.0.113.77"), ip("10.9.8.7")]
    );
    assert!(f
        .targets
        .remote_ips
        .iter()
        .all(|r| r.sources == vec![IpSource::PortProbeAction]));
    assert_eq!(f.severity.band, SeverityBand::Low);
}

#[test]
fn iam_user_access_key() {
    let f = one("iam-user-malicious-caller.json");
    let k = f.targets.access_key.unwrap();
    assert_eq!(k.access_key_id.unwrap().as_str(), "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(k.principal_id.unwrap().as_str(), "AIDACKCEVSQ6C2EXAMPLE");
    assert_eq!(k.user_name.unwrap().as_str(), "ci-deployer");
    assert_eq!(k.user_type, Some(UserType::IamUser));
    assert!(f.targets.instance.is_none());
    assert_eq!(
        f.targets.remote_ips[0].sources,
        vec![IpSource::AwsApiCallAction]
    );
}

#[test]
fn assumed_role_key_does_not_make_its_instance_details_a_target() {
    let f = one("assumed-role-credential-exfiltration.json");
    let k = f.targets.access_key.unwrap();
    assert_eq!(k.user_type, Some(UserType::AssumedRole));
    assert_eq!(k.user_name.unwrap().as_str(), "web-instance-role");
    assert_eq!(k.access_key_id.unwrap().as_str(), "ASIASZ4SI7REEEXAMPLE");
    assert_eq!(
        k.principal_id.unwrap().as_str(),
        "AROACKCEVSQ6C2EXAMPLE:i-0a1b2c3d4e5f60718"
    );
    assert_eq!(f.resource_type.as_deref(), Some("AccessKey"));
    assert!(
        f.targets.instance.is_none(),
        "instanceDetails of an AccessKey finding is not a target"
    );
    assert_eq!(
        f.finding_type
            .parsed
            .unwrap()
            .detection_mechanism
            .as_deref(),
        Some("OutsideAWS")
    );
}

#[test]
fn root_user() {
    let f = one("root-credential-usage.json");
    assert_eq!(
        f.targets.access_key.unwrap().user_type,
        Some(UserType::Root)
    );
}

#[test]
fn s3_and_eks_targets() {
    let f = one("s3-malicious-ip-caller.json");
    assert_eq!(f.targets.s3_buckets.len(), 1);
    assert_eq!(f.targets.s3_buckets[0].as_str(), "payments-exports");
    assert_eq!(f.resource_type.as_deref(), Some("S3Bucket"));

    let f = one("eks-kubernetes-malicious-caller.json");
    assert_eq!(f.targets.eks_cluster.unwrap().as_str(), "payments-prod");
    assert_eq!(
        f.targets.remote_ips,
        vec![RemoteIp {
            ip: ip("203.0.113.140"),
            sources: vec![IpSource::KubernetesApiCallAction]
        }]
    );
}

#[test]
fn ipv6_remote_address() {
    let f = one("ec2-ssh-brute-force-ipv6.json");
    assert_eq!(f.targets.remote_ips.len(), 1);
    assert_eq!(
        f.targets.remote_ips[0].ip,
        ip("2001:db8:85a3::8a2e:370:7334")
    );
    assert!(f.targets.remote_ips[0].ip.is_ipv6());
    assert_eq!(f.severity.band, SeverityBand::High);
}

#[test]
fn guardduty_finding_in_asff_from_an_imported_event() {
    let input = fixture("securityhub-imported-guardduty-ssh.json");
    assert_eq!(input.kind, InputKind::SecurityHubImportedEvent);
    let f = &input.findings[0];
    assert_eq!(f.product, Product::GuardDuty);
    assert_eq!(
        f.security_hub.id.as_str(),
        "arn:aws:guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea"
    );
    assert_eq!(
        f.security_hub.product_arn.as_str(),
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );
    assert_eq!(f.finding_type.name, "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(f.severity.band, SeverityBand::Medium);
    assert_eq!(f.severity.score, 4.0);
    assert_eq!(f.count, 74);
    assert!(!f.archived && !f.sample);
    assert_eq!(f.resource_role.as_deref(), Some("TARGET"));
    let i = f.targets.instance.as_ref().unwrap();
    assert_eq!(i.instance_id.as_str(), "i-0c10c2c7863d1a356");
    assert_eq!(i.subnets()[0].as_str(), "subnet-4975b475");
    assert_eq!(i.tags.get("Name").map(String::as_str), Some("kubectl"));
    assert_eq!(
        f.targets.remote_ips,
        vec![RemoteIp {
            ip: ip("199.241.229.197"),
            sources: vec![IpSource::NetworkConnectionAction]
        }]
    );
    assert_eq!(f.first_seen.unwrap().unix_timestamp(), 1_598_087_757);
}

#[test]
fn custom_action_event_with_two_findings() {
    let input = fixture("securityhub-custom-action-two-findings.json");
    assert_eq!(input.kind, InputKind::SecurityHubCustomActionEvent);
    assert_eq!(
        input.custom_action_arn.as_ref().unwrap().as_str(),
        "arn:aws:securityhub:us-east-1:193043430472:action/custom/FirebreakContain"
    );
    assert_eq!(input.findings.len(), 2);
    assert_eq!(
        input.findings[0].finding_type.name,
        "UnauthorizedAccess:EC2/SSHBruteForce"
    );
    assert_eq!(
        input.findings[1].finding_type.name,
        "Backdoor:EC2/C&CActivity.B"
    );
    assert_eq!(input.findings[1].severity.band, SeverityBand::High);
    assert_ne!(
        input.findings[0].security_hub.id,
        input.findings[1].security_hub.id
    );
}

#[test]
fn drill_input_wraps_an_event() {
    let input = fixture("drill-dry-run.json");
    assert!(input.drill && input.dry_run);
    assert_eq!(input.kind, InputKind::GuardDutyEvent);
    assert_eq!(
        input.reason.as_deref(),
        Some("quarterly rehearsal of the EC2 playbook")
    );
    assert_eq!(input.findings[0], one("ec2-network-backdoor.json"));

    // A drill may also wrap a bare finding; dryRun defaults to false.
    let event = fixture_json("ec2-network-backdoor.json");
    let v = json!({"finding": event["detail"]});
    let input = parse_input(&v).unwrap();
    assert!(input.drill && !input.dry_run);
    assert_eq!(input.kind, InputKind::GuardDutyFinding);
    assert_eq!(input.findings[0], one("ec2-network-backdoor.json"));
}

#[test]
fn bare_findings_parse_like_their_events() {
    let event = fixture_json("ec2-network-backdoor.json");
    let bare = parse_input(&event["detail"]).unwrap();
    assert_eq!(bare.kind, InputKind::GuardDutyFinding);
    assert_eq!(bare.findings[0], one("ec2-network-backdoor.json"));

    let event = fixture_json("securityhub-imported-guardduty-ssh.json");
    let bare = parse_input(&event["detail"]["findings"][0]).unwrap();
    assert_eq!(bare.kind, InputKind::AsffFinding);
    assert_eq!(
        bare.findings[0],
        fixture("securityhub-imported-guardduty-ssh.json").findings[0]
    );
}

#[test]
fn the_model_survives_a_round_trip_through_json() {
    for name in [
        "ec2-network-backdoor.json",
        "securityhub-custom-action-two-findings.json",
        "assumed-role-credential-exfiltration.json",
    ] {
        for f in fixture(name).findings {
            let text = serde_json::to_string(&f).unwrap();
            let back: Finding = serde_json::from_str(&text).unwrap();
            assert_eq!(back, f, "{name}");
        }
    }
}

// ---- the public samples in tests/fixtures/samples ---------------------------------------

fn sample(name: &str) -> Result<ParsedInput, InputError> {
    let path = samples_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_input_bytes(&bytes)
}

#[test]
fn every_sample_is_parsed_or_refused_with_a_reason() {
    let mut seen = 0;
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        seen += 1;
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let result = sample(&name);
        let expected_ok = [
            "guardduty-detail__Canary_EC2_Stateless.IntegTest__aws-samples-automated-response.json",
            "guardduty-detail__PenTest_S3_ParrotLinux__aws-samples-automated-response.json",
            "guardduty-detail__Recon_IAMUser_MaliciousIPCaller.Custom__aws-samples-automated-response.json",
            "guardduty-GetFindings-cli-output__Recon_IAMUser_UserPermissions__awscli-example.json",
            "securityhub-custom-action__custodian-event-securityhub-cloudtrail-finding-action.json",
            "securityhub-custom-action__custodian-event-securityhub-iamkey-finding-action.json",
            "securityhub-custom-action__custodian-event-securityhub-lambda-cross.json",
        ];
        assert_eq!(
            result.is_ok(),
            expected_ok.contains(&name.as_str()),
            "{name}: {result:?}"
        );
    }
    assert_eq!(seen, 13, "sample count changed: review this test");
}

#[test]
fn sample_canary_ec2() {
    let f = sample(
        "guardduty-detail__Canary_EC2_Stateless.IntegTest__aws-samples-automated-response.json",
    )
    .unwrap()
    .findings
    .remove(0);
    assert_eq!(f.finding_type.name, "Canary:EC2/Stateless.IntegTest");
    assert_eq!(f.account_id.as_str(), "123456789012");
    assert_eq!(f.severity.band, SeverityBand::Medium);
    assert!(!f.sample);
    let i = f.targets.instance.unwrap();
    assert_eq!(i.instance_id.as_str(), "i-05746eb48123455e0");
    let eni = &i.network_interfaces[0];
    assert_eq!(
        eni.network_interface_id, None,
        "the sample's interface has no id"
    );
    assert_eq!(eni.subnet_id.as_ref().unwrap().as_str(), "subnet-d58b7123");
    assert_eq!(eni.security_groups[0].as_str(), "sg-9918a123");
    assert_eq!(eni.public_ip, Some(ip("11.111.111.1")));
    // 0.0.0.0 is a valid address; the policy refuses to block it, the parser does not.
    assert_eq!(f.targets.remote_ips[0].ip, ip("0.0.0.0"));
}

#[test]
fn sample_findings_keep_placeholders_out_of_the_targets() {
    let f = sample("guardduty-detail__Recon_IAMUser_MaliciousIPCaller.Custom__aws-samples-automated-response.json")
        .unwrap()
        .findings
        .remove(0);
    assert!(f.sample && f.archived);
    let k = f.targets.access_key.unwrap();
    // IAM's own constraint (16 to 128 word characters) admits the placeholder; a sample is
    // never acted on whatever it names.
    assert_eq!(
        k.access_key_id.map(|k| k.to_string()).as_deref(),
        Some("GeneratedFindingAccessKeyId")
    );
    assert_eq!(k.user_name.unwrap().as_str(), "GeneratedFindingUserName");
    assert_eq!(k.user_type, Some(UserType::IamUser));
    assert!(
        f.targets.instance.is_none(),
        "placeholder instance i-99999999 of an AccessKey finding"
    );
    assert!(
        f.ignored_fields.iter().all(|i| !i.needed),
        "a sample's dropped values leave no gap: {:?}",
        f.ignored_fields
    );

    let f = sample("guardduty-detail__PenTest_S3_ParrotLinux__aws-samples-automated-response.json")
        .unwrap()
        .findings
        .remove(0);
    assert!(f.sample);
    assert_eq!(f.resource_type.as_deref(), Some("S3Bucket"));
    assert!(
        f.targets.s3_buckets.is_empty(),
        "\"bucketName\" is not a bucket name"
    );
    let paths: Vec<&str> = f.ignored_fields.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, vec!["$.resource.s3BucketDetails[0].name"]);
    assert_eq!(f.targets.remote_ips[0].ip, ip("198.51.100.0"));
}

#[test]
fn sample_security_hub_custom_actions() {
    let input =
        sample("securityhub-custom-action__custodian-event-securityhub-iamkey-finding-action.json")
            .unwrap();
    assert_eq!(input.kind, InputKind::SecurityHubCustomActionEvent);
    assert_eq!(
        input.custom_action_arn.unwrap().as_str(),
        "arn:aws:securityhub:us-east-1:644160558196:action/custom/aws"
    );
    let f = &input.findings[0];
    assert_eq!(f.product, Product::GuardDuty);
    // The older, unprefixed ProductFields keys.
    assert_eq!(
        f.finding_type.name,
        "UnauthorizedAccess:IAMUser/ConsoleLogin"
    );
    assert_eq!(f.severity.band, SeverityBand::Medium);
    assert_eq!(f.targets.remote_ips[0].ip, ip("208.115.85.104"));
    assert_eq!(
        f.targets.remote_ips[0].sources,
        vec![IpSource::AwsApiCallAction]
    );
    let k = f.targets.access_key.as_ref().unwrap();
    assert_eq!(k.user_name.as_ref().unwrap().as_str(), "kapil");
    assert_eq!(
        k.access_key_id, None,
        "AWS::IAM::AccessKey:null names no key"
    );

    let input = sample(
        "securityhub-custom-action__custodian-event-securityhub-cloudtrail-finding-action.json",
    )
    .unwrap();
    let f = &input.findings[0];
    assert_eq!(f.product, Product::Other);
    assert!(f.finding_type.parsed.is_none());
    assert_eq!(f.severity.band, SeverityBand::Informational);
    assert_eq!(f.targets, Targets::default());

    let input =
        sample("securityhub-custom-action__custodian-event-securityhub-lambda-cross.json").unwrap();
    let f = &input.findings[0];
    assert_eq!(
        f.security_hub.id.as_str(),
        "us-east-1/644160558196/356580e4704cf1222cbee13685416652/84a7b9799285262dbf00c7b214463dde"
    );
    assert_eq!(f.account_id.as_str(), "644160558196");
    assert_eq!(f.severity.score, 0.6);
}

#[test]
fn samples_that_are_refused_say_why() {
    let reason = |name: &str| sample(name).unwrap_err().to_string();
    assert!(
        reason("securityhub-custom-action__custodian-event-securityhub-insight-2.json").contains(
            "\"Security Hub Insight Results\" from \"aws.securityhub\" carries no finding"
        )
    );

    assert!(reason(
        "guardduty-event-partial__UnauthorizedAccess_EC2_SSHBruteForce__aws-samples-waf-acl.json"
    )
    .contains("needs `source` and `detail-type`"));
    let e = sample(
        "asff-finding__guardduty_UnauthorizedAccess_EC2_SSHBruteForce__awsdocs-guardduty-ug.json",
    )
    .unwrap_err();
    assert_eq!(
        e.path(),
        Some("$.ProductArn"),
        "the user guide's example prints arn:aws:: with an extra colon"
    );
    for name in [
        "iam-policy__AWSRevokeOlderSessions-equivalent__awsdocs-example.json",
        "securityhub-BatchUpdateFindings-request__awscli-example1.json",
        "securityhub-BatchUpdateFindings-response__awscli-example1.json",
    ] {
        assert!(
            matches!(sample(name), Err(InputError::NotAFinding { .. })),
            "{name}"
        );
    }
}

// ---- malformed inputs -------------------------------------------------------------------

fn base() -> Value {
    fixture_json("ec2-network-backdoor.json")
}

fn with(pointer: &str, value: Value) -> Value {
    let mut v = base();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    v
}

fn without(pointer: &str) -> Value {
    let mut v = base();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    v
}

#[test]
fn malformed_inputs_are_refused_naming_the_field() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "injection-like instance id",
            with(
                "/detail/resource/instanceDetails/instanceId",
                json!("i-123;rm"),
            ),
            "$.detail.resource.instanceDetails.instanceId",
            "invalid instance id \"i-123;rm\"",
        ),
        (
            "CIDR as a remote IP",
            with(
                "/detail/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4",
                json!("0.0.0.0/0"),
            ),
            "$.detail.service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
            "not a CIDR block",
        ),
        (
            "huge instance id",
            with(
                "/detail/resource/instanceDetails/instanceId",
                json!("i-".to_owned() + &"a".repeat(100_000)),
            ),
            "$.detail.resource.instanceDetails.instanceId",
            "(100002 characters)",
        ),
        (
            "severity as a string",
            with("/detail/severity", json!("8")),
            "$.detail.severity",
            "expected a number, found a string",
        ),
        (
            "severity out of range",
            with("/detail/severity", json!(42)),
            "$.detail.severity",
            "outside GuardDuty's 0 to 10 scale",
        ),
        (
            "missing type",
            without("/detail/type"),
            "$.detail.type",
            "required field is missing",
        ),
        (
            "short account id",
            with("/detail/accountId", json!("12345")),
            "$.detail.accountId",
            "expected 12 digits",
        ),
        (
            "detail is an array",
            with("/detail", json!([1, 2])),
            "$.detail",
            "expected an object, found an array",
        ),
        (
            "region with a shell command",
            with("/detail/region", json!("us-east-1; rm -rf /")),
            "$.detail.region",
            "invalid region",
        ),
        (
            "ARN with a space",
            with(
                "/detail/arn",
                json!("arn:aws:guardduty:us-east-1:111122223333:detector/x/finding/y DROP"),
            ),
            "$.detail.arn",
            "whitespace",
        ),
        (
            "ARN of another service",
            with(
                "/detail/arn",
                json!("arn:aws:ec2:us-east-1:111122223333:instance/i-12345678"),
            ),
            "$.detail.arn",
            "expected a GuardDuty finding ARN",
        ),
        (
            "subnet id of the wrong shape",
            with(
                "/detail/resource/instanceDetails/networkInterfaces/0/subnetId",
                json!("subnet-xyz"),
            ),
            "$.detail.resource.instanceDetails.networkInterfaces[0].subnetId",
            "invalid subnet id",
        ),
        (
            "security group id with a quote",
            with(
                "/detail/resource/instanceDetails/networkInterfaces/1/securityGroups/0/groupId",
                json!("sg-1234'--"),
            ),
            "$.detail.resource.instanceDetails.networkInterfaces[1].securityGroups[0].groupId",
            "invalid security group id",
        ),
        (
            "IPv4 field holding IPv6",
            with(
                "/detail/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4",
                json!("2001:db8::1"),
            ),
            "$.detail.service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
            "is not an IPv4 address",
        ),
        (
            "remote IP that is not one",
            with(
                "/detail/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4",
                json!("256.1.1.1"),
            ),
            "$.detail.service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
            "invalid IP address",
        ),
        (
            "interfaces as an object",
            with(
                "/detail/resource/instanceDetails/networkInterfaces",
                json!({"a": 1}),
            ),
            "$.detail.resource.instanceDetails.networkInterfaces",
            "expected an array",
        ),
        (
            "timestamp that is not one",
            with("/detail/service/eventFirstSeen", json!("yesterday")),
            "$.detail.service.eventFirstSeen",
            "invalid timestamp",
        ),
        (
            "negative count",
            with("/detail/service/count", json!(-3)),
            "$.detail.service.count",
            "whole number",
        ),
        (
            "unknown user type",
            {
                let mut v = fixture_json("iam-user-malicious-caller.json");
                v["detail"]["resource"]["accessKeyDetails"]["userType"] = json!("Admin");
                v
            },
            "$.detail.resource.accessKeyDetails.userType",
            "unknown user type",
        ),
        (
            "access key id with lowercase",
            {
                let mut v = fixture_json("iam-user-malicious-caller.json");
                v["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] =
                    json!("AKIA-IOSFODNN7EXAMPLE");
                v
            },
            "$.detail.resource.accessKeyDetails.accessKeyId",
            "invalid access key id",
        ),
        (
            "custom action with no findings",
            {
                let mut v = fixture_json("securityhub-custom-action-two-findings.json");
                v["detail"]["findings"] = json!([]);
                v
            },
            "$.detail.findings[0]",
            "required field is missing",
        ),
        (
            "custom action with a bad action ARN",
            {
                let mut v = fixture_json("securityhub-custom-action-two-findings.json");
                v["resources"] = json!(["not-an-arn"]);
                v
            },
            "$.resources[0]",
            "invalid ARN",
        ),
        (
            "ASFF finding with a bad severity label",
            {
                let mut v = fixture_json("securityhub-imported-guardduty-ssh.json");
                v["detail"]["findings"][0]["Severity"]["Label"] = json!("SEVERE");
                v
            },
            "$.detail.findings[0].Severity.Label",
            "unknown severity label",
        ),
        (
            "ASFF product field that is not a string",
            {
                let mut v = fixture_json("securityhub-imported-guardduty-ssh.json");
                v["detail"]["findings"][0]["ProductFields"]["aws/guardduty/service/count"] =
                    json!(74);
                v
            },
            "$.detail.findings[0].ProductFields[\"aws/guardduty/service/count\"]",
            "expected a string",
        ),
        (
            "ASFF instance ARN with an injected id",
            {
                let mut v = fixture_json("securityhub-imported-guardduty-ssh.json");
                v["detail"]["findings"][0]["Resources"][0]["Id"] =
                    json!("arn:aws:ec2:us-east-1:193043430472:instance/i-1;reboot");
                v
            },
            "$.detail.findings[0].Resources[0].Id",
            "invalid instance id",
        ),
        (
            "drill with a misspelt dryRun",
            json!({"dryrun": true, "event": base()}),
            "$.dryrun",
            "unknown drill input field",
        ),
        (
            "drill with dryRun as a string",
            json!({"dryRun": "yes", "event": base()}),
            "$.dryRun",
            "expected a boolean",
        ),
        (
            "drill inside a drill",
            json!({"dryRun": true, "event": {"dryRun": true, "event": base()}}),
            "$.event",
            "cannot wrap another drill",
        ),
    ];
    // A target or informational value that fails validation refuses nothing more than
    // itself: it is dropped, recorded with its path and reason, and never acted on.
    const DROPPED: [&str; 11] = [
        "injection-like instance id",
        "CIDR as a remote IP",
        "huge instance id",
        "subnet id of the wrong shape",
        "security group id with a quote",
        "IPv4 field holding IPv6",
        "remote IP that is not one",
        "timestamp that is not one",
        "unknown user type",
        "access key id with lowercase",
        "ASFF instance ARN with an injected id",
    ];
    assert!(cases.len() >= 10);
    let mut dropped = 0;
    for (name, input, path, message) in cases {
        match parse_input(&input) {
            Err(err) => {
                assert!(!DROPPED.contains(&name), "{name}: refused: {err}");
                assert_eq!(err.path(), Some(path), "{name}: {err}");
                assert!(err.to_string().contains(message), "{name}: {err}");
                assert!(
                    err.to_string().len() < 400,
                    "{name}: the error echoes too much input"
                );
                assert_eq!(err.error_type(), "InvalidInput", "{name}");
            }
            Ok(parsed) => {
                assert!(DROPPED.contains(&name), "{name}: accepted");
                let f = &parsed.findings[0];
                let ignored = f
                    .ignored_fields
                    .iter()
                    .find(|i| i.path == path)
                    .unwrap_or_else(|| panic!("{name}: {:?}", f.ignored_fields));
                assert!(ignored.reason.contains(message), "{name}: {ignored:?}");
                assert!(ignored.reason.len() < 400, "{name}: echoes too much");
                dropped += 1;
            }
        }
    }
    assert_eq!(dropped, DROPPED.len());
}

#[test]
fn refusals_that_are_not_about_one_field() {
    let e = parse_input_bytes(b"{\"detail-type\": ").unwrap_err();
    assert!(matches!(e, InputError::NotJson { .. }), "{e}");
    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    assert_eq!(
        parse_input_bytes(&big).unwrap_err(),
        InputError::TooLarge {
            size: MAX_INPUT_BYTES + 1,
            limit: MAX_INPUT_BYTES
        }
    );
    // Within the byte limit but a huge title: cut, not refused (it is only shown).
    let v = with("/detail/title", json!("x".repeat(100_000)));
    let f = parse_input(&v).unwrap().findings.remove(0);
    assert_eq!(f.title.unwrap().len(), 2048);
    // An array of findings whose items are not findings: refused with the first item's error.
    let e = parse_input(&json!([1, 2, 3])).unwrap_err();
    assert_eq!(e.path(), Some("$[0]"));
    let e = parse_input(&json!([])).unwrap_err();
    assert_eq!(e.path(), Some("$[0]"));
    let e = parse_input(&json!({"hello": "world"})).unwrap_err();
    assert_eq!(e.error_type(), "NotAFinding");
    let e = parse_input(&json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}})).unwrap_err();
    assert!(e.to_string().contains("carries no finding"), "{e}");
    let mut many = fixture_json("securityhub-custom-action-two-findings.json");
    let one = many["detail"]["findings"][0].clone();
    many["detail"]["findings"] = Value::Array(vec![one; 101]);
    // 101 findings of ~5 kB are over the byte limit already; either refusal is right.
    assert!(parse_input(&many).is_err());
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    let deep = "[".repeat(150_000) + &"]".repeat(150_000);
    assert!(matches!(
        parse_input_bytes(deep.as_bytes()),
        Err(InputError::TooLarge { .. })
    ));
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(matches!(
        parse_input_bytes(deep.as_bytes()),
        Err(InputError::NotJson { .. })
    ));
}

// ---- what one bad field may refuse, and dryRun ----------------------------------------

#[test]
fn an_access_key_id_of_17_characters_is_what_iam_allows() {
    let mut v = fixture_json("iam-user-malicious-caller.json");
    v["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("AKIAIOSFODNN7EXAMP");
    assert_eq!(
        v["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
            .as_str()
            .unwrap()
            .len(),
        18
    );
    v["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("AKIAIOSFODNN7EXAM");
    let f = parse_input(&v).unwrap().findings.remove(0);
    assert_eq!(
        f.targets
            .access_key
            .unwrap()
            .access_key_id
            .unwrap()
            .as_str(),
        "AKIAIOSFODNN7EXAM"
    );
    assert!(f.ignored_fields.is_empty());
}

#[test]
fn an_early_format_timestamp_is_ignored_with_the_reason_and_the_finding_is_planned() {
    let mut v = base();
    v["detail"]["service"]["eventFirstSeen"] = json!("2017-12-05T19:30:23.000+0000");
    let f = parse_input(&v).unwrap().findings.remove(0);
    assert_eq!(f.first_seen, None);
    assert_eq!(
        f.ignored_fields,
        vec![IgnoredField {
            path: "$.detail.service.eventFirstSeen".into(),
            reason: "invalid timestamp \"2017-12-05T19:30:23.000+0000\": expected RFC 3339 such as 2020-08-22T09:15:57Z".into(),
            needed: false,
        }]
    );
    assert!(
        f.targets.instance.is_some(),
        "nothing an action needs was lost"
    );
}

#[test]
fn one_unreadable_finding_of_a_batch_refuses_only_itself() {
    let mut v = fixture_json("securityhub-custom-action-two-findings.json");
    let findings = v["detail"]["findings"].as_array().unwrap().clone();
    let mut broken = findings[0].clone();
    broken.as_object_mut().unwrap().remove("Id");
    v["detail"]["findings"] = json!([findings[0], broken, findings[1]]);
    let parsed = parse_input(&v).unwrap();
    assert_eq!(parsed.findings.len(), 2);
    assert_eq!(parsed.refused.len(), 1);
    assert_eq!(parsed.refused[0].path, "$.detail.findings[1]");
    assert!(
        parsed.refused[0].error.contains("$.detail.findings[1].Id"),
        "{:?}",
        parsed.refused[0]
    );
    // When none can be read, the whole input is refused with the first one's reason.
    v["detail"]["findings"] = json!([broken]);
    let err = parse_input(&v).unwrap_err();
    assert_eq!(err.path(), Some("$.detail.findings[0].Id"));
}

#[test]
fn dry_run_cannot_be_lost() {
    // null or a non-boolean is refused with the field named.
    for bad in [json!(null), json!("true"), json!(1)] {
        let err = parse_input(&json!({"event": base(), "dryRun": bad})).unwrap_err();
        assert_eq!(err.path(), Some("$.dryRun"), "{bad}: {err}");
        assert!(err.to_string().contains("expected a boolean"), "{err}");
    }
    // Beside an event envelope it is honoured, or refused when it is not a boolean.
    let mut event = base();
    event["dryRun"] = json!(true);
    assert!(parse_input(&event).unwrap().dry_run);
    event["dryRun"] = json!(null);
    assert_eq!(parse_input(&event).unwrap_err().path(), Some("$.dryRun"));
    // Through EventBridge, the drill event's detail is the drill input, dryRun included.
    let drill_event = json!({"source": DRILL_SOURCE, "detail-type": DRILL_DETAIL_TYPE, "id": "e-1",
                             "detail": {"event": base(), "dryRun": true, "playbooks": ["ec2-compromise"]}});
    let parsed = parse_input(&drill_event).unwrap();
    assert!(parsed.dry_run && parsed.drill);
    assert_eq!(parsed.event_id.as_deref(), Some("e-1"));
    assert_eq!(parsed.kind, InputKind::GuardDutyEvent);
    let mut beside = drill_event.clone();
    beside["dryRun"] = json!(false);
    assert_eq!(
        parse_input(&beside).unwrap_err().path(),
        Some("$.dryRun"),
        "one place for dryRun"
    );
    let wrapped = json!({"event": drill_event, "dryRun": false});
    assert!(parse_input(&wrapped)
        .unwrap_err()
        .to_string()
        .contains("cannot wrap another drill"));
}

#[test]
fn a_drill_playbooks_filter_names_known_playbooks() {
    let ok = parse_input(
        &json!({"event": base(), "playbooks": ["credential-compromise", "credential-compromise"]}),
    )
    .unwrap();
    assert_eq!(
        ok.playbooks,
        Some(vec![firebreak::plan::Playbook::CredentialCompromise])
    );
    for (bad, path, message) in [
        (json!([]), "$.playbooks", "empty filter"),
        (json!(["isolate"]), "$.playbooks[0]", "unknown playbook"),
        (json!([1]), "$.playbooks[0]", "expected a string"),
        (json!("ec2-compromise"), "$.playbooks", "expected an array"),
    ] {
        let err = parse_input(&json!({"event": base(), "playbooks": bad})).unwrap_err();
        assert_eq!(err.path(), Some(path), "{err}");
        assert!(err.to_string().contains(message), "{err}");
    }
}

/// `aws guardduty get-findings` output (the SDK's PascalCase shape) is read as the
/// EventBridge detail would be, and errors name the field as the user's file spells it.
#[test]
fn guardduty_get_findings_output_is_a_batch_of_findings() {
    let input = sample(
        "guardduty-GetFindings-cli-output__Recon_IAMUser_UserPermissions__awscli-example.json",
    )
    .unwrap();
    assert_eq!(input.kind, InputKind::GuardDutyGetFindings);
    let f = &input.findings[0];
    assert_eq!(f.finding_type.name, "Recon:IAMUser/UserPermissions");
    assert_eq!(f.account_id.as_str(), "111122223333");
    assert_eq!(f.severity.score, 5.0);
    assert_eq!(f.count, 5);
    let key = f.targets.access_key.as_ref().unwrap();
    assert_eq!(key.user_name.as_ref().unwrap().as_str(), "testuser");
    assert_eq!(
        key.access_key_id.as_ref().unwrap().as_str(),
        "ASIASZ4SI7REEEXAMPLE"
    );
    assert_eq!(
        f.targets.remote_ips[0].ip.to_string(),
        "52.94.36.7",
        "{:?}",
        f.targets.remote_ips
    );

    let mut raw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(samples_dir().join(
            "guardduty-GetFindings-cli-output__Recon_IAMUser_UserPermissions__awscli-example.json",
        ))
        .unwrap(),
    )
    .unwrap();
    raw["Findings"][0]["AccountId"] = json!("12345");
    let e = parse_input(&raw).unwrap_err();
    assert_eq!(e.path(), Some("$.Findings[0].AccountId"), "{e}");

    // The API carries `sample` inside AdditionalInfo.Value (JSON text): still a sample.
    raw["Findings"][0]["AccountId"] = json!("111122223333");
    raw["Findings"][0]["Service"]["AdditionalInfo"] =
        json!({"Value": "{\"sample\":true}", "Type": "default"});
    let f = parse_input(&raw).unwrap().findings.remove(0);
    assert!(f.sample);
}

/// Security Hub's GetFindings output and a bare array of findings: each finding is read,
/// one that cannot be refuses only itself.
#[test]
fn hub_get_findings_output_and_arrays() {
    // The user guide's example prints `arn:aws::securityhub` with an extra colon: mended.
    let text = std::fs::read_to_string(samples_dir().join(
        "asff-finding__guardduty_UnauthorizedAccess_EC2_SSHBruteForce__awsdocs-guardduty-ug.json",
    ))
    .unwrap()
    .replace("arn:aws::", "arn:aws:");
    let asff: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out = parse_input(&json!({"Findings": [asff.clone(), asff.clone()]})).unwrap();
    assert_eq!(out.kind, InputKind::SecurityHubGetFindings);
    assert_eq!(out.findings.len(), 2);
    assert_eq!(
        out.findings[0].finding_type.name,
        "UnauthorizedAccess:EC2/SSHBruteForce"
    );
    let mut broken = asff.clone();
    broken.as_object_mut().unwrap().remove("Id");
    let out = parse_input(&json!([asff, broken])).unwrap();
    assert_eq!(out.kind, InputKind::FindingArray);
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.refused[0].path, "$[1]");
    assert!(
        out.refused[0].error.contains("$[1].Id"),
        "{:?}",
        out.refused
    );
    let e = parse_input(&json!({"Findings": []})).unwrap_err();
    assert_eq!(e.path(), Some("$.Findings[0]"));
}

/// The new Security Hub's `Findings Imported V2` event: OCSF, addressed by metadata.uid.
#[test]
fn ocsf_findings_from_the_new_security_hub() {
    let input = fixture("securityhub-v2-ocsf-ssh-brute-force.json");
    assert_eq!(input.kind, InputKind::SecurityHubV2ImportedEvent);
    assert!(input.kind.is_event());
    let f = &input.findings[0];
    assert_eq!(f.security_hub.format, HubFormat::Ocsf);
    assert_eq!(
        f.security_hub.id.as_str(),
        "b8f3c2a1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f"
    );
    assert_eq!(f.product, Product::GuardDuty);
    assert_eq!(f.finding_type.name, "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(f.severity.band, SeverityBand::High);
    assert_eq!(f.account_id.as_str(), "111122223333");
    assert_eq!(f.region.as_str(), "us-east-1");
    let i = f.targets.instance.as_ref().unwrap();
    assert_eq!(i.instance_id.as_str(), "i-0a1b2c3d4e5f60718");
    assert_eq!(i.tags.get("Name").map(String::as_str), Some("web-1"));
    let ips: Vec<String> = f
        .targets
        .remote_ips
        .iter()
        .map(|r| r.ip.to_string())
        .collect();
    assert_eq!(ips, vec!["203.0.113.45", "10.20.1.15"]);

    // Bare, in an array and as GetFindingsV2 output.
    let doc = fixture_json("securityhub-v2-ocsf-ssh-brute-force.json");
    let bare = doc["detail"]["findings"][0].clone();
    assert_eq!(parse_input(&bare).unwrap().kind, InputKind::OcsfFinding);
    let out = parse_input(&json!({"Findings": [bare.clone()]})).unwrap();
    assert_eq!(out.kind, InputKind::SecurityHubGetFindingsV2);
    assert_eq!(out.findings[0], *f);
    assert_eq!(
        parse_input(&json!([bare.clone()])).unwrap().kind,
        InputKind::FindingArray
    );

    // Errors name the OCSF field.
    let mut broken = bare.clone();
    broken["cloud"]["account"]["uid"] = json!("1234");
    assert_eq!(
        parse_input(&broken).unwrap_err().path(),
        Some("$.cloud.account.uid")
    );
    let mut broken = bare.clone();
    broken["severity_id"] = json!(42);
    assert_eq!(
        parse_input(&broken).unwrap_err().path(),
        Some("$.severity_id")
    );
    // A resource of another account is never acted on.
    let mut foreign = bare;
    foreign["resources"][0]["owner"]["account"]["uid"] = json!("999988887777");
    let f = parse_input(&foreign).unwrap().findings.remove(0);
    assert!(f.targets.instance.is_none());
    assert!(f.ignored_fields.iter().any(|i| i.needed));
}

/// GuardDuty Extended Threat Detection: every resource, actor and endpoint the sequence
/// names, once each; a resource of another account is dropped as an invalid target.
#[test]
fn attack_sequences_name_every_target() {
    let f = fixture("attack-sequence-ec2-instance-group.json")
        .findings
        .remove(0);
    assert_eq!(f.severity.band, SeverityBand::Critical);
    let seq = f.targets.sequence.as_ref().unwrap();
    let ids: Vec<&str> = seq
        .instances
        .iter()
        .map(|i| i.instance_id.as_str())
        .collect();
    assert_eq!(ids, vec!["i-0a1b2c3d4e5f60718", "i-0b2c3d4e5f6071829"]);
    assert_eq!(seq.roles[0].role_name.as_str(), "web-instance-role");
    assert!(seq.access_keys.is_empty());
    assert_eq!(f.targets.remote_ips[0].ip.to_string(), "198.51.100.77");
    assert_eq!(
        f.targets.remote_ips[0].sources,
        vec![IpSource::AttackSequence]
    );
    // The instance profile is context (its role is revoked through the instances).
    assert!(seq.other_resources.is_empty(), "{:?}", seq.other_resources);
    assert_eq!(seq.count(f.targets.remote_ips.len()), 4);

    let mut doc = fixture_json("attack-sequence-ec2-instance-group.json");
    doc["detail"]["service"]["detection"]["sequence"]["resources"][1]["accountId"] =
        json!("999988887777");
    doc["detail"]["service"]["detection"]["sequence"]["resources"][2] = json!({
        "uid": "arn:aws:eks:us-east-1:111122223333:cluster/prod", "name": "prod",
        "resourceType": "EKS_CLUSTER", "accountId": "111122223333", "region": "us-east-1"
    });
    let f = parse_input(&doc).unwrap().findings.remove(0);
    let seq = f.targets.sequence.as_ref().unwrap();
    assert_eq!(seq.instances.len(), 1);
    assert_eq!(seq.other_resources, vec!["EKS_CLUSTER prod"]);
    assert!(f
        .ignored_fields
        .iter()
        .any(|i| i.needed && i.path.ends_with("resources[1].accountId")));
}
