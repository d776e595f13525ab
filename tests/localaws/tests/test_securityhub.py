import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "findings" / "securityhub-custom-action-two-findings.json"


def findings():
    return json.loads(FIXTURE.read_text())["detail"]["findings"]


def ident(f):
    return {"Id": f["Id"], "ProductArn": f["ProductArn"]}


@pytest.fixture
def hub(aws):
    client = aws("securityhub")
    client.enable_security_hub()
    out = client.batch_import_findings(Findings=findings())
    assert out["SuccessCount"] == 2
    return client


def test_batch_update_stores_status_note_fields_and_severity(hub):
    a, b = findings()
    out = hub.batch_update_findings(
        FindingIdentifiers=[ident(a)],
        Workflow={"Status": "RESOLVED"},
        Note={"Text": "isolated i-0c10c2c7863d1a356", "UpdatedBy": "firebreak"},
        UserDefinedFields={"firebreak:execution": "exec-1"},
        Severity={"Label": "HIGH"},
    )
    assert out["ProcessedFindings"] == [ident(a)]
    assert out["UnprocessedFindings"] == []
    got = hub.get_findings(Filters={"Id": [{"Value": a["Id"], "Comparison": "EQUALS"}]})["Findings"]
    assert len(got) == 1
    assert got[0]["Workflow"]["Status"] == "RESOLVED"
    assert got[0]["Note"]["Text"] == "isolated i-0c10c2c7863d1a356"
    assert got[0]["Note"]["UpdatedBy"] == "firebreak"
    assert got[0]["UserDefinedFields"] == {"firebreak:execution": "exec-1"}
    assert got[0]["Severity"]["Label"] == "HIGH"
    other = hub.get_findings(Filters={"Id": [{"Value": b["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
    assert other.get("Workflow", {}).get("Status", "NEW") == "NEW"


def test_unknown_findings_are_unprocessed(hub):
    a, _ = findings()
    missing = {"Id": "arn:aws:guardduty:us-east-1:193043430472:detector/x/finding/none", "ProductArn": a["ProductArn"]}
    wrong_product = {"Id": a["Id"], "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector"}
    out = hub.batch_update_findings(FindingIdentifiers=[ident(a), missing, wrong_product], Workflow={"Status": "NOTIFIED"})
    assert out["ProcessedFindings"] == [ident(a)]
    assert [u["FindingIdentifier"] for u in out["UnprocessedFindings"]] == [missing, wrong_product]
    assert {u["ErrorCode"] for u in out["UnprocessedFindings"]} == {"FindingNotFound"}


def test_limits_are_enforced(hub):
    a, _ = findings()
    with pytest.raises(ClientError) as e:
        hub.batch_update_findings(FindingIdentifiers=[ident(a)] * 101, Workflow={"Status": "RESOLVED"})
    assert e.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        hub.batch_update_findings(FindingIdentifiers=[ident(a)], Note={"Text": "x" * 513, "UpdatedBy": "firebreak"})
    assert "512" in e.value.response["Error"]["Message"]
    hub.batch_update_findings(FindingIdentifiers=[ident(a)], Note={"Text": "x" * 512, "UpdatedBy": "firebreak"})
    with pytest.raises(ClientError):
        hub.batch_update_findings(FindingIdentifiers=[ident(a)], Workflow={"Status": "DONE"})


def test_get_findings_filters(hub):
    a, b = findings()
    hub.batch_update_findings(FindingIdentifiers=[ident(b)], Workflow={"Status": "RESOLVED"})
    def ids(**filters):
        return sorted(f["Id"] for f in hub.get_findings(Filters=filters)["Findings"])
    assert ids(WorkflowStatus=[{"Value": "RESOLVED", "Comparison": "EQUALS"}]) == [b["Id"]]
    assert ids(WorkflowStatus=[{"Value": "NEW", "Comparison": "EQUALS"}]) == [a["Id"]]
    assert ids(RecordState=[{"Value": "ACTIVE", "Comparison": "EQUALS"}]) == sorted([a["Id"], b["Id"]])
    assert ids(RecordState=[{"Value": "ARCHIVED", "Comparison": "EQUALS"}]) == []
    assert ids(ProductArn=[{"Value": "arn:aws:securityhub:us-east-1::product/aws/guardduty", "Comparison": "EQUALS"}]) == sorted([a["Id"], b["Id"]])
    assert ids(Id=[{"Value": a["Id"], "Comparison": "NOT_EQUALS"}]) == [b["Id"]]
    assert ids(Id=[{"Value": "arn:aws:guardduty:us-east-1:193043430472:detector/", "Comparison": "PREFIX"}]) == sorted([a["Id"], b["Id"]])
    with pytest.raises(ClientError) as e:
        hub.get_findings(Filters={"SeverityLabel": [{"Value": "HIGH", "Comparison": "EQUALS"}]})
    assert "not supported locally" in e.value.response["Error"]["Message"]


def test_action_targets(aws):
    hub = aws("securityhub")
    arn = hub.create_action_target(Name="Firebreak contain", Description="Contain", Id="FirebreakContain")["ActionTargetArn"]
    assert arn == "arn:aws:securityhub:us-east-1:123456789012:action/custom/FirebreakContain"
    got = hub.describe_action_targets()["ActionTargets"]
    assert got == [{"ActionTargetArn": arn, "Name": "Firebreak contain", "Description": "Contain"}]
    assert hub.describe_action_targets(ActionTargetArns=[arn])["ActionTargets"][0]["Name"] == "Firebreak contain"
    with pytest.raises(ClientError) as e:
        hub.create_action_target(Name="Firebreak contain", Description="Contain", Id="FirebreakContain")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        hub.create_action_target(Name="A name that is too long", Description="x", Id="Long")
    assert e.value.response["Error"]["Code"] == "InvalidInputException"
