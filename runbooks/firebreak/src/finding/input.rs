//! Every input shape Firebreak accepts, told apart and normalised into findings.
//!
//! | shape | recognised by |
//! |---|---|
//! | EventBridge `GuardDuty Finding` event | `detail-type` = `GuardDuty Finding` |
//! | `Security Hub Findings - Imported` / `- Custom Action` event | `detail-type`, findings in `detail.findings[]` |
//! | drill input | an object with `finding` or `event` (and optional `dryRun`, `reason`, `playbooks`) |
//! | `Findings Imported V2` event (the new Security Hub, OCSF) | `detail-type`, OCSF findings in `detail.findings[]` |
//! | bare GuardDuty finding | camelCase `arn`, `type`, `resource` |
//! | bare ASFF finding | PascalCase `Id`, `ProductArn` |
//! | bare OCSF finding | `metadata`, `finding_info` |
//! | an array of findings | a JSON array of any of the bare findings |
//! | `GetFindings` output (GuardDuty, Security Hub) and `GetFindingsV2` | `{"Findings": [...]}` |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{InputError, Shown};
use crate::ids::Arn;
use crate::json::Node;
use crate::plan::Playbook;

use super::{asff, guardduty, malware_scan, ocsf, Finding};

/// EventBridge events and Step Functions payloads are both capped at 256 KiB; anything
/// larger did not come from either and is refused before it is parsed.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;
/// `BatchUpdateFindings` takes at most 100 findings, and so does one response.
pub const MAX_FINDINGS: usize = 100;

const GUARDDUTY_EVENT: &str = "GuardDuty Finding";
const HUB_IMPORTED: &str = "Security Hub Findings - Imported";
const HUB_CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
const HUB_V2_IMPORTED: &str = "Findings Imported V2";
/// A drill through EventBridge: AWS refuses `aws.*` sources from callers, so a drill
/// puts its drill input (with its `dryRun`) as the detail of an event of its own, which
/// the response's rules also match.
pub const DRILL_SOURCE: &str = "firebreak.drill";
pub const DRILL_DETAIL_TYPE: &str = "Firebreak Drill";
const DRILL_KEYS: [&str; 6] = [
    "finding",
    "event",
    "dryRun",
    "reason",
    "playbooks",
    "requireApproval",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InputKind {
    GuardDutyEvent,
    SecurityHubImportedEvent,
    SecurityHubCustomActionEvent,
    /// The new Security Hub's event: OCSF findings.
    SecurityHubV2ImportedEvent,
    GuardDutyFinding,
    AsffFinding,
    OcsfFinding,
    /// A JSON array of bare findings.
    FindingArray,
    /// `aws guardduty get-findings` output: PascalCase GuardDuty findings in `Findings`.
    GuardDutyGetFindings,
    /// `aws securityhub get-findings` output: ASFF findings in `Findings`.
    SecurityHubGetFindings,
    /// `aws securityhub get-findings-v2` output: OCSF findings in `Findings`.
    SecurityHubGetFindingsV2,
    /// GuardDuty Malware Protection for S3's scan-result event (`THREATS_FOUND`).
    MalwareScanResultEvent,
}

impl InputKind {
    /// An EventBridge event (which a drill input wraps as `event`), not a bare finding.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            InputKind::GuardDutyEvent
                | InputKind::SecurityHubImportedEvent
                | InputKind::SecurityHubCustomActionEvent
                | InputKind::SecurityHubV2ImportedEvent
                | InputKind::MalwareScanResultEvent
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParsedInput {
    pub kind: InputKind,
    /// Came wrapped in a drill input (a manual StartExecution).
    pub drill: bool,
    pub dry_run: bool,
    /// Why the drill was run, as its author wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The EventBridge event id, when the input was an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The Security Hub custom action that was pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_action_arn: Option<Arn>,
    /// A drill's filter: only these playbooks' actions run. It narrows, never adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbooks: Option<Vec<Playbook>>,
    /// A drill's ask to exercise the approval gate: it can only add a wait, never lift one.
    #[serde(default)]
    pub require_approval: bool,
    pub findings: Vec<Finding>,
    /// Findings of a batch that could not be identified (no id, account or region): each
    /// refuses only itself, the others are handled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedFinding>,
}

/// A finding of a batch that was refused, with the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedFinding {
    pub path: String,
    pub error_type: String,
    pub error: String,
}

/// Parses raw bytes: refuses oversized input before reading it.
pub fn parse_input_bytes(bytes: &[u8]) -> Result<ParsedInput, InputError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| InputError::NotJson {
        reason: e.to_string(),
    })?;
    parse_value(&value)
}

