"""EC2 checks AWS makes and moto does not: the network ACL rule quota (20 rules per
direction and per IP family, the default deny rule included), the rule-number range, CIDR
syntax, and that the security groups given to an interface or instance exist and belong
to its VPC."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidSecurityGroupNotFoundError
from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.network_acls import NetworkACLs

RULES_PER_DIRECTION = 20
MIN_RULE, MAX_RULE = 1, 32766


_ACL_LOCK = threading.RLock()


class NetworkAclEntryLimitExceeded(EC2ClientError):
    def __init__(self) -> None:
        super().__init__(
            "NetworkAclEntryLimitExceeded",
            f"The maximum number of network ACL entries ({RULES_PER_DIRECTION}) has been reached.",
        )


class InvalidParameter(EC2ClientError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def _check_entry(acl: Any, rule_number: Any, egress: Any, cidr: str | None, ipv6: str | None, replacing: bool) -> None:
    number = int(rule_number)
    if not MIN_RULE <= number <= MAX_RULE:
        raise InvalidParameter("InvalidParameterValue", f"Rule number {number} is out of range {MIN_RULE} to {MAX_RULE}")
    if bool(cidr) == bool(ipv6):
        raise InvalidParameter("InvalidParameterCombination", "Exactly one of CidrBlock and Ipv6CidrBlock is required")
    try:
        if "/" not in (cidr or ipv6 or ""):
            raise ValueError("no prefix length")
        net = ipaddress.ip_network(cidr or ipv6 or "", strict=True)
    except ValueError:
        raise InvalidParameter("InvalidParameterValue", f"Value ({cidr or ipv6}) for parameter cidrBlock is invalid")
    if (net.version == 4) != bool(cidr):
        raise InvalidParameter("InvalidParameterValue", f"{net} is not an IPv{4 if cidr else 6} CIDR block")
    is_egress = str(egress).lower() == "true"
    taken = any(int(e.rule_number) == number and (str(e.egress).lower() == "true") == is_egress for e in acl.network_acl_entries)
    if replacing:
        return
    # AWS refuses a taken number (moto 5.2.5 adds a second entry at it).
    if taken:
        raise InvalidParameter(
            "NetworkAclEntryAlreadyExists",
            f"The network acl entry identified by {number} already exists.",
        )
    # The default deny rule (32767 for IPv4, 32768 for IPv6) counts against the quota
    # whether or not moto lists it.
    ours = [
        e
        for e in acl.network_acl_entries
        if (str(e.egress).lower() == "true") == is_egress
        and bool(e.ipv6_cidr_block) == bool(ipv6)
        and int(e.rule_number) < 32767
    ]
    if len(ours) + 1 >= RULES_PER_DIRECTION:
        raise NetworkAclEntryLimitExceeded()


def _check_groups(backend: Any, vpc_id: str | None, group_ids: list[str]) -> None:
    for gid in group_ids:
        group = backend.get_security_group_from_id(gid)
        if group is None:
            raise InvalidSecurityGroupNotFoundError(gid)
        if vpc_id and group.vpc_id != vpc_id:
            raise InvalidParameter(
                "InvalidParameterValue", f"Security group {gid} and interface belong to different networks."
            )


def install() -> None:
    # NACL checks sit at the API layer: moto itself creates the default deny rules (32767)
    # through the backend, and those must not be refused.
    create, replace = NetworkACLs.create_network_acl_entry, NetworkACLs.replace_network_acl_entry
    delete = NetworkACLs.delete_network_acl_entry
    modify_eni = NetworkInterfaceBackend.modify_network_interface_attribute
    modify_groups = InstanceBackend.modify_instance_security_groups
    if getattr(create, "_firebreak", False):
        return

    def checked(original: Any, replacing: bool) -> Any:
        """The checks and the write as one step: AWS does not let two writers both take a
        number (the threaded local server would, between check and write)."""
        def handler(self: NetworkACLs) -> Any:
            with _ACL_LOCK:
                acl = self.ec2_backend.get_network_acl(self._get_param("NetworkAclId"))
                _check_entry(
                    acl,
                    self._get_param("RuleNumber"),
                    self._get_param("Egress"),
                    self._get_param("CidrBlock"),
                    self._get_param("Ipv6CidrBlock"),
                    replacing=replacing,
                )
                # moto 5.2.5 ignores DryRun on NACL entries and changes the ACL; AWS
                # answers DryRunOperation and changes nothing.
                self.error_on_dryrun()
                return original(self)

        handler._firebreak = True  # type: ignore[attr-defined]
        return handler

    def modify_network_interface_attribute(self: Any, eni_id: str, group_ids: list[str], *args: Any, **kwargs: Any) -> Any:
        eni = self.get_network_interface(eni_id)
        _check_groups(self, getattr(eni.subnet, "vpc_id", None), group_ids or [])
        result = modify_eni(self, eni_id, group_ids, *args, **kwargs)
        # The instance's groups are its primary interface's.
        if group_ids and eni.instance is not None and str(getattr(eni, "device_index", "")) == "0":
            eni.instance.security_groups = list(eni._group_set)
        return result

    def modify_instance_security_groups(self: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
        instance = self.get_instance(instance_id)
        _check_groups(self, getattr(instance, "vpc_id", None), new_group_id_list or [])
        return modify_groups(self, instance_id, new_group_id_list)

    NetworkInterface.group_set = property(lambda self: self._group_set)  # type: ignore[assignment]
    def delete_network_acl_entry(self: NetworkACLs) -> Any:
        self.error_on_dryrun()
        with _ACL_LOCK:
            acl = self.ec2_backend.get_network_acl(self._get_param("NetworkAclId"))
            number, egress = int(self._get_param("RuleNumber")), str(self._get_param("Egress")).lower() == "true"
            if not any(int(e.rule_number) == number and (str(e.egress).lower() == "true") == egress for e in acl.network_acl_entries):
                # AWS answers this; moto 5.2.5 fails with StopIteration (a 500).
                raise InvalidParameter(
                    "InvalidNetworkAclEntry.NotFound",
                    f"The network acl entry identified by {number} does not exist.",
                )
            return delete(self)

    NetworkACLs.create_network_acl_entry = checked(create, replacing=False)  # type: ignore[method-assign]
    NetworkACLs.delete_network_acl_entry = delete_network_acl_entry  # type: ignore[method-assign]
    NetworkACLs.replace_network_acl_entry = checked(replace, replacing=True)  # type: ignore[method-assign]
    NetworkInterfaceBackend.modify_network_interface_attribute = modify_network_interface_attribute  # type: ignore[method-assign]
    InstanceBackend.modify_instance_security_groups = modify_instance_security_groups  # type: ignore[method-assign]
