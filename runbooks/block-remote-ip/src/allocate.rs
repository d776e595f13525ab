//! What to write into one network ACL to block a set of IPs, and what the sweep removes.
//! Pure: the NACL's entries and ledger in, a list of operations and a result per IP out.
//!
//! The rules it keeps:
//! - numbers come from the policy's band, and only those below every allow rule (not
//!   ours) that would let the IP in: a deny after an allow does nothing;
//! - the same number blocks the IP inbound and outbound, so one ledger tag covers both;
//! - the rules-per-direction quota is counted on what is there, IPv4 and IPv6 apart;
//! - when there is no room, Firebreak's own least severe, then oldest, block goes, never a
//!   rule it did not write and never a block made for a more severe finding; with nothing
//!   of its own to evict, the IP is refused, with the reason;
//! - an IP Firebreak already blocks gets a later expiry, not a second entry; an IP that
//!   someone else's rules already deny in both directions gets nothing;
//! - only ledger tags inside the band are Firebreak's: a tag someone wrote on a rule
//!   outside it can never make Firebreak touch that rule;
//! - two responses may act on one NACL at once: an IP that ended up blocked twice keeps
//!   its lowest number, and a tag with no entry, or a block in one direction only, is
//!   touched only after a grace period (the response that wrote it may still be at work).

use std::collections::BTreeMap;
use std::net::IpAddr;

use firebreak::policy::{IpBlocking, RuleBand};
use ipnet::IpNet;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::ledger::LedgerEntry;

/// The default rules (`*`, 32767 for IPv4 and 32768 for IPv6) cannot be changed; they do
/// count against the quota.
pub const LAST_USER_RULE: i32 = 32766;

/// How long a tag without its entry is left alone: the response that wrote it may be
/// between its tag and its entry, or about to remove the tag it lost a race with.
pub const STALE_GRACE: Duration = Duration::minutes(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub number: i32,
    pub egress: bool,
    pub allow: bool,
    pub cidr: IpNet,
}

/// One network ACL as read from EC2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nacl {
    pub id: String,
    pub entries: Vec<Entry>,
    /// Ledger tags, by rule number and IP (parsed; foreign tags are not here).
    pub ledger: BTreeMap<(i32, IpAddr), LedgerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Op {
    PutTag {
        number: i32,
        ip: IpAddr,
        value: String,
    },
    /// Deletes the tag only while it still has `value` (EC2's DeleteTags with a value is
    /// conditional): a response that removes a tag it read or wrote never removes the one
    /// another response has just written under the same key for a block of its own.
    DeleteTag {
        number: i32,
        ip: IpAddr,
        value: String,
    },
    CreateEntry {
        number: i32,
        egress: bool,
        cidr: String,
    },
    DeleteEntry {
        number: i32,
        egress: bool,
    },
}

