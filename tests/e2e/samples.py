"""The public samples and our fixtures, rewritten to the demo resources of the local
account so that Firebreak acts on them: account ids, instance ids, the remote IPs, the
access key and user, the custom action's ARN; sample flags cleared."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from firebreak_localaws import provision

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "fixtures" / "samples"
FIXTURES = ROOT / "tests" / "fixtures" / "findings"

ACCOUNT_FIELDS = re.compile(r'"(accountId|AwsAccountId|account)":\s*"(\d{12})"')
INSTANCE = re.compile(r"\bi-[0-9a-f]{8,17}\b")
REMOTE_IP = re.compile(r'(remoteIpDetails[^"]*"?:?\s*(?:\{[^{}]*?)?"ipAddressV4":\s*"|remoteIpDetails/ipAddressV4":\s*")(\d+\.\d+\.\d+\.\d+)"')


def rewrite(text: str, acct: Any, ip_base: int = 10) -> str:
    """The sample's text with its ids and IPs pointing at the local account's demo."""
    demo = acct.demo
    for _, account in set(ACCOUNT_FIELDS.findall(text)):
        text = text.replace(account, provision.ACCOUNT)
    text = text.replace("arn:aws::", "arn:aws:")
    text = INSTANCE.sub(demo["webInstance"], text)
    ips: dict[str, str] = {}

    def new_ip(m: re.Match[str]) -> str:
        ip = ips.setdefault(m.group(2), f"203.0.113.{ip_base + len(ips)}")
        return f'{m.group(1)}{ip}"'

    text = REMOTE_IP.sub(new_ip, text)
    return text


def bin_dir() -> Path:
    """Where the Rust binaries are: the runbooks and the firebreak CLI."""
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return Path(os.environ.get("FIREBREAK_BIN_DIR", str(Path(target) / "debug")))


def input_kind(doc: dict[str, Any]) -> str | None:
    """What the library says the document is (`firebreak plan --json`'s `inputKind`), or
    None when it refuses it: the tests ask, they do not sniff with rules of their own."""
    p = subprocess.run([str(bin_dir() / "firebreak"), "plan", "--json", "-"], input=json.dumps(doc), capture_output=True, text=True, timeout=60)
    return json.loads(p.stdout)["inputKind"] if p.returncode == 0 else None


# What EventBridge carries (or a bare finding it would carry): the shapes `as_event` wraps.
EVENT_SHAPES = {"guardDutyEvent", "securityHubImportedEvent", "securityHubCustomActionEvent", "guardDutyFinding", "asffFinding"}


def finding_bearing() -> list[Path]:
    """Every sample that carries findings Firebreak reads as an event (the others are API
    requests, a policy, Insight results or a cut envelope: the library refuses them, each
    with its reason; GetFindings output is started by hand, in test_shapes). The AWS user
    guide's ASFF example prints `arn:aws::` with an extra colon; it is read with that typo
    mended, as `rewrite` does."""
    return [
        path
        for path in sorted(SAMPLES.glob("*.json"))
        if input_kind(json.loads(path.read_text().replace("arn:aws::", "arn:aws:"))) in EVENT_SHAPES
    ]


def as_event(path: Path, acct: Any, ip_base: int = 10) -> dict[str, Any]:
    """The EventBridge event that would carry the sample, rewritten."""
    doc = json.loads(rewrite(path.read_text(), acct, ip_base))
    target = acct.deployed["actionTargetArn"]
    kind = input_kind(doc)
    if kind == "asffFinding":  # a bare ASFF finding: the Security Hub button sends it
        doc = {"detail-type": "Security Hub Findings - Custom Action", "source": "aws.securityhub",
               "resources": [target], "detail": {"actionName": "Firebreak contain", "findings": [doc]}}
    elif kind == "guardDutyFinding":  # a bare GuardDuty finding: GuardDuty's event
        doc = {"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "resources": [], "detail": doc}
    elif kind is None:
        raise ValueError(f"{path.name}: the library refuses it as input")
    if doc.get("source") == "aws.guardduty":
        d = doc["detail"]
        d.update({"accountId": provision.ACCOUNT, "region": provision.REGION, "partition": "aws"})
        d["arn"] = f"arn:aws:guardduty:{provision.REGION}:{provision.ACCOUNT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{d['id']}"
        d.setdefault("service", {}).setdefault("additionalInfo", {})["sample"] = False
        key = d.get("resource", {}).get("accessKeyDetails")
        if key and key.get("userType") == "IAMUser":
            key.update({"accessKeyId": acct.demo["accessKey"], "userName": acct.demo["user"]})
        for bucket in d.get("resource", {}).get("s3BucketDetails") or []:
            # The sample's placeholder "bucketName" is not a valid name: triage would drop it.
            bucket.update({"name": "firebreak-demo-bucket", "arn": "arn:aws:s3:::firebreak-demo-bucket"})
        details = d.get("resource", {}).get("instanceDetails")
        if details and d["resource"].get("resourceType") == "Instance":
            provision.point_at_demo_instance(details, acct.demo["webInstance"], acct.demo)
    elif doc.get("source") == "aws.securityhub":
        doc["resources"] = [target]
    doc.setdefault("region", provision.REGION)
    doc.setdefault("account", provision.ACCOUNT)
    return doc


def import_findings(acct: Any, event: dict[str, Any]) -> list[dict[str, str]]:
    """Puts the event's findings into Security Hub now, as the product would have long
    before: for drills, which start a response by hand with findings that exist."""
    if event["source"] == "aws.guardduty":
        return [provision.import_finding(acct.client, event)]
    return security_hub_findings(acct, event)


def findings_of(acct: Any, event: dict[str, Any]) -> list[dict[str, str]]:
    """The findings an event put through EventBridge is about. A Security Hub event's
    findings are in Security Hub already (they come from there); a GuardDuty event's finding
    is only named: GuardDuty's copy reaches Security Hub later, as in AWS."""
    if event["source"] == "aws.guardduty":
        return [provision.finding_ident(event)]
    return security_hub_findings(acct, event)


def security_hub_findings(acct: Any, event: dict[str, Any]) -> list[dict[str, str]]:
    hub = acct.client("securityhub")
    findings = event["detail"]["findings"]
    # Events carry a few lower-case fields Security Hub adds on its way out
    # (approximateArrivalTimestamp, updatedAt); BatchImportFindings does not take them.
    hub.batch_import_findings(Findings=[{k: v for k, v in f.items() if k[:1].isupper()} for f in findings])
    return [{"Id": f["Id"], "ProductArn": f["ProductArn"]} for f in findings]
