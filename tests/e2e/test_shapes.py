"""Every published shape of a finding, end to end on the strict local account: the new
Security Hub's `Findings Imported V2` event (OCSF) through its EventBridge rule, and what an
operator pipes into StartExecution: a bare OCSF finding, an array of findings, GetFindingsV2,
Security Hub GetFindings and GuardDuty GetFindings output. Each ends with the containment in
the account, the finding closed in the hub that holds it, and the audit record."""

import json
import re

import pytest
import requests
from conftest import assert_calls_declared, audit_records, calls_by, execution_records, finding, interfaces
from firebreak_localaws import provision
from samples import FIXTURES, SAMPLES, rewrite, security_hub_findings

ACCOUNT, REGION = provision.ACCOUNT, provision.REGION
OCSF = FIXTURES / "securityhub-v2-ocsf-ssh-brute-force.json"
ATTACKER = "203.0.113.45"


def denies(acct, subnet):
    acl = acct.client("ec2").describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]
    return sorted((e["Egress"], e["CidrBlock"]) for e in acl["Entries"] if e["RuleAction"] == "deny" and e.get("CidrBlock") != "0.0.0.0/0")


def ocsf_finding(acct, uid="b8f3c2a1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f"):
    """The fixture's OCSF finding, pointing at the local demo instance."""
    f = json.loads(OCSF.read_text())["detail"]["findings"][0]
    web = acct.demo["webInstance"]
    f["metadata"]["uid"] = uid
    f["cloud"].update({"account": {"uid": ACCOUNT, "type": "AWS Account"}, "region": REGION})
    f["finding_info"]["uid"] = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{uid[:32]}"
    f["resources"][0].update({"uid": f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{web}", "region": REGION, "owner": {"account": {"uid": ACCOUNT}}})
    return f


def into_security_hub_v2(acct, *findings):
    """As GuardDuty's integration puts its findings into the new Security Hub."""
    requests.post(f"{acct.url}/firebreak-api/securityhub-v2/findings", json={"account": ACCOUNT, "region": REGION, "findings": list(findings)}, timeout=10).raise_for_status()


def v2_finding(acct, uid):
    flt = {"CompositeFilters": [{"StringFilters": [{"FieldName": "metadata.uid", "Filter": {"Value": uid, "Comparison": "EQUALS"}}]}]}
    return acct.client("securityhub").get_findings_v2(Filters=flt)["Findings"][0]


def start(acct, document):
    sfn = acct.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=acct.deployed["stateMachines"]["response"], input=json.dumps(document))
    out = acct.wait_for_execution("response", timeout=120)
    assert out["executionArn"] == run["executionArn"]
    return out, json.loads(out.get("output") or "{}")


def assert_ocsf_contained(acct, run, uid):
    """The instance isolated, the attacker blocked at both of its subnets, the OCSF finding
    Resolved with the note, closed through BatchUpdateFindingsV2 alone, audited."""
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    isolation = f"firebreak-isolation-{acct.demo['vpc']}"
    assert set(map(tuple, interfaces(acct, acct.demo["webInstance"]).values())) == {(isolation,)}
    for subnet in acct.demo["subnets"]:
        assert denies(acct, subnet) == [(False, f"{ATTACKER}/32"), (True, f"{ATTACKER}/32")], subnet
    f = v2_finding(acct, uid)
    assert (f["status_id"], f["status"]) == (4, "Resolved"), f
    assert f["comment"].startswith("Firebreak contained this finding"), f["comment"]
    # The evidence's other end is the instance's own private address: never blocked, said.
    assert "10.20.1.15" not in json.dumps(denies(acct, acct.demo["subnets"][0]))
    closing = {c["operation"] for c in calls_by(acct, "mark-resolved")}
    assert closing == {"BatchUpdateFindingsV2"}, closing
    records = execution_records(acct, run["executionArn"])
    assert [(r["findingId"], r["resolution"]) for r in records] == [(uid, "contained")]
    assert_calls_declared(acct)


def test_a_findings_imported_v2_event_is_contained_and_closed_in_the_new_security_hub(account):
    uid = "b8f3c2a1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f"
    f = ocsf_finding(account, uid)
    into_security_hub_v2(account, f)
    # The rule is off by default (it would double the GuardDuty rule's responses): a
    # deployment that aggregates in the new Security Hub turns it on instead.
    events = account.client("events")
    events.enable_rule(Name=f"{provision.STACK}-securityhub-v2-findings")
    events.disable_rule(Name=f"{provision.STACK}-guardduty-findings")
    account.put_event({"source": "aws.securityhub", "detail-type": "Findings Imported V2", "resources": [uid], "detail": {"findings": [f]}})
    run = account.wait_for_execution("response", timeout=120)
    assert_ocsf_contained(account, run, uid)
    triage = json.loads(run["output"])
    assert triage["inputKind"] == "securityHubV2ImportedEvent"


@pytest.mark.parametrize("shape", ["ocsfFinding", "findingArray", "securityHubGetFindingsV2"])
def test_an_operator_starts_the_response_with_ocsf_in_any_published_shape(account, shape):
    uid = f"{shape.lower()}0000000000000000000000000000000000000000000000"
    f = ocsf_finding(account, uid)
    into_security_hub_v2(account, f)
    document = {"ocsfFinding": f, "findingArray": [f], "securityHubGetFindingsV2": {"Findings": [f]}}[shape]
    run, out = start(account, document)
    assert_ocsf_contained(account, run, uid)
    assert out["inputKind"] == shape


def test_security_hub_get_findings_output_is_contained_and_resolved(account):
    """`aws securityhub get-findings` output, as an operator pipes it into the machine."""
    sample = SAMPLES / "asff-finding__guardduty_UnauthorizedAccess_EC2_SSHBruteForce__awsdocs-guardduty-ug.json"
    asff = json.loads(rewrite(sample.read_text(), account))
    (ident,) = security_hub_findings(account, {"detail": {"findings": [asff]}})
    ip = asff["ProductFields"]["aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4"]
    run, out = start(account, {"Findings": [asff]})
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert out["inputKind"] == "securityHubGetFindings"
    # MEDIUM brute force: the source blocked, the instance left running where it is.
    assert (False, f"{ip}/32") in denies(account, account.demo["subnets"][0])
    assert "firebreak-isolation" not in json.dumps(interfaces(account, account.demo["webInstance"]))
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED", f["Note"]
    assert {c["operation"] for c in calls_by(account, "mark-resolved")} == {"BatchUpdateFindings"}
    assert_calls_declared(account)


def camel(value):
    """The SDK's PascalCase document in the camelCase EventBridge spells (for GuardDuty's own
    copy into Security Hub, which the local account makes from the camelCase form)."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:] if re.fullmatch(r"[A-Z][A-Za-z0-9]*", k) else k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def test_guardduty_get_findings_output_deactivates_the_users_key(account):
    """`aws guardduty get-findings` output (the SDK's PascalCase shape), the public CLI
    example, pointed at the demo user: the key is deactivated, the finding RESOLVED."""
    doc = json.loads((SAMPLES / "guardduty-GetFindings-cli-output__Recon_IAMUser_UserPermissions__awscli-example.json").read_text())
    f = doc["Findings"][0]
    f.update({"AccountId": ACCOUNT, "Region": REGION})
    f["Arn"] = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{f['Id']}"
    f["Resource"]["AccessKeyDetails"].update({"AccessKeyId": account.demo["accessKey"], "UserName": account.demo["user"], "UserType": "IAMUser"})
    ident = provision.import_finding(account.client, {"detail": camel(f)})
    run, out = start(account, doc)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert out["inputKind"] == "guardDutyGetFindings"
    keys = account.client("iam").list_access_keys(UserName=account.demo["user"])["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(account.demo["accessKey"], "Inactive")]
    found = finding(account, ident)
    assert found["Workflow"]["Status"] == "RESOLVED", found["Note"]
    assert f"deactivated access key {account.demo['accessKey']}" in found["Note"]["Text"], found["Note"]
    assert any(r["record"] == "action" and r["action"] == "disable-access-key" for r in audit_records(account, run["executionArn"], at_least=2))
    assert_calls_declared(account)
