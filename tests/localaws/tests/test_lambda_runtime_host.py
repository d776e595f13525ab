"""The local Lambda host is as strict as Lambda: concurrent invocations run side by side in
environments of their own, and an invocation past the function's timeout fails
`Sandbox.Timedout` and its environment is stopped. The runtime here is a small script that
speaks the Lambda runtime API, as the Rust runbooks do."""

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from firebreak_localaws.lambda_runtime_host import LambdaHost
from conftest import free_port

RUNTIME = '''#!{python}
import json, os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(r.read())
    time.sleep(event.get("sleep", 0))
    if event.get("hold"):
        open(event["hold"] + "." + str(os.getpid()), "w").close()
        while not os.path.exists(event["hold"] + ".go"):
            time.sleep(0.01)
    body = json.dumps({{"pid": os.getpid(), "deadlineInMs": deadline - int(time.time() * 1000)}}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
'''


@pytest.fixture
def host(tmp_path):
    script = tmp_path / "bootstrap"
    script.write_text(RUNTIME.format(python=sys.executable))
    script.chmod(0o755)
    h = LambdaHost(free_port())
    h.add("fn", str(script), {}, timeout=2, concurrency=3)
    h.start()
    yield h
    h.stop()


def invoke(host, event):
    status, body = host.invoke("fn", json.dumps(event).encode())
    return status, json.loads(body)


def test_concurrent_invocations_run_side_by_side_each_in_its_own_environment(host, tmp_path):
    hold = str(tmp_path / "hold")
    results = []
    threads = [threading.Thread(target=lambda: results.append(invoke(host, {"hold": hold}))) for _ in range(3)]
    for t in threads:
        t.start()
    # All three are inside the handler at once before any may finish: never one at a time.
    deadline = time.time() + 10
    while time.time() < deadline and len(list(tmp_path.glob("hold.*"))) < 3:
        time.sleep(0.02)
    inside = len(list(tmp_path.glob("hold.*")))
    (tmp_path / "hold.go").touch()
    for t in threads:
        t.join(10)
    assert inside == 3, "three invocations were in the handler together"
    assert [s for s, _ in results] == [200, 200, 200]
    assert len({b["pid"] for _, b in results}) == 3, "three environments"
    assert len(host.functions["fn"].environments) == 3


def test_the_runtime_gets_the_function_timeout_as_its_deadline(host):
    status, body = invoke(host, {})
    assert status == 200
    assert 0 < body["deadlineInMs"] <= 2000


def test_an_invocation_past_the_timeout_fails_and_its_environment_is_stopped(host):
    # A warm environment first, so that the timeout falls in the handler, not in start-up.
    assert invoke(host, {})[0] == 200
    status, body = invoke(host, {"sleep": 4})
    assert status == 500 and body["errorType"] == "Sandbox.Timedout", body
    envs = host.functions["fn"].environments
    deadline = time.time() + 5
    while not [e for e in envs if e.process.poll() is not None] and time.time() < deadline:
        time.sleep(0.05)
    stopped = [e.process for e in envs if e.process.poll() is not None]
    assert len(stopped) == 1, "the environment that ran over its deadline was stopped, and only that one"
    # The next invocation runs in another environment.
    status, body = invoke(host, {})
    assert status == 200 and body["pid"] != stopped[0].pid
