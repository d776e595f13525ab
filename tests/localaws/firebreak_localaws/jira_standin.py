"""A stand-in for Jira Cloud's REST API (v3), as strict as Jira on what Firebreak sends.

Three calls: create issue (`POST /rest/api/3/issue`), search (`POST /rest/api/3/search/jql`)
and add comment (`POST /rest/api/3/issue/{key}/comment`). Each checks Jira's contract and
answers a refusal in Jira's own shape (`{"errorMessages": [...], "errors": {field: why}}`):
Basic authentication with the account's email and API token (401 otherwise), a JSON body
(415), a known project and issue type, a one-line summary of at most 255 characters, an
Atlassian Document Format description (a plain string is refused, as v3 refuses it),
labels without spaces, and no field Jira does not know. Every request is kept, refused or
not, for the tests to read.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FIELDS = {"project", "issuetype", "summary", "description", "labels"}
_BLOCKS = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule", "blockquote"}


def adf_problem(doc: Any) -> str | None:
    """Why `doc` is not an ADF document Jira accepts, or None."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    content = doc.get("content")
    if not isinstance(content, list):
        return "content must be an array"
    for block in content:
        if not isinstance(block, dict) or block.get("type") not in _BLOCKS:
            return f"unknown block node {block!r:.60}"
        for inline in block.get("content", []):
            if not isinstance(inline, dict) or inline.get("type") not in ("text", "hardBreak"):
                return f"unknown inline node {inline!r:.60}"
            if inline["type"] == "text" and (not isinstance(inline.get("text"), str) or inline["text"] == ""):
                return "a text node must have a non-empty text"
    return None


class JiraStandIn:
    """`with JiraStandIn(email, token) as jira:` serves on 127.0.0.1 (`jira.url`)."""

    def __init__(self, email: str = "firebreak@example.com", token: str = "local-token", projects: dict[str, list[str]] | None = None):
        self.email, self.token = email, token
        self.projects = projects or {"SEC": ["Task", "Bug"]}
        self.requests: list[dict[str, Any]] = []
        self.issues: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "JiraStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def secret(self) -> str:
        """The secret `firebreak/jira` for this stand-in."""
        return json.dumps({"baseUrl": self.url, "email": self.email, "apiToken": self.token})

    def accepted(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and 200 <= r["status"] < 300]

    # -- the contract ---------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}
        if method != "POST":
            return 405, {"errorMessages": [f"{method} is not supported here"], "errors": {}}
        if not headers.get("content-type", "").startswith("application/json"):
            return 415, {"errorMessages": ["Unsupported Media Type"], "errors": {}}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"errorMessages": ["Unexpected character: the body is not JSON"], "errors": {}}
        if path == "/rest/api/3/issue":
            return self.create(body)
        if path == "/rest/api/3/search/jql":
            return self.search(body)
        m = re.fullmatch(r"/rest/api/3/issue/([A-Z][A-Z0-9_]+-\d+)/comment", path)
        if m:
            return self.comment(m.group(1), body)
        return 404, {"errorMessages": ["No such resource"], "errors": {}}

    def create(self, body: Any) -> tuple[int, Any]:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return 400, {"errorMessages": ["Issue must have fields"], "errors": {}}
        errors: dict[str, str] = {}
        for unknown in sorted(set(fields) - _FIELDS):
            errors[unknown] = f"Field '{unknown}' cannot be set. It is not on the appropriate screen, or unknown."
        project = fields.get("project")
        key = project.get("key") if isinstance(project, dict) else None
        if key not in self.projects:
            errors["project"] = "valid project is required"
        issuetype = fields.get("issuetype")
        if not isinstance(issuetype, dict) or issuetype.get("name") not in self.projects.get(key or "", []):
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        if "description" in fields:
            problem = adf_problem(fields["description"])
            if problem:
                errors["description"] = problem
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) and label and " " not in label and len(label) <= 255 for label in labels):
            errors["labels"] = "A label must be a string of at most 255 characters without spaces."
        if errors:
            return 400, {"errorMessages": [], "errors": errors}
        with self._lock:
            number = len(self.issues) + 1
            issue_key = f"{key}-{number}"
            self.issues[issue_key] = {"fields": fields, "comments": []}
        return 201, {"id": str(10000 + number), "key": issue_key, "self": f"{self.url}/rest/api/3/issue/{10000 + number}"}

    def search(self, body: Any) -> tuple[int, Any]:
        jql = body.get("jql") if isinstance(body, dict) else None
        if not isinstance(jql, str):
            return 400, {"errorMessages": ["jql is required"], "errors": {}}
        m = re.fullmatch(r"project = ([A-Z][A-Z0-9_]+) AND labels = ([\w.-]+) ORDER BY created ASC", jql)
        if not m:
            return 400, {"errorMessages": [f"The stand-in reads only Firebreak's query, not {jql!r}"], "errors": {}}
        with self._lock:
            found = [k for k, v in self.issues.items() if k.startswith(m.group(1) + "-") and m.group(2) in v["fields"].get("labels", [])]
        limit = body.get("maxResults", 50)
        return 200, {"issues": [{"id": k, "key": k} for k in found[:limit]], "isLast": True}

    def comment(self, key: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            issue = self.issues.get(key)
        if issue is None:
            return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
        problem = adf_problem(body.get("body") if isinstance(body, dict) else None)
        if problem:
            return 400, {"errorMessages": [], "errors": {"comment": problem}}
        with self._lock:
            issue["comments"].append(body["body"])
            number = len(issue["comments"])
        return 201, {"id": str(number), "body": body["body"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = standin.answer(self.command, self.path, headers, raw)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with standin._lock:
                    standin.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body, "status": status, "answer": answer})
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = _serve
            do_GET = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
