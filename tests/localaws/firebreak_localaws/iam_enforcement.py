"""IAM enforced as AWS enforces it, for every principal Firebreak's parts run as.

moto can authenticate requests (access key, session token) but its policy evaluation is
action-only and treats an Allow with a Condition as a Deny. Once `enforce(True)`, every
AWS request is authorised here instead:

- identity policies (inline and attached) and the permissions boundary of the principal,
  an explicit Deny in either wins, and an action needs an Allow in both;
- the request's resources as ARNs (each must be allowed), for the operations Firebreak's
  parts make; any other operation is checked against `*` only;
- conditions on `aws:RequestTag/*`, `aws:ResourceTag/*` (EC2 tags), `aws:TagKeys`,
  `aws:PrincipalArn`, `aws:PrincipalAccount`. A condition this code cannot evaluate makes
  an Allow not apply and a Deny apply: never kinder than AWS;
- refusals in the service's own words: `UnauthorizedOperation` for EC2,
  `AccessDeniedException` for JSON services, `AccessDenied` for IAM and STS.

Services act as roles, never as an all-powerful caller: Lambda runs each function with
its role's credentials, EventBridge starts executions with the rule target's role, the
Step Functions engine invokes Lambda with the state machine's role. `service_credentials`
gives them, after checking that the role's trust policy names that service.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.iam.access_control import IAMRequestBase
from moto.iam.models import iam_backends
from moto.s3.exceptions import BucketAccessDeniedError
from moto.s3.models import s3_backends
from moto.sts.models import sts_backends

PARTITION = "aws"
_LOCK = threading.Lock()
_CREDENTIALS: dict[tuple[str, str], dict[str, str]] = {}
# Every refusal since the last reset: {principal, action, resource, why}.
REFUSALS: list[dict[str, str]] = []

_JSON_SERVICES = {"securityhub", "ssm", "logs", "states", "lambda", "events", "guardduty", "monitoring", "cloudwatch", "dynamodb", "organizations", "account", "secretsmanager"}


def enforce(on: bool) -> None:
    """moto authenticates every request from the first one on (0), or none (infinity)."""
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")
    ActionAuthenticatorMixin.request_count = 0
    if not on:
        # Off is where a fresh account starts (moto reset): its sessions are gone too.
        reset()


def enforcing() -> bool:
    return settings.INITIAL_NO_AUTH_ACTION_COUNT == 0


def reset() -> None:
    with _LOCK:
        _CREDENTIALS.clear()
        REFUSALS.clear()
        ORGANIZATIONS.clear()


class NotTrusted(Exception):
    pass


def _trusts(document: Any, service: str) -> bool:
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow" or "sts:AssumeRole" not in _as_list(st.get("Action")):
            continue
        if service in _as_list((st.get("Principal") or {}).get("Service")):
            return True
    return False


# The local organisation: which account belongs to which organisation id (aws:PrincipalOrgID).
ORGANIZATIONS: dict[str, str] = {}


def set_organization(org_id: str, accounts: list[str]) -> None:
    with _LOCK:
        for a in accounts:
            ORGANIZATIONS[a] = org_id


def organization_of(account: str) -> str | None:
    return ORGANIZATIONS.get(account)


def _principal_matches(principal: Any, caller_arn: str, caller_account: str) -> bool:
    """An AWS principal of a trust policy: the role itself, its account's root, or the
    account id (any principal of that account the account's own policies allow)."""
    if principal == "*":
        return True
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    for p in _as_list(aws):
        if p in ("*", caller_arn, caller_account, f"arn:{PARTITION}:iam::{caller_account}:root"):
            return True
    return False


def trust_allows(role_arn: str, context: dict[str, list[str]]) -> bool:
    """Whether the role's trust policy lets the caller (context's aws:PrincipalArn) assume
    it: an Allow for sts:AssumeRole naming the caller whose conditions hold, and no Deny."""
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    try:
        role = iam_backends[account][PARTITION].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - no such role (moto's NotFound): nothing trusts the caller
        return False
    doc = role.assume_role_policy_document
    doc = json.loads(doc) if isinstance(doc, str) else doc
    caller = context["aws:PrincipalArn"][0]
    caller_account = context["aws:PrincipalAccount"][0]
    allowed = False
    for st in _as_list(doc.get("Statement")):
        if not _action_matches(_as_list(st.get("Action")), "sts:AssumeRole"):
            continue
        if not _principal_matches(st.get("Principal"), caller, caller_account):
            continue
        met = _condition(st, context)
        if st.get("Effect") == "Deny" and met is not False:
            return False
        if st.get("Effect") == "Allow" and met is True:
            allowed = True
    return allowed


def service_credentials(role_arn: str, service: str, session: str = "firebreak-local") -> dict[str, str]:
    """Credentials of `role_arn` as `service` (for example lambda.amazonaws.com) gets them,
    after checking that the role trusts that service. One session per role and service."""
    account = role_arn.split(":")[4]
    with _LOCK:
        cached = _CREDENTIALS.get((role_arn, service))
        if cached:
            return cached
        try:
            role = iam_backends[account][PARTITION].get_role_by_arn(role_arn)
        except Exception as e:  # noqa: BLE001 - moto's NotFound
            raise NotTrusted(f"{role_arn}: no such role") from e
        if not _trusts(role.assume_role_policy_document, service):
            raise NotTrusted(f"{role_arn} does not trust {service}")
        assumed = sts_backends[account][PARTITION].assume_role(
            region_name="us-east-1",
            role_session_name=session,
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
        creds = {
            "AWS_ACCESS_KEY_ID": assumed.access_key_id,
            "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
            "AWS_SESSION_TOKEN": assumed.session_token,
        }
        _CREDENTIALS[(role_arn, service)] = creds
        return creds


def register_access_key(account: str, user_name: str, access_key_id: str, secret: str) -> None:
    """Gives an existing IAM user an access key with a chosen id (the tests' and the CLI's
    well-known operator key)."""
    backend = iam_backends[account][PARTITION]
    key = backend.create_access_key(user_name)
    # moto finds a key's account by the id it is filed under: file it under the new one.
    backend.access_keys.pop(key.access_key_id, None)
    key.access_key_id = access_key_id
    key.secret_access_key = secret
    backend.access_keys[access_key_id] = key


# ---- policy evaluation ---------------------------------------------------------------------

ALLOW, DENY, NEUTRAL = "allow", "deny", "neutral"


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _glob(pattern: str, value: str) -> bool:
    # IAM wildcards: * and ?, case-sensitive for resources and case-insensitive for actions.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _action_matches(patterns: list[str], action: str) -> bool:
    return any(_glob(p.lower(), action.lower()) for p in patterns)


def _condition(statement: dict[str, Any], context: dict[str, list[str]]) -> bool | None:
    """True/False, or None when a key or an operator is not one this code evaluates."""
    result = True
    for operator, tests in (statement.get("Condition") or {}).items():
        op = operator
        if_exists = op.endswith("IfExists")
        op = op.removesuffix("IfExists")
        quantifier = None
        for q in ("ForAnyValue:", "ForAllValues:"):
            if op.startswith(q):
                quantifier, op = q, op[len(q):]
        for key, wanted in tests.items():
            lookup = next((k for k in context if k.lower() == key.lower()), None)
            if op == "Null":
                present = lookup is not None
                if (str(_as_list(wanted)[0]).lower() == "true") == present:
                    result = False
                continue
            if lookup is None:
                if if_exists:
                    continue
                if key.split("/")[0].lower() in KNOWN_KEYS:
                    result = False  # a known key absent from the request: the test fails
                    continue
                return None
            values = context[lookup]
            wanted_values = [str(w) for w in _as_list(wanted)]
            match = {
                "StringEquals": lambda v: v in wanted_values,
                "StringNotEquals": lambda v: v not in wanted_values,
                "StringEqualsIgnoreCase": lambda v: v.lower() in [w.lower() for w in wanted_values],
                "StringLike": lambda v: any(_glob(w, v) for w in wanted_values),
                "StringNotLike": lambda v: not any(_glob(w, v) for w in wanted_values),
                "ArnEquals": lambda v: v in wanted_values,
                "ArnLike": lambda v: any(_glob(w, v) for w in wanted_values),
                "ArnNotLike": lambda v: not any(_glob(w, v) for w in wanted_values),
                "Bool": lambda v: v.lower() in [w.lower() for w in wanted_values],
            }.get(op)
            if match is None:
                return None
            # A negated operator without a set quantifier must hold for every value.
            negated = op in ("StringNotEquals", "StringNotLike", "ArnNotLike")
            every = quantifier == "ForAllValues:" or (negated and quantifier is None)
            ok = all(match(v) for v in values) if every else any(match(v) for v in values)
            if not ok:
                result = False
    return result


KNOWN_KEYS = {"aws:requesttag", "aws:resourcetag", "ec2:resourcetag", "aws:tagkeys", "aws:principalarn", "aws:principalaccount", "aws:principalorgid"}


def evaluate(documents: list[Any], action: str, resource: str, context: dict[str, list[str]]) -> str:
    decision = NEUTRAL
    for document in documents:
        doc = json.loads(document) if isinstance(document, str) else document
        for st in _as_list(doc.get("Statement")):
            if "NotAction" in st:
                if _action_matches(_as_list(st["NotAction"]), action):
                    continue
            elif not _action_matches(_as_list(st.get("Action")), action):
                continue
            if "NotResource" in st:
                if any(_glob(p, resource) for p in _as_list(st["NotResource"])):
                    continue
            elif not any(_glob(p, resource) for p in _as_list(st.get("Resource"))):
                continue
            met = _condition(st, context)
            if st.get("Effect") == "Deny":
                if met is not False:
                    return DENY
            elif met is True:
                decision = ALLOW
    return decision


# ---- what a request acts on --------------------------------------------------------------------

def _params(data: Any, body: Any) -> dict[str, Any]:
    """The request's parameters: a JSON body, or form/query parameters (first values)."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                return parsed
        except ValueError:
            pass
    out: dict[str, Any] = {}
    for k, v in (data or {}).items():
        out[k] = v[0] if isinstance(v, list) and v else v
    return out


def _numbered(params: dict[str, Any], prefix: str) -> list[str]:
    """`ResourceId.1`, `ResourceId.2`, ... in a query request."""
    return [str(v) for k, v in sorted(params.items()) if k == prefix or (k.startswith(prefix + ".") and k[len(prefix) + 1:].isdigit())]


def _request_tags(params: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for k, v in params.items():
        # Tag.N.Key (CreateTags) or TagSpecification.N.Tag.M.Key
        if k.endswith(".Key") and (k.startswith("Tag.") or k.startswith("TagSpecification.")):
            tags[str(v)] = str(params.get(k[: -len("Key")] + "Value", ""))
    return tags


_EC2_KINDS = {"acl-": "network-acl", "i-": "instance", "sg-": "security-group", "eni-": "network-interface", "vol-": "volume", "vpc-": "vpc", "subnet-": "subnet"}


def _ec2_arn(region: str, account: str, resource_id: str) -> str:
    if resource_id.startswith("snap-"):
        return f"arn:{PARTITION}:ec2:{region}::snapshot/{resource_id}"
    kind = next((k for p, k in _EC2_KINDS.items() if resource_id.startswith(p)), "resource")
    return f"arn:{PARTITION}:ec2:{region}:{account}:{kind}/{resource_id}"


def _ec2_tags(account: str, region: str, resource_id: str) -> dict[str, str]:
    from moto.ec2.models import ec2_backends

    try:
        return dict(ec2_backends[account][region].tags.get(resource_id, {}))
    except Exception:  # noqa: BLE001
        return {}


def _iam_arn(account: str, kind: str, name: str) -> str:
    backend = iam_backends[account][PARTITION]
    path = "/"
    try:
        if kind == "role":
            path = backend.get_role(name).path
        elif kind == "user":
            path = backend.get_user(name).path
        elif kind == "instance-profile":
            path = backend.get_instance_profile(name).path
    except Exception:  # noqa: BLE001 - no such principal: its plain ARN
        pass
    return f"arn:{PARTITION}:iam::{account}:{kind}{path}{name}"


def _asg_arn(account: str, region: str, name: str) -> str:
    """The group's ARN as Auto Scaling has it (its uuid included), else with `*` for the
    uuid, which only a policy that allows any uuid matches."""
    from moto.autoscaling.models import autoscaling_backends

    group = autoscaling_backends[account][region].autoscaling_groups.get(name)
    arn = getattr(group, "arn", None)
    return str(arn) if arn else f"arn:{PARTITION}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"


def _secret_arn(account: str, region: str, secret_id: str) -> str:
    """The secret's ARN as Secrets Manager has it (its six random characters included),
    whether the request names it or its ARN; an unknown secret's name with `-??????`
    matches only a policy that allows any suffix."""
    from moto.secretsmanager.models import secretsmanager_backends

    if secret_id.startswith("arn:"):
        return secret_id
    secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    arn = getattr(secret, "arn", None)
    return str(arn) if arn else f"arn:{PARTITION}:secretsmanager:{region}:{account}:secret:{secret_id}-??????"


def resources(service: str, operation: str, params: dict[str, Any], account: str, region: str, hint: str, path: str = "") -> list[tuple[str, dict[str, str]]]:
    """(ARN, resource tags) for each resource the request acts on."""
    ec2 = lambda rid: (_ec2_arn(region, account, rid), _ec2_tags(account, region, rid))  # noqa: E731
    if service == "ec2":
        if operation in ("CreateNetworkAclEntry", "DeleteNetworkAclEntry", "ReplaceNetworkAclEntry"):
            return [ec2(str(params.get("NetworkAclId", "")))]
        if operation in ("CreateTags", "DeleteTags"):
            return [ec2(r) for r in _numbered(params, "ResourceId")]
        if operation == "CreateSnapshot":
            return [ec2(str(params.get("VolumeId", ""))), (f"arn:{PARTITION}:ec2:{region}::snapshot/*", {})]
        if operation == "ModifyInstanceAttribute":
            return [ec2(str(params.get("InstanceId", "")))] + [ec2(g) for g in _numbered(params, "GroupId")]
        if operation == "ModifyNetworkInterfaceAttribute":
            return [ec2(str(params.get("NetworkInterfaceId", "")))] + [ec2(g) for g in _numbered(params, "SecurityGroupId")]
        if operation == "CreateSecurityGroup":
            return [ec2(str(params.get("VpcId", ""))), (f"arn:{PARTITION}:ec2:{region}:{account}:security-group/*", {})]
        if operation in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "DeleteSecurityGroup"):
            return [ec2(str(params.get("GroupId", "")))]
        if operation in ("TerminateInstances", "StopInstances", "StartInstances"):
            return [ec2(i) for i in _numbered(params, "InstanceId")]
        return [("*", {})]
    if service == "iam":
        for param, kind in (("RoleName", "role"), ("UserName", "user"), ("InstanceProfileName", "instance-profile")):
            if param in params:
                return [(_iam_arn(account, kind, str(params[param])), {})]
        return [("*", {})]
    if service == "dynamodb" and "TableName" in params:
        return [(f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{params['TableName']}", {})]
    if service == "sts" and operation == "AssumeRole" and "RoleArn" in params:
        return [(str(params["RoleArn"]), {})]
    if service == "securityhub":
        return [(f"arn:{PARTITION}:securityhub:{region}:{account}:hub/default", {})]
    if service == "ssm" and "Name" in params:
        name = str(params["Name"])
        return [(f"arn:{PARTITION}:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}", {})]
    if service == "logs" and "logGroupName" in params:
        group = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{params['logGroupName']}"
        return [(f"{group}:log-stream:{params['logStreamName']}" if "logStreamName" in params else f"{group}:*", {})]
    if service == "states":
        for param in ("stateMachineArn", "executionArn"):
            if param in params:
                return [(str(params[param]), {})]
    if service == "secretsmanager" and "SecretId" in params:
        return [(_secret_arn(account, region, str(params["SecretId"])), {})]
    if service == "sns" and "TopicArn" in params:
        return [(str(params["TopicArn"]), {})]
    if service == "autoscaling" and "AutoScalingGroupName" in params:
        name = str(params["AutoScalingGroupName"])
        return [(_asg_arn(account, region, name), {})]
    if service == "elasticloadbalancing" and operation in ("RegisterTargets", "DeregisterTargets") and "TargetGroupArn" in params:
        return [(str(params["TargetGroupArn"]), {})]
    if service == "elasticloadbalancing" and operation in ("RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer") and "LoadBalancerName" in params:
        return [(f"arn:{PARTITION}:elasticloadbalancing:{region}:{account}:loadbalancer/{params['LoadBalancerName']}", {})]
    if service == "lambda" and "/tags/" in path:
        # TagResource, UntagResource, ListTags: the function's ARN is the path.
        return [(unquote(path.split("/tags/", 1)[1].split("?", 1)[0]), {})]
    if service == "lambda" and "/functions/" in path:
        name = unquote(path.split("/functions/", 1)[1].split("/", 1)[0].split("?", 1)[0])
        return [(name if name.startswith("arn:") else f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}", {})]
    return [(hint or "*", {})]


# ---- the refusal ---------------------------------------------------------------------------------

class _Ec2Unauthorized(_RESTError):
    """EC2's own error document: `<Response><Errors><Error>`."""

    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("UnauthorizedOperation", message)
        self.description = (
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>firebreak-iam</RequestID></Response>"
        )


class _JsonAccessDenied(JsonRESTError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__("AccessDeniedException", message)
        self.code = status


class _QueryAccessDenied(_RESTError):
    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


def _refuse(service: str, principal: str, action: str, resource: str, why: str) -> None:
    message = f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
    with _LOCK:
        REFUSALS.append({"principal": principal, "action": action, "resource": resource, "why": why})
    if service == "ec2":
        raise _Ec2Unauthorized(f"You are not authorized to perform this operation. {message}")
    if service == "s3":
        # S3's own error document (`<Error><Code>AccessDenied`), which says no more.
        raise BucketAccessDeniedError(bucket=_bucket_of(resource))
    if service in _JSON_SERVICES:
        # REST services answer 403; the JSON 1.1 ones (SSM, Logs, Step Functions) 400.
        raise _JsonAccessDenied(message, 403 if service in ("securityhub", "lambda", "account") else 400)
    raise _QueryAccessDenied(message)


def _boundary(access_key: Any) -> Any:
    """The permissions boundary document of the key's role or user, if it has one."""
    backend = access_key.backend
    try:
        if hasattr(access_key, "_owner_role_name"):
            owner = backend.get_role(access_key._owner_role_name)
        else:
            owner = backend.get_user(access_key._owner_user_name)
        arn = getattr(owner, "permissions_boundary_arn", None)
        if not arn:
            return None
        policy = backend.get_policy(arn)
    except Exception:  # noqa: BLE001 - no such principal or policy: no boundary to read
        return None
    return next(v.document for v in policy.versions if v.is_default)


# Where IAM's action name is not the API operation's. BatchUpdateFindingsV2 is authorised
# as securityhub:BatchUpdateFindings (AWS: "BatchUpdateFindings and BatchUpdateFindingsV2
# both use securityhub:BatchUpdateFindings in the Action element").
IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "securityhub:BatchUpdateFindingsV2": "securityhub:BatchUpdateFindings",
}


def _bucket_of(resource: str) -> str:
    """The bucket of an S3 ARN (`arn:aws:s3:::bucket` or `…:::bucket/key`)."""
    return resource.split(":::", 1)[-1].split("/", 1)[0]


def s3_action(method: str, path: str, moto_action: str) -> str:
    """The IAM action of an S3 request. moto names Block Public Access by its API name
    (`PutPublicAccessBlock`, and misses `?publicAccessBlock` altogether, reading a PUT as
    CreateBucket) and object tagging without the version; IAM has
    `s3:PutBucketPublicAccessBlock` and `s3:PutObjectVersionTagging`."""
    url = urlparse(path)
    query = parse_qs(url.query, keep_blank_values=True)
    parts = url.path.lstrip("/").split("/", 1)
    has_key = len(parts) > 1 and parts[1] != ""
    if "publicAccessBlock" in query and not has_key:
        return "s3:GetBucketPublicAccessBlock" if method == "GET" else "s3:PutBucketPublicAccessBlock"
    if "tagging" in query:
        if not has_key:
            return "s3:GetBucketTagging" if method == "GET" else "s3:PutBucketTagging"
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, "Put")
        return f"s3:{verb}Object{'Version' if 'versionId' in query else ''}Tagging"
    return moto_action


def _s3_owner_refusal(self: IAMRequestBase, resource: str) -> str | None:
    """Why S3 refuses the request for its bucket's owner, if it does: the expected owner
    named (`x-amz-expected-bucket-owner`) is not the owner, or the caller is of another
    account (this account evaluates no bucket policy, so it grants nothing across
    accounts). moto serves any account's bucket to any caller and ignores the header."""
    bucket = _bucket_of(resource)
    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None
    expected = self._headers.get("x-amz-expected-bucket-owner")
    if expected and expected != owner[1]:
        return f"because the bucket's owner is not the expected owner {expected}"
    if owner[1] != self.account_id:
        return "because the bucket is another account's and no bucket policy grants the caller (the local account grants nothing across accounts)"
    return None


def check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    action = IAM_ACTIONS.get(self._action, self._action)
    if action.startswith("s3:"):
        action = s3_action(self._method, self._path, action)
        from . import faults

        faults.log_s3(getattr(self._access_key, "_access_key_id", ""), action.split(":", 1)[1], self.account_id, self._region)
    if action == "sts:GetCallerIdentity":  # AWS answers it whatever the policies say
        return
    service, operation = action.split(":", 1)
    key = self._access_key
    principal = key.arn
    identity = []
    for p in key.collect_policies():
        if isinstance(p, str):
            identity.append(p)
        elif isinstance(p, dict):
            identity.append(p["policy_document"])
        else:
            identity.append(next(v.document for v in p.versions if v.is_default))
    boundary = _boundary(key)
    params = _params(self._data, self._body)
    request_tags = _request_tags(params) if service == "ec2" else {}
    for arn, tags in resources(service, operation, params, self.account_id, self._region, resource, self._path):
        context: dict[str, list[str]] = {
            "aws:PrincipalArn": [principal if ":assumed-role/" not in principal else f"arn:{PARTITION}:iam::{self.account_id}:role/{key._owner_role_name}"],
            "aws:PrincipalAccount": [self.account_id],
        }
        if request_tags:
            context["aws:TagKeys"] = list(request_tags)
        for k, v in request_tags.items():
            context[f"aws:RequestTag/{k}"] = [v]
        for k, v in tags.items():
            context[f"aws:ResourceTag/{k}"] = [v]
            context[f"ec2:ResourceTag/{k}"] = [v]
        decision = evaluate(identity, action, arn, context)
        if decision == DENY:
            _refuse(service, principal, action, arn, "with an explicit deny in an identity-based policy")
        if decision != ALLOW:
            _refuse(service, principal, action, arn, "because no identity-based policy allows the action")
        if boundary is not None and evaluate([boundary], action, arn, context) != ALLOW:
            _refuse(service, principal, action, arn, "because no permissions boundary allows the action")
        if service == "s3":
            why = _s3_owner_refusal(self, arn)
            if why:
                _refuse(service, principal, action, arn, why)
        if action == "sts:AssumeRole":
            org = organization_of(self.account_id)
            if org:
                context["aws:PrincipalOrgID"] = [org]
            if not trust_allows(arn, context):
                _refuse(service, principal, action, arn, "because the role's trust policy does not allow it")


def check_signature(self: IAMRequestBase) -> None:
    """The key and its session token are checked (an unknown key or a wrong token is
    refused); the signature is not recomputed: moto rebuilds the signed request from its
    parsed form, which differs from the Rust SDK's encoding of some query bodies (a tag key
    with `:`), so it would refuse requests AWS accepts. What this account proves is
    authorisation."""


def install() -> None:
    if getattr(IAMRequestBase.check_action_permitted, "_firebreak", False):
        return
    IAMRequestBase.check_signature = check_signature  # type: ignore[method-assign]
    check_action_permitted._firebreak = True  # type: ignore[attr-defined]
    IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]
