//! The plan for each fixture under the built-in policy and under edited policies: what
//! runs, on which exact targets, and every skip with its reason.

mod common;

use common::*;
use firebreak::finding::Finding;
use firebreak::finding::RoleTarget;
use firebreak::ids::*;
use firebreak::plan::*;
use firebreak::policy::{ActionKind, Policy, DEFAULT_POLICY_JSON};
use serde_json::json;

fn finding(name: &str) -> Finding {
    fixture(name).findings.remove(0)
}

fn offline(name: &str) -> Plan {
    plan(
        &finding(name),
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    )
}

fn kinds(p: &Plan) -> Vec<ActionKind> {
    p.actions.iter().map(|a| a.kind()).collect()
}

fn skips(p: &Plan) -> Vec<(Option<ActionKind>, SkipReason)> {
    p.skipped.iter().map(|s| (s.action, s.reason)).collect()
}

fn policy_with(edit: impl FnOnce(&mut serde_json::Value)) -> Policy {
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
    edit(&mut v);
    Policy::from_json(&v.to_string(), "test").unwrap()
}

#[test]
fn ec2_compromise_isolates_blocks_and_resolves() {
    let p = offline("ec2-network-backdoor.json");
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::IsolateInstance,
            ActionKind::BlockRemoteIps,
            ActionKind::MarkResolved
        ]
    );
    assert_eq!(p.matched_rules, vec!["ec2-compromise"]);
    assert_eq!(
        p.playbooks,
        vec![Playbook::Ec2Compromise, Playbook::MaliciousRemoteIp]
    );
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(
        p.actions[0],
        PlannedAction::IsolateInstance {
            instance_id: InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap(),
            network_interfaces: vec![
                NetworkInterfaceId::parse("eni-0a1b2c3d4e5f60711").unwrap(),
                NetworkInterfaceId::parse("eni-0a1b2c3d4e5f60712").unwrap()
            ],
            vpc_ids: vec![VpcId::parse("vpc-0a1b2c3d4e5f60731").unwrap()],
        }
    );
    assert_eq!(
        p.actions[1],
        PlannedAction::BlockRemoteIps {
            ips: vec!["203.0.113.50".parse().unwrap()],
            subnet_ids: vec![
                SubnetId::parse("subnet-0a1b2c3d4e5f60721").unwrap(),
                SubnetId::parse("subnet-0a1b2c3d4e5f60722").unwrap()
            ],
            settings: firebreak::policy::IpBlocking::default(),
        }
    );
    match &p.actions[2] {
        PlannedAction::MarkResolved {
            finding_id,
            product_arn,
        } => {
            assert_eq!(finding_id, &p.finding.security_hub.id);
            assert_eq!(
                product_arn.as_str(),
                "arn:aws:securityhub:us-east-1::product/aws/guardduty"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.context.owner.as_deref(), Some("alice@example.com"));
    assert_eq!(p.context.team.as_deref(), Some("payments"));
    assert_eq!(p.context.environment.as_deref(), Some("production"));
    assert_eq!(p.policy.version, "2026-12-02.2");
}

#[test]
fn dns_finding_isolates_but_has_nothing_to_block() {
    let p = offline("ec2-dns-backdoor.json");
    assert_eq!(
        kinds(&p),
        vec![ActionKind::IsolateInstance, ActionKind::MarkResolved]
    );
    assert_eq!(
        skips(&p),
        vec![(Some(ActionKind::BlockRemoteIps), SkipReason::NoTarget)]
    );
}

#[test]
fn port_probe_blocks_public_addresses_and_skips_private_ones() {
    let p = offline("ec2-port-probe.json");
    assert_eq!(
        kinds(&p),
        vec![ActionKind::BlockRemoteIps, ActionKind::MarkResolved]
    );
    match &p.actions[0] {
        PlannedAction::BlockRemoteIps { ips, .. } => {
            assert_eq!(
                ips,
                &vec![
                    "198.51.100.23".parse::<std::net::IpAddr>().unwrap(),
                    "203.0.113.77".parse().unwrap()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].reason, SkipReason::AllowListedIp);
    assert_eq!(p.skipped[0].target.as_deref(), Some("10.9.8.7"));
    assert!(
        p.skipped[0].detail.contains("10.0.0.0/8"),
        "{}",
        p.skipped[0].detail
    );
}

#[test]
fn severity_decides_between_block_and_isolate() {
    // HIGH brute force: both rules match, isolation too.
    let p = offline("ec2-ssh-brute-force-ipv6.json");
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::IsolateInstance,
            ActionKind::BlockRemoteIps,
            ActionKind::MarkResolved
        ]
    );
    assert_eq!(
        p.matched_rules,
        vec!["brute-force-block", "brute-force-isolate"]
    );
    // MEDIUM brute force: isolation is skipped for severity, blocking still runs.
    let p = plan(
        &fixture("securityhub-imported-guardduty-ssh.json").findings[0],
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert_eq!(
        kinds(&p),
        vec![ActionKind::BlockRemoteIps, ActionKind::MarkResolved]
    );
    assert_eq!(
        skips(&p),
        vec![(
            Some(ActionKind::IsolateInstance),
            SkipReason::SeverityBelowThreshold
        )]
    );
    assert!(
        p.skipped[0].detail.contains("below HIGH"),
        "{}",
        p.skipped[0].detail
    );
}

#[test]
fn iam_user_key_is_deactivated_and_no_role_is_invented() {
    let p = offline("iam-user-malicious-caller.json");
    assert_eq!(
        kinds(&p),
        vec![ActionKind::DisableAccessKey, ActionKind::MarkResolved]
    );
    assert_eq!(
        p.actions[0],
        PlannedAction::DisableAccessKey {
            user_name: IamName::parse("ci-deployer").unwrap(),
            access_key_id: AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap(),
        }
    );
    assert_eq!(
        skips(&p),
        vec![(Some(ActionKind::RevokeRoleSessions), SkipReason::NoTarget)]
    );
    assert_eq!(p.playbooks, vec![Playbook::CredentialCompromise]);
}

#[test]
fn exfiltrated_instance_credentials_revoke_the_role_only() {
    let p = offline("assumed-role-credential-exfiltration.json");
    assert_eq!(
        kinds(&p),
        vec![ActionKind::RevokeRoleSessions, ActionKind::MarkResolved]
    );
    match &p.actions[0] {
        PlannedAction::RevokeRoleSessions { role_name, .. } => {
            assert_eq!(role_name.as_str(), "web-instance-role")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn root_is_never_touched() {
    let p = offline("root-credential-usage.json");
    assert!(p.actions.is_empty());
    assert_eq!(
        skips(&p),
        vec![
            (
                Some(ActionKind::RevokeRoleSessions),
                SkipReason::ProtectedPrincipal
            ),
            (
                Some(ActionKind::DisableAccessKey),
                SkipReason::ProtectedPrincipal
            ),
            (Some(ActionKind::MarkResolved), SkipReason::NothingContained),
        ]
    );
}

#[test]
fn types_left_to_a_person_plan_nothing_and_say_why() {
    let mut discovery = fixture_json("s3-malicious-ip-caller.json");
    discovery["detail"]["type"] = json!("Discovery:S3/MaliciousIPCaller");
    for (name, input, why) in [
        (
            "Discovery:S3",
            discovery,
            "no containment for this S3 finding",
        ),
        (
            "eks-kubernetes-malicious-caller.json",
            fixture_json("eks-kubernetes-malicious-caller.json"),
            "no EKS or ECS containment runbook",
        ),
    ] {
        let f = firebreak::finding::parse_input(&input)
            .unwrap()
            .findings
            .remove(0);
        let p = plan(
            &f,
            &Policy::built_in().unwrap(),
            "built-in",
            Enrichment::Offline,
            false,
        );
        assert!(p.actions.is_empty(), "{name}");
        assert_eq!(skips(&p), vec![(None, SkipReason::NotifyOnly)], "{name}");
        assert!(p.skipped[0].detail.contains(why), "{:?}", p.skipped);
        // Left to a person means NOTIFIED, never silently kept.
        assert!(SkipReason::NotifyOnly.leaves_gap());
    }
}

/// Every GuardDuty type in AWS's published list (tests/fixtures/guardduty-finding-types.json,
/// its source inside) is known to the built-in policy: a rule plans for it, or the policy
/// leaves it to a person with a reason. None falls through as "no policy rule".
#[test]
fn every_published_guardduty_type_is_planned_or_left_to_a_person() {
    let list: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("tests/fixtures/guardduty-finding-types.json")).unwrap(),
    )
    .unwrap();
    let policy = Policy::built_in().unwrap();
    let template = fixture_json("ec2-network-backdoor.json");
    let mut planned = 0;
    let mut left = 0;
    for t in list["types"].as_array().unwrap() {
        let name = t["type"].as_str().unwrap();
        let mut doc = template.clone();
        doc["detail"]["type"] = json!(name);
        doc["detail"]["severity"] = json!(8.0);
        let f = firebreak::finding::parse_input(&doc)
            .unwrap()
            .findings
            .remove(0);
        let p = plan(&f, &policy, "built-in", Enrichment::Offline, false);
        let unknown = p.skipped.iter().find(|s| {
            matches!(
                s.reason,
                SkipReason::NoPolicyRule | SkipReason::UnknownFindingType
            )
        });
        assert!(unknown.is_none(), "{name}: {unknown:?}");
        if p.matched_rules.is_empty() {
            let why = p
                .skipped
                .iter()
                .find(|s| s.reason == SkipReason::NotifyOnly)
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: neither planned nor left to a person: {:?}",
                        p.skipped
                    )
                });
            assert!(why.detail.len() > 40, "{name}: {}", why.detail);
            left += 1;
        } else {
            planned += 1;
        }
    }
    assert!(
        planned >= 100 && left >= 60,
        "planned {planned}, left {left}"
    );
}

