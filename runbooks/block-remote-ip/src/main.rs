//! block-remote-ip: denies the finding's remote IPs at the network ACLs of the affected
//! subnets, inbound and outbound, and — on a schedule — removes its blocks past their
//! expiry. What to write is decided in `allocate.rs` (pure), the ledger format is in
//! `ledger.rs`, the EC2 calls are in `nacl.rs`.

mod allocate;
mod ledger;
mod nacl;

use std::net::IpAddr;

use aws_sdk_ec2::Client;
use firebreak::error::{InputError, RunbookError};
use firebreak::ids::{AccountId, Region};
use firebreak::outcome::{ActionOutcome, ActionRequest, Change, OutcomeStatus, RunbookOutput};
use firebreak::plan::Deployment;
use firebreak::plan::PlannedAction;
use firebreak::policy::{ActionKind, Enrolment, Policy, RuleBand};
use firebreak::reach::Reach;
use firebreak::release::{ReleaseOutcome, ReleaseOutput, ReleasePlan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use allocate::IpResult;

pub async fn block_remote_ips(
    req: ActionRequest,
    ec2: &Client,
) -> Result<ActionOutcome, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let plan = &req.plan;
    let Some(PlannedAction::BlockRemoteIps {
        ips,
        subnet_ids,
        settings,
    }) = plan.action(ActionKind::BlockRemoteIps)
    else {
        return Ok(ActionOutcome::not_planned(
            ActionKind::BlockRemoteIps,
            "the plan has no block-remote-ips action",
        ));
    };
    let finding = plan.finding.security_hub.id.as_str();
    let by = allocate::Requester::new(finding, plan.finding.severity.score);
    let target = plan
        .action(ActionKind::BlockRemoteIps)
        .map(|a| a.target())
        .unwrap_or_default();

    let acls = nacl::for_subnets(ec2, subnet_ids).await?;
    let mut changes: Vec<Change> = Vec::new();
    let mut blocked: Vec<String> = Vec::new();
    let mut extended: Vec<String> = Vec::new();
    let mut denied: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut evicted: Vec<String> = Vec::new();
    let mut served: Vec<String> = Vec::new();
    for acl in &acls {
        let Some((model, subnets)) = nacl::model(acl) else {
            continue;
        };
        served.extend(subnets);
        // A failure in this NACL reports what the earlier NACLs already got.
        let (planned, made) = nacl::block_in(ec2, model.clone(), ips, settings, &by, plan.dry_run)
            .await
            .map_err(|e| e.after_changes(&changes))?;
        changes.extend(made);
        for r in &planned.results {
            match r {
                IpResult::Blocked { ip, number } => {
                    blocked.push(format!("{ip} in {} (rule {number})", model.id))
                }
                IpResult::Extended { ip, number } => {
                    extended.push(format!("{ip} in {} (rule {number})", model.id))
                }
                IpResult::AlreadyDenied { ip, numbers } => denied.push(format!(
                    "{ip} in {} (rules {numbers:?}, not Firebreak's)",
                    model.id
                )),
                IpResult::Refused { ip, reason } => refused.push(format!("{ip}: {reason}")),
            }
        }
        for e in &planned.evictions {
            evicted.push(format!(
                "{} from {} rule {} to make room for {}",
                e.ip, model.id, e.number, e.for_ip
            ));
        }
    }
    let missing: Vec<&str> = subnet_ids
        .iter()
        .map(|s| s.as_str())
        .filter(|s| !served.iter().any(|x| x == s))
        .collect();
    if !missing.is_empty() {
        refused.push(format!(
            "no network ACL found for subnet {} (deleted?)",
            missing.join(", ")
        ));
    }

    let until = (started_at + time::Duration::hours(i64::from(settings.block_hours)))
        .replace_nanosecond(0)
        .unwrap_or(started_at)
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut said = Vec::new();
    let verb = if plan.dry_run {
        "would block"
    } else {
        "blocked"
    };
    if !blocked.is_empty() {
        said.push(format!("{verb} {} until {until}", blocked.join(", ")));
    }
    if !extended.is_empty() {
        said.push(format!(
            "{} {} until {until}",
            if plan.dry_run {
                "would extend"
            } else {
                "extended"
            },
            extended.join(", ")
        ));
    }
    if !denied.is_empty() {
        said.push(format!("already denied: {}", denied.join(", ")));
    }
    if !evicted.is_empty() {
        said.push(format!(
            "{} {}",
            if plan.dry_run {
                "would evict"
            } else {
                "evicted"
            },
            evicted.join(", ")
        ));
    }
    if !refused.is_empty() {
        said.push(format!("refused {}", refused.join("; ")));
    }
    let status = if plan.dry_run {
        if refused.is_empty() {
            OutcomeStatus::DryRun
        } else {
            OutcomeStatus::Refused
        }
    } else if !refused.is_empty() {
        OutcomeStatus::Refused
    } else if blocked.is_empty() && evicted.is_empty() {
        OutcomeStatus::AlreadyDone
    } else {
        OutcomeStatus::Done
    };
    let summary = if plan.dry_run {
        format!("dry run: {}", said.join("; "))
    } else {
        said.join("; ")
    };
    let ip_list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    tracing::info!(
        execution_id = req.execution_id.as_deref().unwrap_or(""),
        finding_id = finding,
        action = "block-remote-ips",
        ips = %ip_list.join(","),
        network_acls = acls.len(),
        status = ?status,
        changes = changes.len(),
        "{summary}"
    );
    Ok(ActionOutcome {
        action: ActionKind::BlockRemoteIps,
        status,
        target,
        summary,
        changes,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    })
}

