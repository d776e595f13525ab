"""Release: `firebreak release` puts back what a response changed, from what Firebreak
recorded and nothing else. A released instance has exactly its original groups on every
interface and is back in its Auto Scaling group, target group and Classic Load Balancer;
a released IP has no entry and no ledger tag left; a second release changes nothing; a
request that names a place Firebreak may not act in, or an instance someone changed since,
changes nothing. A role's session revocation is lifted only when the role is named, and a
key is never reactivated."""

import json

from conftest import assert_calls_declared, audit_records, calls_by, finding, interfaces, member_calls, put, ssh_brute_force
from firebreak_localaws import provision
from samples import findings_of
from test_drill import firebreak
from test_organisation import MEMBER, member_event, state_of
from test_response import exfiltration_event
from test_out_of_service import CLASSIC, FLEET, behind_classic, instance_tags, kept_on_termination, lifecycle, registered, web_fleet

REMOTE = "198.51.100.0"
WRITES = {"ModifyNetworkInterfaceAttribute", "ExitStandby", "RegisterTargets", "RegisterInstancesWithLoadBalancer", "DeleteTags", "DeleteNetworkAclEntry"}


def group_ids(acct, instance):
    enis = acct.client("ec2").describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}


def blocks_of(acct, ip):
    """Every deny entry of the IP and every ledger tag that names it, in every NACL."""
    acls = acct.client("ec2").describe_network_acls()["NetworkAcls"]
    entries = [(a["NetworkAclId"], e["RuleNumber"], e["Egress"]) for a in acls for e in a["Entries"] if e.get("CidrBlock") == f"{ip}/32"]
    tags = [(a["NetworkAclId"], t["Key"]) for a in acls for t in a.get("Tags", []) if t["Key"].startswith("firebreak:block:") and f"ip={ip} " in t["Value"]]
    return entries, tags


def contained(acct, event):
    put(acct, event)
    run = acct.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    return run


def release(acct, *args):
    p = firebreak(acct, "release", *args)
    return p.returncode, p.stdout + p.stderr


def release_record(acct, execution_index):
    run = acct.wait_for_execution("release", after=execution_index, timeout=60)
    records = [r for r in audit_records(acct, run["executionArn"]) if r["record"] == "release"]
    assert len(records) == 1, records
    return run, records[0]


def writes_by(acct, function):
    return [c["operation"] for c in calls_by(acct, function) if c["operation"] in WRITES]


def test_a_finding_released_puts_its_fleet_instance_and_its_ip_back_and_a_second_release_changes_nothing(account):
    instance, tg = web_fleet(account)
    before = group_ids(account, instance)
    event = ssh_brute_force(account, instance_id=instance)
    ident = provision.finding_ident(event)
    contained(account, event)
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, instance).values())) == {(isolation,)}
    assert lifecycle(account, instance) == "Standby" and blocks_of(account, REMOTE)[0], "contained first"

    code, out = release(account, ident["Id"])
    assert code == 0, out
    assert "released " + instance in out and f"{REMOTE} (rule" in out, out
    assert group_ids(account, instance) == before, "exactly its original groups on every interface"
    assert lifecycle(account, instance) == "InService"
    assert registered(account, tg, instance) and behind_classic(account, instance)
    assert blocks_of(account, REMOTE) == ([], []), "no entry and no ledger tag left"
    left = [k for k in instance_tags(account, instance) if k.startswith("firebreak:")]
    assert left == [], left
    # The evidence stays: the volumes are still kept on termination.
    assert all(kept_on_termination(account, instance).values())
    run, record = release_record(account, 0)
    assert run["status"] == "SUCCEEDED"
    assert record["release"]["finding"] == ident["Id"] and record["release"]["accountId"] == provision.ACCOUNT
    changes = {(c["what"], c["before"], c["after"]) for o in record["outcomes"] for c in o["changes"]}
    assert (f"Auto Scaling group {FLEET}", "Standby", "InService") in changes, changes
    assert (f"load balancer {CLASSIC}", "deregistered", "registered") in changes, changes
    assert record["changed"] == len([c for o in record["outcomes"] for c in o["changes"]]) >= 5
    # Groups first, then back in service: never serving while isolated.
    calls = writes_by(account, "isolate-instance")
    assert calls.index("ModifyNetworkInterfaceAttribute") < calls.index("ExitStandby") < calls.index("RegisterTargets"), calls
    noted = finding(account, ident)
    assert noted["Workflow"]["Status"] == "RESOLVED", "a release does not reopen the finding"
    assert noted["Note"]["Text"].startswith("Firebreak released this finding's containment: released " + instance), noted["Note"]["Text"]
    assert noted["UserDefinedFields"]["firebreak:release-execution"] == run["executionArn"]
    assert "finding-note" in [o["release"] for o in record["outcomes"]]

    # Again: nothing of Firebreak's is left, so nothing is written.
    writes = writes_by(account, "isolate-instance") + writes_by(account, "block-remote-ip")
    code, out = release(account, ident["Id"])
    assert code == 0, out
    assert writes_by(account, "isolate-instance") + writes_by(account, "block-remote-ip") == writes
    _, again = release_record(account, 1)
    assert again["changed"] == 0 and {o["status"] for o in again["outcomes"]} == {"already-done"}, again
    assert finding(account, ident)["Note"]["Text"] == noted["Note"]["Text"], "the note stays as the release wrote it"
    assert_calls_declared(account)