fn sequence_facts(id: &str, subnet: &str, tags: &[(&str, &str)]) -> InstanceFacts {
    InstanceFacts {
        instance_id: InstanceId::parse(id).unwrap(),
        state: Some("running".into()),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_interfaces: vec![firebreak::finding::NetworkInterface {
            network_interface_id: Some(
                NetworkInterfaceId::parse(&format!("eni-{}", &id[2..])).unwrap(),
            ),
            subnet_id: Some(SubnetId::parse(subnet).unwrap()),
            vpc_id: Some(VpcId::parse("vpc-0a1b2c3d4e5f60731").unwrap()),
            ..Default::default()
        }],
        instance_profile_arn: None,
        role: Some(RoleTarget {
            role_name: IamName::parse("web-instance-role").unwrap(),
            role_arn: None,
        }),
    }
}

fn sequence_plan(policy: &Policy, exempt_second: bool) -> Plan {
    let f = finding("attack-sequence-ec2-instance-group.json");
    let second_tags: &[(&str, &str)] = if exempt_second {
        &[("firebreak:exempt", "true")]
    } else {
        &[("Name", "web-2")]
    };
    let enrichment = Enrichment::Instances {
        found: vec![
            sequence_facts(
                "i-0a1b2c3d4e5f60718",
                "subnet-0a1b2c3d4e5f60721",
                &[("Name", "web-1")],
            ),
            sequence_facts(
                "i-0b2c3d4e5f6071829",
                "subnet-0a1b2c3d4e5f60722",
                second_tags,
            ),
        ],
        missing: vec![],
    };
    plan(&f, policy, "built-in", enrichment, false)
}