impl Op {
    /// The ledger entry a `PutTag` writes, as the NACL will read it back.
    pub fn written_entry(&self) -> Option<LedgerEntry> {
        match self {
            Op::PutTag { number, ip, value } => {
                LedgerEntry::from_tag(&crate::ledger::tag_key(*number, *ip), value)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum IpResult {
    Blocked { ip: IpAddr, number: i32 },
    Extended { ip: IpAddr, number: i32 },
    AlreadyDenied { ip: IpAddr, numbers: Vec<i32> },
    Refused { ip: IpAddr, reason: String },
}

/// The finding a block is made for: its id goes into the ledger tag, its severity decides
/// which of Firebreak's blocks it may evict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub finding: String,
    /// Tenths of GuardDuty's 0.0–10.0 scale.
    pub severity_tenths: u8,
}

impl Requester {
    pub fn new(finding: &str, score: f64) -> Self {
        Requester {
            finding: finding.to_owned(),
            severity_tenths: (score.clamp(0.0, 10.0) * 10.0).round() as u8,
        }
    }
}

/// One of Firebreak's evictions, reported as a change of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eviction {
    pub ip: IpAddr,
    pub number: i32,
    pub for_ip: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NaclPlan {
    pub ops: Vec<Op>,
    pub results: Vec<IpResult>,
    pub evictions: Vec<Eviction>,
}

pub fn host_cidr(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

fn same_family(a: &IpNet, ip: IpAddr) -> bool {
    matches!(
        (a, ip),
        (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_))
    )
}

impl Nacl {
    pub(crate) fn at(&self, number: i32, egress: bool) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.number == number && e.egress == egress)
    }

    /// Directions in which Firebreak's deny for the ledger entry is in place.
    fn ours_in_place(&self, l: &LedgerEntry) -> (bool, bool) {
        let cidr = host_cidr(l.ip);
        (
            self.denies_at(l.number, false, cidr),
            self.denies_at(l.number, true, cidr),
        )
    }

    /// Whether a deny of exactly `cidr` stands at the number in that direction.
    pub(crate) fn denies_at(&self, number: i32, egress: bool, cidr: IpNet) -> bool {
        self.at(number, egress)
            .is_some_and(|e| !e.allow && e.cidr == cidr)
    }

    /// Ledger entries inside the band whose deny is in place in at least one direction:
    /// Firebreak's, and nothing else.
    pub fn ours(&self, band: RuleBand) -> Vec<&LedgerEntry> {
        self.ledger
            .values()
            .filter(|l| {
                let (i, e) = self.ours_in_place(l);
                band.contains(l.number) && (i || e)
            })
            .collect()
    }

    fn is_ours(&self, number: i32, band: RuleBand) -> bool {
        self.ours(band).iter().any(|l| l.number == number)
    }

    /// Whether any ledger tag, stale or not, names the number.
    fn tagged(&self, number: i32) -> bool {
        self.ledger.keys().any(|(n, _)| *n == number)
    }

    /// Rules counted against the quota in one direction for one address family. AWS
    /// counts the default deny rule too (32767, or 32768 for IPv6), listed or not.
    pub(crate) fn counted(&self, egress: bool, ip: IpAddr) -> usize {
        1 + self
            .entries
            .iter()
            .filter(|e| {
                e.egress == egress && e.number <= LAST_USER_RULE && same_family(&e.cidr, ip)
            })
            .count()
    }

    /// The lowest allow rule not written by Firebreak that would let `ip` through, in
    /// either direction: a block must sit below it.
    fn ceiling(&self, ip: IpAddr, band: RuleBand) -> i32 {
        self.entries
            .iter()
            .filter(|e| e.allow && e.cidr.contains(&ip) && !self.is_ours(e.number, band))
            .map(|e| e.number)
            .min()
            .unwrap_or(LAST_USER_RULE + 1)
    }

    /// Rule numbers of foreign entries that already deny exactly this IP, if both
    /// directions are covered below the ceiling.
    fn denied_by_others(&self, ip: IpAddr, band: RuleBand) -> Option<Vec<i32>> {
        let ceiling = self.ceiling(ip, band);
        let deny = |egress: bool| {
            self.entries
                .iter()
                .filter(|e| {
                    e.egress == egress
                        && !e.allow
                        && e.number < ceiling
                        && e.cidr.contains(&ip)
                        && !self.is_ours(e.number, band)
                })
                .map(|e| e.number)
                .min()
        };
        match (deny(false), deny(true)) {
            (Some(a), Some(b)) => {
                let mut n = vec![a, b];
                n.dedup();
                Some(n)
            }
            _ => None,
        }
    }

    /// The NACL after one operation, as EC2 would leave it.
    pub fn apply(&mut self, op: &Op, ledger_entry: Option<LedgerEntry>) {
        match op {
            Op::PutTag { number, ip, .. } => {
                if let Some(l) = ledger_entry {
                    self.ledger.insert((*number, *ip), l);
                }
            }
            Op::DeleteTag { number, ip, value } => {
                if self
                    .ledger
                    .get(&(*number, *ip))
                    .is_some_and(|l| l.tag_value() == *value)
                {
                    self.ledger.remove(&(*number, *ip));
                }
            }
            Op::CreateEntry {
                number,
                egress,
                cidr,
            } => {
                if let Ok(cidr) = cidr.parse() {
                    self.entries.push(Entry {
                        number: *number,
                        egress: *egress,
                        allow: false,
                        cidr,
                    });
                }
            }
            Op::DeleteEntry { number, egress } => self
                .entries
                .retain(|e| !(e.number == *number && e.egress == *egress)),
        }
    }
}

/// The NACL as the planned operations leave it, and the plan so far.
struct Planner {
    nacl: Nacl,
    band: RuleBand,
    out: NaclPlan,
}

impl Planner {
    fn push(&mut self, op: Op, ledger_entry: Option<LedgerEntry>) {
        self.nacl.apply(&op, ledger_entry);
        self.out.ops.push(op);
    }

    fn remove_ours(&mut self, l: &LedgerEntry) {
        let (inbound, outbound) = self.nacl.ours_in_place(l);
        // Entries first, then the tag: a crash in between leaves a stale tag, which the
        // next run drops, never an untagged deny that nobody would own.
        if inbound {
            self.push(
                Op::DeleteEntry {
                    number: l.number,
                    egress: false,
                },
                None,
            );
        }
        if outbound {
            self.push(
                Op::DeleteEntry {
                    number: l.number,
                    egress: true,
                },
                None,
            );
        }
        self.push(
            Op::DeleteTag {
                number: l.number,
                ip: l.ip,
                value: l.tag_value(),
            },
            None,
        );
    }

    fn free_number(&self, settings: &IpBlocking, ceiling: i32) -> Option<i32> {
        settings.rule_numbers.numbers().find(|&n| {
            n < ceiling
                && self.nacl.at(n, false).is_none()
                && self.nacl.at(n, true).is_none()
                && !self.nacl.tagged(n)
        })
    }

