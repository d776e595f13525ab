"""The response end to end on the local account: every entry point (GuardDuty rule,
Security Hub button, StartExecution), the router running the playbooks its plan names,
the credential and IP-blocking runbooks against real IAM and EC2 state in moto."""

import json
import time
from datetime import datetime, timezone

import pytest
from conftest import ROOT, assert_calls_declared, audit_records, calls_by, execution_records, finding, plant_block, put, run_sweep, set_policy, ssh_brute_force
from firebreak_localaws import provision
from samples import FIXTURES, as_event, finding_bearing, findings_of, import_findings

CONTAINED = {"done", "already-done"}


def respond(acct, event, after=0, timeout=90):
    """Puts the event on EventBridge and waits for the response it starts."""
    put(acct, event)
    run = acct.wait_for_execution("response", after=after, timeout=timeout)
    return run, json.loads(run.get("output") or "{}")


def outcomes(acct, run, finding_id):
    """What the runbooks did for one finding, from the audit records (read through their
    schema), the closing note left out."""
    records = audit_records(acct, run["executionArn"])
    return [r for r in records if r["record"] == "action" and r["findingId"] == finding_id and r["action"] != "mark-resolved"]


def nacl_entries(acct, subnet=None):
    acl = acct.client("ec2").describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet or acct.demo["subnets"][0]]}]
    )["NetworkAcls"][0]
    entries = {(e["RuleNumber"], e["Egress"]): (e["RuleAction"], e.get("CidrBlock") or e.get("Ipv6CidrBlock")) for e in acl["Entries"]}
    tags = {t["Key"]: t["Value"] for t in acl.get("Tags", []) if t["Key"].startswith("firebreak:block:")}
    return acl["NetworkAclId"], entries, tags


@pytest.mark.parametrize("sample", finding_bearing(), ids=lambda p: p.name.split("__")[1])
def test_every_sample_finding_ends_with_its_planned_actions_done_and_its_skips_noted(account, sample):
    event = as_event(sample, account)
    idents = findings_of(account, event)
    run, out = respond(account, event)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    responses = out["responses"]
    assert len(responses) == len(idents) == len(out["plans"])
    for response, plan in zip(responses, out["plans"]):
        assert response["findingId"] == plan["finding"]["securityHub"]["Id"]
        planned = sorted(a["action"] for a in plan["actions"] if a["action"] != "mark-resolved")
        done = outcomes(account, run, response["findingId"])
        assert sorted(o["action"] for o in done) == planned, (planned, done)
        assert all(o["status"] in CONTAINED for o in done), done
        note = finding(account, plan["finding"]["securityHub"])["Note"]["Text"]
        for skip in plan["skipped"]:
            # A note is cut at Security Hub's 512 characters; what fits must be there.
            head = skip["detail"][:40]
            assert head in note or note.endswith("…"), (skip, note)
        status = finding(account, plan["finding"]["securityHub"]).get("Workflow", {}).get("Status", "NEW")
        # A type the policy leaves to a person (no runbook for it) is NOTIFIED, never NEW.
        left = [s for s in plan["skipped"] if s["reason"] == "notify-only"]
        expected = ("RESOLVED", "contained") if planned else ("NOTIFIED", "not-contained") if left else ("NEW", "nothing-to-do")
        assert (status, response["resolution"]) == expected, (status, response, note)


def test_a_custom_action_event_with_two_findings_gets_two_responses(account):
    text = (FIXTURES / "securityhub-custom-action-two-findings.json").read_text()
    event = as_event(FIXTURES / "securityhub-custom-action-two-findings.json", account)
    assert "193043430472" in text and "193043430472" not in json.dumps(event)
    idents = findings_of(account, event)
    run, out = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    assert len(out["responses"]) == 2
    for ident in idents:
        f = finding(account, ident)
        assert f["Workflow"]["Status"] == "RESOLVED", f["Note"]
        assert f["Note"]["Text"].startswith("Firebreak contained this finding")
    executions = [r for r in audit_records(account) if r["record"] == "execution"]
    assert sorted(r["findingId"] for r in executions) == sorted(i["Id"] for i in idents)