#[test]
fn an_attack_sequence_fans_out_to_every_target_it_names() {
    let p = sequence_plan(&Policy::built_in().unwrap(), false);
    assert_eq!(p.matched_rules, vec!["attack-sequence"]);
    let targets: Vec<String> = p.actions.iter().map(|a| a.target()).collect();
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::IsolateInstance,
            ActionKind::IsolateInstance,
            ActionKind::RevokeRoleSessions,
            ActionKind::BlockRemoteIps,
            ActionKind::MarkResolved
        ],
        "{targets:?}"
    );
    assert!(targets[0].starts_with("i-0a1b2c3d4e5f60718"), "{targets:?}");
    assert!(targets[1].starts_with("i-0b2c3d4e5f6071829"), "{targets:?}");
    // The actor and both instance profiles are one role: revoked once.
    assert_eq!(
        targets[2],
        "role web-instance-role (from an actor of the attack sequence)"
    );
    match &p.actions[3] {
        PlannedAction::BlockRemoteIps {
            ips, subnet_ids, ..
        } => {
            assert_eq!(ips.len(), 1);
            assert_eq!(subnet_ids.len(), 2, "both instances' subnets guard");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        skips(&p),
        vec![(Some(ActionKind::DisableAccessKey), SkipReason::NoTarget)]
    );
    // A resource with no runbook (an EKS cluster) is left to a person, said, and the
    // finding cannot be RESOLVED.
    let mut f = finding("attack-sequence-ec2-instance-group.json");
    if let Some(seq) = f.targets.sequence.as_mut() {
        seq.other_resources.push("EKS_CLUSTER prod".into());
    }
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    let left: Vec<_> = p
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::NotifyOnly)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(
        left[0].detail.contains("EKS_CLUSTER prod"),
        "{}",
        left[0].detail
    );
}

