"""Organisation scale: Firebreak runs in the security account and contains a member
account's finding in that account and region, through the member role of each runbook,
and nowhere else. The local organisation (provision.py): the security account, two
enrolled members (the first's demo environment in the second region), one account that is
not enrolled."""

import json

from conftest import assert_calls_declared, execution_records, finding, member_calls, plant_block, put, run_sweep, SSH_SAMPLE
from firebreak_localaws import provision
from samples import FIXTURES, as_event, findings_of
MEMBER, OTHER_MEMBER = provision.MEMBERS


def member_event(acct, member=MEMBER, finding_id="0123456789abcdef0123456789abc0de", severity=8.0):
    """The SSH brute-force sample in a member account's demo environment, in that demo's region."""
    demo = acct.members[member]
    sample = json.loads(SSH_SAMPLE.read_text())["detail"]
    return provision.guardduty_event(sample, demo["webInstance"], demo, severity, finding_id, account=member, region=demo["region"])


def state_of(acct, account=provision.ACCOUNT, region=provision.REGION):
    """What a response could change in one account and region: every interface's groups,
    every NACL's entries and tags, every role's inline policies, every key's status."""
    ec2, iam = acct.client("ec2", account=account, region=region), acct.client("iam", account=account, region=region)
    enis = {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    acls = {a["NetworkAclId"]: (sorted(json.dumps(e, sort_keys=True) for e in a["Entries"]), sorted((t["Key"], t["Value"]) for t in a.get("Tags", [])))
            for a in ec2.describe_network_acls()["NetworkAcls"]}
    roles = {r["RoleName"]: sorted(iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]) for r in iam.list_roles()["Roles"]}
    keys = {k["AccessKeyId"]: k["Status"] for u in iam.list_users()["Users"] for k in iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]}
    return {"interfaces": enis, "acls": acls, "roles": roles, "keys": keys}


def respond(acct, event, timeout=90):
    put(acct, event)
    return acct.wait_for_execution("response", timeout=timeout)


def test_a_member_accounts_finding_in_the_second_region_is_contained_there_and_nothing_changes_here(account):
    demo = account.members[MEMBER]
    event = member_event(account)
    ident = findings_of(account, event)[0]
    here = state_of(account)
    here_second_region = state_of(account, region=provision.SECOND_REGION)
    other = state_of(account, OTHER_MEMBER, provision.MEMBER_DEMO_REGIONS[OTHER_MEMBER])
    run = respond(account, event)
    assert run["status"] == "SUCCEEDED", [r.get("failures") for r in execution_records(account, run["executionArn"])]

    # Contained in the member account, in the second region.
    ec2 = account.client("ec2", account=MEMBER, region=demo["region"])
    (instance,) = [i for r in ec2.describe_instances(InstanceIds=[demo["webInstance"]])["Reservations"] for i in r["Instances"]]
    isolation = {g["GroupName"] for iface in instance["NetworkInterfaces"] for g in iface["Groups"]}
    assert isolation and all(name.startswith("firebreak-isolation") for name in isolation), isolation
    (acl,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [demo["subnets"][0]]}])["NetworkAcls"]
    remote_ip = event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"]
    denies = {(e["RuleNumber"], e["Egress"]) for e in acl["Entries"] if e["RuleAction"] == "deny" and e.get("CidrBlock") == f"{remote_ip}/32"}
    assert len(denies) == 2 and {egress for _, egress in denies} == {False, True}, acl["Entries"]
    assert any(t["Key"].startswith("firebreak:block:") for t in acl.get("Tags", [])), acl.get("Tags")

    # Nothing changed in Firebreak's own account (either region) or in the other member.
    assert state_of(account) == here
    assert state_of(account, region=provision.SECOND_REGION) == here_second_region
    assert state_of(account, OTHER_MEMBER, provision.MEMBER_DEMO_REGIONS[OTHER_MEMBER]) == other

    # Every change went through the member roles, in that account and region only.
    changed = [c for c in member_calls(account) if c["operation"].startswith(("Create", "Modify", "Authorize", "Revoke", "Put", "Delete", "Replace"))]
    assert changed and {(c["account"], c["region"]) for c in changed} == {(MEMBER, demo["region"])}, changed
    assert {c["role"] for c in member_calls(account)} >= {f"{provision.MEMBER_ROLE_PREFIX}triage", f"{provision.MEMBER_ROLE_PREFIX}isolate-instance", f"{provision.MEMBER_ROLE_PREFIX}block-remote-ip"}
    assert_calls_declared(account)

    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED", f.get("Note")
    assert MEMBER in f["Note"]["Text"] or demo["webInstance"] in f["Note"]["Text"], f["Note"]