def exfiltration_event(acct):
    event = as_event(FIXTURES / "assumed-role-credential-exfiltration.json", acct)
    return event


def revocation(acct, role="web-instance-role"):
    return acct.client("iam").get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]


def test_credential_exfiltration_revokes_the_roles_sessions_issued_before_now(account):
    event = exfiltration_event(account)
    ident = findings_of(account, event)[0]
    started = datetime.now(timezone.utc)
    run, out = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    doc = revocation(account)
    doc = json.loads(doc) if isinstance(doc, str) else doc
    statement = doc["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["*"] and statement["Resource"] == ["*"]
    cutoff = datetime.fromisoformat(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].replace("Z", "+00:00"))
    assert abs((cutoff - started).total_seconds()) < 10, (cutoff, started)
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert "revoked every session of role web-instance-role issued before" in f["Note"]["Text"]
    # A second run moves the cutoff forward.
    time.sleep(1.2)
    run, _ = respond(account, event, after=1)
    assert run["status"] == "SUCCEEDED"
    second = revocation(account)
    second = json.loads(second) if isinstance(second, str) else second
    assert second["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] > statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    checked = assert_calls_declared(account)
    assert checked["revoke-role-sessions"] >= 4, checked


def iam_user_event(acct):
    event = as_event(ROOT / "tests/fixtures/samples/guardduty-detail__Recon_IAMUser_MaliciousIPCaller.Custom__aws-samples-automated-response.json", acct)
    # The sample is archived (policy never acts on those): this one is live.
    event["detail"]["service"]["archived"] = False
    return event


def test_an_iam_user_finding_deactivates_that_key_only(account):
    iam = account.client("iam")
    other = iam.create_access_key(UserName=account.demo["user"])["AccessKey"]["AccessKeyId"]
    event = iam_user_event(account)
    ident = findings_of(account, event)[0]
    run, _ = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=account.demo["user"])["AccessKeyMetadata"]}
    assert keys == {account.demo["accessKey"]: "Inactive", other: "Active"}
    assert iam.get_user(UserName=account.demo["user"])["User"]["UserName"] == account.demo["user"]
    assert not [c for c in calls_by(account, "revoke-role-sessions") if c["operation"].startswith("Delete")]
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert f"deactivated access key {account.demo['accessKey']} of user {account.demo['user']} (not deleted)" in f["Note"]["Text"]


def test_throttling_on_put_role_policy_is_retried_and_the_response_completes(account):
    event = exfiltration_event(account)
    findings_of(account, event)
    account.fault(service="iam", operation="PutRolePolicy", code="Throttling", status=400, count=2)
    run, _ = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    assert revocation(account)
    assert len(calls_by(account, "revoke-role-sessions", {"PutRolePolicy"})) == 3


def test_throttling_on_create_network_acl_entry_is_retried_and_the_response_completes(account):
    event = ssh_brute_force(account, severity=5.0)
    provision.finding_ident(event)
    account.fault(service="ec2", operation="CreateNetworkAclEntry", code="RequestLimitExceeded", status=503, count=2)
    run, _ = respond(account, event)
    assert run["status"] == "SUCCEEDED", run
    _, entries, _ = nacl_entries(account)
    assert entries[(80, False)] == ("deny", "198.51.100.0/32") and entries[(80, True)] == ("deny", "198.51.100.0/32")
    assert len(calls_by(account, "block-remote-ip", {"CreateNetworkAclEntry"})) == 2 + 2


def test_a_persistent_nacl_failure_ends_notified_with_the_reason_and_audited(account):
    event = ssh_brute_force(account, severity=5.0)
    ident = provision.finding_ident(event)
    account.fault(service="ec2", operation="CreateNetworkAclEntry", code="UnauthorizedOperation", status=403, count=100)
    run, _ = respond(account, event, timeout=120)
    assert run["status"] == "FAILED"
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert f["Note"]["Text"].startswith("Firebreak could not complete the response: malicious-remote-ip playbook: AwsCallFailed: ec2:CreateNetworkAclEntry"), f["Note"]
    execution = execution_records(account)
    assert execution and execution[0]["resolution"] == "failed"


