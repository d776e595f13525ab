"""The local organisation: AWS Organizations with the accounts a test names (moto gives
created accounts random ids), their OUs and tags, each account's security alternate
contact (Account API), and Organizations' read calls answered for the delegated
administrator as AWS answers them — from the organisation, which in moto lives in the
management account's backend. Any other member is refused (AccessDeniedException), as
AWS refuses it.

`POST /firebreak-api/organization {"id", "managementAccount", "delegatedAdministrator",
"accounts": [{"id", "name", "email", "ou": [...], "tags": {...}, "securityContact": {...}}]}`
"""

from __future__ import annotations

from typing import Any

from moto.account.models import account_backends
from moto.core.exceptions import JsonRESTError
from moto.organizations.models import organizations_backends
from moto.organizations.responses import OrganizationsResponse

from . import iam_enforcement

PARTITION = "aws"
DELEGATED: dict[str, str] = {}  # delegated administrator -> management account


def build(spec: dict[str, Any]) -> dict[str, Any]:
    management = str(spec["managementAccount"])
    DELEGATED.clear()
    backend = organizations_backends[management][PARTITION]
    backend.create_organization(region="us-east-1", FeatureSet="ALL")
    backend.org.id = str(spec["id"])
    root = backend.ou[0].id
    ous: dict[tuple[str, ...], str] = {(): root}

    def ou_of(path: list[str]) -> str:
        for depth in range(1, len(path) + 1):
            key = tuple(path[:depth])
            if key not in ous:
                ous[key] = backend.create_organizational_unit(ParentId=ous[key[:-1]], Name=key[-1])["OrganizationalUnit"]["Id"]
        return ous[tuple(path)]

    ids = [management]
    for a in spec["accounts"]:
        account_id = str(a["id"])
        backend.create_account(AccountName=a["name"], Email=a["email"])
        fake = backend.accounts[-1]
        organizations_backends.master_accounts.pop(fake.id, None)
        fake.id = account_id
        organizations_backends.master_accounts[account_id] = (management, PARTITION)
        if a.get("ou"):
            backend.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ou_of(list(a["ou"])))
        if a.get("tags"):
            backend.tag_resource(ResourceId=account_id, Tags=[{"Key": k, "Value": v} for k, v in a["tags"].items()])
        contact = a.get("securityContact")
        if contact:
            account_backends[account_id][PARTITION].put_alternate_contact(
                alternate_contact_type="SECURITY",
                email_address=contact.get("email", ""),
                name=contact.get("name", ""),
                phone_number=contact.get("phone", ""),
                title=contact.get("title", ""),
            )
        ids.append(account_id)
    if spec.get("delegatedAdministrator"):
        DELEGATED[str(spec["delegatedAdministrator"])] = management
    iam_enforcement.set_organization(backend.org.id, ids)
    return {"id": backend.org.id, "accounts": ids, "ous": {"/".join(k): v for k, v in ous.items() if k}}


def reset() -> None:
    DELEGATED.clear()


def install() -> None:
    original = OrganizationsResponse.organizations_backend
    if getattr(original.fget, "_firebreak", False):
        return

    def organizations_backend(self: OrganizationsResponse) -> Any:
        management = DELEGATED.get(self.current_account)
        if management is not None:
            return organizations_backends[management][self.partition]
        owner = organizations_backends.master_accounts.get(self.current_account)
        if owner is not None and owner[0] != self.current_account:
            # A member that is neither the management account nor a delegated administrator.
            raise JsonRESTError("AccessDeniedException", "You don't have permissions to access this resource.")
        return original.fget(self)

    organizations_backend._firebreak = True  # type: ignore[attr-defined]
    OrganizationsResponse.organizations_backend = property(organizations_backend)  # type: ignore[method-assign,assignment]
