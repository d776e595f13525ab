"""Deploys the suite into the local account from the repository's own files — the same
ones the CDK app reads: runbooks/*/permissions.json, statemachines/*.asl.json,
statemachines/rules/*.json and the built-in policy — and seeds a demo environment."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
# The names every part agrees on, from their one home (runbooks/firebreak/names.json).
NAMES = json.loads((Path(__file__).resolve().parents[3] / "runbooks" / "firebreak" / "names.json").read_text())
AUDIT_LOG_GROUP = NAMES["auditLogGroup"]
POLICY_PARAMETER = NAMES["policyParameter"]
ACTION_TARGET_ID = NAMES["actionTargetId"]
STACK = NAMES["stack"]
RESPONSE_MACHINE = NAMES["responseMachine"]
# How every function runs (timeout, memory), the same file the CDK app deploys from.
LAMBDA = json.loads((Path(__file__).resolve().parents[3] / "runbooks" / "firebreak" / "lambda.json").read_text())
# What no runbook may do to Firebreak or the protected principals, as the CDK app reads it.
GUARDRAILS = json.loads((Path(__file__).resolve().parents[3] / "runbooks" / "firebreak" / "guardrails.json").read_text())
# The local organisation: Firebreak runs in ACCOUNT, the security account (GuardDuty's and
# Security Hub's delegated administrator); two member accounts are enrolled, with the
# member stack's roles; a second region is enrolled; one more account is not.
ORGANIZATION_ID = "o-fbk0local01"
MANAGEMENT_ACCOUNT = "210987654321"
MEMBERS = ["111122223333", "444455556666"]
SECOND_REGION = "eu-west-1"
NOT_ENROLLED = "999988887777"
MEMBER_ROLE_PREFIX = NAMES["memberRolePrefix"]
# The operator's well-known key: tests, the demo and the CLI sign with it.
OPERATOR_KEY = "AKIAFIREBREAKOPERATOR"
OPERATOR_SECRET = "local"


def function_settings(name: str) -> dict[str, Any]:
    """One runbook's timeout, memory and extra environment: lambda.json's defaults and its
    own overrides, as the CDK app reads them."""
    own = LAMBDA.get("functions", {}).get(name, {})
    return {
        "timeoutSeconds": own.get("timeoutSeconds", LAMBDA["timeoutSeconds"]),
        "memoryMiB": own.get("memoryMiB", LAMBDA["memoryMiB"]),
        "environment": own.get("environment", {}),
    }

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
EVENTS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[-_]", name) if w)


def resolve(arn: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return arn.replace("${Partition}", PARTITION).replace("${Region}", region).replace("${Account}", account)


def protected_arns(policy: dict[str, Any], account: str = ACCOUNT) -> list[str]:
    """The principals no runbook may change, as the CDK app lists them."""
    def iam_arn(kind: str, name: str) -> list[str]:
        return [f"arn:{PARTITION}:iam::{account}:{kind}/{name}", f"arn:{PARTITION}:iam::{account}:{kind}/*/{name}"]

    protected = policy.get("protectedPrincipals", {})
    return [
        *iam_arn("role", f"{STACK}-*"),
        f"arn:{PARTITION}:iam::{account}:role/aws-service-role/*",
        *[a for n in protected.get("roleNames", []) for a in iam_arn("role", n)],
        *[a for n in protected.get("userNames", []) for a in iam_arn("user", n)],
    ]


def guardrail_statement(policy: dict[str, Any], account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "Sid": "NeverChangeFirebreakOrProtectedPrincipals",
        "Effect": "Deny",
        "Action": GUARDRAILS["neverChange"],
        "Resource": protected_arns(policy, account),
    }


def rule_band(policy: dict[str, Any]) -> str:
    """`first-last` of the policy's NACL rule band (the built-in default when it names none)."""
    band = policy.get("ipBlocking", {}).get("ruleNumbers", {"first": 80, "last": 99})
    return f"{band['first']}-{band['last']}"


def member_runbooks(root: Path) -> list[str]:
    """The runbooks that act in a finding's own account (`"memberRole": true`)."""
    return sorted(p.parent.name for p in (root / "runbooks").glob("*/permissions.json") if json.loads(p.read_text()).get("memberRole"))


def admin_key(account: str) -> str:
    """The well-known key of an administrator of `account`: the operator's in Firebreak's
    own, `AKIAADMN<account>` in the others (the stand-in for a person with admin there;
    20 characters, the length by which moto finds a key's account)."""
    return OPERATOR_KEY if account == ACCOUNT else f"AKIAADMN{account}"


