"""GuardDuty Extended Threat Detection end to end: an attack sequence naming two instances,
their role and an endpoint is contained target by target; over the policy's cap nothing
changes and a person is asked."""

import json

from conftest import assert_calls_declared, calls_by, execution_records, finding, interfaces, put, revoked, set_policy
from firebreak_localaws import provision
from samples import FIXTURES

ENDPOINT = "203.0.113.77"
MUTATING = {"CreateSnapshot", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute", "CreateTags", "CreateNetworkAclEntry", "PutRolePolicy"}


def sequence_event(acct):
    """The fixture's sequence over the demo's two web servers and their role."""
    text = (FIXTURES / "attack-sequence-ec2-instance-group.json").read_text()
    text = text.replace("111122223333", provision.ACCOUNT)
    text = text.replace("i-0a1b2c3d4e5f60718", acct.demo["webInstance"]).replace("i-0b2c3d4e5f6071829", acct.demo["secondWebInstance"])
    text = text.replace("198.51.100.77", ENDPOINT)
    return json.loads(text)


def denied(acct, subnet):
    acl = acct.client("ec2").describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]
    return sorted((e["Egress"], e["CidrBlock"]) for e in acl["Entries"] if e["RuleAction"] == "deny" and e.get("CidrBlock") == f"{ENDPOINT}/32")


def test_a_sequence_naming_two_instances_and_a_role_contains_all_three_in_one_note(account):
    event = sequence_event(account)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=150)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    web, web2 = account.demo["webInstance"], account.demo["secondWebInstance"]
    for instance in (web, web2):
        assert set(map(tuple, interfaces(account, instance).values())) == {(isolation,)}, instance
    assert revoked(account, "web-instance-role")
    # The endpoint is blocked at every subnet either instance is in, both directions.
    for subnet in account.demo["subnets"]:
        assert denied(account, subnet) == [(False, f"{ENDPOINT}/32"), (True, f"{ENDPOINT}/32")], subnet
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED", f["Note"]
    note = f["Note"]["Text"]
    for target in (web, web2, "web-instance-role"):
        assert target in note, (target, note)
    out = json.loads(run["output"])
    isolated = [a for a in out["plans"][0]["actions"] if a["action"] == "isolate-instance"]
    assert sorted(a["instanceId"] for a in isolated) == sorted([web, web2])
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "contained"
    assert_calls_declared(account)
    # The exempt instance, in the same VPC, was never touched.
    assert "firebreak-isolation" not in json.dumps(interfaces(account, account.demo["exemptInstance"]))


def test_a_sequence_over_the_cap_changes_nothing_and_asks_a_person(account):
    set_policy(account, lambda p: p.__setitem__("attackSequences", {"maxTargets": 3}))
    before = {i: interfaces(account, i) for i in (account.demo["webInstance"], account.demo["secondWebInstance"])}
    event = sequence_event(account)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert {i: interfaces(account, i) for i in before} == before
    assert not revoked(account, "web-instance-role")
    assert denied(account, account.demo["subnets"][0]) == []
    for fn in ("isolate-instance", "block-remote-ip", "revoke-role-sessions"):
        assert [c for c in calls_by(account, fn) if c["operation"] in MUTATING] == [], fn
    # GuardDuty's copy reaches Security Hub after the event; mark-resolved waited for it.
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED", f["Note"]
    assert "more than attackSequences.maxTargets (3)" in f["Note"]["Text"], f["Note"]["Text"]
    assert "a person must decide" in f["Note"]["Text"]
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "not-contained"