/// `{"sweep": {"dryRun": false}}`: what the scheduled sweep sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepRequest {
    pub sweep: SweepOptions,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepOptions {
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// Where: set when the sweep covers more than Firebreak's own account and region.
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    network_acl_id: String,
    rule_number: i32,
    ip: IpAddr,
    #[serde(with = "time::serde::rfc3339")]
    expired_at: OffsetDateTime,
    finding: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepResult {
    dry_run: bool,
    removed: Vec<Removed>,
    /// Firebreak blocks still in force.
    kept: usize,
    changes: Vec<Change>,
    /// The accounts and regions swept (`account/region`); empty when Firebreak does not
    /// know its own (then it swept where its configuration points).
    swept: Vec<String>,
}

impl SweepResult {
    fn nothing_yet(dry_run: bool) -> SweepResult {
        SweepResult {
            dry_run,
            removed: Vec::new(),
            kept: 0,
            changes: Vec::new(),
            swept: Vec::new(),
        }
    }
}

/// The band the sweep may act in: `FIREBREAK_BLOCK_RULE_BAND` (`first-last`, set by the
/// CDK app and the local account from the deployed policy), else the built-in policy's.
/// Ledger tags outside it are never Firebreak's, so a forged tag cannot make the sweep
/// delete someone else's rule.
pub fn sweep_band() -> Result<RuleBand, RunbookError> {
    let configured = std::env::var("FIREBREAK_BLOCK_RULE_BAND").ok();
    match configured
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(v) => parse_band(v).ok_or_else(|| {
            RunbookError::Input(InputError::InvalidValue {
                path: "FIREBREAK_BLOCK_RULE_BAND".into(),
                reason: format!("{v:?} is not a rule band such as 80-99 within 1-32766"),
            })
        }),
        None => Ok(firebreak::policy::Policy::built_in()?
            .ip_blocking
            .rule_numbers),
    }
}

fn parse_band(v: &str) -> Option<RuleBand> {
    let (first, last) = v.split_once('-')?;
    let (first, last): (u16, u16) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (1 <= first && first <= last && last <= 32766).then_some(RuleBand { first, last })
}