/// Parses an input that is already JSON (the Lambda runtime hands us a `Value`).
pub fn parse_input(value: &Value) -> Result<ParsedInput, InputError> {
    let size = serialized_len(value);
    if size > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            size,
            limit: MAX_INPUT_BYTES,
        });
    }
    parse_value(value)
}

/// The size of `value` as compact JSON, counted without building the string.
fn serialized_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// The shape dispatch, once the size is known to be within the limit.
fn parse_value(value: &Value) -> Result<ParsedInput, InputError> {
    let root = Node::root(value, "$");
    if value.is_array() {
        return inner(&root);
    }
    root.expect_object()?;
    if is_drill(&root) {
        return drill(&root);
    }
    if is_drill_event(&root) {
        if root.value.get("dryRun").is_some() {
            // Two places for one decision: the drill input in the detail is the one.
            return Err(InputError::InvalidValue {
                path: "$.dryRun".into(),
                reason: "a firebreak.drill event carries its dryRun in its detail (the drill input), not beside it".into(),
            });
        }
        let detail = root.req("detail")?;
        let node = detail.node();
        node.expect_object()?;
        let mut parsed = drill(&node)?;
        parsed.event_id = root.text("id")?;
        return Ok(parsed);
    }
    let mut parsed = inner(&root)?;
    // A dryRun beside an event or a finding is honoured, never ignored.
    if let Some(dry_run) = strict_bool(&root, "dryRun")? {
        parsed.dry_run = dry_run;
    }
    Ok(parsed)
}

/// A boolean that may be absent but not `null`: a `"dryRun": null` that read as "not
/// given" would turn a rehearsal into a real response.
fn strict_bool(node: &Node<'_>, key: &str) -> Result<Option<bool>, InputError> {
    match node.value.get(key) {
        Some(Value::Null) => Err(InputError::WrongType {
            path: node.child_path(key),
            expected: "a boolean",
            found: "null",
        }),
        _ => node.bool(key),
    }
}

