"""What Slack accepts in an incoming-webhook body, checked with slack_sdk's own Block Kit models plus the limits
slack_sdk does not check itself (a field's 2,000 characters, no empty text), all measured after escaping."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import Block

MAX_TEXT = 3000
MAX_FIELD = 2000
# An ``&`` that does not start one of the three escapes Slack knows, and a raw ``<`` or ``>``.
_UNESCAPED = re.compile(r"&(?!amp;|lt;|gt;)|[<>]")


def _texts(block: dict[str, Any]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    if "text" in block:
        found.append((block["text"]["text"], MAX_TEXT))
    found += [(f["text"], MAX_FIELD) for f in block.get("fields", [])]
    found += [(e["text"], MAX_TEXT) for e in block.get("elements", []) if "text" in e]
    return found


def assert_valid_slack_body(body: dict[str, Any]) -> None:
    assert isinstance(body["text"], str) and 1 <= len(body["text"]) <= MAX_TEXT, len(body["text"])
    assert not _UNESCAPED.search(body["text"])
    for raw in body["blocks"]:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError for what Slack refuses
        for text, limit in _texts(raw):
            assert 1 <= len(text) <= limit, (len(text), limit)
            assert not _UNESCAPED.search(text), text[:200]
