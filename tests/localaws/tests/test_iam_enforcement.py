"""The local account's IAM evaluation: never kinder than AWS."""

import json

import pytest
from botocore.exceptions import ClientError
import requests

from firebreak_localaws.iam_enforcement import ALLOW, DENY, NEUTRAL, evaluate

SG = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_an_allow_needs_its_action_and_resource():
    p = doc({"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": "arn:aws:ec2:us-east-1:123456789012:network-acl/*"})
    assert evaluate([p], "ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1", {}) == ALLOW
    assert evaluate([p], "ec2:createtags", "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1", {}) == ALLOW
    assert evaluate([p], "ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", {}) == NEUTRAL
    assert evaluate([p], "ec2:DeleteTags", "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1", {}) == NEUTRAL


def test_an_explicit_deny_wins_over_any_allow():
    allow = doc({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::123456789012:role/*"})
    deny = doc({"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::123456789012:role/Firebreak-*"})
    assert evaluate([allow, deny], "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/Firebreak-triage", {}) == DENY
    assert evaluate([allow, deny], "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/web", {}) == ALLOW


def test_a_tag_condition_allows_only_when_the_tag_matches():
    p = doc({"Effect": "Allow", "Action": "ec2:AuthorizeSecurityGroupIngress", "Resource": SG,
             "Condition": {"StringEquals": {"aws:ResourceTag/firebreak:group": ["allow-all", "isolation"]}}})
    assert evaluate([p], "ec2:AuthorizeSecurityGroupIngress", SG, {"aws:ResourceTag/firebreak:group": ["isolation"]}) == ALLOW
    assert evaluate([p], "ec2:AuthorizeSecurityGroupIngress", SG, {"aws:ResourceTag/firebreak:group": ["web"]}) == NEUTRAL
    assert evaluate([p], "ec2:AuthorizeSecurityGroupIngress", SG, {}) == NEUTRAL, "an untagged group is not Firebreak's"


def test_a_condition_it_cannot_evaluate_never_allows_and_always_denies():
    allow = doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}})
    deny = doc({"Effect": "Deny", "Action": "ec2:*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}})
    assert evaluate([allow], "ec2:DescribeInstances", "*", {}) == NEUTRAL
    assert evaluate([deny], "ec2:DescribeInstances", "*", {}) == DENY


def test_not_action_and_if_exists():
    p = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*",
             "Condition": {"StringEqualsIfExists": {"aws:RequestTag/team": "sec"}}})
    assert evaluate([p], "ec2:CreateTags", "*", {}) == ALLOW
    assert evaluate([p], "ec2:CreateTags", "*", {"aws:RequestTag/team": ["web"]}) == NEUTRAL
    assert evaluate([p], "iam:GetRole", "*", {}) == NEUTRAL


def test_with_enforcement_a_role_calls_what_its_policy_allows_and_no_more(aws, moto_url):
    iam = aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=json.dumps(doc({"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"})))
    boundary = iam.create_policy(PolicyName="b", PolicyDocument=json.dumps(doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="reader", PermissionsBoundary=boundary)
    refused = requests.post(f"{moto_url}/firebreak-api/iam/service-credentials", json={"roleArn": role, "service": "states.amazonaws.com"}, timeout=10)
    assert refused.status_code == 400 and "does not trust" in refused.json()["error"]
    creds = requests.post(f"{moto_url}/firebreak-api/iam/service-credentials", json={"roleArn": role, "service": "lambda.amazonaws.com"}, timeout=10).json()
    requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": True}, timeout=10).raise_for_status()
    try:
        import boto3

        ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"], aws_session_token=creds["AWS_SESSION_TOKEN"])
        ec2.describe_instances()
        with pytest.raises(ClientError) as e:
            ec2.describe_vpcs()  # the boundary allows it, the role's policy does not
        assert e.value.response["Error"]["Code"] == "UnauthorizedOperation"
        with pytest.raises(ClientError) as e:
            aws("ec2").describe_instances()  # a key nobody has
        assert e.value.response["Error"]["Code"] == "AuthFailure"
    finally:
        requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": False}, timeout=10).raise_for_status()


@pytest.mark.parametrize(
    "method,path,expected",
    [
        ("PUT", "/b?publicAccessBlock", "s3:PutBucketPublicAccessBlock"),
        ("GET", "/b?publicAccessBlock=", "s3:GetBucketPublicAccessBlock"),
        ("GET", "/b?tagging", "s3:GetBucketTagging"),
        ("PUT", "/b/?tagging", "s3:PutBucketTagging"),
        ("PUT", "/b/incoming/x.pdf?tagging", "s3:PutObjectTagging"),
        ("GET", "/b/incoming/x.pdf?tagging&versionId=v1", "s3:GetObjectVersionTagging"),
        ("GET", "/b/incoming/x.pdf", "s3:GetObject"),
    ],
)
def test_an_s3_request_is_checked_as_the_iam_action_aws_names(method, path, expected):
    from firebreak_localaws.iam_enforcement import s3_action

    assert s3_action(method, path, "s3:GetObject") == expected


def test_with_enforcement_s3_refuses_the_wrong_action_name_and_a_wrong_expected_owner(aws, moto_url):
    iam = aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="s3-closer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # The API's name, not IAM's: AWS refuses PutPublicAccessBlock with this policy.
    policy = doc({"Effect": "Allow", "Action": ["s3:PutPublicAccessBlock", "s3:GetBucketTagging"], "Resource": "arn:aws:s3:::*"})
    iam.put_role_policy(RoleName="s3-closer", PolicyName="p", PolicyDocument=json.dumps(policy))
    aws("s3").create_bucket(Bucket="ours")
    creds = requests.post(f"{moto_url}/firebreak-api/iam/service-credentials", json={"roleArn": role, "service": "lambda.amazonaws.com"}, timeout=10).json()
    requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": True}, timeout=10).raise_for_status()
    try:
        import boto3

        s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"], aws_session_token=creds["AWS_SESSION_TOKEN"])
        with pytest.raises(ClientError) as e:
            s3.get_bucket_tagging(Bucket="ours", ExpectedBucketOwner="111122223333")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as e:
            s3.put_public_access_block(Bucket="ours", PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as e:  # allowed, and the owner is right: only the tag set is missing
            s3.get_bucket_tagging(Bucket="ours", ExpectedBucketOwner="123456789012")
        assert e.value.response["Error"]["Code"] == "NoSuchTagSet"
        fixed = doc({"Effect": "Allow", "Action": ["s3:PutBucketPublicAccessBlock"], "Resource": "arn:aws:s3:::ours"})
        requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": False}, timeout=10).raise_for_status()
        iam.put_role_policy(RoleName="s3-closer", PolicyName="p", PolicyDocument=json.dumps(fixed))
        requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": True}, timeout=10).raise_for_status()
        s3.put_public_access_block(Bucket="ours", PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    finally:
        requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": False}, timeout=10).raise_for_status()


@pytest.mark.parametrize(
    "service,operation,params,expected",
    [
        ("elasticloadbalancing", "RegisterInstancesWithLoadBalancer", {"LoadBalancerName": "web-classic"}, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web-classic"),
        ("elasticloadbalancing", "DeregisterInstancesFromLoadBalancer", {"LoadBalancerName": "web-classic"}, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web-classic"),
        ("elasticloadbalancing", "RegisterTargets", {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"}, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"),
    ],
)
def test_release_calls_are_authorised_on_the_resource_they_change(service, operation, params, expected):
    """Putting an instance back is checked on the load balancer or target group, as
    taking it out was: a role allowed only to deregister may not register."""
    from firebreak_localaws.iam_enforcement import resources

    assert [arn for arn, _ in resources(service, operation, params, "123456789012", "us-east-1", "")] == [expected]
