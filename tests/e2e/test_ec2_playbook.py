"""The EC2-compromise playbook of the response end to end on the local account: a GuardDuty
event through EventBridge into Step Functions, the Rust runbooks behind the Lambda runtime
API, real SDK calls over HTTP into moto."""

import json

from conftest import assert_calls_declared, audit_records, calls_by, execution_records, finding, interfaces, put, ssh_brute_force
from firebreak_localaws import provision

MUTATING_EC2 = {
    "CreateSnapshot", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute", "CreateTags",
    "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress",
}


def snapshots(acct, finding_id):
    return acct.client("ec2").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:firebreak:finding", "Values": [finding_id]}]
    )["Snapshots"]


def test_a_guardduty_finding_is_contained_through_eventbridge(account):
    web = account.demo["webInstance"]
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    assert len(interfaces(account, web)) == 2
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "SUCCEEDED", run

    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, web).values())) == {(isolation,)}, "every interface, only the isolation group"
    ec2 = account.client("ec2")
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [isolation]}])["SecurityGroups"][0]
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == [], "the isolation group has no rules"

    volumes = {
        b["Ebs"]["VolumeId"]
        for b in ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
    }
    taken = snapshots(account, ident["Id"])
    assert volumes and {s["VolumeId"] for s in taken} == volumes, "a snapshot of every volume, tagged with the finding"
    protected = ec2.describe_instance_attribute(InstanceId=web, Attribute="disableApiTermination")
    assert protected["DisableApiTermination"]["Value"] is True
    tags = {t["Key"]: t["Value"] for t in ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["Tags"]}
    assert tags["firebreak:finding"] == ident["Id"]
    assert any(k.startswith("firebreak:original-groups:eni-") and "sg-" in v for k, v in tags.items())

    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert f["Note"]["UpdatedBy"] == "firebreak"
    assert f["Note"]["Text"].startswith(f"Firebreak contained this finding: isolated {web}")
    assert "; blocked 198.51.100.0 in acl-" in f["Note"]["Text"], "one note for every playbook of the response"

    records = audit_records(account)
    actions = [r["action"] for r in records if r["record"] == "action"]
    assert actions == ["isolate-instance", "block-remote-ips", "mark-resolved"]
    execution = [r for r in records if r["record"] == "execution"]
    assert len(execution) == 1 and execution[0]["resolution"] == "contained"
    assert execution[0]["executionId"] == run["executionArn"]
    assert execution[0]["ContainmentSeconds"] > 0


def test_the_same_event_twice_changes_nothing_more(account):
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    put(account, event)
    assert account.wait_for_execution("response")["status"] == "SUCCEEDED"
    before = (interfaces(account, account.demo["webInstance"]), len(snapshots(account, ident["Id"])))
    mutating_first = len(calls_by(account, "isolate-instance", MUTATING_EC2))
    put(account, event)
    second = account.wait_for_execution("response", after=1)
    assert second["status"] == "SUCCEEDED", second
    after = (interfaces(account, account.demo["webInstance"]), len(snapshots(account, ident["Id"])))
    assert after == before
    assert len(calls_by(account, "isolate-instance", MUTATING_EC2)) == mutating_first, "no EC2 change the second time"
    actions = [(r["action"], r["status"]) for r in audit_records(account, second["executionArn"]) if r["record"] == "action"]
    assert actions == [
        ("isolate-instance", "already-done"),
        ("block-remote-ips", "already-done"),
        ("mark-resolved", "done"),
    ]
    assert execution_records(account, second["executionArn"])[0]["resolution"] == "contained"