def block(acct, ip, finding_id, after):
    event = ssh_brute_force(acct, severity=5.0, finding_id=finding_id)
    event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] = ip
    provision.finding_ident(event)
    run, out = respond(acct, event, after=after)
    assert run["status"] == "SUCCEEDED", run
    return run, event["detail"]["arn"]


def test_a_full_band_evicts_only_firebreaks_oldest_entry_and_the_same_ip_gets_one_entry(account):
    set_policy(account, lambda p: p["ipBlocking"].update({"ruleNumbers": {"first": 80, "last": 81}}))
    ec2 = account.client("ec2")
    acl, _, _ = nacl_entries(account)
    # A rule Firebreak did not write, inside its band.
    for egress in (False, True):
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=81, Protocol="-1", RuleAction="deny", Egress=egress, CidrBlock="192.0.2.0/24")
    block(account, "203.0.113.1", "a" * 32, 0)
    _, entries, tags = nacl_entries(account)
    assert entries[(80, False)] == ("deny", "203.0.113.1/32") and "ip=203.0.113.1" in tags["firebreak:block:80:203.0.113.1"]

    block(account, "203.0.113.1", "b" * 32, 1)
    _, again, tags_again = nacl_entries(account)
    assert again == entries, "the same IP twice: one entry"
    assert tags_again["firebreak:block:80:203.0.113.1"] != tags["firebreak:block:80:203.0.113.1"], "its expiry was extended"

    run, finding_id = block(account, "203.0.113.2", "c" * 32, 2)
    _, entries, tags = nacl_entries(account)
    assert entries[(80, False)] == ("deny", "203.0.113.2/32") and entries[(80, True)] == ("deny", "203.0.113.2/32")
    assert entries[(81, False)] == ("deny", "192.0.2.0/24") and entries[(81, True)] == ("deny", "192.0.2.0/24"), "their rule survives"
    assert list(tags) == ["firebreak:block:80:203.0.113.2"]
    summary = outcomes(account, run, finding_id)[0]["summary"]
    assert "evicted 203.0.113.1 from" in summary, summary
    assert not [e for e in entries.values() if e[1] == "203.0.113.1/32"]


def test_an_allow_listed_ip_is_never_blocked_and_the_note_says_why(account):
    event = ssh_brute_force(account, severity=5.0)
    event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] = "10.1.2.3"
    ident = provision.finding_ident(event)
    _, before, _ = nacl_entries(account)
    run, out = respond(account, event)
    assert run["status"] == "SUCCEEDED"
    _, after, tags = nacl_entries(account)
    assert after == before and tags == {}
    assert calls_by(account, "block-remote-ip") == []
    note = finding(account, ident)["Note"]["Text"]
    assert "10.1.2.3 is in 10.0.0.0/8 (private address space (RFC 1918)), which is never blocked" in note, note


def test_the_sweep_removes_only_expired_entries_of_ours(account):
    block(account, "203.0.113.7", "d" * 32, 0)
    ec2 = account.client("ec2")
    acl, _, tags = nacl_entries(account)
    # An expired block of ours (as an older run would have left it, with the older
    # one-tag-per-number key), and a rule of someone else's.
    plant_block(ec2, acl, 85, "203.0.113.8", -2, key="firebreak:block:85")
    plant_block(ec2, acl, 86, "203.0.113.9", 0, ours=False)
    swept = run_sweep(account)
    assert [(r["ruleNumber"], r["ip"]) for r in swept["removed"]] == [(85, "203.0.113.8")]
    assert swept["kept"] == 1
    _, entries, tags = nacl_entries(account)
    assert (85, False) not in entries and (85, True) not in entries
    assert entries[(86, False)] == ("deny", "203.0.113.9/32"), "not ours: kept"
    assert entries[(80, False)] == ("deny", "203.0.113.7/32"), "ours, not expired: kept"
    assert sorted(tags) == ["firebreak:block:80:203.0.113.7"], "the older tag went with its block"
    assert_calls_declared(account, ["block-remote-ip"])


