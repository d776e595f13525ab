"""The local organisation: Organizations with chosen account ids answered for the delegated
administrator only, the security contacts, and sts:AssumeRole needing the trust policy."""

import json

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from firebreak_localaws import iam_enforcement

MANAGEMENT, SECURITY, MEMBER, OTHER = "210987654321", "123456789012", "111122223333", "444455556666"
SPEC = {
    "id": "o-fbk0local01", "managementAccount": MANAGEMENT, "delegatedAdministrator": SECURITY,
    "accounts": [
        {"id": SECURITY, "name": "security", "email": "s@example.com", "ou": ["Security"]},
        {"id": MEMBER, "name": "workload-prod", "email": "p@example.com", "ou": ["Workloads", "Production"],
         "tags": {"environment": "production"}, "securityContact": {"name": "Sam", "email": "sec@example.com", "phone": "+1-555-0100", "title": "lead"}},
        {"id": OTHER, "name": "workload-dev", "email": "d@example.com", "ou": ["Workloads", "Development"]},
    ],
}


def signed_as(moto_url, account, service):
    """A client whose requests moto files under `account` (IAM not enforced)."""
    c = boto3.client(service, endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="AKIAFIREBREAKTEST001", aws_secret_access_key="local")
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return c


def test_the_delegated_administrator_reads_the_organisation_with_its_ous_tags_and_contacts(aws, moto_url):
    out = requests.post(f"{moto_url}/firebreak-api/organization", json=SPEC, timeout=10)
    assert out.status_code == 200, out.text
    orgs = signed_as(moto_url, SECURITY, "organizations")
    assert orgs.describe_account(AccountId=MEMBER)["Account"]["Name"] == "workload-prod"
    (parent,) = orgs.list_parents(ChildId=MEMBER)["Parents"]
    assert parent["Type"] == "ORGANIZATIONAL_UNIT"
    assert orgs.describe_organizational_unit(OrganizationalUnitId=parent["Id"])["OrganizationalUnit"]["Name"] == "Production"
    (grand,) = orgs.list_parents(ChildId=parent["Id"])["Parents"]
    assert orgs.describe_organizational_unit(OrganizationalUnitId=grand["Id"])["OrganizationalUnit"]["Name"] == "Workloads"
    assert orgs.list_tags_for_resource(ResourceId=MEMBER)["Tags"] == [{"Key": "environment", "Value": "production"}]
    contact = signed_as(moto_url, SECURITY, "account").get_alternate_contact(AccountId=MEMBER, AlternateContactType="SECURITY")["AlternateContact"]
    assert (contact["Name"], contact["EmailAddress"]) == ("Sam", "sec@example.com")
    # A member that is not the delegated administrator is refused.
    with pytest.raises(ClientError) as e:
        signed_as(moto_url, OTHER, "organizations").describe_account(AccountId=MEMBER)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert iam_enforcement.organization_of(MEMBER) == "o-fbk0local01"


def test_assuming_a_role_needs_its_trust_policy_to_name_the_caller_within_the_organisation():
    iam_enforcement.set_organization("o-fbk0local01", [SECURITY, MEMBER])
    from moto.iam.models import iam_backends

    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SECURITY}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{SECURITY}:role/Firebreak-triage"}, "StringEquals": {"aws:PrincipalOrgID": "o-fbk0local01"}},
    }]}
    backend = iam_backends[MEMBER]["aws"]
    role = backend.create_role(role_name="Firebreak-member-triage", assume_role_policy_document=json.dumps(trust), path="/",
                               permissions_boundary=None, description="", tags=[], max_session_duration="3600")
    ctx = lambda arn, account=SECURITY, org="o-fbk0local01": {"aws:PrincipalArn": [arn], "aws:PrincipalAccount": [account], **({"aws:PrincipalOrgID": [org]} if org else {})}  # noqa: E731
    assert iam_enforcement.trust_allows(role.arn, ctx(f"arn:aws:iam::{SECURITY}:role/Firebreak-triage"))
    assert not iam_enforcement.trust_allows(role.arn, ctx(f"arn:aws:iam::{SECURITY}:role/Firebreak-isolate-instance")), "another runbook's role"
    assert not iam_enforcement.trust_allows(role.arn, ctx(f"arn:aws:iam::{OTHER}:role/Firebreak-triage", OTHER)), "the same name elsewhere"
    assert not iam_enforcement.trust_allows(role.arn, ctx(f"arn:aws:iam::{SECURITY}:role/Firebreak-triage", org=None)), "outside the organisation"
    assert not iam_enforcement.trust_allows(f"arn:aws:iam::{MEMBER}:role/nope", ctx(f"arn:aws:iam::{SECURITY}:role/Firebreak-triage")), "no such role"
