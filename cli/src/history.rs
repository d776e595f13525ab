//! An execution's history, reduced to what a person reads: each state, how often it was
//! entered, how long it took, whether it succeeded, failed or was never reached. Pure:
//! the AWS side hands over plain events.

use serde::Serialize;

/// One history event, as far as it matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The state's name, on `…StateEntered` and `…StateExited`.
    pub name: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Succeeded,
    Failed,
    Running,
    NotReached,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::NotReached => "not-reached",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRun {
    pub name: String,
    pub entered: u32,
    pub exited: u32,
    /// Time from entry to exit, summed over every entry (Map iterations run a state often).
    pub total_ms: i64,
    pub failed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    first_entered_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// In the order they were first entered.
    pub states: Vec<StateRun>,
    pub finished: bool,
    pub failed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub duration_ms: i64,
}

impl Summary {
    pub fn run(&self, name: &str) -> Option<&StateRun> {
        self.states.iter().find(|s| s.name == name)
    }

    pub fn status(&self, name: &str) -> Status {
        match self.run(name) {
            None => Status::NotReached,
            Some(r) if r.failed => Status::Failed,
            Some(r) if r.exited > 0 => Status::Succeeded,
            Some(_) if !self.finished => Status::Running,
            // Entered, never left, and the execution is over: it is where it broke.
            Some(_) => Status::Failed,
        }
    }
}

pub fn summarise(events: &[Event]) -> Summary {
    let mut s = Summary::default();
    // States entered and not yet left, innermost last, with their entry time.
    let mut open: Vec<(String, i64)> = Vec::new();
    let start = events.first().map(|e| e.at_ms).unwrap_or(0);
    for e in events {
        let kind = e.kind.as_str();
        if kind.ends_with("StateEntered") {
            let Some(name) = e.name.clone() else { continue };
            match s.states.iter_mut().find(|r| r.name == name) {
                Some(r) => r.entered += 1,
                None => s.states.push(StateRun {
                    name: name.clone(),
                    entered: 1,
                    exited: 0,
                    total_ms: 0,
                    failed: false,
                    error: None,
                    first_entered_ms: e.at_ms,
                }),
            }
            if kind == "FailStateEntered" {
                if let Some(r) = s.states.iter_mut().find(|r| r.name == name) {
                    r.failed = true;
                }
            }
            open.push((name, e.at_ms));
        } else if kind.ends_with("StateExited") {
            let Some(name) = e.name.as_deref() else {
                continue;
            };
            if let Some(i) = open.iter().rposition(|(n, _)| n == name) {
                let (_, entered) = open.remove(i);
                if let Some(r) = s.states.iter_mut().find(|r| r.name == name) {
                    r.exited += 1;
                    r.total_ms += (e.at_ms - entered).max(0);
                }
            }
        } else if kind.starts_with("Execution")
            && matches!(
                kind,
                "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
            )
        {
            s.finished = true;
            s.failed = kind != "ExecutionSucceeded";
            s.error = e.error.clone();
            s.cause = e.cause.clone();
            s.duration_ms = e.at_ms - start;
        } else if kind.ends_with("Failed") || kind.ends_with("TimedOut") {
            // A task or map failure belongs to the innermost state still open.
            if let Some((name, _)) = open.last() {
                if let Some(r) = s.states.iter_mut().find(|r| &r.name == name) {
                    r.failed = true;
                    if r.error.is_none() {
                        r.error = e.error.clone();
                    }
                }
            }
        }
    }
    if !s.finished {
        s.duration_ms = events.last().map(|e| e.at_ms - start).unwrap_or(0);
    }
    s.states.sort_by_key(|r| r.first_entered_ms);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, at: i64, name: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            at_ms: at,
            name: name.map(str::to_owned),
            error: None,
            cause: None,
        }
    }

    #[test]
    fn a_caught_failure_marks_the_task_failed_and_the_catch_path_succeeded() {
        let events = vec![
            ev("ExecutionStarted", 0, None),
            ev("TaskStateEntered", 10, Some("Triage")),
            ev("TaskStateExited", 40, Some("Triage")),
            ev("TaskStateEntered", 41, Some("Isolate")),
            Event {
                error: Some("AwsCallFailed".into()),
                ..ev("TaskFailed", 90, None)
            },
            ev("TaskStateEntered", 91, Some("MarkNotified")),
            ev("TaskStateExited", 120, Some("MarkNotified")),
            ev("FailStateEntered", 121, Some("ResponseFailed")),
            Event {
                error: Some("ResponseFailed".into()),
                ..ev("ExecutionFailed", 122, None)
            },
        ];
        let s = summarise(&events);
        assert!(s.finished && s.failed);
        assert_eq!(s.error.as_deref(), Some("ResponseFailed"));
        assert_eq!(s.status("Triage"), Status::Succeeded);
        assert_eq!(s.run("Triage").unwrap().total_ms, 30);
        assert_eq!(s.status("Isolate"), Status::Failed);
        assert_eq!(
            s.run("Isolate").unwrap().error.as_deref(),
            Some("AwsCallFailed")
        );
        assert_eq!(s.status("MarkNotified"), Status::Succeeded);
        assert_eq!(s.status("ResponseFailed"), Status::Failed);
        assert_eq!(s.status("Audit"), Status::NotReached);
        assert_eq!(s.duration_ms, 122);
    }

    #[test]
    fn map_iterations_add_up() {
        let events = vec![
            ev("MapStateEntered", 0, Some("EachFinding")),
            ev("PassStateEntered", 1, Some("Step")),
            ev("PassStateExited", 4, Some("Step")),
            ev("PassStateEntered", 5, Some("Step")),
            ev("PassStateExited", 10, Some("Step")),
            ev("MapStateExited", 11, Some("EachFinding")),
        ];
        let s = summarise(&events);
        let step = s.run("Step").unwrap();
        assert_eq!((step.entered, step.exited, step.total_ms), (2, 2, 8));
        assert_eq!(
            s.states.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["EachFinding", "Step"]
        );
        assert!(!s.finished);
        assert_eq!(s.status("Step"), Status::Succeeded);
    }

    #[test]
    fn a_state_still_open_while_running_is_running() {
        let s = summarise(&[ev("TaskStateEntered", 0, Some("Triage"))]);
        assert_eq!(s.status("Triage"), Status::Running);
    }
}
