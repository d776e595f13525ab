//! The parts of an Amazon States Language definition that drills, reports and
//! `firebreak validate` need: the states of each scope (the machine, every Map iterator
//! and Parallel branch), their transitions, and the checks the local engines and
//! Firebreak's conventions ask for (JSONPath only, every transition lands, nothing is
//! unreachable). Pure.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

/// How one state leaves: the edges the report draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    Next,
    Choice,
    Default,
    Catch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub to: String,
    pub kind: EdgeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub name: String,
    pub kind: String,
    pub comment: Option<String>,
    pub edges: Vec<Edge>,
    pub end: bool,
    /// Map iterators and Parallel branches, in order.
    pub children: Vec<Scope>,
}

/// One `StartAt` + `States` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `$` for the machine, `$.States.EachFinding.Iterator` for an iterator.
    pub path: String,
    /// The state that owns the scope (`None` for the machine).
    pub owner: Option<String>,
    pub start_at: String,
    pub states: Vec<State>,
}

impl Scope {
    /// Every state of this scope and the scopes below it, depth first.
    pub fn all_states(&self) -> Vec<&State> {
        let mut out = Vec::new();
        for s in &self.states {
            out.push(s);
            for c in &s.children {
                out.extend(c.all_states());
            }
        }
        out
    }

    /// This scope and every scope below it.
    pub fn all_scopes(&self) -> Vec<&Scope> {
        let mut out = vec![self];
        for s in &self.states {
            for c in &s.children {
                out.extend(c.all_scopes());
            }
        }
        out
    }

    /// Layers by distance from `StartAt` (unreachable states last): the report's columns.
    pub fn layers(&self) -> Vec<Vec<&State>> {
        let by_name: BTreeMap<&str, &State> =
            self.states.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
        let mut queue = VecDeque::new();
        if by_name.contains_key(self.start_at.as_str()) {
            depth.insert(self.start_at.as_str(), 0);
            queue.push_back(self.start_at.as_str());
        }
        while let Some(name) = queue.pop_front() {
            let d = depth[name];
            if let Some(s) = by_name.get(name) {
                for e in &s.edges {
                    if by_name.contains_key(e.to.as_str()) && !depth.contains_key(e.to.as_str()) {
                        depth.insert(e.to.as_str(), d + 1);
                        queue.push_back(e.to.as_str());
                    }
                }
            }
        }
        let deepest = depth.values().copied().max().unwrap_or(0);
        let mut layers: Vec<Vec<&State>> = vec![Vec::new(); deepest + 2];
        for s in &self.states {
            let layer = depth.get(s.name.as_str()).copied().unwrap_or(deepest + 1);
            layers[layer].push(s);
        }
        layers.retain(|l| !l.is_empty());
        layers
    }
}

const KNOWN_TYPES: [&str; 8] = [
    "Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

/// A problem with the definition, with the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Parses a definition; every problem found is listed (none: it is sound).
pub fn parse(text: &str) -> (Option<Scope>, Vec<Problem>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                vec![problem(
                    format!("line {} column {}", e.line(), e.column()),
                    format!("not JSON: {e}"),
                )],
            )
        }
    };
    let mut problems = Vec::new();
    if value.get("QueryLanguage").and_then(Value::as_str) == Some("JSONata") {
        problems.push(problem(
            "$.QueryLanguage",
            "JSONata is not supported: Firebreak's machines are JSONPath only (what the local engines run)",
        ));
    }
    let scope = scope(&value, "$", None, &mut problems);
    (scope, problems)
}

