//! Typed errors. The `error_type()` of each is what a Step Functions `Retry`/`Catch`
//! matches on, so those names are part of Firebreak's interface: never rename them.

use std::fmt;

/// Why an input was refused. Every variant that concerns a field names its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("input is {size} bytes; the limit is {limit} bytes (the EventBridge and Step Functions payload limit)")]
    TooLarge { size: usize, limit: usize },
    #[error("input is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("not a finding: {reason}")]
    NotAFinding { reason: String },
    #[error("{path}: required field is missing")]
    MissingField { path: String },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: {reason}")]
    InvalidValue { path: String, reason: String },
}

impl InputError {
    /// `value` read as a `T`, or the JSON path of the first field that is wrong.
    pub fn read<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, InputError> {
        serde_path_to_error::deserialize(value).map_err(|e| InputError::InvalidValue {
            path: format!("$.{}", e.path()),
            reason: e.into_inner().to_string(),
        })
    }

    /// The JSON path the error is about, when it is about one field.
    pub fn path(&self) -> Option<&str> {
        match self {
            InputError::MissingField { path }
            | InputError::WrongType { path, .. }
            | InputError::InvalidValue { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Stable name for state-machine routing.
    pub fn error_type(&self) -> &'static str {
        match self {
            InputError::NotAFinding { .. } => "NotAFinding",
            _ => "InvalidInput",
        }
    }
}

/// A policy document that does not parse or validate. Nothing acts on a broken policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {source_name}: {path}: {reason}")]
pub struct PolicyError {
    /// Where the policy came from (a file, an SSM parameter, the built-in default).
    pub source_name: String,
    /// JSON path inside the policy document.
    pub path: String,
    pub reason: String,
}

/// Errors a runbook returns to the state machine.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The target of a planned action is gone (terminated, deleted) by the time the
    /// runbook acts. `error_type` names what (`InstanceNotFound`, …) for ASL `Catch`.
    #[error("{message}")]
    TargetGone {
        error_type: &'static str,
        message: String,
    },
    /// An AWS call failed after the SDK's own retries. `transient` marks throttling and
    /// 5xx answers, which the state machine retries with backoff.
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
        transient: bool,
    },
    /// The deployment left out something the runbook needs (an environment variable):
    /// nothing was done.
    #[error("misconfigured: {message}")]
    Config { message: String },
    /// A runbook failed after it had already changed something: the error, and every
    /// change made before it, so that the audit trail (which records the cause) lists
    /// them all.
    #[error("{source}; {} made before the failure: {}", changes.len(), listed(changes))]
    PartlyDone {
        source: Box<RunbookError>,
        changes: Vec<crate::outcome::Change>,
    },
}

fn listed(changes: &[crate::outcome::Change]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {}: {} -> {}", c.resource, c.what, c.before, c.after))
        .collect::<Vec<_>>()
        .join("; ")
}

impl RunbookError {
    /// The AWS error code of a failed call (`NetworkAclEntryAlreadyExists`, …): what
    /// `aws::aws_error` puts first in the message.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            RunbookError::Aws { message, .. } => message.split_once(':').map(|(code, _)| code),
            RunbookError::PartlyDone { source, .. } => source.aws_code(),
            _ => None,
        }
    }

    /// This error, carrying the changes made before it (none: the error as it is).
    pub fn after_changes(self, made: &[crate::outcome::Change]) -> RunbookError {
        if made.is_empty() {
            return self;
        }
        match self {
            RunbookError::PartlyDone { source, changes } => RunbookError::PartlyDone {
                source,
                changes: made.iter().cloned().chain(changes).collect(),
            },
            e => RunbookError::PartlyDone {
                source: Box::new(e),
                changes: made.to_vec(),
            },
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            RunbookError::Input(e) => e.error_type(),
            RunbookError::Policy(_) => "InvalidPolicy",
            RunbookError::TargetGone { error_type, .. } => error_type,
            RunbookError::Aws {
                transient: true, ..
            } => "AwsTransientError",
            RunbookError::Aws { .. } => "AwsCallFailed",
            RunbookError::Config { .. } => "Misconfigured",
            // Not retried by the machine even when the cause was transient: a retry would
            // find these changes in place and no longer report them.
            RunbookError::PartlyDone { source, .. } => match source.error_type() {
                "AwsTransientError" => "AwsCallFailed",
                t => t,
            },
        }
    }
}

/// Shows an untrusted value inside an error message: quoted, escaped, and cut short so
/// that a 100 kB string does not become a 100 kB log line.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        let mut cut: String = self.0.chars().take(MAX).collect();
        let total = self.0.chars().count();
        if total > MAX {
            cut.push('…');
            write!(f, "{cut:?} ({total} characters)")
        } else {
            write!(f, "{cut:?}")
        }
    }
}

/// The runtime reports `error_type` as `errorType`, which is what ASL `Retry` and `Catch`
/// match on; the message becomes the `Cause`.
impl From<RunbookError> for lambda_runtime::Diagnostic {
    fn from(e: RunbookError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Logs a runbook's failure as one structured line, with the type ASL routes on, and
/// hands the error back for the runtime to report.
pub fn logged(runbook: &'static str, e: RunbookError) -> RunbookError {
    tracing::error!(runbook, error_type = e.error_type(), error = %e, "{runbook} failed");
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Change;

    fn change(what: &str) -> Change {
        Change {
            resource: "i-0a1b2c3d4e5f60718".into(),
            what: what.into(),
            before: "none".into(),
            after: "snap-1".into(),
        }
    }

    fn throttled() -> RunbookError {
        RunbookError::Aws {
            operation: "ec2:ModifyInstanceAttribute",
            message: "RequestLimitExceeded: slow down".into(),
            transient: true,
        }
    }

    #[test]
    fn a_failure_after_changes_lists_them_and_is_not_retried_by_the_machine() {
        let e = throttled().after_changes(&[change("snapshot")]);
        assert_eq!(
            e.error_type(),
            "AwsCallFailed",
            "a retry would hide what this attempt changed"
        );
        assert_eq!(e.aws_code(), Some("RequestLimitExceeded"));
        let text = e.to_string();
        assert!(
            text.starts_with("ec2:ModifyInstanceAttribute failed: RequestLimitExceeded"),
            "{text}"
        );
        assert!(
            text.contains(
                "1 made before the failure: i-0a1b2c3d4e5f60718 snapshot: none -> snap-1"
            ),
            "{text}"
        );
        // An outer step adds its own earlier changes in front.
        let outer = e.after_changes(&[change("tag")]);
        assert!(
            matches!(&outer, RunbookError::PartlyDone { changes, .. } if changes.len() == 2 && changes[0].what == "tag")
        );
    }

    #[test]
    fn without_changes_the_error_stays_as_it_is() {
        assert_eq!(
            throttled().after_changes(&[]).error_type(),
            "AwsTransientError"
        );
    }
}
