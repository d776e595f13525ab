import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeLambdaHost(BaseHTTPRequestHandler):
    """Answers like `cargo lambda watch`: 200 with the result, or 500 with errorType."""

    calls: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802
        name = self.path.split("/")[3]
        payload = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
        FakeLambdaHost.calls.append((name, payload))
        if name == "fails":
            status, body = 500, {"errorType": "InstanceNotFound", "errorMessage": "no such instance i-12345678"}
        else:
            status, body = 200, {"echo": payload, "function": name}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="session")
def lambda_host():
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeLambdaHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def moto_url(lambda_host):
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)
    os.environ["FIREBREAK_LAMBDA_HOST"] = lambda_host
    import firebreak_localaws
    from moto.server import ThreadedMotoServer

    firebreak_localaws.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    requests.post(f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    yield url
    server.stop()


@pytest.fixture
def aws(moto_url):
    requests.post(f"{moto_url}/firebreak-api/iam", json={"enforce": False}, timeout=10)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    requests.delete(f"{moto_url}/firebreak-api/faults", timeout=10)
    requests.post(f"{moto_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)

    def client(service, key="AKIAFIREBREAKTEST001", retries=1):
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key="local",
            config=Config(retries={"total_max_attempts": retries, "mode": "standard"}),
        )

    return client


@pytest.fixture
def as_service(moto_url):
    """Puts events as an AWS service would (the control API): callers may not use aws.*."""

    def put(entries):
        out = requests.post(f"{moto_url}/firebreak-api/aws-events", json={"account": "123456789012", "region": REGION, "entries": entries}, timeout=10)
        out.raise_for_status()
        return out.json()["Entries"]

    return put
