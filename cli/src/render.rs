//! The human-readable plan: what a security engineer reads before trusting Firebreak.

use std::fmt::Write;

use firebreak::finding::{InputKind, ParsedInput};
use firebreak::plan::{Enrichment, Plan, SkipReason};

pub fn input_header(input: &ParsedInput) -> String {
    let kind = match input.kind {
        InputKind::GuardDutyEvent => "EventBridge GuardDuty Finding event",
        InputKind::SecurityHubImportedEvent => "Security Hub Findings - Imported event",
        InputKind::SecurityHubCustomActionEvent => "Security Hub Findings - Custom Action event",
        InputKind::GuardDutyFinding => "GuardDuty finding",
        InputKind::AsffFinding => "Security Hub (ASFF) finding",
        InputKind::SecurityHubV2ImportedEvent => "Security Hub Findings Imported V2 event (OCSF)",
        InputKind::OcsfFinding => "Security Hub (OCSF) finding",
        InputKind::FindingArray => "array of findings",
        InputKind::GuardDutyGetFindings => "GuardDuty GetFindings output",
        InputKind::SecurityHubGetFindings => "Security Hub GetFindings output (ASFF)",
        InputKind::SecurityHubGetFindingsV2 => "Security Hub GetFindingsV2 output (OCSF)",
        InputKind::MalwareScanResultEvent => {
            "GuardDuty Malware Protection Object Scan Result event (no Security Hub finding)"
        }
    };
    let mut s = format!("Input     {kind}");
    if input.drill {
        s.push_str(", as a drill");
    }
    if input.dry_run {
        s.push_str(" (dry run: nothing would change)");
    }
    s.push('\n');
    if let Some(arn) = &input.custom_action_arn {
        let _ = writeln!(s, "Action    {arn}");
    }
    if let Some(reason) = &input.reason {
        let _ = writeln!(s, "Reason    {reason}");
    }
    if let Some(playbooks) = &input.playbooks {
        let names: Vec<&str> = playbooks.iter().map(|p| p.name()).collect();
        let _ = writeln!(
            s,
            "Playbooks only {} (the drill's filter)",
            names.join(", ")
        );
    }
    for r in &input.refused {
        let _ = writeln!(s, "Refused   {}: {}", r.path, r.error);
    }
    s
}

fn skip_label(r: SkipReason) -> &'static str {
    match r {
        SkipReason::UnknownFindingType => "unknown finding type",
        SkipReason::NoPolicyRule => "no policy rule",
        SkipReason::SeverityBelowThreshold => "severity below threshold",
        SkipReason::SampleFinding => "sample finding",
        SkipReason::ArchivedFinding => "archived finding",
        SkipReason::ExemptAccount => "exempt account",
        SkipReason::ExemptFindingType => "exempt finding type",
        SkipReason::ExemptTag => "exempt tag",
        SkipReason::AllowListedIp => "allow-listed IP",
        SkipReason::ProtectedPrincipal => "protected principal",
        SkipReason::NoTarget => "no target",
        SkipReason::TargetNotFound => "target not found",
        SkipReason::EnrichmentSkipped => "needs AWS lookup",
        SkipReason::NothingContained => "nothing contained",
        SkipReason::NotSelected => "not in this drill",
        SkipReason::InvalidTarget => "invalid target",
        SkipReason::OutsideDeployment => "outside this deployment",
        SkipReason::NotifyOnly => "left to a person",
        SkipReason::OverCap => "over the attack-sequence cap",
        SkipReason::TargetRefused => "AWS refused the target",
    }
}

