//! The EC2 side: read network ACLs into the pure model, write the planned operations, and
//! — because other responses may write the same NACL at the same moment — re-read and
//! plan again when EC2 says a rule number is taken or the quota is full.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, NetworkAcl, RuleAction, Tag};
use aws_sdk_ec2::Client;
use firebreak::aws::done_if;
use firebreak::error::RunbookError;
use firebreak::ids::SubnetId;
use firebreak::mutate;
use firebreak::outcome::Change;

use std::net::IpAddr;

use firebreak::policy::IpBlocking;
use time::OffsetDateTime;

use crate::allocate::{self, Entry, IpResult, Nacl, NaclPlan, Op, Requester};
use crate::ledger::{tag_key, LedgerEntry};

/// Plans per NACL before giving up when other responses keep taking the numbers.
pub const MAX_ATTEMPTS: usize = 8;

/// EC2's answers that mean another writer got there first: read again, plan again.
const CONFLICT_CODES: [&str; 2] = [
    "NetworkAclEntryAlreadyExists",
    "NetworkAclEntryLimitExceeded",
];

/// The model of one NACL, and the subnets it serves.
pub fn model(acl: &NetworkAcl) -> Option<(Nacl, Vec<String>)> {
    let id = acl.network_acl_id.clone()?;
    let entries = acl
        .entries()
        .iter()
        .filter_map(|e| {
            let cidr = e
                .cidr_block
                .as_deref()
                .or(e.ipv6_cidr_block.as_deref())?
                .parse()
                .ok()?;
            Some(Entry {
                number: e.rule_number?,
                egress: e.egress.unwrap_or(false),
                allow: e.rule_action == Some(RuleAction::Allow),
                cidr,
            })
        })
        .collect();
    let ledger: BTreeMap<(i32, IpAddr), LedgerEntry> = acl
        .tags()
        .iter()
        .filter_map(|t| {
            let key = t.key.as_deref()?;
            let l = LedgerEntry::from_tag(key, t.value.as_deref()?)?;
            // An older `firebreak:block:<n>` tag is read; it is rewritten in the new form
            // when its block is next extended, and dropped when its entry goes.
            Some(l).filter(|l| key == l.key() || key == legacy_key(l.number))
        })
        .map(|l| ((l.number, l.ip), l))
        .collect();
    let subnets = acl
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id.clone())
        .collect();
    Some((
        Nacl {
            id,
            entries,
            ledger,
        },
        subnets,
    ))
}

/// The NACLs that serve the subnets (several subnets often share one).
pub async fn for_subnets(
    ec2: &Client,
    subnets: &[SubnetId],
) -> Result<Vec<NetworkAcl>, RunbookError> {
    let ids: Vec<String> = subnets.iter().map(|s| s.to_string()).collect();
    let out = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .set_values(Some(ids))
                .build(),
        )
        .send()
        .await
        .map_err(|e| firebreak::aws::aws_error("ec2:DescribeNetworkAcls", e))?;
    Ok(out.network_acls.unwrap_or_default())
}

/// Every NACL in the region, for the sweep.
pub async fn all(ec2: &Client) -> Result<Vec<NetworkAcl>, RunbookError> {
    let mut acls = Vec::new();
    let mut token = None;
    loop {
        let out = ec2
            .describe_network_acls()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| firebreak::aws::aws_error("ec2:DescribeNetworkAcls", e))?;
        acls.extend(out.network_acls.unwrap_or_default());
        token = out.next_token;
        if token.is_none() {
            return Ok(acls);
        }
    }
}

fn describe(op: &Op, nacl: &Nacl) -> Change {
    let entry = |number: &i32, egress: &bool| {
        format!(
            "rule {number} {}",
            if *egress { "outbound" } else { "inbound" }
        )
    };
    let was = |number: &i32, egress: &bool| {
        nacl.entries
            .iter()
            .find(|e| e.number == *number && e.egress == *egress)
            .map(|e| format!("{} {}", if e.allow { "allow" } else { "deny" }, e.cidr))
            .unwrap_or_else(|| "none".into())
    };
    let (what, before, after) = match op {
        Op::PutTag { number, ip, value } => (
            format!("ledger tag {}", tag_key(*number, *ip)),
            nacl.ledger
                .get(&(*number, *ip))
                .map(|l| l.tag_value())
                .unwrap_or_else(|| "none".into()),
            value.clone(),
        ),
        Op::DeleteTag { number, ip, .. } => (
            format!("ledger tag {}", tag_key(*number, *ip)),
            nacl.ledger
                .get(&(*number, *ip))
                .map(|l| l.tag_value())
                .unwrap_or_else(|| "stale".into()),
            "none".into(),
        ),
        Op::CreateEntry {
            number,
            egress,
            cidr,
        } => (
            entry(number, egress),
            was(number, egress),
            format!("deny {cidr}"),
        ),
        Op::DeleteEntry { number, egress } => {
            (entry(number, egress), was(number, egress), "none".into())
        }
    };
    Change {
        resource: nacl.id.clone(),
        what,
        before,
        after,
    }
}