def test_a_member_accounts_credential_finding_revokes_that_accounts_role_only(account):
    """The harm the organisation setup showed, closed: the role of the finding's account is
    revoked, the same-named role in the security account and in the other member is not."""
    event = as_event(FIXTURES / "assumed-role-credential-exfiltration.json", account)
    d = event["detail"]
    d["accountId"] = MEMBER
    d["arn"] = d["arn"].replace(f":{provision.ACCOUNT}:", f":{MEMBER}:")
    ident = findings_of(account, event)[0]
    run = respond(account, event)
    assert run["status"] == "SUCCEEDED", [r.get("failures") for r in execution_records(account, run["executionArn"])]
    policies = lambda acct_id: account.client("iam", account=acct_id).list_role_policies(RoleName="web-instance-role")["PolicyNames"]  # noqa: E731
    assert "AWSRevokeOlderSessions" in policies(MEMBER)
    assert "AWSRevokeOlderSessions" not in policies(provision.ACCOUNT)
    assert "AWSRevokeOlderSessions" not in policies(OTHER_MEMBER)
    puts = [c for c in member_calls(account, "revoke-role-sessions") if c["operation"] == "PutRolePolicy"]
    assert puts and {c["account"] for c in puts} == {MEMBER}, puts
    assert_calls_declared(account)
    assert finding(account, ident)["Workflow"]["Status"] == "RESOLVED"


def test_a_finding_from_an_account_that_is_not_enrolled_is_notified_and_that_account_never_called(account):
    event = member_event(account)
    d = event["detail"]
    outsider = provision.NOT_ENROLLED
    d["accountId"] = outsider
    d["arn"] = d["arn"].replace(f":{MEMBER}:", f":{outsider}:")
    ident = findings_of(account, event)[0]
    run = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    assert [r for r in account.request_log() if r.get("account") == outsider] == []
    assert member_calls(account) == []
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert f"the finding is from account {outsider}, which is not enrolled" in f["Note"]["Text"], f["Note"]
    (record,) = execution_records(account, run["executionArn"])
    assert record["resolution"] == "not-contained"
    assert {s["reason"] for s in record["skipped"]} >= {"outside-deployment"}


def test_a_drill_of_a_member_accounts_finding_dry_then_real(account, tmp_path):
    """`firebreak drill` on a member's finding: the dry run changes nothing there or here,
    the real drill contains the instance in the member account's own region."""
    from test_drill import drill

    demo = account.members[MEMBER]
    event = member_event(account, finding_id="0123456789abcdef0123456789abd111")
    provision.import_finding(account.client, event)
    member_before = state_of(account, MEMBER, demo["region"])
    here_before = state_of(account)
    p, dry = drill(account, tmp_path, event, "--dry-run", "--playbook", "ec2-compromise", "--expect", "dry-run")
    assert p.returncode == 0, p.stderr
    assert {o["status"] for o in dry["outcomes"]} == {"dry-run"}, dry["outcomes"]
    assert state_of(account, MEMBER, demo["region"]) == member_before
    assert state_of(account) == here_before
    p, real = drill(account, tmp_path, event, "--playbook", "ec2-compromise")
    assert p.returncode == 0, p.stderr
    assert [o["action"] for o in real["outcomes"] if o["action"] != "mark-resolved"] == ["isolate-instance"]
    assert all(o["status"] == "done" for o in real["outcomes"]), real["outcomes"]
    after = state_of(account, MEMBER, demo["region"])
    assert after["interfaces"] != member_before["interfaces"]
    assert state_of(account) == here_before


