"""The whole local account in one object: moto with the extension, the Lambda host with
the Rust runbooks, the suite deployed from the repository, the demo environment."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from . import install, provision
from .lambda_runtime_host import LambdaHost


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAccount:
    def __init__(self, root: Path, bin_dir: Path, quiet: bool = True, import_delay: float = 1.0, finding_wait: float = 20.0):
        """`import_delay`: seconds from a GuardDuty event to its finding in Security Hub (in
        AWS it can be minutes; a negative value never imports). `finding_wait`: how long
        mark-resolved waits for a finding to arrive (FIREBREAK_FINDING_WAIT_SECONDS)."""
        self.root, self.bin_dir, self.quiet = root, bin_dir, quiet
        self.import_delay, self.finding_wait = import_delay, finding_wait
        self.moto_port, self.lambda_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.moto_port}"
        self.server: Any = None
        self.host: LambdaHost | None = None
        self.deployed: dict[str, Any] = {}
        self.demo: dict[str, Any] = {}
        self.members: dict[str, dict[str, Any]] = {}

    def client(self, service: str, key: str | None = None, retries: int = 3, credentials: dict[str, str] | None = None,
               account: str = provision.ACCOUNT, region: str = provision.REGION) -> Any:
        """A client signed with the operator's key (an administrator's of `account`, when
        that is another account of the organisation), or with `credentials` (as
        `service_credentials` returns them: a function's role, for example)."""
        keys = {"aws_access_key_id": key or provision.admin_key(account), "aws_secret_access_key": provision.OPERATOR_SECRET}
        if credentials:
            keys = {
                "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
                "aws_session_token": credentials.get("AWS_SESSION_TOKEN"),
            }
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            config=Config(retries={"total_max_attempts": retries, "mode": "standard"}),
            **keys,
        )

    def _bootstrap_client(self, service: str, account: str, region: str = provision.REGION) -> Any:
        """While IAM is not enforced yet (start-up only), moto files every request under
        its default account unless told otherwise: its account header says which."""
        c = self.client(service, key=provision.OPERATOR_KEY, region=region)
        c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        return c

    def start(self) -> "LocalAccount":
        missing = [n for n in provision.discover(self.root)["runbooks"] if not (self.bin_dir / n).exists()]
        if missing:
            raise FileNotFoundError(f"runbook binaries not built in {self.bin_dir}: {', '.join(missing)} (cargo build --workspace)")
        os.environ["MOTO_PORT"] = str(self.moto_port)
        os.environ["FIREBREAK_LAMBDA_HOST"] = f"http://127.0.0.1:{self.lambda_port}"
        install()
        from moto.server import ThreadedMotoServer

        # One line per HTTP request would bury what the demo and the tests say.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.server.start()
        # moto keeps its state per process: every local account starts empty.
        self.set_iam_enforcement(False)
        requests.post(f"{self.url}/moto-api/reset", timeout=10)
        requests.delete(f"{self.url}/firebreak-api/faults", timeout=10)
        requests.post(f"{self.url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
        self.set_import_delay(self.import_delay)
        self.register_access_key(provision.create_operator(self.client), provision.OPERATOR_KEY, provision.OPERATOR_SECRET)
        self.deployed = provision.deploy(self.client, self.root)
        # The organisation: an administrator in each member account, the member stack's
        # roles there, and which accounts are of the organisation (aws:PrincipalOrgID).
        self.deployed["memberRoles"] = {}
        for account in provision.MEMBERS + [provision.NOT_ENROLLED]:
            user = provision.create_operator(lambda service, a=account: self._bootstrap_client(service, a))
            self.register_access_key(user, provision.admin_key(account), provision.OPERATOR_SECRET, account=account)
        for account in provision.MEMBERS:
            self.deployed["memberRoles"][account] = provision.deploy_member(lambda service, a=account: self._bootstrap_client(service, a), self.root, account)
        requests.post(f"{self.url}/firebreak-api/organization", json=provision.organization_spec(), timeout=10).raise_for_status()
        self.demo = provision.seed_demo(self.client)
        # The same demo environment in each member account (same names: a finding there
        # must never touch Firebreak's own account's web-instance-role).
        self.members = {
            a: provision.seed_demo(lambda service, a=a, r=r: self._bootstrap_client(service, a, r), r)
            for a, r in provision.MEMBER_DEMO_REGIONS.items()
        }
        # From here on every request is authorised as AWS would: the operator is an
        # administrator, each function runs as its own role, the engine as the machines'.
        self.set_iam_enforcement(True)
        self.deployed["credentials"] = {name: self.service_credentials(role, "lambda.amazonaws.com") for name, role in self.deployed["roles"].items()}
        self.host = LambdaHost(self.lambda_port)
        for name in self.deployed["functions"]:
            env = {
                **self.deployed["environment"][name],
                "FIREBREAK_FINDING_WAIT_SECONDS": str(self.finding_wait),
                **self.deployed["credentials"][name],
                "AWS_ENDPOINT_URL": self.url,
                "AWS_REGION": provision.REGION,
                "AWS_DEFAULT_REGION": provision.REGION,
            }
            if self.quiet:
                env["FIREBREAK_QUIET"] = "1"
            settings = provision.function_settings(name)
            self.host.add(
                name,
                str(self.bin_dir / name),
                env,
                timeout=settings["timeoutSeconds"],
                memory=settings["memoryMiB"],
                concurrency=provision.LAMBDA["localConcurrency"],
            )
        self.host.start()
        requests.delete(f"{self.url}/firebreak-api/faults", timeout=10)
        return self

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
        if self.server is not None:
            self.server.stop()

    # ---- helpers for tests and the demo ---------------------------------------------------

    def wait_for_execution(self, machine: str, after: int = 0, timeout: float = 60) -> dict[str, Any]:
        """Waits for the (after+1)-th execution of a machine to finish; returns it."""
        sfn = self.client("stepfunctions")
        arn = self.deployed["stateMachines"][machine]
        deadline = time.time() + timeout
        while time.time() < deadline:
            runs = sorted(sfn.list_executions(stateMachineArn=arn)["executions"], key=lambda e: e["startDate"])
            if len(runs) > after:
                out = sfn.describe_execution(executionArn=runs[after]["executionArn"])
                if out["status"] != "RUNNING":
                    return out
            time.sleep(0.2)
        raise TimeoutError(f"no finished execution #{after + 1} of {machine} within {timeout}s")

    def put_event(self, event: dict[str, Any]) -> None:
        """Puts an event on the default bus as GuardDuty or Security Hub would. A caller's
        PutEvents with an aws.* source is refused, as in AWS; the service's own delivery
        goes through the control API."""
        self.put_events([event], threads=1)

    def put_events(self, events: list[dict[str, Any]], threads: int = 10) -> None:
        """Puts many events as their services would: ten to a PutEvents call (its limit),
        the calls side by side."""
        from concurrent.futures import ThreadPoolExecutor

        def put(batch: list[dict[str, Any]]) -> None:
            out = requests.post(f"{self.url}/firebreak-api/aws-events", json={
                "account": provision.ACCOUNT,
                "region": batch[0].get("region", provision.REGION),
                "entries": [{
                    "Source": e["source"],
                    "DetailType": e["detail-type"],
                    "Resources": e.get("resources", []),
                    "Detail": json.dumps(e["detail"]),
                } for e in batch],
            }, timeout=30)
            out.raise_for_status()
            failed = [e for e in out.json()["Entries"] if "ErrorCode" in e]
            if failed:
                raise RuntimeError(f"EventBridge refused events: {failed}")

        batches = [events[i:i + 10] for i in range(0, len(events), 10)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(put, batches))

    def set_chaos(self, rate: float, roles: list[str], kinds: list[str] | None = None, seed: int = 0) -> None:
        """Every request of a session of one of `roles` fails at `rate` (see faults.py)."""
        spec: dict[str, Any] = {"rate": rate, "roles": roles, "seed": seed}
        if kinds is not None:
            spec["kinds"] = kinds
        requests.post(f"{self.url}/firebreak-api/chaos", json=spec, timeout=10).raise_for_status()

    def chaos_hits(self) -> dict[str, int]:
        return requests.get(f"{self.url}/firebreak-api/chaos", timeout=10).json()

    def wait_for_executions(self, machine: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """Every execution of a machine once `count` of them exist and none is running (or
        what there is when `timeout` passes)."""
        deadline = time.time() + timeout
        while True:
            runs = self.executions(machine)
            if (len(runs) >= count and all(r["status"] != "RUNNING" for r in runs)) or time.time() >= deadline:
                return runs
            time.sleep(1)

    def executions(self, machine: str) -> list[dict[str, Any]]:
        """Every execution of a machine (all pages)."""
        sfn = self.client("stepfunctions")
        runs: list[dict[str, Any]] = []
        token = None
        while True:
            page = sfn.list_executions(stateMachineArn=self.deployed["stateMachines"][machine], **({"nextToken": token} if token else {}))
            runs += page["executions"]
            token = page.get("nextToken")
            if not token:
                return runs

    def cli_env(self) -> dict[str, str]:
        """The environment that points the `firebreak` command (or any AWS SDK) at this
        account through the standard configuration chain, and at nothing else."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": provision.REGION,
            "AWS_ACCESS_KEY_ID": provision.OPERATOR_KEY,
            "AWS_SECRET_ACCESS_KEY": provision.OPERATOR_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        })
        return env

    def set_iam_enforcement(self, on: bool) -> None:
        requests.post(f"{self.url}/firebreak-api/iam", json={"enforce": on}, timeout=10).raise_for_status()

    def register_access_key(self, user_name: str, access_key_id: str, secret: str, account: str = provision.ACCOUNT) -> None:
        """Gives an existing IAM user an access key with a chosen id."""
        requests.post(f"{self.url}/firebreak-api/iam/access-key", json={
            "account": account, "userName": user_name, "accessKeyId": access_key_id, "secretAccessKey": secret,
        }, timeout=10).raise_for_status()

    def iam_refusals(self) -> list[dict[str, str]]:
        """Every request IAM refused: {principal, action, resource, why}."""
        return requests.get(f"{self.url}/firebreak-api/iam/refusals", timeout=10).json()

    def service_credentials(self, role_arn: str, service: str) -> dict[str, str]:
        """The role's credentials as the service (lambda.amazonaws.com, ...) gets them."""
        out = requests.post(f"{self.url}/firebreak-api/iam/service-credentials", json={"roleArn": role_arn, "service": service}, timeout=10)
        out.raise_for_status()
        return out.json()

    def set_import_delay(self, seconds: float) -> None:
        """How long after its event a GuardDuty finding reaches Security Hub."""
        requests.post(f"{self.url}/firebreak-api/config", json={"securityHubImportDelaySeconds": seconds}, timeout=10).raise_for_status()

    def fault(self, **spec: Any) -> None:
        requests.post(f"{self.url}/firebreak-api/faults", json=spec, timeout=10).raise_for_status()

    def request_log(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/firebreak-api/requests", timeout=10).json()