/// The older tag form, one tag per number.
fn legacy_key(number: i32) -> String {
    format!("{}{number}", crate::ledger::TAG_PREFIX)
}

/// The EC2 calls the block and the sweep make on one NACL. `Client` makes them for real;
/// the unit tests put an in-memory NACL behind it and run two responses side by side.
pub(crate) trait NaclApi {
    /// The NACL as EC2 has it now; `None` when it is gone.
    async fn read(&self, acl_id: &str) -> Result<Option<Nacl>, RunbookError>;
    /// One planned operation (with `DryRun` in a dry run).
    async fn run(&self, acl_id: &str, op: &Op, dry_run: bool) -> Result<(), RunbookError>;
    /// Waits before reading again after a conflict: jittered and growing, so that
    /// responses that collided do not collide again in lockstep.
    async fn back_off(&self, attempt: usize) {
        tokio::time::sleep(backoff(attempt, jitter())).await;
    }
}

/// 50 ms × 2^(attempt-1), at most 800 ms, scaled by a jitter in [0.5, 1.5).
fn backoff(attempt: usize, jitter: f64) -> std::time::Duration {
    let base = 50u64 << attempt.saturating_sub(1).min(4);
    std::time::Duration::from_millis((base as f64 * jitter.clamp(0.5, 1.5)) as u64)
}

/// A jitter in [0.5, 1.5) from the clock's nanoseconds: enough to break lockstep between
/// Lambda environments, which start with different clocks.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0.5 + f64::from(nanos % 1000) / 1000.0
}

impl NaclApi for Client {
    async fn read(&self, acl_id: &str) -> Result<Option<Nacl>, RunbookError> {
        // Named after its service: the permissions test finds `ec2.<call>()`.
        let ec2 = self;
        let out = ec2
            .describe_network_acls()
            .network_acl_ids(acl_id)
            .send()
            .await
            .map_err(|e| firebreak::aws::aws_error("ec2:DescribeNetworkAcls", e))?;
        Ok(out
            .network_acls()
            .first()
            .and_then(|a| model(a).map(|(n, _)| n)))
    }

    async fn run(&self, acl_id: &str, op: &Op, dry_run: bool) -> Result<(), RunbookError> {
        let ec2 = self;
        match op {
            Op::PutTag { number, ip, value } => {
                mutate!(
                    dry_run,
                    "ec2:CreateTags",
                    ec2.create_tags().resources(acl_id).tags(
                        Tag::builder()
                            .key(tag_key(*number, *ip))
                            .value(value)
                            .build()
                    )
                )?;
            }
            Op::DeleteTag { number, ip, value } => {
                // With its value, so that EC2 deletes it only while it is the tag this run
                // read or wrote. With the older one-tag-per-number form too, if there is
                // one: its value reads the same.
                mutate!(
                    dry_run,
                    "ec2:DeleteTags",
                    ec2.delete_tags()
                        .resources(acl_id)
                        .tags(
                            Tag::builder()
                                .key(tag_key(*number, *ip))
                                .value(value)
                                .build()
                        )
                        .tags(Tag::builder().key(legacy_key(*number)).value(value).build())
                )?;
            }
            Op::CreateEntry {
                number,
                egress,
                cidr,
            } => {
                let call = ec2
                    .create_network_acl_entry()
                    .network_acl_id(acl_id)
                    .rule_number(*number)
                    .egress(*egress)
                    .rule_action(RuleAction::Deny)
                    .protocol("-1");
                let call = if cidr.contains(':') {
                    call.ipv6_cidr_block(cidr)
                } else {
                    call.cidr_block(cidr)
                };
                mutate!(dry_run, "ec2:CreateNetworkAclEntry", call)?;
            }
            Op::DeleteEntry { number, egress } => {
                // Another response removed it first (a duplicate, an eviction): done.
                done_if(
                    "InvalidNetworkAclEntry.NotFound",
                    mutate!(
                        dry_run,
                        "ec2:DeleteNetworkAclEntry",
                        ec2.delete_network_acl_entry()
                            .network_acl_id(acl_id)
                            .rule_number(*number)
                            .egress(*egress)
                    ),
                )?;
            }
        }
        Ok(())
    }
}

