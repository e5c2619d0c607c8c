"""JSON-lines logging for the worker, the scheduler and the adapters: one object per line, always an ``event``.

Fields come in through ``log_event(logger, "event_name", key=value, ...)``; a key that collides with a
``LogRecord`` attribute (``name``, ``args``, ...) is written with a trailing underscore instead of crashing
the logging call. Plaintext promo codes are never passed here: callers log ``code_prefix``/``code_hash``.

Fields that belong to every line of a unit of work (a request's ``request_id``, a job's ``job_id``) are bound
once with ``log_context(...)`` (or ``bind_log_context``/``reset_log_context`` where the start and the end are
in different hooks); ``ContextFieldsFilter`` on the handler writes them onto each line logged meanwhile, by
any logger, ours or a library's. They live in a ``ContextVar``: per thread, and per task under asyncio.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, date, datetime
from enum import Enum
from types import MappingProxyType
from typing import IO, Any

# Attributes every LogRecord has; anything else came in through ``extra=`` and belongs to the line.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_context_fields: ContextVar[Mapping[str, Any]] = ContextVar("starpromo_log_context", default=_NO_FIELDS)


def bind_log_context(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ``fields`` to every line logged from now on in this context; undo with ``reset_log_context``."""
    return _context_fields.set(MappingProxyType({**_context_fields.get(), **fields}))


def reset_log_context(token: Token[Mapping[str, Any]]) -> None:
    _context_fields.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """``fields`` on every line logged inside the ``with`` block (in this thread)."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


def current_log_context() -> Mapping[str, Any]:
    return _context_fields.get()


class ContextFieldsFilter(logging.Filter):
    """Writes the bound context fields onto each record (a field the call passed itself wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context_fields.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def json_default(value: Any) -> Any:
    """Serialise the few non-JSON types our log fields and alert details carry."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class JsonLineFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "event", "message", ...fields}`` on one line (``pid`` tells the
    processes of ``serve --processes N`` and of several workers apart)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        line["event"] = extra.pop("event", None) or record.name.replace(".", "_")
        message = record.getMessage()
        if message and message != line["event"]:
            line["message"] = message
        line.update(extra)
        if record.exc_info:
            line["error_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(line, default=json_default, ensure_ascii=False)


class LibraryChatterFilter(logging.Filter):
    """Drops what Alembic logs at INFO besides its progress ("Running upgrade 0009 -> 0010, ..."): its plugin
    set-up and "Context impl ..." / "Will assume ... DDL" lines, a dozen per ``db upgrade`` or ``demo`` start that
    tell the person migrating nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (not record.name.startswith("alembic.") or record.levelno > logging.INFO
                or record.getMessage().startswith("Running "))


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_json_logging(level: int = logging.INFO, stream: IO[str] | None = None, *, force: bool = True) -> None:
    """Route every logger (ours, rq's, rq-scheduler's) to one JSON-lines handler (stderr by default).
    ``force=False`` leaves a root logger that already has handlers alone (a host's, a test runner's)."""
    if not force and logging.getLogger().handlers:
        return
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFieldsFilter())
    handler.addFilter(LibraryChatterFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("rq.worker", "rq_scheduler.scheduler", "rq.scheduler"):
        # rq installs its own coloured handlers when none is present; ours on the root is enough.
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one JSON line named ``event`` with ``fields``."""
    extra = {(f"{k}_" if k in _RECORD_ATTRS else k): v for k, v in fields.items()}
    extra["event"] = event
    logger.log(level, event, extra=extra)