def test_two_releases_of_one_finding_at_once_both_succeed_and_it_is_put_back_once(account):
    """Two operators release the same finding at the same moment, and Auto Scaling is slow
    to answer: both read the instance in Standby, one ExitStandby is carried out and the
    other refused. The refused one must read again and finish, not fail the release."""
    import subprocess

    from samples import bin_dir

    instance, tg = web_fleet(account)
    before = group_ids(account, instance)
    event = ssh_brute_force(account, instance_id=instance)
    ident = provision.finding_ident(event)
    contained(account, event)
    account.fault(service="autoscaling", operation="ExitStandby", delaySeconds=4, count=2)

    command = [str(bin_dir() / "firebreak"), "release", ident["Id"]]
    procs = [subprocess.Popen(command, env=account.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=180)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    exits = calls_by(account, "isolate-instance", {"ExitStandby"})
    assert len(exits) == 2, "both releases asked Auto Scaling: they overlapped"

    assert group_ids(account, instance) == before
    assert lifecycle(account, instance) == "InService"
    assert registered(account, tg, instance) and behind_classic(account, instance)
    assert blocks_of(account, REMOTE) == ([], [])
    assert [k for k in instance_tags(account, instance) if k.startswith("firebreak:")] == []
    runs = account.wait_for_executions("release", count=2, timeout=60)
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"], runs
    records = [r for run in runs for r in audit_records(account, run["executionArn"]) if r["record"] == "release"]
    assert len(records) == 2, records
    # One of them took the instance out of Standby; the other says nothing of it.
    claims = [c for r in records for o in r["outcomes"] for c in o.get("changes", []) if c["what"] == f"Auto Scaling group {FLEET}"]
    assert len(claims) == 1, claims
    assert finding(account, ident)["Note"]["Text"].startswith("Firebreak released this finding's containment")
    assert_calls_declared(account)


def test_an_ip_is_released_alone_and_a_dry_run_of_it_changes_nothing(account):
    contained(account, ssh_brute_force(account))
    web = account.demo["webInstance"]
    isolated = group_ids(account, web)
    entries, tags = blocks_of(account, REMOTE)
    assert len(entries) == 2 and len(tags) == 1, (entries, tags)

    code, out = release(account, REMOTE, "--dry-run")
    assert code == 0, out
    assert "dry run: would remove" in out, out
    assert blocks_of(account, REMOTE) == (entries, tags)
    _, rehearsed = release_record(account, 0)
    assert rehearsed["release"]["dryRun"] is True and [o["status"] for o in rehearsed["outcomes"]] == ["dry-run"], rehearsed

    code, out = release(account, REMOTE, "--json")
    assert code == 0, out
    assert blocks_of(account, REMOTE) == ([], [])
    assert group_ids(account, web) == isolated, "releasing an IP leaves the instance isolated"
    assert "releasesInstances" in out and calls_by(account, "isolate-instance", {"DeleteTags"}) == []


def test_a_release_that_names_another_place_or_finds_the_instance_changed_since_changes_nothing(account):
    web = account.demo["webInstance"]
    contained(account, ssh_brute_force(account))
    calls = len(calls_by(account, "isolate-instance"))

    # A member account that is not enrolled: refused by triage, with the field.
    code, out = release(account, web, "--account", "999988887777")
    assert code == 2, out
    assert "$.release.account" in out and "not enrolled" in out, out
    assert len(calls_by(account, "isolate-instance")) == calls, "nothing was read or changed"

    # A responder added a forensic group after isolation: Firebreak's record no longer
    # describes the instance, so the release is refused and nothing moves.
    ec2 = account.client("ec2")
    forensic = ec2.create_security_group(GroupName="forensics", Description="analyst access", VpcId=account.demo["vpc"])["GroupId"]
    eni = next(iter(group_ids(account, web)))
    now = group_ids(account, web)[eni]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[*now, forensic])
    changed = group_ids(account, web)
    code, out = release(account, web)
    assert code == 1, out
    assert "changed since isolation" in out, out
    assert group_ids(account, web) == changed
    assert any(k.startswith("firebreak:original-groups") for k in instance_tags(account, web)), "the record stays for a person"
    _, record = release_record(account, 1)
    assert record["changed"] == 0 and record["outcomes"][0]["status"] == "refused", record

    # A forged record on an instance Firebreak never isolated names no group to restore:
    # nothing is trusted from it.
    other = account.demo["secondWebInstance"]
    other_groups = group_ids(account, other)
    ec2.create_tags(Resources=[other], Tags=[{"Key": "firebreak:original-groups:eni-0a1b2c3d4e5f60711", "Value": "sg-0a1b2c3d4e5f60741,0.0.0.0/0"}])
    code, out = release(account, other)
    assert code == 1 and "cannot be trusted" in out, out
    assert group_ids(account, other) == other_groups


