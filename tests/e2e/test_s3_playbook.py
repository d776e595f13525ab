"""The s3-exposure playbook end to end: a public bucket's finding turns on all four Block
Public Access settings (the prior ones kept on a tag, the bucket's own tags kept), a
malware scan result with THREATS_FOUND tags the object and closes its bucket with no
Security Hub finding to mark, a re-run changes nothing, and an exempt bucket is left
alone."""

import json

import pytest
from conftest import assert_calls_declared, audit_records, calls_by, execution_records, finding, member_calls, put
from firebreak_localaws import provision
from samples import FIXTURES

ALL_OFF = "BlockPublicAcls=false IgnorePublicAcls=false BlockPublicPolicy=false RestrictPublicBuckets=false"
WRITES = ("PutBucketPublicAccessBlock", "PutBucketTagging", "PutObjectTagging", "PutObjectVersionTagging")


MEMBER = provision.MEMBERS[0]


def bucket_event(acct, bucket, finding_id="b3c5e7f9a1b3c5e7f9a1b3c5e7f9a1b3", account=provision.ACCOUNT, region=provision.REGION):
    text = (FIXTURES / "s3-bucket-anonymous-access.json").read_text()
    text = text.replace("111122223333", account).replace("us-east-1", region).replace("quarterly-reports", bucket)
    event = json.loads(text)
    # A member's finding arrives as Firebreak's account sees it: on its own bus, in its
    # own region; the finding's account and region are in the detail.
    event["account"], event["region"] = provision.ACCOUNT, provision.REGION
    d = event["detail"]
    d["id"] = finding_id
    d["arn"] = d["arn"].rsplit("/", 1)[0] + "/" + finding_id
    return event


def scan_event(acct):
    o = acct.demo["maliciousObject"]
    event = json.loads((FIXTURES / "malware-scan-result-threats-found.json").read_text().replace("111122223333", provision.ACCOUNT))
    event["detail"]["s3ObjectDetails"].update({"bucketName": o["bucket"], "objectKey": o["key"], "versionId": o["versionId"]})
    return event


def public_access(acct, bucket):
    try:
        return acct.client("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except acct.client("s3").exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration", e
        return None


def bucket_tags(acct, bucket):
    return {t["Key"]: t["Value"] for t in acct.client("s3").get_bucket_tagging(Bucket=bucket)["TagSet"]}


def s3_writes(acct):
    return [c for c in calls_by(acct, "contain-s3") if c["operation"] in WRITES]


def test_a_public_bucket_is_closed_its_prior_settings_kept_then_a_rerun_changes_nothing(account):
    bucket = account.demo["publicBucket"]
    assert public_access(account, bucket) is None
    event = bucket_event(account, bucket)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert public_access(account, bucket) == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
    }
    t = bucket_tags(account, bucket)
    assert t["firebreak:prior-public-access-block"] == "none", t
    assert t["firebreak:contained-for"] == ident["Id"]
    assert t["team"] == "finance" and t["owner"] == "carol@example.com", "the bucket's own tags are kept"
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED", f["Note"]
    assert f"blocked all public access to S3 bucket {bucket}" in f["Note"]["Text"], f["Note"]
    actions = [r for r in audit_records(account, run["executionArn"], at_least=3) if r["record"] == "action"]
    assert [r["status"] for r in actions if r["action"] == "block-bucket-public-access"] == ["done"]
    # Only the finding's bucket: the other buckets are as seeded.
    assert public_access(account, account.demo["uploadsBucket"]) is None
    assert public_access(account, account.demo["exemptBucket"]) is None
    assert_calls_declared(account)

    put(account, event)
    run = account.wait_for_execution("response", after=1, timeout=120)
    assert run["status"] == "SUCCEEDED"
    assert [c["operation"] for c in s3_writes(account)] == ["PutBucketTagging", "PutBucketPublicAccessBlock"]
    assert bucket_tags(account, bucket)["firebreak:prior-public-access-block"] == "none"
    again = [r for r in audit_records(account, run["executionArn"], at_least=3) if r["record"] == "action" and r["action"] == "block-bucket-public-access"]
    assert [r["status"] for r in again] == ["already-done"]