pub fn plan(p: &Plan) -> String {
    let f = &p.finding;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Finding   {}  ({} {:.1})",
        f.finding_type.name, f.severity.band, f.severity.score
    );
    if let Some(t) = &f.finding_type.parsed {
        let mut parts = format!(
            "purpose {}, resource {}, family {}",
            t.threat_purpose, t.resource_type, t.threat_family
        );
        if let Some(m) = &t.detection_mechanism {
            let _ = write!(parts, ", mechanism {m}");
        }
        if let Some(a) = &t.artifact {
            let _ = write!(parts, ", artifact {a}");
        }
        let _ = writeln!(s, "          {parts}");
    }
    if let Some(title) = &f.title {
        let _ = writeln!(s, "          {}", title.trim());
    }
    let _ = writeln!(s, "Id        {}", f.security_hub.id);
    let _ = writeln!(
        s,
        "Account   {}  {}  {}",
        f.account_id, f.region, f.partition
    );
    let mut flags = Vec::new();
    if f.sample {
        flags.push("SAMPLE".to_owned());
    }
    if f.archived {
        flags.push("ARCHIVED".to_owned());
    }
    flags.push(format!(
        "seen {} time{}",
        f.count,
        if f.count == 1 { "" } else { "s" }
    ));
    if let (Some(first), Some(last)) = (f.first_seen, f.last_seen) {
        flags.push(format!("first {} last {}", rfc3339(first), rfc3339(last)));
    }
    let _ = writeln!(s, "Status    {}", flags.join(", "));

    let t = &f.targets;
    let mut targets = Vec::new();
    if let Some(i) = &t.instance {
        let mut line = format!("instance {}", i.instance_id);
        let subnets: Vec<String> = i.subnets().iter().map(|s| s.to_string()).collect();
        if !subnets.is_empty() {
            let _ = write!(line, " in {}", subnets.join(", "));
        }
        if let Some(arn) = &i.instance_profile_arn {
            let _ = write!(line, ", profile {arn}");
        }
        targets.push(line);
    }
    if let Some(k) = &t.access_key {
        let id = k
            .access_key_id
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "(no key id)".into());
        let user = k
            .user_name
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "(no name)".into());
        let kind = k
            .user_type
            .map(|u| u.as_str().to_owned())
            .unwrap_or_else(|| "unknown type".into());
        targets.push(format!("access key {id} of {user} ({kind})"));
    }
    if let Some(r) = &t.role {
        targets.push(format!("role {}", r.role_name));
    }
    for ip in &t.remote_ips {
        let sources: Vec<String> = ip.sources.iter().map(|s| format!("{s:?}")).collect();
        targets.push(format!("remote IP {} (from {})", ip.ip, sources.join(", ")));
    }
    for b in &t.s3_buckets {
        targets.push(format!("S3 bucket {b}"));
    }
    if let Some(c) = &t.eks_cluster {
        targets.push(format!("EKS cluster {c}"));
    }
    if targets.is_empty() {
        targets.push("none".into());
    }
    for (i, line) in targets.iter().enumerate() {
        let _ = writeln!(
            s,
            "{}{line}",
            if i == 0 { "Targets   " } else { "          " }
        );
    }
    let c = &p.context;
    if c.owner.is_some() || c.team.is_some() || c.environment.is_some() {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "Context   owner {}, team {}, environment {}",
            show(&c.owner),
            show(&c.team),
            show(&c.environment)
        );
    }
    if let Some(a) = &p.account {
        let _ = writeln!(s, "Org       {}", a.summary());
    }
    let rules = if p.matched_rules.is_empty() {
        "none".to_owned()
    } else {
        p.matched_rules.join(", ")
    };
    let _ = writeln!(
        s,
        "Policy    {} (version {}); rules matched: {rules}",
        p.policy.source, p.policy.version
    );

    let verb = if p.dry_run {
        "Would do (dry run)"
    } else {
        "Would do"
    };
    let _ = writeln!(s, "\n{verb} ({}):", p.actions.len());
    if p.actions.is_empty() {
        let _ = writeln!(s, "  nothing");
    }
    for (i, a) in p.actions.iter().enumerate() {
        let _ = writeln!(s, "  {}. {:<22} {}", i + 1, a.kind().name(), a.target());
    }
    if !p.skipped.is_empty() {
        let _ = writeln!(s, "Would skip ({}):", p.skipped.len());
        for k in &p.skipped {
            let action = k.action.map(|a| a.name()).unwrap_or("(all)");
            let _ = writeln!(
                s,
                "  - {:<22} {}: {}",
                action,
                skip_label(k.reason),
                k.detail
            );
        }
    }
    if matches!(p.enrichment, Enrichment::Offline) && f.targets.instance.is_some() {
        let _ = writeln!(
            s,
            "\nOffline plan: EC2 and IAM lookups were skipped. Tags, network interfaces and the\n\
             instance-profile role come from the finding as reported; at run time triage reads\n\
             them from the account, which can change the exempt-tag and role decisions."
        );
    }
    if !f.ignored_fields.is_empty() {
        let _ = writeln!(s, "\nIgnored placeholder fields of this sample finding:");
        for i in &f.ignored_fields {
            let _ = writeln!(s, "  {}: {}", i.path, i.reason);
        }
    }
    s
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
