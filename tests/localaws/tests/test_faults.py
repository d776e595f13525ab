import pytest
import requests
from botocore.exceptions import ClientError


def inject(moto_url, **spec):
    r = requests.post(f"{moto_url}/firebreak-api/faults", json=spec, timeout=10)
    r.raise_for_status()


def test_the_next_n_calls_fail_then_calls_succeed(aws, moto_url):
    ec2 = aws("ec2")
    inject(moto_url, service="ec2", operation="DescribeInstances", code="RequestLimitExceeded", status=503, count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            ec2.describe_instances()
        assert e.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ec2.describe_instances()
    # Other operations were never affected.
    ec2.describe_vpcs()


def test_json_and_query_protocol_errors(aws, moto_url):
    inject(moto_url, service="iam", operation="PutRolePolicy", code="AccessDenied", status=403, count=1)
    inject(moto_url, service="securityhub", operation="BatchUpdateFindings", code="ThrottlingException", status=429, count=1)
    inject(moto_url, service="stepfunctions", operation="ListStateMachines", code="InternalError", status=500, count=1)
    iam = aws("iam")
    with pytest.raises(ClientError) as e:
        iam.put_role_policy(RoleName="r", PolicyName="p", PolicyDocument="{}")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as e:
        aws("securityhub").batch_update_findings(FindingIdentifiers=[{"Id": "x", "ProductArn": "y"}])
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as e:
        aws("stepfunctions").list_state_machines()
    assert e.value.response["Error"]["Code"] == "InternalError"


def test_the_sdk_retry_gets_through_a_throttled_call(aws, moto_url):
    inject(moto_url, service="ec2", operation="DescribeVpcs", code="RequestLimitExceeded", status=503, count=2)
    aws("ec2", retries=5).describe_vpcs()


def test_the_request_log_names_operation_and_caller(aws, moto_url):
    aws("ec2", key="AKIAISOLATEINSTANCE1").describe_instances()
    aws("sts", key="AKIAMARKRESOLVED0001").get_caller_identity()
    log = requests.get(f"{moto_url}/firebreak-api/requests", timeout=10).json()
    calls = {(r["service"], r["operation"], r["accessKeyId"]) for r in log}
    assert ("ec2", "DescribeInstances", "AKIAISOLATEINSTANCE1") in calls
    assert ("sts", "GetCallerIdentity", "AKIAMARKRESOLVED0001") in calls
    requests.delete(f"{moto_url}/firebreak-api/faults", timeout=10)
    assert requests.get(f"{moto_url}/firebreak-api/requests", timeout=10).json() == []


def test_bad_fault_specs_are_refused(moto_url):
    r = requests.post(f"{moto_url}/firebreak-api/faults", json={"service": "ec2"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{moto_url}/firebreak-api/faults", json={"service": "ec2", "operation": "X", "code": "Y", "status": 200}, timeout=10)
    assert r.status_code == 400


def test_a_held_call_is_carried_out_after_what_others_did_meanwhile(aws, moto_url):
    """A slow AWS: the call waits before moto carries it out, so a write another caller
    makes meanwhile is what it finds; the next call is not held."""
    import threading
    import time

    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    inject(moto_url, service="ec2", operation="DescribeTags", delaySeconds=1.5, count=1)
    seen: list = []
    reader = threading.Thread(target=lambda: seen.append(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]))
    reader.start()
    # Once the reader's request has arrived (it is logged, then held), this write lands.
    for _ in range(100):
        log = requests.get(f"{moto_url}/firebreak-api/requests", timeout=10).json()
        if any(r["operation"] == "DescribeTags" for r in log):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the held DescribeTags never arrived")
    aws("ec2").create_tags(Resources=[vpc], Tags=[{"Key": "written", "Value": "meanwhile"}])
    reader.join(timeout=20)
    assert [t["Key"] for t in seen[0]] == ["written"]


def test_bad_delay_specs_are_refused(moto_url):
    for spec in ({"delaySeconds": 0}, {"delaySeconds": 31}, {"delaySeconds": 1, "count": 0}, {"delaySeconds": "slow"}):
        r = requests.post(f"{moto_url}/firebreak-api/faults", json={"service": "ec2", "operation": "DescribeTags", **spec}, timeout=10)
        assert r.status_code == 400, spec