/// How applying a plan went.
enum Applied {
    Done,
    /// EC2 said another writer took the number or filled the quota; what this run had
    /// written for that block was taken back.
    Conflict,
}

/// Runs the operations in order (the order is part of the plan: tag before entry when
/// adding, entries before tag when removing), recording each change. In a dry run every
/// call is made with `DryRun` and EC2 checks permissions and parameters without changing
/// anything.
async fn apply<A: NaclApi>(
    api: &A,
    nacl: &Nacl,
    ops: &[Op],
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> Result<Applied, RunbookError> {
    // The before of each change is read from the NACL as the earlier operations left it.
    let mut now = nacl.clone();
    // What this run wrote for the block being added: taken back if EC2 refuses its entry.
    let mut block_written: Vec<Op> = Vec::new();
    for op in ops {
        if let Err(e) = api.run(&nacl.id, op, dry_run).await {
            let Op::CreateEntry {
                number,
                egress,
                cidr,
            } = op
            else {
                return Err(e);
            };
            let conflict = e.aws_code().is_some_and(|c| CONFLICT_CODES.contains(&c));
            // Another response blocking the same IP may have written this very deny (it
            // completes a block it found half written): then it stands, as wanted.
            if conflict && !dry_run && deny_stands(api, &nacl.id, *number, *egress, cidr).await? {
                tracing::info!(network_acl_id = %nacl.id, rule_number = number, egress, "the deny was written by another response blocking the same IP");
                now.apply(op, None);
                block_written.push(op.clone());
                continue;
            }
            // Refused, not taken, after one direction went in: the half block stays. It is
            // tagged and ours; the next response for this IP completes it, the sweep ends
            // it. Taking it back could remove a direction that another response blocking
            // the same IP has just relied on.
            let half_written = block_written
                .iter()
                .any(|o| matches!(o, Op::CreateEntry { .. }));
            if !conflict && half_written {
                return Err(e);
            }
            // Otherwise what this run wrote for the block is taken back, so that no tag is
            // left without its entry.
            tracing::info!(
                network_acl_id = %nacl.id,
                error = %e,
                conflict,
                "the deny could not be written: taking back this block"
            );
            // Entries first (they are this run's own), then the tag, while it still has
            // this run's value: another response blocking the same IP may have written
            // its own under the same key since.
            for undo in block_written.iter().rev() {
                let back = match undo {
                    Op::CreateEntry { number, egress, .. } => Op::DeleteEntry {
                        number: *number,
                        egress: *egress,
                    },
                    Op::PutTag { number, ip, value } => Op::DeleteTag {
                        number: *number,
                        ip: *ip,
                        value: value.clone(),
                    },
                    _ => continue,
                };
                api.run(&nacl.id, &back, dry_run).await?;
                changes.push(describe(&back, &now));
                now.apply(&back, None);
            }
            // That response's deny may have gone in while the tag was taken back.
            if !dry_run {
                restore_lost_tags(api, &nacl.id, &block_written, changes).await?;
            }
            return if conflict {
                Ok(Applied::Conflict)
            } else {
                Err(e)
            };
        }
        match op {
            Op::PutTag { .. } => block_written = vec![op.clone()],
            Op::CreateEntry { .. } => block_written.push(op.clone()),
            _ => block_written.clear(),
        }
        changes.push(describe(op, &now));
        now.apply(op, op.written_entry());
    }
    Ok(Applied::Done)
}

/// Whether a deny of exactly `cidr` stands at the number in that direction.
async fn deny_stands<A: NaclApi>(
    api: &A,
    acl_id: &str,
    number: i32,
    egress: bool,
    cidr: &str,
) -> Result<bool, RunbookError> {
    let Ok(cidr) = cidr.parse::<ipnet::IpNet>() else {
        return Ok(false);
    };
    Ok(api
        .read(acl_id)
        .await?
        .is_some_and(|n| n.denies_at(number, egress, cidr)))
}

/// Reads the NACL again and puts back the tags among `written` whose deny stands
/// without them (`allocate::lost_tags`). Returns the NACL as it is then, `None` when gone.
async fn restore_lost_tags<A: NaclApi>(
    api: &A,
    acl_id: &str,
    written: &[Op],
    changes: &mut Vec<Change>,
) -> Result<Option<Nacl>, RunbookError> {
    let Some(mut now) = api.read(acl_id).await? else {
        return Ok(None);
    };
    for put in allocate::lost_tags(&now, written) {
        tracing::warn!(network_acl_id = %acl_id, op = ?put, "a deny of ours stood without its ledger tag: writing the tag again");
        api.run(acl_id, &put, false).await?;
        changes.push(describe(&put, &now));
        now.apply(&put, put.written_entry());
    }
    Ok(Some(now))
}

/// Blocks the IPs in one NACL: plan from what EC2 has, apply, and when another response
/// wrote the same NACL in between, read again and plan again (at most `MAX_ATTEMPTS`).
/// Afterwards one more read: an IP that two responses blocked at once, at two numbers,
/// keeps its lowest one. Returns the last plan (its results and evictions) and every
/// change made, taken-back ones included; an error carries the changes made before it,
/// whichever call failed.
pub(crate) async fn block_in<A: NaclApi>(
    api: &A,
    first_read: Nacl,
    ips: &[IpAddr],
    settings: &IpBlocking,
    by: &Requester,
    dry_run: bool,
) -> Result<(NaclPlan, Vec<Change>), RunbookError> {
    let mut changes = Vec::new();
    match block_attempts(api, first_read, ips, settings, by, dry_run, &mut changes).await {
        Ok(planned) => Ok((planned, changes)),
        Err(e) => Err(e.after_changes(&changes)),
    }
}

/// `block_in`'s attempts, recording every change in `changes` as it is made.
async fn block_attempts<A: NaclApi>(
    api: &A,
    first_read: Nacl,
    ips: &[IpAddr],
    settings: &IpBlocking,
    by: &Requester,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> Result<NaclPlan, RunbookError> {
    let mut current = first_read;
    for attempt in 1..=MAX_ATTEMPTS {
        let planned = allocate::plan_blocks(&current, ips, settings, OffsetDateTime::now_utc(), by);
        match apply(api, &current, &planned.ops, dry_run, changes).await? {
            Applied::Done => {
                // A deny written (a new block, or a direction completed): read again, put
                // back a tag another response took away, drop duplicates.
                if !dry_run
                    && planned
                        .ops
                        .iter()
                        .any(|o| matches!(o, Op::CreateEntry { .. }))
                {
                    if let Some(after) =
                        restore_lost_tags(api, &current.id, &planned.ops, changes).await?
                    {
                        // Nothing to add this time: only duplicates and stale tags go.
                        let tidy = allocate::plan_blocks(
                            &after,
                            &[],
                            settings,
                            OffsetDateTime::now_utc(),
                            by,
                        );
                        if let Applied::Conflict =
                            apply(api, &after, &tidy.ops, dry_run, changes).await?
                        {
                            tracing::warn!(network_acl_id = %after.id, "tidying after a concurrent block conflicted; the next run tidies");
                        }
                    }
                }
                return Ok(planned);
            }
            Applied::Conflict => {
                tracing::info!(network_acl_id = %current.id, attempt, "rule number taken by another response: reading the NACL again");
                api.back_off(attempt).await;
                match api.read(&current.id).await? {
                    Some(n) => current = n,
                    None => return Ok(NaclPlan::default()),
                }
            }
        }
    }
    let reason = format!(
        "other responses kept taking the rule numbers of {} ({MAX_ATTEMPTS} attempts)",
        current.id
    );
    Ok(NaclPlan {
        results: ips
            .iter()
            .map(|ip| IpResult::Refused {
                ip: *ip,
                reason: reason.clone(),
            })
            .collect(),
        ..NaclPlan::default()
    })
}

/// The sweep's writes on one NACL: the operations in order, no conflict can arise (it
/// only removes).
pub(crate) async fn apply_removals<A: NaclApi>(
    api: &A,
    nacl: &Nacl,
    ops: &[Op],
    dry_run: bool,
) -> Result<Vec<Change>, RunbookError> {
    let mut changes = Vec::new();
    let applied = apply(api, nacl, ops, dry_run, &mut changes).await;
    applied.map_err(|e| e.after_changes(&changes))?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    //! Two responses blocking IPs in one NACL at the same moment, on an in-memory EC2
    //! that refuses what EC2 refuses (a taken rule number, a full quota), with their
    //! calls interleaved in many different orders.
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::allocate::{Entry, LAST_USER_RULE};

    struct FakeEc2 {
        nacl: RefCell<Nacl>,
        /// A tiny generator that decides how long each call waits, so that every seed
        /// gives another interleaving of the two responses.
        seed: Cell<u64>,
        /// How many reads succeed before EC2 starts failing them.
        reads_left: Cell<usize>,
        /// How many outbound denies EC2 refuses (access denied) before it writes them.
        outbound_refusals: Cell<usize>,
    }

    impl FakeEc2 {
        fn new(nacl: Nacl, seed: u64) -> FakeEc2 {
            FakeEc2 {
                nacl: RefCell::new(nacl),
                seed: Cell::new(seed),
                reads_left: Cell::new(usize::MAX),
                outbound_refusals: Cell::new(0),
            }
        }

        fn reads_failing_after(self, reads: usize) -> FakeEc2 {
            self.reads_left.set(reads);
            self
        }

        fn refusing_outbound(self, refusals: usize) -> FakeEc2 {
            self.outbound_refusals.set(refusals);
            self
        }

        async fn pause(&self) {
            let next = self
                .seed
                .get()
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.seed.set(next);
            for _ in 0..(next >> 61) {
                tokio::task::yield_now().await;
            }
        }
    }

    fn refused(code: &str) -> RunbookError {
        RunbookError::Aws {
            operation: "ec2:CreateNetworkAclEntry",
            message: format!("{code}: refused by the fake"),
            transient: false,
        }
    }

    impl NaclApi for FakeEc2 {
        async fn read(&self, _acl_id: &str) -> Result<Option<Nacl>, RunbookError> {
            self.pause().await;
            let left = self.reads_left.get();
            if left == 0 {
                return Err(RunbookError::Aws {
                    operation: "ec2:DescribeNetworkAcls",
                    message: "InternalError: refused by the fake".into(),
                    transient: true,
                });
            }
            self.reads_left.set(left - 1);
            Ok(Some(self.nacl.borrow().clone()))
        }

        async fn back_off(&self, _attempt: usize) {
            self.pause().await;
        }

        async fn run(&self, _acl_id: &str, op: &Op, _dry_run: bool) -> Result<(), RunbookError> {
            self.pause().await;
            let mut n = self.nacl.borrow_mut();
            match op {
                Op::CreateEntry {
                    number,
                    egress,
                    cidr,
                } => {
                    if n.at(*number, *egress).is_some() {
                        return Err(refused("NetworkAclEntryAlreadyExists"));
                    }
                    if *egress && self.outbound_refusals.get() > 0 {
                        self.outbound_refusals.set(self.outbound_refusals.get() - 1);
                        return Err(refused("UnauthorizedOperation"));
                    }
                    let ip = cidr.parse::<ipnet::IpNet>().unwrap().addr();
                    if n.counted(*egress, ip) >= 20 {
                        return Err(refused("NetworkAclEntryLimitExceeded"));
                    }
                }
                // `Client::run` takes EC2's NotFound for done (another writer removed it).
                Op::DeleteEntry { number, egress } if n.at(*number, *egress).is_none() => {
                    return Ok(());
                }
                _ => {}
            }
            n.apply(op, op.written_entry());
            Ok(())
        }
    }

    fn default_nacl() -> Nacl {
        let mut entries = Vec::new();
        for egress in [false, true] {
            entries.push(Entry {
                number: 100,
                egress,
                allow: true,
                cidr: "0.0.0.0/0".parse().unwrap(),
            });
        }
        Nacl {
            id: "acl-0a1b2c3d4e5f60701".into(),
            entries,
            ledger: BTreeMap::new(),
        }
    }

    /// The built-in policy's: band 80-99, 20 rules per direction.
    fn settings() -> IpBlocking {
        IpBlocking::default()
    }

    /// The ledger and the entries agree: every deny in the band has its tag, every tag its
    /// deny in both directions, no IP twice, nothing outside the band, the quota kept.
    fn consistent(n: &Nacl) -> Result<(), String> {
        let band = settings().rule_numbers;
        for e in n
            .entries
            .iter()
            .filter(|e| !e.allow && e.number <= LAST_USER_RULE)
        {
            if !band.contains(e.number) {
                return Err(format!("entry outside the band: {e:?}"));
            }
            if !n.ledger.contains_key(&(e.number, e.cidr.addr())) {
                return Err(format!("entry without its ledger tag: {e:?}"));
            }
        }
        let mut ips = Vec::new();
        for l in n.ledger.values() {
            for egress in [false, true] {
                if n.at(l.number, egress).is_none_or(|e| e.cidr.addr() != l.ip) {
                    return Err(format!("tag without its entry: {l:?}"));
                }
            }
            if ips.contains(&l.ip) {
                return Err(format!("{} blocked twice", l.ip));
            }
            ips.push(l.ip);
        }
        for egress in [false, true] {
            if n.counted(egress, "198.51.100.1".parse().unwrap()) > 20 {
                return Err("quota exceeded".into());
            }
        }
        Ok(())
    }

    async fn race(seed: u64, a: &str, b: &str) -> Nacl {
        let fake = FakeEc2::new(default_nacl(), seed);
        let s = settings();
        let (ia, ib): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
        let (ips_a, ips_b) = ([ia], [ib]);
        let (by_a, by_b) = (
            Requester::new("finding-a", 5.0),
            Requester::new("finding-b", 5.0),
        );
        // Both start from the same read, as two responses that looked at the same moment.
        let (ra, rb) = tokio::join!(
            block_in(&fake, default_nacl(), &ips_a, &s, &by_a, false),
            block_in(&fake, default_nacl(), &ips_b, &s, &by_b, false),
        );
        for (r, ip) in [(ra, ia), (rb, ib)] {
            let (plan, _) = r.unwrap();
            assert!(
                plan.results.iter().all(|x| matches!(x, IpResult::Blocked { ip: i, .. } | IpResult::Extended { ip: i, .. } if *i == ip)),
                "seed {seed}: {:?}",
                plan.results
            );
        }
        fake.nacl.into_inner()
    }

    #[test]
    fn back_off_grows_is_capped_and_jittered() {
        assert_eq!(backoff(1, 1.0).as_millis(), 50);
        assert_eq!(backoff(3, 1.0).as_millis(), 200);
        assert_eq!(backoff(99, 1.0).as_millis(), 800);
        assert_eq!(backoff(1, 0.5).as_millis(), 25);
        assert_eq!(backoff(5, 9.0).as_millis(), 1200, "jitter is clamped");
        let j = jitter();
        assert!((0.5..1.5).contains(&j));
    }

    /// A conflict, the take-back, then the read before re-planning fails: the error still
    /// lists the tag this run wrote and the one it took back.
    #[tokio::test]
    async fn a_failure_after_a_take_back_reports_the_changes_made_before_it() {
        let mut taken = default_nacl();
        for egress in [false, true] {
            taken.entries.push(Entry {
                number: 80,
                egress,
                allow: false,
                cidr: "192.0.2.0/24".parse().unwrap(),
            });
        }
        // EC2 has 80 taken; this run read the NACL before it was. One read succeeds:
        // whether the deny in the way is of the same IP (it is not); the read after the tag
        // is taken back fails.
        let fake = FakeEc2::new(taken, 1).reads_failing_after(1);
        let ips: [IpAddr; 1] = ["198.51.100.9".parse().unwrap()];
        let by = Requester::new("finding-a", 5.0);
        let err = block_in(&fake, default_nacl(), &ips, &settings(), &by, false)
            .await
            .unwrap_err();
        match &err {
            RunbookError::PartlyDone { changes, .. } => {
                let what: Vec<(&str, &str)> = changes
                    .iter()
                    .map(|c| (c.what.as_str(), c.after.as_str()))
                    .collect();
                assert_eq!(what.len(), 2, "{what:?}");
                assert!(
                    what[0]
                        .0
                        .starts_with("ledger tag firebreak:block:80:198.51.100.9")
                        && what[0].1 != "none",
                    "{what:?}"
                );
                assert_eq!(what[1].1, "none", "the tag taken back: {what:?}");
            }
            e => panic!("expected the changes with the error, got {e:?}"),
        }
        assert_eq!(err.aws_code(), Some("InternalError"));
    }

    #[tokio::test]
    async fn two_responses_racing_for_one_rule_number_leave_a_consistent_ledger() {
        for seed in 0..300 {
            let n = race(seed, "198.51.100.1", "198.51.100.2").await;
            consistent(&n)
                .map_err(|e| format!("seed {seed}: {e}: {n:?}"))
                .unwrap();
            assert_eq!(n.ledger.len(), 2, "seed {seed}: both IPs blocked: {n:?}");
        }
    }

    /// One IP blocked by two responses at two numbers (the second one read the NACL
    /// while a foreign rule held the first free number): whichever tidies first must not
    /// take away the other's block while it is half written.
    #[tokio::test]
    async fn one_ip_blocked_at_two_numbers_at_once_ends_as_one_complete_block() {
        let s = settings();
        let ips: [IpAddr; 1] = ["203.0.113.6".parse().unwrap()];
        let (by_a, by_b) = (
            Requester::new("finding-a", 5.0),
            Requester::new("finding-b", 5.0),
        );
        for seed in 0..300 {
            let fake = FakeEc2::new(default_nacl(), seed);
            let mut older_read = default_nacl();
            for egress in [false, true] {
                older_read.entries.push(Entry {
                    number: 80,
                    egress,
                    allow: true,
                    cidr: "192.0.2.0/24".parse().unwrap(),
                });
            }
            let (ra, rb) = tokio::join!(
                block_in(&fake, default_nacl(), &ips, &s, &by_a, false),
                block_in(&fake, older_read, &ips, &s, &by_b, false),
            );
            ra.unwrap();
            rb.unwrap();
            let n = fake.nacl.into_inner();
            consistent(&n)
                .map_err(|e| format!("seed {seed}: {e}: {n:?}"))
                .unwrap();
            assert!(
                !n.ledger.is_empty(),
                "seed {seed}: the IP stays blocked: {n:?}"
            );
        }
    }

    #[tokio::test]
    async fn two_responses_blocking_one_ip_at_once_leave_one_entry() {
        for seed in 0..300 {
            let n = race(seed, "198.51.100.7", "198.51.100.7").await;
            consistent(&n)
                .map_err(|e| format!("seed {seed}: {e}: {n:?}"))
                .unwrap();
            assert_eq!(n.ledger.len(), 1, "seed {seed}: {n:?}");
        }
    }

    /// Two responses block one IP at one number, under one tag key. The first to write
    /// its outbound deny is refused (not a conflict) and takes its block back while the
    /// other's deny goes in: the deny that stands keeps its tag, whatever the interleaving.
    #[tokio::test]
    async fn a_block_taken_back_beside_another_of_the_same_ip_leaves_that_one_tagged() {
        let s = settings();
        let ips: [IpAddr; 1] = ["203.0.113.3".parse().unwrap()];
        let (by_a, by_b) = (
            Requester::new("finding-a", 5.0),
            Requester::new("finding-b", 8.0),
        );
        for seed in 0..500 {
            let fake = FakeEc2::new(default_nacl(), seed).refusing_outbound(1);
            let (ra, rb) = tokio::join!(
                block_in(&fake, default_nacl(), &ips, &s, &by_a, false),
                block_in(&fake, default_nacl(), &ips, &s, &by_b, false),
            );
            assert!(
                ra.is_err() != rb.is_err(),
                "seed {seed}: exactly one was refused"
            );
            // A tag the refused one could not take back (the other had written its own
            // value meanwhile) is stale: the next response drops it after the grace period.
            let mut n = fake.nacl.into_inner();
            let later = OffsetDateTime::now_utc() + allocate::STALE_GRACE;
            for op in allocate::plan_blocks(&n, &[], &s, later, &by_a).ops {
                n.apply(&op, op.written_entry());
            }
            consistent(&n)
                .map_err(|e| format!("seed {seed}: {e}: {n:?}"))
                .unwrap();
            assert_eq!(
                n.ledger.len(),
                1,
                "seed {seed}: the other blocked it: {n:?}"
            );
        }
    }
}