def local_policy(root: Path) -> dict[str, Any]:
    """The built-in policy with the local organisation enrolled: what the local account
    deploys, as a user deploys theirs with their own accounts."""
    policy = json.loads((root / "runbooks" / "firebreak" / "policy" / "default-policy.json").read_text())
    policy["enrolment"] = {"accounts": MEMBERS, "regions": [SECOND_REGION]}
    return policy


# Whose accounts they are: the members as the accounts file of `firebreak plan
# --accounts` has them (one source for both), and Firebreak's own security account.
ACCOUNTS_FILE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "accounts.json"
ACCOUNT_CACHE_TABLE = NAMES["accountCacheTable"]
OWNERS_TOPIC = NAMES["ownersTopic"]
RESPONSE_TOPIC = NAMES["responseTopic"]


def organization_spec() -> dict[str, Any]:
    """The local organisation for the control API (organization.py)."""
    members = json.loads(ACCOUNTS_FILE.read_text())
    security = {
        "accountId": ACCOUNT, "name": "security", "email": "aws+security@example.com", "ouPath": ["Security"],
        "tags": {"environment": "production", "team": "security"},
        "securityContact": {"name": "Firebreak operators", "email": "secops@example.com"},
    }
    return {
        "id": ORGANIZATION_ID,
        "managementAccount": MANAGEMENT_ACCOUNT,
        "delegatedAdministrator": ACCOUNT,
        "accounts": [
            {"id": a["accountId"], "name": a["name"], "email": a["email"], "ou": a.get("ouPath", []), "tags": a.get("tags", {}),
             "securityContact": a.get("securityContact")}
            for a in [security, *members]
        ],
    }


def member_trust(runbook: str) -> dict[str, Any]:
    """Who may assume a member role: only that runbook's role in the security account,
    from inside the organisation (as the member stack writes it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{STACK}-{runbook}"},
                "StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID},
            },
        }],
    }


def deploy_member(client: Callable[..., Any], root: Path, account: str) -> dict[str, str]:
    """The member stack in one member account: one role per runbook that acts there, with
    its permissions.json's statements (not the security-account-only ones) and the
    guardrail, trusted only by that runbook's role. Returns runbook -> role ARN."""
    iam = client("iam")
    policy = local_policy(root)
    roles = {}
    for name in member_runbooks(root):
        declared = json.loads((root / "runbooks" / name / "permissions.json").read_text())
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": st["actions"], "Resource": [resolve(r, account, "*") for r in st["resources"]], **({"Condition": st["conditions"]} if "conditions" in st else {})}
                for st in declared["statements"] if not st.get("securityAccountOnly")
            ] + [guardrail_statement(policy, account)],
        }
        role_name = f"{MEMBER_ROLE_PREFIX}{name}"
        roles[name] = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(member_trust(name)))["Role"]["Arn"]
        iam.put_role_policy(RoleName=role_name, PolicyName="declared", PolicyDocument=json.dumps(document))
    return roles


def discover(root: Path) -> dict[str, Any]:
    runbooks = sorted(p.parent.name for p in (root / "runbooks").glob("*/permissions.json"))
    machines = sorted(p.name[: -len(".asl.json")] for p in (root / "statemachines").glob("*.asl.json"))
    rules = sorted((root / "statemachines" / "rules").glob("*.json"))
    return {"runbooks": runbooks, "stateMachines": machines, "rules": rules}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# served by the local Lambda host\n")
    return buf.getvalue()


def create_operator(client: Callable[..., Any]) -> str:
    """The person who deploys and operates Firebreak: an administrator (the local account
    registers the well-known OPERATOR_KEY for this user)."""
    iam = client("iam")
    iam.create_user(UserName="firebreak-operator")
    iam.put_user_policy(UserName="firebreak-operator", PolicyName="administrator", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }))
    return "firebreak-operator"


