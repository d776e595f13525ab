import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "localaws"))

from firebreak_localaws import provision  # noqa: E402
from firebreak_localaws.local_account import LocalAccount  # noqa: E402

SSH_SAMPLE = ROOT / "tests/fixtures/samples/guardduty-event-partial__UnauthorizedAccess_EC2_SSHBruteForce__aws-samples-waf-acl.json"


def bin_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return Path(os.environ.get("FIREBREAK_BIN_DIR", str(Path(target) / "debug")))


@pytest.fixture
def account():
    acct = LocalAccount(ROOT, bin_dir()).start()
    yield acct
    acct.stop()


def ssh_brute_force(acct, instance_id=None, severity=8.0, finding_id="0123456789abcdef0123456789abcdef"):
    """The public SSH brute-force sample, rewritten to a demo instance, HIGH."""
    sample = json.loads(SSH_SAMPLE.read_text())["detail"]
    return provision.guardduty_event(sample, instance_id or acct.demo["webInstance"], acct.demo, severity, finding_id)


def put(acct, event):
    acct.client("events").put_events(
        Entries=[{"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}]
    )


def finding(acct, ident):
    return acct.client("securityhub").get_findings(Filters={"Id": [{"Value": ident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]


def audit_records(acct):
    logs = acct.client("logs")
    deadline = time.time() + 10
    while time.time() < deadline:
        events = logs.filter_log_events(logGroupName=provision.AUDIT_LOG_GROUP).get("events", [])
        if events:
            return [json.loads(e["message"]) for e in events]
        time.sleep(0.2)
    return []