pub async fn sweep(options: SweepOptions, ec2: &Client) -> Result<SweepResult, RunbookError> {
    let now = OffsetDateTime::now_utc();
    let band = sweep_band()?;
    let mut result = SweepResult::nothing_yet(options.dry_run);
    for acl in nacl::all(ec2).await? {
        let Some((model, _)) = nacl::model(&acl) else {
            continue;
        };
        if model.ledger.is_empty() {
            continue;
        }
        let (ops, expired) = allocate::plan_sweep(&model, band, now);
        result.kept += model.ours(band).len().saturating_sub(expired.len());
        let removed = nacl::apply_removals(ec2, &model, &ops, options.dry_run)
            .await
            .map_err(|e| e.after_changes(&result.changes))?;
        result.changes.extend(removed);
        for l in expired {
            tracing::info!(
                action = "sweep-ip-blocks",
                network_acl_id = %model.id,
                rule_number = l.number,
                ip = %l.ip,
                dry_run = options.dry_run,
                "removed the expired block of {} (rule {})",
                l.ip,
                l.number
            );
            result.removed.push(Removed {
                account_id: None,
                region: None,
                network_acl_id: model.id.clone(),
                rule_number: l.number,
                ip: l.ip,
                expired_at: l.until,
                finding: l.finding,
            });
        }
    }
    Ok(result)
}

/// What the release machine hands block-remote-ip: the plan triage verified.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEvent {
    pub release: ReleasePlan,
}

/// Whether a ledger entry is one the plan releases: its IP's, or its finding's (as the
/// ledger holds finding ids: cleaned, and cut when the tag value was full).
fn released_by(plan: &ReleasePlan) -> impl Fn(&ledger::LedgerEntry) -> bool + '_ {
    let finding = plan.finding.as_ref().map(|f| ledger::clean(f.as_str()));
    move |l| match (&plan.ip, &finding) {
        (Some(ip), _) => l.ip == *ip,
        (None, Some(f)) => {
            !l.finding.is_empty()
                && (l.finding == *f || (l.finding.len() >= 64 && f.starts_with(&l.finding)))
        }
        (None, None) => false,
    }
}

/// A release: every block of Firebreak's for the plan's IP (or finding) in every network
/// ACL of the plan's account and region, entries and ledger tags. Others' rules, and
/// Firebreak's blocks of other IPs, stay.
pub async fn release_blocks(
    plan: &ReleasePlan,
    ec2: &Client,
) -> Result<ReleaseOutput, RunbookError> {
    let now = OffsetDateTime::now_utc();
    let band = sweep_band()?;
    let wanted = released_by(plan);
    let mut out = ReleaseOutput::default();
    let mut changes: Vec<Change> = Vec::new();
    for acl in nacl::all(ec2).await? {
        let Some((model, _)) = nacl::model(&acl) else {
            continue;
        };
        let (ops, released) = allocate::plan_release(&model, band, now, &wanted);
        if ops.is_empty() {
            continue;
        }
        let done = nacl::apply_removals(ec2, &model, &ops, plan.dry_run)
            .await
            .map_err(|e| e.after_changes(&changes))?;
        changes.extend(done.iter().cloned());
        let ips: Vec<String> = released
            .iter()
            .map(|l| format!("{} (rule {})", l.ip, l.number))
            .collect();
        let summary = match (plan.dry_run, ips.is_empty()) {
            (true, _) => format!(
                "dry run: would remove Firebreak's blocks in {}: {}",
                model.id,
                ips.join(", ")
            ),
            (false, false) => format!(
                "removed Firebreak's blocks in {}: {}",
                model.id,
                ips.join(", ")
            ),
            (false, true) => format!(
                "removed Firebreak's ledger tags left without their entries in {}",
                model.id
            ),
        };
        tracing::info!(
            execution_id = plan.execution_id.as_deref().unwrap_or(""),
            finding_id = plan.finding.as_ref().map(|f| f.as_str()).unwrap_or(""),
            action = "release-ip-block",
            network_acl_id = %model.id,
            dry_run = plan.dry_run,
            changes = done.len(),
            "{summary}"
        );
        out.outcomes.push(ReleaseOutcome {
            release: "ip-block".into(),
            status: if plan.dry_run {
                OutcomeStatus::DryRun
            } else {
                OutcomeStatus::Done
            },
            target: model.id.clone(),
            summary,
            changes: done,
        });
    }
    if out.outcomes.is_empty() {
        let summary = format!(
            "no block of Firebreak's for {} in account {} region {}: nothing to release",
            plan.target(),
            plan.account_id,
            plan.region
        );
        tracing::info!(
            execution_id = plan.execution_id.as_deref().unwrap_or(""),
            action = "release-ip-block",
            "{summary}"
        );
        out.outcomes.push(ReleaseOutcome {
            release: "ip-block".into(),
            status: OutcomeStatus::AlreadyDone,
            target: plan
                .ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| plan.target()),
            summary,
            changes: Vec::new(),
        });
    }
    Ok(out)
}