def deploy(client: Callable[..., Any], root: Path) -> dict[str, Any]:
    """Everything the CDK app deploys, from the same files. Returns what was created."""
    found = discover(root)
    iam, lam, sfn, events, logs, ssm, hub = (client(s) for s in ("iam", "lambda", "stepfunctions", "events", "logs", "ssm", "securityhub"))
    out: dict[str, Any] = {"functions": {}, "roles": {}, "stateMachines": {}, "rules": [], "environment": {}}

    logs.create_log_group(logGroupName=AUDIT_LOG_GROUP)
    ssm.put_parameter(
        Name=POLICY_PARAMETER,
        Type="String",
        Tier="Advanced",
        Value=json.dumps(local_policy(root), separators=(",", ":")),
    )
    hub.enable_security_hub(EnableDefaultStandards=False)
    # As the CDK app: the 24-hour cache of whose account a finding is in.
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=ACCOUNT_CACHE_TABLE,
        KeySchema=[{"AttributeName": "accountId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "accountId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=ACCOUNT_CACHE_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
    out["actionTargetArn"] = hub.create_action_target(
        Name="Firebreak contain", Description="Contain the selected findings with Firebreak", Id=ACTION_TARGET_ID
    )["ActionTargetArn"]

    # As the CDK app: the owning teams' and the response team's topics.
    sns = client("sns")
    out["topics"] = {
        "owners": sns.create_topic(Name=OWNERS_TOPIC)["TopicArn"],
        "response": sns.create_topic(Name=RESPONSE_TOPIC)["TopicArn"],
    }
    env = {
        "RUST_LOG": "info",
        "FIREBREAK_OWNERS_TOPIC_ARN": out["topics"]["owners"],
        "FIREBREAK_RESPONSE_TOPIC_ARN": out["topics"]["response"],
        "FIREBREAK_POLICY_PARAMETER": POLICY_PARAMETER,
        "FIREBREAK_AUDIT_LOG_GROUP": AUDIT_LOG_GROUP,
        "FIREBREAK_DRY_RUN": "false",
        # As the CDK app sets it: the only account Firebreak acts in (with AWS_REGION).
        "FIREBREAK_ACCOUNT_ID": ACCOUNT,
        "FIREBREAK_ACCOUNT_CACHE_TABLE": ACCOUNT_CACHE_TABLE,
        # The band the sweep may act in, from the deployed policy, as the CDK app sets it.
        "FIREBREAK_BLOCK_RULE_BAND": rule_band(json.loads((root / "runbooks" / "firebreak" / "policy" / "default-policy.json").read_text())),
    }
    default_policy = json.loads((root / "runbooks" / "firebreak" / "policy" / "default-policy.json").read_text())
    declared_of = {name: json.loads((root / "runbooks" / name / "permissions.json").read_text()) for name in found["runbooks"]}
    # As the CDK app: one boundary for every runbook role, at most the declared actions.
    boundary = iam.create_policy(PolicyName=f"{STACK}-RunbookBoundary", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AtMostTheDeclaredActions",
                "Effect": "Allow",
                "Action": sorted({a for d in declared_of.values() for st in d["statements"] for a in st["actions"]} | {"sts:AssumeRole"}) + GUARDRAILS["boundaryAlso"],
                "Resource": "*",
            },
            guardrail_statement(default_policy),
        ],
    }))["Policy"]["Arn"]
    for name in found["runbooks"]:
        settings = function_settings(name)
        declared = declared_of[name]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": s["actions"], "Resource": [resolve(r) for r in s["resources"]], **({"Condition": s["conditions"]} if "conditions" in s else {})}
                for s in declared["statements"]
            ] + [guardrail_statement(default_policy)] + ([{
                # As the CDK app adds it: into this runbook's member role, nowhere else.
                "Sid": "AssumeMemberRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:{PARTITION}:iam::*:role/{MEMBER_ROLE_PREFIX}{name}",
            }] if declared.get("memberRole") else []),
        }
        role = iam.create_role(
            RoleName=f"{STACK}-{name}", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST), PermissionsBoundary=boundary
        )["Role"]["Arn"]
        iam.put_role_policy(RoleName=f"{STACK}-{name}", PolicyName="declared", PolicyDocument=json.dumps(policy))
        out["roles"][name] = role
        out["functions"][name] = lam.create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Architectures=["x86_64"],
            Role=role,
            Handler="bootstrap",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {**env, **settings["environment"]}},
            Timeout=settings["timeoutSeconds"],
            MemorySize=settings["memoryMiB"],
        )["FunctionArn"]
        out["environment"][name] = {**env, **settings["environment"]}

    sfn_role = iam.create_role(RoleName=f"{STACK}-states", AssumeRolePolicyDocument=json.dumps(STATES_TRUST))["Role"]["Arn"]
    subs = {f"{pascal(fn)}FunctionArn": arn for fn, arn in out["functions"].items()}
    invoked: set[str] = set()
    for name in found["stateMachines"]:
        text = (root / "statemachines" / f"{name}.asl.json").read_text()

        def substitute(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in subs:
                raise KeyError(f"statemachines/{name}.asl.json: ${{{key}}} names no runbook function")
            return subs[key]

        definition = re.sub(r"\$\{([A-Za-z0-9]+)\}", substitute, text)
        out["stateMachines"][name] = sfn.create_state_machine(
            name=f"{STACK}-{name}", definition=definition, roleArn=sfn_role
        )["stateMachineArn"]
        # As the CDK app does: each function's resource policy names only the role of the
        # machines that invoke it.
        for fn, arn in out["functions"].items():
            if arn in definition:
                invoked.add(arn)
                lam.add_permission(
                    FunctionName=fn,
                    StatementId=f"invoked-by-{name}",
                    Action="lambda:InvokeFunction",
                    Principal=sfn_role,
                )

    # As the CDK app grants them: the machines' role may invoke the functions they name,
    # and EventBridge's role may start the machines the rules target.
    iam.put_role_policy(RoleName=f"{STACK}-states", PolicyName="invoke-runbooks", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": sorted(invoked)}],
    }))
    events_role = iam.create_role(RoleName=f"{STACK}-events", AssumeRolePolicyDocument=json.dumps(EVENTS_TRUST))["Role"]["Arn"]
    targeted = sorted({out["stateMachines"][json.loads(p.read_text())["stateMachine"]] for p in found["rules"]})
    iam.put_role_policy(RoleName=f"{STACK}-events", PolicyName="start-machines", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": targeted}],
    }))
    for path in found["rules"]:
        rule = json.loads(path.read_text())
        name = f"{STACK}-{path.stem}"
        state = "ENABLED" if rule.get("enabled", True) else "DISABLED"
        if "schedule" in rule:
            # The local account has no clock that fires schedules: tests start the sweep.
            events.put_rule(Name=name, ScheduleExpression=rule["schedule"], State=state)
        else:
            pattern = json.dumps(rule["eventPattern"]).replace("${SecurityHubActionTargetArn}", out["actionTargetArn"])
            events.put_rule(Name=name, EventPattern=pattern, State=state)
        events.put_targets(
            Rule=name,
            Targets=[{"Id": "response", "Arn": out["stateMachines"][rule["stateMachine"]], "RoleArn": events_role}],
        )
        out["rules"].append(name)
    return out