def test_the_sweep_removes_expired_blocks_in_the_enrolled_accounts_and_regions_too(account):
    """A block in a member account expires there too: the sweep goes everywhere Firebreak
    may have blocked, through the member roles, and removes only its own expired blocks."""
    demo = account.members[MEMBER]
    ec2 = account.client("ec2", account=MEMBER, region=demo["region"])
    (acl,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [demo["subnets"][0]]}])["NetworkAcls"]
    acl_id = acl["NetworkAclId"]
    plant_block(ec2, acl_id, 91, "203.0.113.21", -2)
    plant_block(ec2, acl_id, 92, "203.0.113.22", 0, ours=False)
    swept = run_sweep(account)
    places = {f"{a}/{r}" for a in [provision.ACCOUNT, *provision.MEMBERS] for r in (provision.REGION, provision.SECOND_REGION)}
    assert set(swept["swept"]) == places, swept["swept"]
    assert [(r["accountId"], r["region"], r["ruleNumber"], r["ip"]) for r in swept["removed"]] == [(MEMBER, demo["region"], 91, "203.0.113.21")]
    (acl,) = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"]
    numbers = {(e["RuleNumber"], e["Egress"]) for e in acl["Entries"]}
    assert (91, False) not in numbers and (91, True) not in numbers
    assert (92, False) in numbers and (92, True) in numbers, "not ours: kept"
    assert not [t for t in acl.get("Tags", []) if t["Key"].startswith("firebreak:block:91")]
    deletes = [c for c in member_calls(account, "block-remote-ip") if c["operation"] == "DeleteNetworkAclEntry"]
    assert deletes and {(c["account"], c["region"]) for c in deletes} == {(MEMBER, demo["region"])}
    assert_calls_declared(account, ["block-remote-ip"])


def test_the_note_names_the_account_and_its_security_contact_and_a_second_finding_looks_nothing_up(account):
    from conftest import calls_by

    lookups = lambda: [c for c in calls_by(account, "triage") if c["service"] in ("organizations", "account")]  # noqa: E731
    first = member_event(account, finding_id="0123456789abcdef0123456789abe001", severity=5.0)
    ident = findings_of(account, first)[0]
    run = respond(account, first)
    assert run["status"] == "SUCCEEDED", run
    f = finding(account, ident)
    note = f["Note"]["Text"]
    assert "Account 111122223333 (workload-prod, Workloads/Production, production, org severity HIGH); security contact Sam Rivera security-prod@example.com." in note, note
    fields = f.get("UserDefinedFields", {})
    assert fields.get("firebreak:account-name") == "workload-prod", fields
    assert fields.get("firebreak:ou-path") == "Workloads/Production"
    assert fields.get("firebreak:org-severity") == "HIGH", "GuardDuty 5.0 in production"
    assert fields.get("firebreak:security-contact", "").startswith("Sam Rivera security-prod@example.com")
    assert fields.get("firebreak:cost-centre") == "CC-1234"
    looked_up = len(lookups())
    assert looked_up >= 4, "DescribeAccount, ListParents, DescribeOrganizationalUnit, ListTagsForResource, GetAlternateContact"
    # The second finding from the same account: from the cache, no Organizations or Account call.
    second = member_event(account, finding_id="0123456789abcdef0123456789abe002", severity=5.0)
    ident2 = findings_of(account, second)[0]
    put(account, second)
    run2 = account.wait_for_execution("response", after=1)
    assert run2["status"] == "SUCCEEDED", run2
    assert len(lookups()) == looked_up, lookups()[looked_up:]
    assert [c for c in calls_by(account, "triage") if c["operation"] == "GetItem"], "read from the cache"
    assert "security contact Sam Rivera" in finding(account, ident2)["Note"]["Text"]
    assert_calls_declared(account, ["triage"])