def test_a_member_accounts_finding_is_released_there_through_the_member_roles_and_nothing_changes_here(account):
    demo = account.members[MEMBER]
    ec2 = account.client("ec2", account=MEMBER, region=demo["region"])
    before = {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [demo["webInstance"]]}])["NetworkInterfaces"]}
    event = member_event(account)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED"
    ident = provision.finding_ident(event)
    assert f":{MEMBER}:" in ident["Id"], "the finding's ARN names the member account"
    here = state_of(account)
    # The ARN decides the place: a different account beside it is refused.
    code, out = release(account, ident["Id"], "--account", provision.ACCOUNT)
    assert code == 2 and f"the finding is in account {MEMBER}" in out, out

    code, out = release(account, ident["Id"])
    assert code == 0, out
    after = {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [demo["webInstance"]]}])["NetworkInterfaces"]}
    assert after == before
    acls = ec2.describe_network_acls()["NetworkAcls"]
    assert not [t for a in acls for t in a.get("Tags", []) if t["Key"].startswith("firebreak:block:")]
    assert state_of(account) == here, "nothing changed in Firebreak's own account"
    released = [c for c in member_calls(account) if c["operation"] in WRITES]
    assert released and {(c["account"], c["region"]) for c in released} == {(MEMBER, demo["region"])}, released
    assert_calls_declared(account)


def test_a_role_named_has_its_session_revocation_lifted_only_when_it_is_the_bare_revocation(account):
    iam = account.client("iam")
    event = exfiltration_event(account)
    ident = findings_of(account, event)[0]
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED"
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"]
    # A finding's release never lifts a revocation (rotating is the fix).
    code, out = release(account, ident["Id"])
    assert code == 0, out
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"]
    # A dry run says what it would lift, and lifts nothing.
    code, out = release(account, "role/web-instance-role", "--dry-run")
    assert code == 0 and "would lift" in out, out
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"]

    code, out = release(account, "role/web-instance-role")
    assert code == 0 and "lifted the session revocation of role web-instance-role" in out, out
    assert "AWSRevokeOlderSessions" not in iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"]
    code, out = release(account, "role/web-instance-role")
    assert code == 0 and "nothing to lift" in out, out
    _, record = release_record(account, 3)
    assert record["changed"] == 0 and record["release"]["role"] == "web-instance-role"

    # A policy of that name that says more is someone else's: it stays.
    wider = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-12-01T00:00:00Z"}}},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    ]}
    iam.put_role_policy(RoleName="web-instance-role", PolicyName="AWSRevokeOlderSessions", PolicyDocument=json.dumps(wider))
    code, out = release(account, "role/web-instance-role")
    assert code == 1 and "says more than a revocation" in out, out
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"]
    # A protected principal is refused before any call.
    code, out = release(account, "role/BreakGlassAdmin")
    assert code == 2 and "protected" in out, out
    assert len(calls_by(account, "revoke-role-sessions", {"DeleteRolePolicy"})) == 1, "one lift: the refused and protected ones never called"
    assert_calls_declared(account)