def _victim_zip() -> bytes:
    """A function body for the demo's Lambda function (it is never invoked)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


def seed_demo(client: Callable[..., Any], region: str = REGION) -> dict[str, Any]:
    """A VPC with two subnets, a web instance with an instance-profile role, owner/team
    tags and an interface in each subnet, a second web instance in the second subnet, an
    instance tagged exempt, an IAM user with a key
    (in the account and region `client` signs for)."""
    ec2, iam = client("ec2"), client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
        for cidr in ("10.20.1.0/24", "10.20.2.0/24")
    ]
    web_sg = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]
    admin_sg = ec2.create_security_group(GroupName="admin", Description="admin access", VpcId=vpc)["GroupId"]
    iam.create_role(RoleName="web-instance-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))
    profile = iam.create_instance_profile(InstanceProfileName="web-instance-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-instance-profile", RoleName="web-instance-role")

    def instance(tags: dict[str, str], groups: list[str], subnet: int = 0) -> str:
        return ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=subnets[subnet],
            SecurityGroupIds=groups,
            IamInstanceProfile={"Arn": profile},
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["Instances"][0]["InstanceId"]

    web = instance({"Name": "web-1", "owner": "alice@example.com", "team": "payments", "environment": "production"}, [web_sg])
    second_eni = ec2.create_network_interface(SubnetId=subnets[1], Groups=[web_sg, admin_sg])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=second_eni, InstanceId=web, DeviceIndex=1)
    exempt = instance({"Name": "research-1", "owner": "bob@example.com", "firebreak:exempt": "true"}, [web_sg])
    # A second web server in the other subnet, same role: what an attack sequence over an
    # instance group names.
    web2 = instance({"Name": "web-2", "owner": "alice@example.com", "team": "payments", "environment": "production"}, [web_sg], subnet=1)

    # A Lambda function with its own execution role: what a Lambda Protection finding names.
    fn_role = iam.create_role(RoleName="report-generator-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    function = client("lambda").create_function(
        FunctionName="report-generator", Runtime="python3.12", Role=fn_role, Handler="index.handler",
        Code={"ZipFile": _victim_zip()}, Tags={"team": "reporting"},
    )["FunctionArn"]

    buckets = seed_buckets(client, region)

    iam.create_user(UserName="ci-deployer")
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    return {
        **buckets,
        "vpc": vpc,
        "subnets": subnets,
        "groups": {"web": web_sg, "admin": admin_sg},
        "webInstance": web,
        "exemptInstance": exempt,
        "secondWebInstance": web2,
        "function": "report-generator",
        "functionArn": function,
        "functionRole": "report-generator-role",
        "instanceProfile": profile,
        "user": "ci-deployer",
        "accessKey": key,
        "region": region,
    }


# The EICAR test file: what Malware Protection for S3 reports as a threat in the demo.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def seed_buckets(client: Callable[..., Any], region: str) -> dict[str, Any]:
    """S3 for the S3 findings, named by account (bucket names are global): a bucket
    readable by everyone (its ACL public-read, no Block Public Access), a versioned
    upload bucket holding the EICAR test file as a tagged object, and a bucket tagged
    exempt."""
    s3 = client("s3")
    account = client("sts").get_caller_identity()["Account"]
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}

    def bucket(name: str, tags: dict[str, str]) -> str:
        s3.create_bucket(Bucket=name, **where)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        return name

    public = bucket(f"quarterly-reports-{account}", {"team": "finance", "owner": "carol@example.com"})
    s3.put_bucket_acl(Bucket=public, ACL="public-read")
    uploads = bucket(f"customer-uploads-{account}", {"team": "uploads"})
    s3.put_bucket_versioning(Bucket=uploads, VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/invoice-2291.pdf"
    version = s3.put_object(Bucket=uploads, Key=key, Body=EICAR, Tagging="source=web")["VersionId"]
    exempt = bucket(f"research-data-{account}", {"firebreak:exempt": "true"})
    s3.put_bucket_acl(Bucket=exempt, ACL="public-read")
    return {
        "publicBucket": public,
        "uploadsBucket": uploads,
        "maliciousObject": {"bucket": uploads, "key": key, "versionId": version},
        "exemptBucket": exempt,
    }


# Where each member account's demo environment is: the first in the second region (a
# finding there is contained there), the second in Firebreak's own region.
MEMBER_DEMO_REGIONS = {MEMBERS[0]: SECOND_REGION, MEMBERS[1]: REGION}


def point_at_demo_instance(details: dict[str, Any], instance_id: str, demo: dict[str, Any]) -> None:
    """A GuardDuty finding's instanceDetails, rewritten to a demo instance: its id, the demo
    instance profile, interfaces in the demo subnet and VPC with the web group (the
    interface ids are dropped: triage reads the real ones from EC2)."""
    details["instanceId"] = instance_id
    details["iamInstanceProfile"] = {"arn": demo["instanceProfile"], "id": "AIPADEMO"}
    for eni in details.get("networkInterfaces", []):
        eni.update({
            "subnetId": demo["subnets"][0],
            "vpcId": demo["vpc"],
            "securityGroups": [{"groupName": "web", "groupId": demo["groups"]["web"]}],
        })
        eni.pop("networkInterfaceId", None)


def guardduty_event(sample: dict[str, Any], instance_id: str, demo: dict[str, Any], severity: float, finding_id: str,
                    account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """A GuardDuty EventBridge event from a sample's `detail`, its ids rewritten to the demo
    resources and its sample flag cleared, so that it is a finding Firebreak acts on. A
    finding of another `account` or `region` arrives as Firebreak's account sees it: on
    its own bus in its own region (the delegated administrator's, the region's events
    forwarded), the finding's account and region in the detail."""
    detail = json.loads(json.dumps(sample))
    detail.update({
        "accountId": account,
        "region": region,
        "partition": PARTITION,
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{region}:{account}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{finding_id}",
        "severity": severity,
    })
    details = detail["resource"]["instanceDetails"]
    point_at_demo_instance(details, instance_id, demo)
    details["tags"] = []
    detail["service"].setdefault("additionalInfo", {})["sample"] = False
    return {
        "version": "0",
        "id": f"demo-{finding_id}",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": "2026-11-29T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def import_finding(client: Callable[..., Any], event: dict[str, Any]) -> dict[str, str]:
    """Puts the finding into Security Hub now, as GuardDuty's copy would have arrived long
    ago: for drills, which start the response by hand with a finding that exists."""
    from .guardduty_import import asff

    finding = asff(event["detail"])
    client("securityhub").batch_import_findings(Findings=[finding])
    return finding_ident(event)


def finding_ident(event: dict[str, Any]) -> dict[str, str]:
    """How Security Hub will know a GuardDuty event's finding, once GuardDuty's copy of it
    arrives there (the local account imports it a configurable delay after the event)."""
    from .guardduty_import import identifier

    return identifier(event["detail"])