#[test]
fn an_exempt_instance_of_a_sequence_is_left_alone_and_the_rest_contained() {
    let p = sequence_plan(&Policy::built_in().unwrap(), true);
    let isolated: Vec<String> = p
        .actions_of(ActionKind::IsolateInstance)
        .map(|a| a.target())
        .collect();
    assert_eq!(isolated.len(), 1);
    assert!(isolated[0].starts_with("i-0a1b2c3d4e5f60718"));
    assert!(p
        .skipped
        .iter()
        .any(|s| s.reason == SkipReason::ExemptTag
            && s.target.as_deref() == Some("i-0b2c3d4e5f6071829")));
    match p.action(ActionKind::BlockRemoteIps) {
        Some(PlannedAction::BlockRemoteIps { subnet_ids, .. }) => {
            assert_eq!(
                subnet_ids.len(),
                1,
                "the exempt instance's subnet is not touched"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sequence_over_the_cap_changes_nothing_and_asks_a_person() {
    let policy = policy_with(|v| v["attackSequences"]["maxTargets"] = json!(3));
    let p = sequence_plan(&policy, false);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let over: Vec<_> = p
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::OverCap)
        .collect();
    assert_eq!(over.len(), 4, "{:?}", p.skipped);
    assert!(
        over[0].detail.contains("names 4 targets"),
        "{}",
        over[0].detail
    );
    assert!(over[0].detail.contains("a person must decide"));
    assert!(SkipReason::OverCap.leaves_gap());
    let e = Policy::from_json(
        &{
            let mut v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
            v["attackSequences"]["maxTargets"] = json!(0);
            v.to_string()
        },
        "test",
    )
    .unwrap_err();
    assert_eq!(e.path, "$.attackSequences.maxTargets");
}

#[test]
fn an_instance_is_never_blocked_from_its_own_address() {
    // The OCSF finding's evidence names both ends; one is the instance's private address.
    let f = finding("securityhub-v2-ocsf-ssh-brute-force.json");
    let mut facts = sequence_facts("i-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60721", &[]);
    facts.network_interfaces[0].private_ips = vec!["10.20.1.15".parse().unwrap()];
    facts.role = None;
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Instance(facts),
        false,
    );
    match p.action(ActionKind::BlockRemoteIps) {
        Some(PlannedAction::BlockRemoteIps { ips, .. }) => {
            assert_eq!(
                ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                vec!["203.0.113.45"]
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(p
        .skipped
        .iter()
        .any(|s| s.detail.contains("an address of the instance itself")));
}

#[test]
fn unknown_types_plan_nothing() {
    let dir = samples_dir();
    let bytes = std::fs::read(dir.join(
        "securityhub-custom-action__custodian-event-securityhub-cloudtrail-finding-action.json",
    ))
    .unwrap();
    let f = firebreak::finding::parse_input_bytes(&bytes)
        .unwrap()
        .findings
        .remove(0);
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert!(p.actions.is_empty());
    assert_eq!(skips(&p), vec![(None, SkipReason::UnknownFindingType)]);
}

#[test]
fn exempt_tag_skips_every_action_on_the_instance() {
    let p = offline("ec2-exempt-instance.json");
    assert!(p.actions.is_empty());
    assert_eq!(
        skips(&p),
        vec![
            (Some(ActionKind::IsolateInstance), SkipReason::ExemptTag),
            (Some(ActionKind::BlockRemoteIps), SkipReason::ExemptTag),
            (Some(ActionKind::MarkResolved), SkipReason::NothingContained),
        ]
    );
    assert!(p.skipped[0].detail.contains("firebreak:exempt=true"));
}

#[test]
fn live_tags_from_ec2_override_the_findings_tags() {
    let f = finding("ec2-network-backdoor.json");
    let facts = |tags: &[(&str, &str)]| InstanceFacts {
        instance_id: f.targets.instance.as_ref().unwrap().instance_id.clone(),
        state: Some("running".into()),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_interfaces: f
            .targets
            .instance
            .as_ref()
            .unwrap()
            .network_interfaces
            .clone(),
        instance_profile_arn: None,
        role: None,
    };
    let policy = Policy::built_in().unwrap();
    let p = plan(
        &f,
        &policy,
        "built-in",
        Enrichment::Instance(facts(&[("firebreak:exempt", "true")])),
        false,
    );
    assert!(
        p.actions.is_empty(),
        "tagged exempt since the finding was raised"
    );
    let p = plan(
        &f,
        &policy,
        "built-in",
        Enrichment::Instance(facts(&[("owner", "carol")])),
        false,
    );
    assert_eq!(p.actions.len(), 3);
    assert_eq!(p.context.owner.as_deref(), Some("carol"));
}

#[test]
fn an_instance_ec2_does_not_know_is_not_acted_on() {
    let f = finding("ec2-network-backdoor.json");
    let id = f.targets.instance.as_ref().unwrap().instance_id.clone();
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::InstanceNotFound { instance_id: id },
        false,
    );
    assert!(p.actions.is_empty());
    assert_eq!(
        skips(&p),
        vec![
            (
                Some(ActionKind::IsolateInstance),
                SkipReason::TargetNotFound
            ),
            (Some(ActionKind::BlockRemoteIps), SkipReason::NoTarget),
            (Some(ActionKind::MarkResolved), SkipReason::NothingContained),
        ]
    );
}

#[test]
fn account_and_account_type_exemptions() {
    let f = finding("ec2-network-backdoor.json");
    let policy = policy_with(|v| {
        v["exemptions"]["accounts"] =
            json!([{"accountId": "111122223333", "reason": "sandbox account"}]);
    });
    let p = plan(&f, &policy, "test", Enrichment::Offline, false);
    assert!(p.actions.is_empty());
    assert!(p
        .skipped
        .iter()
        .take(2)
        .all(|s| s.reason == SkipReason::ExemptAccount && s.detail.contains("sandbox account")));

    let policy = policy_with(|v| {
        v["exemptions"]["findingTypesByAccount"] = json!([
            {"accountId": "111122223333", "findingTypes": ["Backdoor:EC2/*"], "reason": "honeypot by design"}
        ]);
    });
    let p = plan(&f, &policy, "test", Enrichment::Offline, false);
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped[0].reason, SkipReason::ExemptFindingType);
    assert!(p.skipped[0].detail.contains("honeypot by design"));
    // Another account with the same type is not exempt.
    let policy = policy_with(|v| {
        v["exemptions"]["findingTypesByAccount"] = json!([
            {"accountId": "999999999999", "findingTypes": ["Backdoor:EC2/*"], "reason": "x"}
        ]);
    });
    assert_eq!(
        plan(&f, &policy, "test", Enrichment::Offline, false)
            .actions
            .len(),
        3
    );
}

#[test]
fn sample_and_archived_findings_are_never_acted_on() {
    let mut f = finding("ec2-network-backdoor.json");
    f.sample = true;
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped[0].reason, SkipReason::SampleFinding);
    let mut f = finding("ec2-network-backdoor.json");
    f.archived = true;
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped[0].reason, SkipReason::ArchivedFinding);
}

#[test]
fn instance_profile_role_is_revoked_when_the_policy_asks_and_not_when_protected() {
    let f = finding("ec2-network-backdoor.json");
    let policy = policy_with(|v| {
        v["rules"][0]["actions"] =
            json!(["isolate-instance", "revoke-role-sessions", "mark-resolved"]);
    });
    // Offline, the role behind the profile is unknown: said, not guessed.
    let p = plan(&f, &policy, "test", Enrichment::Offline, false);
    assert_eq!(
        skips(&p),
        vec![(
            Some(ActionKind::RevokeRoleSessions),
            SkipReason::EnrichmentSkipped
        )]
    );

    let inst = f.targets.instance.clone().unwrap();
    let facts = |role: &str| {
        Enrichment::Instance(InstanceFacts {
            instance_id: inst.instance_id.clone(),
            state: None,
            tags: inst.tags.clone(),
            network_interfaces: inst.network_interfaces.clone(),
            instance_profile_arn: inst.instance_profile_arn.clone(),
            role: Some(RoleTarget {
                role_name: IamName::parse(role).unwrap(),
                role_arn: Some(
                    Arn::parse(&format!("arn:aws:iam::111122223333:role/{role}")).unwrap(),
                ),
            }),
        })
    };
    let p = plan(&f, &policy, "test", facts("web-instance-role"), false);
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::IsolateInstance,
            ActionKind::RevokeRoleSessions,
            ActionKind::MarkResolved
        ]
    );
    // A role whose ARN names another account than the finding's is never acted on.
    let mut foreign = facts("web-instance-role");
    if let Enrichment::Instance(i) = &mut foreign {
        i.role.as_mut().unwrap().role_arn =
            Some(Arn::parse("arn:aws:iam::444455556666:role/web-instance-role").unwrap());
    }
    let p = plan(&f, &policy, "test", foreign, false);
    assert_eq!(
        kinds(&p),
        vec![ActionKind::IsolateInstance, ActionKind::MarkResolved]
    );
    assert_eq!(
        skips(&p),
        vec![(
            Some(ActionKind::RevokeRoleSessions),
            SkipReason::InvalidTarget
        )]
    );
    assert!(p.skipped[0]
        .detail
        .contains("names account 444455556666, not the finding's account 111122223333"));
    let p = plan(&f, &policy, "test", facts("BreakGlassAdmin"), false);
    assert_eq!(
        kinds(&p),
        vec![ActionKind::IsolateInstance, ActionKind::MarkResolved]
    );
    assert_eq!(
        skips(&p),
        vec![(
            Some(ActionKind::RevokeRoleSessions),
            SkipReason::ProtectedPrincipal
        )]
    );
}

