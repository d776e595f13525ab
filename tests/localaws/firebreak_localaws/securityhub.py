"""Security Hub calls moto lacks: BatchUpdateFindings, CreateActionTarget,
DescribeActionTargets, and GetFindings filters (Id, ProductArn, WorkflowStatus,
RecordState, AwsAccountId)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from moto.securityhub import urls
from moto.securityhub.exceptions import InvalidInputException, _InvalidOperationException
from moto.securityhub.models import SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse

MAX_FINDINGS_PER_UPDATE = 100
MAX_NOTE = 512
WORKFLOW_STATUSES = {"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}
SEVERITY_LABELS = {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
MAX_ACTION_TARGETS = 50

# GetFindings filter name -> how to read the value from a stored finding.
_FILTER_FIELDS = {
    "Id": lambda f: f.get("Id"),
    "ProductArn": lambda f: f.get("ProductArn"),
    "AwsAccountId": lambda f: f.get("AwsAccountId"),
    "WorkflowStatus": lambda f: (f.get("Workflow") or {}).get("Status", "NEW"),
    "RecordState": lambda f: f.get("RecordState", "ACTIVE"),
}


class ResourceConflictException(_InvalidOperationException):
    def __init__(self, op: str, msg: str):
        super().__init__("ResourceConflictException", op, msg)


class LimitExceededException(_InvalidOperationException):
    def __init__(self, op: str, msg: str):
        super().__init__("LimitExceededException", op, msg)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _matches(value: str | None, filters: list[dict[str, str]]) -> bool:
    """String filters: any EQUALS/PREFIX may match; no NOT_EQUALS/PREFIX_NOT_EQUALS may."""
    positive = [f for f in filters if not f.get("Comparison", "EQUALS").startswith(("NOT_", "PREFIX_NOT"))]
    negative = [f for f in filters if f not in positive]
    v = value or ""

    def hit(f: dict[str, str]) -> bool:
        comparison = f.get("Comparison", "EQUALS")
        target = f.get("Value", "")
        if comparison in ("EQUALS", "NOT_EQUALS"):
            return v == target
        if comparison in ("PREFIX", "PREFIX_NOT_EQUALS"):
            return v.startswith(target)
        raise InvalidInputException(op="GetFindings", msg=f"comparison {comparison} is not supported locally")

    if positive and not any(hit(f) for f in positive):
        return False
    return not any(hit(f) for f in negative)


def get_findings(
    self: SecurityHubBackend,
    filters: dict[str, Any] | None = None,
    sort_criteria: Any = None,
    max_results: Any = None,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    filters = filters or {}
    unsupported = sorted(set(filters) - set(_FILTER_FIELDS))
    if unsupported:
        # Refuse rather than ignore: a filter the local account ignored would make a test pass
        # that fails against AWS.
        raise InvalidInputException(op="GetFindings", msg=f"filters not supported locally: {', '.join(unsupported)}")
    limit = int(max_results) if max_results else 100
    if not 1 <= limit <= 100:
        raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
    found = [
        f.as_dict()
        for f in self.findings
        if all(_matches(_FILTER_FIELDS[k](f.as_dict()), v) for k, v in filters.items())
    ]
    start = int(next_token) if next_token and next_token.isdigit() else 0
    page = found[start : start + limit]
    more = start + limit < len(found)
    return page, (str(start + limit) if more else None)


def batch_update_findings(self: SecurityHubBackend, request: dict[str, Any]) -> dict[str, Any]:
    op = "BatchUpdateFindings"
    identifiers = request.get("FindingIdentifiers") or []
    if not 1 <= len(identifiers) <= MAX_FINDINGS_PER_UPDATE:
        raise InvalidInputException(op=op, msg=f"FindingIdentifiers must hold 1 to {MAX_FINDINGS_PER_UPDATE} findings")
    note = request.get("Note")
    if note is not None:
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not text or not by:
            raise InvalidInputException(op=op, msg="Note needs Text and UpdatedBy")
        if len(text) > MAX_NOTE or len(by) > MAX_NOTE:
            raise InvalidInputException(op=op, msg=f"Note.Text and Note.UpdatedBy are at most {MAX_NOTE} characters")
    workflow = request.get("Workflow")
    if workflow is not None and workflow.get("Status") not in WORKFLOW_STATUSES:
        raise InvalidInputException(op=op, msg=f"Workflow.Status must be one of {sorted(WORKFLOW_STATUSES)}")
    severity = request.get("Severity")
    if severity is not None and "Label" in severity and severity["Label"] not in SEVERITY_LABELS:
        raise InvalidInputException(op=op, msg=f"Severity.Label must be one of {sorted(SEVERITY_LABELS)}")

    processed, unprocessed = [], []
    for ident in identifiers:
        finding = next(
            (f for f in self.findings if f.id == ident.get("Id") and f.data.get("ProductArn") == ident.get("ProductArn")),
            None,
        )
        if finding is None:
            unprocessed.append(
                {"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "Finding Not Found"}
            )
            continue
        data = finding.data
        if note is not None:
            data["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": _now()}
        if workflow is not None:
            data["Workflow"] = {"Status": workflow["Status"]}
            data["WorkflowState"] = workflow["Status"]
        if severity is not None:
            data["Severity"] = {**(data.get("Severity") or {}), **severity}
        if "UserDefinedFields" in request:
            data["UserDefinedFields"] = {**(data.get("UserDefinedFields") or {}), **request["UserDefinedFields"]}
        for key in ("VerificationState", "Confidence", "Criticality", "Types"):
            if key in request:
                data[key] = request[key]
        processed.append(ident)
    return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}


def _targets(self: SecurityHubBackend) -> dict[str, dict[str, str]]:
    if not hasattr(self, "_firebreak_action_targets"):
        self._firebreak_action_targets = {}  # type: ignore[attr-defined]
    return self._firebreak_action_targets  # type: ignore[attr-defined]


def create_action_target(self: SecurityHubBackend, name: str, description: str, target_id: str) -> str:
    op = "CreateActionTarget"
    if not name or len(name) > 20:
        raise InvalidInputException(op=op, msg="Name must be 1 to 20 characters")
    if not re.fullmatch(r"[A-Za-z0-9]{1,20}", target_id or ""):
        raise InvalidInputException(op=op, msg="Id must be 1 to 20 letters or digits")
    if not description:
        raise InvalidInputException(op=op, msg="Description is required")
    targets = _targets(self)
    arn = f"arn:aws:securityhub:{self.region_name}:{self.account_id}:action/custom/{target_id}"
    if arn in targets:
        raise ResourceConflictException(op=op, msg=f"Action target {target_id} already exists")
    if len(targets) >= MAX_ACTION_TARGETS:
        raise LimitExceededException(op=op, msg=f"at most {MAX_ACTION_TARGETS} custom actions per account and region")
    targets[arn] = {"ActionTargetArn": arn, "Name": name, "Description": description}
    return arn


def request_body(response: SecurityHubResponse) -> dict[str, Any]:
    """A Security Hub request's JSON body ({} when empty)."""
    raw = response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return json.loads(raw) if raw else {}


