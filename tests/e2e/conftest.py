import json
import sys
import time
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "localaws"))

from firebreak_localaws import provision  # noqa: E402
from firebreak_localaws.iam_enforcement import IAM_ACTIONS  # noqa: E402
from firebreak_localaws.local_account import LocalAccount  # noqa: E402
from samples import bin_dir  # noqa: E402,F401  (the tests import it from here)

SSH_SAMPLE = ROOT / "tests/fixtures/samples/guardduty-event-partial__UnauthorizedAccess_EC2_SSHBruteForce__aws-samples-waf-acl.json"


@pytest.fixture
def account():
    acct = LocalAccount(ROOT, bin_dir()).start()
    yield acct
    acct.stop()


@pytest.fixture(autouse=True)
def no_call_outside_a_policy(request, account):
    """IAM is enforced: a runbook or a machine refused a call its policy does not allow is
    a defect, whatever the test checks (tests that provoke refusals mark themselves)."""
    before = len(account.iam_refusals())
    yield
    if request.node.get_closest_marker("provokes_refusals"):
        return
    refused = account.iam_refusals()[before:]
    assert refused == [], f"IAM refused calls: {refused}"


def ssh_brute_force(acct, instance_id=None, severity=8.0, finding_id="0123456789abcdef0123456789abcdef"):
    """The public SSH brute-force sample, rewritten to a demo instance, HIGH."""
    sample = json.loads(SSH_SAMPLE.read_text())["detail"]
    return provision.guardduty_event(sample, instance_id or acct.demo["webInstance"], acct.demo, severity, finding_id)


def interfaces(acct, instance_id):
    """Each of the instance's interfaces and the names of its security groups."""
    enis = acct.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupName"] for g in e["Groups"]) for e in enis}


def revoked(acct, role):
    """Whether the role carries the revocation policy."""
    return "AWSRevokeOlderSessions" in acct.client("iam").list_role_policies(RoleName=role)["PolicyNames"]


def put(acct, event):
    acct.put_event(event)


def finding(acct, ident):
    return acct.client("securityhub").get_findings(Filters={"Id": [{"Value": ident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]


AUDIT_RECORD = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "audit-record.json").read_text()))


def audit_records(acct, execution_arn=None, at_least=1):
    """The audit records (of one execution, when named), each checked against the schema
    generated from the Rust type: a record of another shape fails the test."""
    logs = acct.client("logs")
    deadline = time.time() + 10
    records = []
    while time.time() < deadline:
        events = logs.filter_log_events(logGroupName=provision.AUDIT_LOG_GROUP).get("events", [])
        records = [json.loads(e["message"]) for e in events]
        if execution_arn is not None:
            records = [r for r in records if r.get("executionId") == execution_arn]
        if len(records) >= at_least:
            break
        time.sleep(0.2)
    for r in records:
        AUDIT_RECORD.validate(r)
    return records


def execution_records(acct, execution_arn=None):
    return [r for r in audit_records(acct, execution_arn) if r["record"] == "execution"]


def calls_by(acct, function, operations=None):
    """The calls a function made, from the local account's request log."""
    key = acct.deployed["credentials"][function]["AWS_ACCESS_KEY_ID"]
    return [r for r in acct.request_log() if r["accessKeyId"] == key and (operations is None or r["operation"] in operations)]


SERVICE_PREFIX = {"ec2": "ec2", "iam": "iam", "ssm": "ssm", "securityhub": "securityhub", "logs": "logs", "awslambda": "lambda", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


def iam_action(call):
    """The IAM action that authorises a logged call (BatchUpdateFindingsV2 is authorised
    as securityhub:BatchUpdateFindings, as in AWS)."""
    action = f"{SERVICE_PREFIX.get(call['service'], call['service'])}:{call['operation']}"
    return IAM_ACTIONS.get(action, action)


def member_calls(acct, function=None):
    """The calls made with a member role (of one runbook, when named), from the request log."""
    prefix = provision.MEMBER_ROLE_PREFIX
    return [r for r in acct.request_log() if (r.get("role") or "").startswith(prefix) and (function is None or r["role"] == prefix + function)]


def assert_calls_declared(acct, functions=None):
    """Every call each function made is an action its permissions.json declares: least
    privilege derived from the code, checked against what really happened, in Firebreak's
    own account and, through the member roles, in the member accounts (assuming a member
    role is the one call a runbook that acts there adds). Returns the number of calls
    checked per function."""
    checked = {}
    for fn in functions or acct.deployed["functions"]:
        permissions = json.loads((ROOT / "runbooks" / fn / "permissions.json").read_text())
        declared = set()
        for s in permissions["statements"]:
            declared |= set(s["actions"])
        own = declared | ({"sts:AssumeRole"} if permissions.get("memberRole") else set())
        in_members = {a for s in permissions["statements"] if not s.get("securityAccountOnly") for a in s["actions"]}
        calls = calls_by(acct, fn)
        for call in calls:
            action = iam_action(call)
            assert action in own, f"{fn} called {action}, which runbooks/{fn}/permissions.json does not declare"
        elsewhere = member_calls(acct, fn)
        for call in elsewhere:
            action = iam_action(call)
            assert action in in_members, f"{fn}'s member role called {action} in {call['account']}, which runbooks/{fn}/permissions.json does not declare for member accounts"
        checked[fn] = len(calls) + len(elsewhere)
    return checked


def set_policy(acct, change):
    """Stores a changed copy of the deployed policy (the built-in one with the local
    organisation enrolled) in the policy parameter."""
    policy = provision.local_policy(ROOT)
    change(policy)
    acct.client("ssm").put_parameter(Name=provision.POLICY_PARAMETER, Value=json.dumps(policy, separators=(",", ":")), Type="String", Tier="Advanced", Overwrite=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "provokes_refusals: the test makes IAM refuse calls on purpose")


def plant_block(ec2, acl_id, number, ip, hours_left, key=None, ours=True):
    """A block as an earlier run would have left it: its ledger tag (`key`, default the
    current form) saying it ends `hours_left` from now (negative: expired), and its deny
    entries both ways. `ours=False`: the entries only, as someone else's rule."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    if ours:
        value = f"ip={ip} at={stamp(now - timedelta(hours=30))} until={stamp(now + timedelta(hours=hours_left))} finding=old"
        ec2.create_tags(Resources=[acl_id], Tags=[{"Key": key or f"firebreak:block:{number}:{ip}", "Value": value}])
    for egress in (False, True):
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol="-1", RuleAction="deny", Egress=egress, CidrBlock=f"{ip}/32")


def run_sweep(acct):
    """Starts the sweep machine by hand and returns its `sweep` result (it must succeed)."""
    run = acct.client("stepfunctions").start_execution(stateMachineArn=acct.deployed["stateMachines"]["sweep-ip-blocks"], input="{}")
    out = acct.wait_for_execution("sweep-ip-blocks")
    assert out["executionArn"] == run["executionArn"] and out["status"] == "SUCCEEDED", out
    return json.loads(out["output"])["sweep"]