#[test]
fn protected_users_keep_their_keys() {
    let policy = policy_with(|v| v["protectedPrincipals"]["userNames"] = json!(["ci-*"]));
    let p = plan(
        &finding("iam-user-malicious-caller.json"),
        &policy,
        "test",
        Enrichment::Offline,
        false,
    );
    assert!(p.actions.is_empty());
    assert!(
        skips(&p).contains(&(
            Some(ActionKind::DisableAccessKey),
            SkipReason::ProtectedPrincipal
        )),
        "{:?}",
        p.skipped
    );
}

#[test]
fn an_allow_listed_cidr_added_by_the_user_is_honoured() {
    let policy = policy_with(|v| {
        v["neverBlock"]
            .as_array_mut()
            .unwrap()
            .push(json!({"cidr": "203.0.113.0/24", "reason": "our scanner"}));
    });
    let p = plan(
        &finding("ec2-network-backdoor.json"),
        &policy,
        "test",
        Enrichment::Offline,
        false,
    );
    assert_eq!(
        kinds(&p),
        vec![ActionKind::IsolateInstance, ActionKind::MarkResolved]
    );
    assert_eq!(p.skipped[0].reason, SkipReason::AllowListedIp);
    assert!(p.skipped[0].detail.contains("our scanner"));
}

