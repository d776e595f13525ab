"""EventBridge matches a pattern through arrays of objects: `{"detail": {"findings":
{"ProductName": ["GuardDuty"]}}}` matches an event whose `detail.findings` is a list of
findings if any of them has that value (each field path through an array stands for every
value along it). moto's matcher stops at arrays, so a Security Hub rule never fired
locally; this flattens as EventBridge does."""

from __future__ import annotations

from typing import Any

from moto.events.models import EventPattern


def _add(result: dict[str, Any], key: str, value: Any) -> None:
    """Values reached through an array accumulate as a list under their path."""
    if key not in result:
        result[key] = value if isinstance(value, list) else [value]
        return
    existing = result[key]
    if not isinstance(existing, list):
        existing = [existing]
    result[key] = existing + (value if isinstance(value, list) else [value])


def flatten(node: Any, prefix: str = "", result: dict[str, Any] | None = None, through_array: bool = False) -> dict[str, Any]:
    if result is None:
        result = {}
    if not isinstance(node, dict):
        return result
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            flatten(v, key, result, through_array)
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for x in v:
                if isinstance(x, dict):
                    flatten(x, key, result, True)
                else:
                    _add(result, key, x)
        elif through_array:
            _add(result, key, v)
        else:
            result[key] = v
    return result


def install() -> None:
    if getattr(EventPattern._flatten_dict, "_firebreak", False):
        return
    original_filters = EventPattern._does_item_match_filters

    def _does_item_match_filters(self: EventPattern, item: Any, filters: list[Any]) -> bool:
        if original_filters(self, item, filters):
            return True
        # A list of values (from an array): any one matching a named filter is a match.
        return isinstance(item, list) and any(original_filters(self, x, filters) for x in item if not isinstance(x, (list, dict)))

    def _flatten_dict(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
        return flatten(node, prefix, result)

    _flatten_dict._firebreak = True  # type: ignore[attr-defined]
    EventPattern._flatten_dict = staticmethod(_flatten_dict)  # type: ignore[method-assign,assignment]
    EventPattern._does_item_match_filters = _does_item_match_filters  # type: ignore[method-assign]