def test_a_malware_scan_result_tags_the_object_and_closes_its_bucket_with_no_hub_finding(account):
    o = account.demo["maliciousObject"]
    s3 = account.client("s3")
    put(account, scan_event(account))
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=o["bucket"], Key=o["key"], VersionId=o["versionId"])["TagSet"]}
    assert tags == {"source": "web", "firebreak:malware": "EICAR-Test-File not a virus"}, tags
    assert s3.get_object(Bucket=o["bucket"], Key=o["key"])["Body"].read() == provision.EICAR, "the object is kept as evidence"
    assert public_access(account, o["bucket"])["RestrictPublicBuckets"] is True
    records = audit_records(account, run["executionArn"], at_least=4)
    actions = {r["action"]: r["status"] for r in records if r["record"] == "action"}
    assert actions["tag-s3-object"] == "done" and actions["block-bucket-public-access"] == "done", actions
    # No Security Hub finding: nothing marked there, the audit record is the trail.
    assert actions["mark-resolved"] == "not-planned", actions
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "contained"
    assert [c for c in account.request_log() if c["operation"] in ("BatchUpdateFindings", "BatchUpdateFindingsV2")] == []
    assert_calls_declared(account)


def test_an_exempt_bucket_is_left_alone_and_said_so(account):
    bucket = account.demo["exemptBucket"]
    event = bucket_event(account, bucket, "d5e7f9a1b3c5e7f9a1b3c5e7f9a1b3c5")
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", run
    assert public_access(account, bucket) is None
    assert s3_writes(account) == []
    f = finding(account, ident)
    assert f"S3 bucket {bucket} is tagged firebreak:exempt=true" in f["Note"]["Text"], f["Note"]
    # An exemption is the policy's own decision: the note says so, the status stays for an analyst.
    assert f["Workflow"]["Status"] == "NEW"


def test_a_members_finding_closes_that_members_bucket_through_its_member_role_only(account):
    demo = account.members[MEMBER]
    bucket = demo["publicBucket"]
    event = bucket_event(account, bucket, "e7f9a1b3c5e7f9a1b3c5e7f9a1b3c5e7", account=MEMBER, region=demo["region"])
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    member_s3 = account.client("s3", account=MEMBER, region=demo["region"])
    assert member_s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    writes = [c for c in member_calls(account, "contain-s3") if c["operation"] in WRITES]
    assert writes and {(c["account"], c["region"]) for c in writes} == {(MEMBER, demo["region"])}, writes
    assert public_access(account, account.demo["publicBucket"]) is None, "Firebreak's own public bucket is not the finding's"
    assert finding(account, provision.finding_ident(event))["Workflow"]["Status"] == "RESOLVED"
    assert_calls_declared(account)


@pytest.mark.provokes_refusals
def test_a_finding_that_names_another_accounts_bucket_never_reaches_it(account):
    """Bucket names are global: a member's finding naming Firebreak's own bucket (a forged
    or mistaken name) must not close it. S3 refuses the member role's read, triage leaves
    the bucket out, nothing is written anywhere and a person is told."""
    demo = account.members[MEMBER]
    theirs = account.demo["publicBucket"]
    event = bucket_event(account, theirs, "f9a1b3c5e7f9a1b3c5e7f9a1b3c5e7f9", account=MEMBER, region=demo["region"])
    before = len(account.iam_refusals())
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert public_access(account, theirs) is None
    assert bucket_tags(account, theirs) == {"team": "finance", "owner": "carol@example.com"}
    assert s3_writes(account) == [] and [c for c in member_calls(account, "contain-s3") if c["operation"] in WRITES] == []
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "NOTIFIED", f["Note"]
    assert f"S3 refused to show bucket {theirs} as account {MEMBER}'s" in f["Note"]["Text"], f["Note"]
    # The one refusal: the member's triage role reading a bucket that is not its account's.
    refused = account.iam_refusals()[before:]
    assert [(r["action"], r["resource"]) for r in refused] == [("s3:GetBucketTagging", f"arn:aws:s3:::{theirs}")], refused
    assert "expected owner" in refused[0]["why"] and refused[0]["principal"].split("/")[-2] == f"{provision.MEMBER_ROLE_PREFIX}triage", refused
