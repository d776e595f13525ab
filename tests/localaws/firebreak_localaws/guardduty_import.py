"""GuardDuty's copy of a finding reaches Security Hub on its own path, after the
EventBridge event, and in AWS it can lag by minutes. The local account does the same: a
GuardDuty finding event put as the service (the control API) is imported into Security
Hub, as ASFF, a configurable delay later (`POST /firebreak-api/config
{"securityHubImportDelaySeconds": n}`; 0 imports at once, a negative value never). Tests do
not pre-import: a response must wait for its finding."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from moto.securityhub.models import securityhub_backends

CONFIG: dict[str, float] = {"securityHubImportDelaySeconds": 0.0}
PENDING: list[threading.Thread] = []


def asff(detail: dict[str, Any]) -> dict[str, Any]:
    """What GuardDuty sends to Security Hub for a finding (ASFF)."""
    gd_type = detail["type"]
    purpose, rest = gd_type.split(":", 1)
    region, account = detail["region"], detail["accountId"]
    resource = detail.get("resource", {})
    instance = (resource.get("instanceDetails") or {}).get("instanceId")
    resources = [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{region}:{account}:instance/{instance}"}] if instance else [
        {"Type": "Other", "Id": detail["arn"]}
    ]
    return {
        "SchemaVersion": "2018-10-08",
        "Id": detail["arn"],
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/guardduty",
        "GeneratorId": detail["arn"].split("/finding/")[0],
        "AwsAccountId": account,
        "Types": [f"TTPs/{purpose}:{rest.replace('/', '-', 1)}"],
        "CreatedAt": detail.get("createdAt", "2026-11-29T00:00:00Z"),
        "UpdatedAt": detail.get("updatedAt", "2026-11-29T00:00:00Z"),
        "Severity": {"Normalized": int(detail["severity"] * 10)},
        "Title": detail.get("title", gd_type),
        "Description": detail.get("description", gd_type),
        "Resources": resources,
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }


def identifier(detail: dict[str, Any]) -> dict[str, str]:
    """How Security Hub will know the finding: its `Id` and `ProductArn`."""
    return {"Id": detail["arn"], "ProductArn": f"arn:aws:securityhub:{detail['region']}::product/aws/guardduty"}


def import_now(detail: dict[str, Any], into_account: str | None = None, into_region: str | None = None) -> None:
    """Into the finding's own Security Hub, and into the one of the account and region
    whose bus got the event: the organisation's delegated administrator sees every
    member's findings, and with cross-region aggregation every linked region's."""
    finding = asff(detail)
    hubs = {(finding["AwsAccountId"], detail["region"]), (into_account or finding["AwsAccountId"], into_region or detail["region"])}
    for account, region in hubs:
        securityhub_backends[account][region].batch_import_findings([finding])


def after_event(entry: dict[str, Any], into_account: str | None = None, into_region: str | None = None) -> None:
    """Called for each event a service puts: GuardDuty findings travel on to Security Hub."""
    if entry.get("Source") != "aws.guardduty" or entry.get("DetailType") != "GuardDuty Finding":
        return
    try:
        detail = json.loads(entry["Detail"])
        asff(detail)
    except (KeyError, TypeError, ValueError, AttributeError):
        return  # not a finding GuardDuty would send on
    delay = CONFIG["securityHubImportDelaySeconds"]
    if delay < 0:
        return

    def later() -> None:
        time.sleep(delay)
        import_now(detail, into_account, into_region)

    t = threading.Thread(target=later, daemon=True)
    PENDING.append(t)
    t.start()


def configure(spec: dict[str, Any]) -> dict[str, float]:
    for key, value in spec.items():
        if key not in CONFIG:
            raise KeyError(key)
        CONFIG[key] = float(value)
    return dict(CONFIG)
