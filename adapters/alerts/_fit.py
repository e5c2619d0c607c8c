"""Fitting an alert body under a channel's size limit (SPEC 8: PagerDuty takes at most 512,000 bytes per event).

:func:`fit_details` builds the body around the alert's details and, when it is too large, trims the details —
never the summary — until it fits: first whole entries from the end of the largest list or object that has more
than one (lists before objects; a grouped alert's ``items`` first: fewer examples rather than mutilated ones),
then long strings, and as a last resort the details as a whole. What was trimmed is said in the details
themselves, under ``trimmed``: the limit, how many entries were removed where (``items`` also raises
``items_trimmed``), which values were shortened. A 4xx for an oversized event is not retried, so an untrimmed
storm would never page at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from adapters.alerts._http import encode_body
from adapters.jsonlog import json_default

TRIMMED = "trimmed"
# Entries of the trimming note kept per kind (removed containers, shortened values).
MAX_NOTED = 20
MAX_ROUNDS = 500
SHORTEST_CUT = 64  # strings at most this long are never shortened


def _size(value: Any) -> int:
    return len(json.dumps(value, default=json_default, ensure_ascii=False).encode("utf-8"))


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe deep copy (dates and the like as the poster would send them)."""
    copied: dict[str, Any] = json.loads(json.dumps(details, default=json_default, ensure_ascii=False))
    return copied


def _containers(value: Any, path: str, top: bool) -> Iterator[tuple[str, Any]]:
    """Every list and object below the top-level details, with its path (``items[0].payments``)."""
    if isinstance(value, dict):
        if not top:
            yield path, value
        for key, child in value.items():
            if top and key == TRIMMED:
                continue
            yield from _containers(child, f"{path}.{key}" if path else str(key), False)
    elif isinstance(value, list):
        yield path, value
        for i, child in enumerate(value):
            yield from _containers(child, f"{path}[{i}]", False)


def _strings(value: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Every long string with its parent container and key."""
    children: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if path == "" and key == TRIMMED:
            continue
        child_path = (f"{path}.{key}" if path else str(key)) if isinstance(value, dict) else f"{path}[{key}]"
        if isinstance(child, str) and len(child) > SHORTEST_CUT:
            yield child_path, value, key
        else:
            yield from _strings(child, child_path)


def _note(details: dict[str, Any], limit_text: str) -> dict[str, Any]:
    note: dict[str, Any] = details.setdefault(TRIMMED, {"limit": limit_text, "removed": {}, "shortened": []})
    return note


def fit_details(build: Callable[[dict[str, Any]], dict[str, Any]], details: dict[str, Any], max_bytes: int,
                limit_text: str) -> dict[str, Any]:
    """``build(details)``, with ``details`` trimmed as the module docstring says when the body is over
    ``max_bytes`` encoded. ``limit_text`` names the limit in the note (``PagerDuty Events API v2: 512,000 bytes``)."""
    body = build(details)
    if len(encode_body(body)) <= max_bytes:
        return body
    work = _plain(details)
    note = _note(work, limit_text)
    for _ in range(MAX_ROUNDS):
        body = build(work)
        excess = len(encode_body(body)) - max_bytes
        if excess <= 0:
            return body
        containers = [(path, c) for path, c in _containers(work, "", True) if len(c) > 1]
        # Lists first (items, payments: examples of the same thing), objects (named figures) only after them.
        candidates = [pc for pc in containers if isinstance(pc[1], list)] or containers
        if candidates:
            path, container = max(candidates, key=lambda pc: _size(pc[1]))
            per_entry = _size(container) / len(container)
            remove = min(len(container) - 1, max(1, math.ceil(excess / per_entry)))
            if isinstance(container, list):
                del container[len(container) - remove:]
            else:
                for key in list(container)[len(container) - remove:]:
                    del container[key]
            removed: dict[str, int] = note["removed"]
            if path in removed or len(removed) < MAX_NOTED:
                removed[path] = removed.get(path, 0) + remove
            if path == "items" and isinstance(work.get("items_trimmed"), int):
                work["items_trimmed"] += remove
            continue
        strings = list(_strings(work, ""))
        if strings:
            path, parent, key = max(strings, key=lambda s: len(s[1][s[2]]))
            text: str = parent[key]
            # Characters may take up to 4 bytes: cut what surely covers the excess and the note's own growth.
            keep = max(SHORTEST_CUT // 2, len(text) - excess - 256)
            parent[key] = text[:keep] + f"… [{len(text) - keep} characters trimmed]"
            if path not in note["shortened"] and len(note["shortened"]) < MAX_NOTED:
                note["shortened"].append(path)
            continue
        break
    # Nothing left to cut piece by piece: the details give way whole, the note says how large they were.
    return build({TRIMMED: {"limit": limit_text, "details_bytes": _size(details),
                            "reason": "the details did not fit; see the job's log and payment reviews"}})
