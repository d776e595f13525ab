//! The drill report: one self-contained HTML page (inline CSS and SVG, no script, nothing
//! fetched) with the state machine drawn from its ASL definition and the path the
//! execution took, the time spent in each state, the plan, every action with the before
//! and after of each resource, and the finding's note. Pure: data in, HTML out.

use std::fmt::Write;

use firebreak::outcome::ActionOutcome;
use firebreak::plan::Plan;

use crate::asl::{EdgeKind, Scope};
use crate::history::{Status, Summary};
use firebreak::resolution::Resolution;

/// The finding as Security Hub shows it after the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingState {
    pub id: String,
    pub workflow: Option<String>,
    pub note: Option<String>,
}

pub struct Report<'a> {
    pub machine_name: &'a str,
    pub execution_arn: &'a str,
    pub execution_status: &'a str,
    pub started: &'a str,
    pub definition: Option<&'a Scope>,
    pub summary: &'a Summary,
    pub resolution: Resolution,
    pub plans: &'a [Plan],
    pub outcomes: &'a [ActionOutcome],
    pub findings: &'a [FindingState],
    pub generated: &'a str,
}

pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const NODE_W: i64 = 190;
const NODE_H: i64 = 46;
const GAP_X: i64 = 70;
const GAP_Y: i64 = 18;
const PAD: i64 = 20;