def _r_batch_update_findings(self: SecurityHubResponse) -> str:
    return json.dumps(self.securityhub_backend.batch_update_findings(request_body(self)))  # type: ignore[attr-defined]


def _r_create_action_target(self: SecurityHubResponse) -> str:
    p = request_body(self)
    arn = self.securityhub_backend.create_action_target(p.get("Name", ""), p.get("Description", ""), p.get("Id", ""))  # type: ignore[attr-defined]
    return json.dumps({"ActionTargetArn": arn})


def _r_describe_action_targets(self: SecurityHubResponse) -> str:
    p = request_body(self)
    targets = _targets(self.securityhub_backend)
    wanted = p.get("ActionTargetArns") or list(targets)
    return json.dumps({"ActionTargets": [targets[a] for a in wanted if a in targets]})


# What belongs to the customer once a finding exists: a provider's BatchImportFindings of
# the same finding leaves these alone (AWS: "BatchImportFindings cannot update" them).
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow", "WorkflowState")


def _keep_customer_fields(original: Any) -> Any:
    def batch_import_findings(self: SecurityHubBackend, findings: list[dict[str, Any]]) -> Any:
        existing = {f.id for f in self.findings}
        findings = [
            {k: v for k, v in f.items() if k not in CUSTOMER_FIELDS} if f.get("Id") in existing else f
            for f in findings
        ]
        return original(self, findings)

    batch_import_findings._firebreak = True  # type: ignore[attr-defined]
    return batch_import_findings


def install() -> None:
    if not getattr(SecurityHubBackend.batch_import_findings, "_firebreak", False):
        SecurityHubBackend.batch_import_findings = _keep_customer_fields(SecurityHubBackend.batch_import_findings)  # type: ignore[method-assign]
    SecurityHubBackend.get_findings = get_findings  # type: ignore[method-assign,assignment]
    SecurityHubBackend.batch_update_findings = batch_update_findings  # type: ignore[attr-defined]
    SecurityHubBackend.create_action_target = create_action_target  # type: ignore[attr-defined]
    SecurityHubResponse.batch_update_findings = _r_batch_update_findings  # type: ignore[attr-defined]
    SecurityHubResponse.create_action_target = _r_create_action_target  # type: ignore[attr-defined]
    SecurityHubResponse.describe_action_targets = _r_describe_action_targets  # type: ignore[attr-defined]
    urls.url_paths["{0}/findings/batchupdate$"] = SecurityHubResponse.dispatch
    urls.url_paths["{0}/actionTargets$"] = SecurityHubResponse.dispatch
    urls.url_paths["{0}/actionTargets/get$"] = SecurityHubResponse.dispatch