def test_an_exempt_instance_is_not_touched_and_the_note_says_why(account):
    exempt = account.demo["exemptInstance"]
    event = ssh_brute_force(account, instance_id=exempt, finding_id="1123456789abcdef0123456789abcdef")
    ident = provision.finding_ident(event)
    before = interfaces(account, exempt)
    put(account, event)
    assert account.wait_for_execution("response")["status"] == "SUCCEEDED"
    assert interfaces(account, exempt) == before
    assert calls_by(account, "isolate-instance", MUTATING_EC2) == []
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NEW"
    assert f"instance {exempt} is tagged firebreak:exempt=true" in f["Note"]["Text"]


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(account):
    web = account.demo["webInstance"]
    event = ssh_brute_force(account)
    ident = provision.import_finding(account.client, event)
    before = interfaces(account, web)
    sfn = account.client("stepfunctions")
    run = sfn.start_execution(
        stateMachineArn=account.deployed["stateMachines"]["response"],
        input=json.dumps({"dryRun": True, "reason": "rehearsal", "event": event, "playbooks": ["ec2-compromise"]}),
    )
    out = account.wait_for_execution("response")
    assert out["executionArn"] == run["executionArn"] and out["status"] == "SUCCEEDED", out
    assert interfaces(account, web) == before
    assert snapshots(account, ident["Id"]) == []
    assert finding(account, ident)["Workflow"]["Status"] == "NEW"
    isolate = [r for r in audit_records(account, run["executionArn"], at_least=2) if r["record"] == "action" and r["action"] == "isolate-instance"]
    assert [r["status"] for r in isolate] == ["dry-run"]
    assert isolate[0]["summary"].startswith(f"dry run: would isolate {web} (2 of 2 interfaces")
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "dry-run"
    # Every change was checked with DryRun, not skipped.
    dry = calls_by(account, "isolate-instance", MUTATING_EC2)
    assert {c["operation"] for c in dry} >= {"CreateSnapshot", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute"}


def test_throttling_on_the_interface_call_is_retried_and_containment_completes(account):
    event = ssh_brute_force(account)
    provision.finding_ident(event)
    account.fault(service="ec2", operation="ModifyNetworkInterfaceAttribute", code="RequestLimitExceeded", status=503, count=2)
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "SUCCEEDED", run
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, account.demo["webInstance"]).values())) == {(isolation,)}
    modifies = calls_by(account, "isolate-instance", {"ModifyNetworkInterfaceAttribute"})
    assert len(modifies) == 4 + 2, "two interfaces, two moves each, plus the two throttled attempts"


def test_a_persistent_failure_ends_notified_with_the_reason_and_audited(account):
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    account.fault(service="ec2", operation="ModifyNetworkInterfaceAttribute", code="UnauthorizedOperation", status=403, count=100)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "FAILED"
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert f["Note"]["Text"].startswith(
        "Firebreak could not complete the response: ec2-compromise playbook: AwsCallFailed: ec2:ModifyNetworkInterfaceAttribute"
    ), f["Note"]["Text"]
    assert "UnauthorizedOperation" in f["Note"]["Text"]
    assert "Done before the failure: blocked 198.51.100.0" in f["Note"]["Text"], "the other playbook still ran"
    execution = execution_records(account)
    assert execution and execution[0]["resolution"] == "failed"
    assert execution[0]["failures"][0]["Error"] == "ec2-compromise playbook: AwsCallFailed"
    # What isolation had already changed before the failure is in the audit trail.
    cause = execution[0]["failures"][0]["Cause"]
    assert "made before the failure" in cause, cause
    taken = snapshots(account, ident["Id"])
    assert taken and all(s["SnapshotId"] in cause for s in taken), (cause, [s["SnapshotId"] for s in taken])
    assert "termination protection" in cause or "disableApiTermination" in cause, cause