fn scope(v: &Value, path: &str, owner: Option<&str>, problems: &mut Vec<Problem>) -> Option<Scope> {
    let Some(obj) = v.as_object() else {
        problems.push(problem(path, "must be an object with StartAt and States"));
        return None;
    };
    let start_at = match obj.get("StartAt").and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => {
            problems.push(problem(
                format!("{path}.StartAt"),
                "required: the name of the first state",
            ));
            String::new()
        }
    };
    let Some(states_obj) = obj.get("States").and_then(Value::as_object) else {
        problems.push(problem(
            format!("{path}.States"),
            "required: an object of states",
        ));
        return None;
    };
    if states_obj.is_empty() {
        problems.push(problem(format!("{path}.States"), "has no states"));
    }
    let mut states = Vec::new();
    for (name, sv) in states_obj {
        let at = format!("{path}.States.{name}");
        states.push(state(name, sv, &at, problems));
    }
    let names: BTreeSet<&str> = states.iter().map(|s| s.name.as_str()).collect();
    if !start_at.is_empty() && !names.contains(start_at.as_str()) {
        problems.push(problem(
            format!("{path}.StartAt"),
            format!("no state named {start_at:?}"),
        ));
    }
    for s in &states {
        for e in &s.edges {
            if !names.contains(e.to.as_str()) {
                let field = match e.kind {
                    EdgeKind::Next => "Next",
                    EdgeKind::Choice => "Choices[].Next",
                    EdgeKind::Default => "Default",
                    EdgeKind::Catch => "Catch[].Next",
                };
                problems.push(problem(
                    format!("{path}.States.{}.{field}", s.name),
                    format!("no state named {:?} in this scope", e.to),
                ));
            }
        }
    }
    let scope = Scope {
        path: path.to_owned(),
        owner: owner.map(str::to_owned),
        start_at,
        states,
    };
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([scope.start_at.as_str()]);
    while let Some(n) = queue.pop_front() {
        if !seen.insert(n) {
            continue;
        }
        if let Some(s) = scope.states.iter().find(|s| s.name == n) {
            queue.extend(s.edges.iter().map(|e| e.to.as_str()));
        }
    }
    if !scope.start_at.is_empty() {
        for s in &scope.states {
            if !seen.contains(s.name.as_str()) {
                problems.push(problem(
                    format!("{path}.States.{}", s.name),
                    "unreachable: no transition leads here from StartAt",
                ));
            }
        }
    }
    Some(scope)
}

