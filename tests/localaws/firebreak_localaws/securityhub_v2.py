"""The new Security Hub (OCSF findings), which moto lacks: BatchUpdateFindingsV2 and
GetFindingsV2 as Firebreak and its tests use them, and a way for a product to put its
OCSF findings in (the control API's `securityhub-v2/findings`, as GuardDuty's integration
does). What it does not support it refuses, naming it, rather than ignore it: a request
the local account ignored would make a test pass that fails against AWS."""

from __future__ import annotations

import copy
import json
from typing import Any

from moto.securityhub import securityhub_backends, urls
from moto.securityhub.exceptions import _InvalidOperationException
from moto.securityhub.models import SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse

from .securityhub import request_body as _body

MAX_UPDATE = 100
MAX_COMMENT = 512
# OCSF Detection Finding status_id -> status.
STATUSES = {0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 5: "Archived", 6: "Deleted", 99: "Other"}
# GetFindingsV2 string filters the local account evaluates, and how to read the field.
_FIELDS = {
    "metadata.uid": lambda f: (f.get("metadata") or {}).get("uid"),
    "finding_info.uid": lambda f: (f.get("finding_info") or {}).get("uid"),
    "cloud.account.uid": lambda f: ((f.get("cloud") or {}).get("account") or {}).get("uid"),
}


class ValidationException(_InvalidOperationException):
    def __init__(self, op: str, msg: str):
        super().__init__("ValidationException", op, msg)


def _store(backend: SecurityHubBackend) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "_firebreak_ocsf"):
        backend._firebreak_ocsf = {}  # type: ignore[attr-defined]
    return backend._firebreak_ocsf  # type: ignore[attr-defined]


def put_findings(account: str, region: str, findings: list[dict[str, Any]]) -> dict[str, int]:
    """A product's OCSF findings into the account's hub (a finding with a known
    metadata.uid is replaced, its customer-set status and comment kept, as in AWS)."""
    store = _store(securityhub_backends[account][region])
    for f in findings:
        uid = (f.get("metadata") or {}).get("uid")
        if not isinstance(uid, str) or not uid:
            raise ValueError("an OCSF finding needs metadata.uid")
        kept = store.get(uid)
        new = copy.deepcopy(f)
        if kept is not None:
            for key in ("status", "status_id", "comment"):
                if key in kept:
                    new[key] = kept[key]
        store[uid] = new
    return {"count": len(findings)}


def batch_update_findings_v2(self: SecurityHubBackend, request: dict[str, Any]) -> dict[str, Any]:
    op = "BatchUpdateFindingsV2"
    unsupported = sorted(set(request) - {"MetadataUids", "Comment", "StatusId"})
    if unsupported:
        raise ValidationException(op, f"not supported locally: {', '.join(unsupported)}")
    uids = request.get("MetadataUids") or []
    if not 1 <= len(uids) <= MAX_UPDATE:
        raise ValidationException(op, f"MetadataUids must hold 1 to {MAX_UPDATE} findings")
    comment = request.get("Comment")
    status = request.get("StatusId")
    if comment is None and status is None:
        raise ValidationException(op, "give Comment, StatusId or both")
    if comment is not None and not 1 <= len(comment) <= MAX_COMMENT:
        raise ValidationException(op, f"Comment must be 1 to {MAX_COMMENT} characters")
    if status is not None and status not in STATUSES:
        raise ValidationException(op, f"StatusId must be one of {sorted(STATUSES)}")
    store = _store(self)
    processed, unprocessed = [], []
    for uid in uids:
        finding = store.get(uid)
        if finding is None:
            unprocessed.append({"MetadataUid": uid, "ErrorCode": "ResourceNotFoundException", "ErrorMessage": "Finding not found"})
            continue
        if comment is not None:
            finding["comment"] = comment
        if status is not None:
            finding["status_id"] = status
            finding["status"] = STATUSES[status]
        processed.append({"MetadataUid": uid})
    return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}


def _matches(finding: dict[str, Any], filters: dict[str, Any]) -> bool:
    op = "GetFindingsV2"
    unsupported = sorted(set(filters) - {"CompositeFilters", "CompositeOperator"})
    if unsupported:
        raise ValidationException(op, f"filters not supported locally: {', '.join(unsupported)}")
    results = []
    for composite in filters.get("CompositeFilters") or []:
        kinds = sorted(set(composite) - {"StringFilters", "Operator"})
        if kinds:
            raise ValidationException(op, f"filters not supported locally: {', '.join(kinds)}")
        hits = []
        for sf in composite.get("StringFilters") or []:
            field = sf.get("FieldName")
            if field not in _FIELDS:
                raise ValidationException(op, f"field {field} is not supported locally; use one of {sorted(_FIELDS)}")
            f = sf.get("Filter") or {}
            if f.get("Comparison", "EQUALS") != "EQUALS":
                raise ValidationException(op, f"comparison {f.get('Comparison')} is not supported locally")
            hits.append(_FIELDS[field](finding) == f.get("Value"))
        results.append(all(hits) if composite.get("Operator", "AND") == "AND" else any(hits))
    if not results:
        return True
    return all(results) if filters.get("CompositeOperator", "AND") == "AND" else any(results)


def _r_batch_update_findings_v2(self: SecurityHubResponse) -> str:
    return json.dumps(batch_update_findings_v2(self.securityhub_backend, _body(self)))


def _r_get_findings_v2(self: SecurityHubResponse) -> str:
    request = _body(self)
    unsupported = sorted(set(request) - {"Filters", "MaxResults"})
    if unsupported:
        raise ValidationException("GetFindingsV2", f"not supported locally: {', '.join(unsupported)}")
    limit = int(request.get("MaxResults") or 100)
    found = [f for f in _store(self.securityhub_backend).values() if _matches(f, request.get("Filters") or {})]
    return json.dumps({"Findings": found[:limit]})


def install() -> None:
    SecurityHubResponse.batch_update_findings_v2 = _r_batch_update_findings_v2  # type: ignore[attr-defined]
    SecurityHubResponse.get_findings_v2 = _r_get_findings_v2  # type: ignore[attr-defined]
    urls.url_paths["{0}/findingsv2/batchupdatev2$"] = SecurityHubResponse.dispatch
    urls.url_paths["{0}/findingsv2$"] = SecurityHubResponse.dispatch