#[test]
fn dry_run_is_carried_and_plans_the_same_actions() {
    let f = finding("ec2-network-backdoor.json");
    let policy = Policy::built_in().unwrap();
    let real = plan(&f, &policy, "built-in", Enrichment::Offline, false);
    let dry = plan(&f, &policy, "built-in", Enrichment::Offline, true);
    assert!(dry.dry_run && !real.dry_run);
    assert_eq!(dry.actions, real.actions);
}

#[test]
fn a_plan_survives_a_round_trip_through_json() {
    let p = offline("ec2-network-backdoor.json");
    let text = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["actions"][0]["action"], "isolate-instance");
    assert_eq!(v["actions"][0]["instanceId"], "i-0a1b2c3d4e5f60718");
    // A tampered plan cannot carry an unchecked identifier to the next runbook.
    let tampered = text.replace("i-0a1b2c3d4e5f60718", "i-0a1b;reboot");
    assert!(serde_json::from_str::<Plan>(&tampered).is_err());
}

#[test]
fn a_lambda_finding_throttles_the_function_and_revokes_its_execution_role() {
    let p = offline("lambda-backdoor-c2.json");
    assert_eq!(p.matched_rules, vec!["function-compromise"]);
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::RevokeRoleSessions,
            ActionKind::ThrottleFunction,
            ActionKind::MarkResolved
        ]
    );
    assert_eq!(
        p.playbooks,
        vec![Playbook::CredentialCompromise, Playbook::FunctionCompromise]
    );
    assert_eq!(
        p.actions[0].target(),
        "role report-generator-role (from the execution role of function report-generator)"
    );
    assert_eq!(p.actions[1].target(), "Lambda function report-generator");

    // Exempt by tag (as triage read it from Lambda): nothing at all.
    let f = finding("lambda-backdoor-c2.json");
    let facts = FunctionFacts {
        function_name: FunctionName::parse("report-generator").unwrap(),
        function_arn: None,
        tags: [("firebreak:exempt".to_owned(), "true".to_owned())].into(),
        role: None,
    };
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Function(facts),
        false,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(
        p.skipped
            .iter()
            .all(|s| s.reason == SkipReason::ExemptTag || s.reason == SkipReason::NothingContained),
        "{:?}",
        p.skipped
    );

    // Gone from Lambda: not found, said; and Firebreak's own functions are protected.
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::FunctionNotFound {
            function_name: FunctionName::parse("report-generator").unwrap(),
        },
        false,
    );
    assert!(p
        .skipped
        .iter()
        .any(|s| s.reason == SkipReason::TargetNotFound));
    let mut own = fixture_json("lambda-backdoor-c2.json");
    own["detail"]["resource"]["lambdaDetails"]["functionName"] = json!("Firebreak-triage");
    let f = firebreak::finding::parse_input(&own)
        .unwrap()
        .findings
        .remove(0);
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert!(p.action(ActionKind::ThrottleFunction).is_none());
    assert!(p.skipped.iter().any(
        |s| s.reason == SkipReason::ProtectedPrincipal && s.detail.contains("Firebreak's own")
    ));
}

