//! Firebreak's ledger of IP blocks: one tag per block on the network ACL itself,
//! `firebreak:block:<rule number>:<ip>` = `ip=<ip> at=<first blocked> until=<expiry>
//! sev=<GuardDuty-scale severity> finding=<id>`.
//!
//! The ledger lives on the NACL, so it is deleted with it and cannot point to another
//! account or region. It never decides alone: an entry is Firebreak's only when the tag
//! AND a deny entry for exactly that IP at that number exist. A tag without its entry is
//! stale (the entry was replaced by someone else, or another response won the number) and
//! is dropped once it is older than a grace period; an entry without a tag is someone
//! else's and is never touched.
//!
//! The IP is part of the key so that two responses racing for one rule number never
//! overwrite each other's tag: the one whose CreateNetworkAclEntry fails removes its own
//! tag, and the winner's tag still names the winner's entry. Two responses blocking the
//! same IP do share a key, so a tag is only ever deleted with the value it was read or
//! written with (EC2 then deletes it only if unchanged), and each response reads the NACL
//! again after its last write and puts back a tag its deny stands without. (Tags of the
//! older `firebreak:block:<rule number>` form are still read.)

use std::net::IpAddr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const TAG_PREFIX: &str = "firebreak:block:";
const TAG_VALUE_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub number: i32,
    pub ip: IpAddr,
    /// When Firebreak first blocked the IP here: eviction takes the oldest first.
    pub at: OffsetDateTime,
    pub until: OffsetDateTime,
    /// The highest severity of the findings that asked for this block, in tenths of
    /// GuardDuty's 0.0–10.0 scale (80 = 8.0): eviction never removes it for a finding of
    /// lower severity. `None` on tags written before severities were recorded: those are
    /// never evicted.
    pub severity_tenths: Option<u8>,
    pub finding: String,
}

pub fn tag_key(number: i32, ip: IpAddr) -> String {
    format!("{TAG_PREFIX}{number}:{ip}")
}

fn stamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Tag values allow letters, digits, spaces and `+ - = . _ : / @`; a finding id with
/// anything else is cut to what is allowed (the full id is in the audit record).
pub(crate) fn clean(finding: &str) -> String {
    finding
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-=._:/@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `8.0` → 80; anything outside 0.0–10.0 is no severity.
pub fn tenths(score: &str) -> Option<u8> {
    let s: f64 = score.parse().ok()?;
    (0.0..=10.0).contains(&s).then(|| (s * 10.0).round() as u8)
}

impl LedgerEntry {
    pub fn tag_value(&self) -> String {
        let sev = self
            .severity_tenths
            .map(|t| format!(" sev={}.{}", t / 10, t % 10))
            .unwrap_or_default();
        let v = format!(
            "ip={} at={} until={}{sev} finding={}",
            self.ip,
            stamp(self.at),
            stamp(self.until),
            clean(&self.finding)
        );
        v.chars().take(TAG_VALUE_MAX).collect()
    }

    /// The key of this entry's tag.
    pub fn key(&self) -> String {
        tag_key(self.number, self.ip)
    }

    /// `None` for a tag that is not ours or does not parse: such tags are left alone.
    pub fn from_tag(key: &str, value: &str) -> Option<LedgerEntry> {
        let rest = key.strip_prefix(TAG_PREFIX)?;
        let (number, key_ip) = match rest.split_once(':') {
            Some((n, ip)) => (n, Some(ip.parse::<IpAddr>().ok()?)),
            None => (rest, None),
        };
        let number: i32 = number.parse().ok()?;
        if !(1..=32766).contains(&number) {
            return None;
        }
        let (mut ip, mut at, mut until, mut severity, mut finding) =
            (None, None, None, None, String::new());
        for part in value.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "ip" => ip = v.parse().ok(),
                "at" => at = OffsetDateTime::parse(v, &Rfc3339).ok(),
                "until" => until = OffsetDateTime::parse(v, &Rfc3339).ok(),
                "sev" => severity = tenths(v),
                "finding" => finding = v.to_owned(),
                _ => {}
            }
        }
        let ip: IpAddr = ip?;
        // A key that names one IP and a value that names another is not ours.
        if key_ip.is_some_and(|k| k != ip) {
            return None;
        }
        Some(LedgerEntry {
            number,
            ip,
            at: at?,
            until: until?,
            severity_tenths: severity,
            finding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_tag_round_trips() {
        let e = LedgerEntry {
            number: 80,
            ip: "2001:db8::7".parse().unwrap(),
            at: datetime!(2026-11-29 10:00:00.5 UTC),
            until: datetime!(2026-11-30 10:00:00 UTC),
            severity_tenths: Some(80),
            finding: "arn:aws:guardduty:us-east-1:123456789012:detector/d/finding/f".into(),
        };
        let v = e.tag_value();
        assert_eq!(v, "ip=2001:db8::7 at=2026-11-29T10:00:00Z until=2026-11-30T10:00:00Z sev=8.0 finding=arn:aws:guardduty:us-east-1:123456789012:detector/d/finding/f");
        assert_eq!(e.key(), "firebreak:block:80:2001:db8::7");
        let back = LedgerEntry::from_tag(&e.key(), &v).unwrap();
        assert_eq!(back.ip, e.ip);
        assert_eq!(back.until, e.until);
        assert_eq!(back.severity_tenths, Some(80));
        assert_eq!(back.at, datetime!(2026-11-29 10:00:00 UTC));
        let older = LedgerEntry::from_tag(&e.key(), &v.replace(" sev=8.0", "")).unwrap();
        assert_eq!(
            older.severity_tenths, None,
            "a tag from before severities were recorded"
        );
    }

    #[test]
    fn foreign_or_broken_tags_are_not_ledger_entries() {
        let ok = "ip=1.2.3.4 at=2026-11-29T10:00:00Z until=2026-11-30T10:00:00Z finding=x";
        assert!(LedgerEntry::from_tag("Name", ok).is_none());
        assert!(LedgerEntry::from_tag("firebreak:block:abc", ok).is_none());
        assert!(LedgerEntry::from_tag("firebreak:block:0", ok).is_none());
        assert!(LedgerEntry::from_tag("firebreak:block:80", "ip=1.2.3.4").is_none());
        assert!(LedgerEntry::from_tag("firebreak:block:80", "garbage").is_none());
        assert!(
            LedgerEntry::from_tag("firebreak:block:80", ok).is_some(),
            "the older key form"
        );
        assert!(LedgerEntry::from_tag("firebreak:block:80:1.2.3.4", ok).is_some());
        assert!(
            LedgerEntry::from_tag("firebreak:block:80:1.2.3.5", ok).is_none(),
            "key and value name different IPs"
        );
        assert!(LedgerEntry::from_tag("firebreak:block:80:x", ok).is_none());
    }

    #[test]
    fn finding_ids_are_cut_to_tag_characters() {
        let e = LedgerEntry {
            number: 1,
            ip: "1.2.3.4".parse().unwrap(),
            at: datetime!(2026-11-29 10:00 UTC),
            until: datetime!(2026-11-29 11:00 UTC),
            severity_tenths: None,
            finding: format!("a;b,c{}", "x".repeat(400)),
        };
        let v = e.tag_value();
        assert!(v.contains("finding=a_b_c"));
        assert_eq!(v.chars().count(), 256);
        assert!(LedgerEntry::from_tag("firebreak:block:1", &v).is_some());
    }
}