fn playbook_filter(root: &Node<'_>) -> Result<Option<Vec<Playbook>>, InputError> {
    if root.value.get("playbooks").is_none() {
        return Ok(None);
    }
    let items = root.array("playbooks")?;
    if items.is_empty() {
        return Err(InputError::InvalidValue {
            path: root.child_path("playbooks"),
            reason: "an empty filter would run nothing; leave playbooks out to run them all".into(),
        });
    }
    let mut out = Vec::new();
    for item in &items {
        let name = item.value.as_str().ok_or_else(|| InputError::WrongType {
            path: item.path.clone(),
            expected: "a string",
            found: crate::json::kind(item.value),
        })?;
        let p = Playbook::parse(name).ok_or_else(|| InputError::InvalidValue {
            path: item.path.clone(),
            reason: format!(
                "unknown playbook {}; the playbooks are {}",
                Shown(name),
                Playbook::ALL.map(Playbook::name).join(", ")
            ),
        })?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(Some(out))
}

fn is_drill(root: &Node<'_>) -> bool {
    !root.has("detail-type") && DRILL_KEYS.iter().any(|k| root.has(k))
}

fn is_drill_event(root: &Node<'_>) -> bool {
    root.value.get("source").and_then(Value::as_str) == Some(DRILL_SOURCE)
        && root.value.get("detail-type").and_then(Value::as_str) == Some(DRILL_DETAIL_TYPE)
}

fn drill(root: &Node<'_>) -> Result<ParsedInput, InputError> {
    // A misspelt `dryRun` must not turn a rehearsal into a real response.
    if let Some(map) = root.value.as_object() {
        if let Some(unknown) = map.keys().find(|k| !DRILL_KEYS.contains(&k.as_str())) {
            return Err(InputError::InvalidValue {
                path: format!("$.{unknown}"),
                reason: format!(
                    "unknown drill input field {}; a drill input has finding or event, dryRun, reason, playbooks and requireApproval",
                    Shown(unknown)
                ),
            });
        }
    }
    let dry_run = strict_bool(root, "dryRun")?.unwrap_or(false);
    let reason = root.text("reason")?;
    let playbooks = playbook_filter(root)?;
    let require_approval = strict_bool(root, "requireApproval")?.unwrap_or(false);
    let body = match (root.get("finding"), root.get("event")) {
        (Some(f), None) => f,
        (None, Some(e)) => e,
        (Some(_), Some(_)) => {
            return Err(InputError::InvalidValue {
                path: "$".into(),
                reason: "a drill input has either finding or event, not both".into(),
            })
        }
        (None, None) => {
            return Err(InputError::MissingField {
                path: "$.finding".into(),
            })
        }
    };
    let node = body.node();
    if !node.value.is_array() {
        node.expect_object()?;
    }
    if is_drill(&node) || is_drill_event(&node) {
        return Err(InputError::InvalidValue {
            path: body.path.clone(),
            reason: "a drill input cannot wrap another drill input".into(),
        });
    }
    let mut parsed = inner(&node)?;
    parsed.drill = true;
    parsed.dry_run = dry_run;
    parsed.reason = reason;
    parsed.playbooks = playbooks;
    parsed.require_approval = require_approval;
    Ok(parsed)
}

fn inner(node: &Node<'_>) -> Result<ParsedInput, InputError> {
    let mut out = ParsedInput {
        kind: InputKind::GuardDutyFinding,
        drill: false,
        dry_run: false,
        reason: None,
        event_id: None,
        custom_action_arn: None,
        playbooks: None,
        require_approval: false,
        findings: Vec::new(),
        refused: Vec::new(),
    };
    if node.has("detail-type") {
        let detail_type = node.req_str("detail-type")?;
        let source = node.req_str("source")?;
        out.event_id = node.text("id")?;
        let detail = node.req("detail")?;
        match (source, detail_type) {
            ("aws.guardduty", GUARDDUTY_EVENT) => {
                out.kind = InputKind::GuardDutyEvent;
                let envelope = guardduty::Envelope {
                    region: node.str("region")?,
                };
                out.findings.push(guardduty::parse(detail.node(), &envelope)?);
            }
            ("aws.securityhub", HUB_IMPORTED | HUB_CUSTOM_ACTION) => {
                if detail_type == HUB_CUSTOM_ACTION {
                    out.kind = InputKind::SecurityHubCustomActionEvent;
                    let resources = node.array("resources")?;
                    let first = resources.first().ok_or_else(|| InputError::MissingField {
                        path: node.child_path("resources[0]"),
                    })?;
                    let arn = first
                        .value
                        .as_str()
                        .ok_or_else(|| InputError::WrongType {
                            path: first.path.clone(),
                            expected: "a string",
                            found: crate::json::kind(first.value),
                        })
                        .and_then(|s| {
                            Arn::parse(s).map_err(|reason| InputError::InvalidValue {
                                path: first.path.clone(),
                                reason,
                            })
                        })?;
                    out.custom_action_arn = Some(arn);
                } else {
                    out.kind = InputKind::SecurityHubImportedEvent;
                }
                let findings = detail.node().array("findings")?;
                batch(&mut out, &detail.node(), "findings", &findings, asff::parse)?;
            }
            ("aws.guardduty", malware_scan::DETAIL_TYPE) => {
                out.kind = InputKind::MalwareScanResultEvent;
                out.findings.push(malware_scan::parse(node)?);
            }
            ("aws.securityhub", HUB_V2_IMPORTED) => {
                out.kind = InputKind::SecurityHubV2ImportedEvent;
                let findings = detail.node().array("findings")?;
                batch(&mut out, &detail.node(), "findings", &findings, ocsf::parse)?;
            }
            _ => {
                return Err(InputError::NotAFinding {
                    reason: format!(
                        "event {} from {} carries no finding; accepted are {GUARDDUTY_EVENT:?}, {:?}, {HUB_IMPORTED:?}, {HUB_CUSTOM_ACTION:?} and {HUB_V2_IMPORTED:?}",
                        Shown(detail_type),
                        Shown(source),
                        malware_scan::DETAIL_TYPE
                    ),
                })
            }
        }
        return Ok(out);
    }
    if node.value.is_array() {
        out.kind = InputKind::FindingArray;
        let items = node.items()?;
        batch(&mut out, node, "", &items, bare)?;
        return Ok(out);
    }
    if node.has("Findings") {
        let items = node.array("Findings")?;
        out.kind = match items.first().map(|c| c.node()) {
            Some(n) if ocsf::looks_like(&n) => InputKind::SecurityHubGetFindingsV2,
            Some(n) if n.has("ProductArn") => InputKind::SecurityHubGetFindings,
            _ => InputKind::GuardDutyGetFindings,
        };
        batch(&mut out, node, "Findings", &items, bare)?;
        return Ok(out);
    }
    if let Some(kind) = bare_kind(node) {
        out.kind = kind;
        out.findings.push(bare(*node)?);
        return Ok(out);
    }
    if node.has("detail") {
        return Err(InputError::NotAFinding {
            reason:
                "an EventBridge event needs `source` and `detail-type`; this one has only `detail`"
                    .into(),
        });
    }
    Err(InputError::NotAFinding {
        reason: "unrecognised input: expected a GuardDuty or Security Hub event, a GuardDuty, ASFF or OCSF finding, an array of findings, GetFindings output, or a drill input {\"finding\"|\"event\": …, \"dryRun\": true}".into(),
    })
}

/// Which bare finding a node is, if any.
fn bare_kind(node: &Node<'_>) -> Option<InputKind> {
    if ocsf::looks_like(node) {
        Some(InputKind::OcsfFinding)
    } else if node.has("ProductArn") {
        Some(InputKind::AsffFinding)
    } else if node.has("arn") || (node.has("type") && node.has("resource")) {
        Some(InputKind::GuardDutyFinding)
    } else if node.value.get("Arn").is_some() && node.value.get("Type").is_some() {
        // GuardDuty's API shape, as the SDK and CLI print it.
        Some(InputKind::GuardDutyGetFindings)
    } else if node.has("SchemaVersion") {
        Some(InputKind::AsffFinding)
    } else {
        None
    }
}

/// One bare finding of whichever shape it has.
fn bare(node: Node<'_>) -> Result<Finding, InputError> {
    node.expect_object()?;
    match bare_kind(&node) {
        Some(InputKind::OcsfFinding) => ocsf::parse(node),
        Some(InputKind::AsffFinding) => asff::parse(node),
        Some(InputKind::GuardDutyGetFindings) => {
            guardduty::parse(node.pascal(), &guardduty::Envelope::default())
        }
        Some(_) => guardduty::parse(node, &guardduty::Envelope::default()),
        None => Err(InputError::NotAFinding {
            reason: "not a GuardDuty, ASFF or OCSF finding (no arn, ProductArn or metadata + finding_info)".into(),
        }),
    }
}

/// Findings of a batch (an event's, an array's, GetFindings'): at least one and at most
/// [`MAX_FINDINGS`]. One unreadable finding refuses only itself; if none can be read, the
/// input is refused with the first finding's error.
fn batch(
    out: &mut ParsedInput,
    parent: &Node<'_>,
    key: &str,
    items: &[crate::json::Child<'_>],
    parse_one: impl Fn(Node<'_>) -> Result<Finding, InputError>,
) -> Result<(), InputError> {
    let base = if key.is_empty() {
        parent.path().to_owned()
    } else {
        parent.child_path(key)
    };
    if items.is_empty() {
        return Err(InputError::MissingField {
            path: format!("{base}[0]"),
        });
    }
    if items.len() > MAX_FINDINGS {
        return Err(InputError::InvalidValue {
            path: base,
            reason: format!(
                "{} findings; at most {MAX_FINDINGS} are handled in one response",
                items.len()
            ),
        });
    }
    let mut first_error = None;
    for f in items {
        match parse_one(f.node()) {
            Ok(finding) => out.findings.push(finding),
            Err(e) => {
                out.refused.push(RefusedFinding {
                    path: f.path.clone(),
                    error_type: e.error_type().to_owned(),
                    error: e.to_string(),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if let (true, Some(e)) = (out.findings.is_empty(), first_error) {
        return Err(e);
    }
    Ok(())
}