/// Runtime Monitoring on EC2 (resourceType Instance, with runtimeDetails) runs the EC2
/// playbook; the same finding on an ECS cluster has no runbook and is left to a person.
#[test]
fn runtime_monitoring_on_ec2_runs_the_ec2_playbook_and_on_a_container_is_left_to_a_person() {
    let p = offline("runtime-reverse-shell-ec2.json");
    assert_eq!(p.matched_rules, vec!["ec2-compromise"]);
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::IsolateInstance,
            ActionKind::BlockRemoteIps,
            ActionKind::MarkResolved
        ]
    );
    let mut doc = fixture_json("runtime-reverse-shell-ec2.json");
    doc["detail"]["resource"] = json!({
        "resourceType": "ECSCluster",
        "ecsClusterDetails": {"name": "payments", "arn": "arn:aws:ecs:us-east-1:111122223333:cluster/payments"}
    });
    let f = firebreak::finding::parse_input(&doc)
        .unwrap()
        .findings
        .remove(0);
    let p = plan(
        &f,
        &Policy::built_in().unwrap(),
        "built-in",
        Enrichment::Offline,
        false,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let left: Vec<_> = p
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::NotifyOnly)
        .collect();
    assert_eq!(left.len(), 1, "{:?}", p.skipped);
    assert!(
        left[0].detail.contains("an ECS task or container"),
        "{}",
        left[0].detail
    );
}

/// An S3 bucket opened to everyone: its public access is blocked, nothing else; a finding
/// without an object tags none.
#[test]
fn a_public_bucket_gets_its_public_access_blocked() {
    let p = offline("s3-bucket-anonymous-access.json");
    assert_eq!(p.matched_rules, vec!["s3-exposure"]);
    assert_eq!(
        kinds(&p),
        vec![
            ActionKind::BlockBucketPublicAccess,
            ActionKind::MarkResolved
        ]
    );
    assert_eq!(p.playbooks, vec![Playbook::S3Exposure]);
    assert_eq!(p.actions[0].target(), "S3 bucket quarterly-reports");
    assert_eq!(
        skips(&p),
        vec![(Some(ActionKind::TagS3Object), SkipReason::NoTarget)]
    );
}

/// A malicious object, from GuardDuty's finding and from Malware Protection's own scan
/// event alike: the object tagged (its version and threat named), the bucket's public
/// access blocked. The scan event reaches no Security Hub.
#[test]
fn a_malicious_object_is_tagged_and_its_bucket_closed_whichever_shape_says_so() {
    for name in [
        "s3-malicious-object.json",
        "malware-scan-result-threats-found.json",
    ] {
        let f = finding(name);
        assert_eq!(f.finding_type.name, "Object:S3/MaliciousFile", "{name}");
        let p = offline(name);
        assert_eq!(
            kinds(&p),
            vec![
                ActionKind::BlockBucketPublicAccess,
                ActionKind::TagS3Object,
                ActionKind::MarkResolved
            ],
            "{name}: {:?}",
            p.skipped
        );
        assert_eq!(
            p.actions[1],
            PlannedAction::TagS3Object {
                bucket: BucketName::parse("customer-uploads").unwrap(),
                key: ObjectKey::parse("incoming/invoice-2291.pdf").unwrap(),
                version_id: Some(ObjectVersionId::parse("3HL4kqtJvjVBH40Nrjfkd").unwrap()),
                threats: vec!["EICAR-Test-File (not a virus)".into()],
            },
            "{name}"
        );
    }
    let scan = finding("malware-scan-result-threats-found.json");
    assert_eq!(
        scan.security_hub.format,
        firebreak::finding::HubFormat::None
    );
    assert_eq!(
        scan.security_hub.id.as_str(),
        "arn:aws:guardduty:us-east-1:111122223333:malware-scan/72c7d362-737a-6dce-fc78-9e27a0171419"
    );
    assert_eq!(scan.severity.band, firebreak::finding::SeverityBand::High);
}