def test_a_finding_that_cannot_be_identified_fails_at_triage_and_changes_nothing(account):
    event = ssh_brute_force(account)
    event["detail"]["accountId"] = "1234;rm"
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "FAILED"
    assert run.get("error") == "InvalidInput", run
    assert "$.detail.accountId" in run.get("cause", "")
    for fn in account.deployed["functions"]:
        if fn not in ("triage", "audit-log"):
            assert calls_by(account, fn) == [], fn
    assert calls_by(account, "triage", {"DescribeInstances"}) == []
    # Nothing is silently lost: the refusal has its audit record.
    (record,) = [r for r in audit_records(account, run["executionArn"]) if r["record"] == "refused"]
    assert record["refused"][0]["errorType"] == "InvalidInput"
    assert "$.detail.accountId" in record["refused"][0]["error"]


def test_a_triage_that_fails_on_aws_marks_the_finding_notified_and_changes_nothing(account):
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    before = interfaces(account, account.demo["webInstance"])
    # Triage cannot read its policy: AccessDenied is not retried.
    account.fault(service="ssm", operation="GetParameter", code="AccessDeniedException", status=400, count=1)
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "FAILED" and run.get("error") == "AwsCallFailed", run
    assert interfaces(account, account.demo["webInstance"]) == before
    assert calls_by(account, "isolate-instance") == [] and calls_by(account, "block-remote-ip") == []
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert f["Note"]["Text"].startswith("Firebreak could not triage this finding (AwsCallFailed: ssm:GetParameter failed"), f["Note"]
    (record,) = [r for r in audit_records(account, run["executionArn"]) if r["record"] == "refused"]
    assert record["refused"][0]["errorType"] == "AwsCallFailed"


def test_an_invalid_instance_id_is_never_acted_on_and_the_finding_ends_notified(account):
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = "i-123;rm"
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "SUCCEEDED", run
    assert calls_by(account, "triage", {"DescribeInstances"}) == [], "EC2 never sees the bad value"
    assert calls_by(account, "isolate-instance") == [] and calls_by(account, "block-remote-ip") == []
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert "$.detail.resource.instanceDetails.instanceId: invalid instance id" in f["Note"]["Text"], f["Note"]
    assert execution_records(account)[0]["resolution"] == "not-contained"


def test_every_call_a_function_made_is_one_it_declares(account):
    event = ssh_brute_force(account)
    provision.finding_ident(event)
    put(account, event)
    assert account.wait_for_execution("response")["status"] == "SUCCEEDED"
    checked = assert_calls_declared(account)
    assert checked["isolate-instance"] >= 15 and checked["block-remote-ip"] >= 3, checked


def test_an_event_that_arrives_before_its_finding_reaches_security_hub_still_ends_resolved(account):
    """In AWS, GuardDuty's copy of a finding reaches Security Hub after the EventBridge
    event, sometimes minutes after: mark-resolved waits for it instead of failing."""
    account.set_import_delay(3)
    event = ssh_brute_force(account)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response")
    assert run["status"] == "SUCCEEDED", run
    assert finding(account, ident)["Workflow"]["Status"] == "RESOLVED"
    tries = calls_by(account, "mark-resolved", {"BatchUpdateFindings"})
    assert len(tries) >= 2, "it asked again after the finding was not found"


def test_a_finding_that_never_reaches_security_hub_ends_failed_and_the_audit_says_why():
    from conftest import ROOT, bin_dir
    from firebreak_localaws.local_account import LocalAccount

    acct = LocalAccount(ROOT, bin_dir(), import_delay=-1, finding_wait=2).start()
    try:
        event = ssh_brute_force(acct)
        put(acct, event)
        run = acct.wait_for_execution("response")
        assert run["status"] == "FAILED" and run.get("error") == "ResponseFailed", run
        (record,) = execution_records(acct)
        assert record["resolution"] == "failed"
        assert record["failures"][0]["Error"] == "FindingNotImported", record["failures"]
        assert "has not imported finding" in record["failures"][0]["Cause"]
        isolation = f"firebreak-isolation-{acct.demo['vpc']}"
        assert set(map(tuple, interfaces(acct, acct.demo["webInstance"]).values())) == {(isolation,)}, "containment itself did not wait"
    finally:
        acct.stop()