/// Everywhere a block of Firebreak's may be: its own account and region first, then every
/// enrolled account in every enrolled region (and its own), each once.
pub fn sweep_places(home: &Deployment, enrolment: &Enrolment) -> Vec<(AccountId, Region)> {
    let regions: Vec<&Region> = std::iter::once(&home.region)
        .chain(&enrolment.regions)
        .collect();
    let mut places = Vec::new();
    for account in std::iter::once(&home.account_id).chain(&enrolment.accounts) {
        for region in &regions {
            let place = (account.clone(), (*region).clone());
            if !places.contains(&place) {
                places.push(place);
            }
        }
    }
    places
}

/// The enrolment in force: the policy parameter's, read now (an account enrolled since
/// the deployment is swept too); none without a parameter.
async fn enrolment_now(reach: &Reach) -> Result<Enrolment, RunbookError> {
    let Some(name) = std::env::var("FIREBREAK_POLICY_PARAMETER")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Ok(Enrolment::default());
    };
    let ssm = aws_sdk_ssm::Client::new(&reach.base);
    let out = ssm
        .get_parameter()
        .name(&name)
        .send()
        .await
        .map_err(|e| firebreak::aws::aws_error("ssm:GetParameter", e))?;
    Ok(
        Policy::from_parameter(&name, out.parameter().and_then(|p| p.value()))?
            .0
            .enrolment,
    )
}