#[test]
fn a_scan_that_found_nothing_is_not_a_finding() {
    for (status, result) in [
        ("COMPLETED", "NO_THREATS_FOUND"),
        ("SKIPPED", "THREATS_FOUND"),
    ] {
        let mut e = fixture_json("malware-scan-result-threats-found.json");
        e["detail"]["scanStatus"] = json!(status);
        e["detail"]["scanResultDetails"]["scanResultStatus"] = json!(result);
        let err = firebreak::finding::parse_input(&e).unwrap_err();
        assert!(
            matches!(err, firebreak::error::InputError::NotAFinding { .. }),
            "{status}/{result}: {err:?}"
        );
    }
    let mut e = fixture_json("malware-scan-result-threats-found.json");
    e["detail"]["s3ObjectDetails"]["objectKey"] = json!("bad\u{7}key");
    let err = firebreak::finding::parse_input(&e).unwrap_err();
    assert!(err.to_string().contains("objectKey"), "{err}");
}

/// S3 as triage read it: an exempt bucket is left alone, a bucket S3 has not in the
/// finding's account is never acted on.
#[test]
fn exempt_and_foreign_buckets_are_left_alone() {
    let f = finding("s3-malicious-object.json");
    let bucket = BucketName::parse("customer-uploads").unwrap();
    let exempt = Enrichment::Buckets {
        found: vec![BucketFacts {
            name: bucket.clone(),
            tags: [("firebreak:exempt".to_owned(), "true".to_owned())].into(),
        }],
        missing: vec![],
        refused: vec![],
    };
    let p = plan(&f, &Policy::built_in().unwrap(), "built-in", exempt, false);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        skips(&p),
        vec![
            (
                Some(ActionKind::BlockBucketPublicAccess),
                SkipReason::ExemptTag
            ),
            (Some(ActionKind::TagS3Object), SkipReason::ExemptTag),
            (Some(ActionKind::MarkResolved), SkipReason::NothingContained),
        ]
    );
    // Another account's (or denied): never acted on, and a gap a person must close.
    let foreign = Enrichment::Buckets {
        found: vec![],
        missing: vec![],
        refused: vec![bucket.clone()],
    };
    let p = plan(&f, &Policy::built_in().unwrap(), "built-in", foreign, false);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.skipped[0].reason, SkipReason::TargetRefused);
    assert!(
        p.skipped[0].detail.contains("as account 111122223333's"),
        "{:?}",
        p.skipped
    );
    let notified = firebreak::resolution::Resolution::of(&p, &[], &[]);
    assert_eq!(notified, firebreak::resolution::Resolution::NotContained);
    // Gone: nothing to contain, nothing left for a person.
    let gone = Enrichment::Buckets {
        found: vec![],
        missing: vec![bucket],
        refused: vec![],
    };
    let p = plan(&f, &Policy::built_in().unwrap(), "built-in", gone, false);
    assert_eq!(p.skipped[0].reason, SkipReason::TargetNotFound);
    assert_eq!(
        firebreak::resolution::Resolution::of(&p, &[], &[]),
        firebreak::resolution::Resolution::NothingToDo
    );
}

/// The routing table picks the owning team's topic; a route that names no condition, or a
/// topic Firebreak may not publish to, is refused with the field named.
#[test]
fn notifications_route_by_the_resources_and_the_accounts_tags() {
    let f = finding("ec2-dns-backdoor.json");
    let with_routes = |routes: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY_JSON).unwrap();
        v["notifications"] = json!({ "routes": routes, "alertMinSeverity": "CRITICAL" });
        Policy::from_json(&v.to_string(), "test")
    };
    let policy = with_routes(json!([
        { "team": "nobody", "topic": "firebreak-nobody" },
        { "team": "PAY*", "environment": "prod*", "topic": "firebreak-payments" }
    ]))
    .unwrap();
    let p = plan(&f, &policy, "test", Enrichment::Offline, false);
    assert_eq!(p.context.team.as_deref(), Some("payments"));
    assert_eq!(p.notify.owners_topic.as_deref(), Some("firebreak-payments"));
    assert_eq!(
        p.notify.alert_min_severity,
        firebreak::finding::SeverityBand::Critical
    );
    // No route matches: the deployment's owners topic.
    let policy = with_routes(json!([{ "accountTeam": "x", "topic": "firebreak-x" }])).unwrap();
    let p = plan(&f, &policy, "test", Enrichment::Offline, false);
    assert_eq!(p.notify.owners_topic, None);

    let e = with_routes(json!([{ "topic": "firebreak-all" }])).unwrap_err();
    assert!(e.to_string().contains("$.notifications.routes[0]"), "{e}");
    let e = with_routes(json!([{ "team": "a", "topic": "their-topic" }])).unwrap_err();
    assert!(
        e.to_string().contains("$.notifications.routes[0].topic"),
        "{e}"
    );
}
