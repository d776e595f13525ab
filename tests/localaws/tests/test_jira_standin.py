"""The Jira stand-in refuses what Jira Cloud refuses, in Jira's words, and accepts what it
accepts: the e2e ticket tests are only as good as this contract."""

import base64
import json
import urllib.request
from urllib.error import HTTPError

import pytest

from firebreak_localaws.jira_standin import JiraStandIn

GOOD = {
    "fields": {
        "project": {"key": "SEC"},
        "issuetype": {"name": "Task"},
        "summary": "Firebreak contained (HIGH): Backdoor:EC2/C&CActivity.B on i-1",
        "description": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "What was found"}]}]},
        "labels": ["firebreak", "firebreak-0123456789abcdef0123"],
    }
}


def call(jira, path, body, auth=True, content_type="application/json"):
    headers = {"content-type": content_type}
    if auth:
        headers["authorization"] = "Basic " + base64.b64encode(f"{jira.email}:{jira.token}".encode()).decode()
    req = urllib.request.Request(jira.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def jira():
    with JiraStandIn() as j:
        yield j


def test_a_well_formed_issue_is_created_and_found_by_its_label_and_commented_on(jira):
    status, out = call(jira, "/rest/api/3/issue", GOOD)
    assert status == 201 and out["key"] == "SEC-1" and out["self"].endswith("/rest/api/3/issue/10001")
    status, found = call(jira, "/rest/api/3/search/jql", {"jql": "project = SEC AND labels = firebreak-0123456789abcdef0123 ORDER BY created ASC", "maxResults": 1, "fields": ["key"]})
    assert status == 200 and found["issues"] == [{"id": "SEC-1", "key": "SEC-1"}]
    status, _ = call(jira, "/rest/api/3/issue/SEC-1/comment", {"body": GOOD["fields"]["description"]})
    assert status == 201 and len(jira.issues["SEC-1"]["comments"]) == 1
    assert call(jira, "/rest/api/3/issue/SEC-9/comment", {"body": GOOD["fields"]["description"]})[0] == 404


@pytest.mark.parametrize("change, field", [
    (lambda f: f.update(project={"key": "NOPE"}), "project"),
    (lambda f: f.update(issuetype={"name": "Epic"}), "issuetype"),
    (lambda f: f.pop("summary"), "summary"),
    (lambda f: f.update(summary="two\nlines"), "summary"),
    (lambda f: f.update(summary="x" * 256), "summary"),
    (lambda f: f.update(description="plain text, as API v2 took it"), "description"),
    (lambda f: f.update(description={"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}), "description"),
    (lambda f: f.update(labels=["has space"]), "labels"),
    (lambda f: f.update(priority={"name": "High"}), "priority"),
])
def test_what_jira_refuses_is_refused_naming_the_field(jira, change, field):
    body = json.loads(json.dumps(GOOD))
    change(body["fields"])
    status, out = call(jira, "/rest/api/3/issue", body)
    assert status == 400 and field in out["errors"], out
    assert jira.issues == {}


def test_no_credentials_or_no_json_is_refused(jira):
    assert call(jira, "/rest/api/3/issue", GOOD, auth=False)[0] == 401
    assert call(jira, "/rest/api/3/issue", GOOD, content_type="text/plain")[0] == 415
    assert [r["status"] for r in jira.requests] == [401, 415]