fn state(name: &str, v: &Value, at: &str, problems: &mut Vec<Problem>) -> State {
    let obj = v.as_object();
    let get = |k: &str| obj.and_then(|o| o.get(k));
    let kind = get("Type").and_then(Value::as_str).unwrap_or("").to_owned();
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        problems.push(problem(
            format!("{at}.Type"),
            format!(
                "{kind:?} is not a state type (one of {})",
                KNOWN_TYPES.join(", ")
            ),
        ));
    }
    if get("QueryLanguage").and_then(Value::as_str) == Some("JSONata") {
        problems.push(problem(
            format!("{at}.QueryLanguage"),
            "JSONata is not supported: JSONPath only",
        ));
    }
    if get("Assign").is_some() {
        problems.push(problem(
            format!("{at}.Assign"),
            "variables (Assign) are not supported by the local engines: pass data with ResultPath",
        ));
    }
    let mut edges = Vec::new();
    if let Some(n) = get("Next").and_then(Value::as_str) {
        edges.push(Edge {
            to: n.to_owned(),
            kind: EdgeKind::Next,
        });
    }
    let end = get("End").and_then(Value::as_bool) == Some(true);
    match kind.as_str() {
        "Task" | "Pass" | "Wait" | "Parallel" | "Map" if end == get("Next").is_some() => {
            problems.push(problem(at, "needs exactly one of Next and \"End\": true"));
        }
        "Choice" => {
            match get("Choices").and_then(Value::as_array) {
                Some(choices) if !choices.is_empty() => {
                    for (i, c) in choices.iter().enumerate() {
                        match c.get("Next").and_then(Value::as_str) {
                            Some(n) => edges.push(Edge {
                                to: n.to_owned(),
                                kind: EdgeKind::Choice,
                            }),
                            None => problems
                                .push(problem(format!("{at}.Choices[{i}].Next"), "required")),
                        }
                    }
                }
                _ => problems.push(problem(
                    format!("{at}.Choices"),
                    "a Choice needs at least one rule",
                )),
            }
            if let Some(d) = get("Default").and_then(Value::as_str) {
                edges.push(Edge {
                    to: d.to_owned(),
                    kind: EdgeKind::Default,
                });
            }
        }
        _ => {}
    }
    if kind == "Task" && get("Resource").and_then(Value::as_str).is_none() {
        problems.push(problem(format!("{at}.Resource"), "a Task needs a Resource"));
    }
    if let Some(catches) = get("Catch").and_then(Value::as_array) {
        for (i, c) in catches.iter().enumerate() {
            match c.get("Next").and_then(Value::as_str) {
                Some(n) => edges.push(Edge {
                    to: n.to_owned(),
                    kind: EdgeKind::Catch,
                }),
                None => problems.push(problem(format!("{at}.Catch[{i}].Next"), "required")),
            }
        }
    }
    let mut children = Vec::new();
    if kind == "Map" {
        let (field, inner) = match (get("Iterator"), get("ItemProcessor")) {
            (Some(i), _) => ("Iterator", Some(i)),
            (None, Some(i)) => ("ItemProcessor", Some(i)),
            _ => ("Iterator", None),
        };
        match inner {
            Some(i) => {
                if let Some(s) = scope(i, &format!("{at}.{field}"), Some(name), problems) {
                    children.push(s);
                }
            }
            None => problems.push(problem(
                format!("{at}.Iterator"),
                "a Map needs an Iterator (or ItemProcessor)",
            )),
        }
    }
    if kind == "Parallel" {
        match get("Branches").and_then(Value::as_array) {
            Some(branches) if !branches.is_empty() => {
                for (i, b) in branches.iter().enumerate() {
                    if let Some(s) = scope(b, &format!("{at}.Branches[{i}]"), Some(name), problems)
                    {
                        children.push(s);
                    }
                }
            }
            _ => problems.push(problem(
                format!("{at}.Branches"),
                "a Parallel needs at least one branch",
            )),
        }
    }
    State {
        name: name.to_owned(),
        kind,
        comment: get("Comment").and_then(Value::as_str).map(str::to_owned),
        edges,
        end,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_machine(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../statemachines/{name}.asl.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn every_machine_of_the_repository_is_sound() {
        for name in [
            firebreak::names::RESPONSE_MACHINE,
            firebreak::names::SWEEP_MACHINE,
        ] {
            let (scope, problems) = parse(&repo_machine(name));
            assert_eq!(problems, vec![], "{name}");
            assert!(scope.unwrap().all_states().len() >= 3, "{name}");
        }
    }

    #[test]
    fn the_response_has_its_iterators_as_scopes() {
        let (scope, _) = parse(&repo_machine("response"));
        let scope = scope.unwrap();
        let paths: Vec<&str> = scope.all_scopes().iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "$",
                "$.States.EachFinding.Iterator",
                "$.States.EachFinding.Iterator.States.RunPlaybooks.Iterator"
            ]
        );
        let layers = scope.layers();
        assert_eq!(layers[0][0].name, "Triage");
    }

    #[test]
    fn problems_name_the_field() {
        let text = r#"{"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "arn", "Next": "Nowhere"},
            "B": {"Type": "Pass", "End": true},
            "C": {"Type": "Choice", "Choices": []},
            "D": {"Type": "Pass", "Next": "B", "End": true, "Assign": {}},
            "E": {"Type": "Lambda", "QueryLanguage": "JSONata"}
        }}"#;
        let (_, problems) = parse(text);
        let said: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        for expected in [
            "$.States.A.Next: no state named \"Nowhere\" in this scope",
            "$.States.B: unreachable: no transition leads here from StartAt",
            "$.States.C.Choices: a Choice needs at least one rule",
            "$.States.D: needs exactly one of Next and \"End\": true",
            "$.States.D.Assign: variables (Assign) are not supported by the local engines: pass data with ResultPath",
            "$.States.E.Type: \"Lambda\" is not a state type (one of Task, Pass, Choice, Wait, Succeed, Fail, Parallel, Map)",
            "$.States.E.QueryLanguage: JSONata is not supported: JSONPath only",
        ] {
            assert!(said.iter().any(|s| s == expected), "missing {expected:?} in {said:#?}");
        }
        let (_, problems) = parse("{not json");
        assert!(problems[0].message.starts_with("not JSON"), "{problems:?}");
        let (_, problems) = parse(r#"{"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}"#);
        assert!(
            problems
                .iter()
                .any(|p| p.to_string() == "$.StartAt: no state named \"X\""),
            "{problems:?}"
        );
    }
}