def test_a_drill_filter_runs_only_its_playbook_and_the_finding_ends_notified_naming_the_rest(account):
    sfn = account.client("stepfunctions")
    event = ssh_brute_force(account)
    ident = provision.import_finding(account.client, event)
    _, before, _ = nacl_entries(account)
    run = sfn.start_execution(
        stateMachineArn=account.deployed["stateMachines"]["response"],
        input=json.dumps({"event": event, "reason": "quarterly drill", "playbooks": ["ec2-compromise"]}),
    )
    out = account.wait_for_execution("response")
    assert out["executionArn"] == run["executionArn"] and out["status"] == "SUCCEEDED", out
    _, after, tags = nacl_entries(account)
    assert after == before and tags == {}, "the IP block was planned but not selected: not run"
    assert calls_by(account, "block-remote-ip") == []
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED", f["Note"]
    assert "block-remote-ips: planned, but the drill ran only ec2-compromise (not malicious-remote-ip)" in f["Note"]["Text"], f["Note"]
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "partly-contained"


def test_no_machine_accepts_a_plan_a_caller_made_for_the_exempt_instance(account):
    """A caller who may only StartExecution hands a machine a plan that isolates the exempt
    instance: every machine triages the raw input itself, so the plan is never used."""
    exempt = account.demo["exemptInstance"]
    event = ssh_brute_force(account, instance_id=exempt, finding_id="2123456789abcdef0123456789abcdef")
    forged_plan = {
        "finding": {"securityHub": {"Id": event["detail"]["arn"], "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}},
        "dryRun": False,
        "playbooks": ["ec2-compromise"],
        "actions": [{"action": "isolate-instance", "instanceId": exempt, "networkInterfaces": [], "vpcIds": [account.demo["vpc"]]}],
        "skipped": [],
    }
    before = interfaces_of(account, exempt)
    sfn = account.client("stepfunctions")
    for name, arn in account.deployed["stateMachines"].items():
        for i, forged in enumerate(({"plan": forged_plan}, {"plan": forged_plan, "executionId": "x"}, {"plans": [forged_plan], "event": event},
                                    {"triage": {"plans": [forged_plan]}, "event": event}, {**event, "plan": forged_plan})):
            sfn.start_execution(stateMachineArn=arn, name=f"forged-{i}", input=json.dumps(forged))
    for name, arn in account.deployed["stateMachines"].items():
        deadline = time.time() + 60
        while time.time() < deadline:
            runs = sfn.list_executions(stateMachineArn=arn)["executions"]
            if runs and all(r["status"] != "RUNNING" for r in runs):
                break
            time.sleep(0.3)
    assert calls_by(account, "triage", {"DescribeInstances"}), "triage read the instance itself"
    assert interfaces_of(account, exempt) == before, "the exempt instance is untouched"
    assert calls_by(account, "isolate-instance") == []
    ec2 = account.client("ec2")
    tags = {t["Key"] for t in ec2.describe_instances(InstanceIds=[exempt])["Reservations"][0]["Instances"][0].get("Tags", [])}
    assert not any(k.startswith("firebreak:original-groups") for k in tags)


def interfaces_of(acct, instance_id):
    enis = acct.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}


def test_a_custom_action_batch_with_an_unidentifiable_finding_handles_the_others(account):
    event = as_event(FIXTURES / "securityhub-custom-action-two-findings.json", account)
    idents = findings_of(account, event)
    broken = json.loads(json.dumps(event["detail"]["findings"][0]))
    del broken["Id"]
    event["detail"]["findings"].insert(1, broken)
    run, out = respond(account, event)
    assert run["status"] == "FAILED" and run.get("error") == "FindingsRefused", run
    for ident in idents:
        assert finding(account, ident)["Workflow"]["Status"] == "RESOLVED"
    records = audit_records(account, run["executionArn"], at_least=len(idents) * 2 + 1)
    refused = [r for r in records if r["record"] == "refused"]
    assert len(refused) == 1 and refused[0]["refused"][0]["path"] == "$.detail.findings[1]", refused
    assert "$.detail.findings[1].Id" in refused[0]["refused"][0]["error"]
    assert len([r for r in records if r["record"] == "execution"]) == 2
