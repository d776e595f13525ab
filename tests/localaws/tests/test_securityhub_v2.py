"""The new Security Hub's OCSF findings: stored as a product puts them, updated with
BatchUpdateFindingsV2, read with GetFindingsV2; what the local account does not support
is refused, naming it."""

import json
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "findings" / "securityhub-v2-ocsf-ssh-brute-force.json"
ACCOUNT = "123456789012"


def ocsf(uid="uid-1"):
    f = json.loads(FIXTURE.read_text())["detail"]["findings"][0]
    f["metadata"]["uid"] = uid
    f["cloud"]["account"]["uid"] = ACCOUNT
    return f


def by_uid(uid):
    return {"CompositeFilters": [{"StringFilters": [{"FieldName": "metadata.uid", "Filter": {"Value": uid, "Comparison": "EQUALS"}}]}]}


@pytest.fixture
def hub(aws, moto_url):
    def put(*findings):
        r = requests.post(f"{moto_url}/firebreak-api/securityhub-v2/findings", json={"account": ACCOUNT, "region": "us-east-1", "findings": list(findings)}, timeout=10)
        r.raise_for_status()

    put(ocsf("uid-1"), ocsf("uid-2"))
    client = aws("securityhub")
    client.put = put
    return client


def test_update_sets_status_and_comment_on_the_named_finding_only(hub):
    out = hub.batch_update_findings_v2(MetadataUids=["uid-1", "uid-missing"], StatusId=4, Comment="Firebreak contained this finding")
    assert out["ProcessedFindings"] == [{"MetadataUid": "uid-1"}]
    assert out["UnprocessedFindings"][0]["MetadataUid"] == "uid-missing"
    assert out["UnprocessedFindings"][0]["ErrorCode"] == "ResourceNotFoundException"
    got = hub.get_findings_v2(Filters=by_uid("uid-1"))["Findings"]
    assert len(got) == 1
    assert (got[0]["status_id"], got[0]["status"], got[0]["comment"]) == (4, "Resolved", "Firebreak contained this finding")
    other = hub.get_findings_v2(Filters=by_uid("uid-2"))["Findings"][0]
    assert other["status_id"] == 1 and "comment" not in other
    # The product sending the finding again keeps what the customer set.
    hub.put(ocsf("uid-1"))
    again = hub.get_findings_v2(Filters=by_uid("uid-1"))["Findings"][0]
    assert again["status_id"] == 4 and again["comment"].startswith("Firebreak")


def test_what_is_not_supported_or_out_of_range_is_refused(hub):
    cases = [
        dict(MetadataUids=["uid-1"]),  # nothing to change
        dict(MetadataUids=["uid-1"], StatusId=7),
        dict(MetadataUids=["uid-1"], Comment="x" * 513),
        dict(MetadataUids=[f"u{i}" for i in range(101)], StatusId=2),
        dict(MetadataUids=["uid-1"], SeverityId=4),  # not supported locally: refused, not ignored
        dict(FindingIdentifiers=[{"CloudAccountUid": ACCOUNT, "FindingInfoUid": "x", "MetadataProductUid": "y"}], StatusId=2),
    ]
    for kwargs in cases:
        with pytest.raises(ClientError) as e:
            hub.batch_update_findings_v2(**kwargs)
        assert e.value.response["Error"]["Code"] == "ValidationException", kwargs
    got = hub.get_findings_v2(Filters=by_uid("uid-1"))["Findings"][0]
    assert got["status_id"] == 1 and "comment" not in got
    with pytest.raises(ClientError) as e:
        hub.get_findings_v2(Filters={"CompositeFilters": [{"StringFilters": [{"FieldName": "severity", "Filter": {"Value": "High", "Comparison": "EQUALS"}}]}]})
    assert "not supported locally" in e.value.response["Error"]["Message"]

