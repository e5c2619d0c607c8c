"""The JSON-lines logging keeps Alembic's progress ("Running upgrade ...") and drops its chatter (plugin set-up,
"Context impl ...", "Will assume ... DDL"): a migration over a fresh SQLite file logs one line per migration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.jsonlog import configure_json_logging
from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import head_revision, upgrade


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_json_logging(stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_a_migration_logs_one_progress_line_per_revision_and_nothing_else_of_alembics(
        captured: io.StringIO, tmp_path: Path) -> None:
    engines = EngineHolder(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert upgrade(engines) == (None, head_revision())
    finally:
        engines.dispose()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    alembic = [line["message"] for line in lines if line["logger"].startswith("alembic")]
    assert alembic[0] == "Running upgrade  -> 0001, initial schema"
    assert alembic[-1].startswith(f"Running upgrade {int(str(head_revision())) - 1:04d} -> {head_revision()}, ")
    assert all(message.startswith("Running upgrade ") for message in alembic), alembic
    assert len(alembic) == int(str(head_revision()))


def test_other_libraries_lines_and_alembic_warnings_pass(captured: io.StringIO) -> None:
    logging.getLogger("alembic.runtime.migration").warning("Something is off")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("rq.worker").info("Context impl of a worker")
    messages = [json.loads(line)["message"] for line in captured.getvalue().splitlines()]
    assert messages == ["Something is off", "Context impl of a worker"]