/// The sweep in every place of `sweep_places`, through the member roles where it is not
/// Firebreak's own account. A place that fails does not stop the others; the error then
/// names each failed place and carries every change made.
async fn sweep_everywhere(
    options: SweepOptions,
    home: &Client,
    reach: &Reach,
) -> Result<SweepResult, RunbookError> {
    let Some(here) = &reach.home else {
        return sweep(options, home).await;
    };
    let enrolment = enrolment_now(reach).await?;
    let mut total = SweepResult::nothing_yet(options.dry_run);
    let mut failed = Vec::new();
    for (account, region) in sweep_places(here, &enrolment) {
        let done = if account == here.account_id && region == here.region {
            sweep(options, home).await
        } else {
            match reach.config_for(&account, &region, None).await {
                Ok(conf) => sweep(options, &Client::new(&conf)).await,
                Err(e) => Err(e),
            }
        };
        match done {
            Ok(r) => {
                total.kept += r.kept;
                total.changes.extend(r.changes);
                total.removed.extend(r.removed.into_iter().map(|x| Removed {
                    account_id: Some(account.to_string()),
                    region: Some(region.to_string()),
                    ..x
                }));
                total.swept.push(format!("{account}/{region}"));
            }
            Err(e) => {
                tracing::warn!(account_id = %account, region = %region, error = %e, "the sweep failed here; the other places are swept");
                if let RunbookError::PartlyDone { changes, .. } = &e {
                    total.changes.extend(changes.iter().cloned());
                }
                failed.push(format!("{account}/{region}: {e}"));
            }
        }
    }
    if failed.is_empty() {
        return Ok(total);
    }
    Err(RunbookError::Aws {
        operation: "sweep",
        message: format!(
            "the sweep failed in {} of {} places ({}); swept {}",
            failed.len(),
            failed.len() + total.swept.len(),
            failed.join("; "),
            total.swept.join(", ")
        ),
        transient: false,
    }
    .after_changes(&total.changes))
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, RunbookError> {
    Ok(InputError::read(value)?)
}

/// One function, three jobs: the malicious-remote-ip playbook's block action, the
/// scheduled sweep, or the release machine's release of an IP's (or a finding's) blocks.
///
/// `home` is EC2 in Firebreak's own account and region (the sweep's); a block acts in the
/// finding's account and region through `reach` (`None` in unit tests: `home` then).
pub async fn handle(
    event: Value,
    home: &Client,
    reach: Option<&Reach>,
) -> Result<Value, RunbookError> {
    let out = if event.get("release").is_some() {
        let req: ReleaseEvent = parse(event)?;
        let plan = &req.release;
        let ec2 = match reach {
            Some(r) => Client::new(
                &r.config_for(&plan.account_id, &plan.region, plan.execution_id.as_deref())
                    .await?,
            ),
            None => home.clone(),
        };
        serde_json::to_value(release_blocks(plan, &ec2).await?)
    } else if event.get("sweep").is_some() {
        let req: SweepRequest = parse(event)?;
        let result = match reach {
            Some(r) => sweep_everywhere(req.sweep, home, r).await?,
            None => sweep(req.sweep, home).await?,
        };
        serde_json::to_value(result)
    } else {
        let req: ActionRequest = parse(event)?;
        let ec2 = match reach {
            Some(r) => Client::new(&r.for_plan(&req.plan, req.execution_id.as_deref()).await?),
            None => home.clone(),
        };
        serde_json::to_value(RunbookOutput::one(block_remote_ips(req, &ec2).await?))
    };
    out.map_err(|e| RunbookError::Aws {
        operation: "serialise result",
        message: e.to_string(),
        transient: false,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = firebreak::aws::load_config().await;
    let ec2 = Client::new(&sdk);
    let reach = Reach::from_env(sdk, "block-remote-ip");
    firebreak::runtime::serve("block-remote-ip", |req: Value| {
        handle(req, &ec2, Some(&reach))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_covers_its_own_place_first_then_every_enrolled_account_and_region_once() {
        let home = Deployment {
            account_id: AccountId::parse("123456789012").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
        };
        let enrolment = Enrolment {
            accounts: vec![
                AccountId::parse("111122223333").unwrap(),
                AccountId::parse("123456789012").unwrap(),
            ],
            regions: vec![
                Region::parse("eu-west-1").unwrap(),
                Region::parse("us-east-1").unwrap(),
            ],
        };
        let places: Vec<String> = sweep_places(&home, &enrolment)
            .iter()
            .map(|(a, r)| format!("{a}/{r}"))
            .collect();
        assert_eq!(
            places,
            [
                "123456789012/us-east-1",
                "123456789012/eu-west-1",
                "111122223333/us-east-1",
                "111122223333/eu-west-1"
            ]
        );
        assert_eq!(
            sweep_places(&home, &Enrolment::default()).len(),
            1,
            "nothing enrolled: its own place only"
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_the_field_before_any_call() {
        // A client that cannot reach anything: the error must come before a call.
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .build();
        let ec2 = Client::from_conf(conf);
        let err = handle(serde_json::json!({"sweep": {"dryRun": "yes"}}), &ec2, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sweep.dryRun"), "{err}");
        let err = handle(serde_json::json!({"plan": {"dryRun": true}}), &ec2, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("$.plan"), "{err}");
    }
}
