//! Severity on GuardDuty's 0–10 scale with its band. GuardDuty: LOW 1.0–3.9, MEDIUM
//! 4.0–6.9, HIGH 7.0–8.9, CRITICAL 9.0+ (attack sequences). ASFF findings carry a label
//! and a 0–100 `Normalized` score, which maps to the same scale divided by ten.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeverityBand {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityBand {
    pub fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            SeverityBand::Critical
        } else if score >= 7.0 {
            SeverityBand::High
        } else if score >= 4.0 {
            SeverityBand::Medium
        } else if score >= 1.0 {
            SeverityBand::Low
        } else {
            SeverityBand::Informational
        }
    }

    /// The lowest score in the band: what `minSeverity: "HIGH"` means in a policy.
    pub fn min_score(self) -> f64 {
        match self {
            SeverityBand::Informational => 0.0,
            SeverityBand::Low => 1.0,
            SeverityBand::Medium => 4.0,
            SeverityBand::High => 7.0,
            SeverityBand::Critical => 9.0,
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        Some(match label {
            "INFORMATIONAL" => SeverityBand::Informational,
            "LOW" => SeverityBand::Low,
            "MEDIUM" => SeverityBand::Medium,
            "HIGH" => SeverityBand::High,
            "CRITICAL" => SeverityBand::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for SeverityBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeverityBand::Informational => "INFORMATIONAL",
            SeverityBand::Low => "LOW",
            SeverityBand::Medium => "MEDIUM",
            SeverityBand::High => "HIGH",
            SeverityBand::Critical => "CRITICAL",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Severity {
    /// GuardDuty scale, 0.0–10.0.
    pub score: f64,
    pub band: SeverityBand,
}

impl Severity {
    pub fn from_guardduty(score: f64) -> Result<Self, String> {
        if !(0.0..=10.0).contains(&score) {
            return Err(format!(
                "severity {score} is outside GuardDuty's 0 to 10 scale"
            ));
        }
        Ok(Severity {
            score,
            band: SeverityBand::from_score(score),
        })
    }

    /// ASFF: the label wins when present (it is what analysts see); the score comes from
    /// `Normalized`, or from the label's lower bound when there is no score.
    pub fn from_asff(label: Option<&str>, normalized: Option<f64>) -> Result<Self, String> {
        let band = match label {
            Some(l) => Some(SeverityBand::parse(l).ok_or_else(|| {
                format!(
                    "unknown severity label {}: expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL",
                    crate::error::Shown(l)
                )
            })?),
            None => None,
        };
        if let Some(n) = normalized {
            if !(0.0..=100.0).contains(&n) {
                return Err(format!("normalized severity {n} is outside 0 to 100"));
            }
        }
        match (band, normalized) {
            (Some(band), Some(n)) => Ok(Severity {
                score: n / 10.0,
                band,
            }),
            (Some(band), None) => Ok(Severity {
                score: band.min_score(),
                band,
            }),
            (None, Some(n)) => Ok(Severity {
                score: n / 10.0,
                band: SeverityBand::from_score(n / 10.0),
            }),
            (None, None) => Err("neither Label nor Normalized is present".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guardduty_bands() {
        let band = |s| Severity::from_guardduty(s).unwrap().band;
        assert_eq!(band(0.5), SeverityBand::Informational);
        assert_eq!(band(1.0), SeverityBand::Low);
        assert_eq!(band(3.9), SeverityBand::Low);
        assert_eq!(band(4.0), SeverityBand::Medium);
        assert_eq!(band(6.9), SeverityBand::Medium);
        assert_eq!(band(7.0), SeverityBand::High);
        assert_eq!(band(8.9), SeverityBand::High);
        assert_eq!(band(9.0), SeverityBand::Critical);
        assert!(Severity::from_guardduty(11.0).is_err());
        assert!(Severity::from_guardduty(-1.0).is_err());
    }

    #[test]
    fn asff_severity() {
        let s = Severity::from_asff(Some("MEDIUM"), Some(40.0)).unwrap();
        assert_eq!((s.score, s.band), (4.0, SeverityBand::Medium));
        let s = Severity::from_asff(None, Some(0.0)).unwrap();
        assert_eq!(s.band, SeverityBand::Informational);
        let s = Severity::from_asff(Some("HIGH"), None).unwrap();
        assert_eq!(s.score, 7.0);
        assert!(Severity::from_asff(Some("SEVERE"), None).is_err());
        assert!(Severity::from_asff(None, None).is_err());
        assert!(Severity::from_asff(None, Some(101.0)).is_err());
    }
}
