"""PutEvents refuses `aws.*` sources from callers, as EventBridge does
(`NotAuthorizedForSourceException`): only AWS services put those events. The local
account's stand-in for GuardDuty and Security Hub is the control API
(`POST /firebreak-api/aws-events`), which puts them as the service would."""

from __future__ import annotations

import threading
from typing import Any

from moto.events.models import EventsBackend, events_backends

from . import guardduty_import

_AS_SERVICE = threading.local()


def put_as_service(account: str, region: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What GuardDuty or Security Hub does: put events with their own `aws.*` source (and,
    for a GuardDuty finding, send it on to Security Hub, which imports it later)."""
    _AS_SERVICE.active = True
    try:
        out = events_backends[account][region].put_events(entries)
    finally:
        _AS_SERVICE.active = False
    for entry in entries:
        guardduty_import.after_event(entry, account, region)
    return out


def install() -> None:
    original = EventsBackend.put_events
    if getattr(original, "_firebreak", False):
        return

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if getattr(_AS_SERVICE, "active", False) or len(events) > 10:
            return original(self, events)
        out: list[dict[str, Any]] = []
        for event in events:
            source = event.get("Source") or ""
            if source.startswith("aws."):
                out.append({
                    "ErrorCode": "NotAuthorizedForSourceException",
                    "ErrorMessage": f"Not authorized for the source {source}.",
                })
            else:
                out.extend(original(self, [event]))
        return out

    put_events._firebreak = True  # type: ignore[attr-defined]
    EventsBackend.put_events = put_events  # type: ignore[method-assign]