fn ms(ms: i64) -> String {
    if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// One scope's graph: columns by distance from StartAt, an edge per transition.
fn graph(scope: &Scope, summary: &Summary) -> String {
    let layers = scope.layers();
    let rows = layers.iter().map(Vec::len).max().unwrap_or(1) as i64;
    let width = PAD * 2 + layers.len() as i64 * (NODE_W + GAP_X) - GAP_X;
    let height = PAD * 2 + rows * (NODE_H + GAP_Y) - GAP_Y + 40;
    let mut pos = std::collections::BTreeMap::new();
    for (x, layer) in layers.iter().enumerate() {
        for (y, s) in layer.iter().enumerate() {
            pos.insert(
                s.name.as_str(),
                (
                    PAD + x as i64 * (NODE_W + GAP_X),
                    PAD + y as i64 * (NODE_H + GAP_Y),
                ),
            );
        }
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="states of {}">"#,
        esc(scope.owner.as_deref().unwrap_or("the state machine"))
    );
    svg.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#7a8594"/></marker></defs>"##);
    for s in &scope.states {
        let Some(&(x1, y1)) = pos.get(s.name.as_str()) else {
            continue;
        };
        for e in &s.edges {
            let Some(&(x2, y2)) = pos.get(e.to.as_str()) else {
                continue;
            };
            let taken = summary.status(&s.name) != Status::NotReached
                && summary.status(&e.to) != Status::NotReached;
            let kind = match e.kind {
                EdgeKind::Next => "next",
                EdgeKind::Choice => "choice",
                EdgeKind::Default => "default",
                EdgeKind::Catch => "catch",
            };
            let class = format!("edge {kind}{}", if taken { " taken" } else { "" });
            let d = if x2 > x1 {
                let (sx, sy, tx, ty) = (x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
                let mid = (sx + tx) / 2;
                format!("M {sx} {sy} C {mid} {sy}, {mid} {ty}, {tx} {ty}")
            } else {
                // A transition back or within a column: around the bottom.
                let (sx, sy, tx, ty) = (x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2 + NODE_H);
                let low = sy.max(ty) + 30;
                format!("M {sx} {sy} C {sx} {low}, {tx} {low}, {tx} {ty}")
            };
            let _ = write!(
                svg,
                r#"<path class="{class}" d="{d}" marker-end="url(#arrow)"/>"#
            );
        }
    }
    for s in &scope.states {
        let Some(&(x, y)) = pos.get(s.name.as_str()) else {
            continue;
        };
        let status = summary.status(&s.name);
        let detail = match summary.run(&s.name) {
            Some(r) if r.entered > 1 => format!("{} · {}× · {}", s.kind, r.entered, ms(r.total_ms)),
            Some(r) if r.exited > 0 => format!("{} · {}", s.kind, ms(r.total_ms)),
            _ => s.kind.clone(),
        };
        let title = match (
            &s.comment,
            summary.run(&s.name).and_then(|r| r.error.as_ref()),
        ) {
            (_, Some(err)) => format!("{}: {err}", s.name),
            (Some(c), None) => c.clone(),
            (None, None) => s.name.clone(),
        };
        let _ = write!(
            svg,
            r#"<g class="state {st}" data-state="{name}" data-status="{st}" data-type="{kind}"><title>{title}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8"/><text x="{tx}" y="{ty1}" class="name">{name}</text><text x="{tx}" y="{ty2}" class="sub">{detail}</text></g>"#,
            st = status.as_str(),
            name = esc(&s.name),
            kind = esc(&s.kind),
            title = esc(&title),
            tx = x + 12,
            ty1 = y + 20,
            ty2 = y + 37,
            detail = esc(&detail),
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = r#"
:root { --ok:#1a7f37; --bad:#cf222e; --run:#bf8700; --idle:#8c959f; --ink:#1f2328; --soft:#f6f8fa; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; background: #fff; }
header { padding: 20px 32px; background: #0d1117; color: #f0f6fc; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: #9da7b3; font-size: 13px; word-break: break-all; }
main { padding: 8px 32px 40px; max-width: 1500px; }
h2 { font-size: 16px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 18px 0 6px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 12px; color: #fff; vertical-align: middle; }
.badge.contained, .badge.SUCCEEDED, .badge.RESOLVED { background: var(--ok); }
.badge.failed, .badge.refused, .badge.not-contained, .badge.partly-contained, .badge.FAILED, .badge.NOTIFIED, .badge.TIMED_OUT, .badge.ABORTED { background: var(--bad); }
.badge.nothing-to-do, .badge.dry-run, .badge.RUNNING, .badge.NEW { background: var(--idle); }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 8px; margin: 8px 0 16px; overflow-x: auto; background: var(--soft); }
.panel .caption { font-size: 12px; color: #57606a; margin: 0 0 4px 4px; }
svg.graph .state rect { fill: #fff; stroke: var(--idle); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg.graph .state.succeeded rect { fill: #dafbe1; stroke: var(--ok); stroke-width: 2; stroke-dasharray: none; }
svg.graph .state.failed rect { fill: #ffebe9; stroke: var(--bad); stroke-width: 2.5; stroke-dasharray: none; }
svg.graph .state.running rect { fill: #fff8c5; stroke: var(--run); stroke-width: 2; stroke-dasharray: none; }
svg.graph .state.not-reached text { fill: #8c959f; }
svg.graph text.name { font-weight: 600; font-size: 13px; }
svg.graph text.sub { font-size: 11px; fill: #57606a; }
svg.graph .edge { fill: none; stroke: #c4ccd5; stroke-width: 1.3; }
svg.graph .edge.catch { stroke-dasharray: 5 4; }
svg.graph .edge.taken { stroke: #57606a; stroke-width: 2; }
.legend span { margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 4px; vertical-align: -1px; border: 2px solid; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code, li code { font-size: 12px; background: var(--soft); padding: 1px 4px; border-radius: 4px; word-break: break-all; }
.status-done, .status-already-done { color: var(--ok); font-weight: 600; }
.status-dry-run { color: var(--run); font-weight: 600; }
.status-refused, .status-failed { color: var(--bad); font-weight: 600; }
.note { background: var(--soft); border-left: 4px solid var(--idle); padding: 8px 12px; white-space: pre-wrap; }
.note.RESOLVED { border-color: var(--ok); } .note.NOTIFIED { border-color: var(--bad); }
footer { color: #57606a; font-size: 12px; padding: 0 32px 24px; }
"#;

pub fn render(r: &Report<'_>) -> String {
    let mut h = String::new();
    let title = format!("Firebreak drill: {}", r.machine_name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        h,
        r#"<header><h1>{} <span class="badge {v}" id="verdict">{v}</span> <span class="badge {s}" id="execution-status">{s}</span></h1><div class="meta">execution <code id="execution-arn">{arn}</code> · started {started} · {dur}</div></header><main>"#,
        esc(&title),
        v = r.resolution.as_str(),
        s = esc(r.execution_status),
        arn = esc(r.execution_arn),
        started = esc(r.started),
        dur = ms(r.summary.duration_ms),
    );
    if let (Some(err), true) = (&r.summary.error, r.summary.failed) {
        let _ = write!(
            h,
            r#"<p class="note NOTIFIED"><strong>{}</strong>: {}</p>"#,
            esc(err),
            esc(r.summary.cause.as_deref().unwrap_or(""))
        );
    }

    h.push_str(r#"<h2>The path taken</h2><div class="legend"><span><i style="background:#dafbe1;border-color:#1a7f37"></i>succeeded</span><span><i style="background:#ffebe9;border-color:#cf222e"></i>failed</span><span><i style="background:#fff;border-color:#8c959f;border-style:dashed"></i>not reached</span><span>dashed arrows: Catch</span></div>"#);
    match r.definition {
        Some(scope) => {
            for s in scope.all_scopes() {
                let caption = match &s.owner {
                    None => format!("{} — the state machine", r.machine_name),
                    Some(o) => format!("inside {o} (run for each item)"),
                };
                let _ = write!(
                    h,
                    r#"<div class="panel" data-scope="{}"><p class="caption">{}</p>{}</div>"#,
                    esc(&s.path),
                    esc(&caption),
                    graph(s, r.summary)
                );
            }
        }
        None => h.push_str("<p>The state machine's definition could not be read.</p>"),
    }

    h.push_str(r#"<h2>Time in each state</h2><table id="timings"><tr><th>state</th><th>result</th><th>entered</th><th>time</th></tr>"#);
    for run in &r.summary.states {
        let st = r.summary.status(&run.name);
        let _ = write!(
            h,
            r#"<tr data-state="{n}"><td>{n}</td><td class="status-{s}">{s}{e}</td><td class="num">{c}</td><td class="num">{t}</td></tr>"#,
            n = esc(&run.name),
            s = st.as_str(),
            e = run
                .error
                .as_deref()
                .map(|e| format!(" ({})", esc(e)))
                .unwrap_or_default(),
            c = run.entered,
            t = ms(run.total_ms),
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Findings, plans and what was done</h2>");
    if r.plans.is_empty() {
        h.push_str("<p>No plan was made (triage refused the input, or the execution stopped before it).</p>");
    }
    for (i, p) in r.plans.iter().enumerate() {
        let f = &p.finding;
        let _ = write!(
            h,
            r#"<section class="finding" data-finding="{id}"><h3>{n}. {t} <small>severity {sev} ({band})</small></h3><p><code>{id}</code><br>{title}</p>"#,
            n = i + 1,
            t = esc(&f.finding_type.name),
            sev = f.severity.score,
            band = f.severity.band,
            id = esc(f.security_hub.id.as_str()),
            title = esc(f.title.as_deref().unwrap_or("")),
        );
        let _ = write!(
            h,
            "<p>Policy {} ({}); rules matched: {}; {}</p>",
            esc(&p.policy.version),
            esc(&p.policy.source),
            esc(&if p.matched_rules.is_empty() {
                "none".into()
            } else {
                p.matched_rules.join(", ")
            }),
            if p.dry_run {
                "<strong>dry run</strong>: nothing was to change"
            } else {
                "a real run"
            }
        );
        h.push_str(r#"<table class="plan"><tr><th>planned action</th><th>target</th><th>in this run</th></tr>"#);
        for a in &p.actions {
            // A playbook drilled alone runs only its own actions: say which ones.
            let ran = r
                .outcomes
                .iter()
                .find(|o| o.action == a.kind())
                .map(|o| o.status.as_str());
            let _ = write!(
                h,
                r#"<tr class="planned" data-action="{k}" data-run="{run}"><td>{k}</td><td>{t}</td><td class="status-{run}">{run_text}</td></tr>"#,
                k = a.kind().name(),
                t = esc(&a.target()),
                run = ran.unwrap_or("not-run"),
                run_text = ran.unwrap_or("not run by this state machine"),
            );
        }
        if p.actions.is_empty() {
            h.push_str(r#"<tr><td colspan="3">none</td></tr>"#);
        }
        h.push_str("</table>");
        if !p.skipped.is_empty() {
            h.push_str(
                r#"<table class="skipped"><tr><th>skipped</th><th>target</th><th>why</th></tr>"#,
            );
            for s in &p.skipped {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    s.action.map(|a| a.name()).unwrap_or("the finding"),
                    esc(s.target.as_deref().unwrap_or("")),
                    esc(&s.detail)
                );
            }
            h.push_str("</table>");
        }
        if let Some(state) = r
            .findings
            .iter()
            .find(|s| s.id == f.security_hub.id.as_str())
        {
            let wf = state.workflow.as_deref().unwrap_or("unknown");
            let _ = write!(
                h,
                r#"<p>Security Hub workflow: <span class="badge {wf}">{wf}</span></p><p class="note {wf}" id="note-{n}">{}</p>"#,
                esc(state.note.as_deref().unwrap_or("(no note)")),
                wf = esc(wf),
                n = i + 1
            );
        }
        h.push_str("</section>");
    }

    h.push_str(r#"<h2>Actions and the resources they changed</h2><table id="actions"><tr><th>action</th><th>status</th><th>target</th><th>summary</th></tr>"#);
    for o in r.outcomes {
        let status = o.status.as_str();
        let _ = write!(
            h,
            r#"<tr class="outcome" data-action="{a}" data-status="{s}"><td>{a}</td><td class="status-{s}">{s}</td><td>{t}</td><td>{m}</td></tr>"#,
            a = o.action.name(),
            s = status,
            t = esc(&o.target),
            m = esc(&o.summary)
        );
    }
    h.push_str("</table>");
    let changes: Vec<_> = r
        .outcomes
        .iter()
        .flat_map(|o| o.changes.iter().map(move |c| (o, c)))
        .collect();
    if !changes.is_empty() {
        h.push_str(r#"<table id="changes"><tr><th>action</th><th>resource</th><th>what</th><th>before</th><th>after</th></tr>"#);
        for (o, c) in changes {
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                o.action.name(),
                esc(&c.resource),
                esc(&c.what),
                esc(&c.before),
                esc(&c.after)
            );
        }
        h.push_str("</table>");
    }
    let _ = writeln!(
        h,
        "</main><footer>Written by <code>firebreak report</code> at {}. One file, no scripts, nothing fetched: it can be attached to a ticket as it is.</footer></body></html>",
        esc(r.generated)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{summarise, Event};

    #[test]
    fn one_node_per_state_with_its_status_and_everything_escaped() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../statemachines/response.asl.json"
        ))
        .unwrap();
        let (scope, problems) = crate::asl::parse(&text);
        assert!(problems.is_empty());
        let scope = scope.unwrap();
        let ev = |kind: &str, at: i64, name: &str| Event {
            kind: kind.into(),
            at_ms: at,
            name: Some(name.into()),
            error: None,
            cause: None,
        };
        let summary = summarise(&[
            ev("TaskStateEntered", 0, "Triage"),
            ev("TaskStateExited", 20, "Triage"),
            ev("MapStateEntered", 21, "EachFinding"),
        ]);
        let html = render(&Report {
            machine_name: "Firebreak-response <x>",
            execution_arn: "arn:aws:states:us-east-1:123456789012:execution:Firebreak-response:1",
            execution_status: "RUNNING",
            started: "2026-11-29T10:00:00Z",
            definition: Some(&scope),
            summary: &summary,
            resolution: Resolution::NothingToDo,
            plans: &[],
            outcomes: &[],
            findings: &[],
            generated: "now",
        });
        let nodes = html.matches(r#"<g class="state "#).count();
        assert_eq!(nodes, scope.all_states().len());
        assert!(html.contains(r#"data-state="Triage" data-status="succeeded""#));
        assert!(html.contains(r#"data-state="EachFinding" data-status="running""#));
        assert!(html.contains(r#"data-state="MarkResolved" data-status="not-reached""#));
        assert!(html.contains("Firebreak-response &lt;x&gt;"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(
            !html.contains("http://")
                || html.matches("http://").count()
                    == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
            "nothing fetched"
        );
    }
}