    fn block(
        &mut self,
        settings: &IpBlocking,
        ip: IpAddr,
        now: OffsetDateTime,
        until: OffsetDateTime,
        by: &Requester,
    ) {
        let cidr = host_cidr(ip);
        // Already ours: a later expiry; repair a direction that went missing.
        if let Some(l) = self
            .nacl
            .ours(self.band)
            .into_iter()
            .find(|l| l.ip == ip)
            .cloned()
        {
            let (inbound, outbound) = self.nacl.ours_in_place(&l);
            let extended = LedgerEntry {
                until: until.max(l.until),
                // The block now answers for the most severe finding that asked for it.
                severity_tenths: Some(
                    l.severity_tenths
                        .map_or(by.severity_tenths, |s| s.max(by.severity_tenths)),
                ),
                finding: by.finding.clone(),
                ..l.clone()
            };
            self.push(
                Op::PutTag {
                    number: l.number,
                    ip,
                    value: extended.tag_value(),
                },
                Some(extended),
            );
            for (present, egress) in [(inbound, false), (outbound, true)] {
                if !present {
                    self.push(
                        Op::CreateEntry {
                            number: l.number,
                            egress,
                            cidr: cidr.to_string(),
                        },
                        None,
                    );
                }
            }
            self.out.results.push(IpResult::Extended {
                ip,
                number: l.number,
            });
            return;
        }
        if let Some(numbers) = self.nacl.denied_by_others(ip, self.band) {
            self.out
                .results
                .push(IpResult::AlreadyDenied { ip, numbers });
            return;
        }

        let ceiling = self.nacl.ceiling(ip, self.band);
        let quota = usize::from(settings.rules_per_direction);
        let quota_full =
            self.nacl.counted(false, ip) >= quota || self.nacl.counted(true, ip) >= quota;
        let mut number = if quota_full {
            None
        } else {
            self.free_number(settings, ceiling)
        };
        let mut outranked = false;
        if number.is_none() {
            // Evict the least severe, then oldest, of Firebreak's blocks that frees what is
            // missing: a number below the ceiling, and when the quota is the limit, one of
            // the same family. Never one made for a more severe finding than this one.
            let candidates: Vec<LedgerEntry> = self
                .nacl
                .ours(self.band)
                .into_iter()
                .filter(|l| {
                    l.number < ceiling
                        && settings.rule_numbers.contains(l.number)
                        && (!quota_full || same_family(&host_cidr(l.ip), ip))
                })
                .cloned()
                .collect();
            let victim = candidates
                .iter()
                .filter(|l| l.severity_tenths.is_some_and(|s| s <= by.severity_tenths))
                .min_by_key(|l| (l.severity_tenths, l.at, l.number))
                .cloned();
            outranked = victim.is_none() && !candidates.is_empty();
            if let Some(v) = victim {
                self.remove_ours(&v);
                self.out.evictions.push(Eviction {
                    ip: v.ip,
                    number: v.number,
                    for_ip: ip,
                });
                number = Some(v.number);
            }
        }
        let Some(number) = number else {
            let band = settings.rule_numbers;
            let reason = if outranked {
                format!(
                    "every block Firebreak could evict in {} answers for a finding more severe than this one ({}.{}), or for one of unrecorded severity",
                    self.nacl.id,
                    by.severity_tenths / 10,
                    by.severity_tenths % 10
                )
            } else if quota_full {
                format!(
                    "{} already holds {quota} {} rules in a direction (the quota) and none of them is Firebreak's to evict",
                    self.nacl.id,
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                )
            } else if ceiling <= i32::from(band.first) {
                format!(
                    "allow rule {ceiling} of {} sits at or below the band {}-{}: a deny there would never be reached",
                    self.nacl.id, band.first, band.last
                )
            } else {
                format!(
                    "rules {}-{} of {} below allow rule {ceiling} are all taken by rules Firebreak did not write",
                    band.first,
                    band.last.min((ceiling - 1).try_into().unwrap_or(band.last)),
                    self.nacl.id
                )
            };
            self.out.results.push(IpResult::Refused { ip, reason });
            return;
        };
        let entry = LedgerEntry {
            number,
            ip,
            at: now,
            until,
            severity_tenths: Some(by.severity_tenths),
            finding: by.finding.clone(),
        };
        // The tag first: a crash after it leaves a stale tag (dropped later), never a deny
        // that Firebreak would not recognise as its own.
        self.push(
            Op::PutTag {
                number,
                ip,
                value: entry.tag_value(),
            },
            Some(entry),
        );
        for egress in [false, true] {
            self.push(
                Op::CreateEntry {
                    number,
                    egress,
                    cidr: cidr.to_string(),
                },
                None,
            );
        }
        self.out.results.push(IpResult::Blocked { ip, number });
    }
}

/// Drops ledger tags in the band whose deny entries are gone or were replaced — they own
/// nothing — once they are older than the grace period.
fn drop_stale(p: &mut Planner, now: OffsetDateTime) {
    let stale: Vec<Op> = p
        .nacl
        .ledger
        .values()
        .filter(|l| {
            p.band.contains(l.number)
                && p.nacl.ours_in_place(l) == (false, false)
                && now - l.at >= STALE_GRACE
        })
        .map(|l| Op::DeleteTag {
            number: l.number,
            ip: l.ip,
            value: l.tag_value(),
        })
        .collect();
    for op in stale {
        p.push(op, None);
    }
}

/// An IP that two responses blocked at once, at two numbers: the lowest stays, the others
/// go. Every response that sees it decides the same way, so they converge.
///
/// A block in place in one direction only, and younger than the grace period, is another
/// response still writing it: it is left out, because deleting the entries read now would
/// miss the one its writer creates next, leaving a deny without its tag. Its writer reads
/// again once done and drops it itself if it is the duplicate.
fn drop_duplicates(p: &mut Planner, now: OffsetDateTime) {
    let mut seen = std::collections::BTreeSet::new();
    let mut extra = Vec::new();
    let mut ours: Vec<LedgerEntry> = p
        .nacl
        .ours(p.band)
        .into_iter()
        .filter(|l| p.nacl.ours_in_place(l) == (true, true) || now - l.at >= STALE_GRACE)
        .cloned()
        .collect();
    ours.sort_by_key(|l| l.number);
    for l in ours {
        if !seen.insert(l.ip) {
            extra.push(l);
        }
    }
    for l in &extra {
        p.remove_ours(l);
    }
}

/// The ledger tags among `written` whose block stands without them: a deny for exactly
/// that IP at that number, in either direction, and no tag under its key. Two responses
/// blocking one IP share the key; when one takes its tag back (its deny was refused) or
/// drops it while the other's deny goes in, the deny would be left to nobody. Both read
/// again after their last write and put the tag back; whichever reads last sees it.
pub fn lost_tags(nacl: &Nacl, written: &[Op]) -> Vec<Op> {
    written
        .iter()
        .filter(|op| match op {
            Op::PutTag { number, ip, .. } => {
                !nacl.ledger.contains_key(&(*number, *ip))
                    && [false, true]
                        .into_iter()
                        .any(|egress| nacl.denies_at(*number, egress, host_cidr(*ip)))
            }
            _ => false,
        })
        .cloned()
        .collect()
}

pub fn plan_blocks(
    nacl: &Nacl,
    ips: &[IpAddr],
    settings: &IpBlocking,
    now: OffsetDateTime,
    by: &Requester,
) -> NaclPlan {
    let until = now + Duration::hours(i64::from(settings.block_hours));
    let mut p = Planner {
        nacl: nacl.clone(),
        band: settings.rule_numbers,
        out: NaclPlan::default(),
    };
    drop_stale(&mut p, now);
    drop_duplicates(&mut p, now);
    for &ip in ips {
        p.block(settings, ip, now, until, by);
    }
    p.out
}

/// The sweep: Firebreak's blocks in the band past their expiry, duplicates and stale tags.
/// Nothing else.
pub fn plan_sweep(nacl: &Nacl, band: RuleBand, now: OffsetDateTime) -> (Vec<Op>, Vec<LedgerEntry>) {
    let mut p = Planner {
        nacl: nacl.clone(),
        band,
        out: NaclPlan::default(),
    };
    drop_stale(&mut p, now);
    drop_duplicates(&mut p, now);
    let expired: Vec<LedgerEntry> = p
        .nacl
        .ours(band)
        .into_iter()
        .filter(|l| l.until <= now)
        .cloned()
        .collect();
    for l in &expired {
        p.remove_ours(l);
    }
    (p.out.ops, expired)
}

/// A release: Firebreak's blocks in the band that `wanted` picks (one IP's, or one
/// finding's), entries then tags, and its tags for them left without an entry once past
/// the grace period (a younger one is a response still writing its block). Nothing else.
pub fn plan_release(
    nacl: &Nacl,
    band: RuleBand,
    now: OffsetDateTime,
    wanted: impl Fn(&LedgerEntry) -> bool,
) -> (Vec<Op>, Vec<LedgerEntry>) {
    let mut p = Planner {
        nacl: nacl.clone(),
        band,
        out: NaclPlan::default(),
    };
    let released: Vec<LedgerEntry> = p
        .nacl
        .ours(band)
        .into_iter()
        .filter(|l| wanted(l))
        .cloned()
        .collect();
    let stale: Vec<Op> = p
        .nacl
        .ledger
        .values()
        .filter(|l| {
            wanted(l)
                && band.contains(l.number)
                && p.nacl.ours_in_place(l) == (false, false)
                && now - l.at >= STALE_GRACE
        })
        .map(|l| Op::DeleteTag {
            number: l.number,
            ip: l.ip,
            value: l.tag_value(),
        })
        .collect();
    for l in &released {
        p.remove_ours(l);
    }
    for op in stale {
        p.push(op, None);
    }
    (p.out.ops, released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebreak::policy::RuleBand;
    use time::macros::datetime;

    /// A finding of medium severity (5.0).
    fn by(finding: &str) -> Requester {
        Requester::new(finding, 5.0)
    }

    const NOW: OffsetDateTime = datetime!(2026-11-29 10:00 UTC);

    fn entry(number: i32, egress: bool, allow: bool, cidr: &str) -> Entry {
        Entry {
            number,
            egress,
            allow,
            cidr: cidr.parse().unwrap(),
        }
    }

    /// AWS's default NACL: allow everything at 100, the `*` denies.
    fn default_nacl() -> Nacl {
        let mut entries = Vec::new();
        for egress in [false, true] {
            entries.push(entry(100, egress, true, "0.0.0.0/0"));
            entries.push(entry(101, egress, true, "::/0"));
            entries.push(entry(32767, egress, false, "0.0.0.0/0"));
            entries.push(entry(32768, egress, false, "::/0"));
        }
        Nacl {
            id: "acl-1".into(),
            entries,
            ledger: BTreeMap::new(),
        }
    }

    fn settings(first: u16, last: u16, quota: u16) -> IpBlocking {
        IpBlocking {
            rule_numbers: RuleBand { first, last },
            rules_per_direction: quota,
            block_hours: 24,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Applies a plan to the model, as EC2 would.
    fn applied(nacl: &Nacl, plan: &NaclPlan) -> Nacl {
        let mut n = nacl.clone();
        for op in &plan.ops {
            n.apply(op, op.written_entry());
        }
        n
    }

    #[test]
    fn blocks_both_directions_with_one_number_and_one_tag() {
        let n = default_nacl();
        let plan = plan_blocks(
            &n,
            &[ip("198.51.100.7")],
            &settings(80, 99, 20),
            NOW,
            &by("f1"),
        );
        assert_eq!(
            plan.results,
            vec![IpResult::Blocked {
                ip: ip("198.51.100.7"),
                number: 80
            }]
        );
        assert!(
            matches!(&plan.ops[0], Op::PutTag { number: 80, value, .. } if value.contains("until=2026-11-30T10:00:00Z"))
        );
        assert_eq!(
            plan.ops[1],
            Op::CreateEntry {
                number: 80,
                egress: false,
                cidr: "198.51.100.7/32".into()
            }
        );
        assert_eq!(
            plan.ops[2],
            Op::CreateEntry {
                number: 80,
                egress: true,
                cidr: "198.51.100.7/32".into()
            }
        );
    }

    #[test]
    fn ipv6_gets_a_128() {
        let plan = plan_blocks(
            &default_nacl(),
            &[ip("2001:db8::7")],
            &settings(80, 99, 20),
            NOW,
            &by("f1"),
        );
        assert!(plan.ops.contains(&Op::CreateEntry {
            number: 80,
            egress: false,
            cidr: "2001:db8::7/128".into()
        }));
    }

    #[test]
    fn the_same_ip_twice_gives_one_entry_and_a_later_expiry() {
        let n = default_nacl();
        let s = settings(80, 99, 20);
        let first = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.7")], &s, NOW, &by("f1")),
        );
        let later = NOW + Duration::hours(5);
        let second = plan_blocks(&first, &[ip("198.51.100.7")], &s, later, &by("f2"));
        assert_eq!(
            second.results,
            vec![IpResult::Extended {
                ip: ip("198.51.100.7"),
                number: 80
            }]
        );
        assert_eq!(second.ops.len(), 1, "only the tag: {:?}", second.ops);
        let after = applied(&first, &second);
        assert_eq!(after.entries.iter().filter(|e| e.number == 80).count(), 2);
        let l = &after.ledger[&(80, ip("198.51.100.7"))];
        assert_eq!(l.until, later + Duration::hours(24));
        assert_eq!(l.at, NOW, "first-blocked time is kept for eviction order");
    }

    #[test]
    fn eviction_never_removes_a_more_severe_findings_block() {
        let s = settings(80, 81, 20);
        let n = default_nacl();
        let at = |h: i64| NOW + Duration::hours(h);
        // 80: the oldest, for a HIGH finding; 81: newer, for a MEDIUM one.
        let n = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.1")],
                &s,
                at(0),
                &Requester::new("high", 8.0),
            ),
        );
        let n = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.2")],
                &s,
                at(1),
                &Requester::new("medium", 5.0),
            ),
        );
        // A LOW finding may evict neither.
        let low = plan_blocks(
            &n,
            &[ip("198.51.100.3")],
            &s,
            at(2),
            &Requester::new("low", 2.0),
        );
        assert!(low.evictions.is_empty() && low.ops.is_empty(), "{low:?}");
        assert!(
            matches!(&low.results[..], [IpResult::Refused { reason, .. }] if reason.contains("more severe than this one (2.0)")),
            "{:?}",
            low.results
        );
        // A MEDIUM one evicts the MEDIUM block, although the HIGH one is older.
        let medium = plan_blocks(
            &n,
            &[ip("198.51.100.4")],
            &s,
            at(3),
            &Requester::new("medium-2", 5.0),
        );
        assert_eq!(
            medium.evictions,
            vec![Eviction {
                ip: ip("198.51.100.2"),
                number: 81,
                for_ip: ip("198.51.100.4")
            }]
        );
        // A block from before severities were recorded is never evicted.
        let mut legacy = n.clone();
        for l in legacy.ledger.values_mut() {
            l.severity_tenths = None;
        }
        let critical = plan_blocks(
            &legacy,
            &[ip("198.51.100.5")],
            &s,
            at(4),
            &Requester::new("critical", 9.5),
        );
        assert!(critical.evictions.is_empty(), "{critical:?}");
        // A lower finding extending a higher one's block keeps the higher severity.
        let again = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.1")],
                &s,
                at(5),
                &Requester::new("low", 2.0),
            ),
        );
        assert_eq!(
            again.ledger[&(80, ip("198.51.100.1"))].severity_tenths,
            Some(80)
        );
    }

    #[test]
    fn a_full_band_evicts_only_firebreaks_oldest() {
        let s = settings(80, 82, 20);
        let mut n = default_nacl();
        // Someone else's deny at 81 (no tag): it must survive.
        n.entries.push(entry(81, false, false, "203.0.113.0/24"));
        n.entries.push(entry(81, true, false, "203.0.113.0/24"));
        let n = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("old")),
        );
        let n = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.2")],
                &s,
                NOW + Duration::hours(1),
                &by("newer"),
            ),
        );
        assert_eq!(
            n.ledger.keys().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![80, 82]
        );
        let plan = plan_blocks(
            &n,
            &[ip("198.51.100.3")],
            &s,
            NOW + Duration::hours(2),
            &by("new"),
        );
        assert_eq!(
            plan.evictions,
            vec![Eviction {
                ip: ip("198.51.100.1"),
                number: 80,
                for_ip: ip("198.51.100.3")
            }]
        );
        assert_eq!(
            plan.results,
            vec![IpResult::Blocked {
                ip: ip("198.51.100.3"),
                number: 80
            }]
        );
        let after = applied(&n, &plan);
        assert!(after
            .entries
            .contains(&entry(81, false, false, "203.0.113.0/24")));
        assert!(after
            .entries
            .contains(&entry(81, true, false, "203.0.113.0/24")));
        assert!(!plan.ops.iter().any(|o| matches!(
            o,
            Op::DeleteEntry { number: 81, .. } | Op::DeleteTag { number: 81, .. }
        )));
    }

    #[test]
    fn a_band_of_foreign_rules_refuses_and_changes_nothing() {
        let s = settings(80, 81, 20);
        let mut n = default_nacl();
        for num in [80, 81] {
            n.entries.push(entry(num, false, false, "203.0.113.0/24"));
        }
        let plan = plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("f"));
        assert!(plan.ops.is_empty());
        assert!(
            matches!(&plan.results[0], IpResult::Refused { reason, .. } if reason.contains("taken by rules Firebreak did not write")),
            "{:?}",
            plan.results
        );
    }

    #[test]
    fn the_quota_counts_existing_rules_per_family() {
        let s = settings(80, 99, 4);
        let mut n = default_nacl();
        // 100 and the default deny are there; two more IPv4 rules fill the quota of 4 inbound.
        n.entries.push(entry(200, false, true, "10.0.0.0/8"));
        n.entries.push(entry(201, false, true, "172.16.0.0/12"));
        let plan = plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("f"));
        assert!(
            matches!(&plan.results[0], IpResult::Refused { reason, .. } if reason.contains("quota")),
            "{:?}",
            plan.results
        );
        // IPv6 is counted apart: 101 and its default deny.
        let plan = plan_blocks(&n, &[ip("2001:db8::1")], &s, NOW, &by("f"));
        assert!(
            matches!(plan.results[0], IpResult::Blocked { .. }),
            "{:?}",
            plan.results
        );
    }

    #[test]
    fn a_full_quota_evicts_firebreaks_oldest_of_the_same_family() {
        let s = settings(80, 99, 4);
        let mut n = default_nacl();
        n.entries.push(entry(200, false, true, "10.0.0.0/8"));
        let n = applied(
            &n,
            &plan_blocks(&n, &[ip("2001:db8::1")], &s, NOW, &by("v6")),
        );
        let n = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.1")],
                &s,
                NOW + Duration::hours(1),
                &by("v4"),
            ),
        );
        let plan = plan_blocks(
            &n,
            &[ip("198.51.100.2")],
            &s,
            NOW + Duration::hours(2),
            &by("f"),
        );
        assert_eq!(plan.evictions.len(), 1);
        assert_eq!(
            plan.evictions[0].ip,
            ip("198.51.100.1"),
            "the IPv6 block is older but frees no IPv4 room"
        );
    }

    #[test]
    fn blocks_sit_below_the_allow_rule_that_would_let_the_ip_in() {
        let s = settings(80, 99, 20);
        let mut n = default_nacl();
        n.entries.push(entry(85, false, true, "198.51.100.0/24"));
        n.entries.push(entry(82, false, false, "192.0.2.0/24"));
        for num in [80, 81, 83, 84] {
            n.entries.push(entry(num, true, false, "192.0.2.0/24"));
        }
        let plan = plan_blocks(&n, &[ip("198.51.100.9")], &s, NOW, &by("f"));
        assert!(
            matches!(&plan.results[0], IpResult::Refused { .. }),
            "{:?}",
            plan.results
        );
        // An IP that rule 85 does not allow can use 86.
        let plan = plan_blocks(&n, &[ip("203.0.113.9")], &s, NOW, &by("f"));
        assert_eq!(
            plan.results,
            vec![IpResult::Blocked {
                ip: ip("203.0.113.9"),
                number: 85 + 1
            }]
        );
    }

    #[test]
    fn an_allow_rule_below_the_band_refuses_with_the_reason() {
        let s = settings(80, 99, 20);
        let mut n = default_nacl();
        n.entries.push(entry(10, false, true, "0.0.0.0/0"));
        let plan = plan_blocks(&n, &[ip("198.51.100.9")], &s, NOW, &by("f"));
        assert!(
            matches!(&plan.results[0], IpResult::Refused { reason, .. } if reason.contains("allow rule 10")),
            "{:?}",
            plan.results
        );
    }

    #[test]
    fn an_ip_others_already_deny_both_ways_gets_nothing() {
        let mut n = default_nacl();
        n.entries.push(entry(50, false, false, "198.51.100.0/24"));
        n.entries.push(entry(50, true, false, "198.51.100.0/24"));
        let plan = plan_blocks(
            &n,
            &[ip("198.51.100.9")],
            &settings(80, 99, 20),
            NOW,
            &by("f"),
        );
        assert_eq!(
            plan.results,
            vec![IpResult::AlreadyDenied {
                ip: ip("198.51.100.9"),
                numbers: vec![50]
            }]
        );
        assert!(plan.ops.is_empty());
    }

    #[test]
    fn a_tag_whose_entry_was_replaced_owns_nothing() {
        let s = settings(80, 99, 20);
        let n = default_nacl();
        let mut n = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("f")),
        );
        // Someone replaced rule 80 with their own entries.
        n.entries.retain(|e| e.number != 80);
        n.entries.push(entry(80, false, false, "192.0.2.0/24"));
        n.entries.push(entry(80, true, false, "192.0.2.0/24"));
        let (ops, expired) = plan_sweep(&n, s.rule_numbers, NOW + Duration::days(2));
        assert_eq!(
            ops,
            vec![Op::DeleteTag {
                number: 80,
                ip: ip("198.51.100.1"),
                value: n.ledger[&(80, ip("198.51.100.1"))].tag_value(),
            }]
        );
        assert!(expired.is_empty(), "their rule 80 is not ours to remove");
    }

    #[test]
    fn the_sweep_removes_only_expired_blocks_of_ours() {
        let s = settings(80, 99, 20);
        let mut n = default_nacl();
        n.entries.push(entry(90, false, false, "203.0.113.0/24"));
        let n = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("old")),
        );
        let n = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.2")],
                &s,
                NOW + Duration::hours(20),
                &by("new"),
            ),
        );
        let (ops, expired) = plan_sweep(&n, s.rule_numbers, NOW + Duration::hours(25));
        assert_eq!(
            expired.iter().map(|l| l.ip).collect::<Vec<_>>(),
            vec![ip("198.51.100.1")]
        );
        assert_eq!(
            ops,
            vec![
                Op::DeleteEntry {
                    number: 80,
                    egress: false
                },
                Op::DeleteEntry {
                    number: 80,
                    egress: true
                },
                Op::DeleteTag {
                    number: 80,
                    ip: ip("198.51.100.1"),
                    value: n.ledger[&(80, ip("198.51.100.1"))].tag_value(),
                },
            ]
        );
    }

    #[test]
    fn a_release_removes_one_ips_or_one_findings_blocks_and_nothing_else() {
        let s = settings(80, 99, 20);
        let mut n = default_nacl();
        // Someone else's deny of the same IP outside the band stays.
        n.entries.push(entry(150, false, false, "198.51.100.1/32"));
        let n = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("f-1")),
        );
        let n = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.2")], &s, NOW, &by("f-2")),
        );
        let (ops, released) = plan_release(&n, s.rule_numbers, NOW, |l| l.ip == ip("198.51.100.1"));
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].number, 80);
        let after = applied(
            &n,
            &NaclPlan {
                ops,
                ..NaclPlan::default()
            },
        );
        assert!(!after.denies_at(80, false, "198.51.100.1/32".parse().unwrap()));
        assert!(!after.denies_at(80, true, "198.51.100.1/32".parse().unwrap()));
        assert!(after.denies_at(150, false, "198.51.100.1/32".parse().unwrap()));
        assert!(!after.ledger.contains_key(&(80, ip("198.51.100.1"))));
        assert_eq!(
            after.ours(s.rule_numbers).len(),
            1,
            "the other IP's block stays"
        );
        // A second release finds nothing to do.
        let (again, none) =
            plan_release(&after, s.rule_numbers, NOW, |l| l.ip == ip("198.51.100.1"));
        assert!(again.is_empty() && none.is_empty());
        // By finding: only that finding's.
        let (_, by_finding) = plan_release(&n, s.rule_numbers, NOW, |l| l.finding == "f-2");
        assert_eq!(
            by_finding.iter().map(|l| l.ip).collect::<Vec<_>>(),
            vec![ip("198.51.100.2")]
        );
    }

    #[test]
    fn a_release_drops_a_tag_without_its_entry_only_past_the_grace_period() {
        let mut n = default_nacl();
        let tag_only = LedgerEntry {
            number: 85,
            ip: ip("198.51.100.9"),
            at: NOW,
            until: NOW + Duration::days(1),
            severity_tenths: Some(50),
            finding: "f-9".into(),
        };
        n.ledger.insert((85, tag_only.ip), tag_only);
        let band = settings(80, 99, 20).rule_numbers;
        let wanted = |l: &LedgerEntry| l.ip == ip("198.51.100.9");
        assert!(
            plan_release(&n, band, NOW, wanted).0.is_empty(),
            "still being written"
        );
        let (ops, _) = plan_release(&n, band, NOW + Duration::hours(1), wanted);
        assert!(
            matches!(ops.as_slice(), [Op::DeleteTag { number: 85, .. }]),
            "{ops:?}"
        );
    }

    #[test]
    fn a_forged_tag_outside_the_band_never_makes_the_sweep_touch_that_rule() {
        let mut n = default_nacl();
        // Someone's deny at 150, and a tag that claims it as an expired block of ours.
        n.entries.push(entry(150, false, false, "198.51.100.5/32"));
        n.entries.push(entry(150, true, false, "198.51.100.5/32"));
        let forged = LedgerEntry {
            number: 150,
            ip: ip("198.51.100.5"),
            at: NOW - Duration::days(3),
            until: NOW - Duration::days(2),
            severity_tenths: Some(50),
            finding: "forged".into(),
        };
        n.ledger.insert((150, forged.ip), forged);
        let (ops, expired) = plan_sweep(
            &n,
            RuleBand {
                first: 80,
                last: 99,
            },
            NOW,
        );
        assert!(ops.is_empty() && expired.is_empty(), "{ops:?}");
        // Nor the block: their rule 150 (below no allow, so it denies nothing) is left
        // alone and the IP gets a block of ours in the band, not an "extension" of theirs.
        let plan = plan_blocks(
            &n,
            &[ip("198.51.100.5")],
            &settings(80, 99, 20),
            NOW,
            &by("f"),
        );
        assert_eq!(
            plan.results,
            vec![IpResult::Blocked {
                ip: ip("198.51.100.5"),
                number: 80
            }]
        );
        assert!(!plan.ops.iter().any(|o| matches!(
            o,
            Op::DeleteEntry { number: 150, .. } | Op::DeleteTag { number: 150, .. }
        )));
    }

    #[test]
    fn a_stale_tag_is_dropped_only_after_the_grace_period() {
        let s = settings(80, 99, 20);
        let mut n = default_nacl();
        // A response that lost the race for 80 and has not taken its tag back yet.
        let young = LedgerEntry {
            number: 80,
            ip: ip("198.51.100.1"),
            at: NOW - Duration::minutes(1),
            until: NOW + Duration::hours(24),
            severity_tenths: Some(50),
            finding: "racing".into(),
        };
        n.ledger.insert((80, young.ip), young);
        let plan = plan_blocks(&n, &[ip("198.51.100.2")], &s, NOW, &by("f"));
        assert!(
            !plan.ops.iter().any(|o| matches!(o, Op::DeleteTag { .. })),
            "{:?}",
            plan.ops
        );
        assert_eq!(
            plan.results,
            vec![IpResult::Blocked {
                ip: ip("198.51.100.2"),
                number: 81
            }],
            "a tagged number is not free"
        );
        let later = plan_blocks(&n, &[], &s, NOW + STALE_GRACE, &by("f"));
        assert_eq!(
            later.ops,
            vec![Op::DeleteTag {
                number: 80,
                ip: ip("198.51.100.1"),
                value: n.ledger[&(80, ip("198.51.100.1"))].tag_value(),
            }]
        );
    }

    /// 198.51.100.1 blocked at 80 by one response (`a`), and tagged at 81 by another
    /// with its deny written inbound, and outbound too when `complete` (`both`).
    fn blocked_at_80_and_81(complete: bool) -> (Nacl, Nacl) {
        let n = default_nacl();
        let s = settings(80, 99, 20);
        let a = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("a")),
        );
        let mut both = a.clone();
        let l81 = LedgerEntry {
            number: 81,
            ..a.ledger.values().next().unwrap().clone()
        };
        both.ledger.insert((81, l81.ip), l81);
        both.entries
            .push(entry(81, false, false, "198.51.100.1/32"));
        if complete {
            both.entries.push(entry(81, true, false, "198.51.100.1/32"));
        }
        (a, both)
    }

    #[test]
    fn an_ip_blocked_twice_at_once_keeps_its_lowest_number() {
        let s = settings(80, 99, 20);
        // Two responses, each unaware of the other, blocked the same IP at 80 and 81.
        let (a, both) = blocked_at_80_and_81(true);
        let tidy = plan_blocks(&both, &[], &s, NOW, &by("b"));
        let after = applied(&both, &tidy);
        assert_eq!(after, a, "81 goes, 80 stays: {:?}", tidy.ops);
    }

    #[test]
    fn a_duplicate_still_being_written_is_left_to_its_writer() {
        let s = settings(80, 99, 20);
        // Another response has tagged 81 and written its inbound deny, not yet its
        // outbound one: deleting what is there now would leave its outbound deny untagged.
        let (a, both) = blocked_at_80_and_81(false);
        let tidy = plan_blocks(&both, &[], &s, NOW, &by("a"));
        assert_eq!(tidy.ops, vec![], "81 is left to its writer");
        // Its writer gone for longer than the grace period: the half block is taken away.
        let later = plan_blocks(&both, &[], &s, NOW + STALE_GRACE, &by("a"));
        assert_eq!(applied(&both, &later), a, "{:?}", later.ops);
    }

    /// Two responses block 198.51.100.1 at 80 under one tag key; the second's tag value
    /// replaced the first's. The first taking back its own value removes nothing.
    #[test]
    fn a_tag_is_deleted_only_while_it_has_the_value_read() {
        let s = settings(80, 99, 20);
        let n = default_nacl();
        let first = applied(
            &n,
            &plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("a")),
        );
        let second = applied(
            &n,
            &plan_blocks(
                &n,
                &[ip("198.51.100.1")],
                &s,
                NOW + Duration::seconds(3),
                &by("b"),
            ),
        );
        let mine = first.ledger[&(80, ip("198.51.100.1"))].tag_value();
        let mut now = second.clone();
        now.apply(
            &Op::DeleteTag {
                number: 80,
                ip: ip("198.51.100.1"),
                value: mine,
            },
            None,
        );
        assert_eq!(now, second, "the other response's tag stays");
        let theirs = second.ledger[&(80, ip("198.51.100.1"))].tag_value();
        now.apply(
            &Op::DeleteTag {
                number: 80,
                ip: ip("198.51.100.1"),
                value: theirs,
            },
            None,
        );
        assert!(now.ledger.is_empty());
    }

    #[test]
    fn a_deny_of_ours_left_without_its_tag_gets_it_back() {
        let s = settings(80, 99, 20);
        let n = default_nacl();
        let plan = plan_blocks(&n, &[ip("198.51.100.1")], &s, NOW, &by("a"));
        let mut after = applied(&n, &plan);
        assert!(lost_tags(&after, &plan.ops).is_empty(), "the tag is there");
        // Another response sharing the key took the tag away: in one direction or both,
        // the deny is put back under its tag.
        after.ledger.clear();
        let put_tag: Vec<Op> = plan
            .ops
            .iter()
            .filter(|o| matches!(o, Op::PutTag { .. }))
            .cloned()
            .collect();
        assert_eq!(lost_tags(&after, &plan.ops), put_tag);
        after.entries.retain(|e| !(e.number == 80 && e.egress));
        assert_eq!(lost_tags(&after, &plan.ops), put_tag);
        // Gone from both directions (evicted, swept) or replaced by a foreign deny: nothing.
        after.entries.retain(|e| e.number != 80);
        assert!(lost_tags(&after, &plan.ops).is_empty());
        after
            .entries
            .push(entry(80, false, false, "198.51.100.0/24"));
        assert!(lost_tags(&after, &plan.ops).is_empty());
    }

    proptest::proptest! {
        /// Whatever is in the NACL and however many IPs come, a plan never deletes or
        /// writes a rule number outside the band, never touches an entry without a
        /// ledger tag, and never exceeds the quota.
        #[test]
        fn plans_never_touch_foreign_rules_or_break_the_quota(
            foreign in proptest::collection::vec((1i32..120, proptest::bool::ANY, proptest::bool::ANY, 0u8..255), 0..30),
            ips in proptest::collection::vec(0u8..255, 1..30),
        ) {
            let s = settings(80, 99, 20);
            let mut n = default_nacl();
            for (num, egress, allow, x) in foreign {
                if n.at(num, egress).is_none() {
                    n.entries.push(entry(num, egress, allow, &format!("192.0.{x}.0/24")));
                }
            }
            let foreign_entries = n.entries.clone();
            let mut current = n;
            for (i, x) in ips.iter().enumerate() {
                let plan = plan_blocks(&current, &[ip(&format!("198.51.100.{x}"))], &s, NOW + Duration::minutes(i as i64), &by("f"));
                for op in &plan.ops {
                    match op {
                        Op::CreateEntry { number, .. } | Op::DeleteEntry { number, .. } | Op::PutTag { number, .. } | Op::DeleteTag { number, .. } => {
                            proptest::prop_assert!((80..=99).contains(number), "{op:?}");
                        }
                    }
                }
                current = applied(&current, &plan);
                for e in &foreign_entries {
                    proptest::prop_assert!(current.entries.contains(e), "foreign entry {e:?} was removed");
                }
                for egress in [false, true] {
                    let v4 = current.entries.iter().filter(|e| e.egress == egress && e.number <= LAST_USER_RULE && e.cidr.addr().is_ipv4()).count();
                    let before = foreign_entries.iter().filter(|e| e.egress == egress && e.number <= LAST_USER_RULE && e.cidr.addr().is_ipv4()).count();
                    // The quota of 20 counts the default deny: 19 numbered rules at most.
                    proptest::prop_assert!(v4 <= before.max(19), "quota exceeded: {v4}");
                }
            }
        }
    }
}
